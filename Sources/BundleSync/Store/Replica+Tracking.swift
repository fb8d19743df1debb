/// What `track` reports besides success.
public struct TrackReport: Sendable {
    public var table: String
    public var newlyTracked: Bool
    public var addedColumns: [String]
    /// Columns whose merge rule changed.
    public var changedRules: [String]
    public var existingRows: Int
    public var warnings: [String]
}

extension Replica {
    // MARK: - Track

    /// Starts syncing `table`, or picks up columns added since it was tracked.
    ///
    /// Installs the capture triggers and the table's clock and log tables, and logs every
    /// existing row as this replica's insert, all in one transaction.
    ///
    /// - Parameters:
    ///   - rules: Merge rules for named columns; columns not named keep their rule (new
    ///     columns merge by last writer wins). Changing a column's rule seals pending changes
    ///     first, then derives each cell's new merge state from its value and clock.
    /// - Throws: `.usage` when the table is missing, has no primary key, is a bookkeeping
    ///   table, or has a constraint that merges cannot honour (SPEC §3.8).
    public func track(table: String, rules: [String: ColumnRule] = [:]) throws -> TrackReport {
        guard !table.hasPrefix(Bookkeeping.prefix) else {
            throw BundleSyncError.usage("'\(table)' is bundlesync's own bookkeeping and cannot be tracked")
        }
        guard case .text(let typeBytes)? = try db.scalar("SELECT type FROM sqlite_schema WHERE name = ? AND type IN ('table','view')", [.text(table)]),
              String(decoding: typeBytes, as: UTF8.self) == "table" else {
            throw BundleSyncError.usage("table '\(table)' does not exist in '\(db.path)'",
                                        hint: "create it first; bundlesync syncs existing tables")
        }
        if case .text(let sqlBytes)? = try db.scalar("SELECT sql FROM sqlite_schema WHERE name = ?", [.text(table)]),
           String(decoding: sqlBytes, as: UTF8.self).uppercased().hasPrefix("CREATE VIRTUAL") {
            throw BundleSyncError.usage("'\(table)' is a virtual table, which bundlesync cannot track")
        }

        // Columns and key, from SQLite's own description of the table.
        var keyed: [(pos: Int64, name: String)] = []
        var plain: [String] = []
        var declaredType: [String: String] = [:]
        for row in try db.rows("SELECT name, type, pk, hidden FROM pragma_table_xinfo(?)", [.text(table)]) {
            guard case .text(let n) = row[0] else { continue }
            let name = String(decoding: n, as: UTF8.self)
            if case .integer(let hidden) = row[3], hidden != 0 { continue } // generated columns are computed, not synced
            if case .text(let t) = row[1] { declaredType[name] = String(decoding: t, as: UTF8.self) }
            if case .integer(let pk) = row[2], pk > 0 { keyed.append((pk, name)) } else { plain.append(name) }
        }
        guard !keyed.isEmpty else {
            throw BundleSyncError.usage("table '\(table)' has no PRIMARY KEY",
                                        hint: "bundlesync identifies rows by primary key; add one (a random key such as a UUID is best)")
        }
        let keyColumns = keyed.sorted { $0.pos < $1.pos }.map(\.name)
        for name in rules.keys where !plain.contains(name) {
            throw BundleSyncError.usage("'\(table)' has no non-key column '\(name)'")
        }
        try refuseUnmergeableConstraints(table: table, keyColumns: keyColumns)

        var warnings: [String] = []
        if keyColumns.count == 1, declaredType[keyColumns[0]]?.uppercased() == "INTEGER" {
            let auto = db.isAutoincrement(table: table, column: keyColumns[0]) ? " AUTOINCREMENT" : ""
            warnings.append("'\(table)' is keyed by an auto-assigned INTEGER PRIMARY KEY\(auto): two devices that insert rows will pick the same keys, and the rows will overwrite each other\nhint: give new rows random keys, such as a UUID or randomblob(16), or keys that embed the device")
        }

        return try withoutCapture {
            if var existing = tables[table] {
                guard existing.schema.keyColumns == keyColumns else {
                    throw BundleSyncError.usage("the primary key of '\(table)' changed since it was tracked",
                                                hint: "bundlesync cannot follow a key change; sync a new table instead")
                }
                let known = Set(existing.schema.columns.map(\.name))
                for c in existing.schema.columns where !plain.contains(c.name) {
                    throw BundleSyncError.usage("column '\(c.name)' of '\(table)' was dropped, but it is synced",
                                                hint: "bundlesync cannot sync a dropped column; add it back")
                }
                let added = plain.filter { !known.contains($0) }
                var changedRules: [String] = []
                for (name, rule) in rules {
                    if let i = existing.ordinal(of: name), existing.schema.columns[i].rule != rule { changedRules.append(name) }
                }
                // Changes made under the old rules are sealed under them.
                if !changedRules.isEmpty { try sealPending() }
                for name in added { existing.schema.columns.append(.init(name: name, rule: rules[name] ?? .lww)) }
                for (name, rule) in rules {
                    if let i = existing.ordinal(of: name) { existing.schema.columns[i].rule = rule }
                }
                try db.run("UPDATE _bundlesync_tables SET schema = ? WHERE id = ?", [.blob(encode(existing.schema)), .integer(existing.id)])
                try db.execute(CaptureTriggers.dropSQL(existing))
                try db.execute(CaptureTriggers.createSQL(existing))
                db.clearStatementCache()
                try loadTables()
                let t = tables[table]!
                if t.hasMergeColumns || !changedRules.isEmpty { try createMergeTable(t) }
                for name in changedRules + added.filter({ t.rule(t.ordinal(of: $0)!) != .lww }) {
                    try seedCellStates(t, ordinal: t.ordinal(of: name)!)
                }
                return TrackReport(table: table, newlyTracked: false, addedColumns: added, changedRules: changedRules.sorted(),
                                   existingRows: 0, warnings: warnings)
            }

            let schema = TableSchema(name: table, keyColumns: keyColumns,
                                     columns: plain.map { .init(name: $0, rule: rules[$0] ?? .lww) })
            try db.run("INSERT INTO _bundlesync_tables(name, schema) VALUES (?, ?)", [.text(table), .blob(encode(schema))])
            guard case .integer(let id)? = try db.scalar("SELECT last_insert_rowid()") else {
                throw BundleSyncError.failure("cannot record table '\(table)'")
            }
            let collations = keyColumns.map { db.collation(table: table, column: $0) ?? "BINARY" }
            let t = TrackedTable(id: id, schema: schema, keyCollations: collations)
            try db.execute("""
                CREATE TABLE \(Database.quote(t.clockTable))(\(t.keyColumnDefinitions), cl INTEGER NOT NULL, hlc INTEGER NOT NULL, origin INTEGER NOT NULL, cells BLOB, PRIMARY KEY(\(t.keyNames.joined(separator: ", ")))) WITHOUT ROWID;
                CREATE TABLE \(Database.quote(t.logTable))(seq INTEGER PRIMARY KEY, \(t.keyColumnDefinitions), op INTEGER NOT NULL, mask INTEGER NOT NULL, wall INTEGER NOT NULL);
                """)
            try db.execute(CaptureTriggers.createSQL(t))
            if t.hasMergeColumns { try createMergeTable(t) }
            try db.run("""
                INSERT INTO \(Database.quote(t.logTable))(\(t.keyNames.joined(separator: ", ")), op, mask, wall)
                SELECT \(t.keyList), \(LogOp.insert.rawValue), -1, \(CaptureTriggers.wallExpression) FROM \(t.quotedTable)
                """)
            let rows = db.changes
            db.clearStatementCache()
            try loadTables()
            return TrackReport(table: table, newlyTracked: true, addedColumns: plain, changedRules: [], existingRows: rows, warnings: warnings)
        }
    }

    private func encode(_ schema: TableSchema) -> [UInt8] {
        var w = ByteWriter()
        schema.encode(into: &w)
        return w.bytes
    }

    /// Refuses a table whose secondary UNIQUE constraints could make a merge fail forever.
    ///
    /// Two replicas can insert rows with different keys and the same value in a UNIQUE
    /// column; no merge order can keep both, and rejecting one would diverge. Foreign keys
    /// are allowed: imports run with enforcement off, as SQLite's default connection does.
    private func refuseUnmergeableConstraints(table: String, keyColumns: [String]) throws {
        for row in try db.rows("SELECT name, origin FROM pragma_index_list(?) WHERE \"unique\" = 1", [.text(table)]) {
            guard case .text(let originBytes) = row[1], String(decoding: originBytes, as: UTF8.self) != "pk",
                  case .text(let nameBytes) = row[0] else { continue }
            let index = String(decoding: nameBytes, as: UTF8.self)
            let cols = try db.rows("SELECT name FROM pragma_index_info(?)", [.text(index)]).compactMap { r -> String? in
                if case .text(let b) = r[0] { return String(decoding: b, as: UTF8.self) }
                return nil
            }
            throw BundleSyncError.usage(
                "'\(table)' has a UNIQUE constraint on (\(cols.joined(separator: ", "))) besides its primary key, which sync cannot honour",
                hint: "two devices can insert the same value under different keys; make that column the primary key, or drop the UNIQUE constraint and check duplicates in the application")
        }
    }
}
