@testable import BundleSync
import Testing

@Suite struct ClockTests {
    @Test func hlcFollowsWallTimeAndNeverGoesBack() {
        let h = HLC(milliseconds: 1000)
        #expect(h.next(wall: 2000) == HLC(milliseconds: 2000))
        #expect(h.next(wall: 500) == HLC(milliseconds: 1000, counter: 1), "a clock behind still moves forward")
        #expect(h.next(wall: 1000) > h)
    }

    @Test func vectorsMergeMeetAndDominate() {
        let a = Identity().id, b = Identity().id
        let x = VersionVector([a: 3, b: 1])
        let y = VersionVector([a: 1, b: 4])
        #expect(x.merged(with: y) == VersionVector([a: 3, b: 4]))
        #expect(x.meet(y) == VersionVector([a: 1, b: 1]))
        #expect(x.merged(with: y).dominates(x))
        #expect(!x.dominates(y))
    }

    @Test func packedClocksRoundTripAndDropRedundantCells() throws {
        var c = RowClock(causalLength: 1, row: .init(hlc: HLC(milliseconds: 5), origin: 1), overrides: [:])
        c.setCell(0, .init(hlc: HLC(milliseconds: 5), origin: 1))
        #expect(c.packedOverrides() == nil, "a cell written with the row's clock costs nothing")
        c.setCell(3, .init(hlc: HLC(milliseconds: 9, counter: 2), origin: 7))
        let unpacked = try RowClock.unpackOverrides(c.packedOverrides())
        #expect(unpacked == c.overrides)
    }

    @Test func merkleRootsDependOnEveryLeafAndTheirOrder() {
        func root(_ leaves: [[UInt8]]) -> Digest32 {
            var m = MerkleAccumulator()
            leaves.forEach { m.add(Digest32.of($0)) }
            return m.root
        }
        let leaves = (0..<7).map { [UInt8($0)] }
        #expect(root(leaves) == root(leaves))
        #expect(root(leaves) != root(Array(leaves.reversed())))
        #expect(root(leaves) != root(Array(leaves.dropLast())))
        #expect(root([]) == .zero)
    }
}
