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
        for (ordinal, column) in t.sqlNames.enumerated() {
            if (db.collation(table: schema.name, column: column) ?? "BINARY").uppercased() != "BINARY" { t.collatedColumns.insert(ordinal) }
            if Self.hasTypeAffinity(db.declaredType(table: schema.name, column: column)) { t.typedColumns.insert(ordinal) }
        }
        return t
    }

    /// Whether a column of this declared type has INTEGER, REAL, NUMERIC or TEXT affinity,
    /// under which SQLite never stores an integral REAL beside the INTEGER of the same value.
    ///
    /// > "If the declared type contains the string "BLOB" or if no type is specified then
    /// > the column has affinity BLOB." (https://www.sqlite.org/datatype3.html, 3.1)
    /// > "When a REAL is inserted into a NUMERIC column [...] if the value can be expressed
    /// > exactly as an integer, it is converted into an integer"; REAL affinity "forces
    /// > integer values into floating point representation"; TEXT affinity stores numbers as
    /// > text. ANY is left out: a STRICT table stores it as given.
    static func hasTypeAffinity(_ declared: String) -> Bool {
        let type = declared.uppercased()
        if type.isEmpty || type.contains("ANY") { return false }
        if ["INT", "CHAR", "CLOB", "TEXT"].contains(where: type.contains) { return true }
        return !type.contains("BLOB")
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
            \(Self.logTableSQL(t, name: t.logTable));
            """)
        try installTriggers(t)
        try db.run("""
            INSERT INTO \(Database.quote(t.logTable))(\(t.logColumns))
            SELECT \(t.keyList), \(LogOp.insertCode), \(CaptureTriggers.wallExpression) FROM \(t.quotedTable)
            """)
        let rows = db.changes
        try reload()
        return (tables[schema.name]!, rows)
    }

    /// The capture log of a table: a rowid table (the rowid orders the writes) of the key,
    /// the change (see ``LogOp``) and the wall time as a Julian day; narrow, since every
    /// captured write inserts a row, and without constraints, which SQLite would check and
    /// compile into every statement's triggers.
    static func logTableSQL(_ t: TrackedTable, name: String) -> String {
        "CREATE TABLE \(Database.quote(name))(\(t.keyColumnDefinitions), change, wall)"
    }

    /// Rewrites a log table of an earlier release (seq, key, op, mask, wall in milliseconds)
    /// in this release's layout, one row per changed column, in the same order. Must run
    /// while capture is held.
    ///
    /// - Returns: Whether the table had the earlier layout.
    package func upgradeLog(_ t: TrackedTable) throws -> Bool {
        guard try db.scalar("SELECT 1 FROM pragma_table_info(?) WHERE name = 'op'", [.text(t.logTable)]) != nil else { return false }
        let log = Database.quote(t.logTable), copy = "temp._bundlesync_upgraded_log"
        let keys = t.keyNames.joined(separator: ", ")
        let wall = "wall / 86400000.0 + 2440587.5"
        // Op 1 inserts, 3 deletes; 4 + g a mask over columns 62g to 62g + 61; 2 (older
        // releases) a mask in which column i used bit i mod 62. The rows are copied aside
        // rather than the table renamed, which would make SQLite check every view and
        // trigger of the application's schema.
        try db.execute("""
            DROP TABLE IF EXISTS \(copy);
            CREATE TEMP TABLE _bundlesync_upgraded_log AS
            WITH RECURSIVE o(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM o WHERE i < \(max(t.schema.columns.count - 1, 0)))
            SELECT \(keys), change, wall FROM (
              SELECT seq, -1 AS sub, \(keys), CASE op WHEN 1 THEN \(LogOp.insertCode) ELSE \(LogOp.deleteCode) END AS change, \(wall) AS wall
              FROM \(log) WHERE op IN (1, 3)
              UNION ALL
              SELECT seq, o.i AS sub, \(keys), o.i, \(wall) FROM \(log) JOIN o
              WHERE (op = 2 OR (op >= 4 AND o.i / 62 = op - 4)) AND (mask >> (o.i % 62)) & 1 = 1
            ) ORDER BY seq, sub;
            DROP TABLE \(log);
            \(Self.logTableSQL(t, name: t.logTable));
            INSERT INTO \(log)(\(t.logColumns)) SELECT \(keys), change, wall FROM \(copy) ORDER BY rowid;
            DROP TABLE \(copy);
            """)
        db.clearStatementCache()
        return true
    }

    /// Records a tracked table's new schema (columns added, rules changed) and reinstalls its
    /// capture triggers to match.
    package func update(_ t: TrackedTable, to schema: TableSchema) throws -> TrackedTable {
        try db.run("UPDATE _bundlesync_tables SET schema = ? WHERE id = ?", [.blob(schema.encoded), .integer(t.id)])
        try reload()
        let changed = tables[schema.name]!
        try installTriggers(changed)
        return changed
    }

    /// Installs a tracked table's capture triggers afresh.
    package func reinstallTriggers(_ t: TrackedTable) throws {
        try installTriggers(t)
        db.clearStatementCache()
    }

    /// Stops tracking a table: drops its capture triggers and its bookkeeping tables. The
    /// user's rows stay as they are.
    package func remove(_ t: TrackedTable) throws {
        try dropTriggers(t)
        for table in [t.clockTable, t.logTable, t.mergeTable] {
            try db.execute("DROP TABLE IF EXISTS \(Database.quote(table))")
        }
        try db.run("DELETE FROM _bundlesync_tables WHERE id = ?", [.integer(t.id)])
        try db.run("DELETE FROM _bundlesync_meta WHERE key = ?", [.text(Self.renamesKey(t.id))])
        try reload()
    }

    // MARK: - Capture triggers

    /// The capture triggers of tracked tables held off in the running transaction, by the
    /// table they are on, with the SQL that installs them again; nil while capture is on.
    private var held: [String: [(name: String, sql: String)]]?
    /// Tables among `held` whose triggers are installed again for now (``captureOn(exceptFor:)``).
    private var liveWhileHeld: Set<String> = []
    /// Whether the database holds triggers of the application's own, which could write to
    /// tracked tables while bundlesync writes one.
    private var applicationTriggers = false

    /// The capture triggers on `table` that exist, by name, with their SQL: every trigger
    /// whose name starts with bundlesync's prefix for the table's id.
    package func installedTriggers(_ t: TrackedTable) throws -> [String: String] {
        var out: [String: String] = [:]
        let prefix = CaptureTriggers.namePrefix(t.id)
        for row in try db.rows("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND substr(name, 1, length(?1)) = ?1", [.text(prefix)]) {
            if let name = row[0].string, let sql = row[1].string { out[name] = sql }
        }
        return out
    }

    /// Drops the triggers of `t` that exist now, and forgets any held for it.
    private func dropTriggers(_ t: TrackedTable) throws {
        for name in try installedTriggers(t).keys.sorted() { try db.execute("DROP TRIGGER IF EXISTS \(Database.quote(name))") }
        held?[t.name] = nil
        liveWhileHeld.remove(t.name)
    }

    /// Installs the capture triggers of `t` in place of those it has; while capture is held,
    /// they are installed when it resumes.
    private func installTriggers(_ t: TrackedTable) throws {
        let wasLive = liveWhileHeld.contains(t.name)
        try dropTriggers(t)
        let statements = CaptureTriggers.statements(t)
        if held != nil {
            held?[t.name] = statements
            guard wasLive else { return }
            liveWhileHeld.insert(t.name)
        }
        for s in statements { try db.execute(s.sql) }
    }

    /// Holds capture off for the write transaction that has just begun: drops every capture
    /// trigger, to be installed again by ``resumeCapture()`` before the transaction commits.
    /// Dropping a trigger is part of the transaction like any other write: if it rolls back,
    /// or the process dies before it commits, the triggers were never gone.
    package func holdCapture() throws {
        precondition(held == nil, "capture is already held")
        precondition(db.isInTransaction, "capture held outside a transaction")
        var out: [String: [(name: String, sql: String)]] = [:]
        applicationTriggers = false
        for row in try db.rows("SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY rowid") {
            guard let name = row[0].string, let table = row[1].string, let sql = row[2].string else { continue }
            if name.hasPrefix(Bookkeeping.prefix) {
                out[table, default: []].append((name, sql))
            } else {
                applicationTriggers = true
            }
        }
        for name in out.values.joined().map(\.name) { try db.execute("DROP TRIGGER \(Database.quote(name))") }
        held = out
        liveWhileHeld = []
    }

    /// While capture is held: installs the held triggers again on every table but `table`
    /// (nil: on none), so that what the application's own triggers write into other tracked
    /// tables while bundlesync writes `table` is captured. Without application triggers,
    /// nothing else can write while bundlesync does, and the triggers stay off.
    package func captureOn(exceptFor table: String?) throws {
        guard let held, applicationTriggers else { return }
        let wanted = table.map { t in Set(held.keys.filter { $0 != t }) } ?? []
        for name in liveWhileHeld.subtracting(wanted) {
            for trigger in held[name] ?? [] { try db.execute("DROP TRIGGER IF EXISTS \(Database.quote(trigger.name))") }
        }
        for name in wanted.subtracting(liveWhileHeld) {
            for trigger in held[name] ?? [] { try db.execute(trigger.sql) }
        }
        liveWhileHeld = wanted
    }

    /// Installs every held trigger again; the transaction may then commit.
    package func resumeCapture() throws {
        guard let held else { return }
        for (table, triggers) in held.sorted(by: { $0.key < $1.key }) where !liveWhileHeld.contains(table) {
            for trigger in triggers { try db.execute(trigger.sql) }
        }
        self.held = nil
        liveWhileHeld = []
    }

    /// After a rollback, which put the triggers back by itself.
    package func forgetHeldCapture() {
        held = nil
        liveWhileHeld = []
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
