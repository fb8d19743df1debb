import BundleSyncCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The parts of a bundle's path, and the temporary name it is written under, in plain string
/// code that accepts any path.
///
/// A path is split at its last `/`, after any trailing `/`: `a` is the file `a` in the
/// current directory (directory ""), `/a` the file `a` in `/`, `d/a/` the file `a` in `d`.
package enum BundlePath {
    /// The directory part of `path`: "" when there is none, `/` for a file in the root.
    package static func directory(of path: String) -> String {
        String(split(path).directory)
    }

    /// The last component of `path`.
    package static func fileName(of path: String) -> String {
        String(split(path).name)
    }

    /// `name` in `directory` ("" for the current directory).
    package static func joined(_ directory: String, _ name: String) -> String {
        directory.isEmpty ? name : directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// Where a bundle for `path` is written until it is complete: `.NAME.PID.tmp` beside it,
    /// hidden and never ending in `.bsync`, with the writing process's id.
    package static func temporary(for path: String, pid: Int32 = getpid()) -> String {
        let (directory, name) = split(path)
        return joined(String(directory), ".\(name).\(pid).tmp")
    }

    /// Whether the file `name` is the temporary file of a bundle whose file name is
    /// `fileName` (see ``temporary(for:pid:)``).
    ///
    /// - Returns: The id of the process that wrote it, 0 when that part of the name is not a
    ///   process id; nil when `name` is no such temporary file.
    package static func writer(ofTemporary name: String, for fileName: String) -> Int32? {
        let prefix = ".\(fileName).", suffix = ".tmp"
        guard name.count >= prefix.count + suffix.count, name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        return Int32(name.dropFirst(prefix.count).dropLast(suffix.count)) ?? 0
    }

    private static func split(_ path: String) -> (directory: Substring, name: Substring) {
        var trimmed = path[...]
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard trimmed != "/", let slash = trimmed.lastIndex(of: "/") else {
            return (trimmed == "/" ? "/" : "", trimmed)
        }
        var directory = trimmed[..<slash]
        while directory.hasSuffix("/") { directory = directory.dropLast() }
        return (directory.isEmpty ? "/" : directory, trimmed[trimmed.index(after: slash)...])
    }
}
