import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge

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
        return (path as NSString).standardizingPath
    }

    /// The path part of a recorded home, for messages.
    package static func describe(_ home: String) -> String {
        guard let colon = home.firstIndex(of: ":") else { return home }
        return "'\(home[home.index(after: colon)...])'"
    }
}
