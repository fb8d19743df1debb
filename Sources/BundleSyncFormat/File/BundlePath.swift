import BundleSyncCore
import Foundation

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

extension BundlePath {
    /// The name of a bundle written into a folder: `NAME-SEQ-HASH8.bsync`.
    ///
    /// HASH8 is the start of a digest of what the bundle carries (its exporter, both
    /// vectors, the batches or snapshot heads it lists, and its uncompressed body), not of
    /// the file's bytes, which also hold the time of export and a fresh signature. So
    /// exporting the same content again gives the same name, and replaces the earlier file
    /// instead of adding a copy of it beside it.
    package static func fileName(exporterName: String, seq: UInt64, header: BundleHeader, contentDigest: Digest32) -> String {
        var h = Hasher256()
        func line(_ text: String) { h.update(Array((text + "\n").utf8)) }
        line("exporter \(header.exporter.hex)")
        line("vector " + header.exporterVector.sorted.map { "\($0.0.hex):\($0.1)" }.joined(separator: ","))
        line("base " + header.baseVector.sorted.map { "\($0.0.hex):\($0.1)" }.joined(separator: ","))
        for b in header.batches { line("batch \(b.origin.hex) \(b.seq) \(b.hash.hex)") }
        for head in header.snapshotHeads ?? [] { line("head \(head.origin.hex) \(head.seq) \(head.hash.hex)") }
        line("body \(contentDigest.hex)")
        return "\(exporterName)-\(seq)-\(h.finalize().short).\(BundleFile.fileExtension)"
    }
}

extension BundlePath {
    /// The kind of failure a write, create or rename with this errno is: an input/output
    /// error of the device (`.io`, exit 74), or an output that cannot be created (`.cannotCreate`, 73).
    package static func code(forWriteFailure e: Int32) -> BundleSyncError.Code {
        switch e {
        case EIO, ENOSPC, EDQUOT, ENXIO, ENODEV: .io
        default: .cannotCreate
        }
    }

    /// What to do about a write that failed with this errno.
    package static func hint(forWriteFailure e: Int32) -> String {
        switch e {
        case EROFS: "the stick or folder is mounted read-only; remount it writable or write elsewhere"
        case EACCES, EPERM: "this user may not write there; choose another folder or fix its permissions"
        case ENOSPC, EDQUOT: "free some space and export again"
        case EIO, ENXIO, ENODEV: "check that the stick is still there and working, then export again"
        default: "check that the folder exists and is writable"
        }
    }

    /// Opens a bundle for reading, with the reason when it cannot be: a missing or
    /// unreadable file is missing input (66), a failing device an I/O error (74).
    package static func openForReading(_ path: String) throws -> FileHandle {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            let reason = String(cString: strerror(e)).lowercased()
            if e == EIO || e == ENXIO || e == ENODEV {
                throw BundleSyncError(.io, "cannot read '\(path)': \(reason)",
                                      hint: "check that the stick is still there and working", cause: .errno(e), bundle: path)
            }
            throw BundleSyncError(.noInput, "'\(path)' cannot be opened for reading: \(reason)", cause: .errno(e), bundle: path)
        }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }
}
