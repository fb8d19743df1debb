import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Exporting again with nothing new leaves the stick as it was.
@Suite struct RepeatedExportTests {
    func bundles(in folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    }

    @Test func anExportWithNothingNewWritesNoFileAndSaysSo() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: "CREATE TABLE t(id TEXT PRIMARY KEY, v);", tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: "CREATE TABLE t(id TEXT PRIMARY KEY, v);", tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1)")
        try b.importing([try a.export(to: tmp.dir("s1"))])
        try b.sql("INSERT INTO t VALUES ('y', 2)")
        try a.importing([try b.export(to: tmp.dir("s2"))])
        // b lacks nothing of a's; the first bundle still tells b that a now holds b's batch.
        let stick = tmp.dir("stick")
        let first = try CLI.run(["export", a.db, "-o", stick])
        #expect(first.status == 0 && !first.trimmedOut.isEmpty, "\(first.stderr)")
        #expect(first.stderr.contains("nothing to send but this replica's vector"), "\(first.stderr)")
        for _ in 0..<3 {
            let r = try CLI.run(["export", a.db, "-o", stick])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.trimmedOut.isEmpty, "no path is printed when no bundle is written: \(r.stdout)")
            #expect(r.stderr.contains("nothing new to send"), "\(r.stderr)")
        }
        #expect(try bundles(in: stick) == [PathText.fileName(of: first.trimmedOut)], "no new file on the stick")
        // The same holds for a named file that already holds it.
        let before = try FileManager.default.attributesOfItem(atPath: first.trimmedOut)[.modificationDate] as? Date
        let again = try CLI.run(["export", a.db, "-o", first.trimmedOut])
        #expect(again.status == 0 && again.stderr.contains("nothing new to send"), "\(again.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: first.trimmedOut)[.modificationDate] as? Date == before)
        // Once there is something to send, a bundle is written again.
        try a.sql("INSERT INTO t VALUES ('z', 3)")
        #expect(try bundles(in: stick).count == 1)
        _ = try a.export(to: stick)
        #expect(try bundles(in: stick).count == 2)
    }

    @Test func reExportingTheSameContentReusesItsName() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: "CREATE TABLE t(id TEXT PRIMARY KEY, v);", tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1), ('y', 2)")
        let stick = tmp.dir("stick")
        // No peer is known, so each export carries everything again: the same content.
        let paths = try (0..<3).map { _ in try a.export(to: stick) }
        #expect(Set(paths).count == 1, "\(paths)")
        #expect(try bundles(in: stick) == [PathText.fileName(of: paths[0])])
        #expect(try CLI.run(["verify", paths[0]]).status == 0)
        // New content gets a new name.
        try a.sql("UPDATE t SET v = 3 WHERE id = 'x'")
        let next = try a.export(to: stick)
        #expect(next != paths[0])
        #expect(try bundles(in: stick).count == 2)
    }
}
