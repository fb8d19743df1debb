extension Replica {
    // MARK: - Clock rows

    /// A clock row read ahead of ``loadClock(_:key:)``: sealing reads each changed key's
    /// clock together with its current row, and the fold that follows asks for it again.
    struct ReadAhead {
        var table: Int64
        var key: [SQLValue]
        var clock: RowClock?
    }

    func loadClock(_ t: TrackedTable, key: [SQLValue]) throws -> RowClock? {
        if let r = readAhead, r.table == t.id, r.key == key {
            readAhead = nil
            return r.clock
        }
        let s = try sqlTexts.statement(.loadClock, t, in: db)
        try s.bind(key)
        guard try s.step() else { return nil }
        let clock = try Self.clock(from: s, at: 0)
        s.reset()
        return clock
    }

    /// The clock in columns `i` to `i + 3` of a row (cl, hlc, origin, cells), or nil if
    /// they are NULL (no clock row).
    static func clock(from s: Statement, at i: Int) throws -> RowClock? {
        guard s.type(i) != .null else { return nil }
        return RowClock(causalLength: UInt64(s.int(i)),
                        row: .init(hlc: HLC(rawValue: UInt64(bitPattern: s.int(i + 1))), origin: s.int(i + 2)),
                        overrides: try RowClock.unpackOverrides(s.bytes(i + 3)))
    }

    func storeClock(_ t: TrackedTable, key: [SQLValue], _ clock: RowClock) throws {
        let s = try sqlTexts.statement(.storeClock, t, in: db)
        try s.bind(key)
        let n = Int32(key.count)
        try s.bind(.integer(Int64(clock.causalLength)), at: n + 1)
        try s.bind(.integer(Int64(bitPattern: clock.row.hlc.rawValue)), at: n + 2)
        try s.bind(.integer(clock.row.origin), at: n + 3)
        try s.bind(clock.packedOverrides().map { .blob($0) } ?? .null, at: n + 4)
        try s.step()
    }
}
