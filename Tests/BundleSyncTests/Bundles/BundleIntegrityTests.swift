@testable import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Every byte of a bundle is covered: any change to the file is detected on a bare file.
@Suite struct BundleIntegrityTests {
    static let golden = fixture("bundles/v1-delta.bsync")

    func refuses(_ bytes: [UInt8], _ label: String) -> Bool {
        let path = temporaryPath("mutant.bsync")
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        do {
            _ = try BundleSummary.read(path: path)
            return false
        } catch let e as BundleSyncError {
            return e.code == .badData && e.message.contains(path)
        } catch {
            Issue.record("\(label): unexpected error type \(error)")
            return false
        }
    }

    @Test func theGoldenBundleVerifies() throws {
        _ = try BundleSummary.read(path: Self.golden)
    }

    @Test func everySingleBitFlipIsDetected() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.golden)))
        var missed: [Int] = []
        for bit in 0..<(original.count * 8) {
            var m = original
            m[bit / 8] ^= UInt8(1 << (bit % 8))
            if !refuses(m, "bit \(bit)") { missed.append(bit) }
        }
        let undetected = missed.count
        #expect(undetected == 0, "undetected bit flips, first at bits \(missed.prefix(10))")
    }

    @Test func everyTruncationAndAppendIsDetected() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.golden)))
        for n in 0..<original.count {
            #expect(refuses(Array(original.prefix(n)), "truncated to \(n)"), "truncation to \(n) bytes")
        }
        #expect(refuses(original + [0], "one byte appended"))
        #expect(refuses(original + original, "doubled"))
        var rng = SplitMix64(seed: 7)
        #expect(refuses((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }, "random bytes"))
    }

    /// A body of a few MiB is hashed on a second thread (`DigestPipeline`) while it is read;
    /// the verdicts stay the same.
    @Test func aLargeBodyIsCheckedAsWholly() throws {
        let (replica, app) = try goldenSchemaReplica()
        var rng = SplitMix64(seed: 11)
        try app.execute("BEGIN")
        for i in 0..<1500 {
            let blob = (0..<2048).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try app.run("INSERT INTO notes(id, title, attachment) VALUES (?, ?, ?)", [.text("n\(i)"), .text("t"), .blob(blob)])
        }
        try app.execute("COMMIT")
        for target in [ExportTarget.full, .automatic] {
            let path = temporaryPath("large.bsync")
            _ = try replica.export(to: path, target: target)
            let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let summary = try BundleSummary.read(path: path)
            #expect(summary.bodyBytes >= BundleReader.threadedHashing, "\(target): \(summary.bodyBytes) bytes")
            #expect(summary.rowCount == 1500)
            for offset in [original.count / 3, original.count / 2, original.count - 200, original.count - 100] {
                var m = original
                m[offset] ^= 0x10
                #expect(refuses(m, "byte \(offset) of \(target)"), "byte \(offset) of \(target)")
            }
            #expect(refuses(Array(original.prefix(original.count / 2)), "truncated \(target)"))
        }
    }
}
