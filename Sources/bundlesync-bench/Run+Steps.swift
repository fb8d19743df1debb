import BundleSync
import Foundation
import CSQLite

extension Run {
    // MARK: - Steps

    func createTables(_ path: String, rows: Bool) throws {
        let db = try RawDB(path)
        try db.exec("PRAGMA journal_mode=WAL")
        for t in TableSpec.all { try db.exec(t.createSQL) }
    }

    func buildBase(_ path: String) throws {
        try createTables(path, rows: true)
        let db = try RawDB(path)
        try db.exec("BEGIN")
        for t in 0..<2 {
            let s = try db.prepare(TableSpec.all[t].insertSQL)
            for i in 0..<w.count(table: t) {
                sqlite3Reset(s)
                db.bind(s, w.row(table: t, i))
                try db.step(s)
            }
        }
        try db.exec("COMMIT")
        try db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
    }

    func checkpoint(_ r: Replica) throws {
        let rows = try r.db.rows("PRAGMA wal_checkpoint(TRUNCATE)")
        guard case .integer(0)? = rows.first?.first else { throw BenchError("could not checkpoint \(r.db.path)") }
    }

    struct Bookkeeping {
        var bookkeeping = 0
        var user = 0
        var byTable: [String: Int] = [:]
        var free = 0
        var file = 0
    }

    func bookkeeping(_ path: String) throws -> Bookkeeping {
        var out = Bookkeeping()
        let db = try RawDB(path)
        out.byTable = try db.bytesByTable()
        out.free = Int(try db.int("PRAGMA freelist_count") * db.int("PRAGMA page_size"))
        out.file = Int(try db.int("PRAGMA page_count") * db.int("PRAGMA page_size"))
        let user = Set(TableSpec.all.map(\.name))
        for (name, bytes) in out.byTable {
            if name.hasPrefix("_bundlesync_") { out.bookkeeping += bytes } else if user.contains(name) { out.user += bytes }
        }
        return out
    }

    /// Figure 8c: the bookkeeping of a narrow table, `t(id TEXT PRIMARY KEY, c1, c2, c3, c4)`
    /// with 16-character keys and small values, as many rows as the main workload, after
    /// track and the first full export. A clock per row weighs most against narrow rows.
    func narrowBookkeepingFigure(rows: Int) throws -> Figure {
        let path = file("fig8c-narrow.db")
        do {
            let db = try RawDB(path)
            try db.exec("""
                CREATE TABLE t(id TEXT PRIMARY KEY, c1, c2, c3, c4);
                WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < \(rows))
                INSERT INTO t SELECT printf('%08x%08x', (i * 2654435761) % 4294967296, i), (i * 7919) % 1000,
                                     'name ' || (i % 977), ((i * 104729) % 100000) / 100.0, i % 2 FROM s;
                """)
        }
        let r = try Replica.initialize(path: path, name: "bench-narrow").0
        _ = try r.track(table: "t")
        _ = try r.export(to: file("fig8c-narrow.bsync"), target: .full)
        try checkpoint(r)
        let byTable = try RawDB(path).bytesByTable()
        let kept = byTable.filter { $0.key.hasPrefix("_bundlesync_") }.values.reduce(0, +)
        let user = byTable["t"] ?? 0 // with its key index
        sizes.append(("figure 8c bookkeeping", byTable.filter { $0.key.hasPrefix("_bundlesync_") && $0.value > 8192 }.sorted { $0.value > $1.value }
            .map { "\($0.key) \(mib($0.value))" }.joined(separator: ", ") + "; user: t with its key index \(mib(user)); per row: bookkeeping \(kept / max(rows, 1)) B, user \(user / max(rows, 1)) B"))
        for suffix in ["", "-wal", "-shm", "-bundlesync"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let ratio = Double(kept) / Double(user)
        return Figure(number: "8c", name: "bookkeeping on disk, narrow rows (t(id TEXT PRIMARY KEY, c1..c4)), after the first full export",
                      bundlesync: mib(kept) + " (_bundlesync_*)", baseline: mib(user) + " (t + its key index)",
                      ratio: ratioText(ratio), target: "≤ 0.3×", meets: meets(ratio <= 0.3))
    }

    func breakdown(_ bk: Bookkeeping) -> String {
        bk.byTable.filter { $0.key.hasPrefix("_bundlesync_") && $0.value > 8192 }.sorted { $0.value > $1.value }
            .map { "\($0.key) \(mib($0.value))" }.joined(separator: ", ")
            + "; user: " + TableSpec.all.map { "\($0.name) \(mib(bk.byTable[$0.name] ?? 0))" }.joined(separator: ", ")
            + "; free pages \(mib(bk.free)); database \(mib(bk.file))"
    }

    /// Figure 1f: the part of an import that is SQLite's alone, through its C API, on a copy
    /// of B as the import found it (capture triggers dropped first, as an import writes
    /// with capture off). For every changed row, in key order, as merging does: its clock
    /// row is read; the row is written (the columns an update changed, a new row whole) or
    /// deleted; the clock row is written back (a new one where the key has none). Nothing
    /// is decoded, verified or compared. Returns the seconds.
    func importFloor(_ path: String, _ ops: [Op]) throws -> Double {
        let db = try RawDB(path)
        try db.exec("PRAGMA synchronous=FULL")
        for row in try db.rows("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '\\_bundlesync\\_%' ESCAPE '\\'") {
            if case .text(let n) = row[0] { try db.exec("DROP TRIGGER \"\(String(decoding: n, as: UTF8.self))\"") }
        }
        let sorted = ops.sorted { $0.table != $1.table ? $0.table < $1.table : Self.precedes($0.key, $1.key) }
        let clocks = try TableSpec.all.map { try ClockSQL(db, $0) }
        // Every statement is prepared (RawDB keeps one per text), and picked for its change,
        // before the clock starts: bundlesync keeps its own statements prepared.
        let writes = try sorted.map { op -> (Op, OpaquePointer) in
            let spec = TableSpec.all[op.table]
            let sql = switch op.kind {
            case .insert: spec.insertSQL.replacingOccurrences(of: "INSERT INTO", with: "INSERT OR REPLACE INTO")
            case .update: spec.updateSQL(columns: op.columns)
            case .delete: spec.deleteSQL
            }
            return (op, try db.prepare(sql))
        }
        let t0 = now()
        try db.exec("BEGIN IMMEDIATE")
        for (op, write) in writes {
            let clock = clocks[op.table]
            let before = try clock.load(op.key)
            sqlite3_reset(write)
            switch op.kind {
            case .insert: db.bind(write, op.key + op.values)
            case .update: db.bind(write, op.values + op.key)
            case .delete: db.bind(write, op.key)
            }
            try db.step(write)
            try clock.write(op.key, before: before, deleted: op.kind == .delete)
        }
        try db.exec("COMMIT")
        return now() - t0
    }

    /// Key order as SQLite sorts these keys: integers before text, text by its bytes.
    static func precedes(_ a: [SQLValue], _ b: [SQLValue]) -> Bool {
        for (x, y) in zip(a, b) {
            switch (x, y) {
            case (.integer(let p), .integer(let q)) where p != q: return p < q
            case (.text(let p), .text(let q)) where p != q: return p.lexicographicallyPrecedes(q)
            case (.integer, .text): return true
            case (.text, .integer): return false
            default: continue
            }
        }
        return false
    }

    /// Figure 2f: the part of an export that is SQLite's alone, through its C API with
    /// nothing of bundlesync's around it, as sealing runs it: the capture log read in key
    /// order; for every key in it, one statement reading the row with its clock row, and
    /// the clock row written back (a new one where the key has none); the log deleted, and
    /// a batch of `historyBytes` stored. Nothing is folded, encoded, hashed, signed or
    /// compressed. Runs on a copy of A as the export found it; returns the seconds.
    func exportFloor(_ path: String, historyBytes: Int) throws -> Double {
        let db = try RawDB(path)
        try db.exec("CREATE TABLE floor_history(batch BLOB NOT NULL)")
        let t0 = now()
        try db.exec("BEGIN IMMEDIATE")
        for t in 0..<2 {
            let spec = TableSpec.all[t]
            let clock = try ClockSQL(db, spec)
            let n = Int32(spec.keyColumns.count)
            let keys = (0..<n).map { "k\($0)" }.joined(separator: ", ")
            let log = try db.prepare("SELECT rowid, \(keys), change, wall FROM \(clock.log) ORDER BY \(keys), rowid")
            var last: [SQLValue] = []
            var through: Int64 = 0
            while try db.step(log) {
                through = max(through, sqlite3_column_int64(log, 0))
                _ = (sqlite3_column_int64(log, n + 1), sqlite3_column_double(log, n + 2))
                guard !db.matches(log, last, from: 1) else { continue }
                last = (1...n).map { db.value(log, $0) }
                guard let before = try clock.read(last) else { continue }
                try clock.write(last, before: before, deleted: false)
            }
            try db.run("DELETE FROM \(clock.log) WHERE rowid <= ?", [.integer(through)])
        }
        try db.run("INSERT INTO floor_history(batch) VALUES (zeroblob(?))", [.integer(Int64(historyBytes))])
        try db.exec("COMMIT")
        return now() - t0
    }

    /// The statements of figures 1f and 2f on one table's clock rows, shaped as
    /// bundlesync's own: a clock read alone, or with its row by one statement; a clock
    /// written by an UPDATE of its row or an INSERT of a new one.
    ///
    /// A read is reset as soon as its row is taken, as bundlesync's are: a statement left on
    /// a row keeps its read transaction open past COMMIT, and the checkpoint that a commit
    /// over 1,000 WAL pages runs (`PRAGMA wal_autocheckpoint`) then does nothing until the
    /// connection closes, outside the time measured.
    struct ClockSQL {
        let db: RawDB
        let read, loadClock, update, insert: OpaquePointer
        let width: Int32
        /// The table's capture log.
        let log: String

        init(_ db: RawDB, _ spec: TableSpec) throws {
            self.db = db
            let id = try db.int("SELECT id FROM _bundlesync_tables WHERE name = '\(spec.name)'")
            let clock = "_bundlesync_clock_\(id)"
            log = "_bundlesync_log_\(id)"
            let k = spec.keyColumns.indices.map { "k\($0)" }
            let given = k.enumerated().map { "?\($0.offset + 1) AS \($0.element)" }.joined(separator: ", ")
            let userMatch = zip(spec.keyColumns, k).map { "u.\($0) = g.\($1)" }.joined(separator: " AND ")
            let clockMatch = k.map { "c.\($0) = g.\($0)" }.joined(separator: " AND ")
            read = try db.prepare("""
                SELECT c.cl, c.hlc, c.origin, c.cells\(spec.columns.map { ", u.\($0)" }.joined())
                FROM (SELECT \(given)) g LEFT JOIN \(spec.name) u ON \(userMatch) LEFT JOIN \(clock) c ON \(clockMatch)
                """)
            let n = k.count
            loadClock = try db.prepare("SELECT cl, hlc, origin, cells FROM \(clock) WHERE \(k.enumerated().map { "\($0.element) = ?\($0.offset + 1)" }.joined(separator: " AND "))")
            update = try db.prepare("UPDATE \(clock) SET cl = ?\(n + 1), hlc = ?\(n + 2), origin = ?\(n + 3), cells = ?\(n + 4) WHERE \(k.enumerated().map { "\($0.element) = ?\($0.offset + 1)" }.joined(separator: " AND "))")
            insert = try db.prepare("INSERT INTO \(clock)(\(k.joined(separator: ", ")), cl, hlc, origin, cells) VALUES (\(Array(repeating: "?", count: n + 4).joined(separator: ", ")))")
            width = Int32(4 + spec.columns.count)
        }

        /// The row's clock columns and values, as read (the clock columns NULL where the key
        /// has no clock row); nil if the statement returned nothing.
        func read(_ key: [SQLValue]) throws -> [SQLValue]? {
            sqlite3_reset(read)
            db.bind(read, key)
            guard try db.step(read) else { return nil }
            defer { sqlite3_reset(read) }
            return (0..<width).map { db.value(read, $0) }
        }

        /// The clock columns of the key's clock row, NULL where it has none.
        func load(_ key: [SQLValue]) throws -> [SQLValue] {
            sqlite3_reset(loadClock)
            db.bind(loadClock, key)
            guard try db.step(loadClock) else { return [.null, .null, .null, .null] }
            defer { sqlite3_reset(loadClock) }
            return (0..<4).map { db.value(loadClock, $0) }
        }

        func write(_ key: [SQLValue], before: [SQLValue], deleted: Bool) throws {
            let write = before[0] == .null ? insert : update
            sqlite3_reset(write)
            var length: Int64 = if case .integer(let cl) = before[0] { cl } else { 0 }
            if deleted ? length % 2 == 1 : length % 2 == 0 { length += 1 }
            let stamp: Int64 = if case .integer(let h) = before[1] { h + 1 } else { 1 }
            db.bind(write, key + [.integer(length), .integer(stamp), .integer(1), before[3]])
            try db.step(write)
        }
    }

    /// Reads every touched row by primary key (prepared SELECT, one read transaction);
    /// returns the rows found, per table.
    func readByKey(_ path: String, _ keys: [[[SQLValue]]]) throws -> [[[SQLValue]]] {
        let db = try RawDB(path)
        var out: [[[SQLValue]]] = [[], []]
        try db.exec("BEGIN")
        for t in 0..<2 {
            let spec = TableSpec.all[t]
            let s = try db.prepare(spec.selectByKeySQL)
            let n = Int32(spec.allColumns.count)
            for key in keys[t] {
                sqlite3Reset(s)
                db.bind(s, key)
                if try db.step(s) { out[t].append((0..<n).map { db.value(s, $0) }) }
            }
        }
        try db.exec("COMMIT")
        return out
    }

    /// The import baseline: upserts the after-images and deletes the deleted keys with
    /// prepared statements in one transaction. Returns the seconds taken.
    func bulkUpsert(_ path: String, _ rows: [[[SQLValue]]], deleted: [[[SQLValue]]]) throws -> Double {
        let db = try RawDB(path)
        try db.exec("PRAGMA synchronous=FULL")
        let t0 = now()
        try db.exec("BEGIN IMMEDIATE")
        for t in 0..<2 {
            let spec = TableSpec.all[t]
            let up = try db.prepare(spec.upsertSQL)
            for row in rows[t] {
                sqlite3Reset(up)
                db.bind(up, row)
                try db.step(up)
            }
            let del = try db.prepare(spec.deleteSQL)
            for key in deleted[t] {
                sqlite3Reset(del)
                db.bind(del, key)
                try db.step(del)
            }
        }
        try db.exec("COMMIT")
        return now() - t0
    }

    /// Whether two databases hold the same rows in the user tables (both read in key order).
    func sameUserData(_ p1: String, _ p2: String) throws -> Bool {
        let d1 = try RawDB(p1), d2 = try RawDB(p2)
        for t in TableSpec.all {
            let sql = "SELECT \(t.allColumns.joined(separator: ", ")) FROM \(t.name) ORDER BY \(t.keyColumns.joined(separator: ", "))"
            let s1 = try d1.prepare(sql), s2 = try d2.prepare(sql)
            let n = Int32(t.allColumns.count)
            while true {
                let more1 = try d1.step(s1), more2 = try d2.step(s2)
                guard more1 == more2 else { return false }
                if !more1 { break }
                for i in 0..<n where d1.value(s1, i) != d2.value(s2, i) { return false }
            }
        }
        return true
    }

    func logRows(_ path: String) throws -> Int {
        let db = try RawDB(path)
        var total = 0
        for row in try db.rows("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE '\\_bundlesync\\_log\\_%' ESCAPE '\\'") {
            if case .text(let n) = row[0] { total += Int(try db.int("SELECT count(*) FROM \"\(String(decoding: n, as: UTF8.self))\"")) }
        }
        return total
    }

    /// Figure 6: on a copy of A after its full export (a peer holds everything), the
    /// application changes 1% or 100% of the rows (two cells each); then export what that
    /// peer lacks. Returns the rows changed and the export's seconds.
    func exportAfterChange(_ path: String, everyRow: Bool, name: String) throws -> (Int, Double) {
        let r = try Replica.open(path: path)
        try r.reidentify(moved: true) // a copy of A's file, standing in for A
        let peerHolds = try r.vector()
        let app = try RawDB(path)
        var changed = 0
        try app.exec("BEGIN")
        try app.exec("UPDATE items SET n = n + 1, r = r + 0.5" + (everyRow ? "" : " WHERE rowid % 100 = 0"))
        changed += app.changes
        try app.exec("UPDATE events SET v = v + 1, note = coalesce(note, '') || '!'" + (everyRow ? "" : " WHERE seq % 100 = 0"))
        changed += app.changes
        try app.exec("COMMIT")
        let (res, t) = try timed { try r.export(to: file(name), target: .vector(peerHolds)) }
        guard !res.snapshot, res.rows == changed else {
            throw BenchError("figure 6 export carried \(res.rows) rows (snapshot: \(res.snapshot)), expected \(changed)")
        }
        log("  \(grouped(changed)) rows changed; export \(fixed(t, 3)) s, \(res.batches) batches, \(grouped(res.bytes)) bytes")
        return (changed, t)
    }

    func sqliteDefaultCacheKiB(_ path: String) throws -> Int {
        let v = try RawDB(path).int("PRAGMA cache_size")
        return v < 0 ? Int(-v) : Int(v) * 4
    }

    // MARK: - Figure 7

    func bigBundleFigure(megabytes: Int, cacheKiB: Int) throws -> Figure {
        let name = "peak memory importing a ~\(megabytes >= 1024 ? "\(megabytes / 1024) GB" : "\(megabytes) MB") bundle"
        guard let cli = bundlesyncBinary() else {
            notes.append("Figure 7: the bundlesync binary was not found next to bundlesync-bench; build it with 'swift build -c release'.")
            return Figure(number: "7", name: name, bundlesync: "skipped (bundlesync binary not found)", baseline: "—", ratio: "—",
                          target: "≤ 64 MiB beyond SQLite's cache", meets: "—")
        }
        let srcPath = file("big-source.db"), dstPath = file("big-target.db"), bundle = file("big.bsync")
        let blobBytes = 24 * 1024
        let rows = max(1, megabytes * 1_000_000 / (blobBytes + 60))
        try step("figure 7: build \(grouped(rows)) rows of 24 KiB random blobs") {
            let db = try RawDB(srcPath)
            try db.exec("PRAGMA journal_mode=WAL")
            try db.exec("CREATE TABLE blobs(id TEXT PRIMARY KEY, label TEXT, body BLOB)")
            var rng = SplitMix64(seed: mix64(o.seed ^ 0xB16))
            let s = try db.prepare("INSERT INTO blobs(id, label, body) VALUES (?, ?, ?)")
            try db.exec("BEGIN")
            for i in 0..<rows {
                sqlite3Reset(s)
                db.bind(s, [w.itemKey(i), .text("blob \(i) of \(rows)"), .blob(rng.bytes(blobBytes))])
                try db.step(s)
                if i % 1000 == 999 { try db.exec("COMMIT; BEGIN") }
            }
            try db.exec("COMMIT")
            try db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        let exported = try step("figure 7: track and export the big replica in full") { () -> ExportResult in
            let r = try Replica.initialize(path: srcPath, name: "bench-big").0
            _ = try r.track(table: "blobs")
            return try r.export(to: bundle, target: .full)
        }
        try? FileManager.default.removeItem(atPath: srcPath)
        try? FileManager.default.removeItem(atPath: srcPath + "-wal")
        do {
            let db = try RawDB(dstPath)
            try db.exec("PRAGMA journal_mode=WAL")
            try db.exec("CREATE TABLE blobs(id TEXT PRIMARY KEY, label TEXT, body BLOB)")
        }
        let target = try Replica.initialize(path: dstPath, name: "bench-big-target").0
        _ = try target.track(table: "blobs")
        try checkpoint(target)
        let idle = try step("figure 7: peak RSS of 'bundlesync status' (an idle process, for reference)") {
            try peakRSS(cli, ["status", dstPath])
        }
        let peak = try step("figure 7: 'bundlesync import' of the \(mib(exported.bytes)) bundle in a child under /usr/bin/time") {
            try peakRSS(cli, ["import", dstPath, bundle])
        }
        let imported = try RawDB(dstPath).int("SELECT count(*) FROM blobs")
        guard imported == Int64(rows) else { throw BenchError("the child imported \(imported) of \(rows) rows") }
        let beyond = peak - cacheKiB * 1024
        sizes.append(("figure 7 bundle", "\(grouped(exported.rows)) rows, \(bytesText(exported.bytes)); child peak RSS \(mib(peak)), idle 'status' \(mib(idle))"))
        if megabytes < 1024 { notes.append("Figure 7 ran with a \(megabytes) MB bundle; the SPEC figure is for 1 GB (--big-bundle-mb 1024).") }
        return Figure(number: "7", name: name,
                      bundlesync: "\(mib(peak)) peak RSS", baseline: "SQLite cache \(mib(cacheKiB * 1024)); idle process \(mib(idle))",
                      ratio: "\(mib(beyond)) beyond cache", target: "≤ 64 MiB beyond SQLite's cache", meets: meets(beyond <= 64 << 20))
    }

    func bundlesyncBinary() -> String? {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let p = PathText.join(PathText.directory(of: exe), "bundlesync")
        return FileManager.default.isExecutableFile(atPath: p) ? p : nil
    }

    /// Runs the CLI in a child under GNU time and returns the child's peak RSS in bytes.
    func peakRSS(_ cli: String, _ args: [String]) throws -> Int {
        let out = file("time-\(UUID().uuidString.prefix(8)).txt")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/time")
        p.arguments = ["-o", out, "-f", "%M", cli] + args
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        try p.run()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw BenchError("bundlesync \(args.joined(separator: " ")) exited \(p.terminationStatus): \(errText.suffix(500))")
        }
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        guard let kib = text.split(separator: "\n").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
            throw BenchError("cannot read /usr/bin/time's output: \(text)")
        }
        return kib * 1024
    }

    // MARK: - Output

    func printReport(total: Double) {
        var out = "\n## bundlesync-bench: \(grouped(w.rows)) rows, seed \(o.seed)\n\n"
        let order = ["1", "1b", "1f", "2", "2f", "3", "4", "5", "5b", "6", "7", "8a", "8b", "8c", "9a", "9b", "10"]
        func rank(_ f: Figure) -> Int { order.firstIndex(of: f.number) ?? order.count }
        let rows = figures.sorted { rank($0) < rank($1) }
        out += markdownTable(["#", "figure", "bundlesync", "baseline", "ratio", "SPEC target", "meets?"],
                             rows.map { [$0.number, $0.name, $0.bundlesync, $0.baseline, $0.ratio, $0.target, $0.meets] })
        out += "\n\nRatios: 1, 1b, 2, 4 are bundlesync's throughput over the baseline's (higher is better); 3, 5, 5b, 6, 8 are bundlesync's size or time over the baseline's (lower is better); 9a is the baseline's time over the whole `bundlesync import` process's, 9b the import's time over the export's (higher is better); 10 is the longest wait of one application write over the import's whole time (what one transaction would have made it wait). 1f and 2f are the ratios of 1b and 2 for what SQLite alone does of an import and an export, through plain C calls: bundlesync can go no faster than that.\n"
        out += "\n### Sizes\n\n" + markdownTable(["what", "size"], sizes.map { [$0.0, $0.1] }) + "\n"
        out += sections.joined()
        out += "\n### Seconds per step\n\n" + markdownTable(["step", "seconds"], Progress.steps.map { [$0.0, fixed($0.1, 3)] })
        out += "\n\nTotal: \(fixed(total, 1)) s\n"
        if !notes.isEmpty { out += "\n### Notes\n\n" + notes.map { "- " + $0 }.joined(separator: "\n") + "\n" }
        print(out)
    }
}
