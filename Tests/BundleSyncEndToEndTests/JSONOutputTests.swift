import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// `--json` on every read command: one document on stdout, on success and on failure, and no
/// number a JSON reader could round.
@Suite struct JSONOutputTests {
    static let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v);"

    func document(_ r: CLIResult, _ what: String) throws -> [String: Any] {
        guard let d = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
            throw TestFailure("\(what): stdout is not one JSON object: \(r.stdout)")
        }
        return d
    }

    /// Every number in `value` that a double cannot hold exactly.
    func inexactNumbers(_ value: Any, at path: String = "") -> [String] {
        switch value {
        case let d as [String: Any]: return d.flatMap { inexactNumbers($0.value, at: path + "." + $0.key) }
        case let a as [Any]: return a.enumerated().flatMap { inexactNumbers($0.element, at: path + "[\($0.offset)]") }
        case let n as NSNumber:
            return abs(n.int64Value) > 1 << 53 || n.uint64Value > 1 << 53 ? ["\(path) = \(n)"] : []
        default: return []
        }
    }

    @Test func everyReadCommandPrintsOneDocument() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1), ('y', 'two')")
        let exported = try CLI.run(["export", a.db, "-o", tmp.dir("stick"), "--json"])
        let e = try document(exported, "export")
        let bundle = try #require(e["path"] as? String)
        #expect(e["written"] as? Bool == true && e["batches"] as? Int == 1 && e["rows"] as? Int == 2, "\(exported.stdout)")
        let runs: [[String]] = [["digest", a.db, "--json"], ["vector", a.db, "--json"], ["status", a.db, "--json"],
                                ["inspect", bundle, "--json", "--rows"], ["verify", bundle, "--json"], ["import", b.db, bundle, "--json"],
                                ["trust", a.db, "list", "--json"]]
        for args in runs {
            let r = try CLI.run(args)
            #expect(r.status == 0, "\(args[0]): \(r.stderr)")
            let d = try document(r, args[0])
            #expect(inexactNumbers(d).isEmpty, "\(args[0]): \(inexactNumbers(d))")
        }
        let digest = try document(try CLI.run(["digest", b.db, "--json"]), "digest")
        #expect(digest["digest"] as? String == (try a.digest()))
    }

    @Test func aFailingJSONCommandStillPrintsOneDocumentWithTheError() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1)")
        let bundle = try a.export(to: tmp.dir("stick"))
        let cut = tmp.file("cut.bsync")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: bundle))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        let notes = tmp.file("notes.txt")
        try String(repeating: "plain text\n", count: 60).write(toFile: notes, atomically: true, encoding: .utf8)
        let cases: [([String], String, Int32)] = [
            (["status", tmp.file("missing.db"), "--json"], "no_input", 66),
            (["digest", notes, "--json"], "failure", 1),
            (["inspect", cut, "--json"], "bad_data", 65),
            (["export", a.db, "-o", tmp.file("not-mounted"), "--json"], "cannot_create", 73),
            (["status", "--json"], "usage", 64),
            (["import", tmp.file("missing.db"), bundle, "--json"], "no_input", 66),
        ]
        for (args, code, status) in cases {
            let r = try CLI.run(args)
            #expect(r.status == status, "\(args): \(r.status) \(r.stderr)")
            let error = try document(r, "\(args)")["error"] as? [String: Any]
            #expect(error?["code"] as? String == code, "\(args): \(r.stdout)")
            #expect(error?["exit_status"] as? Int == Int(status), "\(args): \(r.stdout)")
            #expect((error?["message"] as? String)?.isEmpty == false && error?["hint"] != nil, "\(args): \(r.stdout)")
            #expect(r.stderr.contains("rror: "), "people still read the error on stderr: \(r.stderr)")
        }
        // A bad bundle among several: the command's own document, each bundle with its error.
        let v = try CLI.run(["verify", bundle, cut, "--json"])
        #expect(v.status == 65)
        let reports = try document(v, "verify")["bundles"] as? [[String: Any]]
        #expect(reports?.count == 2)
        #expect(reports?.last?["code"] as? String == "bad_data" && reports?.last?["hint"] is String, "\(v.stdout)")
    }
}
