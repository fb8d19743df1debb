import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge
import BundleSyncStore

/// Writes a replica's whole tracked state as snapshot chunks (`bundlesync-format(5)`,
/// "Snapshots").
package struct SnapshotWriter {
    package let store: ReplicaStore
    package let progress: ProgressHandler?

    package init(store: ReplicaStore, progress: ProgressHandler?) {
        self.store = store
        self.progress = progress
    }

    /// Streams the tracked state as snapshot chunks, tombstones included: every row, or for a
    /// delta snapshot only the rows with a stamp at or after `floor`.
    ///
    /// A row's stamps (of the row and of each cell) only ever move to a later clock, and each
    /// is the latest of the writes merged into it, text and JSON edits included. So a row
    /// that any write of a batch the target lacks has touched holds a stamp at or after that
    /// write's clock, which is at or after the batch's floor, itself at or after `floor`, the
    /// lowest floor of all the batches the target lacks. A row all of whose stamps are
    /// earlier reflects only batches the target already holds, and is left out.
    ///
    /// Must run inside a read transaction, so the state matches the heads read in it.
    /// - Parameter floor: For a delta snapshot, the earliest clock of the batches the target
    ///   lacks; nil for a whole snapshot.
    /// - Returns: The number of rows written.
    package func write(to writer: BundleWriter, since floor: HLC? = nil) throws -> Int {
        var rows = 0
        var chunk = SnapshotChunk(origins: [], tables: [])
        var originSlot: [Int64: Int] = [:]
        var bytes = 0
        var cells = 0
        // Most stamps of a chunk name the origin the one before named.
        var last: (origin: Int64, slot: Int)?
        func slot(_ origin: Int64) throws -> Int {
            if let last, last.origin == origin { return last.slot }
            if let s = originSlot[origin] {
                last = (origin, s)
                return s
            }
            chunk.origins.append(try store.replicas.id(at: origin))
            originSlot[origin] = chunk.origins.count - 1
            last = (origin, chunk.origins.count - 1)
            return chunk.origins.count - 1
        }
        func flush() throws {
            guard chunk.rowCount > 0 else { return }
            try writer.append(chunk)
            progress?(ProgressEvent(phase: "writing", kind: .detail("wrote a snapshot chunk (\(chunk.rowCount) rows)")))
            chunk = SnapshotChunk(origins: [], tables: [])
            originSlot = [:]
            last = nil
            bytes = 0
            cells = 0
        }
        for t in store.catalog.tracked {
            let keyCount = t.schema.keyColumns.count
            let columnCount = t.schema.columns.count
            let join = zip(t.schema.keyColumns, t.keyNames).map { "u.\(Database.quote($0)) = c.\($1)" }.joined(separator: " AND ")
            let userColumns = t.sqlNames.map { "u.\(Database.quote($0))" }
            let select = (t.keyNames.map { "c.\($0)" } + ["c.cl", "c.hlc", "c.origin", "c.cells"] + userColumns).joined(separator: ", ")
            // Cells written after their row hold later stamps in `c.cells`: such rows are
            // read, and their cells looked at below.
            let changed = floor == nil ? "" : "WHERE c.hlc >= ? OR c.cells IS NOT NULL"
            let s = try store.db.statement("""
                SELECT \(select) FROM \(Database.quote(t.clockTable)) c LEFT JOIN \(t.quotedTable) u ON \(join) \(changed)
                ORDER BY \(t.keyNames.map { "c.\($0)" }.joined(separator: ", "))
                """)
            if let floor { try s.bind([.integer(Int64(bitPattern: floor.rawValue))]) }
            while try s.step() {
                let key = (0..<keyCount).map { s.value($0) }
                let cl = UInt64(s.int(keyCount))
                let rowStamp = RowClock.Stamp(hlc: HLC(rawValue: UInt64(bitPattern: s.int(keyCount + 1))), origin: s.int(keyCount + 2))
                let clock = try RowClock(causalLength: cl, row: rowStamp, packed: s.bytes(keyCount + 3))
                if let floor, rowStamp.hlc < floor, !clock.laterCells.contains(where: { $0.stamp.hlc >= floor }) { continue }
                if chunk.tables.last?.table != t.name {
                    chunk.tables.append(.init(table: t.name, keyColumns: t.schema.keyColumns, columns: t.schema.columns.map(\.name), rows: []))
                }
                var row = SnapshotChunk.Row(key: key, causalLength: cl, rowHLC: rowStamp.hlc, rowOrigin: try slot(rowStamp.origin), cells: [])
                if clock.isAlive {
                    row.cells.reserveCapacity(columnCount)
                    for i in 0..<columnCount {
                        let stamp = clock.cell(i)
                        let value = s.value(keyCount + 4 + i)
                        var cell = SnapshotChunk.Cell(column: i, hlc: stamp.hlc, origin: try slot(stamp.origin), value: value)
                        if t.rule(i) != .lww, let (state, flags) = try store.cellStates.encodedState(t, key: key, ordinal: i) {
                            let plain = flags.contains(.plainLatest)
                            cell.merge = MergePayload(rule: t.rule(i), state: state, plain: plain ? value : nil)
                            if !plain { cell.value = .null }
                            bytes += cell.merge!.state.count
                        }
                        row.cells.append(cell)
                        bytes += value.encodedSizeEstimate + 12
                    }
                }
                bytes += 24 + key.reduce(0) { $0 + $1.encodedSizeEstimate }
                chunk.tables[chunk.tables.count - 1].rows.append(row)
                rows += 1
                cells += row.cells.count
                if bytes >= Sealer.batchByteLimit || chunk.rowCount >= Sealer.batchRowLimit
                    || cells + columnCount > Sealer.batchCellLimit { try flush() }
            }
        }
        try flush()
        return rows + (try writeHeld(to: writer))
    }

    /// Appends what this replica holds for tables and columns it does not track: its held
    /// snapshot chunks as they came, and each held batch as a chunk of the same rows and
    /// clocks, so that a replica that joins from this snapshot loses none of it.
    private func writeHeld(to writer: BundleWriter) throws -> Int {
        var rows = 0
        for held in try store.held.heldChunks() {
            let chunk = try store.held.chunk(held.id)
            try writer.append(chunk)
            rows += chunk.rowCount
        }
        for held in try store.held.heldBatches() {
            let batch = try Batch.decode(try store.history.load(origin: held.originIndex, seq: held.seq).bytes)
            let chunk = SnapshotChunk(origins: [batch.origin], tables: batch.tables.map { section in
                SnapshotChunk.Table(table: section.table, keyColumns: section.keyColumns, columns: section.columns, rows: section.rows.map { row in
                    SnapshotChunk.Row(key: row.key, causalLength: row.causalLength, rowHLC: row.rowHLC ?? row.cells.map(\.hlc).max() ?? .zero, rowOrigin: 0,
                                      cells: row.cells.map { SnapshotChunk.Cell(column: $0.column, hlc: $0.hlc, origin: 0, value: $0.value, merge: $0.merge) })
                })
            })
            try writer.append(chunk)
            rows += chunk.rowCount
        }
        return rows
    }
}
