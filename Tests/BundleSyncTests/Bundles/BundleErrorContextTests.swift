@testable import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// The reader's errors say which bundle they are about as typed context, and name it once,
/// in front of the message.
@Suite struct BundleErrorContextTests {
    /// Reads the whole bundle at `path` as `verify` does; the error it throws, if any.
    static func refusal(_ path: String) -> BundleSyncError? {
        do {
            let reader = try BundleReader(path: path)
            if reader.header.isSnapshot {
                while try reader.nextSnapshotChunkOutline() != nil {}
            } else {
                while try reader.nextBatchOutline() != nil {}
            }
            try reader.finish()
            return nil
        } catch let e as BundleSyncError {
            return e
        } catch {
            Issue.record("an error that is not a BundleSyncError: \(error)")
            return nil
        }
    }

    static func expectAbout(_ path: String, _ e: BundleSyncError?, _ label: String) {
        guard let e else {
            Issue.record("\(label): accepted")
            return
        }
        #expect(e.bundle == path, "\(label): \(e.message)")
        #expect(e.database == nil, "\(label)")
        #expect(e.message.hasPrefix("'\(path)'"), "\(label): \(e.message)")
        #expect(e.message.components(separatedBy: "'\(path)'").count == 2, "\(label) names the file once: \(e.message)")
    }

    @Test func damageAnywhereIsReportedAboutTheBundle() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("bundles/v1-delta.bsync"))))
        let tmp = TempDir("bundlesync-context")
        let dir = tmp.path
        let path = dir + "/mutant.bsync"
        var mutants: [(String, [UInt8])] = []
        for i in stride(from: 0, to: original.count, by: 3) {
            var m = original
            m[i] ^= 0x10
            mutants.append(("byte \(i) changed", m))
            mutants.append(("truncated to \(i)", Array(original.prefix(i))))
        }
        mutants.append(("one byte appended", original + [0]))
        for (label, bytes) in mutants {
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            Self.expectAbout(path, Self.refusal(path), label)
        }
    }

    @Test func aMissingBundleOrADirectoryIsReportedAboutThePathGiven() throws {
        let tmp = TempDir("bundlesync-context")
        let dir = tmp.path
        let missing = dir + "/missing.bsync"
        Self.expectAbout(missing, Self.refusal(missing), "missing")
        #expect(Self.refusal(missing)?.code == .noInput)
        Self.expectAbout(dir, Self.refusal(dir), "directory")
        #expect(Self.refusal(dir)?.code == .usage)
    }

}
