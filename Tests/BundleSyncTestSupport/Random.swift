import BundleSyncCore

/// A random replica id, for tests below the format layer, which makes ids from keys
/// (`Identity().id`): any 16 bytes will do where the id only has to differ from the others.
package func newReplicaID() -> ReplicaID {
    var rng = SystemRandomNumberGenerator()
    return ReplicaID(bytes: (0..<ReplicaID.byteCount).map { _ in UInt8.random(in: 0...255, using: &rng) })!
}
