import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Replicas whose application changes under them still converge: columns added at random
/// rounds on each replica (so bundles and snapshots cross between application versions,
/// and are held and relayed by replicas that do not track what they change), tables rebuilt
/// the twelve-step way, a table untracked for a few rounds and tracked again, an application
/// trigger that writes another tracked table, and values that SQLite compares as equal (0.0
/// and -0.0), among random writes delivered late, out of order and twice.
@Suite struct SchemaDriftPropertyTests {
    @Test("schema drift on random replicas at random rounds: replicas converge", arguments: PropertySeeds.plan().seeds)
    func replicasConvergeThroughSchemaDrift(seed: UInt64) throws {
        if let problem = PropertySeeds.plan().problem { Issue.record(Comment(rawValue: problem)) }
        var run = DriftRun(seed: seed)
        do {
            try run.execute()
        } catch {
            Issue.record("seed \(seed): \(error)\nreplay: \(PropertySeeds.replayCommand(seed, suite: "SchemaDriftPropertyTests"))")
        }
    }
}

private struct DriftRun {
    static let schema = """
        CREATE TABLE items(id TEXT PRIMARY KEY, n, r REAL, t TEXT);
        CREATE TABLE audit(id TEXT PRIMARY KEY, item TEXT, note TEXT);
        CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN
          INSERT INTO audit VALUES (lower(hex(randomblob(8))), NEW.id, 'inserted');
        END;
        """
    static let baseColumns = ["n", "r", "t"]
    static let addedColumns = ["c1", "c2"]

    let seed: UInt64
    var rng: SplitMix64
    let tmp = TempDir()
    var replicas: [TestReplica] = []
    /// The round at which each replica's application adds each column.
    var addsAt: [[Int]] = []
    var columns: [[String]] = []
    /// Whether each replica has untracked `items` for now.
    var untracked: [Bool] = []
    var pool: [String] = []

    init(seed: UInt64) {
        self.seed = seed
        rng = SplitMix64(seed: seed)
    }

    mutating func int(_ r: Range<Int>) -> Int { Int.random(in: r, using: &rng) }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }

    mutating func value() -> String {
        ["NULL", "0.0", "-0.0", "1", "2.5", "'x'", "'日本'", "x'00ff'", "\(int(0..<1000))"][int(0..<9)]
    }

    mutating func execute() throws {
        let rounds = max(2, Int(PropertySeeds.environment["BUNDLESYNC_PROPERTY_ROUNDS"] ?? "") ?? 5)
        let count = 3
        for r in 0..<count {
            replicas.append(try TestReplica("r\(r)", in: tmp, schema: Self.schema, tables: ["items", "audit"]))
            addsAt.append(Self.addedColumns.map { _ in int(1..<(rounds + 2)) })
            columns.append(Self.baseColumns)
            untracked.append(false)
        }
        let stick = tmp.dir("stick")
        for round in 0..<rounds {
            for r in (0..<count).shuffled(using: &rng) {
                try drift(r, round: round)
                for _ in 0..<(2 + int(0..<5)) { try write(r) }
                pool += try exported(r, chance(0.3) ? ["--full"] : [], to: stick)
            }
            for r in (0..<count).shuffled(using: &rng) where !pool.isEmpty {
                let some = pool.shuffled(using: &rng).prefix(int(1..<(pool.count + 1)))
                try deliver(Array(some), to: r)
            }
        }
        // Every application is updated in the end; then everyone exchanges everything, twice.
        for r in 0..<count { try drift(r, round: Int.max) }
        for _ in 0..<2 {
            var bundles: [String] = []
            for r in 0..<count { bundles += try exported(r, chance(0.5) ? ["--full"] : [], to: tmp.dir("final")) }
            for r in 0..<count { try deliver(bundles.shuffled(using: &rng) + pool.shuffled(using: &rng).prefix(3), to: r) }
        }
        let list = (["id"] + Self.baseColumns + Self.addedColumns).joined(separator: ", ")
        let reference = try normalised(replicas[0].rows("SELECT \(list) FROM items ORDER BY id"))
        let referenceAudit = try replicas[0].rows("SELECT * FROM audit ORDER BY id")
        let digest = try replicas[0].digest()
        for r in replicas.dropFirst() {
            let rows = try normalised(r.rows("SELECT \(list) FROM items ORDER BY id"))
            #expect(rows == reference, "seed \(seed): \(r.name).items differs from r0.items: \(Self.difference(reference, rows))")
            #expect(try r.rows("SELECT * FROM audit ORDER BY id") == referenceAudit, "seed \(seed): \(r.name).audit differs")
            #expect(try r.digest() == digest, "seed \(seed): digests differ")
        }
        for r in replicas {
            #expect((try r.status()["held"] as? [Any])?.isEmpty == true, "seed \(seed): \(r.name) still holds changes")
        }
        // Every replica's trigger wrote one audit row for every insert it saw of a new key.
        #expect(!referenceAudit.isEmpty)
    }

    /// The bundle replica `r` exports into `dir`: none when it has nothing new to send
    /// (it says so, and prints no path).
    func exported(_ r: Int, _ extra: [String], to dir: String) throws -> [String] {
        let path = try replicas[r].export(extra, to: dir)
        return path.isEmpty ? [] : [path]
    }

    /// Imports `paths` into replica `r`, as its user would. A delta snapshot made for
    /// replicas that hold history `r` lacks is refused, and says so (exit status 65,
    /// DeltaSnapshotTests); the user then does what its hint says, and imports a whole
    /// snapshot of the replica that wrote it. Any other failure fails the run.
    func deliver(_ paths: [String], to r: Int) throws {
        let result = try CLI.run(["import", replicas[r].db] + paths)
        guard result.status != 0 else { return }
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }
        let refused = Set(paths.filter { result.stderr.contains("error: '\($0)' is a delta snapshot from replica") })
        guard result.status == 65, !refused.isEmpty, errors.allSatisfy({ $0.contains("is a delta snapshot from replica") }) else {
            Issue.record("seed \(seed): bundlesync import \(replicas[r].name) exited \(result.status): \(result.stderr)")
            throw TestFailure("import into \(replicas[r].name) failed")
        }
        for path in refused.sorted() {
            let writer = String((path as NSString).lastPathComponent.prefix { $0 != "-" })
            guard let w = replicas.firstIndex(where: { $0.name == writer }) else { throw TestFailure("no replica wrote '\(path)'") }
            let whole = try replicas[w].export(["--full"], to: tmp.dir("asked"))
            try replicas[r].importing([whole])
        }
    }

    /// Tracks `items` again on replica `r`. When peers changed meanwhile what untrack
    /// dropped here, track stops and says to import a whole snapshot from a peer: the user
    /// does so, from a replica that tracks the table, and tracks it again.
    mutating func retrack(_ r: Int) throws {
        let first = try CLI.run(["track", replicas[r].db, "items"])
        if first.status != 0 {
            guard first.stderr.contains("--full"), let w = (0..<replicas.count).first(where: { $0 != r && !untracked[$0] }) else {
                Issue.record("seed \(seed): track \(replicas[r].name) items exited \(first.status): \(first.stderr)")
                throw TestFailure("track again on \(replicas[r].name) failed")
            }
            try replicas[r].importing([try replicas[w].export(["--full"], to: tmp.dir("asked"))])
            try CLI.ok(["track", replicas[r].db, "items"])
        }
        untracked[r] = false
    }

    /// The application's schema changes due on replica `r` by `round`.
    mutating func drift(_ r: Int, round: Int) throws {
        if untracked[r] && (round == Int.max || chance(0.5)) {
            try retrack(r)
        } else if round != Int.max && !untracked[r] && untracked.filter({ !$0 }).count > 1 && chance(0.15) {
            try CLI.ok(["untrack", replicas[r].db, "items"])
            untracked[r] = true
        }
        for (i, column) in Self.addedColumns.enumerated() where addsAt[r][i] <= round && !columns[r].contains(column) {
            try replicas[r].sql("ALTER TABLE items ADD COLUMN \(column)")
            columns[r].append(column)
        }
        if round != Int.max && chance(0.2) {
            // SQLite's twelve-step table change, as an application migration does it.
            let list = (["id"] + columns[r]).joined(separator: ", ")
            try replicas[r].sql("""
                CREATE TABLE items_new(id TEXT PRIMARY KEY, \(columns[r].map { $0 == "r" ? "r REAL" : $0 == "t" ? "t TEXT" : $0 }.joined(separator: ", ")));
                INSERT INTO items_new(\(list)) SELECT \(list) FROM items;
                DROP TABLE items;
                ALTER TABLE items_new RENAME TO items;
                CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN
                  INSERT INTO audit VALUES (lower(hex(randomblob(8))), NEW.id, 'inserted');
                END;
                """)
        }
    }

    mutating func write(_ r: Int) throws {
        let key = "'k\(int(0..<12))'"
        let column = columns[r][int(0..<columns[r].count)]
        switch int(0..<10) {
        case 0..<4: try replicas[r].sql("INSERT OR IGNORE INTO items(id, \(column)) VALUES (\(key), \(value()))")
        case 4..<8: try replicas[r].sql("UPDATE items SET \(column) = \(value()) WHERE id = \(key)")
        // A row deleted while its table is not tracked is deleted here only (README Limits).
        default: if !untracked[r] { try replicas[r].sql("DELETE FROM items WHERE id = \(key)") }
        }
    }

    /// The rows only one side holds, rendered shortly.
    static func difference(_ a: [[SQLValue]], _ b: [[SQLValue]]) -> String {
        let onlyA = a.filter { !b.contains($0) }.map { $0.map(\.display).joined(separator: "|") }
        let onlyB = b.filter { !a.contains($0) }.map { $0.map(\.display).joined(separator: "|") }
        return "r0 only: \(onlyA); this only: \(onlyB)"
    }

    /// Rows with -0.0 read as 0.0: the two are one value to SQLite's comparisons, to
    /// capture and to the digest.
    func normalised(_ rows: [[SQLValue]]) -> [[SQLValue]] {
        rows.map { $0.map { v in if case .real(let d) = v, d == 0 { return .real(0) } else { return v } } }
    }
}
