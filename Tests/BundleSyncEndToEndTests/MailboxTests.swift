import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// The sneakernet loop (SPEC §2, §2.1, §4.3): peers, minimal deltas, a shared mailbox
/// folder, and bounded history.
@Suite struct MailboxTests {
    static let schema = "CREATE TABLE notes(id TEXT PRIMARY KEY, owner TEXT, body TEXT, n INTEGER);"
    static let order = "SELECT * FROM notes ORDER BY id"

    func bundlesByExporter(in dir: String) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(".bsync") {
            let out = try CLI.ok(["inspect", "--json", (dir as NSString).appendingPathComponent(name)])
            let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
            let exporter = (json["exporter"] as! [String: Any])["name"] as! String
            counts[exporter, default: 0] += 1
        }
        return counts
    }

    @Test func replicasSharingOneFolderConvergeAndTheFolderStaysSmall() throws {
        let tmp = TempDir()
        let box = tmp.dir("box")
        var rng = SplitMix64(seed: 42)
        let replicas = try (0..<5).map { try TestReplica("site\($0)", in: tmp, schema: Self.schema, tables: ["notes"]) }
        var counter = 0
        func write(_ r: TestReplica) throws {
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                counter += 1
                let key = "k\(Int.random(in: 0..<30, using: &rng))"
                try r.sql("INSERT INTO notes VALUES ('\(key)', '\(r.name)', 'body \(counter)', \(counter)) ON CONFLICT(id) DO UPDATE SET body = excluded.body, n = excluded.n")
                if Bool.random(using: &rng) { try r.sql("INSERT OR REPLACE INTO notes VALUES ('own-\(r.name)-\(counter)', '\(r.name)', 'private', \(counter))") }
                if Int.random(in: 0..<6, using: &rng) == 0 { try r.sql("DELETE FROM notes WHERE id = 'k\(Int.random(in: 0..<30, using: &rng))'") }
            }
        }
        // Writes go on while every replica syncs in random turns, each at least once.
        var turns = Array(replicas.indices) + (0..<10).map { _ in Int.random(in: 0..<5, using: &rng) }
        turns.shuffle(using: &rng)
        for i in turns {
            try write(replicas[i])
            try CLI.ok(["sync", replicas[i].db, box])
        }
        // Writes stop; every replica syncs twice more, in shuffled order.
        for _ in 0..<2 {
            for r in replicas.shuffled(using: &rng) { try CLI.ok(["sync", r.db, box]) }
        }
        let expected = try replicas[0].rows(Self.order)
        #expect(!expected.isEmpty)
        for r in replicas {
            #expect(try r.rows(Self.order) == expected, "\(r.name) differs")
            #expect(try r.digest() == replicas[0].digest())
        }
        let perReplica = try bundlesByExporter(in: box)
        #expect(perReplica.values.allSatisfy { $0 == 1 }, "one bundle per replica in the folder: \(perReplica)")

        // A device joining late, empty, catches up in three turns: its own sync, one sync by
        // every other replica, and its own sync again.
        let late = try TestReplica("late", in: tmp, schema: Self.schema, tables: ["notes"])
        try CLI.ok(["sync", late.db, box])
        for r in replicas.shuffled(using: &rng) { try CLI.ok(["sync", r.db, box]) }
        try CLI.ok(["sync", late.db, box])
        #expect(try late.rows(Self.order) == expected)
        #expect(try late.digest() == replicas[0].digest())
        #expect(try bundlesByExporter(in: box).values.allSatisfy { $0 == 1 })
    }

    @Test func aDeltaToAKnownPeerIsATenthOfAFullExport() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["notes"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["notes"])
        try a.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO notes SELECT printf('note-%05d', i), 'a', 'the text of note number ' || i || ' ' || hex(randomblob(8)), i FROM n")
        try b.importing([try a.export(to: tmp.dir("s1"))])
        try a.importing([try b.export(to: tmp.dir("s2"))])
        try a.sql("UPDATE notes SET body = body || ' (edited)' WHERE n % 20 = 0") // 5% of rows
        let delta = try a.export(["--to", "b"], to: tmp.dir("s3"))
        let full = try a.export(["--full"], to: tmp.dir("s4"))
        let deltaSize = try FileManager.default.attributesOfItem(atPath: delta)[.size] as! Int
        let fullSize = try FileManager.default.attributesOfItem(atPath: full)[.size] as! Int
        #expect(deltaSize * 10 < fullSize, "delta \(deltaSize) bytes vs full \(fullSize) bytes")
        try b.importing([delta])
        #expect(try a.digest() == b.digest())
    }

    @Test func afterPruningANewReplicaJoinsByASnapshotAndDeltasFollow() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["notes"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["notes"])
        try CLI.ok(["config", a.db, "keep-batches", "0"]) // prune all that every known peer holds
        try a.sql("INSERT INTO notes VALUES ('x', 'a', 'one', 1), ('y', 'a', 'two', 2)")
        try b.importing([try a.export(to: tmp.dir("s1"))])
        try b.sql("UPDATE notes SET body = 'two, edited by b' WHERE id = 'y'; DELETE FROM notes WHERE id = 'x'")
        try a.importing([try b.export(to: tmp.dir("s2"))])
        try b.importing([try a.export(to: tmp.dir("s3"))]) // b learns what a holds
        let before = try a.status()["history"] as! [String: Any]
        let pruned = try CLI.run(["prune", a.db])
        #expect(pruned.status == 0 && pruned.stderr.contains("pruned 2 batches"))
        let after = try a.status()["history"] as! [String: Any]
        #expect((after["batches"] as! Int) < (before["batches"] as! Int))

        let c = try TestReplica("c", in: tmp, schema: Self.schema, tables: ["notes"])
        let full = try a.export(["--full"], to: tmp.dir("s4"))
        #expect(try CLI.ok(["verify", full]).contains("a snapshot of"))
        try c.importing([full])
        #expect(try c.rows(Self.order) == a.rows(Self.order))
        // Deltas from b continue the chains c adopted from the snapshot.
        try b.sql("INSERT INTO notes VALUES ('z', 'b', 'three', 3)")
        try c.importing([try b.export(["--to", "a"], to: tmp.dir("s5"))])
        try a.importing([try b.export(["--to", "a"], to: tmp.dir("s6"))])
        #expect(try c.rows(Self.order) == b.rows(Self.order))
        #expect(try c.digest() == a.digest())
        #expect((try c.status()["parked"] as! [Any]).isEmpty)
        // A peer that lacks pruned history gets a snapshot by default, not a broken delta.
        let d = try TestReplica("d", in: tmp, schema: Self.schema, tables: ["notes"])
        try a.importing([try d.export(to: tmp.dir("s7"))]) // a now knows d, which holds nothing
        let toD = try CLI.run(["export", a.db, "--to", "d", "-o", tmp.dir("s8")])
        #expect(toD.status == 0 && toD.stderr.contains("snapshot"))
        try d.importing([toD.trimmedOut])
        #expect(try d.digest() == a.digest())
    }

    @Test func aSyncKilledMidWriteLeavesNoBadBundleAndTheNextRecovers() throws {
        let tmp = TempDir()
        let box = tmp.dir("box")
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["notes"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["notes"])
        try a.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000) INSERT INTO notes SELECT printf('n%06d', i), 'a', hex(randomblob(40)), i FROM n")
        var rng = SplitMix64(seed: 9)
        for _ in 0..<4 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = ["sync", a.db, box]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            Thread.sleep(forTimeInterval: Double.random(in: 0.05...1.2, using: &rng))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            for name in try FileManager.default.contentsOfDirectory(atPath: box) where name.hasSuffix(".bsync") && !name.hasPrefix(".") {
                let v = try CLI.run(["verify", (box as NSString).appendingPathComponent(name)])
                #expect(v.status == 0, "a killed sync left '\(name)', which verify refuses: \(v.stderr)")
            }
        }
        try CLI.ok(["sync", a.db, box])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: box).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty, "temporary files left behind: \(leftovers)")
        try CLI.ok(["sync", b.db, box])
        #expect(try b.rows("SELECT count(*) FROM notes") == [[.integer(60000)]])
        #expect(try a.digest() == b.digest())
    }

    @Test func vectorFilesRoundTripAndMalformedOnesAre65() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["notes"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["notes"])
        try a.sql("INSERT INTO notes VALUES ('x', 'a', 'one', 1)")
        try b.importing([try a.export(to: tmp.dir("s1"))])
        try a.sql("INSERT INTO notes VALUES ('y', 'a', 'two', 2)")
        let vectorFile = tmp.file("b.vector")
        try CLI.ok(["vector", b.db]).write(toFile: vectorFile, atomically: true, encoding: .utf8)
        let delta = try a.export(["--since", vectorFile], to: tmp.dir("s2"))
        let info = try JSONSerialization.jsonObject(with: Data(try CLI.ok(["inspect", "--json", delta]).utf8)) as! [String: Any]
        #expect((info["batches"] as! [Any]).count == 1, "only what b lacks")
        for bad in ["not json", "[1, 2]", "{\"zz\": 1}", "{\"\(String(repeating: "a", count: 32))\": -1}", "{\"\(String(repeating: "a", count: 32))\": \"x\"}"] {
            let f = tmp.file("bad.vector")
            try bad.write(toFile: f, atomically: true, encoding: .utf8)
            let r = try CLI.run(["export", a.db, "--since", f, "-o", tmp.dir("s3")])
            #expect(r.status == 65, "'\(bad)': \(r.stderr)")
            #expect(r.stderr.contains("bad.vector"))
        }
    }
}
