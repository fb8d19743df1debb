import ArgumentParser
import BundleSync
import BundleSyncStore
import Foundation

/// Shell completion (`--generate-completion-script bash|zsh|fish`): files for databases and
/// bundles, directories where a folder is wanted, and, by asking the replica itself, the
/// names of the peers it knows.
enum Completions {
    static let database = CompletionKind.file()
    static let bundles = CompletionKind.file()
    static let folder = CompletionKind.directory
    static let trustActions = CompletionKind.list(["list", "add", "remove", "only"])

    /// The peers of the replica named on the command line being completed.
    static let peers = CompletionKind.custom { words, index, prefix in
        peerNames(words: words, before: index).filter { $0.hasPrefix(prefix) }
    }

    /// The third word of `trust`: a peer for add and remove, on or off for only.
    static let trustValue = CompletionKind.custom { words, index, prefix in
        let action = words.indices.contains(index - 1) ? words[index - 1] : ""
        let candidates = action == "only" ? ["on", "off"] : ["add", "remove"].contains(action) ? peerNames(words: words, before: index) : []
        return candidates.filter { $0.hasPrefix(prefix) }
    }

    /// Options of the subcommands whose value is the next word.
    static let optionsWithValues: Set<String> = ["-o", "--output", "--to", "--since", "--db", "--name", "--max-clock-skew",
                                                 "--text", "--lww", "--renamed"]

    /// The database named on the command line: the first word after the subcommand that is
    /// neither an option nor an option's value.
    static func database(in words: [String], before index: Int) -> String? {
        var i = 2
        while i < min(index, words.count) {
            let w = words[i]
            // `track --json COL` names a column; elsewhere --json is a flag.
            if optionsWithValues.contains(w) || (w == "--json" && words.count > 1 && words[1] == "track") { i += 2; continue }
            if w.hasPrefix("-") { i += 1; continue }
            return unquoted(w)
        }
        return nil
    }

    /// A shell word as a path: quotes removed, `~/` expanded.
    static func unquoted(_ word: String) -> String {
        var w = word
        if w.count >= 2, let f = w.first, f == w.last, f == "'" || f == "\"" { w = String(w.dropFirst().dropLast()) }
        w = w.replacingOccurrences(of: "\\ ", with: " ")
        if w.hasPrefix("~/") { w = NSHomeDirectory() + w.dropFirst() }
        return w
    }

    /// The names of the replicas `db` has heard of, itself left out. Reads only, and waits
    /// at most briefly for a lock: a completion must not stall the shell.
    static func peerNames(words: [String], before index: Int) -> [String] {
        guard let path = database(in: words, before: index), FileManager.default.fileExists(atPath: path),
              let db = try? Database(path: path, busyTimeout: 200) else { return [] }
        let rows = (try? db.rows("""
            SELECT name FROM _bundlesync_replicas WHERE name IS NOT NULL
              AND name IS NOT (SELECT value FROM _bundlesync_meta WHERE key = 'name') ORDER BY name
            """)) ?? []
        return rows.compactMap { $0.first?.string }
    }
}
