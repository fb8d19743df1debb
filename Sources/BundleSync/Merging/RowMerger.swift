import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge
import BundleSyncStore

/// Merges batches and snapshot chunks into a replica's tracked tables and their clocks.
package struct RowMerger {
    package let store: ReplicaStore
    /// Whether a write with the same clock as the one a cell holds is applied: when held
    /// batches are merged again, the writes to newly tracked columns share the clock of the
    /// row they were part of.
    package var tiesWin = false
    /// Whether the snapshot merged reflects everything this replica holds: its text and
    /// JSON states then replace the cells' own (see ``CellMerger/merge(_:key:ordinal:value:payload:hlc:later:fresh:adopting:)``).
    package var adoptingStates = false

    package init(store: ReplicaStore, tiesWin: Bool = false, adoptingStates: Bool = false) {
        self.store = store
        self.tiesWin = tiesWin
        self.adoptingStates = adoptingStates
    }

    /// Merges one batch into the tracked tables and their clocks (SPEC §3.1, §3.2).
    ///
    /// For each row: a higher causal length wins outright (a newer incarnation, or a delete
    /// of the one known here), so a delete beats a concurrent update and a re-insert brings
    /// the row back with the inserter's values. At equal causal length each cell is merged
    /// on its own: the write with the greater (HLC, replica id) wins. The result does not
    /// depend on the order in which batches arrive, or on how often.
    ///
    /// Changes to tables or columns this replica does not track are left out and returned,
    /// for the caller to hold (SPEC §3.7).
    ///
    /// Must run inside `withoutCapture`, after the batch was checked against the schema.
    @discardableResult
    package func merge(_ batch: Batch, originIndex: Int64) throws -> [HeldItem] {
        let originID = batch.origin
        // Until the batch is stored, the stable time must not pass its writes.
        store.lowerStableTime(to: batch.hlcRange?.lowerBound.rawValue ?? 0)
        var held: [HeldItem] = []
        for section in batch.tables {
            guard let (t, ordinals, unlisted) = try open(section.table, section.columns,
                                                         used: { i in section.rows.contains { $0.cells.contains { $0.column == i } } }, held: &held) else { continue }
            defer { try? store.captureOff(onlyFor: nil) }
            for row in section.rows {
                var cells: [IncomingCell] = []
                cells.reserveCapacity(row.cells.count)
                for c in row.cells {
                    guard let ordinal = ordinals[c.column] else { continue }
                    cells.append(IncomingCell(ordinal: ordinal, stamp: .init(hlc: c.hlc, origin: originIndex), id: originID, value: c.value, merge: c.merge))
                }
                let rowStamp = RowClock.Stamp(hlc: row.rowHLC ?? row.cells.map(\.hlc).max() ?? .zero, origin: originIndex)
                try mergeRow(t, key: row.key, causalLength: row.causalLength, rowStamp: rowStamp, cells: cells, unlisted: unlisted,
                             wholeRow: row.rowHLC != nil)
            }
        }
        return held
    }

    /// Merges one snapshot chunk: the same rules, with every cell carrying its own origin.
    ///
    /// Tables and columns this replica does not track are left out and returned, as for a
    /// batch.
    @discardableResult
    package func merge(_ chunk: SnapshotChunk, keys: [ReplicaID: [UInt8]]) throws -> [HeldItem] {
        let origins = try chunk.origins.map { (index: try store.replicas.index(of: $0, publicKey: keys[$0]), id: $0) }
        // A snapshot's states carry deletions whose batches this replica never held.
        store.lowerStableTime(to: 0)
        var held: [HeldItem] = []
        for section in chunk.tables {
            guard let (t, ordinals, unlisted) = try open(section.table, section.columns,
                                                         used: { i in section.rows.contains { $0.cells.contains { $0.column == i } } }, held: &held) else { continue }
            defer { try? store.captureOff(onlyFor: nil) }
            // A snapshot brings mostly rows this replica has never seen when it starts one (a
            // new device), and then mostly rows it has: each row is first taken as new, until
            // one is found known.
            var takeAsNew = !t.hasMergeColumns
            for row in section.rows {
                var cells: [IncomingCell] = []
                cells.reserveCapacity(row.cells.count)
                for c in row.cells {
                    guard let ordinal = ordinals[c.column] else { continue }
                    cells.append(IncomingCell(ordinal: ordinal, stamp: .init(hlc: c.hlc, origin: origins[c.origin].index),
                                              id: origins[c.origin].id, value: c.value, merge: c.merge))
                }
                let rowStamp = RowClock.Stamp(hlc: row.rowHLC, origin: origins[row.rowOrigin].index)
                if takeAsNew {
                    if try insertNew(t, key: row.key, causalLength: row.causalLength, rowStamp: rowStamp, cells: cells, unlisted: unlisted) { continue }
                    takeAsNew = false
                }
                try mergeRow(t, key: row.key, causalLength: row.causalLength, rowStamp: rowStamp, cells: cells, unlisted: unlisted,
                             wholeRow: true)
            }
        }
        return held
    }

    /// Starts merging a section of `table` naming `columns`: the tracked table, the local
    /// ordinal of each column (nil when not tracked here), and the local columns the section
    /// does not list; capture is switched off for this table alone. A table not tracked
    /// here, and columns not tracked whose cells the section `used`, go to `held`.
    private func open(_ table: String, _ columns: [String], used: (Int) -> Bool, held: inout [HeldItem])
        throws -> (TrackedTable, [Int?], unlisted: [Int])? {
        guard let t = store.catalog[table] else {
            held.append(HeldItem(table: table, column: nil))
            return nil
        }
        let ordinals = columns.map { t.ordinal(of: $0) }
        held += columns.indices.filter { ordinals[$0] == nil && used($0) }.map { HeldItem(table: t.name, column: columns[$0]) }
        let listed = Set(ordinals.compactMap { $0 })
        try store.captureOff(onlyFor: t)
        return (t, ordinals, t.schema.columns.indices.filter { !listed.contains($0) })
    }

    /// A cell arriving from a batch or a snapshot: its local column, clock, writer and value.
    private struct IncomingCell {
        var ordinal: Int
        var stamp: RowClock.Stamp
        var id: ReplicaID
        var value: SQLValue
        var merge: MergePayload?
    }

    /// Applies a row of a table without text or JSON columns as ``mergeRow`` does when the
    /// row has no clock here, if it has none: its clock row is written first, and only when
    /// no clock row for the key exists. Returns false, having changed nothing, otherwise.
    private func insertNew(_ t: TrackedTable, key: [SQLValue], causalLength: UInt64, rowStamp: RowClock.Stamp, cells: [IncomingCell],
                           unlisted: [Int]) throws -> Bool {
        guard causalLength > 0, cells.allSatisfy({ $0.merge == nil }) else { return false }
        let clock = incarnationClock(causalLength: causalLength, rowStamp: rowStamp, cells: cells, unlisted: unlisted)
        guard try store.clocks.insertIfAbsent(t, key: key, clock) else { return false }
        if causalLength % 2 == 1 {
            try store.rows.replace(t, key: key, columns: cells.map(\.ordinal), values: cells.map(\.value))
        } else {
            try store.rows.delete(t, key: key)
        }
        return true
    }

    /// The clock of a row as an incarnation that replaces it whole brings it: the row's
    /// stamp, and when alive each cell's. A column the writer did not track was not written
    /// by it: such a cell starts unwritten, so that any real write of it wins.
    private func incarnationClock(causalLength: UInt64, rowStamp: RowClock.Stamp, cells: [IncomingCell], unlisted: [Int]) -> RowClock {
        var clock = RowClock(causalLength: causalLength, row: rowStamp, overrides: [:])
        guard causalLength % 2 == 1 else { return clock }
        for ordinal in unlisted { clock.setCell(ordinal, .unwritten(by: store.selfIndex)) }
        for c in cells { clock.setCell(c.ordinal, c.stamp) }
        return clock
    }

    /// Merges one row change.
    ///
    /// - Parameter wholeRow: Whether the change carries every cell of its incarnation: a
    ///   snapshot's row, or a batch's row that the batch inserted or deleted. A batch's update
    ///   carries only the cells it wrote.
    private func mergeRow(_ t: TrackedTable, key: [SQLValue], causalLength: UInt64, rowStamp: RowClock.Stamp, cells: [IncomingCell],
                          unlisted: [Int], wholeRow: Bool) throws {
        for c in cells where c.merge != nil && t.rule(c.ordinal) == .lww {
            throw BundleSyncError.badData("the bundle holds a \(c.merge!.rule) edit of column '\(shown(t.schema.columns[c.ordinal].name))' of '\(shown(t.name))', which merges by 'lww' here",
                                          hint: "run 'bundlesync track' with the same rules on every replica")
        }
        let local = try store.clocks.load(t, key: key)
        let localLength = local?.causalLength ?? 0
        if causalLength < localLength { return }

        if local == nil, !wholeRow, causalLength % 2 == 1 {
            // An update of a row whose clock this replica does not have: it lacks the write
            // that began the row's incarnation, because its clocks of the table were dropped
            // (by untrack) after that write was merged here, and the update was held until the
            // table was tracked again. The cells the update does not carry are not known to
            // have been written: the row keeps its values for them, as unwritten, so that any
            // real write wins, instead of taking them for NULL written by the update's origin.
            try mergeIntoRowWithoutClock(t, key: key, causalLength: causalLength, cells: cells)
            return
        }

        if causalLength > localLength {
            // A newer incarnation (or a delete of ours): it replaces the row whole.
            let clock = incarnationClock(causalLength: causalLength, rowStamp: rowStamp, cells: cells, unlisted: unlisted)
            if t.hasMergeColumns { try store.cellStates.drop(t, key: key) }
            if causalLength % 2 == 1 {
                var values = cells.map(\.value)
                for (i, c) in cells.enumerated() {
                    if t.rule(c.ordinal) != .lww {
                        values[i] = try CellMerger(store: store).merge(t, key: key, ordinal: c.ordinal, value: c.value, payload: c.merge,
                                                  hlc: c.stamp.hlc, later: true, fresh: true) ?? .null
                    }
                }
                try store.rows.replace(t, key: key, columns: cells.map(\.ordinal), values: values)
            } else {
                try store.rows.delete(t, key: key)
            }
            try store.clocks.store(t, key: key, clock, replacing: local != nil)
            return
        }

        // Same incarnation: merge cell by cell.
        guard var clock = local, clock.isAlive, !cells.isEmpty else { return }
        var winners: [(ordinal: Int, value: SQLValue)] = []
        var clockChanged = false
        for c in cells {
            let later = try isLater(c.stamp.hlc, c.id, than: clock.cell(c.ordinal))
            if later {
                clock.setCell(c.ordinal, c.stamp)
                clockChanged = true
            }
            if t.rule(c.ordinal) == .lww {
                if later { winners.append((c.ordinal, c.value)) }
            } else if let shown = try CellMerger(store: store).merge(t, key: key, ordinal: c.ordinal, value: c.value, payload: c.merge,
                                                                     hlc: c.stamp.hlc, later: later, fresh: false, adopting: adoptingStates) {
                winners.append((c.ordinal, shown))
            }
        }
        if clockChanged { try store.clocks.store(t, key: key, clock, replacing: true) }
        guard !winners.isEmpty else { return }
        try store.rows.update(t, key: key, columns: winners.map(\.ordinal), values: winners.map(\.value))
    }

    /// Applies an update that carries some cells of a row this replica holds no clock for
    /// (see ``mergeRow``): those cells are written, the others keep the row's values, and
    /// the clock records only the update's writes.
    ///
    /// - Throws: `.badData` when the row is not here (deleted while its table was not
    ///   tracked: the update would bring back a row of the cells it wrote alone), and for an
    ///   edit of a text or JSON cell (an edit of a merge state this replica does not hold,
    ///   which applied to an empty one would make a text or a document of the edit alone).
    ///   Only the whole row, from a snapshot, settles either.
    private func mergeIntoRowWithoutClock(_ t: TrackedTable, key: [SQLValue], causalLength: UInt64, cells: [IncomingCell]) throws {
        func notHeld(_ message: String) -> BundleSyncError {
            BundleSyncError(.badData, message,
                            hint: "'untrack' dropped what this replica knew of '\(shown(t.name))'; import a whole snapshot from a peer (there: 'bundlesync export DB --full -o DIR'; here: 'bundlesync import DB DIR')",
                            cause: .error(Self.clockDropped))
        }
        if let c = cells.first(where: { t.rule($0.ordinal) != .lww }) {
            throw notHeld("a \(t.rule(c.ordinal)) edit of column '\(shown(t.schema.columns[c.ordinal].name))' of '\(shown(t.name))' refers to a state this replica does not hold")
        }
        var clock = RowClock(causalLength: causalLength, row: .unwritten(by: store.selfIndex), overrides: [:])
        for c in cells { clock.setCell(c.ordinal, c.stamp) }
        if !cells.isEmpty, try !store.rows.updateIfPresent(t, key: key, columns: cells.map(\.ordinal), values: cells.map(\.value)) {
            throw notHeld("an update of a row of '\(shown(t.name))' refers to a row this replica does not hold")
        }
        try store.clocks.store(t, key: key, clock, replacing: false)
    }

    /// The cause of the errors of ``mergeIntoRowWithoutClock``: what tells them apart from
    /// a refusal of the batch itself.
    package static let clockDropped = "the row's clock was dropped with its table's bookkeeping"

    /// Last-writer-wins order: HLC first, then replica id.
    private func isLater(_ hlc: HLC, _ id: ReplicaID, than stamp: RowClock.Stamp) throws -> Bool {
        if hlc != stamp.hlc { return hlc > stamp.hlc }
        let holder = try store.replicas.id(at: stamp.origin)
        return tiesWin ? holder <= id : holder < id
    }
}
