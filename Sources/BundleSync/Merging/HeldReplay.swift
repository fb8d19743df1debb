import BundleSyncCore
import BundleSyncFormat
import BundleSyncStore

/// Merges again the batches a replica holds once what they changed is tracked here.
///
/// A batch that changed a table or column this replica did not track was applied in part
/// and kept (see ``HistoryStore/hold(origin:seq:items:)``). When the table or column is
/// tracked, the whole batch is merged again: merging is idempotent, so what was applied
/// before stays as it is, and the writes that were held take effect by their own clocks.
package struct HeldReplay {
    package let store: ReplicaStore

    package init(store: ReplicaStore) {
        self.store = store
    }

    /// Whether `item` is tracked here now.
    private func isTracked(_ item: HeldItem) -> Bool {
        guard let t = store.catalog[item.table] else { return false }
        return item.column.map { t.ordinal(of: $0) != nil } ?? true
    }

    /// The held batches that hold something tracked here now.
    package func due() throws -> [HeldBatch] {
        try store.held.heldBatches().filter { $0.items.contains(where: isTracked) }
    }

    /// Merges `batches` again. Must run inside `withoutCapture`.
    ///
    /// - Returns: How many batches are now applied whole.
    @discardableResult
    package func replay(_ batches: [HeldBatch]) throws -> Int {
        var released = 0
        for held in batches {
            let batch = try Batch.decode(try store.history.load(origin: held.originIndex, seq: held.seq).bytes)
            let still = try RowMerger(store: store, tiesWin: true).merge(batch, originIndex: held.originIndex)
            if still.isEmpty {
                try store.held.release(origin: held.originIndex, seq: held.seq)
                released += 1
            } else {
                try store.held.hold(origin: held.originIndex, seq: held.seq, items: still)
            }
        }
        for held in try store.held.heldChunks() where held.items.contains(where: isTracked) {
            let still = try RowMerger(store: store, tiesWin: true).merge(try store.held.chunk(held.id), keys: [:])
            try store.held.updateHeld(chunk: held.id, items: still)
            if still.isEmpty { released += 1 }
        }
        if released > 0 {
            store.notices.append("\(released == 1 ? "1 held batch or snapshot chunk is" : "\(released) held batches or snapshot chunks are") applied now that what \(released == 1 ? "it" : "they") changed is tracked here")
        }
        return released
    }

    /// Merges again, in a transaction of its own, every held batch that is due.
    package func run() throws {
        let batches = try due()
        let chunks = try store.held.heldChunks().contains { $0.items.contains(where: isTracked) }
        guard !batches.isEmpty || chunks else { return }
        try store.withoutCapture { try replay(batches) }
    }
}
