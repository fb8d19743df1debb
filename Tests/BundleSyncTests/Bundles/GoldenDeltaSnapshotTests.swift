@testable import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// The golden delta snapshot (`fixtures/make-golden-delta.sh`): `delta-base.bsync` holds
/// batch 1 of replica 'origin', `delta-snapshot.bsync` the rows its pruned batch 2 changed,
/// for a replica that holds batch 1 (`bundlesync-format(5)`, "Delta snapshots").
///
/// Set `BUNDLESYNC_RECORD=1` to re-record the expected JSON (never the bundles).
@Suite struct GoldenDeltaSnapshotTests {
    @Test(arguments: ["delta-base", "delta-snapshot"])
    func aGoldenDeltaBundleDecodesToItsExpectedJSON(_ name: String) throws {
        try expectGoldenDecoding(name)
    }

    @Test func theGoldenDeltaSnapshotRequiresItsCapabilityAndNamesItsBase() throws {
        let header = try BundleReader(path: fixture("bundles/delta-snapshot.bsync")).header
        #expect(header.requiredCapabilities.contains(BundleHeader.deltaSnapshotCapability))
        #expect(header.isDeltaSnapshot)
        #expect(header.baseVector.entries.count == 1 && header.baseVector[header.exporter] == 1)
        #expect(header.snapshotHeads?.map(\.seq) == [2])
    }

    @Test func theGoldenDeltaSnapshotAppliesOnTopOfItsBase() throws {
        let (replica, app) = try goldenSchemaReplica("delta.db")
        #expect(try replica.importBundle(fixture("bundles/delta-base.bsync")).status == .applied)
        let outcome = try replica.importBundle(fixture("bundles/delta-snapshot.bsync"))
        #expect(outcome.status == .applied, "\(outcome.error.map { "\($0)" } ?? "")")
        #expect(outcome.snapshotRows == 3)
        #expect(try app.rows("SELECT id, body FROM notes ORDER BY id") == [
            [.text("n-01"), .text("hello, edited in batch 2")], [.text("n-02"), .text("unchanged since batch 1")],
        ])
        #expect(try app.rows("SELECT station, taken, value FROM readings ORDER BY station, taken") == [
            [.text("north"), .integer(1_700_000_000), .real(12.5)], [.text("north"), .integer(1_700_000_600), .real(12.75)],
            [.text("ship"), .integer(1_700_000_000), .null],
        ])
        #expect(try replica.vector().entries.values.sorted() == [2])
    }

    @Test func theGoldenDeltaSnapshotIsRefusedWithoutItsBase() throws {
        let (replica, app) = try goldenSchemaReplica("nobase.db")
        let before = try replica.digest()
        let outcome = try #require(try replica.importBundles([fixture("bundles/delta-snapshot.bsync")]).first)
        #expect(outcome.status == .refused)
        #expect(outcome.baseNotHeld)
        #expect(outcome.error?.code == .badData)
        #expect(outcome.error?.hint?.contains("--full") == true)
        #expect(try replica.digest() == before)
        #expect(try app.rows("SELECT count(*) FROM notes") == [[.integer(0)]])
    }
}
