@testable import BundleSync
import BundleSyncMerge
import BundleSyncTestSupport
import Foundation
import Testing

/// The golden snapshot of collected states (`fixtures/make-golden-collected.sh`):
/// `collected-base.bsync` holds a document as first written, `collected-snapshot.bsync` the
/// same document after a sentence of its text and a key of its JSON were deleted and
/// collected by a group of two (`bundlesync-format(5)`, "Collecting tombstones").
///
/// Set `BUNDLESYNC_RECORD=1` to re-record the expected JSON (never the bundles).
@Suite struct GoldenCollectedSnapshotTests {
    @Test(arguments: ["collected-base", "collected-snapshot"])
    func aGoldenCollectedBundleDecodesToItsExpectedJSON(_ name: String) throws {
        try expectGoldenDecoding(name)
    }

    @Test func theGoldenCollectedSnapshotRequiresItsCapabilityAndItsStatesEndWithTheirCollectedBelowTimes() throws {
        let reader = try BundleReader(path: fixture("bundles/collected-snapshot.bsync"))
        #expect(reader.header.requiredCapabilities.contains(BundleHeader.textCollectedCapability))
        var payloads: [MergePayload] = []
        while let chunk = try reader.nextSnapshotChunk() {
            payloads += chunk.tables.flatMap { $0.rows.flatMap { $0.cells.compactMap(\.merge) } }
        }
        let text = try TextSequence.decode(try #require(payloads.first { $0.rule == .text }).state)
        #expect(text.collectedBelow > 0)
        #expect(text.runs.allSatisfy { !$0.deleted })
        let shown = String(decoding: text.text, as: UTF8.self)
        #expect(shown == "Patient stable.\nReview in two weeks.")
        let json = try JSONDocument.decode(try #require(payloads.first { $0.rule == .json }).state)
        #expect(json.collectedBelow > 0)
        #expect(!json.nodes.keys.contains([Array("old".utf8)]))
    }

    @Test func aFreshReplicaTakesTheCollectedSnapshotAsItIs() throws {
        let (replica, app) = try goldenMergeReplica("collected-fresh.db")
        #expect(try replica.importBundle(fixture("bundles/collected-snapshot.bsync")).status == .applied)
        #expect(try app.rows("SELECT body, settings FROM documents") == [
            [.text("Patient stable.\nReview in two weeks."), .text(#"{"ui":{"theme":"dark"}}"#)],
        ])
    }

    /// A replica the group's count left out: it holds the first state and a write of its own
    /// (so the snapshot does not cover it), and still shows what the group collected. The
    /// snapshot's collected-below times tell it that its sender saw that text deleted.
    @Test func aReplicaStillShowingCollectedTextDeletesItFromTheSnapshotAndSaysSo() throws {
        let (replica, app) = try goldenMergeReplica("collected-stale.db")
        #expect(try replica.importBundle(fixture("bundles/collected-base.bsync")).status == .applied)
        try app.execute("UPDATE documents SET body = 'Patient stable. BP 120/80.\nReview in two weeks. Call first.' WHERE id = 'd-01'")
        _ = try replica.withoutCapture { try replica.sealPending() }
        let outcome = try replica.importBundle(fixture("bundles/collected-snapshot.bsync"))
        #expect(outcome.status == .applied, "\(outcome.error.map { "\($0)" } ?? "")")
        #expect(try app.rows("SELECT body, settings FROM documents") == [
            [.text("Patient stable.\nReview in two weeks. Call first."), .text(#"{"ui":{"theme":"dark"}}"#)],
        ])
        let said = outcome.warnings.joined(separator: "\n")
        #expect(said.contains("still showed text") && said.contains(" BP 120/80.") && said.contains("config DB fleet"), "\(said)")
        #expect(said.contains("still showed a value") && said.contains("/old = 1"), "\(said)")
    }
}
