import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Another replica's `sync` may remove its superseded bundle from a shared folder while this
/// one works through the folder. The file is gone when it is opened: that is skipped with a
/// note, not an error. The disappearance is made for real by the system: strace answers
/// "no such file" for the bundle after the folder was listed.
@Suite(.enabled(if: Strace.available, "strace is not installed; the vanished-bundle tests are skipped"))
struct VanishedBundleTests {
    /// The bundle at `path` is listed, then gone.
    func vanishing(_ path: String) -> [String] {
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=newfstatat,openat",
         "-e", "inject=newfstatat:error=ENOENT:when=2+", "-e", "inject=openat:error=ENOENT", "-P", path]
    }

    @Test func aBundleThatVanishesAfterListingIsSkippedWithANote() throws {
        let tmp = TempDir()
        let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v);"
        let a = try TestReplica("a", in: tmp, schema: schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: schema, tables: ["t"])
        let c = try TestReplica("c", in: tmp, schema: schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('a', 1)")
        try b.sql("INSERT INTO t VALUES ('b', 1)")
        let box = tmp.dir("box")
        let gone = try a.export(to: box)
        let kept = try b.export(to: box)

        let sync = try CLI.run(["sync", c.db, box], wrapper: vanishing(gone))
        #expect(sync.status == 0, "\(sync.stderr)")
        #expect(sync.stderr.contains("\(gone): skipped, removed from its folder after it was listed"), "\(sync.stderr)")
        #expect(sync.stderr.contains("\(kept): applied 1 batch"), "\(sync.stderr)")
        #expect(!sync.stderr.contains("error:"), "\(sync.stderr)")

        let imported = try CLI.run(["import", c.db, box, "--json"], wrapper: vanishing(gone))
        #expect(imported.status == 0, "\(imported.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(imported.stdout.utf8)) as? [String: Any]
        let entry = (doc?["bundles"] as? [[String: Any]])?.first { $0["path"] as? String == gone }
        #expect(entry?["vanished"] as? Bool == true && entry?["status"] as? String == "skipped", "\(imported.stdout)")

        let verified = try CLI.run(["verify", box], wrapper: vanishing(gone))
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("skipped, removed from its folder"), "\(verified.stdout)")

        // A bundle named on the command line that does not exist is still an error.
        let named = try CLI.run(["import", c.db, tmp.file("box/none.bsync")])
        #expect(named.status == 66)
        // And the work that was done stands: c holds b's row.
        #expect(try c.rows("SELECT id FROM t ORDER BY id") == [[.text("b")]])
    }
}
