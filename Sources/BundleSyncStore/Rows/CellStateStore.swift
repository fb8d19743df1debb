import BundleSyncCore
import BundleSyncMerge

/// The merge states of text and JSON cells (`_bundlesync_merge_N`), one per cell that has
/// one, with its ``CellStateFlags``.
package final class CellStateStore {
    private let db: Database
    private let texts: SQLTexts

    init(db: Database, texts: SQLTexts) {
        self.db = db
        self.texts = texts
    }

    package func createTable(_ t: TrackedTable) throws {
        try db.execute("""
            CREATE TABLE IF NOT EXISTS \(Database.quote(t.mergeTable))(\(t.keyColumnDefinitions), col INTEGER NOT NULL, flags INTEGER NOT NULL, state BLOB NOT NULL, PRIMARY KEY(\(t.keyNames.joined(separator: ", ")), col)) WITHOUT ROWID
            """)
    }

    /// The cell's stored state, if it has one. A cell without one has an empty state and a
    /// whole value as its latest write.
    ///
    /// - Parameter unknownDeletionsAt: For a state stored by an earlier release, which did not
    ///   keep when text was deleted: a time no earlier than any of its deletions.
    package func state(_ t: TrackedTable, key: [SQLValue], ordinal: Int,
                       unknownDeletionsAt: @autoclosure () throws -> UInt64) throws -> (CellState, CellStateFlags)? {
        guard let (bytes, flags) = try storedState(t, key: key, ordinal: ordinal) else { return nil }
        do {
            return (try CellState.decodeStored(t.rule(ordinal), bytes, unknownDeletionsAt: try unknownDeletionsAt()), flags)
        } catch {
            throw BundleSyncError(.failure, "the merge state of a '\(t.schema.columns[ordinal].name)' cell in '\(t.name)' is damaged",
                                  cause: .error("\(error)"), database: db.path)
        }
    }

    /// The cell's state encoded as a snapshot carries it (without what only this replica
    /// keeps), and its flags.
    package func encodedState(_ t: TrackedTable, key: [SQLValue], ordinal: Int) throws -> ([UInt8], CellStateFlags)? {
        guard let (bytes, flags) = try storedState(t, key: key, ordinal: ordinal) else { return nil }
        return (try CellState.wireBytes(ofStored: bytes), flags)
    }

    private func storedState(_ t: TrackedTable, key: [SQLValue], ordinal: Int) throws -> ([UInt8], CellStateFlags)? {
        let s = try db.statement(texts.text(.loadMerge, t))
        try s.bind(key + [.integer(Int64(ordinal))])
        defer { s.reset() }
        guard try s.step(), let bytes = s.bytes(1) else { return nil }
        return (bytes, CellStateFlags(rawValue: s.int(0)))
    }

    /// The cell's state, or the empty state of a cell whose latest write was a whole value.
    package func stateOrEmpty(_ t: TrackedTable, key: [SQLValue], ordinal: Int,
                              unknownDeletionsAt: @autoclosure () throws -> UInt64) throws -> (CellState, CellStateFlags) {
        try state(t, key: key, ordinal: ordinal, unknownDeletionsAt: try unknownDeletionsAt()) ?? (.empty(t.rule(ordinal)), .plainLatest)
    }

    package func store(_ t: TrackedTable, key: [SQLValue], ordinal: Int, _ state: CellState, _ flags: CellStateFlags) throws {
        try db.run(texts.text(.storeMerge, t), key + [.integer(Int64(ordinal)), .integer(flags.rawValue), .blob(state.storedEncoding())])
    }

    /// Records that the cell's latest write was a whole value.
    package func markPlain(_ t: TrackedTable, key: [SQLValue], ordinal: Int) throws {
        try db.run(texts.text(.markMergePlain, t), key + [.integer(Int64(ordinal))])
    }

    /// Forgets a row's merge states: the row was deleted or begins a new incarnation.
    package func drop(_ t: TrackedTable, key: [SQLValue]) throws {
        try db.run(texts.text(.dropMerge, t), key)
    }

    /// Every stored state of `t`: its key, column and flags, for collecting them all.
    package func cells(_ t: TrackedTable) throws -> [(key: [SQLValue], ordinal: Int)] {
        let keyCount = t.schema.keyColumns.count
        return try db.rows("SELECT \(t.keyNames.joined(separator: ", ")), col FROM \(Database.quote(t.mergeTable))").map { row in
            (Array(row[0..<keyCount]), Int(row[keyCount].integer ?? 0))
        }
    }

    /// Forgets every state of one column (its rule changed).
    package func dropColumn(_ t: TrackedTable, ordinal: Int) throws {
        try db.run("DELETE FROM \(Database.quote(t.mergeTable)) WHERE col = ?", [.integer(Int64(ordinal))])
    }
}
