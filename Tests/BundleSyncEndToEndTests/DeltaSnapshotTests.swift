import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Delta snapshots, the pruning window and header-first skipping (SPEC §2, §4.3, §4.5).
@Suite struct DeltaSnapshotTests {
    static let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v INTEGER);"
    static let order = "SELECT * FROM t ORDER BY id"

    func inspect(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(try CLI.ok(["inspect", "--json", path]).utf8)) as! [String: Any]
    }

    /// a holds 200 rows that b and c hold too; a then changes 3 rows and deletes one, b gets
    /// those batches, c is forgotten, and a prunes: c now lacks history a no longer keeps.
    func prunedPast(_ tmp: TempDir) throws -> (a: TestReplica, b: TestReplica, c: TestReplica) {
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        let c = try TestReplica("c", in: tmp, schema: Self.schema, tables: ["t"])
        try CLI.ok(["config", a.db, "keep-batches", "0"])
        try a.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) INSERT INTO t SELECT printf('k%03d', i), i FROM n")
        let first = try a.export(to: tmp.dir("s1"))
        try b.importing([first])
        try c.importing([first])
        try a.importing([try b.export(to: tmp.dir("s2")), try c.export(to: tmp.dir("s3"))])
        try a.sql("UPDATE t SET v = v + 1000 WHERE id IN ('k001', 'k002', 'k003'); DELETE FROM t WHERE id = 'k004'")
        try b.importing([try a.export(["--to", "b"], to: tmp.dir("s4"))])
        try a.importing([try b.export(to: tmp.dir("s5"))])
        try CLI.ok(["forget", a.db, "c"])
        try CLI.ok(["prune", a.db])
        #expect((try a.status()["history"] as! [String: Any])["batches"] as? Int == 0)
        return (a, b, c)
    }

    @Test func aPeerBehindPrunedHistoryGetsOnlyTheChangedRowsAndConverges() throws {
        let tmp = TempDir()
        let (a, _, c) = try prunedPast(tmp)
        let vector = tmp.file("c.vector")
        try CLI.ok(["vector", c.db]).write(toFile: vector, atomically: true, encoding: .utf8)
        let delta = try a.export(["--since", vector], to: tmp.dir("s6"))
        let json = try inspect(delta)
        #expect((json["required_capabilities"] as! [String]).contains("snapshot-delta-v1"))
        #expect(json["rows"] as? Int == 4, "3 changed rows and 1 tombstone, not the 200 of the table")
        #expect((json["base_vector"] as! [String: Any]).count == 1)
        #expect(try CLI.ok(["verify", delta]).contains("a delta snapshot of 4 rows"))
        let imported = try CLI.ok(["import", c.db, delta])
        #expect(imported.contains("applied a snapshot of 4 rows"))
        #expect(try c.digest() == a.digest())
        #expect(try c.rows(Self.order) == a.rows(Self.order))
        #expect(try c.rows("SELECT count(*) FROM t") == [[.integer(199)]])
        // c now holds a's history as a's own bundles would have brought it.
        #expect(NSDictionary(dictionary: try c.status()["vector"] as! [String: Any]) == NSDictionary(dictionary: try a.status()["vector"] as! [String: Any]))
    }

    @Test func aDeltaSnapshotIsRefusedByAReplicaBelowItsBaseWithTheCommandThatHelps() throws {
        let tmp = TempDir()
        let (a, _, c) = try prunedPast(tmp)
        let vector = tmp.file("c.vector")
        try CLI.ok(["vector", c.db]).write(toFile: vector, atomically: true, encoding: .utf8)
        let delta = try a.export(["--since", vector], to: tmp.dir("s6"))
        let d = try TestReplica("d", in: tmp, schema: Self.schema, tables: ["t"])
        let before = try d.digest()
        let refused = try CLI.run(["import", d.db, delta])
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("delta snapshot") && refused.stderr.contains("replica 'a'"), "\(refused.stderr)")
        #expect(refused.stderr.contains("hint:") && refused.stderr.contains("export DB --full"), "\(refused.stderr)")
        #expect(try d.digest() == before)
        #expect(try d.rows("SELECT count(*) FROM t") == [[.integer(0)]])
        #expect(try CLI.run(["verify", delta]).status == 0)
        #expect(try CLI.run(["verify", delta, "--db", d.db]).status == 65)
        #expect(try CLI.run(["verify", delta, "--db", c.db]).status == 0)
        // In a shared folder, such a bundle is for the others: noted, not an error.
        let box = tmp.dir("box")
        try FileManager.default.copyItem(atPath: delta, toPath: (box as NSString).appendingPathComponent((delta as NSString).lastPathComponent))
        let synced = try CLI.run(["sync", d.db, box])
        #expect(synced.status == 0 && synced.stderr.contains("skipped, a delta snapshot"), "\(synced.stderr)")
        // The whole snapshot the hint names brings d in.
        try d.importing([try a.export(["--full"], to: tmp.dir("s7"))])
        #expect(try d.digest() == a.digest())
    }

    @Test func pruningKeepsTheLatestBatchesSoAPeerHeardFromLateGetsBatches() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        #expect(try CLI.ok(["config", a.db, "keep-batches"]) == "keep-batches 32")
        try CLI.ok(["config", a.db, "keep-batches", "2"])
        for i in 1...3 {
            try a.sql("INSERT INTO t VALUES ('r\(i)', \(i))")
            try b.importing([try a.export(to: tmp.dir("a\(i)"))])
            try a.importing([try b.export(to: tmp.dir("b\(i)"))])
        }
        let pruned = try CLI.run(["prune", a.db])
        #expect(pruned.stderr.contains("pruned 1 batch "), "\(pruned.stderr)")
        #expect((try a.status()["history"] as! [String: Any])["batches"] as? Int == 2)
        // A peer heard from late, behind by the two latest batches only, is sent batches; one
        // further behind, a snapshot.
        let vector = tmp.file("v")
        try "{\"\(try a.status()["id"] as! String)\": 1}".write(toFile: vector, atomically: true, encoding: .utf8)
        let toC = try CLI.run(["export", a.db, "--since", vector, "-o", tmp.dir("c")])
        #expect(toC.status == 0 && toC.stderr.contains("exported 2 batches"), "\(toC.stderr)")
        try "{}".write(toFile: vector, atomically: true, encoding: .utf8)
        let fresh = try CLI.run(["export", a.db, "--since", vector, "-o", tmp.dir("fresh")])
        #expect(fresh.status == 0 && fresh.stderr.contains("snapshot"), "\(fresh.stderr)")
    }

    @Test func aBundleHeldHereIsSkippedByItsHeaderYetStillAuthenticatedAndItsVectorLearned() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        let c = try TestReplica("c", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1), ('y', 2)")
        let fromA = try a.export(to: tmp.dir("s1"))
        try b.importing([fromA])
        try c.importing([fromA])
        // c relays a's batch, which b holds: b skips the bundle and learns what c holds.
        let nothing = tmp.file("empty.vector")
        try "{}".write(toFile: nothing, atomically: true, encoding: .utf8)
        let fromC = try c.export(["--since", nothing], to: tmp.dir("s2"))
        #expect(try inspect(fromC)["batches"].map { ($0 as! [Any]).count } == 1)
        #expect(try CLI.ok(["import", b.db, fromC]).contains("skipped, already imported"))
        let peers = try b.status()["peers"] as! [[String: Any]]
        let seen = peers.first { $0["name"] as? String == "c" }
        #expect(seen != nil)
        #expect(NSDictionary(dictionary: seen?["vector"] as? [String: Any] ?? [:]) == NSDictionary(dictionary: try c.status()["vector"] as! [String: Any]))
        // A flipped byte in the body of a bundle whose batches are all held is still refused.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fromA)))
        bytes[bytes.count - 153] ^= 0x01 // the last byte of the body, just before the trailer
        let damaged = tmp.file("damaged.bsync")
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        let refused = try CLI.run(["import", b.db, damaged])
        #expect(refused.status == 65, "\(refused.stderr)")
    }
}
