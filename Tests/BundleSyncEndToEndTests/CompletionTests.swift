import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Shell completion as a person at a bash prompt gets it: the generated script is sourced in
/// a real bash, and its function fills COMPREPLY for the words typed so far.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/bin/bash"), "bash is not installed"))
struct CompletionTests {
    /// The candidates bash offers for the last of `words` (the word being completed).
    func complete(_ words: [String], script: String, in dir: String) throws -> [String] {
        let quoted = words.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let program = """
        source '\(script)'
        COMP_WORDS=(\(quoted)); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
        _bundlesync bundlesync "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\\n' "${COMPREPLY[@]}"
        """
        // The script asks `bundlesync` itself for peer names: the built binary, found on PATH.
        let bin = PathText.join(dir, "bin")
        try? FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try? FileManager.default.createSymbolicLink(atPath: PathText.join(bin, "bundlesync"), withDestinationPath: CLI.binary)
        let r = try CLI.run(["-c", "cd '\(dir)' && " + program], environment: ["PATH": bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")],
                            program: "/bin/bash")
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.split(separator: "\n").map(String.init).sorted()
    }

    @Test func bashCompletesFilesFoldersPeersAndTrustActions() throws {
        let tmp = TempDir()
        let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v);"
        let laptop = try TestReplica("laptop", in: tmp, schema: schema, tables: ["t"])
        let tablet = try TestReplica("tablet", in: tmp, schema: schema, tables: ["t"])
        try laptop.sql("INSERT INTO t VALUES ('x', 1)")
        let box = tmp.dir("box")
        try tablet.importing([try laptop.export(to: box)])
        let script = tmp.file("bundlesync.bash")
        let generated = try CLI.run(["--generate-completion-script", "bash"])
        #expect(generated.status == 0)
        try generated.stdout.write(toFile: script, atomically: true, encoding: .utf8)

        // A database argument completes file names.
        // (Files bundlesync keeps beside a database, such as its -wal, are files too.)
        let tab = try complete(["bundlesync", "export", "tab"], script: script, in: tmp.path)
        #expect(tab.contains("tablet.db") && tab.allSatisfy { $0.hasPrefix("tablet.db") }, "\(tab)")
        let lap = try complete(["bundlesync", "status", "lap"], script: script, in: tmp.path)
        #expect(lap.contains("laptop.db") && lap.allSatisfy { $0.hasPrefix("laptop.db") }, "\(lap)")
        // Bundle arguments complete file names too.
        let bundles = try complete(["bundlesync", "verify", "box/"], script: script, in: tmp.path)
        #expect(bundles.count == 1 && bundles[0].hasPrefix("box/laptop-1-") && bundles[0].hasSuffix(".bsync"), "\(bundles)")
        // --to completes the names of the peers the database knows, asked of the binary.
        #expect(try complete(["bundlesync", "export", "tablet.db", "--to", ""], script: script, in: tmp.path) == ["laptop"])
        #expect(try complete(["bundlesync", "export", "tablet.db", "--to", "x"], script: script, in: tmp.path) == [])
        #expect(try complete(["bundlesync", "export", "laptop.db", "--to", ""], script: script, in: tmp.path) == [], "the laptop knows no peer yet")
        // Folders where a folder is wanted.
        #expect(try complete(["bundlesync", "sync", "tablet.db", "b"], script: script, in: tmp.path) == ["bin", "box"])
        #expect(try complete(["bundlesync", "export", "tablet.db", "-o", "bo"], script: script, in: tmp.path) == ["box"])
        // Trust actions, then what each action takes.
        #expect(try complete(["bundlesync", "trust", "tablet.db", ""], script: script, in: tmp.path) == ["add", "list", "only", "remove"])
        #expect(try complete(["bundlesync", "trust", "tablet.db", "only", ""], script: script, in: tmp.path) == ["off", "on"])
        #expect(try complete(["bundlesync", "trust", "tablet.db", "add", "l"], script: script, in: tmp.path) == ["laptop"])
        // Completing touched nothing.
        #expect(try tablet.status()["pending_changes"] as? Int == 0)
    }

    @Test func zshAndFishScriptsAreGeneratedWithTheSameCompletions() throws {
        for shell in ["zsh", "fish"] {
            let r = try CLI.run(["--generate-completion-script", shell])
            #expect(r.status == 0, "\(shell): \(r.stderr)")
            #expect(r.stdout.contains("---completion"), "\(shell): peer names come from the binary")
            #expect(r.stdout.contains("export") && r.stdout.contains("trust"), "\(shell)")
        }
    }
}
