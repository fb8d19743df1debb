import BundleSyncCore

/// A seeded generator for the lower layers' tests: the same sequence as the library's
/// `SplitMix64`, which lives in the sync layer, so that a seed keeps its cases in every layer.
package struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    package init(seed: UInt64) { state = seed }
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A random replica id, for tests below the format layer, which makes ids from keys
/// (`Identity().id`): any 16 bytes will do where the id only has to differ from the others.
package func newReplicaID() -> ReplicaID {
    var rng = SystemRandomNumberGenerator()
    return ReplicaID(bytes: (0..<ReplicaID.byteCount).map { _ in UInt8.random(in: 0...255, using: &rng) })!
}
