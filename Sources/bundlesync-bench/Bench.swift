import BundleSync
import Foundation

// bundlesync-bench: the performance table of SPEC §6. Every figure is a ratio against a
// baseline measured in the same run on the same data.

struct Options {
    var rows = 100_000
    var seed: UInt64 = 1
    var dir: String?
    var bigBundleMB: Int?
    var keep = false

    static let usage = """
    usage: bundlesync-bench [--rows N] [--seed S] [--dir DIR] [--big-bundle-mb M] [--keep]

      --rows N            rows in the workload, split about 60/40 between two tables (default 100000)
      --seed S            seed of the generated data (default 1)
      --dir DIR           where to put the databases and bundles (default: a temporary directory)
      --big-bundle-mb M   also measure peak memory importing a bundle of about M MB (SPEC: 1024)
      --keep              keep the files afterwards
    """

    static func parse(_ args: [String]) -> Options {
        var o = Options()
        var i = 0
        func value(_ flag: String) -> String {
            i += 1
            guard i < args.count else { fail("\(flag) needs a value") }
            return args[i]
        }
        func fail(_ m: String) -> Never {
            FileHandle.standardError.write(Data("bundlesync-bench: \(m)\n\(usage)\n".utf8))
            exit(64)
        }
        while i < args.count {
            let a = args[i]
            switch a {
            case "--rows":
                guard let n = Int(value(a).replacingOccurrences(of: "_", with: "")), n >= 10 else { fail("--rows needs a number ≥ 10") }
                o.rows = n
            case "--seed":
                guard let s = UInt64(value(a)) else { fail("--seed needs a non-negative number") }
                o.seed = s
            case "--dir": o.dir = value(a)
            case "--big-bundle-mb":
                guard let m = Int(value(a)), m > 0 else { fail("--big-bundle-mb needs a positive number") }
                o.bigBundleMB = m
            case "--keep": o.keep = true
            case "-h", "--help":
                print(usage)
                exit(0)
            default: fail("unknown argument '\(a)'")
            }
            i += 1
        }
        return o
    }
}

@main
enum Bench {
    static func main() {
        _ = Progress.start
        let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
        do {
            try Run(options).go()
        } catch {
            FileHandle.standardError.write(Data("bundlesync-bench: \(error)\n".utf8))
            exit(1)
        }
    }
}

final class Run {
    let o: Options
    let w: Workload
    let root: String
    let createdRoot: Bool
    var figures: [Figure] = []
    var sizes: [(String, String)] = []
    var notes: [String] = []

    init(_ o: Options) throws {
        self.o = o
        w = Workload(rows: o.rows, seed: o.seed)
        let parent = o.dir ?? NSTemporaryDirectory()
        root = (parent as NSString).appendingPathComponent("bundlesync-bench-\(o.rows)-\(getpid())")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        createdRoot = true
    }

    func file(_ name: String) -> String { (root as NSString).appendingPathComponent(name) }

    /// Copies a closed (checkpointed) database file.
    func copy(_ from: String, _ to: String) throws {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: to + suffix) }
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    func go() throws {
        defer {
            if !o.keep { try? FileManager.default.removeItem(atPath: root) }
        }
        log("bundlesync-bench: \(grouped(w.rows)) rows (items \(grouped(w.itemCount)), events \(grouped(w.eventCount)) at \(grouped(w.stations)) stations), seed \(o.seed), in \(root); CLOCK_MONOTONIC at 0 s: \(fixed(Progress.start, 6))")
        let total0 = now()

        // MARK: Base data
        let basePath = file("base.db")
        try step("build the base data (\(grouped(w.rows)) rows, plain SQLite)") {
            try buildBase(basePath)
        }
        let baseFileBytes = fileSize(basePath)

        // MARK: Replica A: track, bookkeeping, full export
        let aPath = file("a.db")
        try copy(basePath, aPath)
        var a: Replica! = try Replica.initialize(path: aPath, name: "bench-a").0
        try step("track items and events on replica A (\(grouped(w.rows)) existing rows)") {
            for t in TableSpec.all { _ = try a.track(table: t.name) }
        }
        let bkTrack = try bookkeeping(aPath)
        let fullPath = file("base.bsync")
        let full = try step("full export of A (snapshot; seals the \(grouped(w.rows)) tracked rows first)") {
            try a.export(to: fullPath, target: .full)
        }
        let bkExport = try bookkeeping(aPath)
        try checkpoint(a)
        // Copies of A in its steady state (everything sealed) for figures 5 and 6.
        let t5Path = file("fig5-tracked.db"), r1Path = file("fig6-1pct.db"), r100Path = file("fig6-100pct.db")
        try step("copy replica A for figures 5 and 6") {
            for p in [t5Path, r1Path, r100Path] { try copy(aPath, p) }
        }

        // MARK: Replica B holds the base state; A learns B as a peer
        let bPath = file("b.db")
        try createTables(bPath, rows: false)
        var b: Replica! = try Replica.initialize(path: bPath, name: "bench-b").0
        for t in TableSpec.all { _ = try b.track(table: t.name) }
        let snapOutcome = try step("import the full snapshot into an empty replica B") { try b.importBundle(fullPath) }
        guard snapOutcome.status == .applied else { throw BenchError("B did not apply the snapshot: \(snapOutcome.status)") }
        try step("peer round trip: B exports to A, A imports (A now knows B)") {
            let back = try b.export(to: file("back.bsync"), target: .automatic)
            guard !back.snapshot else { throw BenchError("B's export back to A was a snapshot") }
            _ = try a.importBundle(back.path)
        }

        // MARK: The delta, written by the application on its own connection
        let plan = w.delta()
        try step("application writes the delta on A (\(grouped(plan.ops.count)) statements, transactions of 1,000)") {
            try RawDB(aPath).apply(plan.ops)
        }

        // MARK: Figure 2: export
        // Small runs are noisy, so figures 1 and 2 take the best of three: the extra runs
        // work on copies of A and B made just before (their state is the same).
        let reps = o.rows <= 200_000 ? 3 : 1
        let deltaPath = file("delta.bsync")
        try checkpoint(a)
        try checkpoint(b)
        let aCopies = try (1..<reps).map { k -> String in let p = file("a-rep\(k).db"); try copy(aPath, p); return p }
        let bCopies = try (1..<reps).map { k -> String in let p = file("b-rep\(k).db"); try copy(bPath, p); return p }
        let (exp, tExport0) = try timed { try a.export(to: deltaPath, target: .automatic) }
        guard !exp.snapshot else { throw BenchError("the delta export was a snapshot; the known peer was not used") }
        var tExport = tExport0
        for (k, p) in aCopies.enumerated() {
            let r = try Replica.open(path: p)
            try r.reidentify(moved: true) // a copy of A's file standing in for A
            let (e, t) = try timed { try r.export(to: file("delta-rep\(k + 1).bsync"), target: .automatic) }
            guard e.rows == exp.rows, !e.snapshot else { throw BenchError("repeated export differs: \(e.rows) rows") }
            tExport = min(tExport, t)
        }
        Progress.steps.append(("export the delta from A (.automatic, known peer B)\(reps > 1 ? ", best of \(reps)" : "")", tExport))
        log("export the delta: \(fixed(tExport, 3)) s, \(grouped(exp.rows)) row changes in \(exp.batches) batches, \(grouped(exp.bytes)) bytes")
        var (afterImages, tSelect) = try timed { try readByKey(aPath, plan.touchedKeys) }
        for _ in 1..<reps { tSelect = min(tSelect, try timed { try readByKey(aPath, plan.touchedKeys) }.1) }
        Progress.steps.append(("baseline: SELECT the changed rows by primary key\(reps > 1 ? ", best of \(reps)" : "")", tSelect))
        let changes = Double(exp.rows)
        figures.append(Figure(
            number: "2", name: "export, changes per second",
            bundlesync: perSecond(changes, tExport, "changes"), baseline: perSecond(changes, tSelect, "rows") + " (SELECT by key)",
            ratio: ratioText(tSelect / tExport), target: "≥ 0.5×", meets: meets(tSelect / tExport >= 0.5)))

        // MARK: Figure 1: import
        let summary = try BundleSummary.read(path: deltaPath)
        let cells = summary.cellCount
        let (outcome, tImport0) = try timed { try b.importBundle(deltaPath) }
        guard outcome.status == .applied else { throw BenchError("B did not apply the delta: \(outcome.status)") }
        var tImport = tImport0
        for p in bCopies {
            let r = try Replica.open(path: p)
            try r.reidentify(moved: true)
            let (o, t) = try timed { try r.importBundle(deltaPath) }
            guard o.status == .applied else { throw BenchError("a copy of B did not apply the delta: \(o.status)") }
            tImport = min(tImport, t)
        }
        for p in aCopies + bCopies { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: p + suffix) } }
        Progress.steps.append(("import the delta into B (holds the base state)\(reps > 1 ? ", best of \(reps)" : "")", tImport))
        log("import the delta: \(fixed(tImport, 3)) s (\(outcome.status), \(outcome.applied) batches)")
        let upsertPath = file("baseline-upsert.db")
        var tUpsert = Double.infinity
        for _ in 0..<reps {
            try copy(basePath, upsertPath)
            tUpsert = min(tUpsert, try bulkUpsert(upsertPath, afterImages, deleted: plan.deletedKeys))
        }
        Progress.steps.append(("baseline: bulk upsert of the same rows into an untracked copy of the base (one transaction)\(reps > 1 ? ", best of \(reps)" : "")", tUpsert))
        log("baseline upsert: \(fixed(tUpsert, 3)) s")
        figures.append(Figure(
            number: "1", name: "import, changed cells per second",
            bundlesync: perSecond(Double(cells), tImport, "cells"), baseline: perSecond(Double(cells), tUpsert, "cells") + " (upsert)",
            ratio: ratioText(tUpsert / tImport), target: "≥ 0.5×", meets: meets(tUpsert / tImport >= 0.5)))
        let converged = try step("check: digests of A and B after the delta") { try a.digest() == b.digest() }
        if !converged { notes.append("PRODUCT BUG? A and B hold different data after B imported A's delta (digests differ).") }
        let upsertMatches = try step("check: the upsert baseline holds the same rows as A") { try sameUserData(aPath, upsertPath) }
        if !upsertMatches { notes.append("The upsert baseline's tables differ from A's after the delta (benchmark bug).") }

        // MARK: Figure 3: size vs session changeset
        let sessPath = file("baseline-session.db")
        try copy(basePath, sessPath)
        let changeset = try step("baseline: session-extension changeset of the same writes") {
            try SessionBaseline.changeset(path: sessPath, ops: plan.ops)
        }
        let compressed = try Zstd.compress(changeset, level: 3)
        let applyPath = file("baseline-apply.db")
        try copy(basePath, applyPath)
        let applyDB = try RawDB(applyPath)
        let (conflicts, tApply) = try timed { try SessionBaseline.apply(changeset, to: applyDB) }
        Progress.steps.append(("reference: sqlite3changeset_apply into a copy of the base", tApply))
        if conflicts > 0 { notes.append("sqlite3changeset_apply reported \(conflicts) conflicts.") }
        if !(try step("check: the changeset-applied copy holds the same rows as A") { try sameUserData(aPath, applyPath) }) { notes.append("The changeset-applied copy differs from A (benchmark bug).") }
        let sizeRatio = Double(exp.bytes) / Double(compressed.count)
        figures.append(Figure(
            number: "3", name: "bundle size",
            bundlesync: "\(grouped(exp.bytes)) B", baseline: "\(grouped(compressed.count)) B (changeset \(grouped(changeset.count)) B, zstd -3)",
            ratio: ratioText(sizeRatio), target: "≤ 1.0×", meets: meets(sizeRatio <= 1.0)))

        // MARK: Figure 4: verify
        let verifyPath = fileSize(fullPath) >= fileSize(deltaPath) ? fullPath : deltaPath
        let verifyBytes = fileSize(verifyPath)
        let verifyReps = verifyBytes < 64 << 20 ? 3 : 2
        var tVerify = Double.infinity, tBaseVerify = Double.infinity
        var bodyBytes = 0
        for _ in 0..<verifyReps {
            let (sm, t) = try timed { try BundleSummary.read(path: verifyPath) }
            tVerify = min(tVerify, t)
            bodyBytes = sm.bodyBytes
            let (r, tb) = try timed { try Zstd.decompressAndHashBody(of: verifyPath) }
            tBaseVerify = min(tBaseVerify, tb)
            if r.bytes != bodyBytes { throw BenchError("baseline decompressed \(r.bytes) bytes, the trailer says \(bodyBytes)") }
        }
        let verifyName = (verifyPath as NSString).lastPathComponent
        Progress.steps.append(("verify \(verifyName) (BundleSummary.read), best of \(verifyReps)", tVerify))
        Progress.steps.append(("baseline: zstd -d + SHA-256 of the body of \(verifyName), best of \(verifyReps)", tBaseVerify))
        log("verify: \(fixed(tVerify, 3)) s; baseline \(fixed(tBaseVerify, 3)) s")
        let mb = Double(verifyBytes) / 1e6
        figures.append(Figure(
            number: "4", name: "verify, MB/s",
            bundlesync: "\(fixed(mb / tVerify, 1)) MB/s", baseline: "\(fixed(mb / tBaseVerify, 1)) MB/s (zstd -d + SHA-256)",
            ratio: ratioText(tBaseVerify / tVerify), target: "≥ 0.8×", meets: meets(tBaseVerify / tVerify >= 0.8)))

        // MARK: Figure 5: app writes with capture triggers
        let u5Path = file("fig5-untracked.db")
        try copy(basePath, u5Path)
        let writes = min(20_000, max(100, o.rows / 5))
        var tTracked = 0.0, tUntracked = 0.0
        try step("application writes: 3 rounds of \(grouped(writes)) single-row INSERT/UPDATE, tracked vs untracked") {
            let tracked = try RawDB(t5Path), untracked = try RawDB(u5Path)
            for round in 0..<3 {
                let ops = w.appWrites(count: writes, round: round)
                let order = round % 2 == 0 ? [(untracked, false), (tracked, true)] : [(tracked, true), (untracked, false)]
                for (db, isTracked) in order {
                    let (_, t) = try timed { try db.apply(ops, perTransaction: 1000) }
                    if isTracked { tTracked += t } else { tUntracked += t }
                }
            }
        }
        let captured = try logRows(t5Path)
        if captured == 0 { notes.append("The capture triggers logged nothing in figure 5 (benchmark bug?).") }
        let writeRatio = tTracked / tUntracked
        let nWrites = Double(3 * writes)
        figures.append(Figure(
            number: "5", name: "app write cost with capture triggers",
            bundlesync: perSecond(nWrites, tTracked, "writes") + " (tracked)", baseline: perSecond(nWrites, tUntracked, "writes") + " (untracked)",
            ratio: ratioText(writeRatio), target: "≤ 2.0× (cost)", meets: meets(writeRatio <= 2.0)))

        // MARK: Figure 6: export cost 1% vs 100%
        let (rows1, t1) = try step("export after 1% of rows changed (replica after one full export)") { try exportAfterChange(r1Path, everyRow: false, name: "fig6-1pct.bsync") }
        let (rows100, t100) = try step("export after 100% of rows changed (replica after one full export)") { try exportAfterChange(r100Path, everyRow: true, name: "fig6-100pct.bsync") }
        let costRatio = t1 / t100
        figures.append(Figure(
            number: "6", name: "export cost when 1% changed vs 100% changed",
            bundlesync: "\(fixed(t1, 3)) s (\(grouped(rows1)) rows changed)", baseline: "\(fixed(t100, 3)) s (\(grouped(rows100)) rows changed)",
            ratio: ratioText(costRatio), target: "≤ 0.03×", meets: meets(costRatio <= 0.03)))

        // MARK: Figure 7: peak memory (optional)
        a = nil
        b = nil
        let cacheKiB = try sqliteDefaultCacheKiB(basePath)
        if let mbTarget = o.bigBundleMB {
            figures.append(try bigBundleFigure(megabytes: mbTarget, cacheKiB: cacheKiB))
        } else {
            figures.append(Figure(number: "7", name: "peak memory importing a ~1 GB bundle",
                                  bundlesync: "skipped (use --big-bundle-mb 1024)", baseline: "—", ratio: "—",
                                  target: "≤ 64 MiB beyond SQLite's cache", meets: "—"))
        }

        // MARK: Figure 8: bookkeeping on disk
        for (label, bk) in [("8a", bkTrack), ("8b", bkExport)] {
            let r = Double(bk.bookkeeping) / Double(bk.user)
            figures.append(Figure(
                number: label,
                name: label == "8a" ? "bookkeeping on disk, right after track" : "bookkeeping on disk, after the first full export (history included)",
                bundlesync: mib(bk.bookkeeping) + " (_bundlesync_*)", baseline: mib(bk.user) + " (user tables + indexes)",
                ratio: ratioText(r), target: "≤ 0.3×", meets: meets(r <= 0.3)))
        }

        // MARK: Sizes
        sizes = [
            ("rows (base)", "\(grouped(w.rows)): items \(grouped(w.itemCount)), events \(grouped(w.eventCount))"),
            ("delta", "updated \(grouped(plan.updated[0] + plan.updated[1])) rows (\(grouped(plan.updatedCells)) cells), deleted \(grouped(plan.deleted[0] + plan.deleted[1])), inserted \(grouped(plan.inserted[0] + plan.inserted[1])); \(grouped(plan.ops.count)) statements"),
            ("delta bundle", "\(grouped(exp.rows)) row changes, \(grouped(cells)) changed cells, \(exp.batches) batches, \(bytesText(exp.bytes))"),
            ("full (snapshot) bundle", "\(grouped(full.rows)) rows, \(bytesText(full.bytes))"),
            ("session changeset", "\(bytesText(changeset.count)) raw, \(bytesText(compressed.count)) zstd -3"),
            ("reference: changeset apply", "sqlite3changeset_apply of the same delta: \(fixed(tApply, 3)) s, \(perSecond(Double(cells), tApply, "cells")); bundlesync import \(fixed(tImport, 3)) s"),
            ("verified file", "\((verifyPath as NSString).lastPathComponent): \(bytesText(verifyBytes)), body \(bytesText(bodyBytes)) uncompressed"),
            ("base database file", bytesText(baseFileBytes)),
            ("bookkeeping after track", breakdown(bkTrack)),
            ("bookkeeping after full export", breakdown(bkExport)),
            ("figure 5 writes", "\(grouped(3 * writes)) statements per side (3 rounds), \(grouped(captured)) capture-log rows; tracked \(fixed(tTracked, 3)) s, untracked \(fixed(tUntracked, 3)) s"),
            ("SQLite default page cache", "\(grouped(cacheKiB)) KiB (PRAGMA cache_size = -\(cacheKiB))"),
            ("A and B converged", converged ? "yes (equal digests)" : "NO"),
        ]
        let totalSeconds = now() - total0
        printReport(total: totalSeconds)
    }

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

    func breakdown(_ bk: Bookkeeping) -> String {
        bk.byTable.filter { $0.key.hasPrefix("_bundlesync_") && $0.value > 8192 }.sorted { $0.value > $1.value }
            .map { "\($0.key) \(mib($0.value))" }.joined(separator: ", ")
            + "; user: " + TableSpec.all.map { "\($0.name) \(mib(bk.byTable[$0.name] ?? 0))" }.joined(separator: ", ")
            + "; free pages \(mib(bk.free)); database \(mib(bk.file))"
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
        let p = ((exe as NSString).deletingLastPathComponent as NSString).appendingPathComponent("bundlesync")
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
        let order = ["1", "2", "3", "4", "5", "6", "7", "8a", "8b"]
        let rows = figures.sorted { order.firstIndex(of: $0.number)! < order.firstIndex(of: $1.number)! }
        out += markdownTable(["#", "figure", "bundlesync", "baseline", "ratio", "SPEC target", "meets?"],
                             rows.map { [$0.number, $0.name, $0.bundlesync, $0.baseline, $0.ratio, $0.target, $0.meets] })
        out += "\n\nRatios: 1, 2, 4 are bundlesync's throughput over the baseline's (higher is better); 3, 5, 6, 8 are bundlesync's size or time over the baseline's (lower is better).\n"
        out += "\n### Sizes\n\n" + markdownTable(["what", "size"], sizes.map { [$0.0, $0.1] }) + "\n"
        out += "\n### Seconds per step\n\n" + markdownTable(["step", "seconds"], Progress.steps.map { [$0.0, fixed($0.1, 3)] })
        out += "\n\nTotal: \(fixed(total, 1)) s\n"
        if !notes.isEmpty { out += "\n### Notes\n\n" + notes.map { "- " + $0 }.joined(separator: "\n") + "\n" }
        print(out)
    }
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
}
