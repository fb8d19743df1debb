import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// `-o -` and `-` as a bundle: bundles through pipes, as `git bundle` and `zstd` do; and
/// which stream each kind of line goes to.
@Suite struct StandardStreamTests {
    static let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v);"

    /// Runs a shell pipeline in which `bundlesync` stands for the built binary.
    func shell(_ script: String, environment: [String: String] = [:]) throws -> CLIResult {
        try CLI.run(["-c", "bundlesync() { \"$BUNDLESYNC\" \"$@\"; }; " + script], wrapper: [],
                    environment: environment.merging(["BUNDLESYNC": CLI.binary]) { $1 }, program: "/bin/sh")
    }

    func listing(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    @Test func aBundleGoesThroughAPipeWithTheSameChecks() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) INSERT INTO t SELECT 'k' || i, i FROM n")
        let spool = tmp.dir("spool")
        let before = listing(tmp.path)
        let verified = try shell("bundlesync export '\(a.db)' -o - | bundlesync verify -", environment: ["TMPDIR": spool])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.hasPrefix("standard input: OK, 1 batch from 1 replica, 500 row changes"), "\(verified.stdout)")
        #expect(listing(spool).isEmpty, "verify - leaves nothing in the temporary folder")
        let imported = try shell("bundlesync export '\(a.db)' -o - | bundlesync import '\(b.db)' -")
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("standard input: applied 1 batch"), "\(imported.stdout)")
        #expect(try a.digest() == b.digest())
        #expect(listing(tmp.path) == before, "nothing left beside the replicas: \(listing(tmp.path))")
        // What -o - writes is the bundle itself.
        let file = tmp.file("piped.bsync")
        #expect(try shell("bundlesync export '\(a.db)' -o - > '\(file)'").status == 0)
        #expect(try CLI.run(["verify", file]).status == 0)
        #expect(try CLI.run(["import", b.db, file]).stdout.contains("skipped, already imported"))
    }

    @Test func aDamagedStreamIsRefusedAndNamedAsStandardInput() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 'a value long enough to be compressed somewhat')")
        for args in [["verify", "-"], ["import", b.db, "-"]] {
            let quoted = args.map { "'\($0)'" }.joined(separator: " ")
            let r = try shell("bundlesync export '\(a.db)' -o - | head -c 300 | bundlesync \(quoted)")
            #expect(r.status == 65, "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains("error: standard input is truncated"), "\(args[0]): \(r.stderr)")
            #expect(r.stderr.contains("\nhint: "), "\(args[0]): \(r.stderr)")
            #expect(!r.stderr.contains("/proc/self/fd"), "\(r.stderr)")
        }
        #expect((try b.status()["vector"] as? [String: Any])?.isEmpty == true, "nothing was imported")
        #expect(try CLI.run(["import", b.db, "-", "-"], stdin: "").status == 64)
        #expect(try CLI.run(["export", a.db, "-o", "-", "--json"]).status == 64)
    }

    @Test func aBundleIsNeverWrittenToOrReadFromATerminal() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1)")
        // `script` gives the command a terminal for its standard streams.
        for (command, fragment) in [("export '\(a.db)' -o -", "refusing to write a bundle to a terminal"),
                                    ("verify -", "refusing to read a bundle from a terminal")] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
            p.arguments = ["-q", "-e", "-c", "'\(CLI.binary)' \(command)", "/dev/null"]
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let screen = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 64, "\(command): \(screen)")
            #expect(screen.contains(fragment), "\(command): \(screen)")
        }
        #expect(try a.status()["pending_changes"] as? Int == 1, "nothing was sealed")
    }

    @Test func resultsGoToStandardOutputAndDiagnosticsToStandardError() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO t SELECT 'key-' || i, hex(randomblob(40)) FROM n")
        let exported = try CLI.run(["export", a.db, "-o", tmp.dir("stick")])
        #expect(exported.status == 0)
        let bundle = exported.trimmedOut
        // Sizes in human units next to the exact count.
        #expect(exported.stderr.range(of: #"\(2,000 row changes, [0-9]{1,3}(,[0-9]{3})+ bytes \([0-9.]+ (kB|MB)\)\)"#, options: .regularExpression) != nil,
                "\(exported.stderr)")
        let inspected = try CLI.run(["inspect", bundle])
        #expect(inspected.stdout.range(of: #"size       [0-9,]+ bytes \([0-9.]+ kB\), [0-9,]+ bytes \([0-9.]+ kB\) uncompressed"#, options: .regularExpression) != nil,
                "\(inspected.stdout)")
        let cut = tmp.file("cut.bsync")
        try Data(try Data(contentsOf: URL(fileURLWithPath: bundle)).prefix(200)).write(to: URL(fileURLWithPath: cut))
        for args in [["import", b.db, bundle, cut], ["verify", bundle, cut]] {
            let r = try CLI.run(args)
            #expect(r.status == 65)
            let out = r.stdout.split(separator: "\n").map(String.init)
            #expect(out.count == 2 && out[0].hasPrefix(bundle + ": ") && out[1].hasPrefix(cut + ": "), "\(args[0]) stdout: \(r.stdout)")
            #expect(r.stderr.hasPrefix("error: '\(cut)'"), "\(args[0]) stderr: \(r.stderr)")
            #expect(!r.stderr.contains(bundle + ":"), "\(args[0]): a result went to stderr: \(r.stderr)")
        }
        let quiet = try CLI.run(["import", b.db, bundle, "--quiet"])
        #expect(quiet.stdout.contains("skipped, already imported") && quiet.stderr.isEmpty)
    }
}
