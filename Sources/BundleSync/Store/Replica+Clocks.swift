extension Replica {
    // MARK: - Clock rows

    func loadClock(_ t: TrackedTable, key: [SQLValue]) throws -> RowClock? {
        let s = try db.statement(sqlTexts.text(.loadClock, t))
        try s.bind(key)
        guard try s.step() else { return nil }
        let clock = RowClock(causalLength: UInt64(s.int(0)),
                             row: .init(hlc: HLC(rawValue: UInt64(bitPattern: s.int(1))), origin: s.int(2)),
                             overrides: try RowClock.unpackOverrides(s.bytes(3)))
        s.reset()
        return clock
    }

    func storeClock(_ t: TrackedTable, key: [SQLValue], _ clock: RowClock) throws {
        let s = try db.statement(sqlTexts.text(.storeClock, t))
        let cells: SQLValue = clock.packedOverrides().map { .blob($0) } ?? .null
        try s.bind(key + [.integer(Int64(clock.causalLength)), .integer(Int64(bitPattern: clock.row.hlc.rawValue)), .integer(clock.row.origin), cells])
        try s.step()
    }
}
