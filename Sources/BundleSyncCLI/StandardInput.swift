import BundleSync
import Foundation

/// `-` as a bundle path: one bundle read from standard input.
///
/// The reader checks the trailer before the body, so it needs a file it can seek in. The
/// stream is copied, a megabyte at a time, into a file in `directory` that is unlinked as
/// soon as it is created: it is reached only through this process's descriptor, and nothing
/// is left behind however the command ends.
final class StandardInputBundle {
    static let name = "-"
    /// How the bundle is named in messages.
    static let shown = "standard input"

    /// The path the reader opens (`/proc/self/fd/N`).
    let path: String
    private let fd: Int32

    init(spoolingInto directory: String) throws {
        guard isatty(STDIN_FILENO) == 0 else {
            throw BundleSyncError(.usage, "refusing to read a bundle from a terminal",
                                  hint: "pipe or redirect the bundle into standard input, for example 'bundlesync verify - < FILE'")
        }
        var template = Array(PathText.join(directory.isEmpty ? "." : directory, ".bundlesync-stdin.XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            let e = errno
            throw BundleSyncError(e == EIO || e == ENOSPC ? .io : .cannotCreate,
                                  "cannot hold the bundle from standard input in '\(directory)': \(String(cString: strerror(e)).lowercased())",
                                  cause: .errno(e))
        }
        unlink(String(cString: template))
        self.fd = fd
        path = "/proc/self/fd/\(fd)"
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                let e = errno
                close(fd)
                throw BundleSyncError(.io, "cannot read the bundle from standard input: \(String(cString: strerror(e)).lowercased())", cause: .errno(e))
            }
            if n == 0 { break }
            var done = 0
            while done < n {
                let w = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + done, n - done) }
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else {
                    let e = errno
                    close(fd)
                    throw BundleSyncError(BundlePathCodes.forWrite(e), "cannot hold the bundle from standard input in '\(directory)': \(String(cString: strerror(e)).lowercased())",
                                          cause: .errno(e))
                }
                done += w
            }
        }
    }

    deinit { close(fd) }

    /// Names standard input, not the descriptor, in what is shown.
    func shown(_ text: String) -> String {
        text.replacingOccurrences(of: "'\(path)'", with: Self.shown).replacingOccurrences(of: path, with: Self.shown)
    }

    func shown(_ error: BundleSyncError) -> BundleSyncError {
        var e = error
        e.message = shown(e.message)
        if e.bundle == path { e.bundle = Self.name }
        return e
    }
}

enum BundlePathCodes {
    static func forWrite(_ e: Int32) -> BundleSyncError.Code { e == EIO || e == ENOSPC || e == EDQUOT ? .io : .cannotCreate }
}
