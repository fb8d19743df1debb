import BundleSync
import BundleSyncTestSupport
import Crypto
import Foundation
import Testing

/// `import --dry-run` checks bundles against the replica and says what importing them would
/// do, and writes nothing: not a byte of the database file, its WAL as the application sees
/// it, or the folder of bundles.
@Suite struct DryRunImportTests {
    static let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v, w);"

    /// SHA-256 of a file's bytes, or "absent".
    func fileDigest(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "absent" }
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// Every file under `dir` with its digest, leaving out SQLite's WAL and shared-memory
    /// index, whose bytes are not what the application reads (`content` checks that).
    func files(under dir: String) -> [String: String] {
        var out: [String: String] = [:]
        for name in FileManager.default.subpaths(atPath: dir) ?? [] where !name.hasSuffix("-wal") && !name.hasSuffix("-shm") {
            out[name] = fileDigest(PathText.join(dir, name))
        }
        return out
    }

    /// Everything in the database, bookkeeping included, as a new connection reads it.
    func content(_ db: String) throws -> [[SQLValue]] {
        let tables = try App.rows(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").compactMap { $0.first?.string }
        var out = try App.rows(db, "SELECT type, name, sql FROM sqlite_schema ORDER BY type, name")
        for t in tables { out += try App.rows(db, "SELECT * FROM \(Database.quote(t))").sorted { "\($0)" < "\($1)" } }
        return out
    }

    @Test func aDryRunReportsWhatWouldChangeAndWritesNothing() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1, 1), ('y', 2, 2), ('z', 3, 3)")
        let stick = tmp.dir("stick")
        let first = try a.export(to: stick)
        try b.importing([first])
        try a.sql("UPDATE t SET v = 10 WHERE id = 'x'; DELETE FROM t WHERE id = 'y'; INSERT INTO t VALUES ('n', 4, 4)")
        let second = try a.export(to: stick)
        let cut = tmp.file("cut.bsync")
        try Data(try Data(contentsOf: URL(fileURLWithPath: second)).prefix(100)).write(to: URL(fileURLWithPath: cut))
        // b has a change of its own, not yet sealed: the dry run seals it too, then undoes that.
        try b.sql("UPDATE t SET w = 30 WHERE id = 'z'")

        let everyFile = files(under: tmp.path)
        let database = fileDigest(b.db)
        let before = try content(b.db)
        let folder = try FileManager.default.contentsOfDirectory(atPath: stick).sorted()
        let digest = try b.digest()

        let r = try CLI.run(["import", b.db, first, second, cut, "--dry-run"])
        #expect(r.status == 65, "the refused bundle's status, as the import would give: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        try #require(lines.count == 3, "\(r.stdout)")
        #expect(lines[0] == "\(first): would be skipped, already imported", "\(r.stdout)")
        #expect(lines[1] == "\(second): would apply 1 batch (1 already here), changing 3 rows (1 inserted, 1 updated, 1 deleted) and 3 cells", "\(r.stdout)")
        #expect(lines[2].hasPrefix("\(cut): would be refused: "), "\(r.stdout)")
        #expect(r.stderr.contains("dry run: nothing was written"), "\(r.stderr)")

        #expect(fileDigest(b.db) == database, "the database file is byte for byte the same")
        #expect(files(under: tmp.path) == everyFile, "no file beside it changed, appeared or went")
        #expect(try content(b.db) == before, "what the application reads is the same")
        #expect(try b.digest() == digest)
        #expect(try b.status()["pending_changes"] as? Int == 1, "the local change is still pending, not sealed")
        #expect(try FileManager.default.contentsOfDirectory(atPath: stick).sorted() == folder)

        let json = try CLI.run(["import", b.db, second, "--dry-run", "--json"])
        #expect(json.status == 0)
        let doc = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(doc?["dry_run"] as? Bool == true)
        let change = (doc?["bundles"] as? [[String: Any]])?.first?["would_change"] as? [String: Any]
        #expect(change?["rows"] as? Int == 3 && change?["cells"] as? Int == 3, "\(json.stdout)")
        #expect(try content(b.db) == before)

        // The import itself then does what the dry run said.
        let real = try CLI.run(["import", b.db, second])
        #expect(real.stdout.contains("\(second): applied 1 batch"), "\(real.stdout)")
        #expect(try b.rows("SELECT id, v, w FROM t ORDER BY id") == [[.text("n"), .integer(4), .integer(4)], [.text("x"), .integer(10), .integer(1)],
                                                                      [.text("z"), .integer(3), .integer(30)]])
    }

    /// A large import commits in slices so the application can write between them; a dry
    /// run of one commits none of them.
    @Test func aDryRunOfALargeBundleCommitsNoSlice() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) INSERT INTO t SELECT printf('k%06d', i), i, hex(randomblob(16)) FROM n")
        let bundle = try a.export(to: tmp.dir("stick"))
        let everyFile = files(under: tmp.path)
        let before = try content(b.db)
        let r = try CLI.run(["import", b.db, bundle, "--dry-run"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains(": would apply 4 batches, changing 100,000 rows (100,000 inserted, 0 updated, 0 deleted) and 200,000 cells"), "\(r.stdout)")
        #expect(try content(b.db) == before)
        #expect(files(under: tmp.path) == everyFile)
        #expect(try App.rows(b.db, "SELECT count(*) FROM t") == [[.integer(0)]])
    }
}
