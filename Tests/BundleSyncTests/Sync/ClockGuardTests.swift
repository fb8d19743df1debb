@testable import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Signed bundles with timestamps at the edge of what the format allows: past the edge they
/// are bad data everywhere, and nothing within it can stop a replica from exporting.
@Suite struct ClockGuardTests {
    /// A signed bundle of the fixture replica writing notes row `row` with cell timestamps `hlc`.
    static func bundle(hlc: HLC, row: String = "x-01", factory f: InvalidBundleFactory) throws -> String {
        let change = RowChange(key: [.text(row)], causalLength: 1, rowHLC: hlc,
                               cells: [CellChange(column: 0, hlc: hlc, value: .text("from far ahead")),
                                       CellChange(column: 1, hlc: hlc, value: .text("body"))])
        let batch = Batch(origin: f.a.id, seq: 1, previous: .zero, dependencies: VersionVector(),
                          tables: [TableChanges(table: "notes", keyColumns: ["id"], columns: InvalidBundleFactory.notesColumns, rows: [change])])
        let signed = try f.seal(batch)
        let path = temporaryPath("far-\(hlc.rawValue).bsync")
        try Data(try f.write(f.header([try f.entry(signed)]), [signed])).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The largest timestamp the first release accepted (about the year 6400): refused by
    /// `verify` and by `import`, which applies nothing of it.
    @Test func aTimestampBeyondTheLatestAllowedIsBadData() throws {
        let f = try InvalidBundleFactory()
        let path = try Self.bundle(hlc: HLC(rawValue: (UInt64(1) << 63) - (UInt64(1) << 32)), factory: f)
        #expect(throws: BundleSyncError.self) { try BundleSummary.read(path: path) }
        do {
            _ = try BundleSummary.read(path: path)
        } catch let e as BundleSyncError {
            #expect(e.code == .badData)
            #expect(e.message.contains("is out of range: later than 2248-09-26"), "\(e.message)")
        }
        let (replica, _) = try goldenSchemaReplica("far-beyond.db")
        let before = try replica.digest()
        let outcome = try replica.importBundles([path])[0]
        #expect(outcome.status == .refused)
        #expect(try replica.digest() == before)
        #expect(try replica.store.clock < HLC(milliseconds: HLC.nowMilliseconds() + 60_000))
    }

    /// A bundle stamped at the very latest time allowed imports with a warning; the
    /// replica's own later writes carry the real time, an overwrite of the far cell is
    /// stamped after it, and every bundle the replica writes afterwards verifies.
    @Test func theLatestAllowedTimestampCannotStopAReplicaFromExporting() throws {
        let f = try InvalidBundleFactory()
        let far = HLC(rawValue: HLC.maximum.rawValue - 5)
        let path = try Self.bundle(hlc: far, factory: f)
        _ = try BundleSummary.read(path: path)
        let (replica, app) = try goldenSchemaReplica("far-edge.db")
        let outcome = try replica.importBundles([path])[0]
        #expect(outcome.status == .applied, "\(String(describing: outcome.error))")
        #expect(outcome.warnings.contains { $0.contains("timestamped") && $0.contains("days ahead") }, "\(outcome.warnings)")

        try app.execute("INSERT INTO notes(id, title) VALUES ('local', 'written now')")
        let first = try replica.export(to: temporaryPath("after-far-1.bsync"), target: .full)
        _ = try BundleSummary.read(path: first.path)
        let now = HLC.nowMilliseconds()
        let stamps = try replica.db.rows("SELECT hlc FROM _bundlesync_clock_1")
        #expect(stamps.contains { ($0[0].integer).map { HLC(rawValue: UInt64($0)).milliseconds <= now + 1000 } ?? false },
                "the local write is stamped with the wall clock: \(stamps)")

        // Overwrites of the far cell, again and again: each stamped after the last, never
        // past the latest time allowed, and each export still verifies. Once no later stamp
        // is left, the overwrite is refused by name instead of being sent to lose.
        var refusal: String?
        for i in 0..<8 {
            try app.execute("UPDATE notes SET title = 'overwrite \(i)' WHERE id = 'x-01'")
            let r = try replica.export(to: temporaryPath("after-far-overwrite-\(i).bsync"), target: .full)
            _ = try BundleSummary.read(path: r.path)
            if let notice = replica.takeNotices().first { refusal = notice; #expect(i == 5, "\(i): \(notice)"); break }
        }
        #expect(refusal?.contains("column 'title' of a row of 'notes' is not synced") == true, "\(refusal ?? "no notice")")
        #expect(refusal?.contains("at 2248-09-26") == true, "names the time: \(refusal ?? "")")
        #expect(try replica.store.clock <= HLC.maximum)
    }
}
