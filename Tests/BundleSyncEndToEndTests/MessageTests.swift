import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// What the command line says when something is wrong, and listings meant for people.
@Suite struct MessageTests {
    static let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v);"

    @Test func badBundlesComeWithTheManualsAdvice() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 'some text to carry'), ('y', 2)")
        let good = try a.export(to: tmp.dir("stick"))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let truncated = tmp.file("truncated.bsync")
        try bytes.prefix(bytes.count - 40).write(to: URL(fileURLWithPath: truncated))
        let flipped = tmp.file("flipped.bsync")
        var changed = bytes
        changed[changed.count - 100] ^= 0x01
        try changed.write(to: URL(fileURLWithPath: flipped))
        let notABundle = tmp.file("notes.bsync")
        try "shopping list".write(toFile: notABundle, atomically: true, encoding: .utf8)
        for (file, advice) in [(truncated, "export again on the device that wrote it"), (flipped, "export again on the source device"),
                               (notABundle, "check that the right file was copied")] {
            for args in [["verify", file], ["import", b.db, file], ["inspect", file]] {
                let r = try CLI.run(args)
                #expect(r.status == 65, "\(args[0]) \(file): \(r.stderr)")
                #expect(r.stderr.contains("\nhint: ") && r.stderr.contains(advice), "\(args[0]) \(file): \(r.stderr)")
            }
        }
    }

    @Test func aTextFileGivenAsADatabaseIsSaidNotToBeOne() throws {
        let tmp = TempDir()
        let notes = tmp.file("notes.txt")
        try String(repeating: "not a database at all\n", count: 40).write(toFile: notes, atomically: true, encoding: .utf8)
        for args in [["status", notes], ["init", notes], ["digest", notes]] {
            let r = try CLI.run(args)
            #expect(r.status == 1, "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains("error: '\(notes)' is not a SQLite database"), "\(args[0]): \(r.stderr)")
            #expect(!r.stderr.contains("damaged"))
        }
    }

    @Test func inspectRowsWithoutJSONListsEveryRowChange() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 'it''s'), ('y', 2), ('z', X'00ff'); DELETE FROM t WHERE id = 'y'")
        let bundle = try a.export(to: tmp.dir("stick"))
        let r = try CLI.run(["inspect", bundle, "--rows"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("row changes\n"), "\(r.stdout)")
        #expect(r.stdout.contains("  t ('x')  present, causal length 1, batch "), "\(r.stdout)")
        #expect(r.stdout.contains("    v = 'it''s'  at 20"), "\(r.stdout)")
        #expect(r.stdout.contains("    v = X'00ff'"), "\(r.stdout)")
        #expect(r.stdout.contains("  t ('y')  deleted, causal length 2"), "\(r.stdout)")
        // The JSON form carries clocks as strings: they do not fit a JSON number exactly.
        let json = try CLI.run(["inspect", bundle, "--rows", "--json"])
        let doc = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let first = (doc?["row_changes"] as? [[String: Any]])?.first
        #expect(first?["row_hlc"] is String && ((first?["cells"] as? [[String: Any]])?.first?["hlc"] is String), "\(json.stdout)")
    }

    @Test func helpExamplesAreNotWrappedMidCommandOnAnEightyColumnTerminal() throws {
        for sub in [""] + UsabilityTests.subcommands {
            let r = try CLI.run(sub.isEmpty ? ["--help"] : [sub, "--help"], environment: ["COLUMNS": "80"])
            var inExample = false
            for line in r.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix("Example") { inExample = true; continue }
                if line.isEmpty { inExample = false }
                if inExample { #expect(line.hasPrefix("  "), "'\(sub)' help: an example line wraps: \(line)") }
            }
        }
    }
}
