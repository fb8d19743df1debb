import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge
import BundleSyncStore

/// The text and JSON cells of a replica: edits merged in on import, local writes turned into
/// edits when sealing, and starting states when a column's rule changes.
package struct CellMerger {
    package let store: ReplicaStore

    package init(store: ReplicaStore) {
        self.store = store
    }

    private var states: CellStateStore { store.cellStates }

    // MARK: - Merging

    /// Merges an incoming write to a text or JSON cell.
    ///
    /// The cell's clock orders whole-value writes against edits: the latest write decides
    /// whether the cell shows a whole value or its merged state. Edits always enter the
    /// state, whatever their time, because later edits refer to them.
    ///
    /// - Parameters:
    ///   - later: Whether the write is later than every write the cell held.
    ///   - fresh: Whether the row starts a new incarnation with this write.
    /// - Returns: The value the cell now shows, or nil when it does not change.
    ///   - hlc: The write's time: what its edit deletes counts as deleted then.
    ///   - adopting: Whether the payload is a whole state from a snapshot that reflects
    ///     everything this replica holds: it then replaces the cell's state, since its sender
    ///     may have collected tombstones this state still holds.
    package func merge(_ t: TrackedTable, key: [SQLValue], ordinal: Int, value: SQLValue, payload: MergePayload?,
                   hlc: HLC, later: Bool, fresh: Bool, adopting: Bool = false) throws -> SQLValue? {
        guard let payload else {
            guard later else { return nil }
            if !fresh { try states.markPlain(t, key: key, ordinal: ordinal) }
            return value
        }
        let rule = t.rule(ordinal)
        guard payload.rule == rule else {
            throw BundleSyncError.badData("the bundle holds a \(payload.rule) edit of column '\(shown(t.schema.columns[ordinal].name))' of '\(shown(t.name))', which merges by '\(rule)' here",
                                          hint: "run 'bundlesync track' with the same rules on every replica")
        }
        var (state, flags) = fresh ? (CellState.empty(rule), CellStateFlags.plainLatest)
            : try states.stateOrEmpty(t, key: key, ordinal: ordinal, unknownDeletionsAt: try store.clock.rawValue)
        let hadUnsent = state.hasUnsentDeletions
        var dropped: [CellState.Dropped] = []
        if adopting && !fresh {
            try state.adopt(payload.state, stamp: hlc.rawValue)
        } else {
            dropped = try state.merge(payload.state, stamp: hlc.rawValue)
        }
        if later {
            if payload.plain != nil { flags.insert(.plainLatest) } else { flags.remove(.plainLatest) }
        }
        if !dropped.isEmpty { try report(dropped, t, key: key, ordinal: ordinal) }
        if state.hasUnsentDeletions && !hadUnsent { try logChange(t, key: key, ordinal: ordinal) }
        state.collect(below: try store.stableTime())
        try states.store(t, key: key, ordinal: ordinal, state, flags)
        if flags.contains(.plainLatest) { return later ? payload.plain : nil }
        return state.value
    }

    // MARK: - Sealing

    /// Turns a local write to a text or JSON cell into an edit of its state.
    ///
    /// - Returns: The payload to send, or nil when the value is not text (or not JSON) and
    ///   travels as a whole value; and the canonical form to store when the application
    ///   wrote JSON in another form.
    package func seal(_ t: TrackedTable, key: [SQLValue], ordinal: Int, value: SQLValue, hlc: HLC) throws -> (MergePayload?, canonical: [UInt8]?) {
        let stored = try states.state(t, key: key, ordinal: ordinal, unknownDeletionsAt: try store.clock.rawValue)
        var (state, flags) = stored ?? (.empty(t.rule(ordinal)), .plainLatest)
        var delta: [UInt8]?
        var canonical: [UInt8]?
        if case .text(let bytes) = value, UTF8Scalars.isValid(bytes) {
            switch state {
            case .text(var s):
                delta = try s.edit(to: bytes, hlc: hlc.rawValue, replica: store.id).encoded()
                state = .text(s)
            case .json(var d):
                if let doc = JSONValue.parse(bytes) {
                    delta = try d.edit(to: doc, stamp: .init(hlc: hlc.rawValue, replica: store.id)).encoded()
                    state = .json(d)
                    let c = doc.canonical
                    if c != bytes { canonical = c }
                }
            }
        }
        guard let delta else {
            if stored != nil { try states.markPlain(t, key: key, ordinal: ordinal) }
            return (nil, nil)
        }
        let sent = flags.contains(.unsentSeed) ? state.encoded() : delta
        // The write is not held by any peer yet.
        store.lowerStableTime(to: hlc.rawValue)
        state.collect(below: try store.stableTime())
        try states.store(t, key: key, ordinal: ordinal, state, [])
        return (MergePayload(rule: t.rule(ordinal), state: sent, plain: nil), canonical)
    }

    // MARK: - Late writes

    /// Says what a merge dropped as written too late to be placed, so nothing is lost
    /// silently: the writer, the cell, and the text itself.
    private func report(_ dropped: [CellState.Dropped], _ t: TrackedTable, key: [SQLValue], ordinal: Int) throws {
        let column = shown(t.schema.columns[ordinal].name)
        let keyText = key.map(Sealer.literal).joined(separator: ", ")
        for d in dropped {
            let writer = try store.replicas.label(of: d.writer)
            if d.collectedElsewhere {
                let what = t.rule(ordinal) == .json ? "a value" : "text"
                store.lateWrites.append("""
                    column '\(column)' of the row (\(keyText)) of '\(shown(t.name))' still showed \(what) by replica \(writer) that another replica had deleted and forgotten, so this replica was not counted there; it is removed here too: \(shown(d.text))
                    hint: run 'bundlesync config DB fleet N' on every replica, N being how many replicas write (this happens when more write than declared)
                    """)
                continue
            }
            let what = t.rule(ordinal) == .json
                ? "set a value before it saw a removal there that the other replicas have since forgotten; the value is ignored on every replica"
                : "typed before it saw text deleted there that the other replicas have since forgotten; the edit cannot be placed and is dropped on every replica"
            store.lateWrites.append("""
                replica \(writer) wrote column '\(column)' of the row (\(keyText)) of '\(shown(t.name))' late: it \(what): \(shown(d.text))
                hint: write it again on any replica if it is still wanted
                """)
        }
    }

    /// Logs a write of the cell, so the next export sends the deletions of what was dropped
    /// to the replicas that placed it.
    private func logChange(_ t: TrackedTable, key: [SQLValue], ordinal: Int) throws {
        let keyCount = t.schema.keyColumns.count
        try store.db.run("INSERT INTO \(Database.quote(t.logTable))(\(t.logColumns)) VALUES (\(Array(repeating: "?", count: keyCount).joined(separator: ", ")), \(LogOp.update(ordinal: ordinal).code), \(CaptureTriggers.wallExpression))", key)
    }

    /// Collects every text and JSON cell of the replica (see ``ReplicaStore/stableTime()``).
    ///
    /// - Returns: How many cells shrank.
    @discardableResult
    package func collectAll() throws -> Int {
        let g = try store.stableTime()
        guard g > 0 else { return 0 }
        var shrunk = 0
        for t in store.catalog.tracked where t.hasMergeColumns {
            for (key, ordinal) in try states.cells(t) {
                guard var (state, flags) = try states.state(t, key: key, ordinal: ordinal, unknownDeletionsAt: try store.clock.rawValue) else { continue }
                if state.collect(below: g) {
                    try states.store(t, key: key, ordinal: ordinal, state, flags)
                    shrunk += 1
                }
            }
        }
        return shrunk
    }

    // MARK: - Rule changes

    /// Gives every present row a state for a column that now merges by `t.rule(ordinal)`,
    /// derived from its current value and cell clock alone, so replicas holding the same
    /// value derive the same state.
    ///
    /// The rule change counts as a write to every such cell: each is logged, so the next
    /// export sends its whole state. Every replica then holds every replica's starting state,
    /// and replicas that switched while holding different values still converge.
    package func seed(_ t: TrackedTable, ordinal: Int) throws {
        let db = store.db
        try states.dropColumn(t, ordinal: ordinal)
        let rule = t.rule(ordinal)
        guard rule != .lww else { return }
        let keyCount = t.schema.keyColumns.count
        let join = zip(t.schema.keyColumns, t.keyNames).map { "u.\(Database.quote($0)) = c.\($1)" }.joined(separator: " AND ")
        let s = try db.statement("""
            SELECT \(t.keyNames.map { "c.\($0)" }.joined(separator: ", ")), c.hlc, c.origin, c.cells, u.\(Database.quote(t.sqlName(ordinal)))
            FROM \(Database.quote(t.clockTable)) c JOIN \(t.quotedTable) u ON \(join) WHERE c.cl % 2 = 1
            """)
        defer { s.reset() }
        let logCells = "INSERT INTO \(Database.quote(t.logTable))(\(t.logColumns)) VALUES (\(Array(repeating: "?", count: keyCount).joined(separator: ", ")), \(LogOp.update(ordinal: ordinal).code), \(CaptureTriggers.wallExpression))"
        while try s.step() {
            let row = (0..<(keyCount + 4)).map { s.value($0) }
            let key = Array(row[0..<keyCount])
            guard case .integer(let h) = row[keyCount], case .integer(let origin) = row[keyCount + 1] else { continue }
            var overrides: [UInt8]?
            if case .blob(let b) = row[keyCount + 2] { overrides = b }
            let clock = try RowClock(causalLength: 1, row: .init(hlc: HLC(rawValue: UInt64(bitPattern: h)), origin: origin),
                                     packed: overrides)
            let stamp = clock.cell(ordinal)
            let writer = try store.replicas.id(at: stamp.origin)
            guard case .text(let bytes) = row[keyCount + 3], UTF8Scalars.isValid(bytes) else { continue }
            switch rule {
            case .text:
                try states.store(t, key: key, ordinal: ordinal, .text(.seed(bytes, hlc: stamp.hlc.rawValue, replica: writer)), .unsentSeed)
            case .json:
                guard let doc = JSONValue.parse(bytes) else { continue }
                let seeded = JSONDocument.seed(doc, stamp: .init(hlc: stamp.hlc.rawValue, replica: writer))
                try states.store(t, key: key, ordinal: ordinal, .json(seeded),
                                   doc.canonical == bytes ? .unsentSeed : [.unsentSeed, .plainLatest])
            case .lww:
                continue
            }
            try db.run(logCells, key)
        }
    }
}
