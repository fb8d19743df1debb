import BundleSyncCore
import BundleSyncMerge
import BundleSyncTestSupport
import Testing

@Suite struct JSONDocumentTests {
    private static let ids = (0..<3).map { _ in newReplicaID() }

    private func parse(_ s: String) throws -> JSONValue { try #require(JSONValue.parse(Array(s.utf8))) }
    private func text(_ v: JSONValue?) -> String { v.map { String(decoding: $0.canonical, as: UTF8.self) } ?? "absent" }
    private func stamp(_ hlc: UInt64, _ r: Int) -> JSONDocument.Stamp { .init(hlc: hlc, replica: Self.ids[r]) }

    @Test func canonicalFormIsSortedMinimalAndKeepsNumbers() throws {
        let v = try parse(#" { "b" : 1.50, "a": [1E3, "x\/y\u00e9\n"], "b": 2, "é": null, "e": true } "#)
        #expect(text(v) == #"{"a":[1E3,"x/yé\n"],"b":2,"e":true,"é":null}"#)
        for bad in ["", "{", "[1,]", "01", "\"\\ud800\"", "{\"a\" 1}", "nul", "1 2", "\"\u{1}\""] {
            #expect(JSONValue.parse(Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    @Test func concurrentEditsToDifferentKeysAtAnyDepthAllSurvive() throws {
        var base = JSONDocument()
        let seed = try base.edit(to: parse(#"{"a":{"b":{"c":1,"d":2}},"x":0}"#), stamp: stamp(1, 0))
        var p = JSONDocument(), q = JSONDocument()
        p.merge(seed)
        q.merge(seed)
        let dp = try p.edit(to: parse(#"{"a":{"b":{"c":10,"d":2}},"x":0}"#), stamp: stamp(5, 1))
        let dq = try q.edit(to: parse(#"{"a":{"b":{"c":1,"d":2,"e":3}},"x":0,"y":[1]}"#), stamp: stamp(6, 2))
        p.merge(dq)
        q.merge(dp)
        #expect(p == q)
        #expect(text(p.document) == #"{"a":{"b":{"c":10,"d":2,"e":3}},"x":0,"y":[1]}"#)
    }

    @Test func aRemovalRacingASetIsDecidedByTheLaterWrite() throws {
        var base = JSONDocument()
        let seed = try base.edit(to: parse(#"{"k":1,"o":{"z":1}}"#), stamp: stamp(1, 0))
        var p = JSONDocument(), q = JSONDocument()
        p.merge(seed)
        q.merge(seed)
        let remove = try p.edit(to: parse(#"{"o":{"z":1}}"#), stamp: stamp(5, 1))
        let set = try q.edit(to: parse(#"{"k":2,"o":{"z":1}}"#), stamp: stamp(6, 2))
        p.merge(set)
        q.merge(remove)
        #expect(text(p.document) == #"{"k":2,"o":{"z":1}}"#)
        #expect(p == q)
        // A later removal wins the other way round, and a later set brings the key back.
        var r = p
        _ = try r.edit(to: parse(#"{"o":{"z":1}}"#), stamp: stamp(9, 0))
        _ = try r.edit(to: parse(#"{"k":3,"o":{"z":1}}"#), stamp: stamp(10, 0))
        #expect(text(r.document) == #"{"k":3,"o":{"z":1}}"#)
    }

    @Test func aValueWrittenOverAnObjectHidesOlderMembersForGood() throws {
        var p = JSONDocument()
        _ = try p.edit(to: parse(#"{"o":{"a":1,"b":2}}"#), stamp: stamp(1, 0))
        _ = try p.edit(to: parse(#"{"o":5}"#), stamp: stamp(2, 0))
        _ = try p.edit(to: parse(#"{"o":{"c":3}}"#), stamp: stamp(3, 0))
        #expect(text(p.document) == #"{"o":{"c":3}}"#)
        // A concurrent older write under the path stays hidden; a newer one shows.
        var q = JSONDocument()
        q.merge(p)
        var old = JSONDocument()
        old.merge(try JSONDocument.decode(p.encoded()))
        #expect(old == p)
        var late = JSONDocument()
        _ = try late.edit(to: parse(#"{"o":{"d":4}}"#), stamp: stamp(4, 1))
        q.merge(late)
        #expect(text(q.document) == #"{"o":{"c":3,"d":4}}"#)
    }

    @Test func statesMergeInAnyOrderAndSurviveTheirEncoding() throws {
        var rng = SplitMix64(seed: 99)
        let keys = ["a", "b", "c"]
        func randomDoc(_ depth: Int) -> String {
            if depth == 0 || rng.next() % 3 == 0 {
                return ["1", "\"s\"", "[1,2]", "null", "{}"][Int(rng.next() % 5)]
            }
            let members = keys.filter { _ in rng.next() % 2 == 0 }.map { "\"\($0)\":\(randomDoc(depth - 1))" }
            return "{" + members.joined(separator: ",") + "}"
        }
        for _ in 0..<200 {
            var states = [JSONDocument(), JSONDocument(), JSONDocument()]
            var deltas: [JSONDocument] = []
            for step in 0..<9 {
                let r = step % 3
                if let d = deltas.randomElement(using: &rng) { states[r].merge(d) }
                deltas.append(try states[r].edit(to: parse(randomDoc(3)), stamp: stamp(UInt64(step + 1) * 4, r)))
            }
            var forward = JSONDocument(), backward = JSONDocument()
            deltas.forEach { forward.merge($0) }
            deltas.reversed().forEach { backward.merge($0); backward.merge($0) }
            #expect(forward == backward)
            #expect(try JSONDocument.decode(forward.encoded()) == forward)
            #expect(forward.document == backward.document)
        }
    }

    /// A key removed, then a key under it removed concurrently by a later write: the key
    /// shows as an empty object, and only because of that later removal. Collecting the
    /// key's removal first must not let the later removal go too, which would hide the key.
    @Test func collectingNeverChangesWhatTheDocumentShows() throws {
        var a = JSONDocument(), b = JSONDocument()
        let first = try a.edit(to: parse(#"{"base":{"x":1,"y":2}}"#), stamp: stamp(1, 0))
        b.merge(first)
        let dropBase = try b.edit(to: parse(#"{}"#), stamp: stamp(2, 1))
        let dropX = try a.edit(to: parse(#"{"base":{"y":2}}"#), stamp: stamp(3, 0))
        a.merge(dropBase)
        b.merge(dropX)
        #expect(text(a.document) == #"{"base":{}}"#)
        #expect(a.document == b.document)
        for g: UInt64 in [3, 4, 5] {
            a.collect(below: g)
            #expect(text(a.document) == #"{"base":{}}"#, "after collecting below \(g)")
        }
        b.collect(below: 5)
        #expect(b.document == a.document)
    }
}
