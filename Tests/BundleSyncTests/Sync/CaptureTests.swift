@testable import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Capture as the application meets it: triggers with no condition, held off only inside
/// bundlesync's own transactions, and logs of earlier releases carried over.
@Suite struct CaptureTests {
    static func triggers(_ db: Database) throws -> [[SQLValue]] {
        try db.rows("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name")
    }

    static func log(_ db: Database) throws -> [[SQLValue]] {
        try db.rows("SELECT k0, change FROM _bundlesync_log_1 ORDER BY rowid")
    }

    @Test func ownTransactionsHoldTheTriggersOffAndLeaveThemInPlaceEvenWhenTheyRollBack() throws {
        let (replica, app) = try goldenSchemaReplica("held.db")
        let installed = try Self.triggers(app)
        #expect(installed.count == 2 * 3 + 5 + 1, "insert, delete and key triggers per table, one per synced column")

        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try replica.withoutCapture {
                #expect(try Self.triggers(replica.db).isEmpty, "no capture trigger inside bundlesync's own transaction")
                try replica.db.run("INSERT INTO notes(id, title) VALUES ('own', 'not captured')")
                throw Refused()
            }
        }
        #expect(try Self.triggers(app) == installed, "the rollback put the triggers back")
        #expect(try app.rows("SELECT count(*) FROM notes") == [[.integer(0)]])

        try replica.withoutCapture { try replica.db.run("INSERT INTO notes(id, title) VALUES ('own', 'not captured')") }
        #expect(try Self.triggers(app) == installed, "the commit installed them again")
        #expect(try replica.pendingChanges().isEmpty)

        try app.run("UPDATE notes SET counter = 1, score = 2.5 WHERE id = 'own'")
        try app.run("UPDATE notes SET counter = 1.0, title = title WHERE id = 'own'")
        #expect(try Self.log(app) == [[.text("own"), .integer(4)], [.text("own"), .integer(2)]] || Self.log(app) == [[.text("own"), .integer(2)], [.text("own"), .integer(4)]],
                "one row per changed column; writes of the same value are not captured")
    }

    @Test func aCaptureLogOfAnEarlierReleaseIsRewrittenInOrderAndNothingIsSentAgain() throws {
        let path: String
        do {
            let (earlier, app) = try goldenSchemaReplica("earlier.db")
            path = earlier.db.path
            // The layout and triggers of the earlier release, and what they logged: an
            // insert, an UPDATE of title and counter (a mask of columns 0 and 4), a delete,
            // and an UPDATE of score in the older shared-bit mask.
            try app.execute("""
                DROP TRIGGER "_bundlesync_1_ins"; DROP TRIGGER "_bundlesync_1_del"; DROP TRIGGER "_bundlesync_1_key";
                DROP TRIGGER "_bundlesync_1_c0"; DROP TRIGGER "_bundlesync_1_c1"; DROP TRIGGER "_bundlesync_1_c2";
                DROP TRIGGER "_bundlesync_1_c3"; DROP TRIGGER "_bundlesync_1_c4";
                DROP TABLE _bundlesync_log_1;
                CREATE TABLE _bundlesync_log_1(seq INTEGER PRIMARY KEY, k0, op INTEGER NOT NULL, mask INTEGER NOT NULL, wall INTEGER NOT NULL);
                CREATE TRIGGER "_bundlesync_1_ins" AFTER INSERT ON notes BEGIN SELECT 1; END;
                CREATE TRIGGER "_bundlesync_1_upd" AFTER UPDATE ON notes BEGIN SELECT 1; END;
                CREATE TRIGGER "_bundlesync_1_updkey" AFTER UPDATE ON notes BEGIN SELECT 1; END;
                CREATE TRIGGER "_bundlesync_1_del" AFTER DELETE ON notes BEGIN SELECT 1; END;
                INSERT INTO notes(id, title, counter) VALUES ('a', 'one', 1);
                INSERT INTO _bundlesync_log_1(k0, op, mask, wall) VALUES
                  ('a', 1, -1, 1700000000000), ('a', 4, 17, 1700000000001), ('b', 3, 0, 1700000000002), ('a', 2, 4, 1700000000003);
                """)
        }
        let replica = try Replica.open(path: path)
        #expect(try replica.db.rows("SELECT k0, change, CAST(round((wall - 2440587.5) * 86400000.0) AS INTEGER) FROM _bundlesync_log_1 ORDER BY rowid") == [
            [.text("a"), .integer(-1), .integer(1_700_000_000_000)],
            [.text("a"), .integer(0), .integer(1_700_000_000_001)],
            [.text("a"), .integer(4), .integer(1_700_000_000_001)],
            [.text("b"), .integer(-2), .integer(1_700_000_000_002)],
            [.text("a"), .integer(2), .integer(1_700_000_000_003)],
        ])
        #expect(!replica.store.notices.contains { $0.contains("was off") }, "complete triggers of an earlier release are not a gap in capture")
        let (fresh, _) = try goldenSchemaReplica("fresh.db")
        #expect(try Self.triggers(replica.db).map { $0[1] } == Self.triggers(fresh.db).map { $0[1] })
        let sealed = try replica.withoutCapture { try replica.sealPending() }
        #expect(sealed.map(\.rows).reduce(0, +) == 1 && sealed.map(\.cells).reduce(0, +) == 5, "row a, inserted; b was never here")
    }
}
