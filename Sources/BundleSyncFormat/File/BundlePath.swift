import BundleSyncCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The temporary name a bundle is written under until it is complete.
///
/// ``BundleWriter`` writes `.NAME.PID.tmp` beside the target `NAME`: hidden, never ending in
/// `.bsync`, and naming the writing process, so that a partial file left by a crash is never
/// taken for a bundle and can be cleaned up once its writer is gone.
package enum BundlePath {
    /// Where a bundle for `path` is written until it is complete: `.NAME.PID.tmp` beside it.
    package static func temporary(for path: String, pid: Int32 = getpid()) -> String {
        PathText.join(PathText.directory(of: path), ".\(PathText.fileName(of: path)).\(pid).tmp")
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
}
