import BundleSync
import Foundation

/// Passphrase files for `--passphrase-file`: the passphrase is the file's bytes, without one
/// final line ending, so that `echo` and editors can write it.
enum PassphraseFile {
    static let help = "A file holding a passphrase the bundle is encrypted to, for a device whose key is not known yet."

    static func read(_ path: String?) throws -> [UInt8]? {
        guard let path else { return nil }
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() ?? Data() else {
            throw BundleSyncError(.noInput, "passphrase file '\(path)' does not exist or cannot be read")
        }
        var bytes = [UInt8](data)
        if bytes.last == 0x0A { bytes.removeLast() }
        if bytes.last == 0x0D { bytes.removeLast() }
        guard !bytes.isEmpty else {
            throw BundleSyncError(.usage, "passphrase file '\(path)' is empty")
        }
        return bytes
    }
}
