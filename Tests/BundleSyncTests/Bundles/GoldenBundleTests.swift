@testable import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Golden bundles written by earlier releases must decode to the same content forever.
///
/// Set `BUNDLESYNC_RECORD=1` to re-record the expected JSON (never the bundles).
@Suite struct GoldenBundleTests {
    static let bundles = ["v1-full", "v1-delta", "v1-snapshot", "v1-merge-1", "v1-merge-2", "v1-merge-snapshot",
                          "fugue-merge-1", "fugue-merge-2", "fugue-merge-snapshot"]

    @Test(arguments: bundles)
    func goldenBundleDecodesToItsExpectedJSON(_ name: String) throws {
        try expectGoldenDecoding(name)
    }

    @Test func goldenBundlesImportIntoAFreshReplica() throws {
        let (replica, app) = try goldenSchemaReplica()
        // Delta first: it parks until the full bundle brings its predecessor.
        let delta = try replica.importBundle(fixture("bundles/v1-delta.bsync"))
        #expect(delta.status == .parked)
        let full = try replica.importBundle(fixture("bundles/v1-full.bsync"))
        #expect(full.status == .applied)
        #expect(full.released == 1)
        let notes = try app.rows("SELECT id, title, body, score, attachment, counter FROM notes ORDER BY id")
        #expect(notes == [
            [.text("n-01"), .text("plain"), .text("hello again"), .real(0.1), .null, .integer(1)],
            [.text("n-02"), .text("unicode ☃ 🚑 é"), .text("mixed 日本語 text"), .real(0.0), // SQLite itself stores the literal -0.0 as 0.0
             .blob([]), .integer(Int64.min)],
        ])
        let readings = try app.rows("SELECT station, taken, value FROM readings ORDER BY station, taken")
        #expect(readings == [
            [.text("north"), .integer(1_700_000_000), .real(12.5)],
            [.text("north"), .integer(1_700_000_600), .real(12.75)],
            [.text("ship"), .integer(1_700_001_200), .null],
        ])
        #expect(try replica.pendingChanges().isEmpty, "imported rows are not captured as local changes")
    }

    @Test func theGoldenSnapshotImportsIntoAFreshReplica() throws {
        let (replica, app) = try goldenSchemaReplica("snapshot.db")
        let outcome = try replica.importBundle(fixture("bundles/v1-snapshot.bsync"))
        #expect(outcome.status == .applied)
        #expect(outcome.snapshotRows == 7, "3 notes (one deleted) and 4 readings (one deleted)")
        #expect(try app.rows("SELECT id, body, counter FROM notes ORDER BY id") == [
            [.text("n-01"), .text("hello again"), .integer(1)],
            [.text("n-02"), .text("mixed 日本語 text"), .integer(Int64.min)],
        ])
        #expect(try app.rows("SELECT station, taken FROM readings ORDER BY station, taken").count == 3)
        #expect(try replica.vector().total == 2, "the snapshot's heads become this replica's history")
    }

    /// What the golden text and JSON bundles leave, whichever way they arrive.
    private static let mergedDocuments: [[SQLValue]] = [
        [.text("d-01"), .text("Patient stable, eating well. BP 120/80.\nReview in three weeks."),
         .text(#"{"alerts":true,"ui":{"font":{"size":12},"theme":"light"}}"#)],
        [.text("d-02"), .text("naïve café 👨‍👩‍👧‍👦 日本語 e\u{301}!"), .text(#"{"a":[1,{"b":2}],"z":1}"#)],
    ]

    @Test func goldenTextAndJSONBatchesImportInEitherOrder() throws {
        let (replica, app) = try goldenMergeReplica()
        #expect(try replica.importBundle(fixture("bundles/v1-merge-2.bsync")).status == .parked)
        let first = try replica.importBundle(fixture("bundles/v1-merge-1.bsync"))
        #expect(first.status == .applied)
        #expect(first.released == 1)
        #expect(try app.rows("SELECT id, body, settings FROM documents ORDER BY id") == Self.mergedDocuments)
        #expect(try replica.pendingChanges().isEmpty)
    }

    @Test func theGoldenTextAndJSONSnapshotImportsIntoAFreshReplica() throws {
        let (replica, app) = try goldenMergeReplica("merge-snapshot.db")
        #expect(try replica.importBundle(fixture("bundles/v1-merge-snapshot.bsync")).status == .applied)
        #expect(try app.rows("SELECT id, body, settings FROM documents ORDER BY id") == Self.mergedDocuments)
        // The snapshot carried the merge states: a later edit here still diffs against them.
        try app.execute("UPDATE documents SET body = 'Patient stable, eating well. BP 118/79.\nReview in three weeks.' WHERE id = 'd-01'")
        #expect(try replica.withoutCapture { try replica.sealPending() }.count == 1)
    }
}

/// The golden bundles with version 2 (Fugue) text states, written by the first release with
/// `text-fugue-v1` (`fixtures/make-golden-fugue.sh`).
@Suite struct GoldenFugueBundleTests {
    @Test func theGoldenFugueBatchesImportInEitherOrder() throws {
        let (replica, app) = try goldenMergeReplica("fugue.db")
        #expect(try replica.importBundle(fixture("bundles/fugue-merge-2.bsync")).status == .parked)
        let first = try replica.importBundle(fixture("bundles/fugue-merge-1.bsync"))
        #expect(first.status == .applied)
        #expect(first.released == 1)
        #expect(try app.rows("SELECT id, body, settings FROM documents ORDER BY id") == [
            [.text("d-01"), .text("Patient stable, eating well. BP 120/80.\nReview in three weeks."),
             .text(#"{"alerts":true,"ui":{"font":{"size":12},"theme":"light"}}"#)],
            [.text("d-02"), .text("naïve café 👨‍👩‍👧‍👦 日本語 e\u{301}!"), .text(#"{"a":[1,{"b":2}],"z":1}"#)],
        ])
        #expect(try replica.pendingChanges().isEmpty)
    }

    @Test func theGoldenFugueSnapshotImportsAndLaterEditsDiffAgainstIt() throws {
        let (replica, app) = try goldenMergeReplica("fugue-snapshot.db")
        #expect(try replica.importBundle(fixture("bundles/fugue-merge-snapshot.bsync")).status == .applied)
        #expect(try app.rows("SELECT body FROM documents WHERE id = 'd-01'") == [
            [.text("Patient stable, eating well today. BP 120/80.\nReview in three weeks.")],
        ])
        try app.execute("UPDATE documents SET body = 'Patient stable, eating well today. BP 118/79.\nReview in three weeks.' WHERE id = 'd-01'")
        #expect(try replica.withoutCapture { try replica.sealPending() }.count == 1)
    }

    @Test func theGoldenFugueBundlesRequireTheCapabilityAndHoldVersion2TextStates() throws {
        var states = 0, leftSide = 0, givenOrigins = 0
        for name in ["fugue-merge-1", "fugue-merge-2", "fugue-merge-snapshot"] {
            let reader = try BundleReader(path: fixture("bundles/\(name).bsync"))
            #expect(reader.header.requiredCapabilities.contains(BundleHeader.textFugueCapability), "\(name)")
            var payloads: [MergePayload] = []
            while let (_, _, batch) = try reader.nextBatch() {
                payloads += batch.tables.flatMap { $0.rows.flatMap { $0.cells.compactMap(\.merge) } }
            }
            while let chunk = try reader.nextSnapshotChunk() {
                payloads += chunk.tables.flatMap { $0.rows.flatMap { $0.cells.compactMap(\.merge) } }
            }
            for p in payloads where p.rule == .text {
                #expect(p.state.starts(with: TextSequence.version2Marker), "\(name)")
                let s = try TextSequence.decode(p.state)
                states += 1
                leftSide += s.runs.filter { $0.side == .left }.count
                givenOrigins += s.runs.filter { $0.side == .right && $0.rightOrigin != nil }.count
            }
        }
        #expect(states == 6)
        #expect(leftSide > 0, "the fixtures hold runs on the left side")
        #expect(givenOrigins > 0, "the fixtures hold a right origin other than the end of the text")
    }
}

/// A fresh replica with the golden text and JSON schema (`fixtures/schemas/golden-merge.sql`).
func goldenMergeReplica(_ name: String = "merge.db") throws -> (Replica, app: Database) {
    let path = temporaryPath(name)
    let app = try Database(path: path, create: true)
    try app.execute(try String(contentsOfFile: fixture("schemas/golden-merge.sql"), encoding: .utf8))
    let (replica, _) = try Replica.initialize(path: path, name: "reader")
    _ = try replica.track(table: "documents", rules: ["body": .text, "settings": .json])
    return (replica, app)
}
