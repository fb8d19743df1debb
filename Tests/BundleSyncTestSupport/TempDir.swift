#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A temporary directory, removed with everything in it when the value is released.
///
/// Every temporary file of a test run lives under `TempDir.root`, one directory per test
/// process, which is removed when the process exits: nothing is left behind, not even by a
/// test that stops half-way or by `temporaryPath(_:)`. `BUNDLESYNC_KEEP_TEMP=1` keeps it all
/// and prints where.
package final class TempDir: @unchecked Sendable {
    package let path: String

    /// A new directory under the run's root, named `label` and a random suffix.
    package init(_ label: String = "bundlesync-test") {
        path = Self.makeDirectory(label)
    }

    package func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// A subdirectory, created.
    package func dir(_ name: String) -> String {
        let p = file(name)
        try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    deinit {
        if !Self.keepsFiles { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Whether `BUNDLESYNC_KEEP_TEMP` asks to keep the run's temporary files.
    package static let keepsFiles = TestEnvironment.isOn(TestEnvironment.keepTemporaryFilesVariable)

    /// The directory of this test process, `bundlesync-tests-XXXXXX` in the system's
    /// temporary folder; created on first use and removed at exit.
    package static let root: String = {
        let template = (NSTemporaryDirectory() as NSString).appendingPathComponent("bundlesync-tests-XXXXXX")
        var bytes = Array(template.utf8CString)
        guard mkdtemp(&bytes) != nil else { fatalError("cannot create a temporary directory from \(template): errno \(errno)") }
        let root = String(cString: bytes)
        atexit { TempDir.endOfRun() }
        return root
    }()

    /// Removes the run's directory, or says where it was kept.
    private static func endOfRun() {
        if keepsFiles {
            FileHandle.standardError.write(Data("[BundleSyncTestSupport] kept the temporary files of this run in \(root)\n".utf8))
        } else {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    fileprivate static func makeDirectory(_ label: String) -> String {
        let dir = (root as NSString).appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            fatalError("cannot create the temporary directory \(dir): \(error)")
        }
        return dir
    }
}

/// A path named `name` in a directory of its own, for a test that needs a file or two and
/// cleans up nothing itself: the directory goes with the run's root when the tests end.
package func temporaryPath(_ name: String) -> String {
    (TempDir.makeDirectory("unit") as NSString).appendingPathComponent(name)
}
