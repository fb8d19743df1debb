import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

// The central correctness property of bundlesync (SPEC §2, §3.1, §3.2, §4.3), checked on the
// BUILT BINARY: several replicas write random SQL concurrently, exchange bundles made in
// every export mode, deliver them late, out of order, partially and twice, and still end
// with exactly the same rows (type- and bit-exact), the same digest, every uncontested write
// intact, and nothing changing when every bundle is imported again.
//
// Seeds:
//   default                          seeds 1, 2, 3
//   BUNDLESYNC_PROPERTY_SEEDS=N      N seeds starting at BUNDLESYNC_PROPERTY_SEED_BASE (default 1)
//   BUNDLESYNC_PROPERTY_SEED=S       exactly seed S (the operations and deliveries replay
//                                    exactly; replica ids and wall clocks are new each run)
//   BUNDLESYNC_PROPERTY_ROUNDS=R     R rounds per seed instead of 4 (a longer hunt; a seed
//                                    replays only with the same number of rounds)
//   BUNDLESYNC_KEEP_TEMP=1           keep the run's directory, which holds every replica,
//                                    every bundle, the model databases and replay.sh, a log
//                                    (as shell commands) of every SQL statement and CLI call.
//
// Every replica writes to shared keys (contested: only convergence is asserted) and to its
// own private keys (uncontested: a plain SQLite "model" database receives the same SQL, and
// every replica must end with exactly the model's rows for those keys).

private let environment = PropertySeeds.environment

@Suite struct ConvergencePropertyTests {
    @Test("random writes, every export mode, shuffled late duplicate deliveries: replicas converge",
          arguments: PropertySeeds.plan().seeds)
    func replicasConverge(seed: UInt64) throws {
        if let problem = PropertySeeds.plan().problem { Issue.record(Comment(rawValue: problem)) }
        let run = ConvergenceRun(seed: seed)
        defer { run.writeReplayScript() }
        do {
            try run.execute()
        } catch is ConvergenceRun.Abort {
            // Already recorded, with the seed.
        } catch {
            run.record("unexpected error: \(error)")
        }
    }
}

// MARK: - Schema and value pools

private struct TableSpec {
    var name: String
    var keyColumns: [String]
    var valueColumns: [String]
    var orderBy: String
    var allColumns: [String] { keyColumns + valueColumns }
}

private let itemsTable = TableSpec(name: "items", keyColumns: ["id"], valueColumns: ["n", "r", "t", "b", "extra"],
                                   orderBy: "id")
private let pairsTable = TableSpec(name: "pairs", keyColumns: ["a", "b"], valueColumns: ["v", "w"], orderBy: "a, b")
private let tables = [itemsTable, pairsTable]

private let schemaSQL = """
    CREATE TABLE items(id TEXT PRIMARY KEY, n INTEGER, r REAL, t TEXT, b BLOB, extra);
    CREATE TABLE pairs(a TEXT, b INTEGER, v, w TEXT, PRIMARY KEY(a, b)) WITHOUT ROWID;
    """

/// A key is one SQL literal per key column.
private typealias Key = [String]

private func sqlText(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

private func hexLiteral(_ bytes: [UInt8]) -> String { "x'" + hexString(bytes) + "'" }

/// Shared keys: every replica writes them, so they are contested.
private let sharedKeys: [String: [Key]] = [
    "items": (0..<9).map { [sqlText("k\($0)")] } + [[sqlText("")], [sqlText("ключ")], [sqlText("日本-1")]],
    "pairs": ["'x'", "'y'", "'日本'"].flatMap { a in
        ["0", "1", "-1", "9223372036854775807"].map { b in [a, b] }
    },
]

/// Private keys: only replica `r` ever writes them, so their final state is known exactly.
private func privateKeys(_ table: String, replica r: Int) -> [Key] {
    switch table {
    case "items": return (0..<6).map { [sqlText("own-\(r)-\($0)")] }
    default:
        return [sqlText("own-\(r)"), sqlText("own-\(r)-ü")].flatMap { a in
            ["0", "7", "-9223372036854775808"].map { b in [a, b] }
        }
    }
}

private func privateRowsQuery(_ table: String, replica r: Int) -> String {
    switch table {
    case "items": return "SELECT * FROM items WHERE id GLOB 'own-\(r)-*' ORDER BY id"
    default: return "SELECT * FROM pairs WHERE a IN ('own-\(r)', 'own-\(r)-ü') ORDER BY a, b"
    }
}

private func whereClause(_ spec: TableSpec, _ key: Key) -> String {
    zip(spec.keyColumns, key).map { "\($0) = \($1)" }.joined(separator: " AND ")
}

private enum ExportMode: String, CaseIterable { case automatic = "default", full, to, since }

// MARK: - One seeded run

private final class ConvergenceRun {
    struct Abort: Error {}

    struct Bundle {
        var path: String
        var exporter: Int
        var round: Int
        /// Per receiver, the first round in which it may be delivered (late delivery).
        var due: [Int]
        /// For a delta snapshot, the vector a replica must hold to apply it (a replica below
        /// it refuses it, with exit status 65, as it must); nil for any other bundle.
        var deltaBase: VersionVector? = nil
    }

    let seed: UInt64
    var rng: SplitMix64
    let tmp: TempDir
    var script: [String] = []

    var replicaCount = 0
    var dbs: [String] = []
    var names: [String] = []
    var ids: [String] = []
    /// One plain SQLite database per replica holding the expected state of its private keys.
    var models: [Database] = []
    var values: [String] = []
    var pool: [Bundle] = []
    var delivered: [Set<String>] = []
    /// status --json snapshots per replica, oldest first (files usable with --since).
    var vectorFiles: [[String]] = []
    var modesUsed: Set<ExportMode> = []
    var exportCounter = 0

    init(seed: UInt64) {
        self.seed = seed
        // Mix the seed so that seeds 1, 2, 3 start far apart.
        var mixer = SplitMix64(seed: seed ^ 0x5EED_C0DE_0000_0000)
        rng = SplitMix64(seed: mixer.next())
        tmp = TempDir("bundlesync-convergence-seed\(seed)")
        script = ["#!/bin/sh",
                  "# ConvergencePropertyTests seed \(seed): every SQL statement and bundlesync call in order,",
                  "# with bundlesync's stderr as comments. Auto-named bundle paths are this run's; in a",
                  "# new directory they differ, so this is a log to read and cut down, not a script to rerun.",
                  "set -x", "B=${B:-\(CLI.binary)}", "D=${D:-\(tmp.path)}"]
    }

    // MARK: failure reporting

    func record(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let keep = TempDir.keepsFiles
        let text = """
            [seed \(seed)] \(message)
              replay: \(PropertySeeds.replayCommand(seed, suite: "ConvergencePropertyTests"))
              files:  \(keep ? "kept in \(tmp.path) (replay.sh lists every step)" : "add BUNDLESYNC_KEEP_TEMP=1 to keep the run's directory and its replay.sh")
            """
        Issue.record(Comment(rawValue: text), sourceLocation: sourceLocation)
    }

    func check(_ condition: Bool, _ message: @autoclosure () -> String,
               sourceLocation: SourceLocation = #_sourceLocation) {
        if !condition { record(message(), sourceLocation: sourceLocation) }
    }

    func writeReplayScript() {
        let text = script.joined(separator: "\n") + "\n"
        try? text.write(toFile: tmp.file("replay.sh"), atomically: true, encoding: .utf8)
    }

    private func shellPath(_ p: String) -> String {
        p.hasPrefix(tmp.path) ? "\"$D" + p.dropFirst(tmp.path.count) + "\"" : "'\(p)'"
    }

    // MARK: randomness

    func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &rng) }
    func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    func pick<T>(_ a: [T]) -> T { a[int(0..<a.count)] }
    func subset<T>(_ a: [T], count: Int) -> [T] { Array(a.shuffled(using: &rng).prefix(count)) }

    // MARK: running things

    /// Runs the binary; any non-zero exit is a failure of the property.
    @discardableResult
    func bs(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        script.append("\"$B\" " + args.map { $0.hasPrefix("/") ? shellPath($0) : "'\($0)'" }.joined(separator: " "))
        let r = try CLI.run(args)
        for line in r.stderr.split(separator: "\n").prefix(12) { script.append("#   \(line)") }
        if r.status != 0 {
            record("bundlesync \(args.joined(separator: " ")) exited \(r.status)\nstderr: \(r.stderr)\nstdout: \(r.stdout.prefix(2000))",
                   sourceLocation: sourceLocation)
            throw Abort()
        }
        return r.trimmedOut
    }

    /// Application SQL on the replica. It must succeed: every statement is valid SQL, so a
    /// failure would come from bundlesync's capture triggers.
    func app(_ r: Int, _ sql: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        script.append("sqlite3 \(shellPath(dbs[r])) <<'SQL'\n\(sql)\nSQL")
        do {
            try App.execute(dbs[r], sql)
        } catch {
            record("application SQL failed on \(names[r]): \(error)\nSQL: \(sql.prefix(1500))", sourceLocation: sourceLocation)
            throw Abort()
        }
    }

    func model(_ r: Int, _ sql: String, _ args: [SQLValue] = []) throws {
        do {
            if args.isEmpty { try models[r].execute(sql) } else { try models[r].run(sql, args) }
        } catch {
            record("the test's model rejected SQL (test bug): \(error)\nSQL: \(sql.prefix(1500))")
            throw Abort()
        }
    }

    func rows(_ db: String, _ sql: String) throws -> [[SQLValue]] {
        do { return try App.rows(db, sql) } catch {
            record("reading \(db) failed: \(error)\nSQL: \(sql)")
            throw Abort()
        }
    }

    func statusJSON(_ r: Int, db: String? = nil) throws -> (text: String, object: [String: Any]) {
        let text = try bs(["status", db ?? dbs[r], "--json"])
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            record("status --json of \(db ?? dbs[r]) is not one JSON object:\n\(text.prefix(2000))")
            throw Abort()
        }
        return (text, obj)
    }

    // MARK: the property

    func execute() throws {
        replicaCount = 3 + int(0..<3)
        let rounds = max(1, Int(environment["BUNDLESYNC_PROPERTY_ROUNDS"] ?? "") ?? 4)
        makeValuePool()

        // Replicas: identical schema, then init and track.
        for r in 0..<replicaCount {
            let db = tmp.file("r\(r).db")
            dbs.append(db)
            names.append("r\(r)")
            try app(r, schemaSQL)
            try bs(["init", db, "--name", "r\(r)"])
            for t in tables { try bs(["track", db, t.name]) }
            let m = try Database(path: tmp.file("model-r\(r).db"), create: true)
            try m.execute(schemaSQL)
            models.append(m)
            ids.append(try statusJSON(r).object["id"] as? String ?? "")
            delivered.append([])
            vectorFiles.append([])
        }
        _ = tmp.dir("bundles")
        _ = tmp.dir("vectors")
        for r in 0..<replicaCount { _ = tmp.dir("out-r\(r)") }

        for round in 0..<rounds {
            script.append("# ---- round \(round)")
            // What every replica holds now, for later (possibly stale) --since exports.
            for r in 0..<replicaCount {
                let file = tmp.file("vectors/r\(r)-round\(round).json")
                let text = try statusJSON(r).text
                script[script.count - 1] += " > \(shellPath(file))"
                try text.write(toFile: file, atomically: true, encoding: .utf8)
                vectorFiles[r].append(file)
            }
            for r in Array(0..<replicaCount).shuffled(using: &rng) {
                try writeRandomly(r, operations: 3 + int(0..<8))
            }
            for r in Array(0..<replicaCount).shuffled(using: &rng) {
                try export(r, mode: ExportMode.allCases[(round + r) % 4], round: round)
            }
            for r in Array(0..<replicaCount).shuffled(using: &rng) {
                try deliver(to: r, round: round)
                // Imports never touch another replica's private rows.
                try checkPrivateRows(of: r, on: r, when: "after round \(round)'s imports")
                // Writes made between import and the next export.
                if chance(0.4) { try writeRandomly(r, operations: 1 + int(0..<3)) }
            }
            // Sometimes two replicas meet and swap everything, so that replicas with the same
            // history exist mid-run (checked below).
            if chance(0.6) {
                let pair = subset(Array(0..<replicaCount), count: 2)
                var paths: [String] = []
                for r in pair {
                    exportCounter += 1
                    let path = try bs(["export", dbs[r], "--full", "-o", tmp.file("bundles/e\(exportCounter)-r\(r)-round\(round)-meet.bsync")])
                    try checkExportedPath(path)
                    paths.append(path)
                    pool.append(Bundle(path: path, exporter: r, round: round, due: (0..<replicaCount).map { _ in round + 1 + int(0..<2) }))
                }
                try bs(["import", dbs[pair[0]], paths[1]])
                try bs(["import", dbs[pair[1]], paths[0]])
            }
            try checkMidRun(round: round)
        }
        // A mode that the random schedule never managed to use (e.g. --to while no replica
        // had heard from a peer yet) is exercised once now, and delivered.
        for mode in ExportMode.allCases where !modesUsed.contains(mode) {
            let r = int(0..<replicaCount)
            if mode == .to, try knownPeers(r).isEmpty,
               let heard = pool.last(where: { $0.exporter >= 0 && $0.exporter != r }) {
                try bs(["import", dbs[r], heard.path])
            }
            try export(r, mode: mode, round: rounds)
            try bs(["import", dbs[pick(Array(0..<replicaCount).filter { $0 != r })], pool.last!.path])
        }
        check(modesUsed == Set(ExportMode.allCases),
              "test self-check: not every export mode was exercised: \(modesUsed.map(\.rawValue).sorted())")

        // Final exchange until quiescent: everyone exports everything, everyone imports all of it, twice.
        script.append("# ---- final exchange")
        _ = tmp.dir("final")
        var finalBundles: [String] = []
        for pass in 0..<2 {
            finalBundles = []
            for r in 0..<replicaCount {
                let path = try bs(["export", dbs[r], "-o", tmp.file("final/pass\(pass)-r\(r).bsync"), "--full"])
                try checkExportedPath(path)
                finalBundles.append(path)
            }
            for r in 0..<replicaCount {
                try bs(["import", dbs[r]] + finalBundles.shuffled(using: &rng))
            }
        }
        pool.append(contentsOf: finalBundles.map { Bundle(path: $0, exporter: -1, round: rounds, due: []) })

        // A fresh replica with the same schema and no rows learns everything from the full bundles.
        let fresh = tmp.file("fresh.db")
        script.append("sqlite3 \(shellPath(fresh)) <<'SQL'\n\(schemaSQL)\nSQL")
        try App.execute(fresh, schemaSQL)
        try bs(["init", fresh, "--name", "fresh"])
        for t in tables { try bs(["track", fresh, t.name]) }
        for path in finalBundles.shuffled(using: &rng) { try bs(["import", fresh, path]) }

        let all = dbs + [fresh]
        let allNames = names + ["fresh"]

        // 1. Exactly the same rows everywhere (type- and bit-exact), not only the digest.
        var reference: [String: [[SQLValue]]] = [:]
        for t in tables {
            reference[t.name] = try rows(dbs[0], "SELECT * FROM \(t.name) ORDER BY \(t.orderBy)")
        }
        for (i, db) in all.enumerated() where i > 0 {
            for t in tables {
                let got = try rows(db, "SELECT * FROM \(t.name) ORDER BY \(t.orderBy)")
                check(got == reference[t.name]!,
                      "after the full exchange, \(allNames[i]).\(t.name) differs from r0.\(t.name): "
                      + describeDifference(reference[t.name]!, got, left: "r0", right: allNames[i]))
            }
        }

        // 2. Equal digests.
        var digests: [String] = []
        for db in all { digests.append(try bs(["digest", db])) }
        check(Set(digests).count == 1,
              "digests differ after the full exchange: " + zip(allNames, digests).map { "\($0)=\($1)" }.joined(separator: " "))

        // 3. Every uncontested write is present exactly, on every replica.
        for (i, db) in all.enumerated() {
            for owner in 0..<replicaCount {
                try checkPrivateRows(of: owner, on: i, db: db, name: allNames[i], when: "after the full exchange")
            }
        }

        // Nothing is left parked, and every replica holds the whole history of every origin.
        var vectors: [[String: Int]] = []
        for (i, db) in all.enumerated() {
            let status = try statusJSON(i, db: db).object
            let parked = status["parked"] as? [Any] ?? []
            check(parked.isEmpty, "\(allNames[i]) still has parked batches after the full exchange: \(parked)")
            let vector = status["vector"] as? [String: Any] ?? [:]
            var v: [String: Int] = [:]
            for id in ids { v[id] = (vector[id] as? NSNumber)?.intValue ?? 0 }
            vectors.append(v)
        }
        for (i, v) in vectors.enumerated() where v != vectors[0] {
            check(false, "\(allNames[i])'s vector over the original replicas \(v) differs from r0's \(vectors[0])")
        }

        // 4. Importing every bundle again changes nothing and succeeds.
        script.append("# ---- re-import everything")
        let everything = pool.map(\.path)
        for (i, db) in all.enumerated() {
            try bs(["import", db] + everything.shuffled(using: &rng))
            for t in tables {
                let got = try rows(db, "SELECT * FROM \(t.name) ORDER BY \(t.orderBy)")
                check(got == reference[t.name]!,
                      "re-importing every bundle changed \(allNames[i]).\(t.name): "
                      + describeDifference(reference[t.name]!, got, left: "r0 before", right: "\(allNames[i]) after"))
            }
            let d = try bs(["digest", db])
            check(d == digests[0], "re-importing every bundle changed \(allNames[i])'s digest from \(digests[0]) to \(d)")
        }
    }

    // MARK: values

    func makeValuePool() {
        var bigBlob: [UInt8] = []
        for _ in 0..<3000 { bigBlob.append(UInt8.random(in: 0...255, using: &rng)) }
        var smallBlob: [UInt8] = []
        for _ in 0..<(1 + int(0..<16)) { smallBlob.append(UInt8.random(in: 0...255, using: &rng)) }
        var bigText = ""
        let pieces = ["héllo ", "🚑🧭", " 日本語 ", "it's ", "ключ ", "\n", "\t", "e\u{301} "]
        while bigText.utf8.count < 4000 { bigText += pick(pieces) + String(int(0..<1000)) }
        values = [
            "NULL", "0", "1", "-1", "42", "3", "9223372036854775807", "-9223372036854775808",
            "0.1", "-0.0", "1e308", "2.5", "3.0", "-1e-300",
            "''", sqlText("héllo"), sqlText("🚑🧭"), sqlText("日本語"), sqlText("it's"), sqlText(bigText),
            "x''", "x'00'", hexLiteral(smallBlob), hexLiteral(bigBlob),
        ]
    }

    /// A value for `column` of `spec`: mostly a literal, sometimes an expression over the old value.
    func valueExpression(_ spec: TableSpec, _ column: String) -> String {
        if chance(0.12) {
            switch int(0..<4) {
            case 0: return "\(column) * 3"
            case 1: return "coalesce(\(column), 0) + 1"
            case 2: return "\(column) || \(pick(["'!'", "'日'", "x'ff'"]))"
            default: return "\(column) / 7.0"
            }
        }
        return pick(values)
    }

    // MARK: writes

    enum Op {
        /// Touches only keys of one class: private ones run on the model too.
        case plain(String, isPrivate: Bool)
        /// Primary-key update of a private row onto a shared key (the private key is deleted).
        case privateToShared(TableSpec, from: Key, to: Key)
        /// Primary-key update of a shared row onto a private key (the private key is inserted).
        case sharedToPrivate(TableSpec, from: Key, to: Key)
    }

    func writeRandomly(_ r: Int, operations count: Int) throws {
        var ops: [Op] = []
        for _ in 0..<count { ops.append(randomOp(r)) }
        var i = 0
        while i < ops.count {
            // Sometimes run several single-class statements in one application transaction.
            if case .plain = ops[i], chance(0.3) {
                var group: [(String, Bool)] = []
                while i < ops.count, case let .plain(sql, isPrivate) = ops[i], group.count < 4 {
                    group.append((sql, isPrivate))
                    i += 1
                }
                try app(r, "BEGIN;\n" + group.map { $0.0 + ";" }.joined(separator: "\n") + "\nCOMMIT;")
                let privates = group.filter(\.1).map { $0.0 + ";" }
                if !privates.isEmpty { try model(r, "BEGIN;\n" + privates.joined(separator: "\n") + "\nCOMMIT;") }
                continue
            }
            try run(ops[i], on: r)
            i += 1
        }
        try checkPrivateRows(of: r, on: r, when: "right after its own writes")
    }

    func run(_ op: Op, on r: Int) throws {
        switch op {
        case let .plain(sql, isPrivate):
            try app(r, sql)
            if isPrivate { try model(r, sql) }
        case let .privateToShared(spec, from, to):
            let targetExists = try !rows(dbs[r], "SELECT 1 FROM \(spec.name) WHERE \(whereClause(spec, to))").isEmpty
            try app(r, moveSQL(spec, from: from, to: to))
            if !targetExists { try model(r, "DELETE FROM \(spec.name) WHERE \(whereClause(spec, from))") }
        case let .sharedToPrivate(spec, from, to):
            let source = try rows(dbs[r], "SELECT * FROM \(spec.name) WHERE \(whereClause(spec, from))")
            let targetInModel = try !models[r].rows("SELECT 1 FROM \(spec.name) WHERE \(whereClause(spec, to))").isEmpty
            try app(r, moveSQL(spec, from: from, to: to))
            if let row = source.first, !targetInModel {
                let newKey = try models[r].rows("SELECT " + to.joined(separator: ", "))[0]
                let newRow = newKey + row.dropFirst(spec.keyColumns.count)
                let marks = Array(repeating: "?", count: newRow.count).joined(separator: ", ")
                try model(r, "INSERT INTO \(spec.name) VALUES (\(marks))", newRow)
            }
        }
    }

    /// A primary-key update that must not hit an existing key.
    func moveSQL(_ spec: TableSpec, from: Key, to: Key, extraSet: [String] = []) -> String {
        let sets = zip(spec.keyColumns, zip(from, to)).filter { $1.0 != $1.1 || chance(0.3) }
            .map { "\($0) = \($1.1)" } + extraSet
        if chance(0.5) {
            return "UPDATE OR IGNORE \(spec.name) SET \(sets.joined(separator: ", ")) WHERE \(whereClause(spec, from))"
        }
        return "UPDATE \(spec.name) SET \(sets.joined(separator: ", ")) WHERE \(whereClause(spec, from)) "
            + "AND NOT EXISTS (SELECT 1 FROM \(spec.name) WHERE \(whereClause(spec, to)))"
    }

    func randomOp(_ r: Int) -> Op {
        let spec = chance(0.55) ? itemsTable : pairsTable
        let isPrivate = chance(0.4)
        let keys = isPrivate ? privateKeys(spec.name, replica: r) : sharedKeys[spec.name]!
        let key = pick(keys)
        let cols = spec.keyColumns.joined(separator: ", ")
        switch int(0..<100) {
        case 0..<14: // INSERT OR REPLACE, some columns (the others become NULL)
            let vcols = subset(spec.valueColumns, count: int(0..<(spec.valueColumns.count + 1)))
            let all = spec.keyColumns + vcols
            let vals = key + vcols.map { _ in pick(values) }
            return .plain("INSERT OR REPLACE INTO \(spec.name)(\(all.joined(separator: ", "))) VALUES (\(vals.joined(separator: ", ")))",
                          isPrivate: isPrivate)
        case 14..<24: // insert unless present
            let vcols = subset(spec.valueColumns, count: 1 + int(0..<spec.valueColumns.count))
            let all = spec.keyColumns + vcols
            let vals = key + vcols.map { _ in pick(values) }
            let head = "INTO \(spec.name)(\(all.joined(separator: ", "))) VALUES (\(vals.joined(separator: ", ")))"
            return .plain(chance(0.5) ? "INSERT \(head) ON CONFLICT DO NOTHING" : "INSERT OR IGNORE \(head)",
                          isPrivate: isPrivate)
        case 24..<32: // upsert
            let vcols = subset(spec.valueColumns, count: 1 + int(0..<spec.valueColumns.count))
            let all = spec.keyColumns + vcols
            let vals = key + vcols.map { _ in pick(values) }
            let updates = vcols.map { c in chance(0.6) ? "\(c) = excluded.\(c)" : "\(c) = \(valueExpression(spec, c))" }
            return .plain("INSERT INTO \(spec.name)(\(all.joined(separator: ", "))) VALUES (\(vals.joined(separator: ", "))) "
                          + "ON CONFLICT(\(cols)) DO UPDATE SET \(updates.joined(separator: ", "))", isPrivate: isPrivate)
        case 32..<58: // update 1-3 columns
            let vcols = subset(spec.valueColumns, count: 1 + int(0..<min(3, spec.valueColumns.count)))
            let sets = vcols.map { "\($0) = \(valueExpression(spec, $0))" }
            return .plain("UPDATE \(spec.name) SET \(sets.joined(separator: ", ")) WHERE \(whereClause(spec, key))",
                          isPrivate: isPrivate)
        case 58..<62: // update several rows at once
            if spec.name == "pairs" {
                let a = isPrivate ? pick([sqlText("own-\(r)"), sqlText("own-\(r)-ü")]) : pick(["'x'", "'y'", "'日本'"])
                let c = pick(spec.valueColumns)
                return .plain("UPDATE pairs SET \(c) = \(valueExpression(spec, c)) WHERE a = \(a)", isPrivate: isPrivate)
            }
            let glob = isPrivate ? "id GLOB 'own-\(r)-*'" : "id NOT GLOB 'own-*'"
            let c = pick(spec.valueColumns)
            return .plain("UPDATE items SET \(c) = \(valueExpression(spec, c)) WHERE \(glob) AND id < \(pick(keys)[0])",
                          isPrivate: isPrivate)
        case 62..<76: // delete
            if chance(0.1), spec.name == "pairs" {
                let a = isPrivate ? pick([sqlText("own-\(r)"), sqlText("own-\(r)-ü")]) : pick(["'x'", "'y'", "'日本'"])
                return .plain("DELETE FROM pairs WHERE a = \(a)", isPrivate: isPrivate)
            }
            return .plain("DELETE FROM \(spec.name) WHERE \(whereClause(spec, key))", isPrivate: isPrivate)
        case 76..<90: // primary-key update within the class, sometimes with a value change too
            var to = pick(keys)
            while to == key { to = pick(keys) }
            var extra: [String] = []
            if chance(0.3) { let c = pick(spec.valueColumns); extra = ["\(c) = \(pick(values))"] }
            return .plain(moveSQL(spec, from: key, to: to, extraSet: extra), isPrivate: isPrivate)
        default: // primary-key update across classes
            if isPrivate {
                return .privateToShared(spec, from: key, to: pick(sharedKeys[spec.name]!))
            }
            return .sharedToPrivate(spec, from: key, to: pick(privateKeys(spec.name, replica: r)))
        }
    }

    // MARK: exports and deliveries

    func checkExportedPath(_ path: String) throws {
        if path.isEmpty || !FileManager.default.fileExists(atPath: path) {
            record("export printed '\(path)', which is not an existing bundle file")
            throw Abort()
        }
    }

    func export(_ r: Int, mode wanted: ExportMode, round: Int) throws {
        var mode = wanted
        var args = ["export", dbs[r]]
        switch mode {
        case .automatic: break
        case .full: args.append("--full")
        case .to:
            let peers = try knownPeers(r)
            if peers.isEmpty {
                mode = .automatic // no peer known yet: --to would rightly be refused
            } else {
                for p in subset(peers.sorted(), count: chance(0.3) ? 2 : 1) { args += ["--to", p] }
            }
        case .since:
            let other = pick(Array(0..<replicaCount).filter { $0 != r })
            if chance(0.6) {
                // What the other replica holds right now: a small delta, which parks on
                // replicas that lack earlier history.
                let file = tmp.file("vectors/r\(other)-now\(exportCounter).json")
                let text = try statusJSON(other).text
                script[script.count - 1] += " > \(shellPath(file))"
                try text.write(toFile: file, atomically: true, encoding: .utf8)
                args += ["--since", file]
            } else {
                args += ["--since", pick(vectorFiles[other])] // stale
            }
        }
        modesUsed.insert(mode)
        exportCounter += 1
        let explicit: String?
        if chance(0.5) {
            explicit = tmp.file("bundles/e\(exportCounter)-r\(r)-round\(round)-\(mode.rawValue).bsync")
            args += ["-o", explicit!]
        } else {
            explicit = nil
            args += ["-o", tmp.file("out-r\(r)")]
        }
        let path = try bs(args)
        try checkExportedPath(path)
        if let explicit { check(path == explicit, "export -o \(explicit) printed a different path: \(path)") }
        var due: [Int] = []
        for _ in 0..<replicaCount {
            let delay = int(0..<10)
            due.append(round + (delay < 4 ? 0 : delay < 7 ? 1 : delay < 9 ? 2 : 3))
        }
        let header = try BundleReader(path: path).header
        pool.append(Bundle(path: path, exporter: r, round: round, due: due, deltaBase: header.isDeltaSnapshot ? header.baseVector : nil))
    }

    /// What replica `r` holds now.
    func vector(_ r: Int) throws -> VersionVector {
        var v = VersionVector()
        for (id, n) in try statusJSON(r).object["vector"] as? [String: Any] ?? [:] {
            if let id = ReplicaID(hex: id), let n = n as? Int { v[id] = UInt64(n) }
        }
        return v
    }

    func knownPeers(_ r: Int) throws -> [String] {
        (try statusJSON(r).object["peers"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
    }

    func deliver(to r: Int, round: Int) throws {
        // Sometimes a replica is offline for a round and receives nothing.
        if chance(0.15) { return }
        var batch: [String] = []
        // A delta snapshot is delivered only where it fits: a replica that lacks part of its
        // base refuses it (DeltaSnapshotTests), and the rows it carries come again later.
        let holds = try vector(r)
        for b in pool where b.exporter >= 0 && b.due[r] <= round && b.deltaBase.map(holds.dominates) != false {
            if delivered[r].contains(b.path) ? chance(0.15) : chance(0.55) { batch.append(b.path) }
        }
        if let dup = batch.randomElement(using: &rng), chance(0.25) { batch.append(dup) }
        if chance(0.35) {
            // Newest first, one bundle per call: later batches arrive before earlier ones.
            let order = Dictionary(pool.enumerated().map { ($1.path, $0) }, uniquingKeysWith: max)
            batch.sort { order[$0]! > order[$1]! }
            for path in batch { try bs(["import", dbs[r], path]) }
            for p in batch { delivered[r].insert(p) }
            return
        }
        batch.shuffle(using: &rng)
        // Sometimes a whole export directory, as from a USB stick.
        if chance(0.15) {
            let other = pick(Array(0..<replicaCount))
            let dir = tmp.file("out-r\(other)")
            let inside = pool.filter { $0.path.hasPrefix(dir + "/") }
            if !inside.isEmpty, inside.allSatisfy({ $0.deltaBase.map(holds.dominates) != false }) {
                batch.insert(dir, at: int(0..<(batch.count + 1)))
                for p in inside { delivered[r].insert(p.path) }
            }
        }
        // One import call with several paths, or several calls.
        var i = 0
        while i < batch.count {
            let n = chance(0.5) ? batch.count - i : 1 + int(0..<(batch.count - i))
            try bs(["import", dbs[r]] + batch[i..<(i + n)])
            i += n
        }
        for p in batch { delivered[r].insert(p) }
    }

    // MARK: checks

    /// Between rounds: replicas that applied the same history (equal vectors; parking is
    /// causal, so nothing beyond the vector is applied) and hold no unsealed local change
    /// hold identical tables (SPEC §3); and digests are equal exactly when content is (§3.6).
    func checkMidRun(round: Int) throws {
        var state: [(vector: [String: Int], pending: Int, content: [[[SQLValue]]], digest: String)] = []
        for r in 0..<replicaCount {
            let status = try statusJSON(r).object
            var vector: [String: Int] = [:]
            for (id, n) in status["vector"] as? [String: Any] ?? [:] {
                let count = (n as? NSNumber)?.intValue ?? -1
                if count != 0 { vector[id] = count }
            }
            let pending = (status["pending_changes"] as? NSNumber)?.intValue ?? -1
            var content: [[[SQLValue]]] = []
            for t in tables { content.append(try rows(dbs[r], "SELECT * FROM \(t.name) ORDER BY \(t.orderBy)")) }
            state.append((vector, pending, content, try bs(["digest", dbs[r]])))
        }
        for a in 0..<replicaCount {
            for b in (a + 1)..<replicaCount {
                let x = state[a], y = state[b]
                check((x.content == y.content) == (x.digest == y.digest),
                      "after round \(round): r\(a) and r\(b) have \(x.content == y.content ? "equal" : "different") content "
                      + "but \(x.digest == y.digest ? "equal" : "different") digests (\(x.digest) / \(y.digest))")
                if x.vector == y.vector && x.pending == 0 && y.pending == 0 {
                    for (i, t) in tables.enumerated() {
                        check(x.content[i] == y.content[i],
                              "after round \(round): r\(a) and r\(b) applied the same history (vector \(x.vector), nothing pending) "
                              + "but hold different \(t.name): " + describeDifference(x.content[i], y.content[i], left: "r\(a)", right: "r\(b)"))
                    }
                }
            }
        }
    }

    func checkPrivateRows(of owner: Int, on i: Int, db: String? = nil, name: String? = nil, when: String) throws {
        for t in tables {
            let q = privateRowsQuery(t.name, replica: owner)
            let expected: [[SQLValue]]
            do { expected = try models[owner].rows(q) } catch {
                record("model query failed (test bug): \(error)")
                throw Abort()
            }
            let got = try rows(db ?? dbs[i], q)
            let who = name ?? names[i]
            check(got == expected,
                  "\(when): \(who)'s rows for the keys only r\(owner) ever wrote (\(t.name)) differ from the model: "
                  + describeDifference(expected, got, left: "model", right: who))
        }
    }
}

// MARK: - Messages

private func render(_ v: SQLValue) -> String {
    switch v {
    case .real(let d): return "REAL(\(d), bits 0x\(String(d.bitPattern, radix: 16)))"
    case .text(let t) where t.count > 40: return "TEXT(\(t.count) bytes: '\(String(decoding: t.prefix(24), as: UTF8.self))…')"
    case .blob(let b) where b.count > 20: return "BLOB(\(b.count) bytes: \(hexString(b.prefix(12)))…)"
    case .text: return "TEXT(\(v.display))"
    case .blob: return "BLOB(\(v.display))"
    case .integer(let n): return "INTEGER(\(n))"
    case .null: return "NULL"
    }
}

private func render(_ row: [SQLValue]) -> String { "(" + row.map(render).joined(separator: ", ") + ")" }

private func describeDifference(_ a: [[SQLValue]], _ b: [[SQLValue]], left: String, right: String) -> String {
    var lines = ["\(left) has \(a.count) rows, \(right) has \(b.count) rows"]
    // Rows keyed by their rendering, to show what is only on one side.
    let sa = a.map(render), sb = b.map(render)
    let onlyA = sa.filter { !sb.contains($0) }, onlyB = sb.filter { !sa.contains($0) }
    for s in onlyA.prefix(8) { lines.append("  only in \(left):  \(s)") }
    for s in onlyB.prefix(8) { lines.append("  only in \(right): \(s)") }
    if onlyA.count > 8 || onlyB.count > 8 { lines.append("  …") }
    return lines.joined(separator: "\n")
}
