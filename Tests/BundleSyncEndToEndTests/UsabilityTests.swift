import BundleSyncTestSupport
import Foundation
import Testing

/// Help text, progress output and machine output, as people and scripts meet them.
@Suite struct UsabilityTests {
    static let subcommands = ["init", "track", "export", "import", "verify", "inspect", "status", "digest", "sync", "untrack", "vector", "prune",
                              "trust", "config", "reidentify", "demo"]

    /// Each subcommand's `--help` is guarded by a golden file in `Snapshots/help`; re-record
    /// with `BUNDLESYNC_RECORD=1` after an intended change (and update the manual too).
    @Test(arguments: [""] + subcommands)
    func helpMatchesItsGoldenFile(_ sub: String) throws {
        let r = try CLI.run(sub.isEmpty ? ["--help"] : [sub, "--help"], environment: ["COLUMNS": "100"])
        #expect(r.status == 0)
        try assertSnapshot(r.stdout, matches: "Tests/BundleSyncEndToEndTests/Snapshots/help/\(sub.isEmpty ? "bundlesync" : sub).txt",
                           "help of '\(sub)' changed; re-record with BUNDLESYNC_RECORD=1 and check the manual")
        if !sub.isEmpty {
            #expect(r.stdout.contains("Example"), "every subcommand's help shows an example")
        }
    }

    @Test func exportDrawsAProgressBarOnATerminalAndNoneWhenPiped() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: "CREATE TABLE t(id TEXT PRIMARY KEY, v TEXT);", tables: ["t"])
        try a.sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) INSERT INTO t SELECT printf('k%08d', i), 'value ' || i FROM n")
        // `script` gives the command a pseudo-terminal, as a person at a terminal would have.
        let out = tmp.dir("out")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        p.arguments = ["-q", "-e", "-c", "'\(CLI.binary)' export '\(a.db)' -o '\(out)'", "/dev/null"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let screen = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(screen.contains("sealing [") && screen.contains("%"), "a bar is drawn on a terminal")
        #expect(screen.contains("ETA"))

        try a.sql("UPDATE t SET v = v || '!'")
        let piped = try CLI.run(["export", a.db, "-o", out])
        #expect(piped.status == 0)
        #expect(!piped.stderr.contains("[") && !piped.stderr.contains("\u{1B}"), "no bar when stderr is not a terminal")
        let quiet = try CLI.run(["export", a.db, "-o", out, "--quiet"])
        #expect(quiet.status == 0 && quiet.stderr.isEmpty && !quiet.trimmedOut.isEmpty)
        try a.sql("UPDATE t SET v = v || '?' WHERE id = 'k00000001'")
        let verbose = try CLI.run(["export", a.db, "-o", out, "--verbose"])
        #expect(verbose.stderr.contains("sealed batch") && verbose.stderr.contains("wrote batch"))
    }

    @Test func jsonOutputsParseAndHaveTheirDocumentedKeys() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: "CREATE TABLE t(id TEXT PRIMARY KEY, v);", tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: "CREATE TABLE t(id TEXT PRIMARY KEY, v);", tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1)")
        let bundle = try a.export(to: tmp.dir("stick"))
        func json(_ args: [String]) throws -> [String: Any] {
            let r = try CLI.run(args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        }
        let status = try json(["status", a.db, "--json"])
        for key in ["id", "name", "vector", "peers", "pending_changes", "parked", "tables", "history", "trust_only"] {
            #expect(status[key] != nil, "status --json has '\(key)'")
        }
        let inspect = try json(["inspect", bundle, "--json"])
        for key in ["exporter", "exporter_vector", "base_vector", "batches", "origins", "tables", "file_bytes", "rows", "cells"] {
            #expect(inspect[key] != nil, "inspect --json has '\(key)'")
        }
        let verify = try json(["verify", bundle, "--json"])
        #expect((verify["bundles"] as? [[String: Any]])?.first?["ok"] as? Bool == true)
        let imported = try json(["import", b.db, bundle, "--json"])
        let first = (imported["bundles"] as? [[String: Any]])?.first
        #expect(first?["status"] as? String == "applied")
        #expect(first?["applied"] as? Int == 1)
        let again = try json(["import", b.db, bundle, "--json"])
        #expect((again["bundles"] as? [[String: Any]])?.first?["status"] as? String == "skipped")
    }
}
