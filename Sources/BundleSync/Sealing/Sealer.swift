import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge
import BundleSyncStore

/// A batch sealed or stored, as reported to the user.
public struct BatchSummary: Sendable {
    public var origin: ReplicaID
    public var seq: UInt64
    public var hash: Digest32
    public var rows: Int
    public var cells: Int
    /// The batch itself, while an export that has just sealed it may write it out without
    /// reading it back from history; nil for batches not kept in memory.
    package var signed: SignedBatch?
}

/// Turns a replica's captured local changes into signed batches of its history.
package struct Sealer {
    /// A sealed batch is closed once its encoding passes this size or row count, so memory
    /// holds one bounded batch at a time however large the change set.
    package static let batchByteLimit = 4 << 20
    package static let batchRowLimit = 32_768
    package static let batchCellLimit = 262_144

    package let store: ReplicaStore
    package let progress: ProgressHandler?

    package init(store: ReplicaStore, progress: ProgressHandler?) {
        self.store = store
        self.progress = progress
    }

    private var db: Database { store.db }

    /// Seals every pending local change into signed batches of this replica's history.
    ///
    /// Folds each table's capture log, key by key, into one row change per key: the causal
    /// length after the logged inserts and deletes, and for each written column the time of
    /// its last write. Timestamps come from the logged wall times through the hybrid logical
    /// clock, so every new write is later than everything this replica had seen when the seal
    /// began (that is, before the import that follows it). Must run inside a write
    /// transaction; the log rows it consumes are deleted in the same transaction.
    ///
    /// - Parameter keepingHistory: Whether the batches are stored in history, to be passed
    ///   on later. Without, they still number and chain this replica's history, and their
    ///   changes are in the clocks; a replica that lacks them gets a snapshot.
    /// - Returns: The batches sealed, in order.
    @discardableResult
    package func sealPending(keepingHistory: Bool = true) throws -> [BatchSummary] {
        precondition(db.isInTransaction, "seal outside a transaction")
        // Stamps follow the device's wall clock, never running behind what this replica
        // stamped or saw, unless that lies ahead of the wall clock: timestamps from a clock
        // that ran ahead (this device's, before it was set right, or a peer's) must not carry
        // every later write into the future. Causality is kept where it decides a merge: a
        // write to a row or cell is always stamped after the write it replaces (see `fold`).
        let seen = try store.clock
        let start = min(seen, HLC.wall(HLC.nowMilliseconds()))
        var highest = seen
        var builder = BatchBuilder()
        var sealed: [BatchSummary] = []
        var pendingTotal = 0
        if progress != nil {
            for t in store.catalog.tracked {
                if case .integer(let n)? = try db.scalar("SELECT count(*) FROM \(Database.quote(t.logTable))") { pendingTotal += Int(n) }
            }
        }
        var pendingDone = 0
        var keptBytes = 0
        // Whether changes were sealed into clocks alone, without a batch to carry them.
        var numbered = false
        defer { if pendingTotal > 0 { progress?(ProgressEvent(phase: "sealing", kind: .finished)) } }

        func hlc(forWall wall: Int64) -> HLC {
            let h = start.next(wall: wall)
            highest = max(highest, h)
            return h
        }

        for t in store.catalog.tracked {
            let keyCount = t.schema.keyColumns.count
            // The log, sorted by key (a narrow sort), then for each changed key one lookup of
            // its current row and its clock (sealing never writes the user table, so reading
            // it alongside is safe).
            let keyList = t.keyNames.joined(separator: ", ")
            let s = try db.statement("SELECT rowid, \(keyList), change, \(CaptureTriggers.wallMilliseconds("wall")) FROM \(Database.quote(t.logTable)) ORDER BY \(keyList), rowid")
            let current = try store.rows.currentStateStatement(t)
            // When the batches are not kept (see `keepingHistory`), they are never read: a
            // table's changes need only set its clocks, and the snapshot that follows reads the
            // rows. The values are then left unread, but for rows that may be too large to
            // sync, found in one pass over the table. Text and JSON cells still seal their
            // edits into their merge states, which the snapshot carries.
            let clocksOnly = !keepingHistory && !t.hasMergeColumns
            let checkClock = try store.rows.currentClockStatement(t)
            let oversized = clocksOnly ? try store.rows.possiblyOversizedKeys(t, limit: Limits.maxValueBytes, totalLimit: Self.maxRowBytes) : []
            if clocksOnly && oversized.isEmpty {
                let bulk = try sealNewRowsInBulk(t, start: start)
                if bulk.rows > 0 {
                    numbered = true
                    highest = max(highest, bulk.highest)
                    pendingDone += bulk.rows
                }
            }
            let unread = [SQLValue](repeating: .null, count: t.schema.columns.count)
            var group: [(change: Int64, wall: Int64)] = []
            var groupKey: [SQLValue]?
            var maxSeq: Int64 = 0
            // JSON written in another form than the canonical one, rewritten once the log is read.
            var canonicalForms: [(key: [SQLValue], ordinal: Int, value: [UInt8])] = []

            var unsyncable: [String: Int] = [:]

            func flushGroup() throws {
                guard let key = groupKey, !group.isEmpty else { return }
                if let why = t.unsyncableKey(key) {
                    unsyncable[why, default: 0] += 1
                    group.removeAll(keepingCapacity: true)
                    return
                }
                let valuesUnread = clocksOnly && !oversized.contains(key)
                let read = valuesUnread ? checkClock : current
                read.reset()
                try read.bind(key)
                guard try read.step() else { throw BundleSyncError.failure("sealing could not read the state of a row of '\(t.name)'") }
                let values = read.int(0) == 0 ? nil : valuesUnread ? unread : (0..<t.schema.columns.count).map { read.value(5 + $0) }
                if let why = Self.tooLarge(t, key: key, values: valuesUnread ? nil : values) {
                    // Every reader would refuse a bundle carrying this row; it waits, and the
                    // rest of the replica's changes still flow.
                    store.notices.append(why)
                    read.reset()
                    group.removeAll(keepingCapacity: true)
                    return
                }
                let before = try ClockStore.clock(from: read, at: 1)
                read.reset()
                if var change = try fold(t, key: key, before: before, ops: group, values: values, hlc: hlc(forWall:)) {
                    if t.hasMergeColumns { try sealMergeCells(t, &change, canonicalForms: &canonicalForms) }
                    if clocksOnly {
                        numbered = true
                        group.removeAll(keepingCapacity: true)
                        return
                    }
                    builder.add(change, table: t)
                    if builder.estimatedBytes >= Self.batchByteLimit || builder.rows >= Self.batchRowLimit
                        || builder.cells + t.schema.columns.count > Self.batchCellLimit {
                        sealed.append(try sealBatch(&builder, keepingHistory: keepingHistory, keptBytes: &keptBytes))
                    }
                }
                group.removeAll(keepingCapacity: true)
            }

            while try s.step() {
                maxSeq = max(maxSeq, s.int(0))
                pendingDone += 1
                if pendingDone % 4096 == 0 {
                    progress?(ProgressEvent(phase: "sealing", unit: "changes", kind: .step(done: pendingDone, total: pendingTotal)))
                }
                if !s.matches(groupKey, from: 1) {
                    try flushGroup()
                    groupKey = (0..<keyCount).map { s.value(1 + $0) }
                }
                group.append((s.int(1 + keyCount), s.int(2 + keyCount)))
            }
            try flushGroup()
            builder.closeTable()
            for (why, n) in unsyncable.sorted(by: { $0.key < $1.key }) {
                store.notices.append("\(n == 1 ? "1 row" : "\(n) rows") of '\(t.name)' not synced: \(n == 1 ? "it has" : "they have") \(why)\nhint: give every row a key of one exact spelling, never NULL; the rows sync once their key is changed")
            }
            for f in canonicalForms {
                try store.rows.rewrite(t, key: f.key, ordinal: f.ordinal, value: .text(f.value))
            }
            if maxSeq > 0 {
                try db.run("DELETE FROM \(Database.quote(t.logTable)) WHERE rowid <= ?", [.integer(maxSeq)])
            }
        }
        // Changes that only set clocks are numbered all the same, by a batch of no rows when
        // no other batch follows them: the snapshot's heads then say that the state holds them.
        if builder.rows > 0 || (numbered && sealed.isEmpty) { sealed.append(try sealBatch(&builder, keepingHistory: keepingHistory, keptBytes: &keptBytes)) }
        try store.advanceClock(to: highest)
        return sealed
    }

    /// Seals in one statement the rows of a table whose clocks are not kept yet (the
    /// table was just tracked), when its changes only set clocks and are what tracking
    /// logged: each key once, by an insert, its row present, its key able to sync. Such a
    /// key folds to the first incarnation, every cell written with the row at the stamp of
    /// its insert, as ``fold`` would find it. When the log holds anything else (writes made
    /// since), nothing is kept and the table is sealed key by key.
    ///
    /// - Returns: The number of rows sealed (none, or every row logged), and the latest
    ///   stamp given.
    private func sealNewRowsInBulk(_ t: TrackedTable, start: HLC) throws -> (rows: Int, highest: HLC) {
        let clock = Database.quote(t.clockTable), log = Database.quote(t.logTable)
        guard try db.scalar("SELECT 1 FROM \(clock) LIMIT 1") == nil else { return (0, .zero) }
        let keys = t.keyNames.joined(separator: ", ")
        let present = zip(t.schema.keyColumns, t.keyNames).map { "u.\(Database.quote($0)) = l.\($1)" }.joined(separator: " AND ")
        // `HLC.next(wall:)` from `start`, in SQL: milliseconds in the upper bits, clamped to
        // the latest stamp a bundle may carry.
        let ms = "min(max(\(CaptureTriggers.wallMilliseconds("l.wall")), 0), \(HLC.maximum.milliseconds))"
        let begin = Int64(bitPattern: start.rawValue)
        let stamp = "min(\(Int64(bitPattern: HLC.maximum.rawValue)), CASE WHEN (\(ms) << \(HLC.counterBits)) > \(begin) THEN \(ms) << \(HLC.counterBits) ELSE \(begin) + 1 END)"
        // A key logged twice keeps its first clock row and is counted once, so every log row
        // became a clock row only if each key was logged once.
        try db.run("""
            INSERT OR IGNORE INTO \(clock)(\(keys), cl, hlc, origin, cells)
            SELECT \(t.keyNames.map { "l.\($0)" }.joined(separator: ", ")), 1, \(stamp), \(store.selfIndex), NULL
            FROM \(log) l
            WHERE l.change = \(LogOp.insertCode) AND \(t.syncableKeySQL("l")) AND EXISTS (SELECT 1 FROM \(t.quotedTable) u WHERE \(present))
            """)
        let rows = db.changes
        guard rows > 0, try db.scalar("SELECT count(*) FROM \(log)") == .integer(Int64(rows)) else {
            if rows > 0 { try db.run("DELETE FROM \(clock)") }
            return (0, .zero)
        }
        try db.run("DELETE FROM \(log)")
        guard case .integer(let h)? = try db.scalar("SELECT max(hlc) FROM \(clock)") else { return (rows, .zero) }
        return (rows, HLC(rawValue: UInt64(bitPattern: h)))
    }

    /// A key value as messages show it: SQL literal syntax, long values shortened.
    static func literal(_ v: SQLValue) -> String {
        switch v {
        case .null: return "NULL"
        case .integer(let n): return String(n)
        case .real(let d): return String(d)
        case .text(let b):
            let text = shown(String(decoding: b.prefix(40), as: UTF8.self))
            return "'\(text)\(b.count > 40 ? "…" : "")'"
        case .blob(let b): return "x'\(hexString(Array(b.prefix(20))))\(b.count > 20 ? "…" : "")'"
        }
    }

    /// The most bytes one row's key and values may hold.
    static let maxRowBytes = Limits.maxBatchBytes - (1 << 20)

    /// Why a row cannot travel in a bundle: a value larger than a reader accepts, or a row
    /// larger than one batch may be. Nil when it can.
    static func tooLarge(_ t: TrackedTable, key: [SQLValue], values: [SQLValue]?) -> String? {
        func size(_ v: SQLValue) -> Int {
            switch v {
            case .text(let b), .blob(let b): b.count
            default: 9
            }
        }
        // Rows that fit are the rule: the key is spelled out only for the message.
        var keyText: String { key.map(literal).joined(separator: ", ") }
        let hint = "hint: store it in smaller parts, in rows of their own; the row syncs once it is written again"
        for (i, v) in key.enumerated() where size(v) > Limits.maxValueBytes {
            return "a row of '\(shown(t.name))' is not synced: its key column '\(shown(t.schema.keyColumns[i]))' holds \(size(v)) bytes, more than a bundle may carry in one value (\(Limits.maxValueBytes))\n" + hint
        }
        guard let values else { return nil }
        for (i, v) in values.enumerated() where size(v) > Limits.maxValueBytes {
            return "row (\(keyText)) of '\(shown(t.name))' is not synced: column '\(shown(t.schema.columns[i].name))' holds \(size(v)) bytes, more than a bundle may carry in one value (\(Limits.maxValueBytes))\n" + hint
        }
        let total = key.reduce(0) { $0 + size($1) } + values.reduce(0) { $0 + size($1) }
        if total > maxRowBytes {
            return "row (\(keyText)) of '\(shown(t.name))' is not synced: its values hold \(total) bytes, more than one batch may carry (\(Limits.maxBatchBytes))\n" + hint
        }
        return nil
    }

    /// Folds one key's logged operations into a row change and updates its clock row.
    private func fold(_ t: TrackedTable, key: [SQLValue], before: RowClock?, ops: [(change: Int64, wall: Int64)],
                      values: [SQLValue]?, hlc: (Int64) -> HLC) throws -> RowChange? {
        let startLength = before?.causalLength ?? 0
        var length = startLength
        var rowWall: Int64?
        var columnWall = [Int64?](repeating: nil, count: t.schema.columns.count)
        for (change, wall) in ops {
            switch LogOp(code: change) {
            case .insert:
                if length % 2 == 0 {
                    length += 1
                    rowWall = wall
                }
                for i in columnWall.indices { columnWall[i] = wall }
            case .delete:
                if length % 2 == 1 {
                    length += 1
                    rowWall = wall
                }
                for i in columnWall.indices { columnWall[i] = nil }
            case .update(let ordinal)? where ordinal < columnWall.count:
                columnWall[ordinal] = wall
            case .update?, nil:
                throw BundleSyncError.failure("the capture log of '\(t.name)' holds an unknown change \(change)")
            }
        }
        // The table itself is the truth: reconcile if the log disagrees (for example, rows
        // written while the triggers were missing).
        let lastWall = ops.last!.wall
        if values != nil && length % 2 == 0 {
            length += 1
            rowWall = lastWall
            for i in columnWall.indices { columnWall[i] = lastWall }
        } else if values == nil && length % 2 == 1 {
            length += 1
            rowWall = lastWall
        }
        if length % 2 == 0 { columnWall = columnWall.map { _ in nil } }
        guard length != startLength || columnWall.contains(where: { $0 != nil }) else { return nil }

        var clock = before ?? RowClock(causalLength: 0, row: .init(hlc: .zero, origin: store.selfIndex), overrides: [:])
        var change = RowChange(key: key, causalLength: length, rowHLC: nil, cells: [])
        if length != startLength {
            let h = max(hlc(rowWall ?? lastWall), before.map { $0.row.hlc.successor } ?? .zero)
            change.rowHLC = h
            clock = RowClock(causalLength: length, row: .init(hlc: h, origin: store.selfIndex), overrides: [:])
        }
        if let values, length % 2 == 1 {
            for (i, wall) in columnWall.enumerated() {
                guard let wall else { continue }
                // A cell rewritten in the row's incarnation is stamped after the write it
                // replaces, even when that write's time is ahead of this device's clock.
                let h = max(hlc(wall), length == startLength ? clock.cell(i).hlc.successor : .zero)
                if length == startLength && h <= clock.cell(i).hlc {
                    // The write it replaces carries the latest time a bundle may: nothing can
                    // be stamped after it, so this write could never win. Said, not sent.
                    let writer = (try? store.replicas.id(at: clock.cell(i).origin)).map { (try? store.replicas.label(of: $0)) ?? $0.short } ?? "another replica"
                    store.notices.append("column '\(shown(t.schema.columns[i].name))' of a row of '\(shown(t.name))' is not synced: \(writer) wrote it at \(clock.cell(i).hlc), the latest time a bundle may carry, so no later write can win over it\nhint: write the value under a new key; the device that wrote it has a wrong clock")
                    return nil
                }
                change.cells.append(CellChange(column: i, hlc: h, value: values[i]))
                clock.setCell(i, .init(hlc: h, origin: store.selfIndex))
            }
        }
        try store.clocks.store(t, key: key, clock, replacing: before != nil)
        return change
    }

    /// Turns the text and JSON cells of a sealed row change into edits of their merge states.
    private func sealMergeCells(_ t: TrackedTable, _ change: inout RowChange,
                                canonicalForms: inout [(key: [SQLValue], ordinal: Int, value: [UInt8])]) throws {
        if change.rowHLC != nil { try store.cellStates.drop(t, key: change.key) }
        let cells = CellMerger(store: store)
        for i in change.cells.indices where t.rule(change.cells[i].column) != .lww {
            let c = change.cells[i]
            let (payload, canonical) = try cells.seal(t, key: change.key, ordinal: c.column, value: c.value, hlc: c.hlc)
            if let payload {
                change.cells[i].merge = payload
                change.cells[i].value = .null
            }
            if let canonical { canonicalForms.append((change.key, c.column, canonical)) }
        }
    }

    /// The most bytes of freshly sealed batches a seal keeps in memory for the export that
    /// follows it; later batches are read back from history.
    static let keptBatchBytes = 16 << 20

    /// Signs the builder's rows as the next batch of this replica's history and stores it
    /// (or only advances the history's head over it). The summary carries the signed batch
    /// while `keptBytes` stays within ``keptBatchBytes``.
    private func sealBatch(_ builder: inout BatchBuilder, keepingHistory: Bool, keptBytes: inout Int) throws -> BatchSummary {
        try Home.ensureAtHome(store)
        builder.closeTable()
        let head = try store.replicas.head(of: store.selfIndex)
        var deps = try store.replicas.vector()
        deps[store.id] = 0
        let batch = Batch(origin: store.id, seq: head.seq + 1, previous: head.hash, dependencies: deps, tables: builder.tables)
        builder = BatchBuilder()
        let signed = try SignedBatch(batch: batch, identity: store.identity)
        if keepingHistory {
            try store.history.store(signed, batch: batch, origin: store.selfIndex, applied: true)
        } else {
            try store.history.recordFloor(origin: store.selfIndex, first: batch.seq, last: batch.seq, minimum: batch.hlcRange?.lowerBound ?? .zero)
            try store.replicas.advanceHead(origin: store.selfIndex, seq: batch.seq, hash: signed.hash)
        }
        progress?(ProgressEvent(phase: "sealing", kind: .detail("sealed batch \(batch.seq) (\(batch.rowCount) rows, \(signed.bytes.count) bytes)")))
        let keep = keepingHistory && keptBytes + signed.bytes.count <= Self.keptBatchBytes
        if keep { keptBytes += signed.bytes.count }
        return BatchSummary(origin: store.id, seq: batch.seq, hash: signed.hash, rows: batch.rowCount, cells: batch.cellCount,
                            signed: keep ? signed : nil)
    }
}
