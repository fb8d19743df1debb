import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Named merge scenarios of SPEC §3.1 and §3.2, run through the built binary.
@Suite struct MergeScenarioTests {
    static let schema = """
    CREATE TABLE items(id TEXT PRIMARY KEY, n INTEGER, r REAL, t TEXT, b BLOB, extra);
    CREATE TABLE pairs(a TEXT, b INTEGER, v, PRIMARY KEY(a, b)) WITHOUT ROWID;
    """

    func pair(_ tmp: TempDir) throws -> (TestReplica, TestReplica, String) {
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["items", "pairs"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["items", "pairs"])
        return (a, b, tmp.dir("stick"))
    }

    /// Exchanges everything both ways until both hold the same history.
    func exchange(_ x: TestReplica, _ y: TestReplica, via stick: String) throws {
        let fx = try x.export(["--full"], to: stick)
        let fy = try y.export(["--full"], to: stick)
        try y.importing([fx])
        try x.importing([fy])
    }

    @Test func everyValueTypeArrivesExactly() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        let blob = (0..<4096).map { String(format: "%02x", ($0 * 37) & 0xff) }.joined()
        try a.sql("""
            INSERT INTO items VALUES ('null', NULL, NULL, NULL, NULL, NULL);
            INSERT INTO items VALUES ('ints', 9223372036854775807, NULL, NULL, NULL, -9223372036854775808);
            INSERT INTO items VALUES ('reals', 0, 0.1, NULL, NULL, 1e308);
            INSERT INTO items VALUES ('texts', 0, NULL, '', NULL, 'emoji 🚑🧭 CJK 日本語 e\u{301}');
            INSERT INTO items VALUES ('blobs', 0, NULL, NULL, x'', x'\(blob)');
            INSERT INTO pairs VALUES ('k', 1, 2.5), ('k', 2, x'00'), ('', -1, 'z');
            """)
        try b.importing([try a.export(to: stick)])
        for q in ["SELECT * FROM items ORDER BY id", "SELECT * FROM pairs ORDER BY a, b"] {
            #expect(try a.rows(q) == b.rows(q))
        }
        #expect(try b.rows("SELECT typeof(extra), length(extra) FROM items WHERE id = 'blobs'") == [[.text("blob"), .integer(4096)]])
        #expect(try a.digest() == b.digest())
    }

    @Test func concurrentEditsToDifferentColumnsBothSurvive() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO items(id, n, t) VALUES ('x', 1, 'one')")
        try exchange(a, b, via: stick)
        try a.sql("UPDATE items SET n = 2 WHERE id = 'x'")
        try b.sql("UPDATE items SET t = 'two' WHERE id = 'x'")
        try exchange(a, b, via: stick)
        for r in [a, b] {
            #expect(try r.rows("SELECT n, t FROM items WHERE id = 'x'") == [[.integer(2), .text("two")]])
        }
    }

    @Test func laterWriteToTheSameCellWins() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO items(id, t) VALUES ('x', 'first')")
        try exchange(a, b, via: stick)
        try b.sql("UPDATE items SET t = 'b-earlier' WHERE id = 'x'")
        Thread.sleep(forTimeInterval: 0.02)
        try a.sql("UPDATE items SET t = 'a-later' WHERE id = 'x'")
        // Import in both orders: the result is the same.
        try exchange(b, a, via: stick)
        for r in [a, b] { #expect(try r.rows("SELECT t FROM items WHERE id = 'x'") == [[.text("a-later")]]) }
    }

    @Test func deleteBeatsConcurrentUpdateAndReinsertBringsTheRowBack() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO items(id, n, t) VALUES ('x', 1, 'one')")
        try exchange(a, b, via: stick)
        try a.sql("DELETE FROM items WHERE id = 'x'")
        Thread.sleep(forTimeInterval: 0.02)
        try b.sql("UPDATE items SET n = 99 WHERE id = 'x'") // later in time, but concurrent
        try exchange(a, b, via: stick)
        for r in [a, b] { #expect(try r.rows("SELECT * FROM items WHERE id = 'x'").isEmpty, "delete wins over a concurrent update") }

        try b.sql("INSERT INTO items(id, n, t) VALUES ('x', 7, 'back')")
        try exchange(a, b, via: stick)
        for r in [a, b] {
            #expect(try r.rows("SELECT n, t FROM items WHERE id = 'x'") == [[.integer(7), .text("back")]])
        }
        #expect(try a.digest() == b.digest())
    }

    @Test func primaryKeyUpdateSyncsAsANewIdentity() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO items(id, n) VALUES ('old', 5); INSERT INTO pairs VALUES ('p', 1, 'v')")
        try exchange(a, b, via: stick)
        try a.sql("UPDATE items SET id = 'new' WHERE id = 'old'; UPDATE pairs SET b = 2 WHERE a = 'p'")
        try exchange(a, b, via: stick)
        #expect(try b.rows("SELECT id, n FROM items") == [[.text("new"), .integer(5)]])
        #expect(try b.rows("SELECT a, b, v FROM pairs") == [[.text("p"), .integer(2), .text("v")]])
    }

    @Test func importedChangesAreNeverCapturedAgain() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO items(id, n) VALUES ('x', 1), ('y', 2)")
        #expect(try a.status()["pending_changes"] as? Int == 2, "application writes are captured")
        try b.importing([try a.export(to: stick)])
        #expect(try b.status()["pending_changes"] as? Int == 0, "import's own writes are not")
        // b's whole history holds nothing of its own: only a's batch, relayed.
        let nothing = tmp.file("empty.vector")
        try "{}".write(toFile: nothing, atomically: true, encoding: .utf8)
        let relay = try b.export(["--since", nothing], to: stick)
        let info = try CLI.ok(["inspect", "--json", relay])
        let json = try JSONSerialization.jsonObject(with: Data(info.utf8)) as! [String: Any]
        let origins = (json["origins"] as! [[String: Any]]).map { $0["id"] as! String }
        let aID = (try a.status()["id"]) as! String
        #expect(origins == [aID])
    }

    @Test func reimportingEveryBundleChangesNothing() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO items(id, n) VALUES ('x', 1)")
        try b.sql("INSERT INTO items(id, n) VALUES ('y', 2)")
        try exchange(a, b, via: stick)
        let before = (try a.digest(), try b.digest(), try a.rows("SELECT * FROM items ORDER BY id"))
        let again = try CLI.run(["import", a.db, stick])
        #expect(again.status == 0)
        #expect(again.stdout.contains("skipped"), "each bundle's result is on stdout")
        try b.importing([stick])
        #expect(try a.digest() == before.0)
        #expect(try b.digest() == before.1)
        #expect(try a.rows("SELECT * FROM items ORDER BY id") == before.2)
        #expect(before.0 == before.1)
    }

    @Test func laterBatchesParkUntilTheirHistoryArrives() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO items(id, n) VALUES ('x', 1)")
        let first = try a.export(["--full"], to: tmp.dir("one"))
        try a.sql("UPDATE items SET n = 2 WHERE id = 'x'")
        let s = try a.status()
        let vector = tmp.file("a.vector")
        try JSONSerialization.data(withJSONObject: s).write(to: URL(fileURLWithPath: vector))
        try a.sql("UPDATE items SET n = 3 WHERE id = 'x'; INSERT INTO items(id) VALUES ('z')")
        // A delta holding only the newest batch, delivered first.
        let second = try a.export(["--since", vector], to: stick)
        try b.importing([second])
        let parked = try b.status()["parked"] as? [[String: Any]] ?? []
        #expect(parked.count == 1)
        #expect((parked.first?["waits_for"] as? String)?.contains("batch 1 of") == true)
        #expect(try b.rows("SELECT * FROM items").isEmpty, "nothing applies before its history")
        try b.importing([first])
        #expect((try b.status()["parked"] as? [[String: Any]] ?? []).isEmpty)
        #expect(try b.rows("SELECT id, n FROM items ORDER BY id") == [[.text("x"), .integer(3)], [.text("z"), .null]])
        #expect(try a.digest() == b.digest())
    }

    @Test func aClockTwoHoursBehindStillWinsAfterSeeingTheWrite() throws {
        let tmp = TempDir()
        let behind = ["faketime", "-f", "-2h"]
        let (a, b, stick) = try pair(tmp)
        let c = try TestReplica("c", in: tmp, schema: Self.schema, tables: ["items", "pairs"])
        try a.sql("INSERT INTO items(id, t) VALUES ('x', 'from a')")
        let fromA = try a.export(to: stick)
        try b.importing([fromA], wrapper: behind)
        // b's clock runs two hours behind; its application writes through sqlite3 under the same clock.
        let write = Process()
        write.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        write.arguments = behind + ["sqlite3", b.db, "UPDATE items SET t = 'from b, after seeing a' WHERE id = 'x'"]
        try write.run()
        write.waitUntilExit()
        #expect(write.terminationStatus == 0)
        #expect(try b.rows("SELECT wall < julianday('now') - 1.0 / 24 FROM _bundlesync_log_1") == [[.integer(1)]],
                "the write was recorded with the skewed clock")
        let fromB = try b.export(to: stick, wrapper: behind)
        try a.importing([fromB])
        try c.importing([fromB, fromA])
        for r in [a, b, c] {
            #expect(try r.rows("SELECT t FROM items WHERE id = 'x'") == [[.text("from b, after seeing a")]])
        }
    }

    @Test func autoAssignedIntegerKeysWarnAndUniqueConstraintsAreRefused() throws {
        let tmp = TempDir()
        let db = tmp.file("w.db")
        try App.execute(db, """
            CREATE TABLE counters(id INTEGER PRIMARY KEY AUTOINCREMENT, v);
            CREATE TABLE people(id TEXT PRIMARY KEY, email TEXT UNIQUE);
            CREATE TABLE loose(v);
            """)
        try CLI.ok(["init", db])
        let warned = try CLI.run(["track", db, "counters"])
        #expect(warned.status == 0)
        #expect(warned.stderr.contains("warning:") && warned.stderr.contains("auto-assigned"))
        let unique = try CLI.run(["track", db, "people"])
        #expect(unique.status == 64)
        #expect(unique.stderr.contains("UNIQUE"))
        let nokey = try CLI.run(["track", db, "loose"])
        #expect(nokey.status == 64)
        #expect(nokey.stderr.contains("PRIMARY KEY"))
    }

    @Test func trackPicksUpAddedColumnsAndImportHoldsUntrackedOnes() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO items(id, n) VALUES ('x', 1)")
        try exchange(a, b, via: stick)
        try a.sql("ALTER TABLE items ADD COLUMN added TEXT")
        try CLI.ok(["track", a.db, "items"])
        try a.sql("UPDATE items SET added = 'synced', n = 2 WHERE id = 'x'")
        let bundle = try a.export(to: stick)
        // b does not sync the column yet: the rest applies, and the column's writes are held,
        // with a warning that names it (SPEC §3.7).
        let held = try CLI.run(["import", b.db, bundle])
        #expect(held.status == 0)
        #expect(held.stderr.contains("column 'added' of 'items', not tracked here"), "\(held.stderr)")
        #expect(try b.rows("SELECT n FROM items WHERE id = 'x'") == [[.integer(2)]], "the tracked columns of a held batch apply")
        try b.sql("ALTER TABLE items ADD COLUMN added TEXT")
        try CLI.ok(["track", b.db, "items"])
        #expect(try b.rows("SELECT n, added FROM items WHERE id = 'x'") == [[.integer(2), .text("synced")]])
        try b.importing([bundle])
        #expect(try b.rows("SELECT n, added FROM items WHERE id = 'x'") == [[.integer(2), .text("synced")]])
    }
}
