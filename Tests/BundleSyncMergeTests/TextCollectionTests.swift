import BundleSyncCore
import BundleSyncMerge
import BundleSyncTestSupport
import Testing

/// Tombstone collection on in-memory states: replicas edit and exchange deltas in random
/// causal orders, and collect, at random moments, what every replica has seen deleted (the
/// stable time: below the least HLC of the deltas some replica has not received). They must
/// agree, with each other and with a state rebuilt from any of them.
@Suite struct TextCollectionTests {
    private static let ids = (0..<4).map { _ in newReplicaID() }

    private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    private func string(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    @Test func replicasThatCollectWhatEveryoneSawDeletedStillConverge() throws {
        var rng = SplitMix64(seed: 0xC011EC7)
        var collectedAny = false
        for round in 0..<40 {
            let n = 2 + round % 3
            var states = Array(repeating: TextSequence.empty, count: n)
            var seen = Array(repeating: Set<Int>(), count: n)
            var deltas: [(bytes: [UInt8], deps: Set<Int>, hlc: UInt64)] = []
            var hlc: UInt64 = 1
            let alphabet = Array("ab é\n")
            /// The stable time at replica `r`: 0 while some replica holds a delta `r` lacks (it
            /// may be concurrent with a deletion); else the least HLC of the deltas some replica
            /// lacks.
            func stable(at r: Int) -> UInt64 {
                guard seen[r].count == deltas.count else { return 0 }
                return deltas.indices.filter { i in !seen.allSatisfy { $0.contains(i) } }.map { deltas[$0].hlc }.min() ?? hlc + 1
            }
            for _ in 0..<(12 * n) {
                let r = Int(rng.next() % UInt64(n))
                for (i, d) in deltas.enumerated() where !seen[r].contains(i) && d.deps.isSubset(of: seen[r]) && rng.next() % 2 == 0 {
                    try states[r].merge(TextSequence.decode(d.bytes), stamp: d.hlc)
                    seen[r].insert(i)
                }
                if rng.next() % 2 == 0 {
                    let before = states[r].runs.count
                    states[r].collect(below: stable(at: r))
                    if states[r].runs.count < before { collectedAny = true }
                }
                var text = Array(string(states[r].text))
                let at = Int(rng.next() % UInt64(text.count + 1))
                switch rng.next() % 3 {
                case 0:
                    for k in 0..<Int(1 + rng.next() % 4) { text.insert(alphabet[Int(rng.next() % 5)], at: min(at + k, text.count)) }
                case 1:
                    for _ in 0..<Int(1 + rng.next() % 4) { text.insert(alphabet[Int(rng.next() % 5)], at: at) }
                default:
                    text.removeSubrange(at..<min(text.count, at + Int(rng.next() % 5)))
                }
                hlc += 1
                let d = try states[r].edit(to: bytes(String(text)), hlc: hlc, replica: Self.ids[r])
                #expect(string(states[r].text) == String(text))
                deltas.append((d.encoded(), seen[r], hlc))
                seen[r].insert(deltas.count - 1)
            }
            for r in 0..<n {
                var pending = deltas.indices.filter { !seen[r].contains($0) }.shuffled(using: &rng)
                while let i = pending.first(where: { deltas[$0].deps.isSubset(of: seen[r]) }) {
                    try states[r].merge(TextSequence.decode(deltas[i].bytes), stamp: deltas[i].hlc)
                    seen[r].insert(i)
                    pending.removeAll { $0 == i }
                }
            }
            for r in 1..<n { #expect(states[r].text == states[0].text, "round \(round)") }
            // Everyone has everything: collecting everything leaves no tombstone, and the text.
            for r in 0..<n {
                states[r].collect(below: hlc + 1)
                #expect(!states[r].runs.contains { $0.deleted }, "round \(round)")
                #expect(states[r].text == states[0].text, "round \(round)")
                var fresh = TextSequence.empty
                try fresh.merge(TextSequence.decode(states[r].encoded()))
                #expect(fresh.text == states[0].text, "round \(round): a collected state rebuilds the same text")
            }
        }
        #expect(collectedAny)
    }

    @Test func aRunWrittenBeforeItsWriterSawCollectedTextIsDroppedAndItsDeletionSent() throws {
        let (a, b) = (Self.ids[0], Self.ids[1])
        var x = TextSequence.empty
        _ = try x.edit(to: bytes("one two three"), hlc: 10, replica: a)
        var late = x
        // The late replica types into "two" before it sees it deleted.
        let lateDelta = try late.edit(to: bytes("one twXo three"), hlc: 12, replica: b)
        _ = try x.edit(to: bytes("one three"), hlc: 11, replica: a)
        x.collect(below: 100)
        #expect(x.collectedBelow == 11)
        let dropped = try x.merge(TextSequence.decode(lateDelta.encoded()), stamp: 12)
        #expect(dropped.map { string($0.bytes) } == ["X"])
        #expect(string(x.text) == "one three")
        // A later write naming the dropped text is dropped too; the next write sends the delete.
        #expect(x.unsentDeletions.count == 1)
        let next = try x.edit(to: bytes("one three!"), hlc: 20, replica: a)
        #expect(next.deletions.contains { $0.first.replica == b && $0.first.hlc == 12 })
    }

    @Test func aWholeStateCarriesTheDeletionOfTextItsSenderDropped() throws {
        let (a, b) = (Self.ids[0], Self.ids[1])
        var x = TextSequence.empty
        _ = try x.edit(to: bytes("one two three"), hlc: 10, replica: a)
        var late = x
        let lateDelta = try late.edit(to: bytes("one twXo three"), hlc: 12, replica: b)
        var fresh = TextSequence.empty // never sees the late write itself
        _ = try x.edit(to: bytes("one three"), hlc: 11, replica: a)
        var placed = x // has not collected "two", and places the late write
        try placed.merge(TextSequence.decode(lateDelta.encoded()), stamp: 12)
        #expect(string(placed.text).contains("X"))
        x.collect(below: 100)
        #expect(try x.merge(TextSequence.decode(lateDelta.encoded()), stamp: 12).count == 1)
        // x's whole state, as a snapshot sends it, names the dropped run.
        let sent = CellState.text(x).encoded()
        try placed.merge(TextSequence.decode(sent), stamp: 13)
        #expect(string(placed.text) == "one three")
        try fresh.merge(TextSequence.decode(sent), stamp: 13)
        #expect(string(fresh.text) == "one three")
        // The late text reaching `fresh` later, in a state that placed it, stays out there too.
        let other = CellState.text(late).encoded()
        try fresh.merge(TextSequence.decode(other), stamp: 14)
        #expect(!string(fresh.text).contains("X"))
        // The stored form keeps the dropped runs in its local part only.
        let stored = try CellState.decodeStored(.text, CellState.text(x).storedEncoding(), unknownDeletionsAt: 0)
        guard case .text(let back) = stored else { Issue.record("not text"); return }
        #expect(back.deletions.isEmpty && back.dropped == x.dropped)
    }
}
