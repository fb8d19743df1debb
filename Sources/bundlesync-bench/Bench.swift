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
    var fleet: [Int] = []
    var fleetRounds = 10
    var textTrace: String?
    var textEvery = 100
    var textKeystrokes: Int?
    var textHistoryWrites = 10_000
    var textOnly = false
    var fleetOnly = false
    var fleetLate = false

    static let defaultTrace = "fixtures/traces/paper-shaped.trace.zst"

    static let usage = """
    usage: bundlesync-bench [--rows N] [--seed S] [--dir DIR] [--big-bundle-mb M] [--fleet R,R...] [--fleet-rounds N] [--keep]
                            [--text-trace FILE] [--text-every N] [--text-keystrokes K] [--text-history-writes W] [--text-only] [--fleet-only] [--fleet-late]

      --rows N            rows in the workload, split about 60/40 between two tables (default 100000)
      --seed S            seed of the generated data (default 1)
      --dir DIR           where to put the databases and bundles (default: a temporary directory)
      --big-bundle-mb M   also measure peak memory importing a bundle of about M MB (SPEC: 1024)
      --fleet R,R...      also run the fleet section: R replicas syncing through one folder (e.g. 8,32,128)
      --fleet-rounds N    rounds of the fleet section (default 10)
      --keep              keep the files afterwards, with figure 5b's statements in fig5b.sql
      --text-trace FILE   the keystroke trace of the text section (default: \(defaultTrace), if present)
      --text-every N      keystrokes between two writes of the text (default 100)
      --text-keystrokes K replay only the first K keystrokes
      --text-history-writes W  one-word writes of the long-history text table (default 10000)
      --text-only         run only the text section
      --fleet-only        run only the fleet section (with --fleet)
      --fleet-late        in the fleet, a quarter of the replicas join only at half-time
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
            try? FileHandle.standardError.write(contentsOf: Data("bundlesync-bench: \(m)\n\(usage)\n".utf8))
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
            case "--fleet":
                let sizes = value(a).split(separator: ",").compactMap { Int($0) }
                guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 2 }) else { fail("--fleet needs sizes ≥ 2, such as 8,32") }
                o.fleet = sizes
            case "--fleet-rounds":
                guard let n = Int(value(a)), n > 0 else { fail("--fleet-rounds needs a positive number") }
                o.fleetRounds = n
            case "--keep": o.keep = true
            case "--text-trace": o.textTrace = value(a)
            case "--text-every":
                guard let n = Int(value(a)), n > 0 else { fail("--text-every needs a positive number") }
                o.textEvery = n
            case "--text-keystrokes":
                guard let n = Int(value(a)), n > 0 else { fail("--text-keystrokes needs a positive number") }
                o.textKeystrokes = n
            case "--text-history-writes":
                guard let n = Int(value(a)), n >= 100 else { fail("--text-history-writes needs a number ≥ 100") }
                o.textHistoryWrites = n
            case "--text-only": o.textOnly = true
            case "--fleet-only": o.fleetOnly = true
            case "--fleet-late": o.fleetLate = true
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
        // As the bundlesync command does; the baselines run in this process and share it.
        Replica.configureProcess()
        let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
        do {
            try Run(options).go()
        } catch {
            try? FileHandle.standardError.write(contentsOf: Data("bundlesync-bench: \(error)\n".utf8))
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
    /// Sections printed after the figures (the fleet).
    var sections: [String] = []

    init(_ o: Options) throws {
        self.o = o
        w = Workload(rows: o.rows, seed: o.seed)
        let parent = o.dir ?? NSTemporaryDirectory()
        root = PathText.join(parent, "bundlesync-bench-\(o.rows)-\(getpid())")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        createdRoot = true
    }

    func file(_ name: String) -> String { PathText.join(root, name) }

    /// Copies a closed (checkpointed) database file.
    func copy(_ from: String, _ to: String) throws {
        removeDatabases([to])
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    /// Removes database files with their WAL and shared-memory files.
    func removeDatabases(_ paths: [String]) {
        for p in paths { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: p + suffix) } }
    }

    func go() throws {
        defer {
            if !o.keep { try? FileManager.default.removeItem(atPath: root) }
        }
        if o.textOnly {
            try textSection()
            return try textHistorySection()
        }
        if o.fleetOnly {
            guard !o.fleet.isEmpty else { throw BenchError("--fleet-only needs --fleet, such as --fleet 8,32") }
            return print(try fleetSection(sizes: o.fleet, rounds: o.fleetRounds, late: o.fleetLate))
        }
        log("bundlesync-bench: \(grouped(w.rows)) rows (items \(grouped(w.itemCount)), events \(grouped(w.eventCount)) at \(grouped(w.stations)) stations), seed \(o.seed), in \(root); CLOCK_MONOTONIC at 0 s: \(fixed(Progress.start, 6))")
        let total0 = now()

        // MARK: Base data
        let basePath = file("base.db")
        try step("build the base data (\(grouped(w.rows)) rows, plain SQLite)") {
            try buildBase(basePath)
        }
        let tBaseInsert = Progress.steps.last?.1 ?? .nan
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
        // Copies of A in its steady state (everything sealed) for figures 5, 5b and 6.
        let t5Path = file("fig5-tracked.db"), r1Path = file("fig6-1pct.db"), r100Path = file("fig6-100pct.db")
        let t5bPath = file("fig5b-tracked.db")
        try step("copy replica A for figures 5, 5b and 6") {
            for p in [t5Path, t5bPath, r1Path, r100Path] { try copy(aPath, p) }
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
        // Small runs are noisy, so figures 1 and 2 take the best of three, on copies of A
        // and B made just before (their state is the same). Each round times bundlesync,
        // the baselines and SQLite's own part one after the other, so that a slow spell of
        // the machine falls on all of them rather than on one.
        let reps = o.rows <= 200_000 ? 3 : 1
        let deltaPath = file("delta.bsync")
        try checkpoint(a)
        try checkpoint(b)
        let aCopies = try (1..<reps).map { k -> String in let p = file("a-rep\(k).db"); try copy(aPath, p); return p }
        let bCopies = try (1..<reps).map { k -> String in let p = file("b-rep\(k).db"); try copy(bPath, p); return p }
        let floorSource = file("floor-source.db"), floorPath = file("floor.db"), importFloorSource = file("import-floor-source.db")
        try copy(aPath, floorSource)
        try copy(bPath, importFloorSource)
        var exp: ExportResult!
        var afterImages: [[[SQLValue]]] = []
        var (tExport, tSelect, tFloor) = (Double.infinity, Double.infinity, Double.infinity)
        for k in 0..<reps {
            let r: Replica = k == 0 ? a : try Replica.open(path: aCopies[k - 1])
            if k > 0 { try r.reidentify(moved: true) } // a copy of A's file standing in for A
            let (e, t) = try timed { try r.export(to: k == 0 ? deltaPath : file("delta-rep\(k).bsync"), target: .automatic) }
            guard !e.snapshot else { throw BenchError("the delta export was a snapshot; the known peer was not used") }
            if let exp, e.rows != exp.rows { throw BenchError("repeated export differs: \(e.rows) rows") }
            if k == 0 { exp = e }
            tExport = min(tExport, t)
            let (images, ts) = try timed { try readByKey(aPath, plan.touchedKeys) }
            if k == 0 { afterImages = images }
            tSelect = min(tSelect, ts)
            try copy(floorSource, floorPath)
            tFloor = min(tFloor, try exportFloor(floorPath, historyBytes: e.bytes))
        }
        removeDatabases([floorSource])
        let best = reps > 1 ? ", best of \(reps)" : ""
        Progress.steps.append(("export the delta from A (.automatic, known peer B)\(best)", tExport))
        log("export the delta: \(fixed(tExport, 3)) s, \(grouped(exp.rows)) row changes in \(exp.batches) batches, \(grouped(exp.bytes)) bytes")
        Progress.steps.append(("baseline: SELECT the changed rows by primary key\(best)", tSelect))
        Progress.steps.append(("figure 2f: SQLite alone reads the log, each changed row with its clock, writes the clock back and stores the batch\(best)", tFloor))
        let changes = Double(exp.rows)
        figures.append(Figure(
            number: "2", name: "export, changes per second",
            bundlesync: perSecond(changes, tExport, "changes"), baseline: perSecond(changes, tSelect, "rows") + " (SELECT by key)",
            ratio: ratioText(tSelect / tExport), target: "≥ 0.5×", meets: meets(tSelect / tExport >= 0.5)))
        figures.append(Figure(
            number: "2f", name: "export's own SQLite work: the log read, each changed row read with its clock, the clock written, the batch stored",
            bundlesync: perSecond(changes, tFloor, "changes") + " (SQLite alone)", baseline: perSecond(changes, tSelect, "rows") + " (SELECT by key)",
            ratio: ratioText(tSelect / tFloor), target: "(bounds 2)", meets: "—"))

        // MARK: Figure 1: import
        let sessPath = file("baseline-session.db")
        try copy(basePath, sessPath)
        let changeset = try step("baseline: session-extension changeset of the same writes") {
            try SessionBaseline.changeset(path: sessPath, ops: plan.ops)
        }
        let summary = try BundleSummary.read(path: deltaPath)
        let cells = summary.cellCount
        let upsertPath = file("baseline-upsert.db"), applyPath = file("baseline-apply.db")
        var outcome: ImportOutcome!
        var (tImport, tUpsert, tImportFloor, tApply) = (Double.infinity, Double.infinity, Double.infinity, Double.infinity)
        for k in 0..<reps {
            let r: Replica = k == 0 ? b : try Replica.open(path: bCopies[k - 1])
            if k > 0 { try r.reidentify(moved: true) }
            let (o, t) = try timed { try r.importBundle(deltaPath) }
            guard o.status == .applied else { throw BenchError("B did not apply the delta: \(o.status)") }
            if k == 0 { outcome = o }
            tImport = min(tImport, t)
            try copy(basePath, upsertPath)
            tUpsert = min(tUpsert, try bulkUpsert(upsertPath, afterImages, deleted: plan.deletedKeys))
            try copy(importFloorSource, floorPath)
            tImportFloor = min(tImportFloor, try importFloor(floorPath, plan.ops))
            try copy(basePath, applyPath)
            let applyDB = try RawDB(applyPath)
            let (conflicts, ta) = try timed { try SessionBaseline.apply(changeset, to: applyDB) }
            tApply = min(tApply, ta)
            if conflicts > 0 { notes.append("sqlite3changeset_apply reported \(conflicts) conflicts.") }
        }
        removeDatabases(aCopies + bCopies + [importFloorSource, floorPath])
        Progress.steps.append(("import the delta into B (holds the base state)\(best)", tImport))
        log("import the delta: \(fixed(tImport, 3)) s (\(outcome.status), \(outcome.applied) batches)")
        Progress.steps.append(("baseline: bulk upsert of the same rows into an untracked copy of the base (one transaction)\(best)", tUpsert))
        log("baseline upsert: \(fixed(tUpsert, 3)) s")
        Progress.steps.append(("figure 1f: SQLite alone reads each changed row with its clock, writes the row and the clock\(best)", tImportFloor))
        Progress.steps.append(("baseline: sqlite3changeset_apply into a copy of the base\(best)", tApply))
        figures.append(Figure(
            number: "1", name: "import, changed cells per second",
            bundlesync: perSecond(Double(cells), tImport, "cells"), baseline: perSecond(Double(cells), tUpsert, "cells") + " (upsert)",
            ratio: ratioText(tUpsert / tImport), target: "≥ 0.5×", meets: meets(tUpsert / tImport >= 0.5)))
        let converged = try step("check: digests of A and B after the delta") { try a.digest() == b.digest() }
        if !converged { notes.append("PRODUCT BUG? A and B hold different data after B imported A's delta (digests differ).") }
        let upsertMatches = try step("check: the upsert baseline holds the same rows as A") { try sameUserData(aPath, upsertPath) }
        if !upsertMatches { notes.append("The upsert baseline's tables differ from A's after the delta (benchmark bug).") }
        figures.append(Figure(
            number: "1b", name: "delta import against the session changeset's apply",
            bundlesync: perSecond(Double(cells), tImport, "cells"), baseline: perSecond(Double(cells), tApply, "cells") + " (sqlite3changeset_apply)",
            ratio: ratioText(tApply / tImport), target: "≥ 1.0×", meets: meets(tApply / tImport >= 1.0)))
        figures.append(Figure(
            number: "1f", name: "import's own SQLite work: each changed row read with its clock, the row and the clock written",
            bundlesync: perSecond(Double(cells), tImportFloor, "cells") + " (SQLite alone)", baseline: perSecond(Double(cells), tApply, "cells") + " (sqlite3changeset_apply)",
            ratio: ratioText(tApply / tImportFloor), target: "(bounds 1b)", meets: "—"))
        if !(try step("check: the changeset-applied copy holds the same rows as A") { try sameUserData(aPath, applyPath) }) { notes.append("The changeset-applied copy differs from A (benchmark bug).") }

        // MARK: Figure 3: size vs session changeset
        let compressed = try Zstd.compress(changeset, level: 3)
        let sizeRatio = Double(exp.bytes) / Double(compressed.count)
        figures.append(Figure(
            number: "3", name: "bundle size",
            bundlesync: "\(grouped(exp.bytes)) B", baseline: "\(grouped(compressed.count)) B (changeset \(grouped(changeset.count)) B, zstd -3)",
            ratio: ratioText(sizeRatio), target: "≤ 0.8×", meets: meets(sizeRatio <= 0.8)))

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
        let verifyName = PathText.fileName(of: verifyPath)
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
            ratio: ratioText(writeRatio), target: "≤ 1.5× (cost)", meets: meets(writeRatio <= 1.5)))

        // MARK: Figure 5b: the small-update delta as SQL text, one transaction
        let small = w.smallUpdateDelta()
        let script = "BEGIN;\n" + small.map(\.sqlText).joined(separator: "\n") + "\nCOMMIT;\n"
        let smallReps = o.rows <= 200_000 ? 5 : 3
        // Kept for a look with the `sqlite3` shell (`.read fig5b.sql` on a copy of either database).
        if o.keep { try Data(script.utf8).write(to: URL(fileURLWithPath: file("fig5b.sql"))) }
        var smallTracked: [(wall: Double, cpu: Double)] = [], smallUntracked: [(wall: Double, cpu: Double)] = []
        var smallCaptured = 0
        try step("application writes: the small-update delta (\(grouped(small.count)) statements as SQL text, one transaction), tracked vs untracked, \(smallReps) rounds") {
            let trackedWork = file("fig5b-tracked-run.db"), untrackedWork = file("fig5b-untracked-run.db")
            for round in 0..<smallReps {
                try copy(t5bPath, trackedWork)
                try copy(basePath, untrackedWork)
                for isTracked in round % 2 == 0 ? [false, true] : [true, false] {
                    let db = try RawDB(isTracked ? trackedWork : untrackedWork)
                    let t = try timedWithCPU { try db.exec(script) }
                    if isTracked { smallTracked.append(t) } else { smallUntracked.append(t) }
                }
            }
            smallCaptured = try logRows(trackedWork)
            removeDatabases([trackedWork, untrackedWork])
        }
        if smallCaptured == 0 { notes.append("The capture triggers logged nothing in figure 5b (benchmark bug?).") }
        let smallWall = median(smallTracked.map(\.wall)) / median(smallUntracked.map(\.wall))
        let smallCPU = median(smallTracked.map(\.cpu)) / median(smallUntracked.map(\.cpu))
        let nSmall = Double(small.count)
        figures.append(Figure(
            number: "5b", name: "app write cost with capture triggers, small-update delta as SQL text",
            bundlesync: perSecond(nSmall, median(smallTracked.map(\.wall)), "statements") + " (tracked)",
            baseline: perSecond(nSmall, median(smallUntracked.map(\.wall)), "statements") + " (untracked)",
            ratio: ratioText(smallWall), target: "≤ 1.5× (cost)", meets: meets(smallWall <= 1.5)))

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

        // MARK: Figure 10: the application's writes during a large import
        figures.append(try writeWaitFigure(bundle: fullPath, changes: full.rows))
        figures += try wholeProcessFigures(baseInsert: tBaseInsert)

        // MARK: Figure 8: bookkeeping on disk
        for (label, bk) in [("8a", bkTrack), ("8b", bkExport)] {
            let r = Double(bk.bookkeeping) / Double(bk.user)
            figures.append(Figure(
                number: label,
                name: label == "8a" ? "bookkeeping on disk, right after track" : "bookkeeping on disk, after the first full export (history included)",
                bundlesync: mib(bk.bookkeeping) + " (_bundlesync_*)", baseline: mib(bk.user) + " (user tables + indexes)",
                ratio: ratioText(r), target: "≤ 0.3×", meets: meets(r <= 0.3)))
        }
        figures.append(try step("figure 8c: track and export a narrow table of \(grouped(w.rows)) rows") { try narrowBookkeepingFigure(rows: w.rows) })

        // MARK: Sizes
        sizes = [
            ("rows (base)", "\(grouped(w.rows)): items \(grouped(w.itemCount)), events \(grouped(w.eventCount))"),
            ("delta", "updated \(grouped(plan.updated[0] + plan.updated[1])) rows (\(grouped(plan.updatedCells)) cells), deleted \(grouped(plan.deleted[0] + plan.deleted[1])), inserted \(grouped(plan.inserted[0] + plan.inserted[1])); \(grouped(plan.ops.count)) statements"),
            ("delta bundle", "\(grouped(exp.rows)) row changes, \(grouped(cells)) changed cells, \(exp.batches) batches, \(bytesText(exp.bytes))"),
            ("full (snapshot) bundle", "\(grouped(full.rows)) rows, \(bytesText(full.bytes))"),
            ("session changeset", "\(bytesText(changeset.count)) raw, \(bytesText(compressed.count)) zstd -3"),
            ("reference: changeset apply", "sqlite3changeset_apply of the same delta: \(fixed(tApply, 3)) s, \(perSecond(Double(cells), tApply, "cells")); bundlesync import \(fixed(tImport, 3)) s"),
            ("verified file", "\(PathText.fileName(of: verifyPath)): \(bytesText(verifyBytes)), body \(bytesText(bodyBytes)) uncompressed"),
            ("base database file", bytesText(baseFileBytes)),
            ("bookkeeping after track", breakdown(bkTrack)),
            ("bookkeeping after full export", breakdown(bkExport)),
            ("figure 5b writes", "\(grouped(small.count)) statements (10% of rows: one or two of n, r / v, note updated; 2% deleted; 5% inserted), one sqlite3_exec of the SQL text in one transaction, median of \(smallReps) rounds on fresh copies; \(grouped(smallCaptured)) capture-log rows; wall: tracked \(fixed(median(smallTracked.map(\.wall)), 3)) s, untracked \(fixed(median(smallUntracked.map(\.wall)), 3)) s; CPU: tracked \(fixed(median(smallTracked.map(\.cpu)), 3)) s, untracked \(fixed(median(smallUntracked.map(\.cpu)), 3)) s (\(ratioText(smallCPU)))"),
            ("figure 5 writes", "\(grouped(3 * writes)) statements per side (3 rounds), \(grouped(captured)) capture-log rows; tracked \(fixed(tTracked, 3)) s, untracked \(fixed(tUntracked, 3)) s"),
            ("SQLite default page cache", "\(grouped(cacheKiB)) KiB (PRAGMA cache_size = -\(cacheKiB))"),
            ("A and B converged", converged ? "yes (equal digests)" : "NO"),
        ] + sizes
        if !o.fleet.isEmpty { sections.append(try fleetSection(sizes: o.fleet, rounds: o.fleetRounds, late: o.fleetLate)) }
        let totalSeconds = now() - total0
        printReport(total: totalSeconds)
        try textSection()
        try textHistorySection()
    }
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
}
