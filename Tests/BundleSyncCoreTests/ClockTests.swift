import BundleSyncCore
import BundleSyncTestSupport
import Testing

@Suite struct ClockTests {
    @Test func hlcFollowsWallTimeAndNeverGoesBack() {
        let h = HLC(milliseconds: 1000)
        #expect(h.next(wall: 2000) == HLC(milliseconds: 2000))
        #expect(h.next(wall: 500) == HLC(milliseconds: 1000, counter: 1), "a clock behind still moves forward")
        #expect(h.next(wall: 1000) > h)
    }

    @Test func vectorsMergeMeetAndDominate() {
        let a = newReplicaID(), b = newReplicaID()
        let x = VersionVector([a: 3, b: 1])
        let y = VersionVector([a: 1, b: 4])
        #expect(x.merged(with: y) == VersionVector([a: 3, b: 4]))
        #expect(x.meet(y) == VersionVector([a: 1, b: 1]))
        #expect(x.merged(with: y).dominates(x))
        #expect(!x.dominates(y))
    }
}
