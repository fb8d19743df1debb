@testable import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Which sealed batches a replica keeps in history, and that exports stay complete either way.
@Suite struct HistoryRetentionTests {
    static func heldBatches(_ r: Replica) throws -> Int {
        guard case .integer(let n)? = try r.db.scalar("SELECT count(*) FROM _bundlesync_batches") else { return -1 }
        return Int(n)
    }

    static func replicaWithRows(_ name: String, rows: Int = 40) throws -> (Replica, app: Database) {
        let (r, app) = try goldenSchemaReplica(name)
        try app.execute("BEGIN")
        for i in 0..<rows {
            try app.run("INSERT INTO notes(id, title, counter) VALUES (?, ?, ?)", [.text("\(name)-\(i)"), .text("t\(i)"), .integer(Int64(i))])
        }
        try app.execute("COMMIT")
        return (r, app)
    }

    @Test func aFirstFullExportWithoutPeersKeepsNoHistoryAndLosesNothing() throws {
        let (a, app) = try Self.replicaWithRows("a")
        let full = try a.export(to: temporaryPath("full.bsync"), target: .full)
        #expect(full.snapshot)
        #expect(try Self.heldBatches(a) == 0, "the seeding snapshot's batches are not kept")
        let afterFull = try a.vector()
        #expect(afterFull[a.id] == UInt64(full.sealed.count) && afterFull[a.id] > 0, "they still number the history")

        let (b, _) = try goldenSchemaReplica("b.db")
        #expect(try b.importBundle(full.path).status == .applied)
        #expect(try a.digest() == b.digest())

        // Later changes reach a holder of the snapshot as batches, kept as usual.
        try app.execute("UPDATE notes SET counter = counter + 100 WHERE id = 'a-3'; DELETE FROM notes WHERE id = 'a-4'")
        let delta = try a.export(to: temporaryPath("delta.bsync"), target: .vector(afterFull))
        #expect(!delta.snapshot && delta.batches == 1 && delta.rows == 2)
        #expect(try Self.heldBatches(a) == 1)
        #expect(try b.importBundle(delta.path).status == .applied)
        #expect(try a.digest() == b.digest())

        // A replica holding none of it gets everything as a snapshot.
        let everything = try a.export(to: temporaryPath("everything.bsync"), target: .automatic)
        #expect(everything.snapshot)
        let (c, _) = try goldenSchemaReplica("c.db")
        #expect(try c.importBundle(everything.path).status == .applied)
        #expect(try a.digest() == c.digest())
        #expect(try c.vector() == a.vector())
    }

    @Test func aFirstFullExportSealsClocksAloneAndItsSnapshotCarriesEveryRowAndTombstone() throws {
        // A table keyed by text, one stored in key order (WITHOUT ROWID) and one keyed by its
        // rowid; rows changed and deleted before the first export.
        let (a, app) = try Self.replicaWithRows("a", rows: 50)
        try app.execute("CREATE TABLE tags(n INTEGER PRIMARY KEY, label TEXT)")
        _ = try a.track(table: "tags")
        try app.execute("BEGIN")
        for i in 0..<30 {
            try app.run("INSERT INTO readings(station, taken, value) VALUES (?, ?, ?)", [.text("s\(i % 4)"), .integer(Int64(i)), .real(Double(i) / 2)])
            try app.run("INSERT INTO tags(n, label) VALUES (?, ?)", [.integer(Int64(100 - i)), .text("tag \(i)")])
        }
        try app.execute("COMMIT")
        try app.execute("""
            UPDATE notes SET title = 'changed', body = 'new' WHERE id = 'a-7';
            DELETE FROM notes WHERE id IN ('a-3', 'a-11'); DELETE FROM readings WHERE taken = 5; DELETE FROM tags WHERE n = 90
            """)

        let full = try a.export(to: temporaryPath("first.bsync"), target: .full)
        #expect(full.snapshot && full.rows == 50 + 30 + 30, "every row, and the rows deleted before it as tombstones")
        #expect(full.sealed.count == 1 && full.sealed[0].rows == 0, "one batch of no rows numbers the changes")
        #expect(try a.vector()[a.id] == 1 && Self.heldBatches(a) == 0)

        let (b, _) = try goldenSchemaReplica("b.db")
        try b.db.execute("CREATE TABLE tags(n INTEGER PRIMARY KEY, label TEXT)")
        _ = try b.track(table: "tags")
        #expect(try b.importBundle(full.path).status == .applied)
        #expect(try a.digest() == b.digest())
        #expect(try b.db.scalar("SELECT count(*) FROM notes")?.integer == 48)
        #expect(try b.db.scalar("SELECT title || body FROM notes WHERE id = 'a-7'")?.string == "changednew")
        #expect(try b.db.scalar("SELECT count(*) FROM tags")?.integer == 29)

        // The next changes travel as batches that chain onto the snapshot's head.
        try app.execute("INSERT INTO notes(id, title) VALUES ('a-3', 'back'); UPDATE tags SET label = 'x' WHERE n = 100")
        let delta = try a.export(to: temporaryPath("next.bsync"), target: .vector(try b.vector()))
        #expect(!delta.snapshot && delta.batches == 1 && delta.rows == 2)
        #expect(try b.importBundle(delta.path).status == .applied)
        #expect(try a.digest() == b.digest())
    }

    @Test func otherExportsKeepEveryBatch() throws {
        // A first export of batches, then a full one: a holder of the first may need the rest.
        let (a, app) = try Self.replicaWithRows("a")
        _ = try a.export(to: temporaryPath("first.bsync"), target: .automatic)
        try app.execute("UPDATE notes SET counter = -1 WHERE id = 'a-1'")
        _ = try a.export(to: temporaryPath("full.bsync"), target: .full)
        #expect(try Self.heldBatches(a) == Int(try a.vector()[a.id]))

        // A full export by a replica that knows a peer: the peer lacks these batches.
        let (p, _) = try Self.replicaWithRows("p", rows: 3)
        let fromP = try p.export(to: temporaryPath("p.bsync"), target: .automatic)
        let (q, _) = try Self.replicaWithRows("q")
        #expect(try q.importBundle(fromP.path).status == .applied)
        _ = try q.export(to: temporaryPath("q-full.bsync"), target: .full)
        #expect(try Self.heldBatches(q) == Int(try q.vector()[q.id]) + Int(try q.vector()[p.id]))
    }
}
