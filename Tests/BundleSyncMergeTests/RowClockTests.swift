import BundleSyncCore
import BundleSyncMerge
import Testing

@Suite struct RowClockTests {
    @Test func packedClocksRoundTripAndDropRedundantCells() throws {
        var c = RowClock(causalLength: 1, row: .init(hlc: HLC(milliseconds: 5), origin: 1), overrides: [:])
        c.setCell(0, .init(hlc: HLC(milliseconds: 5), origin: 1))
        #expect(c.packedOverrides() == nil, "a cell written with the row's clock costs nothing")
        c.setCell(3, .init(hlc: HLC(milliseconds: 9, counter: 2), origin: 7))
        let unpacked = try RowClock.unpackOverrides(c.packedOverrides())
        #expect(unpacked == c.overrides)
    }
}
