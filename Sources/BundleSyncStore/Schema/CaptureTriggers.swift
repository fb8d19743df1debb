import BundleSyncCore

/// What one row of a table's capture log records.
///
/// An UPDATE names the columns it changed as a bitmask over a group of 62 columns: group g
/// covers the columns 62·g to 62·g + 61, and is logged with op `4 + g`, so a table of any
/// width records exactly which columns each write changed. A narrow table logs one row per
/// UPDATE, as before. Op 2 is the mask of earlier releases, in which column i used bit
/// i mod 62; log rows written by their triggers are still read that way.
package enum LogOp {
    case insert
    case delete
    /// The columns of `group` whose bits are set in the row's mask changed.
    case update(group: Int)
    /// Earlier releases' mask: column i changed when bit i mod 62 is set.
    case sharedBitsUpdate

    package static let insertCode: Int64 = 1
    package static let sharedBitsUpdateCode: Int64 = 2
    package static let deleteCode: Int64 = 3
    package static let firstGroupCode: Int64 = 4

    package init?(code: Int64) {
        switch code {
        case Self.insertCode: self = .insert
        case Self.sharedBitsUpdateCode: self = .sharedBitsUpdate
        case Self.deleteCode: self = .delete
        case Self.firstGroupCode...: self = .update(group: Int(code - Self.firstGroupCode))
        default: return nil
        }
    }

    /// The op code and mask that log a write to column `ordinal` alone.
    package static func update(ordinal: Int) -> (code: Int64, mask: Int64) {
        (firstGroupCode + Int64(ordinal / CaptureTriggers.maskBits), Int64(1) << Int64(ordinal % CaptureTriggers.maskBits))
    }

    /// Whether the logged write changed column `ordinal`.
    package func changes(_ ordinal: Int, mask: Int64) -> Bool {
        switch self {
        case .insert: true
        case .delete: false
        case .sharedBitsUpdate: mask & (Int64(1) << Int64(ordinal % CaptureTriggers.maskBits)) != 0
        case .update(let group):
            ordinal / CaptureTriggers.maskBits == group && mask & (Int64(1) << Int64(ordinal % CaptureTriggers.maskBits)) != 0
        }
    }
}

/// The capture triggers: plain built-in SQL, so any application on any connection, with no
/// extension loaded, has its writes recorded.
///
/// Each trigger appends rows to the table's log: the key, the operation, a bitmask of the
/// columns an UPDATE changed (see ``LogOp``), and the wall time in milliseconds. Sealing
/// later folds the log into clocks and batches. The triggers do nothing while
/// `_bundlesync_capture_off` holds a row, which bundlesync does only inside its own
/// transactions.
package enum CaptureTriggers {
    /// Columns per mask: an SQLite integer holds 63 bits besides its sign; 62 keep every
    /// mask positive.
    package static let maskBits = 62

    /// Wall time in milliseconds since the Unix epoch, in built-in SQL.
    ///
    /// > "The julianday() function returns the Julian day - the fractional number of days
    /// > since noon in Greenwich on November 24, 4714 B.C." (https://www.sqlite.org/lang_datefunc.html)
    /// 2440587.5 is the Julian day of 1970-01-01T00:00Z.
    package static let wallExpression = "CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"
    /// Capture is off for every table while `_bundlesync_capture_off` holds a row of zero or
    /// more (earlier releases wrote 1), and off for one table alone while it holds minus that
    /// table's id: what an application's trigger writes into another tracked table while an
    /// import writes this one is then captured as this replica's change.
    package static func enabledCondition(_ t: TrackedTable) -> String {
        "NOT EXISTS (SELECT 1 FROM _bundlesync_capture_off WHERE x >= 0 OR x = -\(t.id))"
    }
    package static let kinds = ["ins", "upd", "updkey", "del"]

    package static func dropSQL(_ t: TrackedTable) -> String {
        kinds.map { "DROP TRIGGER IF EXISTS \(Database.quote(Bookkeeping.trigger(t.id, $0)));" }.joined(separator: "\n")
    }

    package static func createSQL(_ t: TrackedTable) -> String {
        statements(t).map { $0.sql + ";" }.joined(separator: "\n")
    }

    /// Each trigger's name and its CREATE statement, as `sqlite_schema` keeps it.
    package static func statements(_ t: TrackedTable) -> [(name: String, sql: String)] {
        let log = Database.quote(t.logTable)
        let table = t.quotedTable
        let cols = "(\(t.keyNames.joined(separator: ", ")), op, mask, wall)"
        func keys(_ row: String) -> String { t.schema.keyColumns.map { "\(row).\(Database.quote($0))" }.joined(separator: ", ") }
        func differs(_ c: String) -> String {
            let q = Database.quote(c)
            return "(NEW.\(q) IS NOT OLD.\(q) COLLATE BINARY OR typeof(NEW.\(q)) != typeof(OLD.\(q)))"
        }
        let keyChanged = t.schema.keyColumns.map(differs).joined(separator: " OR ")
        // One mask per group of 62 columns; a group whose columns did not change logs nothing.
        let columns = t.sqlNames
        let groups = stride(from: 0, to: max(columns.count, 1), by: maskBits).enumerated().map { g, start -> String in
            let mask = columns.isEmpty ? "0" : columns[start..<min(start + maskBits, columns.count)].enumerated().map { i, c in
                "(CASE WHEN \(differs(c)) THEN \(Int64(1) << Int64(i)) ELSE 0 END)"
            }.joined(separator: " | ")
            return "SELECT \(LogOp.firstGroupCode + Int64(g)) AS g, \(mask) AS m"
        }.joined(separator: " UNION ALL ")
        let name = { (kind: String) in Database.quote(Bookkeeping.trigger(t.id, kind)) }
        return [
            (Bookkeeping.trigger(t.id, "ins"), """
            CREATE TRIGGER \(name("ins")) AFTER INSERT ON \(table) WHEN \(enabledCondition(t))
            BEGIN
              INSERT INTO \(log)\(cols) VALUES (\(keys("NEW")), \(LogOp.insertCode), -1, \(wallExpression));
            END
            """),
            (Bookkeeping.trigger(t.id, "upd"), """
            CREATE TRIGGER \(name("upd")) AFTER UPDATE ON \(table) WHEN \(enabledCondition(t)) AND NOT (\(keyChanged))
            BEGIN
              INSERT INTO \(log)\(cols) SELECT \(keys("NEW")), g, m, \(wallExpression) FROM (\(groups)) WHERE m != 0;
            END
            """),
            (Bookkeeping.trigger(t.id, "updkey"), """
            CREATE TRIGGER \(name("updkey")) AFTER UPDATE ON \(table) WHEN \(enabledCondition(t)) AND (\(keyChanged))
            BEGIN
              INSERT INTO \(log)\(cols) VALUES (\(keys("OLD")), \(LogOp.deleteCode), 0, \(wallExpression));
              INSERT INTO \(log)\(cols) VALUES (\(keys("NEW")), \(LogOp.insertCode), -1, \(wallExpression));
            END
            """),
            (Bookkeeping.trigger(t.id, "del"), """
            CREATE TRIGGER \(name("del")) AFTER DELETE ON \(table) WHEN \(enabledCondition(t))
            BEGIN
              INSERT INTO \(log)\(cols) VALUES (\(keys("OLD")), \(LogOp.deleteCode), 0, \(wallExpression));
            END
            """),
        ]
    }
}
