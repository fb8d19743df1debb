import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Copies of a replica file, forks, and the trust list (SPEC §4.2).
@Suite struct TrustAndIdentityTests {
    static let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v);"

    @Test func aCopiedFileRefusesToWriteHistoryUntilReidentified() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1)")
        try b.importing([try a.export(to: tmp.dir("stick"))])
        let copy = tmp.file("copy.db")
        try FileManager.default.copyItem(atPath: a.db, toPath: copy)
        try App.execute(copy, "INSERT INTO t VALUES ('from-copy', 2)")

        let refused = try CLI.run(["export", copy, "-o", tmp.dir("stick")])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("is a copy of replica 'a'") && refused.stderr.contains("bundlesync reidentify"))
        // Nothing was sealed: the change is still pending, and no file was written.
        #expect(try App.rows(copy, "SELECT count(*) FROM _bundlesync_log_1") == [[.integer(1)]])

        let out = try CLI.ok(["reidentify", copy])
        #expect(out.hasPrefix("a-"))
        let copyReplica = TestReplica(existing: copy, name: "copy")
        try b.importing([try copyReplica.export(to: tmp.dir("stick"))])
        #expect(try b.rows("SELECT v FROM t WHERE id = 'from-copy'") == [[.integer(2)]])
        // The original goes on under its own identity, with no fork at b.
        try a.sql("INSERT INTO t VALUES ('from-original', 3)")
        try b.importing([try a.export(to: tmp.dir("stick"))])
        #expect(try b.rows("SELECT count(*) FROM t") == [[.integer(3)]])
    }

    @Test func aForkedHistoryIsRefusedNamingTheReplica() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1)")
        try b.importing([try a.export(to: tmp.dir("s1"))])
        // A copy that claims to be the original (the wrong use of --moved) forks a's history.
        let copy = tmp.file("copy.db")
        try FileManager.default.copyItem(atPath: a.db, toPath: copy)
        try CLI.ok(["reidentify", copy, "--moved"])
        try App.execute(copy, "UPDATE t SET v = 'copy' WHERE id = 'x'")
        try a.sql("UPDATE t SET v = 'original' WHERE id = 'x'")
        let fromOriginal = try a.export(to: tmp.dir("s2"))
        let fromCopy = try TestReplica(existing: copy, name: "copy").export(to: tmp.dir("s3"))
        try b.importing([fromOriginal])
        let before = try b.digest()
        let r = try CLI.run(["import", b.db, fromCopy])
        #expect(r.status == 65)
        let aID = try a.status()["id"] as! String
        #expect(r.stderr.contains(String(aID.prefix(12))) && r.stderr.contains("forked"))
        #expect(try b.digest() == before)
        let v = try CLI.run(["verify", "--db", b.db, fromCopy])
        #expect(v.status == 65)
    }

    @Test func theTrustListRefusesStrangersWith77() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        let c = try TestReplica("c", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('from-a', 1)")
        try c.sql("INSERT INTO t VALUES ('from-c', 1)")
        let fromA = try a.export(to: tmp.dir("stick"))
        let fromC = try c.export(to: tmp.dir("stick"))
        let aID = try a.status()["id"] as! String
        try CLI.ok(["trust", b.db, "add", aID, "--name", "a"])
        try CLI.ok(["trust", b.db, "only", "on"])

        let refused = try CLI.run(["import", b.db, fromC])
        #expect(refused.status == 77)
        #expect(refused.stderr.contains("trust list") && refused.stderr.contains("bundlesync trust"))
        #expect(try b.rows("SELECT count(*) FROM t") == [[.integer(0)]])
        #expect(try CLI.run(["verify", "--db", b.db, fromC]).status == 77)

        try b.importing([fromA])
        #expect(try b.rows("SELECT id FROM t") == [[.text("from-a")]])

        // A trusted exporter relaying an untrusted origin is refused too.
        try a.importing([fromC])
        let relay = try a.export(["--full"], to: tmp.dir("relay"))
        #expect(try CLI.run(["import", b.db, relay]).status == 77)
        try CLI.ok(["trust", b.db, "only", "off"])
        try b.importing([relay])
        #expect(try b.rows("SELECT count(*) FROM t") == [[.integer(2)]])
    }
}

extension TestReplica {
    /// A replica file made some other way (for example, a copy).
    init(existing db: String, name: String) {
        self.init(name: name, db: db)
    }
}
