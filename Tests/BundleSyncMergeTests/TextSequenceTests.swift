import BundleSyncCore
import BundleSyncMerge
import BundleSyncTestSupport
import Testing

/// The text merge rule on in-memory states: replicas edit, exchange deltas in random
/// causal orders, and must agree.
@Suite struct TextSequenceTests {
    private static let ids = (0..<4).map { _ in newReplicaID() }

    private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    private func string(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    @Test func editsReproduceTheWrittenTextExactly() throws {
        var s = TextSequence.empty
        var hlc: UInt64 = 1
        for text in ["", "hello", "hello world", "héllo wörld", "he\u{301}llo 👨‍👩‍👧 wörld", "漢字 hello", "", "x"] {
            _ = try s.edit(to: bytes(text), hlc: hlc, replica: Self.ids[0])
            hlc += 1
            #expect(s.text == bytes(text))
            #expect(try TextSequence.decode(s.encoded()) == s, "a state survives its encoding")
        }
    }

    @Test func canonicallyEquivalentTextsAreStillDifferentBytes() throws {
        var s = TextSequence.empty
        _ = try s.edit(to: bytes("caf\u{E9}"), hlc: 1, replica: Self.ids[0])
        let d = try s.edit(to: bytes("cafe\u{301}"), hlc: 2, replica: Self.ids[0])
        #expect(s.text == bytes("cafe\u{301}"))
        #expect(!d.isEmpty)
    }

    /// Two replicas start from `base`, write `a` and `b` concurrently (b later), and exchange
    /// their edits, each edit arriving twice. Returns both merged texts.
    private func concurrently(from base: String, _ a: String, _ b: String) throws -> (String, String) {
        var origin = TextSequence.empty
        let seed = try origin.edit(to: bytes(base), hlc: 1, replica: Self.ids[0])
        var x = TextSequence.empty, y = TextSequence.empty
        try x.merge(seed)
        try y.merge(seed)
        let dx = try x.edit(to: bytes(a), hlc: 5, replica: Self.ids[1])
        let dy = try y.edit(to: bytes(b), hlc: 6, replica: Self.ids[2])
        for _ in 0..<2 {
            try x.merge(dy)
            try y.merge(dx)
        }
        return (string(x.text), string(y.text))
    }

    @Test func sameSpotInsertionsStayWholeInTheSameOrderEverywhere() throws {
        let (a, b) = try concurrently(from: "The cat sat.", "The black cat sat.", "The fat cat sat.")
        #expect(a == b)
        #expect(a == "The fat black cat sat.", "the later write comes first, each word whole")
    }

    /// Replicas 1 and 2 start from `base` and each write the texts of `scripts` in turn,
    /// alternating in time (HLCs interleave), without seeing each other; then they exchange
    /// every delta. Returns both merged texts.
    private func alternating(from base: String, _ a: [String], _ b: [String]) throws -> (String, String) {
        var origin = TextSequence.empty
        let seed = try origin.edit(to: bytes(base), hlc: 1, replica: Self.ids[0])
        var x = TextSequence.empty, y = TextSequence.empty
        try x.merge(seed)
        try y.merge(seed)
        var dx: [TextSequence] = [], dy: [TextSequence] = []
        var hlc: UInt64 = 10
        for i in 0..<max(a.count, b.count) {
            if i < a.count { dx.append(try x.edit(to: bytes(a[i]), hlc: hlc, replica: Self.ids[1])); hlc += 1 }
            if i < b.count { dy.append(try y.edit(to: bytes(b[i]), hlc: hlc, replica: Self.ids[2])); hlc += 1 }
        }
        for d in dy { try x.merge(TextSequence.decode(d.encoded())) }
        for d in dx { try y.merge(TextSequence.decode(d.encoded())) }
        return (string(x.text), string(y.text))
    }

    /// The steps of typing `word` backwards between `before` and `after`.
    private func typedBackwards(_ word: String, between before: String, and after: String) -> [String] {
        let chars = Array(word)
        return (1...chars.count).map { n in before + String(chars[(chars.count - n)...]) + after }
    }

    @Test func wordsTypedBackwardsAtOneSpotOnTwoReplicasStayWhole() throws {
        let (a, b) = try alternating(from: "Hello  world",
                                     typedBackwards("alice", between: "Hello ", and: " world"),
                                     typedBackwards("bob", between: "Hello ", and: " world"))
        #expect(a == b)
        #expect(a == "Hello bobalice world" || a == "Hello alicebob world", "\(a)")
    }

    @Test func wordsTypedForwardsAtOneSpotOnTwoReplicasStayWhole() throws {
        func typed(_ word: String) -> [String] {
            let chars = Array(word)
            return (1...chars.count).map { "Hello " + String(chars[..<$0]) + " world" }
        }
        let (a, b) = try alternating(from: "Hello  world", typed("alice"), typed("bob"))
        #expect(a == b)
        #expect(a == "Hello bobalice world" || a == "Hello alicebob world", "\(a)")
    }

    @Test func aLineInsertedBeforeALineWhoseStartIsRetypedStaysBeforeIt() throws {
        let (a, b) = try alternating(from: "line1\nline2\n", ["line1\nnew line\nline2\n"], ["line1\nLINE2\n"])
        #expect(a == b)
        #expect(a == "line1\nnew line\nLINE2\n", "\(a.debugDescription)")
    }

    @Test func firstReleaseEncodingsStillDecodeAndMergeInTheirOrder() throws {
        // A version 1 state: "ac" by write 1, then "b" inserted after "a" by write 2.
        var w = ByteWriter(capacity: 64)
        w.varint(1)
        w.raw(Self.ids[0].bytes)
        w.varint(3) // runs
        for (h, off, len, parentKind, text) in [(UInt64(1), 0, 1, 0, "a"), (UInt64(2), 0, 1, 2, "b"), (UInt64(1), 1, 1, 2, "c")] {
            w.varint(0); w.varint(h); w.varint(off); w.varint(len)
            w.u8(UInt8(parentKind))
            if parentKind == 2 { w.varint(0); w.varint(UInt64(1)); w.varint(0) }
            w.u8(0)
            w.lengthPrefixed(Array(text.utf8))
        }
        w.varint(0)
        let old = try TextSequence.decode(w.bytes)
        #expect(string(old.text) == "abc")
        // Merged into an empty state, it comes out in the same order, and survives version 2.
        var fresh = TextSequence.empty
        try fresh.merge(old)
        #expect(string(fresh.text) == "abc")
        #expect(fresh.encoded().starts(with: TextSequence.version2Marker))
        #expect(try TextSequence.decode(fresh.encoded()) == fresh)
        // And later edits work on it.
        _ = try fresh.edit(to: bytes("abXc"), hlc: 3, replica: Self.ids[1])
        #expect(string(fresh.text) == "abXc")
    }

    @Test func aDeleteRemovesOnlyWhatItsWriterSaw() throws {
        let (a, b) = try concurrently(from: "One. Two three four. Five.", "One. Five.", "One. Two three and a half four. Five.")
        #expect(a == b)
        // The sentence's own characters are gone; the words inserted into it stay where it was.
        #expect(a == "One. and a half Five.")
    }

    @Test func bothDeletingTheSameSpanDeletesItOnce() throws {
        let (a, b) = try concurrently(from: "keep DROP keep", "keep keep", "keep keep")
        #expect(a == "keep keep")
        #expect(a == b)
    }

    @Test func aStateAndItsDeltasMergeInAnyCausalOrderToTheSameText() throws {
        var rng = SplitMix64(seed: 0x5EED_7E47)
        for round in 0..<100 {
            try convergenceRound(&rng, replicas: 2 + round % 3)
        }
    }

    @Test func randomEditsWithRepeatedCharactersConvergeInAnyCausalOrder() throws {
        var rng = SplitMix64(seed: 0xF06E)
        for round in 0..<60 {
            let n = 2 + round % 3
            var states = Array(repeating: TextSequence.empty, count: n)
            var seen = Array(repeating: Set<Int>(), count: n)
            var deltas: [(bytes: [UInt8], deps: Set<Int>)] = []
            var hlc: UInt64 = 1
            let alphabet = Array("ab é\n")
            for _ in 0..<(8 * n) {
                let r = Int(rng.next() % UInt64(n))
                for (i, d) in deltas.enumerated() where !seen[r].contains(i) && d.deps.isSubset(of: seen[r]) && rng.next() % 3 == 0 {
                    try states[r].merge(TextSequence.decode(d.bytes))
                    seen[r].insert(i)
                }
                var text = Array(string(states[r].text))
                // Typing at one place, forwards or backwards, or deleting a few characters.
                let at = Int(rng.next() % UInt64(text.count + 1))
                switch rng.next() % 3 {
                case 0:
                    for k in 0..<Int(1 + rng.next() % 4) { text.insert(alphabet[Int(rng.next() % 5)], at: min(at + k, text.count)) }
                case 1:
                    for _ in 0..<Int(1 + rng.next() % 4) { text.insert(alphabet[Int(rng.next() % 5)], at: at) }
                default:
                    text.removeSubrange(at..<min(text.count, at + Int(rng.next() % 4)))
                }
                hlc += 1
                let before = states[r]
                let d = try states[r].edit(to: bytes(String(text)), hlc: hlc, replica: Self.ids[r])
                #expect(string(states[r].text) == String(text))
                // The writer places its own runs directly; merging its delta must agree exactly.
                var merged = before
                try merged.merge(TextSequence.decode(d.encoded()))
                #expect(merged == states[r], "round \(round): the writer's state differs from its delta merged")
                #expect(try TextSequence.decode(states[r].encoded()) == states[r], "round \(round): a state survives its encoding")
                deltas.append((d.encoded(), seen[r]))
                seen[r].insert(deltas.count - 1)
            }
            for r in 0..<n {
                var pending = deltas.indices.filter { !seen[r].contains($0) }.shuffled(using: &rng)
                while let i = pending.first(where: { deltas[$0].deps.isSubset(of: seen[r]) }) {
                    try states[r].merge(TextSequence.decode(deltas[i].bytes))
                    seen[r].insert(i)
                    pending.removeAll { $0 == i }
                }
            }
            for r in 1..<n { #expect(states[r].text == states[0].text, "round \(round)") }
            var fresh = TextSequence.empty
            try fresh.merge(TextSequence.decode(states[1].encoded()))
            #expect(fresh.text == states[0].text, "round \(round): a whole state rebuilds the same text")
        }
    }

    /// The text as pieces: its characters. Tokens are characters used nowhere else (from
    /// CJK Extension B), so the diff can never match part of a new token with old text.
    private func pieces(_ text: String) -> [String] { text.map { String($0) } }
    private func isToken(_ piece: String) -> Bool { piece.unicodeScalars.first!.value >= 0x20000 }

    /// One round: each replica inserts unique tokens and deletes whole pieces it sees; deltas
    /// travel in a random order that respects what each writer had seen, some twice. Every
    /// replica ends with the same text, holding exactly the tokens nobody deleted, each once.
    private func convergenceRound(_ rng: inout SplitMix64, replicas n: Int) throws {
        struct Delta { var bytes: [UInt8]; var deps: Set<Int>; var clock: UInt64 }
        var states = Array(repeating: TextSequence.empty, count: n)
        var seen = Array(repeating: Set<Int>(), count: n)
        var clocks = Array(repeating: UInt64(0), count: n)
        var deltas: [Delta] = []
        var inserted: [String] = []
        var deleted = Set<String>()
        // Every token is one character used nowhere else: a CJK Extension B ideograph, bare or
        // with combining marks. With no two equal characters, the diff of an
        // edit is unambiguous, so a token survives exactly when nobody deleted it.
        let marks = ["", "\u{301}", "\u{301}\u{302}", "\u{20DD}"]

        func deliver(_ i: Int, to r: Int) throws {
            try states[r].merge(TextSequence.decode(deltas[i].bytes))
            seen[r].insert(i)
            // As the HLC does: a write after seeing another is later than it.
            clocks[r] = max(clocks[r], deltas[i].clock)
        }

        for _ in 0..<(6 * n) {
            let r = Int(rng.next() % UInt64(n))
            for (i, d) in deltas.enumerated() where !seen[r].contains(i) && d.deps.isSubset(of: seen[r]) && rng.next() % 2 == 0 {
                try deliver(i, to: r)
            }
            var p = pieces(string(states[r].text))
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                if !p.isEmpty && rng.next() % 3 == 0 {
                    let at = Int(rng.next() % UInt64(p.count))
                    let len = min(p.count - at, 1 + Int(rng.next() % 3))
                    p[at..<(at + len)].filter(isToken).forEach { deleted.insert($0) }
                    p.removeSubrange(at..<(at + len))
                } else {
                    let at = Int(rng.next() % UInt64(p.count + 1))
                    let mark = marks[Int(rng.next() % UInt64(marks.count))]
                    let token = String(Character(Unicode.Scalar(0x20000 + UInt32(inserted.count))!)) + mark
                    inserted.append(token)
                    p.insert(token, at: at)
                }
            }
            clocks[r] += 1
            let d = try states[r].edit(to: bytes(p.joined()), hlc: clocks[r] * 16 + UInt64(r), replica: Self.ids[r])
            deltas.append(Delta(bytes: d.encoded(), deps: seen[r], clock: clocks[r]))
            seen[r].insert(deltas.count - 1)
        }
        var pending = true
        while pending {
            pending = false
            for r in 0..<n {
                for i in deltas.indices.shuffled(using: &rng) where !seen[r].contains(i) {
                    pending = true
                    guard deltas[i].deps.isSubset(of: seen[r]) else { continue }
                    try deliver(i, to: r)
                    if rng.next() % 4 == 0 { try states[r].merge(TextSequence.decode(deltas[i].bytes)) }
                }
            }
        }
        for r in 1..<n { #expect(states[r].text == states[0].text) }
        let finalPieces = pieces(string(states[0].text))
        for t in inserted {
            #expect(finalPieces.filter { $0 == t }.count == (deleted.contains(t) ? 0 : 1), "token \(t)")
        }
        #expect(try TextSequence.decode(states[0].encoded()).text == states[0].text)
        // A whole state merged into an empty one, or into a replica that holds it all, gives
        // the same text: insertion in id order rebuilds the order deltas built.
        var fresh = TextSequence.empty
        try fresh.merge(TextSequence.decode(states[n - 1].encoded()))
        #expect(fresh.text == states[0].text)
        try states[0].merge(TextSequence.decode(states[n - 1].encoded()))
        #expect(fresh.text == states[0].text)
    }

    @Test func diffCutsOnlyAtClusterBoundaries() {
        let old = bytes("a👨‍👩‍👧b")
        let new = bytes("a👨‍👩‍👧‍👦b")
        for h in TextDiff.hunks(old, new) {
            #expect(String(validatingUTF8: Array(old[h.old]).map { CChar(bitPattern: $0) } + [0]) != nil)
            #expect(String(validatingUTF8: Array(new[h.new]).map { CChar(bitPattern: $0) } + [0]) != nil)
        }
        var s = TextSequence.empty
        #expect(throws: Never.self) { _ = try s.edit(to: old, hlc: 1, replica: Self.ids[0]) }
        #expect(throws: Never.self) { _ = try s.edit(to: new, hlc: 2, replica: Self.ids[0]) }
        #expect(s.text == new)
    }

    @Test func aLargeTextWithAOneWordEditMakesASmallDelta() throws {
        var words: [String] = []
        var rng = SplitMix64(seed: 42)
        var size = 0
        while size < 1_000_000 {
            words.append(String(repeating: "x", count: Int(rng.next() % 8) + 1) + (rng.next() % 12 == 0 ? "\n" : ""))
            size += words.last!.utf8.count + 1
        }
        let text = words.joined(separator: " ")
        var s = TextSequence.empty
        _ = try s.edit(to: bytes(text), hlc: 1, replica: Self.ids[0])
        var edited = bytes(text)
        edited.insert(contentsOf: bytes(" inserted"), at: edited.count / 2)
        let d = try s.edit(to: edited, hlc: 2, replica: Self.ids[0])
        #expect(d.encoded().count < 100)
        #expect(s.text == edited)

        // Ten edits scattered over one long line: each becomes its own small edit.
        var scattered = edited
        for k in stride(from: 9, through: 0, by: -1) {
            let at = scattered.count / 10 * k + 3
            if k % 2 == 0 { scattered.removeSubrange(at..<(at + 5)) } else { scattered.insert(contentsOf: bytes(" w\(k)"), at: at) }
        }
        let many = try s.edit(to: scattered, hlc: 3, replica: Self.ids[0])
        #expect(many.encoded().count < 1_000, "\(many.encoded().count) bytes")
        #expect(s.text == scattered)
    }
}

@Suite struct TextDiffTests {
    /// Longest common subsequence length, by dynamic programming.
    private func lcs(_ a: [Int], _ b: [Int]) -> Int {
        var row = [Int](repeating: 0, count: b.count + 1)
        for x in a {
            var prev = 0
            for j in 0..<b.count {
                let keep = row[j + 1]
                row[j + 1] = x == b[j] ? prev + 1 : max(row[j + 1], row[j])
                prev = keep
            }
        }
        return row[b.count]
    }

    /// Applies `hunks` to `a`.
    private func apply(_ hunks: [TextDiff.Hunk], _ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var at = 0
        for h in hunks {
            out += a[at..<h.old.lowerBound]
            out += b[h.new]
            at = h.old.upperBound
        }
        return out + a[at...]
    }

    @Test func hunksReproduceTheNewTextInOrderAtClusterBoundaries() {
        var rng = SplitMix64(seed: 11)
        let pieces = ["a", "b", " ", "\n", "é", "e\u{301}", "👍🏽", "漢", "ab ", "x\n"]
        for _ in 0..<3000 {
            let a = (0..<Int(rng.next() % 30)).map { _ in pieces[Int(rng.next() % 10)] }.joined()
            var b = Array(a)
            for _ in 0..<Int(rng.next() % 4) {
                let at = Int(rng.next() % UInt64(b.count + 1))
                if rng.next() % 2 == 0 || b.isEmpty { b.insert(contentsOf: pieces[Int(rng.next() % 10)], at: at) } else { b.remove(at: min(at, b.count - 1)) }
            }
            let ab = Array(a.utf8), bb = Array(String(b).utf8)
            let hunks = TextDiff.hunks(ab, bb)
            #expect(apply(hunks, ab, bb) == bb, "\(a.debugDescription) -> \(String(b).debugDescription)")
            for (h, next) in zip(hunks, hunks.dropFirst()) {
                #expect(h.old.upperBound < next.old.lowerBound || h.new.upperBound < next.new.lowerBound, "hunks touch: \(hunks)")
            }
            for h in hunks {
                #expect(String(validating: ab[h.old], as: UTF8.self) != nil && String(validating: bb[h.new], as: UTF8.self) != nil)
            }
        }
    }

    @Test func scatteredEditsOfAOneMegabyteLineYieldTheMinimalEdit() {
        var rng = SplitMix64(seed: 12)
        var words: [String] = []
        var size = 0
        while size < 1 << 20 {
            words.append(["lorem", "ipsum", "été", "漢字", "👍🏽"][Int(rng.next() % 5)] + String(rng.next() % 1_000_000))
            size += words.last!.utf8.count + 1
        }
        let old = words.joined(separator: " ")
        var inserted = 0, deleted = 0
        for k in 0..<1500 {
            let i = k * (words.count / 1500) + 1
            if k % 2 == 0 {
                let w = "new\(k)x"
                inserted += w.utf8.count + 1
                words.insert(w, at: i)
            } else {
                deleted += words[i].utf8.count + 1
                words.remove(at: i)
            }
        }
        let new = words.joined(separator: " ")
        let hunks = TextDiff.hunks(Array(old.utf8), Array(new.utf8))
        #expect(apply(hunks, Array(old.utf8), Array(new.utf8)) == Array(new.utf8))
        let hunkInserted = hunks.reduce(0) { $0 + $1.new.count }, hunkDeleted = hunks.reduce(0) { $0 + $1.old.count }
        #expect(hunkInserted <= inserted, "\(hunkInserted) bytes inserted for \(inserted) new")
        #expect(hunkDeleted <= deleted, "\(hunkDeleted) bytes deleted for \(deleted) removed")
        #expect(hunks.count >= 1500, "each edit its own hunk: \(hunks.count)")
    }

    @Test func aLargeBlockEditKeepsTheUnchangedTextAroundAndInsideIt() {
        // Two blocks replaced, one of them keeping some of its lines, plus small edits.
        let lines = (0..<4000).map { "line \($0) of the text, with words\n" }
        var edited = lines
        edited.replaceSubrange(1000..<1100, with: (0..<150).map { "a new line \($0)\n" })
        edited.replaceSubrange(2000..<2060, with: Array(lines[2000..<2010]) + (0..<80).map { "other \($0)\n" } + Array(lines[2050..<2060]))
        edited[3000] = "line 3000 of the TEXT, with words\n"
        let a = Array(lines.joined().utf8), b = Array(edited.joined().utf8)
        let hunks = TextDiff.hunks(a, b)
        #expect(apply(hunks, a, b) == b)
        let minimalInsert = (0..<150).map { "a new line \($0)\n" }.joined().utf8.count + (0..<80).map { "other \($0)\n" }.joined().utf8.count + 4
        let inserted = hunks.reduce(0) { $0 + $1.new.count }
        #expect(inserted <= minimalInsert, "\(inserted) bytes inserted, minimal \(minimalInsert)")
    }

    @Test func myersFindsAShortestEditScript() throws {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let a = (0..<Int(rng.next() % 12)).map { _ in Int(rng.next() % 4) }
            let b = (0..<Int(rng.next() % 12)).map { _ in Int(rng.next() % 4) }
            let script = try #require(TextDiff.myers(a, b))
            var out: [Int] = []
            var at = 0
            var edits = 0
            for h in script {
                out += a[at..<h.old.lowerBound]
                out += b[h.new]
                at = h.old.upperBound
                edits += h.old.count + h.new.count
            }
            out += a[at...]
            #expect(out == b, "\(a) -> \(b)")
            #expect(edits == a.count + b.count - 2 * lcs(a, b), "\(a) -> \(b): \(script)")
        }
    }
}
