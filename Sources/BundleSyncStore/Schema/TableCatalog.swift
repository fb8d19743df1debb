import BundleSyncCore
import BundleSyncFormat

/// A user table as SQLite describes it: what `track` needs to sync it.
package struct TableShape: Sendable {
    package var keyColumns: [String]
    /// Non-key columns, generated columns left out (they are computed, not synced).
    package var columns: [String]
    package var declaredType: [String: String]
}

/// The tables this replica syncs (`_bundlesync_tables`) and their bookkeeping tables.
package final class TableCatalog {
    private let db: Database
    private let texts: SQLTexts
    private var tables: [String: TrackedTable] = [:]

    init(db: Database, texts: SQLTexts) throws {
        self.db = db
        self.texts = texts
        try reload()
        // The catalog mirrors `_bundlesync_tables`: a `track` or `untrack` that rolls back
        // must not leave its table described here.
        db.onRollback { [weak self] in try? self?.reload() }
    }

    /// Reads the tracked tables again (after `track` changed them).
    package func reload() throws {
        tables = [:]
        texts.removeAll()
        db.clearStatementCache()
        let s = try db.statement("SELECT id, schema FROM _bundlesync_tables")
        while try s.step() {
            let id = s.int(0)
            var r = ByteReader(s.bytes(1) ?? [])
            let schema = try TableSchema.decode(from: &r)
            tables[schema.name] = describe(id: id, schema: schema)
        }
    }

    /// A tracked table with what SQLite says of its key columns.
    private func describe(id: Int64, schema: TableSchema) -> TrackedTable {
        let collations = schema.keyColumns.map { db.collation(table: schema.name, column: $0) ?? "BINARY" }
        // > "If the declared type contains the string "BLOB" or if no type is specified then
        // > the column has affinity BLOB." (https://www.sqlite.org/datatype3.html, 3.1),
        // checked after INT, CHAR/CLOB/TEXT; REAL, FLOA and DOUB come after it.
        let keeps = schema.keyColumns.map { column -> Bool in
            let type = db.declaredType(table: schema.name, column: column).uppercased()
            if ["INT", "CHAR", "CLOB", "TEXT"].contains(where: type.contains) { return false }
            return type.isEmpty || type.contains("BLOB")
        }
        var t = TrackedTable(id: id, schema: schema, keyCollations: collations, keepsRealSpelling: keeps)
        if let bytes = try? db.scalar("SELECT value FROM _bundlesync_meta WHERE key = ?", [.text(Self.renamesKey(id))]),
           case .blob(let b) = bytes, var r = Optional(ByteReader(b)) {
            while !r.isAtEnd, let synced = try? r.string("synced name"), let local = try? r.string("local name") { t.renamed[synced] = local }
        }
        return t
    }

    private static func renamesKey(_ id: Int64) -> String { "renamed_columns:\(id)" }

    /// Records that synced column `synced` of `t` is called `local` in this replica's table.
    package func rename(_ t: TrackedTable, column synced: String, to local: String) throws -> TrackedTable {
        var renamed = t.renamed
        renamed[synced] = synced == local ? nil : local
        var w = ByteWriter()
        for (s, l) in renamed.sorted(by: { $0.key < $1.key }) {
            w.string(s)
            w.string(l)
        }
        try db.run("INSERT OR REPLACE INTO _bundlesync_meta(key, value) VALUES (?, ?)", [.text(Self.renamesKey(t.id)), .blob(w.bytes)])
        try reload()
        return tables[t.name]!
    }

    /// Every tracked table, in name order.
    package var tracked: [TrackedTable] { tables.values.sorted { $0.name < $1.name } }

    package subscript(name: String) -> TrackedTable? { tables[name] }

    /// The tracked table and the local column ordinals for a bundle section's columns.
    ///
    /// - Throws: `.badData` when the table or a column is not tracked here.
    package func resolve(_ table: String, columns: [String]) throws -> (TrackedTable, [Int]) {
        guard let t = tables[table] else {
            throw BundleSyncError.badData("table '\(shown(table))' is not tracked here")
        }
        let ordinals = try columns.map { name -> Int in
            guard let o = t.ordinal(of: name) else {
                throw BundleSyncError.badData("column '\(shown(name))' of '\(shown(t.name))' is not tracked here")
            }
            return o
        }
        return (t, ordinals)
    }

    // MARK: - Tracking

    /// How SQLite describes `table`, refusing what bundlesync cannot sync.
    ///
    /// - Throws: `.usage` when the table is missing, is a view or a virtual table, has no
    ///   primary key, is a bookkeeping table, or has a constraint that merges cannot honour
    ///   (SPEC §3.8).
    package func shape(of table: String) throws -> TableShape {
        guard !table.hasPrefix(Bookkeeping.prefix) else {
            throw BundleSyncError.usage("'\(shown(table))' is bundlesync's own bookkeeping and cannot be tracked")
        }
        guard !table.lowercased().hasPrefix("sqlite_") else {
            throw BundleSyncError.usage("'\(shown(table))' is SQLite's own internal table and cannot be tracked",
                                        hint: "track the application's tables; SQLite keeps '\(shown(table))' up to date by itself")
        }
        switch try db.scalar("SELECT type FROM sqlite_schema WHERE name = ? AND type IN ('table','view')", [.text(table)])?.string {
        case "table"?: break
        case "view"?:
            throw BundleSyncError.usage("'\(shown(table))' is a view, not a table",
                                        hint: "track the tables the view reads from; the view follows them")
        default:
            throw BundleSyncError.usage("table '\(shown(table))' does not exist in '\(db.path)'",
                                        hint: "create it first; bundlesync syncs existing tables")
        }
        if let sql = try db.scalar("SELECT sql FROM sqlite_schema WHERE name = ?", [.text(table)])?.string,
           sql.uppercased().hasPrefix("CREATE VIRTUAL") {
            throw BundleSyncError.usage("'\(shown(table))' is a virtual table, which bundlesync cannot track")
        }
        let shape = try columns(of: table)
        guard !shape.keyColumns.isEmpty else {
            throw BundleSyncError.usage("table '\(shown(table))' has no PRIMARY KEY",
                                        hint: "bundlesync identifies rows by primary key; add one (a random key such as a UUID is best)")
        }
        try refuseUnmergeableConstraints(table: table)
        try refuseAmbiguousKeys(table: table, keyColumns: shape.keyColumns)
        return shape
    }

    /// The key and other columns of an existing table, as SQLite describes it now.
    package func columns(of table: String) throws -> TableShape {
        var keyed: [(pos: Int64, name: String)] = []
        var shape = TableShape(keyColumns: [], columns: [], declaredType: [:])
        for row in try db.rows("SELECT name, type, pk, hidden FROM pragma_table_xinfo(?)", [.text(table)]) {
            guard let name = row[0].string else { continue }
            if let hidden = row[3].integer, hidden != 0 { continue }
            if let t = row[1].string { shape.declaredType[name] = t }
            if let pk = row[2].integer, pk > 0 { keyed.append((pk, name)) } else { shape.columns.append(name) }
        }
        shape.keyColumns = keyed.sorted { $0.pos < $1.pos }.map(\.name)
        return shape
    }

    /// Whether a table of this name exists.
    package func exists(_ table: String) throws -> Bool {
        try db.scalar("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", [.text(table)]) != nil
    }

    /// Whether `column` of `table` is an auto-assigned rowid key (INTEGER PRIMARY KEY).
    package func isAutoincrement(table: String, column: String) -> Bool {
        db.isAutoincrement(table: table, column: column)
    }

    /// Refuses a table whose secondary UNIQUE constraints could make a merge fail forever.
    ///
    /// Two replicas can insert rows with different keys and the same value in a UNIQUE
    /// column; no merge order can keep both, and rejecting one would diverge. Foreign keys
    /// are allowed: imports run with enforcement off.
    private func refuseUnmergeableConstraints(table: String) throws {
        for row in try db.rows("SELECT name, origin FROM pragma_index_list(?) WHERE \"unique\" = 1", [.text(table)]) {
            guard let origin = row[1].string, origin != "pk", let index = row[0].string else { continue }
            let cols = try db.rows("SELECT name FROM pragma_index_info(?)", [.text(index)]).compactMap { $0[0].string }
            throw BundleSyncError.usage(
                "'\(shown(table))' has a UNIQUE constraint on (\(cols.joined(separator: ", "))) besides its primary key, which sync cannot honour",
                hint: "two devices can insert the same value under different keys; make that column the primary key, or drop the UNIQUE constraint and check duplicates in the application")
        }
    }

    /// Refuses key columns whose collation makes SQLite treat keys with different bytes as
    /// the same key.
    ///
    /// Under NOCASE, 'abc' and 'ABC' are one key: two replicas that insert them would each
    /// keep their own spelling, and no merge could tell them apart.
    private func refuseAmbiguousKeys(table: String, keyColumns: [String]) throws {
        for column in keyColumns {
            let collation = db.collation(table: table, column: column) ?? "BINARY"
            guard collation.uppercased() == "BINARY" else {
                throw BundleSyncError.usage(
                    "key column '\(shown(column))' of '\(shown(table))' uses collation \(collation), under which keys with different bytes are the same key; replicas could not agree on their spelling",
                    hint: "declare the key column without a collation (COLLATE BINARY) and store keys in one canonical form, such as lower case")
            }
        }
    }

    /// Starts tracking a table: records its schema, creates its clock and log tables and its
    /// capture triggers, and logs every existing row as this replica's insert.
    ///
    /// - Returns: The tracked table and how many existing rows were logged.
    package func create(_ schema: TableSchema) throws -> (TrackedTable, existingRows: Int) {
        try db.run("INSERT INTO _bundlesync_tables(name, schema) VALUES (?, ?)", [.text(schema.name), .blob(schema.encoded)])
        guard case .integer(let id)? = try db.scalar("SELECT last_insert_rowid()") else {
            throw BundleSyncError.failure("cannot record table '\(schema.name)'")
        }
        let t = describe(id: id, schema: schema)
        try db.execute("""
            CREATE TABLE \(Database.quote(t.clockTable))(\(t.keyColumnDefinitions), cl INTEGER NOT NULL, hlc INTEGER NOT NULL, origin INTEGER NOT NULL, cells BLOB, PRIMARY KEY(\(t.keyNames.joined(separator: ", ")))) WITHOUT ROWID;
            CREATE TABLE \(Database.quote(t.logTable))(seq INTEGER PRIMARY KEY, \(t.keyColumnDefinitions), op INTEGER NOT NULL, mask INTEGER NOT NULL, wall INTEGER NOT NULL);
            """)
        try db.execute(CaptureTriggers.createSQL(t))
        try db.run("""
            INSERT INTO \(Database.quote(t.logTable))(\(t.keyNames.joined(separator: ", ")), op, mask, wall)
            SELECT \(t.keyList), \(LogOp.insertCode), -1, \(CaptureTriggers.wallExpression) FROM \(t.quotedTable)
            """)
        let rows = db.changes
        try reload()
        return (tables[schema.name]!, rows)
    }

    /// Records a tracked table's new schema (columns added, rules changed) and reinstalls its
    /// capture triggers to match.
    package func update(_ t: TrackedTable, to schema: TableSchema) throws -> TrackedTable {
        try db.run("UPDATE _bundlesync_tables SET schema = ? WHERE id = ?", [.blob(schema.encoded), .integer(t.id)])
        var changed = t
        changed.schema = schema
        try db.execute(CaptureTriggers.dropSQL(changed))
        try db.execute(CaptureTriggers.createSQL(changed))
        try reload()
        return tables[schema.name]!
    }

    /// Installs a tracked table's capture triggers afresh.
    package func reinstallTriggers(_ t: TrackedTable) throws {
        try db.execute(CaptureTriggers.dropSQL(t))
        try db.execute(CaptureTriggers.createSQL(t))
        db.clearStatementCache()
    }

    /// Stops tracking a table: drops its capture triggers and its bookkeeping tables. The
    /// user's rows stay as they are.
    package func remove(_ t: TrackedTable) throws {
        try db.execute(CaptureTriggers.dropSQL(t))
        for table in [t.clockTable, t.logTable, t.mergeTable] {
            try db.execute("DROP TABLE IF EXISTS \(Database.quote(table))")
        }
        try db.run("DELETE FROM _bundlesync_tables WHERE id = ?", [.integer(t.id)])
        try db.run("DELETE FROM _bundlesync_meta WHERE key = ?", [.text(Self.renamesKey(t.id))])
        try reload()
    }

    /// Local changes captured but not yet sealed into a batch, by table.
    package func pendingChanges() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for t in tracked {
            if case .integer(let n)? = try db.scalar("SELECT count(*) FROM \(Database.quote(t.logTable))"), n > 0 { out[t.name] = Int(n) }
        }
        return out
    }
}

extension TableSchema {
    /// The schema's canonical encoding, as `_bundlesync_tables` keeps it.
    package var encoded: [UInt8] {
        var w = ByteWriter()
        encode(into: &w)
        return w.bytes
    }
}
