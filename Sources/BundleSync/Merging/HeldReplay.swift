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
        // Snapshot chunks first: they carry whole text and JSON states, which the edits of
        // held batches may refer to.
        for held in try store.held.heldChunks() where held.items.contains(where: isTracked) {
            let still = try RowMerger(store: store, tiesWin: true).merge(try store.held.chunk(held.id), keys: [:])
            try store.held.updateHeld(chunk: held.id, items: still)
            if still.isEmpty { released += 1 }
        }
        for held in batches {
            let batch = try Batch.decode(try store.history.load(origin: held.originIndex, seq: held.seq).bytes)
            let still: [HeldItem]
            do {
                still = try RowMerger(store: store, tiesWin: true).merge(batch, originIndex: held.originIndex)
            } catch let e as BundleSyncError {
                guard case .error(RowMerger.clockDropped)? = e.cause else { throw e }
                throw try unmergeable(held, batch: batch, cause: e)
            }
            if still.isEmpty {
                try store.held.release(origin: held.originIndex, seq: held.seq)
                released += 1
            } else {
                try store.held.hold(origin: held.originIndex, seq: held.seq, items: still)
            }
        }
        if released > 0 {
            store.notices.append("\(released == 1 ? "1 held batch or snapshot chunk is" : "\(released) held batches or snapshot chunks are") applied now that what \(released == 1 ? "it" : "they") changed is tracked here")
        }
        return released
    }

    /// Why a held batch, proved whole and authentic when it arrived, cannot be merged now:
    /// it updates rows, or edits text and JSON states, that this replica no longer holds
    /// (rows deleted while the table was not tracked; states `untrack` dropped with the
    /// table's bookkeeping). A whole snapshot brings them back.
    private func unmergeable(_ held: HeldBatch, batch: Batch, cause: BundleSyncError) throws -> BundleSyncError {
        let origin = try store.replicas.label(of: batch.origin)
        let tables = Set(held.items.filter(isTracked).map(\.table)).sorted().map { "'\(shown($0))'" }.joined(separator: ", ")
        return BundleSyncError(.failure, "the changes of replica \(origin) to \(tables), held while not tracked here, cannot be merged: \(cause.message); this replica dropped what they change when the table was untracked",
                               hint: "import a whole snapshot from a replica that tracks it (there: 'bundlesync export DB --full -o DIR'; here: 'bundlesync import DB DIR'), then run 'bundlesync track' again")
    }

    /// Merges again, in a transaction of its own, every held batch that is due.
    package func run() throws {
        let batches = try due()
        let chunks = try store.held.heldChunks().contains { $0.items.contains(where: isTracked) }
        guard !batches.isEmpty || chunks else { return }
        try store.withoutCapture { try replay(batches) }
    }
}
