import BundleSyncCore
import BundleSyncMerge

/// The clock rows of tracked tables (`_bundlesync_clock_N`): one per user row, deleted rows
/// included, with the row's causal length and the clocks of its cells (see ``RowClock``).
package final class ClockStore {
    private let db: Database
    private let texts: SQLTexts

    init(db: Database, texts: SQLTexts) {
        self.db = db
        self.texts = texts
    }

    /// The clock of the row with `key`, or nil when the row was never seen here.
    package func load(_ t: TrackedTable, key: [SQLValue]) throws -> RowClock? {
        let s = try texts.statement(.loadClock, t, in: db)
        try s.bind(key)
        guard try s.step() else { return nil }
        let clock = try Self.clock(from: s, at: 0)
        s.reset()
        return clock
    }

    /// The clock in columns `i` to `i + 3` of a row (cl, hlc, origin, cells), or nil if
    /// they are NULL (no clock row).
    package static func clock(from s: Statement, at i: Int) throws -> RowClock? {
        guard s.type(i) != .null else { return nil }
        return try RowClock(causalLength: UInt64(s.int(i)),
                            row: .init(hlc: HLC(rawValue: UInt64(bitPattern: s.int(i + 1))), origin: s.int(i + 2)),
                            packed: s.bytes(i + 3))
    }

    /// Writes the clock of the row with `key`: an update of its clock row when `replacing`
    /// (the caller read one), else a new clock row. Which of the two is known from the
    /// read before, so the write is one plain statement, with no conflict to resolve.
    package func store(_ t: TrackedTable, key: [SQLValue], _ clock: RowClock, replacing: Bool) throws {
        let s = try texts.statement(replacing ? .updateClock : .insertClock, t, in: db)
        try bind(s, key: key, clock)
        try s.step()
        // A clock row read in this transaction is still there; were it not, the clock is
        // written all the same rather than lost.
        if replacing && db.changes == 0 { try store(t, key: key, clock, replacing: false) }
    }

    /// Writes the clock of a row that has none here; returns false, writing nothing, when
    /// the key has a clock row.
    package func insertIfAbsent(_ t: TrackedTable, key: [SQLValue], _ clock: RowClock) throws -> Bool {
        let s = try texts.statement(.insertClockIfAbsent, t, in: db)
        try bind(s, key: key, clock)
        try s.step()
        return db.changes == 1
    }

    private func bind(_ s: Statement, key: [SQLValue], _ clock: RowClock) throws {
        try s.bind(key)
        let n = Int32(key.count)
        try s.bind(.integer(Int64(clock.causalLength)), at: n + 1)
        try s.bind(.integer(Int64(bitPattern: clock.row.hlc.rawValue)), at: n + 2)
        try s.bind(.integer(clock.row.origin), at: n + 3)
        try s.bind(clock.packedOverrides().map { .blob($0) } ?? .null, at: n + 4)
    }

    /// Marks the cells of newly synced columns of every present row as unwritten, so that the
    /// row's own clock, older than the column, does not stand for a write of them.
    ///
    /// Packed overrides are in ordinal order, and new columns have the largest ordinals, so
    /// their entries are appended to each row's packed overrides in one statement.
    package func markUnwritten(_ t: TrackedTable, ordinals: [Int], origin: Int64) throws {
        guard !ordinals.isEmpty else { return }
        var w = ByteWriter()
        for ordinal in ordinals.sorted() {
            w.varint(ordinal)
            w.varint(HLC.zero.rawValue)
            w.varint(UInt64(origin))
        }
        try db.run("UPDATE \(Database.quote(t.clockTable)) SET cells = coalesce(cells, x'') || ? WHERE cl % 2 = 1", [.blob(w.bytes)])
    }
}
