import BundleSyncCore
import BundleSyncMerge
import BundleSyncTestSupport
import Foundation
import Testing

@Suite struct GCMeasureTests {
    @Test func sealCost() throws {
        let ids = [newReplicaID(), newReplicaID()]
        let voc = "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike november oscar papa".split(separator: " ").map(String.init)
        for collecting in [false, true] {
            var rng = SplitMix64(seed: 7)
            var stored: [[UInt8]] = Array(repeating: CellState.text(.empty).storedEncoding(), count: 2)
            var words = (0..<600).map { _ in voc[Int(rng.next() % 16)] }
            var hlc: UInt64 = 1 << 20
            var lastDelta: [UInt8]? = nil
            var lastHLC: UInt64 = 0
            var report: [String] = []
            for e in 1...10_000 {
                let r = e % 2
                // Deliver the other's last edit first (they alternate, each seal after one edit).
                var state = try CellState.decodeStored(.text, stored[r], unknownDeletionsAt: 0)
                if let d = lastDelta { try state.merge(d, stamp: lastHLC); if collecting { state.collect(below: lastHLC) } }
                let at = Int(rng.next() % UInt64(words.count))
                switch rng.next() % 3 {
                case 0: words[at] = voc[Int(rng.next() % 16)]
                case 1: words.insert(voc[Int(rng.next() % 16)], at: at)
                default: if words.count > 20 { words.remove(at: at) }
                }
                hlc += 1
                // One seal: decode the stored state, edit, collect, encode, store.
                stored[r] = state.storedEncoding()
                let t0 = DispatchTime.now().uptimeNanoseconds
                var s = try CellState.decodeStored(.text, stored[r], unknownDeletionsAt: 0)
                guard case .text(var seq) = s else { return }
                let delta = try seq.edit(to: Array(words.joined(separator: " ").utf8), hlc: hlc, replica: ids[r])
                s = .text(seq)
                if collecting { s.collect(below: hlc - 1) }
                let sent = delta.encoded()
                stored[r] = s.storedEncoding()
                let t1 = DispatchTime.now().uptimeNanoseconds
                lastDelta = sent
                lastHLC = hlc
                if [1, 2, 100, 1000, 10_000].contains(e) || e == 9_999 {
                    report.append("edit \(e): seal \(Double(t1 - t0) / 1e6) ms, stored \(stored[r].count) B")
                }
            }
            print("GCMEASURE collecting=\(collecting)\n" + report.joined(separator: "\n"))
        }
    }
}
