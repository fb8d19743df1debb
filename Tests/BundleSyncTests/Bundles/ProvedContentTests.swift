@testable import BundleSync
import BundleSyncFormat
import BundleSyncTestSupport
import Foundation
import Testing

/// An import keeps a small body in memory as it proves the bundle, and merges from there
/// (`ProvedContent`); a larger one is read from the file again. Both ways merge the same.
@Suite struct ProvedContentTests {
    /// A replica with rows in both tables, a full bundle of them, then a delta of later writes.
    func exportedHistory() throws -> (origin: Replica, full: String, delta: String) {
        let (origin, app) = try goldenSchemaReplica("origin.db")
        try app.execute("BEGIN")
        for i in 0..<300 {
            try app.run("INSERT INTO notes(id, title, body, score, counter) VALUES (?, ?, ?, ?, ?)",
                        [.text("n\(i)"), .text("title \(i)"), .text(String(repeating: "body \(i) ", count: i % 7)), .real(Double(i) / 4), .integer(Int64(i))])
            try app.run("INSERT INTO readings(station, taken, value) VALUES (?, ?, ?)", [.text("s\(i % 5)"), .integer(Int64(i)), .real(Double(i))])
        }
        try app.execute("COMMIT")
        let full = temporaryPath("full.bsync")
        _ = try origin.export(to: full, target: .full)
        let afterFull = try origin.vector()
        try app.execute("UPDATE notes SET title = title || ' (edited)', counter = counter + 1 WHERE counter % 3 = 0")
        try app.execute("DELETE FROM readings WHERE taken % 4 = 0")
        try app.execute("INSERT INTO notes(id, title) VALUES ('late', 'written after the full export')")
        let delta = temporaryPath("delta.bsync")
        let written = try origin.export(to: delta, target: .vector(afterFull))
        #expect(!written.snapshot && written.batches > 0)
        return (origin, full, delta)
    }

    @Test func keptAndReReadBodiesMergeTheSame() throws {
        let (origin, full, delta) = try exportedHistory()
        var digests: [Digest32] = []
        for limit in [ImportOptions().keptBodyLimit, 0] {
            let (replica, _) = try goldenSchemaReplica("copy.db")
            var options = ImportOptions()
            options.keptBodyLimit = limit
            let outcomes = try replica.importBundles([full, delta], options: options)
            #expect(outcomes.map(\.status) == [.applied, .applied], "limit \(limit): \(outcomes.map(\.error))")
            #expect(outcomes.first?.snapshotRows == 600)
            digests.append(try replica.digest())
        }
        #expect(digests == [try origin.digest(), try origin.digest()])
    }

    @Test func aReaderKeepsOnlyWhatFitsAndHandsItOutOnlyOnceProved() throws {
        let (_, _, delta) = try exportedHistory()
        let tooSmall = try BundleReader(path: delta)
        #expect(!tooSmall.keepContent(upTo: 10))

        // Batches read whole, not walked, are not kept: nothing partial is handed out.
        let decoding = try BundleReader(path: delta)
        #expect(decoding.keepContent(upTo: 1 << 20))
        while try decoding.nextBatch() != nil {}
        try decoding.finish()
        #expect(decoding.provedContent() == nil)

        let reader = try BundleReader(path: delta)
        #expect(reader.keepContent(upTo: 1 << 20))
        var outlines: [BundleHeader.BatchEntry] = []
        while let (entry, _) = try reader.nextBatchOutline() { outlines.append(entry) }
        #expect(reader.provedContent() == nil, "handed out before the file was proved")
        try reader.finish()
        let proved = try #require(reader.provedContent())
        #expect(proved.fileBytesRead == 0)

        let again = try BundleReader(path: delta)
        var count = 0
        while let (entry, signed, batch) = try proved.nextBatch() {
            let fresh = try #require(try again.nextBatch())
            #expect(entry.hash == fresh.entry.hash && signed.bytes == fresh.signed.bytes && signed.signature == fresh.signed.signature)
            #expect(batch.rowCount == fresh.batch.rowCount)
            count += 1
        }
        try again.finish()
        #expect(count == outlines.count && count > 0)
        #expect(proved.fileBytesRead > 0 && proved.fileBytesRead <= proved.fileSize)
        #expect(try proved.nextSnapshotChunk() == nil)
    }
}
