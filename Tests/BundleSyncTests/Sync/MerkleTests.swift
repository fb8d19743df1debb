@testable import BundleSync
import Testing

@Suite struct MerkleTests {
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
