import BundleSyncCore
import Foundation

/// Where a replica's file lives: this machine's id and the file's absolute path.
///
/// A replica records its home when it is made. A database file copied to another place or
/// machine carries the same identity; if both copies went on writing history, that history
/// would fork. So before sealing a batch, a replica checks that it is still at home, and
/// refuses to write history until `bundlesync reidentify` settles what the copy is.
package enum Home {
    package static func current(of path: String) -> String {
        "\(machineID()):\(absolutePath(path))"
    }

    package static func machineID() -> String {
        for file in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
            if let s = try? String(contentsOfFile: file, encoding: .utf8) {
                let id = s.trimmingCharacters(in: .whitespacesAndNewlines)
                if !id.isEmpty { return id }
            }
        }
        return "host:" + ProcessInfo.processInfo.hostName
    }

    package static func absolutePath(_ path: String) -> String {
        if let resolved = realpath(path, nil) {
            defer { free(resolved) }
            return String(cString: resolved)
        }
        if path.hasPrefix("/") { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }

    /// The path part of a recorded home, for messages.
    package static func describe(_ home: String) -> String {
        guard let colon = home.firstIndex(of: ":") else { return home }
        return "'\(home[home.index(after: colon)...])'"
    }

    /// The home a replica recorded.
    package static func recorded(in db: Database) throws -> String? {
        try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'home'")?.string
    }

    /// Records the file's present place as its home.
    package static func record(in db: Database) throws {
        try db.run("UPDATE _bundlesync_meta SET value = ? WHERE key = 'home'", [.text(current(of: db.path))])
    }

    /// Whether the file is where the replica was made (not a copy elsewhere).
    package static func isAtHome(_ db: Database) throws -> Bool {
        try recorded(in: db) == current(of: db.path)
    }

    /// Refuses to write history from a copy of a replica's file.
    ///
    /// - Throws: `.failure` with the way out when the file is not at its recorded home.
    package static func ensureAtHome(_ store: ReplicaStore) throws {
        let path = store.db.path
        guard let home = try recorded(in: store.db), home != current(of: path) else { return }
        let sameMachine = home.hasPrefix(machineID() + ":")
        throw BundleSyncError(.failure,
            "'\(path)' is a copy of replica '\(store.name)' (\(store.id.short)), which was made at \(describe(home))\(sameMachine ? "" : " on another machine"); writing history from two copies under one identity would fork it",
            hint: "if the original is still in use, run 'bundlesync reidentify \(path)' to make this copy a new replica; if the file was moved and this is now the only copy, run 'bundlesync reidentify \(path) --moved'",
            database: path)
    }
}
