import BundleSyncCore

/// Writes merged rows into the user's tracked tables, and reads a row's current state for
/// sealing.
package final class RowWriter {
    private let db: Database
    private let texts: SQLTexts

    init(db: Database, texts: SQLTexts) {
        self.db = db
        self.texts = texts
    }

    package func replace(_ t: TrackedTable, key: [SQLValue], columns: [Int], values: [SQLValue]) throws {
        try run(.replaceRow, t, columns: columns, key, values)
    }

    package func update(_ t: TrackedTable, key: [SQLValue], columns: [Int], values: [SQLValue]) throws {
        if try !updateIfPresent(t, key: key, columns: columns, values: values) {
            // The clock says the row exists but the table lost it: restore what is known.
            try replace(t, key: key, columns: columns, values: values)
        }
    }

    /// Writes cells of a row only if the row is there; returns whether it was.
    package func updateIfPresent(_ t: TrackedTable, key: [SQLValue], columns: [Int], values: [SQLValue]) throws -> Bool {
        try run(.updateRow, t, columns: columns, values, key)
        return db.changes > 0
    }

    package func delete(_ t: TrackedTable, key: [SQLValue]) throws {
        try run(.deleteRow, t, columns: [], key, [])
    }

    /// Rewrites one cell with the value the replica settled on (canonical JSON).
    package func rewrite(_ t: TrackedTable, key: [SQLValue], ordinal: Int, value: SQLValue) throws {
        try run(.updateRow, t, columns: [ordinal], [value], key)
    }

    /// Runs a per-row statement, prepared once for the table and columns, with the
    /// `first` parameters then the `then` ones.
    private func run(_ kind: SQLTexts.Kind, _ t: TrackedTable, columns: [Int], _ first: [SQLValue], _ then: [SQLValue]) throws {
        let s = try texts.statement(kind, t, columns: columns, in: db)
        try s.bind(first)
        for (i, v) in then.enumerated() { try s.bind(v, at: Int32(first.count + i + 1)) }
        while try s.step() {}
    }

    /// A statement that reads whether one key's row exists, and its clock (cl, hlc, origin,
    /// cells; NULL without a clock row), without the row's columns: the key's index answers
    /// it, and a rowid table is not read.
    package func currentClockStatement(_ t: TrackedTable) throws -> Statement {
        let k = t.keyNames.enumerated().map { "?\($0.offset + 1) AS \($0.element)" }.joined(separator: ", ")
        let userMatch = zip(t.schema.keyColumns, t.keyNames).map { "u.\(Database.quote($0)) = k.\($1)" }.joined(separator: " AND ")
        let clockMatch = t.keyNames.map { "c.\($0) = k.\($0)" }.joined(separator: " AND ")
        let present = "CASE WHEN u.\(Database.quote(t.schema.keyColumns[0])) IS NULL THEN 0 ELSE 1 END"
        return try db.statement("""
            SELECT \(present), c.cl, c.hlc, c.origin, c.cells
            FROM (SELECT \(k)) k LEFT JOIN \(t.quotedTable) u ON \(userMatch) LEFT JOIN \(Database.quote(t.clockTable)) c ON \(clockMatch)
            """)
    }

    /// The keys of the rows of `t` that may hold a value, or a total, larger than a bundle
    /// carries (`limit` bytes for one value, `totalLimit` for a row), read in one pass over
    /// the table. A superset: SQLite counts text in characters, which take one to four
    /// bytes, so a row is listed when it could be too large; its values then decide.
    package func possiblyOversizedKeys(_ t: TrackedTable, limit: Int, totalLimit: Int) throws -> Set<[SQLValue]> {
        // A value is never larger than the database file that holds it; text stored as
        // UTF-16 takes at most half again as many bytes in UTF-8. A file below both limits
        // (with that margin) holds no row too large, and the pass over the table is spared.
        if case .integer(let pages)? = try db.scalar("PRAGMA page_count"), case .integer(let size)? = try db.scalar("PRAGMA page_size"),
           pages < Int64(Int32.max), size <= 65_536, pages * size * 2 < min(limit, totalLimit) {
            return []
        }
        let columns = t.schema.keyColumns + t.sqlNames
        // Numbers count as 9 bytes, as in a bundle, and are not turned into text to be measured.
        let lengths = columns.map { "iif(typeof(\(Database.quote($0))) IN ('text', 'blob'), length(\(Database.quote($0))), 0)" }
        let conditions = lengths.map { "\($0) > \(limit / 4)" } + ["\(lengths.joined(separator: " + ")) > \((totalLimit - 9 * columns.count) / 4)"]
        let s = try db.statement("SELECT \(t.keyList) FROM \(t.quotedTable) WHERE \(conditions.joined(separator: " OR "))")
        var out: Set<[SQLValue]> = []
        while try s.step() { out.insert((0..<t.schema.keyColumns.count).map { s.value($0) }) }
        return out
    }

    /// A statement that reads one key's current row and clock: whether the row exists, its
    /// clock (cl, hlc, origin, cells; NULL without a clock row), then its synced columns.
    package func currentStateStatement(_ t: TrackedTable) throws -> Statement {
        let k = t.keyNames.enumerated().map { "?\($0.offset + 1) AS \($0.element)" }.joined(separator: ", ")
        let userMatch = zip(t.schema.keyColumns, t.keyNames).map { "u.\(Database.quote($0)) = k.\($1)" }.joined(separator: " AND ")
        let clockMatch = t.keyNames.map { "c.\($0) = k.\($0)" }.joined(separator: " AND ")
        let present = "CASE WHEN u.\(Database.quote(t.schema.keyColumns[0])) IS NULL THEN 0 ELSE 1 END"
        let userColumns = t.sqlNames.map { ", u.\(Database.quote($0))" }.joined()
        return try db.statement("""
            SELECT \(present), c.cl, c.hlc, c.origin, c.cells\(userColumns)
            FROM (SELECT \(k)) k LEFT JOIN \(t.quotedTable) u ON \(userMatch) LEFT JOIN \(Database.quote(t.clockTable)) c ON \(clockMatch)
            """)
    }
}
