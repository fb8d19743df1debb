// libFuzzer target: the bundle reader, through the public API a user's bytes reach.
//
// Each input is written to one scratch file (on tmpfs when there is one) and read with
// `BundleSummary.read(path:)`, exactly as `bundlesync verify FILE` does, then again with the
// key of the replica the golden encrypted bundles are for, as `bundlesync import` opens an
// encrypted bundle (mutants of `corpus/v2-encrypted.bsync` reach the decryption). Errors are
// the expected outcome; crashes, traps, hangs (-timeout), runaway memory (-rss_limit_mb,
// -malloc_limit_mb) and leaked file descriptors are findings.
import BundleSync
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The scratch file, opened once and rewritten for every input.
private let scratch: (fd: Int32, path: String) = {
    let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
    let path = "\(dir)/bundlesync-fuzz-\(getpid()).bsync"
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "cannot create \(path)")
    atexit { unlink(scratch.path) }
    return (fd, path)
}()

/// The test keys of the replica 'reader' (`fixtures/bundles/v2-keys.json`).
private let keyring = BundleKeyring(
    replica: ReplicaID(hex: "caf3e5fb24ac1972bcc77ea556e7849f")!,
    exchange: try! ExchangeIdentity(privateKeyBytes: Array(stride(from: 0, to: 64, by: 2).map {
        let hex = Array("c8ba0e48673116eb518c6baccce01047cbe089da120d710b7d70a61dbcb5e056")
        return UInt8(String(hex[$0..<$0 + 2]), radix: 16)!
    })))

private var runs = 0
/// Open descriptors after the first input; the reader must not leak any.
private var baselineFDs = -1

private func openFDs() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let s = scratch
    guard ftruncate(s.fd, 0) == 0, pwrite(s.fd, data, size, 0) == size else { fatalError("cannot write the scratch file") }
    for key in [nil, keyring] {
        do {
            _ = try BundleSummary.read(path: s.path, includeRows: true, keyring: key)
        } catch let e as BundleSyncError {
            // Every refusal must name the file (SPEC §5) and be bad data, not some other failure.
            precondition(e.message.contains(s.path), "error does not name the file: \(e.message)")
            precondition(e.code == .badData, "unexpected error code \(e.code): \(e.message)")
        } catch {
            fatalError("an error that is not a BundleSyncError: \(error)")
        }
    }
    runs += 1
    if runs == 1 { baselineFDs = openFDs() }
    if runs % 4096 == 0 { precondition(openFDs() <= baselineFDs + 8, "file descriptors leak: \(openFDs()) open") }
    return 0
}
