import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge

/// A table this replica syncs: its synced schema and where its bookkeeping lives.
///
/// Column ordinals are positions in `schema.columns`; they are local to this replica
/// (bundles name columns) and only ever grow, so clocks stored against them stay valid.
public struct TrackedTable: Sendable {
    public let id: Int64
    public var schema: TableSchema
    /// The declared collation of each key column, copied onto the clock and log tables so
    /// they match keys exactly as the user table does.
    package var keyCollations: [String]

    public var name: String { schema.name }
    package var clockTable: String { Bookkeeping.clockTable(id) }
    package var logTable: String { Bookkeeping.logTable(id) }
    /// The merge states of the table's text and JSON cells.
    package var mergeTable: String { Bookkeeping.mergeTable(id) }

    package func rule(_ ordinal: Int) -> ColumnRule { schema.columns[ordinal].rule }
    package var hasMergeColumns: Bool { schema.columns.contains { $0.rule != .lww } }

    package func ordinal(of column: String) -> Int? {
        schema.columns.firstIndex { $0.name == column }
    }

    // MARK: - SQL fragments

    package var quotedTable: String { Database.quote(name) }
    package var keyList: String { schema.keyColumns.map(Database.quote).joined(separator: ", ") }
    package var keyNames: [String] { (0..<schema.keyColumns.count).map { "k\($0)" } }
    package var keyMatch: String { schema.keyColumns.map { "\(Database.quote($0)) = ?" }.joined(separator: " AND ") }
    package var clockKeyMatch: String { keyNames.map { "\($0) = ?" }.joined(separator: " AND ") }
    package var keyColumnDefinitions: String {
        zip(keyNames, keyCollations).map { name, coll in
            coll.uppercased() == "BINARY" ? name : "\(name) COLLATE \(Database.quote(coll))"
        }.joined(separator: ", ")
    }

    package init(id: Int64, schema: TableSchema, keyCollations: [String]) {
        self.id = id
        self.schema = schema
        self.keyCollations = keyCollations
    }
}

/// Log operations written by the capture triggers.
package enum LogOp: Int64 {
    case insert = 1
    case update = 2
    case delete = 3
}

/// The capture triggers: plain built-in SQL, so any application on any connection, with no
/// extension loaded, has its writes recorded.
///
/// Each trigger appends one row to the table's log: the key, the operation, a bitmask of
/// the columns an UPDATE changed, and the wall time in milliseconds. Sealing later folds the
/// log into clocks and batches. The triggers do nothing while `_bundlesync_capture_off`
/// holds a row, which bundlesync does only inside its own import transactions.
package enum CaptureTriggers {
    /// Columns beyond this share mask bits (column i uses bit i mod 62): an UPDATE of one of
    /// them counts as a write to all columns sharing its bit.
    package static let maskBits = 62

    /// Wall time in milliseconds since the Unix epoch, in built-in SQL.
    ///
    /// > "The julianday() function returns the Julian day - the fractional number of days
    /// > since noon in Greenwich on November 24, 4714 B.C." (https://www.sqlite.org/lang_datefunc.html)
    /// 2440587.5 is the Julian day of 1970-01-01T00:00Z.
    package static let wallExpression = "CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"
    package static let enabledCondition = "NOT EXISTS (SELECT 1 FROM _bundlesync_capture_off)"

    package static func bit(forOrdinal i: Int) -> Int64 { Int64(1) << Int64(i % maskBits) }

    package static func dropSQL(_ t: TrackedTable) -> String {
        ["ins", "upd", "updkey", "del"].map { "DROP TRIGGER IF EXISTS \(Database.quote(Bookkeeping.trigger(t.id, $0)));" }.joined(separator: "\n")
    }

    package static func createSQL(_ t: TrackedTable) -> String {
        let log = Database.quote(t.logTable)
        let table = t.quotedTable
        let cols = "(\(t.keyNames.joined(separator: ", ")), op, mask, wall)"
        func keys(_ row: String) -> String { t.schema.keyColumns.map { "\(row).\(Database.quote($0))" }.joined(separator: ", ") }
        func differs(_ c: String) -> String {
            let q = Database.quote(c)
            return "(NEW.\(q) IS NOT OLD.\(q) COLLATE BINARY OR typeof(NEW.\(q)) != typeof(OLD.\(q)))"
        }
        let keyChanged = t.schema.keyColumns.map(differs).joined(separator: " OR ")
        let mask = t.schema.columns.isEmpty ? "0" : t.schema.columns.enumerated().map { i, c in
            "(CASE WHEN \(differs(c.name)) THEN \(bit(forOrdinal: i)) ELSE 0 END)"
        }.joined(separator: " | ")
        let name = { (kind: String) in Database.quote(Bookkeeping.trigger(t.id, kind)) }
        return """
        CREATE TRIGGER \(name("ins")) AFTER INSERT ON \(table) WHEN \(enabledCondition)
        BEGIN
          INSERT INTO \(log)\(cols) VALUES (\(keys("NEW")), \(LogOp.insert.rawValue), -1, \(wallExpression));
        END;
        CREATE TRIGGER \(name("upd")) AFTER UPDATE ON \(table) WHEN \(enabledCondition) AND NOT (\(keyChanged))
        BEGIN
          INSERT INTO \(log)\(cols) SELECT \(keys("NEW")), \(LogOp.update.rawValue), m, \(wallExpression) FROM (SELECT \(mask) AS m) WHERE m != 0;
        END;
        CREATE TRIGGER \(name("updkey")) AFTER UPDATE ON \(table) WHEN \(enabledCondition) AND (\(keyChanged))
        BEGIN
          INSERT INTO \(log)\(cols) VALUES (\(keys("OLD")), \(LogOp.delete.rawValue), 0, \(wallExpression));
          INSERT INTO \(log)\(cols) VALUES (\(keys("NEW")), \(LogOp.insert.rawValue), -1, \(wallExpression));
        END;
        CREATE TRIGGER \(name("del")) AFTER DELETE ON \(table) WHEN \(enabledCondition)
        BEGIN
          INSERT INTO \(log)\(cols) VALUES (\(keys("OLD")), \(LogOp.delete.rawValue), 0, \(wallExpression));
        END;
        """
    }
}
