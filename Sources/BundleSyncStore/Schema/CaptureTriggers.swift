import BundleSyncCore

/// What one row of a table's capture log records, from its `change` column.
///
/// Each log row is one write: the row's key, `change` (an insert, a delete, or the local
/// ordinal of the one column an UPDATE changed) and `wall`, the time of the write as a
/// Julian day. An UPDATE that changes several columns logs one row per column, in the same
/// statement and at the same time, so a table of any width records exactly which columns
/// each write changed.
package enum LogOp: Equatable {
    case insert
    case delete
    /// The column of this local ordinal changed.
    case update(ordinal: Int)

    package static let insertCode: Int64 = -1
    package static let deleteCode: Int64 = -2

    package init?(code: Int64) {
        switch code {
        case Self.insertCode: self = .insert
        case Self.deleteCode: self = .delete
        case 0...: self = .update(ordinal: Int(code))
        default: return nil
        }
    }

    package var code: Int64 {
        switch self {
        case .insert: Self.insertCode
        case .delete: Self.deleteCode
        case .update(let ordinal): Int64(ordinal)
        }
    }
}

/// The capture triggers: plain built-in SQL, so any application on any connection, with no
/// extension loaded, has its writes recorded.
///
/// SQLite compiles a statement's triggers each time it prepares the statement, so what the
/// triggers say is paid by every statement an application prepares (the `sqlite3` shell and
/// most scripts prepare each one afresh); they say as little as they can:
///
/// - no condition on whether capture is on: bundlesync's own transactions drop the triggers
///   when they begin and create them again before they commit (``TableCatalog/holdCapture()``),
///   so a crash or a rollback never leaves them missing;
/// - one trigger per synced column, `AFTER UPDATE OF` that column alone, so a statement
///   compiles only the triggers of the columns it sets; it logs only when the value changed,
///   compared byte for byte, and for columns without a type (where SQLite keeps 1 and 1.0
///   apart) by storage class too;
/// - the time as `julianday()`, converted to milliseconds when the log is sealed;
/// - a log table of the key, the change and the time, with SQLite's own rowid as its order.
package enum CaptureTriggers {
    /// The wall time of a write, in built-in SQL: a Julian day.
    ///
    /// > "The julianday() function returns the Julian day - the fractional number of days
    /// > since noon in Greenwich on November 24, 4714 B.C." "The first six date and time
    /// > functions take an optional time-value as an argument" (https://www.sqlite.org/lang_datefunc.html):
    /// without one, the time is now, with no 'now' to parse or compile.
    package static let wallExpression = "julianday()"
    /// The log's wall time in milliseconds since the Unix epoch, in SQL. 2440587.5 is the
    /// Julian day of 1970-01-01T00:00Z; SQLite keeps 'now' in whole milliseconds, so the
    /// round trip is exact.
    package static func wallMilliseconds(_ column: String) -> String {
        "CAST(round((\(column) - 2440587.5) * 86400000.0) AS INTEGER)"
    }

    /// The names of the capture triggers of table `id` start with this.
    package static func namePrefix(_ id: Int64) -> String { Bookkeeping.trigger(id, "") }

    /// Whether `names` (the bundlesync triggers present on a table) capture every write:
    /// this release's set, or the four triggers of earlier releases.
    package static func complete(_ names: Set<String>, for t: TrackedTable) -> Bool {
        Set(statements(t).map(\.name)).isSubset(of: names)
            || Set(["ins", "upd", "updkey", "del"].map { Bookkeeping.trigger(t.id, $0) }).isSubset(of: names)
    }

    package static func createSQL(_ t: TrackedTable) -> String {
        statements(t).map { $0.sql + ";" }.joined(separator: "\n")
    }

    /// Whether a write changed column `c`: by bytes (its declared collation aside), and by
    /// storage class where the column has no type, so 1 → 1.0 is a write there; -0.0 and 0.0
    /// are one value, as to SQLite.
    private static func differs(_ c: String, collated: Bool, typed: Bool) -> String {
        let q = Database.quote(c)
        let value = "NEW.\(q) IS NOT OLD.\(q)\(collated ? " COLLATE BINARY" : "")"
        return typed ? value : "(\(value) OR typeof(NEW.\(q)) != typeof(OLD.\(q)))"
    }

    /// Each trigger's name and its CREATE statement, as `sqlite_schema` keeps it.
    package static func statements(_ t: TrackedTable) -> [(name: String, sql: String)] {
        let log = Database.quote(t.logTable)
        let table = t.quotedTable
        func keys(_ row: String) -> String { t.schema.keyColumns.map { "\(row).\(Database.quote($0))" }.joined(separator: ", ") }
        func insert(_ row: String, _ change: Int64) -> String {
            "INSERT INTO \(log) VALUES (\(keys(row)), \(change), \(wallExpression));"
        }
        let keyChanged = t.schema.keyColumns.map { differs($0, collated: true, typed: false) }.joined(separator: " OR ")
        let name = { (kind: String) in Bookkeeping.trigger(t.id, kind) }
        var out = [
            (name("ins"), "CREATE TRIGGER \(Database.quote(name("ins"))) AFTER INSERT ON \(table) BEGIN \(insert("NEW", LogOp.insertCode)) END"),
            (name("del"), "CREATE TRIGGER \(Database.quote(name("del"))) AFTER DELETE ON \(table) BEGIN \(insert("OLD", LogOp.deleteCode)) END"),
            (name("key"), """
            CREATE TRIGGER \(Database.quote(name("key"))) AFTER UPDATE OF \(t.keyList) ON \(table) WHEN \(keyChanged) \
            BEGIN \(insert("OLD", LogOp.deleteCode)) \(insert("NEW", LogOp.insertCode)) END
            """),
        ]
        for (ordinal, column) in t.sqlNames.enumerated() {
            let kind = "c\(ordinal)"
            let check = differs(column, collated: t.columnCollated(ordinal), typed: t.columnTyped(ordinal))
            out.append((name(kind), """
            CREATE TRIGGER \(Database.quote(name(kind))) AFTER UPDATE OF \(Database.quote(column)) ON \(table) WHEN \(check) \
            BEGIN \(insert("NEW", Int64(ordinal))) END
            """))
        }
        return out
    }
}
