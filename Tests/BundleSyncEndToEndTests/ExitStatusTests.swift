import BundleSyncTestSupport
import Foundation
import Testing

/// Exit statuses of SPEC §2.2, and messages that name the file.
@Suite struct ExitStatusTests {
    @Test func missingDatabaseIs66() throws {
        let tmp = TempDir()
        for args in [["status", tmp.file("nope.db")], ["export", tmp.file("nope.db")], ["digest", tmp.file("nope.db")]] {
            let r = try CLI.run(args)
            #expect(r.status == 66, "\(args)")
            #expect(r.stderr.contains("nope.db"))
        }
    }

    @Test func badArgumentsAre64() throws {
        #expect(try CLI.run(["export"]).status == 64)
        #expect(try CLI.run(["frobnicate"]).status == 64)
        let tmp = TempDir()
        let db = tmp.file("a.db")
        try CLI.ok(["init", db])
        #expect(try CLI.run(["export", db, "--full", "--to", "x"]).status == 64)
        #expect(try CLI.run(["export", db, "--to", "nobody"]).status == 64)
        #expect(try CLI.run(["track", db, "missing_table"]).status == 64)
    }

    @Test func junkBundlesAre65AndNamed() throws {
        let tmp = TempDir()
        let db = tmp.file("a.db")
        try CLI.ok(["init", db])
        let junk = tmp.file("junk.bsync")
        _ = FileManager.default.createFile(atPath: junk, contents: Data("this is not a bundle at all".utf8))
        let empty = tmp.file("empty.bsync")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        for f in [junk, empty] {
            for args in [["verify", f], ["import", db, f], ["inspect", f]] {
                let r = try CLI.run(args)
                #expect(r.status == 65, "\(args): \(r.stderr)")
                #expect(r.stderr.contains(f), "\(args) names the file")
                #expect(r.stderr.hasPrefix("error: "))
            }
        }
        let missing = try CLI.run(["verify", tmp.file("gone.bsync")])
        #expect(missing.status == 66)
    }

    @Test func aMixedImportAppliesTheGoodAndExitsWithTheWorst() throws {
        let tmp = TempDir()
        let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v);"
        let a = try TestReplica("a", in: tmp, schema: schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1)")
        let good = try a.export(to: tmp.dir("stick"))
        let bad = tmp.file("bad.bsync")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        bytes[bytes.count / 2] ^= 0x10
        _ = FileManager.default.createFile(atPath: bad, contents: Data(bytes))
        let r = try CLI.run(["import", b.db, bad, good])
        #expect(r.status == 65)
        #expect(r.stderr.contains("bad.bsync"))
        #expect(try b.rows("SELECT v FROM t WHERE id = 'x'") == [[.integer(1)]])
    }

    @Test func aPlainDatabaseIsNotAReplica() throws {
        let tmp = TempDir()
        let db = tmp.file("plain.db")
        try App.execute(db, "CREATE TABLE t(id PRIMARY KEY)")
        let r = try CLI.run(["status", db])
        #expect(r.status == 64)
        #expect(r.stderr.contains("not a bundlesync replica") && r.stderr.contains("hint: run 'bundlesync init"))
    }
}
