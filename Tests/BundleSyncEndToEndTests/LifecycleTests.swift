import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// A replica's life over months: no batch is dropped without an error that names its
/// replica, and a peer counts as heard from only when it brought news.
@Suite struct LifecycleTests {
    static let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v);"

    @Test func aParkedBatchThatForksItsOriginIsReportedWhenItsHistoryArrives() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        let stick = tmp.dir("stick")
        try a.sql("INSERT INTO t VALUES ('x', 1)")
        try b.importing([try a.export(to: stick)])
        // A second file goes on under A's identity: claimed as moved, it is a copy.
        let copy = TestReplica(name: "a", db: tmp.file("a-copy.db"))
        try FileManager.default.copyItem(atPath: a.db, toPath: copy.db)
        try CLI.ok(["reidentify", copy.db, "--moved"])
        try a.sql("UPDATE t SET v = 2")
        let real2 = try a.export(to: tmp.dir("from-a"))
        try copy.sql("UPDATE t SET v = 20")
        _ = try copy.export(to: tmp.dir("from-copy-1"))
        try copy.sql("UPDATE t SET v = 30")
        // Only the copy's third batch reaches B: it parks, waiting for batch 2.
        let vector = tmp.file("a-holds-2.json")
        try CLI.ok(["vector", copy.db]).write(toFile: vector, atomically: true, encoding: .utf8)
        let third = try CLI.ok(["export", copy.db, "--since", vector, "-o", tmp.dir("from-copy-2")])
        let parked = try CLI.run(["import", b.db, third])
        #expect(parked.status == 0, "\(parked.stderr)")
        #expect(parked.stdout.contains("parked"), "\(parked.stdout)")
        // The real batch 2 arrives: the parked batch does not follow it.
        let r = try CLI.run(["import", b.db, real2])
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("the replica's history has forked; the parked batch is dropped"), "\(r.stderr)")
        #expect(r.stderr.contains("batch 3 of replica"), "\(r.stderr)")
        #expect(try b.rows("SELECT v FROM t") == [[.integer(2)]], "the real batch 2 applied")
        #expect((try b.status()["parked"] as? [Any])?.isEmpty == true)
    }

    /// The same fork, when the history arrives as a snapshot: the parked batch the snapshot
    /// covers is dropped, and reported as the fork it is.
    @Test func aParkedForkCoveredByASnapshotIsReported() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1)")
        try b.importing([try a.export(to: tmp.dir("stick"))])
        let copy = TestReplica(name: "a", db: tmp.file("a-copy.db"))
        try FileManager.default.copyItem(atPath: a.db, toPath: copy.db)
        try CLI.ok(["reidentify", copy.db, "--moved"])
        try copy.sql("UPDATE t SET v = 20")
        _ = try copy.export(to: tmp.dir("from-copy-1"))
        let vector = tmp.file("copy-holds-2.json")
        try CLI.ok(["vector", copy.db]).write(toFile: vector, atomically: true, encoding: .utf8)
        try copy.sql("UPDATE t SET v = 30")
        let third = try CLI.ok(["export", copy.db, "--since", vector, "-o", tmp.dir("from-copy-2")])
        #expect(try CLI.run(["import", b.db, third]).stdout.contains("parked"))
        try a.sql("UPDATE t SET v = 2")
        _ = try a.export(to: tmp.dir("from-a-1"))
        try a.sql("UPDATE t SET v = 3")
        let snapshot = try a.export(["--full"], to: tmp.dir("from-a-full"))
        let r = try CLI.run(["import", b.db, snapshot])
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("batch 3 of replica") && r.stderr.contains("has forked; the parked batch is dropped"), "\(r.stderr)")
        #expect(try b.rows("SELECT v FROM t") == [[.integer(3)]], "the snapshot applied")
        #expect((try b.status()["parked"] as? [Any])?.isEmpty == true)
    }

    @Test func anOldBundleDoesNotMakeAPeerLookRecentlyHeard() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        try b.sql("INSERT INTO t VALUES ('x', 1)")
        let bundle = try b.export(to: tmp.dir("stick"))
        try a.importing([bundle])
        func lastHeard() throws -> String? {
            (try a.status()["peers"] as? [[String: Any]])?.first { $0["name"] as? String == "b" }?["last_heard"] as? String
        }
        let first = try lastHeard()
        #expect(first != nil)
        usleep(20_000)
        try a.importing([bundle])
        #expect(try lastHeard() == first, "a bundle that brought nothing new is no news of its exporter")
        try b.sql("INSERT INTO t VALUES ('y', 2)")
        usleep(20_000)
        try a.importing([try b.export(to: tmp.dir("stick2"))])
        #expect(try lastHeard() != first)
    }
}
