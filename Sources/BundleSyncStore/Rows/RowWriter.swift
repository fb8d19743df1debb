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
        try db.run(texts.text(.replaceRow, t, columns: columns), key + values)
    }

    package func update(_ t: TrackedTable, key: [SQLValue], columns: [Int], values: [SQLValue]) throws {
        try db.run(texts.text(.updateRow, t, columns: columns), values + key)
        if db.changes == 0 {
            // The clock says the row exists but the table lost it: restore what is known.
            try replace(t, key: key, columns: columns, values: values)
        }
    }

    package func delete(_ t: TrackedTable, key: [SQLValue]) throws {
        try db.run(texts.text(.deleteRow, t), key)
    }

    /// Rewrites one cell with the value the replica settled on (canonical JSON).
    package func rewrite(_ t: TrackedTable, key: [SQLValue], ordinal: Int, value: SQLValue) throws {
        try db.run(texts.text(.updateRow, t, columns: [ordinal]), [value] + key)
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
