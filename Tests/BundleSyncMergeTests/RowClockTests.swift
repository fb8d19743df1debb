import BundleSyncCore
import BundleSyncMerge
import Testing

@Suite struct RowClockTests {
    @Test func packedClocksRoundTripAndDropRedundantCells() throws {
        var c = RowClock(causalLength: 1, row: .init(hlc: HLC(milliseconds: 5), origin: 1), overrides: [:])
        c.setCell(0, .init(hlc: HLC(milliseconds: 5), origin: 1))
        #expect(c.packedOverrides() == nil, "a cell written with the row's clock costs nothing")
        c.setCell(3, .init(hlc: HLC(milliseconds: 9, counter: 2), origin: 7))
        let unpacked = try RowClock(causalLength: 1, row: c.row, packed: c.packedOverrides())
        #expect(unpacked.laterCells == c.laterCells)
    }

    @Test func cellsSetInAnyOrderKeepOneClockEachInOrdinalOrder() throws {
        let row = RowClock.Stamp(hlc: HLC(milliseconds: 5), origin: 1)
        var c = RowClock(causalLength: 1, row: row, overrides: [:])
        let later = (1...6).map { RowClock.Stamp(hlc: HLC(milliseconds: 10 + $0), origin: Int64($0)) }
        for ordinal in [4, 1, 6, 0, 2] { c.setCell(ordinal, later[ordinal % 6]) }
        #expect(c.laterCells.map(\.ordinal) == [0, 1, 2, 4, 6])
        c.setCell(2, later[5])
        c.setCell(4, row)
        #expect(c.laterCells.map(\.ordinal) == [0, 1, 2, 6])
        #expect(c.cell(2) == later[5])
        #expect(c.cell(3) == row, "a cell never written later has the row's clock")
        #expect(c.cell(4) == row)
        #expect(c.laterCells == [.init(ordinal: 0, stamp: later[0]), .init(ordinal: 1, stamp: later[1]),
                                 .init(ordinal: 2, stamp: later[5]), .init(ordinal: 6, stamp: later[0])])
        #expect(try RowClock(causalLength: 1, row: row, packed: c.packedOverrides()) == c)
    }

    @Test func aPackedOrdinalGivenTwiceKeepsItsLaterClock() throws {
        var w = ByteWriter()
        for (ordinal, ms) in [(3, 7), (1, 8), (3, 9)] as [(Int, Int64)] {
            w.varint(ordinal)
            w.varint(HLC(milliseconds: ms).rawValue)
            w.varint(UInt64(2))
        }
        let c = try RowClock(causalLength: 1, row: .init(hlc: HLC(milliseconds: 5), origin: 1), packed: w.bytes)
        #expect(c.laterCells.map(\.ordinal) == [1, 3])
        #expect(c.cell(3).hlc == HLC(milliseconds: 9))
        #expect(c.laterCells.map(\.stamp.hlc) == [HLC(milliseconds: 8), HLC(milliseconds: 9)])
    }
}
