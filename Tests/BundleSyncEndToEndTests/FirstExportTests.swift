import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// The first full export of a table tracked with rows in it: those rows are sealed in one
/// statement when the log holds only what tracking logged, and key by key otherwise. Either
/// way the peers converge, and later writes merge against the clocks it set.
@Suite struct FirstExportTests {
    static let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, a, b)"

    func replicaWithRows(_ name: String, _ tmp: TempDir, rows: Int) throws -> TestReplica {
        let db = tmp.file("\(name).db")
        try App.execute(db, Self.schema + "; WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < \(rows)) INSERT INTO t SELECT 'k' || i, i, 'text ' || i FROM c")
        try CLI.ok(["init", db, "--name", name])
        try CLI.ok(["track", db, "t"])
        return TestReplica(name: name, db: db)
    }

    func emptyReplica(_ name: String, _ tmp: TempDir) throws -> TestReplica {
        try TestReplica(name, in: tmp, schema: Self.schema, tables: ["t"])
    }

    func expectConverged(_ x: TestReplica, _ y: TestReplica, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let query = "SELECT id, a, b FROM t ORDER BY id"
        #expect(try x.rows(query) == y.rows(query), sourceLocation: sourceLocation)
        #expect(try x.digest() == y.digest(), sourceLocation: sourceLocation)
    }

    @Test func trackedRowsTravelAndLaterWritesMergeAgainstTheirClocks() throws {
        let tmp = TempDir()
        let a = try replicaWithRows("a", tmp, rows: 300)
        let b = try emptyReplica("b", tmp)
        let stick = tmp.dir("stick")
        try b.importing([try a.export(["--full"], to: stick)])
        try expectConverged(a, b)
        #expect(try a.status()["pending_changes"] as? Int == 0)
        #expect(try a.rows("SELECT count(*) FROM _bundlesync_log_1") == [[.integer(0)]])
        // Every row has a clock of its first incarnation.
        #expect(try a.rows("SELECT count(*), min(cl), max(cl), count(cells) FROM _bundlesync_clock_1") == [[.integer(300), .integer(1), .integer(1), .integer(0)]])

        // Writes on both sides after the first export: writes to different cells of a row
        // both stay, a delete wins over an update of the same incarnation, and a row deleted
        // and written again on one side comes back on both.
        try a.sql("UPDATE t SET a = 'a wrote' WHERE id = 'k1'; DELETE FROM t WHERE id = 'k2'; DELETE FROM t WHERE id = 'k3'")
        try b.sql("UPDATE t SET b = 'b wrote' WHERE id = 'k1'; UPDATE t SET a = 'b wrote' WHERE id = 'k2'; UPDATE t SET a = 'b wrote' WHERE id = 'k3'")
        try a.sql("INSERT INTO t VALUES ('k3', 'again', 'from a')")
        let fromA = try a.export(to: stick), fromB = try b.export(to: stick)
        try b.importing([fromA])
        try a.importing([fromB])
        try expectConverged(a, b)
        #expect(try a.rows("SELECT id, a, b FROM t WHERE id IN ('k1', 'k2', 'k3') ORDER BY id")
            == [[.text("k1"), .text("a wrote"), .text("b wrote")], [.text("k3"), .text("again"), .text("from a")]])
    }

    @Test func writesBetweenTrackAndTheFirstExportAreSealedKeyByKey() throws {
        let tmp = TempDir()
        let a = try replicaWithRows("a", tmp, rows: 50)
        let b = try emptyReplica("b", tmp)
        try a.sql("""
            UPDATE t SET a = 'updated' WHERE id = 'k1';
            DELETE FROM t WHERE id = 'k2';
            INSERT INTO t VALUES ('new', 1, 2);
            UPDATE t SET id = 'renamed' WHERE id = 'k3';
            DELETE FROM t WHERE id = 'k4'; INSERT INTO t VALUES ('k4', 'second', 'incarnation')
            """)
        try b.importing([try a.export(["--full"], to: tmp.dir("stick"))])
        try expectConverged(a, b)
        #expect(try a.rows("SELECT cl FROM _bundlesync_clock_1 WHERE k0 IN ('k2', 'k4') ORDER BY k0") == [[.integer(2)], [.integer(3)]])
        #expect(try b.rows("SELECT count(*) FROM t WHERE id IN ('k2', 'k3')") == [[.integer(0)]])
    }

    @Test func aSnapshotIntoAReplicaThatKnowsSomeOfItsRowsMergesThoseAndTakesTheRest() throws {
        let tmp = TempDir()
        let a = try replicaWithRows("a", tmp, rows: 10)
        let b = try emptyReplica("b", tmp)
        let c = try emptyReplica("c", tmp)
        let stick = tmp.dir("stick")
        try b.importing([try a.export(["--full"], to: stick)])
        // b holds a row of a's the others deleted, and wrote one of its own key 'k9' later
        // than a did; a deletes a row, so its next snapshot carries a tombstone.
        try a.sql("DELETE FROM t WHERE id = 'k4'")
        try b.sql("UPDATE t SET a = 'b wrote' WHERE id = 'k9'; INSERT INTO t VALUES ('k99', 'from b', 1)")
        try c.sql("INSERT INTO t VALUES ('k5', 'c wrote', 'c')")
        let snapshot = try a.export(["--full"], to: stick)
        // c: k1 to k4 are new to it, k5 is known (written by c after a's), and the rest come after.
        try c.importing([snapshot])
        #expect(try c.rows("SELECT a FROM t WHERE id = 'k5'") == [[.text("c wrote")]])
        #expect(try c.rows("SELECT count(*) FROM t") == [[.integer(9)]])
        #expect(try c.rows("SELECT cl FROM _bundlesync_clock_1 WHERE k0 = 'k4'") == [[.integer(2)]])
        try b.importing([snapshot])
        #expect(try b.rows("SELECT a FROM t WHERE id = 'k9'") == [[.text("b wrote")]])
        let fromB = try b.export(["--full"], to: stick), fromC = try c.export(["--full"], to: stick)
        try a.importing([fromB, fromC])
        try b.importing([fromC])
        try c.importing([fromB])
        try expectConverged(a, b)
        try expectConverged(a, c)
        #expect(try a.rows("SELECT id, a FROM t WHERE id IN ('k4', 'k5', 'k9', 'k99') ORDER BY id")
            == [[.text("k5"), .text("c wrote")], [.text("k9"), .text("b wrote")], [.text("k99"), .text("from b")]])
    }

    @Test func aRowThatCannotSyncAmongTrackedRowsIsStillNamed() throws {
        let tmp = TempDir()
        let db = tmp.file("a.db")
        try App.execute(db, Self.schema + "; INSERT INTO t VALUES (NULL, 1, 2), ('x', 3, 4), ('y', 5, 6)")
        try CLI.ok(["init", db, "--name", "a"])
        try CLI.ok(["track", db, "t"])
        let a = TestReplica(name: "a", db: db)
        let b = try emptyReplica("b", tmp)
        let r = try CLI.run(["export", a.db, "--full", "-o", tmp.dir("stick")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("1 row of 't' not synced: it has a NULL key"), "\(r.stderr)")
        try b.importing([r.trimmedOut])
        #expect(try b.rows("SELECT id, a, b FROM t ORDER BY id") == [[.text("x"), .integer(3), .integer(4)], [.text("y"), .integer(5), .integer(6)]])
    }
}
