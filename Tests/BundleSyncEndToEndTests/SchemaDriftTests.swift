import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// An application that changes its tables never makes replicas diverge in silence: each
/// drift either syncs and converges, or is refused with the command that settles it. Every
/// case starts from plain SQL, as an application writes, and runs the built binary.
@Suite struct SchemaDriftTests {
    static let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, a, b);"

    func pair(_ tmp: TempDir, schema: String = Self.schema, tables: [String] = ["t"]) throws -> (TestReplica, TestReplica, String) {
        let a = try TestReplica("a", in: tmp, schema: schema, tables: tables)
        let b = try TestReplica("b", in: tmp, schema: schema, tables: tables)
        return (a, b, tmp.dir("stick"))
    }

    /// Exchanges everything both ways.
    func exchange(_ x: TestReplica, _ y: TestReplica, via stick: String) throws {
        let fx = try x.export(["--full"], to: stick)
        let fy = try y.export(["--full"], to: stick)
        try y.importing([fx])
        try x.importing([fy])
    }

    func expectConverged(_ x: TestReplica, _ y: TestReplica, _ query: String = "SELECT * FROM t ORDER BY id",
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try x.rows(query) == y.rows(query), sourceLocation: sourceLocation)
        #expect(try x.digest() == y.digest(), sourceLocation: sourceLocation)
    }

    /// A pair that has exchanged `rows` of `t` by delta bundles both ways, after which `b`
    /// untracks `t`. `track` holds the options `t` is tracked with (none: the defaults).
    func pairWithTUntrackedOnB(_ tmp: TempDir, rows: String, schema: String = Self.schema, track: [String] = [])
        throws -> (TestReplica, TestReplica, String) {
        let (a, b, stick) = try pair(tmp, schema: schema, tables: [])
        for r in [a, b] { try CLI.ok(["track", r.db, "t"] + track) }
        try a.sql("INSERT INTO t VALUES \(rows)")
        try b.importing([try a.export(to: stick)])
        try a.importing([try b.export(to: stick)])
        try CLI.ok(["untrack", b.db, "t"])
        return (a, b, stick)
    }

    /// b's news to a, then a's to b, by delta bundles.
    func exchangeDeltas(_ a: TestReplica, _ b: TestReplica, via stick: String) throws {
        try a.importing([try b.export(to: stick)])
        try b.importing([try a.export(to: stick)])
    }

    @Test func valuesWrittenToANewColumnBeforeTrackTravel() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO t VALUES ('x', 1, 2), ('y', 3, 4)")
        try exchange(a, b, via: stick)
        try a.sql("ALTER TABLE t ADD COLUMN c; UPDATE t SET c = 'written before track' WHERE id = 'x'")
        try b.sql("ALTER TABLE t ADD COLUMN c")
        let r = try CLI.run(["export", a.db, "-o", stick])
        #expect(r.status == 0)
        #expect(r.stderr.contains("new column 'c'"), "\(r.stderr)")
        try b.importing([r.trimmedOut])
        #expect(try b.rows("SELECT c FROM t WHERE id = 'x'") == [[.text("written before track")]])
        try exchange(a, b, via: stick)
        try expectConverged(a, b)
    }

    @Test func aTableRebuildIsNoticedAndItsWritesSync() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO t VALUES ('x', 1, 2), ('y', 3, 4), ('z', 5, 6)")
        try exchange(a, b, via: stick)
        // SQLite's twelve-step way to change a table: the capture triggers go with the old one.
        try a.sql("""
            CREATE TABLE t_new(id TEXT PRIMARY KEY, a, b);
            INSERT INTO t_new SELECT * FROM t;
            DROP TABLE t;
            ALTER TABLE t_new RENAME TO t;
            UPDATE t SET a = 10 WHERE id = 'x';
            DELETE FROM t WHERE id = 'y';
            INSERT INTO t VALUES ('w', 7, 8);
            """)
        let r = try CLI.run(["export", a.db, "-o", stick])
        #expect(r.status == 0)
        #expect(r.stderr.contains("capture of 't' was off"), "\(r.stderr)")
        try b.importing([r.trimmedOut])
        try expectConverged(a, b)
        #expect(try b.rows("SELECT id, a FROM t ORDER BY id") == [[.text("w"), .integer(7)], [.text("x"), .integer(10)], [.text("z"), .integer(5)]])
        // Capture works again: a later write syncs as usual.
        try a.sql("UPDATE t SET b = 99 WHERE id = 'z'")
        try b.importing([try a.export(to: stick)])
        try expectConverged(a, b)
    }

    @Test func aRenamedColumnIsRefusedUntilFollowedThenSyncsUnderItsOldName() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO t VALUES ('x', 1, 2)")
        try exchange(a, b, via: stick)
        try a.sql("ALTER TABLE t RENAME COLUMN a TO alpha; UPDATE t SET alpha = 5")
        let refused = try CLI.run(["export", a.db, "-o", stick])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("column 'a' of 't' is gone and 'alpha' is new"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--renamed a=alpha"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("no such column"))
        try CLI.ok(["track", a.db, "t", "--renamed", "a=alpha"])
        try b.importing([try a.export(to: stick)])
        #expect(try b.rows("SELECT a FROM t") == [[.integer(5)]])
        try b.sql("UPDATE t SET a = 6")
        try a.importing([try b.export(to: stick)])
        #expect(try a.rows("SELECT alpha FROM t") == [[.integer(6)]])
        #expect(try a.digest() == b.digest())
    }

    @Test func aDroppedTableIsNamedWithUntrackAsTheWayOut() throws {
        let tmp = TempDir()
        let schema = Self.schema + "CREATE TABLE u(id TEXT PRIMARY KEY, v);"
        let (a, b, stick) = try pair(tmp, schema: schema, tables: ["t", "u"])
        try a.sql("INSERT INTO t VALUES ('x', 1, 2); INSERT INTO u VALUES ('k', 1)")
        try exchange(a, b, via: stick)
        try a.sql("DROP TABLE u; UPDATE t SET a = 3")
        for args in [["export", a.db, "-o", stick], ["digest", a.db], ["import", a.db, stick]] {
            let r = try CLI.run(args)
            #expect(r.status == 1, "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains("tracked table 'u' no longer exists"), "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains("bundlesync untrack \(a.db) u"), "\(args[0]): \(r.stderr)")
            #expect(!r.stderr.contains("SQLite error"), "\(args[0]): \(r.stderr)")
        }
        try CLI.ok(["untrack", a.db, "u"])
        let bundle = try a.export(to: stick)
        try b.importing([bundle])
        #expect(try b.rows("SELECT a FROM t") == [[.integer(3)]])
        #expect(try b.rows("SELECT count(*) FROM u") == [[.integer(1)]])
    }

    /// A replica that untracks a table keeps its rows but drops their clocks; what peers
    /// change in the table meanwhile is held, and merged when the table is tracked again. An
    /// update carries only the cells it wrote: the row keeps its other values, rather than
    /// taking them for NULL written by the update's origin and sending that NULL back.
    @Test func anUpdateHeldWhileATableWasUntrackedKeepsTheRowsOtherValues() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pairWithTUntrackedOnB(tmp, rows: "('x', 1, 2), ('z', 7, 8)")

        try a.sql("UPDATE t SET a = 5 WHERE id = 'x'; UPDATE t SET b = 9 WHERE id = 'z'; INSERT INTO t VALUES ('y', 3, 4)")
        try b.importing([try a.export(to: stick)])
        #expect(try b.rows("SELECT * FROM t ORDER BY id") == [[.text("x"), .integer(1), .integer(2)], [.text("z"), .integer(7), .integer(8)]])
        #expect((try b.status()["held"] as? [Any])?.isEmpty == false)

        try CLI.ok(["track", b.db, "t"])
        let expected: [[SQLValue]] = [[.text("x"), .integer(5), .integer(2)], [.text("y"), .integer(3), .integer(4)],
                                      [.text("z"), .integer(7), .integer(9)]]
        #expect(try b.rows("SELECT * FROM t ORDER BY id") == expected)
        try exchangeDeltas(a, b, via: stick)
        #expect(try a.rows("SELECT * FROM t ORDER BY id") == expected)
        try expectConverged(a, b)
    }

    /// An update held while the table was untracked, of a row deleted here meanwhile (the
    /// delete was not captured): bringing back a row of the update's cells alone would leave
    /// it different from every peer's; tracking stops with the way out, a whole snapshot,
    /// which brings the row back whole.
    @Test func anUpdateHeldForARowDeletedWhileUntrackedNeedsASnapshotAndSaysSo() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pairWithTUntrackedOnB(tmp, rows: "('x', 1, 2), ('z', 7, 8)")
        try b.sql("DELETE FROM t WHERE id = 'x'")

        try a.sql("UPDATE t SET a = 5 WHERE id = 'x'")
        try b.importing([try a.export(to: stick)])
        let refused = try CLI.run(["track", b.db, "t"])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("refers to a row this replica does not hold"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--full"), "\(refused.stderr)")

        try b.importing([try a.export(["--full"], to: tmp.dir("full"))])
        try CLI.ok(["track", b.db, "t"])
        #expect(try b.rows("SELECT * FROM t ORDER BY id") == [[.text("x"), .integer(5), .integer(2)], [.text("z"), .integer(7), .integer(8)]])
        try exchangeDeltas(a, b, via: stick)
        try expectConverged(a, b)
    }

    /// The same row, deleted while the table was untracked and tracked again before the
    /// peer's update arrives: the import refuses the update with the same way out, rather
    /// than pass the bundle off as damaged, and the snapshot lets every later bundle in.
    @Test func anUpdateOfARowDeletedWhileUntrackedIsRefusedAtImportWithTheWayOut() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pairWithTUntrackedOnB(tmp, rows: "('x', 1, 2)")
        try b.sql("DELETE FROM t WHERE id = 'x'")
        try CLI.ok(["track", b.db, "t"])

        try a.sql("UPDATE t SET a = 5 WHERE id = 'x'")
        let update = try a.export(to: stick)
        let refused = try CLI.run(["import", b.db, update])
        #expect(refused.status == 65, "\(refused.stderr)")
        #expect(refused.stderr.contains("refers to a row this replica does not hold"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--full") && !refused.stderr.contains("damaged"), "\(refused.stderr)")

        try b.importing([try a.export(["--full"], to: tmp.dir("full"))])
        #expect(try b.rows("SELECT * FROM t") == [[.text("x"), .integer(5), .integer(2)]])
        try a.sql("UPDATE t SET b = 6 WHERE id = 'x'")
        try b.importing([try a.export(to: stick)])
        try a.importing([try b.export(to: stick)])
        try expectConverged(a, b)
    }

    /// A text or JSON edit held while the table was untracked is an edit of a merge state
    /// that untrack dropped: tracking again stops with the way out (applied to an empty state,
    /// the edit alone would have become the cell), and a whole snapshot from a peer brings the
    /// states back, after which the table is tracked and the replicas converge.
    @Test(arguments: [("--text", "'hello brave new world'", "'hello brave new big world'", "hello brave new big world"),
                      ("--json", "'{\"p\":1,\"q\":2,\"r\":[1,2]}'", "'{\"p\":1,\"q\":3,\"r\":[1,2]}'", "{\"p\":1,\"q\":3,\"r\":[1,2]}")])
    func aMergeEditHeldWhileATableWasUntrackedNeedsASnapshotAndSaysSo(_ rule: String, _ first: String, _ second: String, _ merged: String) throws {
        let tmp = TempDir()
        let (a, b, stick) = try pairWithTUntrackedOnB(tmp, rows: "('x', 1, \(first))", schema: "CREATE TABLE t(id TEXT PRIMARY KEY, a, note TEXT);",
                                                      track: [rule, "note"])

        try a.sql("UPDATE t SET note = \(second) WHERE id = 'x'")
        try b.importing([try a.export(to: stick)])
        let refused = try CLI.run(["track", b.db, "t", rule, "note"])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("held while not tracked here, cannot be merged"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--full"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("made by another program"), "\(refused.stderr)")
        #expect((try b.status()["tables"] as? [Any])?.isEmpty == true)

        try b.importing([try a.export(["--full"], to: tmp.dir("full"))])
        try CLI.ok(["track", b.db, "t", rule, "note"])
        #expect(try b.rows("SELECT note FROM t") == [[.text(merged)]])
        try exchangeDeltas(a, b, via: stick)
        try expectConverged(a, b)
    }

    @Test func untrackKeepsTheRowsAndStopsCapture() throws {
        let tmp = TempDir()
        let (a, _, _) = try pair(tmp)
        try a.sql("INSERT INTO t VALUES ('x', 1, 2)")
        try CLI.ok(["untrack", a.db, "t"])
        try a.sql("INSERT INTO t VALUES ('y', 3, 4)")
        #expect(try a.rows("SELECT count(*) FROM t") == [[.integer(2)]])
        #expect(try a.rows("SELECT count(*) FROM sqlite_schema WHERE name LIKE '_bundlesync_%' AND tbl_name = 't'") == [[.integer(0)]])
        let status = try a.status()
        #expect((status["tables"] as? [Any])?.isEmpty == true)
        let again = try CLI.run(["untrack", a.db, "t"])
        #expect(again.status == 64)
    }

    @Test func keysThatSQLiteTakesForEqualAreRefusedOrNotSyncedLoudly() throws {
        let tmp = TempDir()
        try App.execute(tmp.file("n.db"), "CREATE TABLE n(id TEXT PRIMARY KEY COLLATE NOCASE, v)")
        try CLI.ok(["init", tmp.file("n.db")])
        let nocase = try CLI.run(["track", tmp.file("n.db"), "n"])
        #expect(nocase.status == 64)
        #expect(nocase.stderr.contains("collation NOCASE"), "\(nocase.stderr)")

        // An untyped key column: 1 and 1.0 are one key to SQLite, so a REAL spelling of an
        // integer is not synced, with a warning, and the replicas converge on the INTEGER.
        let (a, b, stick) = try pair(tmp, schema: "CREATE TABLE t(id PRIMARY KEY, v);")
        try a.sql("INSERT INTO t VALUES (1, 'from a'), (2.5, 'half')")
        try b.sql("INSERT INTO t VALUES (1.0, 'from b')")
        let rb = try CLI.run(["export", b.db, "--full", "-o", stick])
        #expect(rb.status == 0)
        #expect(rb.stderr.contains("1 row of 't' not synced"), "\(rb.stderr)")
        try a.importing([rb.trimmedOut])
        try b.importing([try a.export(["--full"], to: stick)])
        try expectConverged(a, b)
        #expect(try a.rows("SELECT typeof(id), v FROM t ORDER BY id") == [[.text("integer"), .text("from a")], [.text("real"), .text("half")]])
    }

    @Test func minusZeroAndZeroAreOneValueToCaptureAndDigest() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO t VALUES ('x', 0.0, 1)")
        try exchange(a, b, via: stick)
        try a.sql("UPDATE t SET a = -0.0")
        #expect(try a.status()["pending_changes"] as? Int == 0)
        #expect(try a.digest() == b.digest())
        // Every other value class is captured.
        for (value, type) in [("1", "integer"), ("0.5", "real"), ("'text'", "text"), ("x'00'", "blob"), ("NULL", "null")] {
            try a.sql("UPDATE t SET a = \(value)")
            try b.importing([try a.export(to: stick)])
            #expect(try b.rows("SELECT typeof(a) FROM t") == [[.text(type)]])
            try expectConverged(a, b)
        }
    }

    @Test func rowsWithANullKeyAreSkippedLoudlyAndNeverStickExport() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        try a.sql("INSERT INTO t VALUES (NULL, 1, 2), ('x', 3, 4)")
        let r = try CLI.run(["export", a.db, "-o", stick])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("1 row of 't' not synced: it has a NULL key"), "\(r.stderr)")
        try b.importing([r.trimmedOut])
        #expect(try b.rows("SELECT * FROM t") == [[.text("x"), .integer(3), .integer(4)]])
        try a.sql("UPDATE t SET a = 5 WHERE id = 'x'; UPDATE t SET id = 'was null' WHERE id IS NULL")
        try b.importing([try a.export(to: stick)])
        try expectConverged(a, b)
    }

    @Test func concurrentEditsOfFarApartColumnsOfAWideTableBothSurvive() throws {
        let tmp = TempDir()
        let columns = (0..<130).map { "c\($0)" }
        let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, \(columns.joined(separator: ", ")));"
        let (a, b, stick) = try pair(tmp, schema: schema)
        try a.sql("INSERT INTO t(id) VALUES ('x')")
        try exchange(a, b, via: stick)
        try a.sql("UPDATE t SET c5 = 'a'")
        try b.sql("UPDATE t SET c67 = 'b', c129 = 'b'")
        try exchange(a, b, via: stick)
        for r in [a, b] {
            #expect(try r.rows("SELECT c5, c67, c129, c125 FROM t") == [[.text("a"), .text("b"), .text("b"), .null]])
        }
        try expectConverged(a, b)
    }

    @Test func writesOfApplicationTriggersDuringAnImportReachEveryReplica() throws {
        let tmp = TempDir()
        let schema = """
            CREATE TABLE t(id TEXT PRIMARY KEY, a, b);
            CREATE TABLE audit(id TEXT PRIMARY KEY, item TEXT, at INTEGER);
            CREATE TRIGGER t_audit AFTER INSERT ON t BEGIN
              INSERT INTO audit VALUES (lower(hex(randomblob(8))), NEW.id, CAST(julianday('now') * 86400000 AS INTEGER));
            END;
            """
        let (a, b, stick) = try pair(tmp, schema: schema, tables: ["t", "audit"])
        let c = try TestReplica("c", in: tmp, schema: schema, tables: ["t", "audit"])
        try a.sql("INSERT INTO t VALUES ('x', 1, 2)")
        let fromA = try a.export(to: stick)
        try b.importing([fromA])
        try c.importing([fromA])
        // Each replica's own trigger wrote an audit row while importing; each is captured
        // there and reaches the others.
        let fromB = try b.export(["--full"], to: stick)
        let fromC = try c.export(["--full"], to: stick)
        try a.importing([fromB, fromC])
        try b.importing([fromC])
        try c.importing([fromB])
        for r in [a, b, c] {
            #expect(try r.rows("SELECT count(*), count(DISTINCT id) FROM audit WHERE item = 'x'") == [[.integer(3), .integer(3)]])
        }
        try expectConverged(a, b, "SELECT * FROM audit ORDER BY id")
        try expectConverged(b, c, "SELECT * FROM audit ORDER BY id")
    }

    @Test func replicasOnDifferentApplicationVersionsKeepSyncingAndCatchUp() throws {
        let tmp = TempDir()
        let (a, b, stick) = try pair(tmp)
        let c = try TestReplica("c", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1, 2)")
        try b.importing([try a.export(to: stick)])
        try a.importing([try b.export(to: stick)])
        // A's application is updated first: a new column and a new table.
        try a.sql("ALTER TABLE t ADD COLUMN c; UPDATE t SET c = 'new' WHERE id = 'x'; CREATE TABLE u(id TEXT PRIMARY KEY, v)")
        try CLI.ok(["track", a.db, "u"])
        try a.sql("INSERT INTO u VALUES ('k', 'kv'); UPDATE t SET a = 9")
        let fromA = try a.export(to: stick)
        let r = try CLI.run(["import", b.db, fromA])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("not tracked here"), "\(r.stderr)")
        #expect(try b.rows("SELECT a, b FROM t") == [[.integer(9), .integer(2)]])
        let held = try b.status()["held"] as? [[String: Any]] ?? []
        #expect(held.map { $0["what"] as? String } == ["column 'c' of 't'", "table 'u'"])
        // B, still on the old version, relays everything to C as a snapshot, which C
        // verifies and holds.
        let relayed = try b.export(["--full"], to: stick)
        #expect(try CLI.ok(["inspect", relayed]).contains("snapshot"))
        try CLI.ok(["verify", relayed])
        try c.importing([relayed])
        #expect(try c.rows("SELECT a FROM t") == [[.integer(9)]])
        // B's application is updated: the held changes apply.
        try b.sql("ALTER TABLE t ADD COLUMN c; CREATE TABLE u(id TEXT PRIMARY KEY, v)")
        try CLI.ok(["track", b.db, "u"])
        #expect(try b.rows("SELECT c FROM t") == [[.text("new")]])
        #expect(try b.rows("SELECT * FROM u") == [[.text("k"), .text("kv")]])
        #expect((try b.status()["held"] as? [Any])?.isEmpty == true)
        try exchange(a, b, via: stick)
        try expectConverged(a, b)
        try expectConverged(a, b, "SELECT * FROM u ORDER BY id")
        // C catches up too, from what it held.
        try c.sql("ALTER TABLE t ADD COLUMN c; CREATE TABLE u(id TEXT PRIMARY KEY, v)")
        try CLI.ok(["track", c.db, "u"])
        try expectConverged(a, c)
        try expectConverged(a, c, "SELECT * FROM u ORDER BY id")
    }

    @Test func trackSaysWhatAViewAndAnInternalTableAre() throws {
        let tmp = TempDir()
        let db = tmp.file("v.db")
        try App.execute(db, "CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, v); CREATE VIEW w AS SELECT * FROM t; INSERT INTO t(v) VALUES (1);")
        try CLI.ok(["init", db])
        let view = try CLI.run(["track", db, "w"])
        #expect(view.status == 64)
        #expect(view.stderr.contains("'w' is a view, not a table"), "\(view.stderr)")
        let sequence = try CLI.run(["track", db, "sqlite_sequence"])
        #expect(sequence.status == 64)
        #expect(sequence.stderr.contains("SQLite's own internal table"), "\(sequence.stderr)")
        #expect(!sequence.stderr.contains("PRIMARY KEY"))
    }
}
