import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

// Named intent cases of the text and JSON merge rules (design notes "Text and JSON merge
// rules"), run through the built binary: the application writes whole strings with plain SQL,
// bundlesync diffs them when it seals, and the replicas merge edits rather than whole values.
//
// Expected texts are compared byte for byte (SQLValue compares TEXT as bytes; Swift's String
// `==` would treat "é" and "e\u{301}" as equal, which is exactly what must not be hidden).

/// Every note has a plain column, a text column and a JSON column.
private let notesSchema = "CREATE TABLE notes(id TEXT PRIMARY KEY, title TEXT, body TEXT, settings TEXT);"

/// A replica of `notes`, with `body` merged as text and `settings` as JSON unless `rules` is false.
private func notesReplica(_ name: String, in tmp: TempDir, rules: Bool = true) throws -> TestReplica {
    let r = TestReplica(name: name, db: tmp.file("\(name).db"))
    try App.execute(r.db, notesSchema)
    try CLI.ok(["init", r.db, "--name", name])
    try CLI.ok(["track", r.db, "notes"] + (rules ? ["--text", "body", "--json", "settings"] : []))
    return r
}

/// Everyone exports everything; everyone imports everyone else's bundle.
private func syncAll(_ replicas: [TestReplica], via stick: String) throws {
    var bundles: [String] = []
    for r in replicas { bundles.append(try r.export(["--full"], to: stick)) }
    for (i, r) in replicas.enumerated() {
        let others = bundles.enumerated().filter { $0.offset != i }.map(\.element)
        try r.importing(others)
    }
}

/// Long enough that two application writes get different wall-clock stamps, in order.
private func tick() { Thread.sleep(forTimeInterval: 0.02) }

/// A value as a readable, escaped string for messages.
private func shown(_ v: SQLValue) -> String {
    switch v {
    case .text(let b): return "TEXT " + String(decoding: b, as: UTF8.self).debugDescription + " (\(b.count) bytes)"
    case .blob(let b): return "BLOB(\(b.count) bytes)"
    default: return v.display
    }
}

private extension TestReplica {
    /// The application writes one cell with plain SQL (bound, so every byte arrives as is).
    func writeCell(_ column: String, of id: String, _ value: SQLValue) throws {
        let conn = try Database(path: db)
        try conn.run("UPDATE notes SET \(Database.quote(column)) = ? WHERE id = ?", [value, .text(id)])
    }

    func writeText(_ column: String, of id: String, _ text: String) throws {
        try writeCell(column, of: id, .text(text))
    }

    func insertNote(_ id: String, title: String? = nil, body: String? = nil, settings: String? = nil) throws {
        let conn = try Database(path: db)
        func v(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
        try conn.run("INSERT INTO notes(id, title, body, settings) VALUES (?, ?, ?, ?)", [.text(id), v(title), v(body), v(settings)])
    }

    /// The cell's value, exactly; nil when the row does not exist.
    func cellValue(_ column: String, of id: String) throws -> SQLValue? {
        try Database(path: db).rows("SELECT \(Database.quote(column)) FROM notes WHERE id = ?", [.text(id)]).first?.first
    }

    /// The cell's bytes as SQLite's hex() shows them.
    func cellHex(_ column: String, of id: String) throws -> String? {
        guard case .text(let h)? = try Database(path: db).rows("SELECT hex(\(Database.quote(column))) FROM notes WHERE id = ?", [.text(id)]).first?.first
        else { return nil }
        return String(decoding: h, as: UTF8.self)
    }

    func columnRules() throws -> [String: String] {
        let tables = try status()["tables"] as? [[String: Any]] ?? []
        let notes = tables.first { $0["name"] as? String == "notes" }
        var out: [String: String] = [:]
        for c in notes?["columns"] as? [[String: Any]] ?? [] {
            if let n = c["name"] as? String, let r = c["rule"] as? String { out[n] = r }
        }
        return out
    }

    func parked() throws -> [[String: Any]] { try status()["parked"] as? [[String: Any]] ?? [] }
}

/// Every replica holds exactly `expected` (byte for byte) in the cell, and they all agree.
private func expectCell(_ replicas: [TestReplica], _ column: String, of id: String, is expected: SQLValue,
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
    for r in replicas {
        let got = try r.cellValue(column, of: id)
        let same = got == expected
        #expect(same, "\(r.name): \(column) of '\(id)' is \(got.map(shown) ?? "(no row)"), expected \(shown(expected))",
                sourceLocation: sourceLocation)
    }
    try expectSameBytes(replicas, column, of: id, sourceLocation: sourceLocation)
}

private func expectText(_ replicas: [TestReplica], _ column: String, of id: String, is expected: String,
                        sourceLocation: SourceLocation = #_sourceLocation) throws {
    try expectCell(replicas, column, of: id, is: .text(expected), sourceLocation: sourceLocation)
}

/// Every replica holds the same bytes in the cell (compared with SQL hex()).
private func expectSameBytes(_ replicas: [TestReplica], _ column: String, of id: String,
                             sourceLocation: SourceLocation = #_sourceLocation) throws {
    let hexes = try replicas.map { try $0.cellHex(column, of: id) ?? "(NULL or no row)" }
    let listed = zip(replicas, hexes).map { "\($0.name)=\($1.prefix(200))" }.joined(separator: " ")
    #expect(Set(hexes).count == 1, "\(column) of '\(id)' differs between replicas: \(listed)", sourceLocation: sourceLocation)
}

private func expectSameDigest(_ replicas: [TestReplica], sourceLocation: SourceLocation = #_sourceLocation) throws {
    let digests = try replicas.map { try $0.digest() }
    let listed = zip(replicas, digests).map { "\($0.name)=\($1)" }.joined(separator: " ")
    #expect(Set(digests).count == 1, "digests differ: \(listed)", sourceLocation: sourceLocation)
}

/// The exact bytes of each extended grapheme cluster of `bytes`, or nil if they are not valid UTF-8.
private func graphemeBytes(_ bytes: [UInt8]) -> [[UInt8]]? {
    guard let s = String(validating: bytes, as: UTF8.self) else { return nil }
    return s.map { Array(String($0).utf8) }
}

@Suite struct TextJSONMergeTests {
    // MARK: - Text

    @Test func editsToDifferentParagraphsBothSurvive() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("n", body: "First paragraph.\n\nSecond paragraph.\n\nThird paragraph.\n")
        try syncAll([a, b], via: stick)

        try a.writeText("body", of: "n", "First paragraph, edited by A.\n\nSecond paragraph.\n\nThird paragraph.\n")
        try b.writeText("body", of: "n", "First paragraph.\n\nSecond paragraph.\n\nThird paragraph, and B added this.\n")
        try syncAll([a, b], via: stick)

        try expectText([a, b], "body", of: "n",
                       is: "First paragraph, edited by A.\n\nSecond paragraph.\n\nThird paragraph, and B added this.\n")
        try expectSameDigest([a, b])
    }

    @Test func differentWordsInsertedAtTheSameSpotBothArriveWholeOneAfterTheOther() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("n", body: "The cat sat.")
        try syncAll([a, b], via: stick)

        try a.writeText("body", of: "n", "The black cat sat.")
        try b.writeText("body", of: "n", "The fat cat sat.")
        try syncAll([a, b], via: stick)

        // Either order (the design puts the later write first), never interleaved, the same everywhere.
        let candidates = ["The black fat cat sat.", "The fat black cat sat."]
        let got = try a.cellValue("body", of: "n")
        let isCandidate = candidates.contains { got == .text($0) }
        #expect(isCandidate, "merged text is \(got.map(shown) ?? "(no row)"), expected one of \(candidates)")
        try expectSameBytes([a, b], "body", of: "n")
        try expectSameDigest([a, b])
    }

    @Test func wordsTypedBackwardsAtOneSpotOnTwoDevicesTakingTurnsStayWhole() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("n", body: "Hello  world")
        try syncAll([a, b], via: stick)

        // Each device types its word one character at a time, each new character before the
        // last (backwards), sealing every keystroke; their writes alternate in time.
        func backwards(_ word: String) -> [String] {
            let chars = Array(word)
            return (1...chars.count).map { "Hello " + String(chars[(chars.count - $0)...]) + " world" }
        }
        let alice = backwards("alice"), bob = backwards("bob")
        let scratch = tmp.dir("sealed")
        for i in 0..<max(alice.count, bob.count) {
            if i < alice.count {
                try a.writeText("body", of: "n", alice[i])
                _ = try a.export(to: scratch)
                tick()
            }
            if i < bob.count {
                try b.writeText("body", of: "n", bob[i])
                _ = try b.export(to: scratch)
                tick()
            }
        }
        try syncAll([a, b], via: stick)

        let candidates = ["Hello bobalice world", "Hello alicebob world"]
        let got = try a.cellValue("body", of: "n")
        let whole = candidates.contains { got == .text($0) }
        #expect(whole, "merged text is \(got.map(shown) ?? "(no row)"), expected one of \(candidates)")
        try expectSameBytes([a, b], "body", of: "n")
        try expectSameDigest([a, b])
    }

    @Test func aLineInsertedBeforeALineWhoseStartIsRetypedElsewhereStaysBeforeTheWholeLine() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("n", body: "line1\nline2\nline3\n")
        try syncAll([a, b], via: stick)

        try a.writeText("body", of: "n", "line1\nnew line\nline2\nline3\n")
        try b.writeText("body", of: "n", "line1\nLINE2\nline3\n")
        try syncAll([a, b], via: stick)

        try expectText([a, b], "body", of: "n", is: "line1\nnew line\nLINE2\nline3\n")
        try expectSameDigest([a, b])
    }

    @Test func deletingASentenceWhileTheOtherSideInsertsAWordInItKeepsOnlyTheWord() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("n", body: "Keep this. Remove this whole sentence. Keep that.")
        try syncAll([a, b], via: stick)

        try a.writeText("body", of: "n", "Keep this. Keep that.")
        try b.writeText("body", of: "n", "Keep this. Remove this NEW whole sentence. Keep that.")
        try syncAll([a, b], via: stick)

        // The sentence's own characters are gone; the word typed concurrently stays where the sentence was.
        try expectText([a, b], "body", of: "n", is: "Keep this. NEW Keep that.")
        try expectSameDigest([a, b])
    }

    @Test func bothSidesDeletingTheSameSpanDeleteItOnce() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("same", body: "alpha beta gamma delta")
        try a.insertNote("overlap", body: "one two three four five")
        try syncAll([a, b], via: stick)

        try a.writeText("body", of: "same", "alpha gamma delta")
        try b.writeText("body", of: "same", "alpha gamma delta")
        // Overlapping spans: the union goes, nothing else.
        try a.writeText("body", of: "overlap", "one four five")
        try b.writeText("body", of: "overlap", "one two five")
        try syncAll([a, b], via: stick)

        try expectText([a, b], "body", of: "same", is: "alpha gamma delta")
        try expectText([a, b], "body", of: "overlap", is: "one five")
        try expectSameDigest([a, b])
    }

    @Test func deletingTheRowWhileTheOtherSideEditsItsTextEndsDeleted() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("n", title: "t", body: "Some text to edit.", settings: #"{"k":1}"#)
        try syncAll([a, b], via: stick)

        try a.sql("DELETE FROM notes WHERE id = 'n'")
        tick()
        // Later in time, but concurrent: the delete still wins (row rules, SPEC §3.2).
        try b.writeText("body", of: "n", "Some more text to edit, later.")
        try b.writeText("settings", of: "n", #"{"k":2,"new":true}"#)
        try syncAll([a, b], via: stick)

        for r in [a, b] {
            #expect(try r.rows("SELECT * FROM notes WHERE id = 'n'").isEmpty, "\(r.name): the row is deleted")
        }
        try expectSameDigest([a, b])
    }

    @Test func batchesDeliveredInReverseOrderParkThenMatchInOrderDelivery() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp), c = try notesReplica("c", in: tmp)
        try a.insertNote("n", body: "Line one.\nLine two.\nLine three.\n", settings: #"{"v":0}"#)
        let first = try a.export(["--full"], to: tmp.dir("first"))
        try b.importing([first])
        try c.importing([first])

        // Three successive edits, each exported alone (--since what A held before it).
        let edits: [(body: String, settings: String)] = [
            ("Line one, alpha.\nLine two.\nLine three.\n", #"{"v":1}"#),
            ("Line one, alpha.\nLine 2.\nLine three.\n", #"{"v":2,"w":true}"#),
            ("Line one, alpha.\nLine 2.\nLine three.\nLine four: 漢字 👍🏽 e\u{301}.\n", #"{"w":true}"#),
        ]
        var bundles: [String] = []
        for (i, e) in edits.enumerated() {
            let vector = tmp.file("a-before-\(i).json")
            try CLI.ok(["status", a.db, "--json"]).write(toFile: vector, atomically: true, encoding: .utf8)
            try a.writeText("body", of: "n", e.body)
            try a.writeText("settings", of: "n", e.settings)
            bundles.append(try a.export(["--since", vector], to: tmp.dir("edit\(i)")))
        }
        let aID = try a.status()["id"] as? String ?? "?"

        // B: newest first. Each of the first two imports parks (its history is missing).
        try b.importing([bundles[2]])
        let parked1 = try b.parked()
        #expect(parked1.count == 1, "after the third edit's bundle alone, one batch parks: \(parked1)")
        #expect(parked1.allSatisfy { $0["origin"] as? String == aID && ($0["waits_for"] as? String ?? "").isEmpty == false })
        try expectText([b], "body", of: "n", is: "Line one.\nLine two.\nLine three.\n")
        try b.importing([bundles[1]])
        let parked2 = try b.parked()
        #expect(parked2.count == 2, "after the second edit's bundle, two batches park: \(parked2)")
        try expectText([b], "body", of: "n", is: "Line one.\nLine two.\nLine three.\n")
        try b.importing([bundles[0]])
        #expect(try b.parked().isEmpty, "the last import releases every parked batch")

        // C: in order.
        for path in bundles { try c.importing([path]) }
        #expect(try c.parked().isEmpty)

        try expectText([a, b, c], "body", of: "n", is: edits[2].body)
        try expectText([a, b, c], "settings", of: "n", is: edits[2].settings)
        try expectSameDigest([a, b, c])
    }

    @Test func aOneWordEditOfAOneMegabyteTextShipsASmallDelta() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        // About 1 MB of lines of pseudo-random words (so compression cannot hide a full copy).
        var rng = SplitMix64(seed: 0x7E47_013B)
        let words = ["lorem", "ipsum", "dolor", "sit", "amet", "été", "漢字", "naïve", "👍🏽", "zebra", "quartz", "fjord",
                     "glyph", "vex", "nymph", "waltz", "jocks", "bright", "kilo", "umbra"]
        func line() -> String {
            var l = ""
            while l.utf8.count < 70 { l += words[Int(rng.next() % UInt64(words.count))] + " " + String(rng.next() % 100_000) + " " }
            return l + "\n"
        }
        var head = "", tail = ""
        while head.utf8.count < 512 * 1024 { head += line() }
        while tail.utf8.count < 512 * 1024 { tail += line() }
        let before = head + "The marker word is ORIGINAL here.\n" + tail
        let after = head + "The marker word is CHANGED here.\n" + tail
        #expect(before.utf8.count >= 1_048_576)

        try a.insertNote("big", body: before)
        try b.importing([try a.export(["--full"], to: tmp.dir("full"))])
        let vector = tmp.file("b.json")
        try CLI.ok(["status", b.db, "--json"]).write(toFile: vector, atomically: true, encoding: .utf8)

        try a.writeText("body", of: "big", after)
        let delta = try a.export(["--since", vector], to: tmp.dir("delta"))
        let size = (try FileManager.default.attributesOfItem(atPath: delta)[.size] as? NSNumber)?.intValue ?? -1
        print("TextJSONMergeTests: one-word edit of a \(after.utf8.count)-byte text cell: delta bundle is \(size) bytes")
        #expect(size > 0 && size < 4096, "the delta bundle for a one-word edit of a 1 MB text is \(size) bytes (want < 4096)")

        try b.importing([delta])
        let got = try b.cellValue("body", of: "big")
        let arrived = got == .text(after)
        #expect(arrived, "the imported 1 MB text differs from the original (\(got.map { v -> String in if case .text(let t) = v { return "\(t.count) bytes" }; return shown(v) } ?? "no row"))")
        try expectSameBytes([a, b], "body", of: "big")
        try expectSameDigest([a, b])
    }

    /// Words for large texts: a few kinds, each with a number, so that most are unique.
    private func randomWords(_ bytes: Int, seed: UInt64) -> [String] {
        var rng = SplitMix64(seed: seed)
        let stems = ["lorem", "ipsum", "été", "漢字", "naïve", "👍🏽", "fjord", "e\u{301}t"]
        var words: [String] = []
        var size = 0
        while size < bytes {
            words.append(stems[Int(rng.next() % UInt64(stems.count))] + String(rng.next() % 10_000_000))
            size += words.last!.utf8.count + 1
        }
        return words
    }

    @Test func aRewriteOfAOneMegabyteLineAt1500PlacesKeepsAConcurrentDeleteAndInsertWhereTheyWere() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        let base = randomWords(1 << 20, seed: 0x1500)
        try a.insertNote("n", body: base.joined(separator: " "))
        try syncAll([a, b], via: stick)

        // A rewrites 1,500 scattered words; B deletes one word and inserts another elsewhere.
        // Edits are described per word of the base: its replacement (nil: deleted), and the
        // words inserted after it.
        var replaced: [Int: String?] = [:]
        var after: [Int: [String]] = [:]
        let step = base.count / 1600
        for k in 0..<1500 {
            let i = 10 + k * step
            switch k % 3 {
            case 0: replaced[i] = "A\(k)changed"
            case 1: replaced[i] = .some(nil)
            default: after[i, default: []].append("A\(k)new")
            }
        }
        func render(_ replaced: [Int: String?], _ after: [Int: [String]]) -> String {
            var out: [String] = []
            for (i, w) in base.enumerated() {
                if let r = replaced[i] { if let r { out.append(r) } } else { out.append(w) }
                out += after[i] ?? []
            }
            return out.joined(separator: " ")
        }
        let deletedByB = 10 + 700 * step + step / 2, insertedAfterByB = 10 + 1200 * step + step / 2
        #expect(!replaced.keys.contains(deletedByB) && !after.keys.contains(insertedAfterByB))
        try a.writeText("body", of: "n", render(replaced, after))
        let deletion: [Int: String?] = [deletedByB: String?.none]
        try b.writeText("body", of: "n", render(deletion, [insertedAfterByB: ["Bnew"]]))
        try syncAll([a, b], via: stick)

        var allReplaced = replaced
        allReplaced[deletedByB] = .some(nil)
        var allAfter = after
        allAfter[insertedAfterByB] = ["Bnew"]
        try expectText([a, b], "body", of: "n", is: render(allReplaced, allAfter))
        try expectSameDigest([a, b])
    }

    @Test func twoMegabyteNotesWithAThousandInsertionsAndDeletionsOnEachSideMergeBoth() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        // Two notes of 2 MB in lines of about ten words.
        let bases = [randomWords(2 << 20, seed: 0x2001), randomWords(2 << 20, seed: 0x2002)]
        func render(_ words: [String], deleted: Set<Int>, after: [Int: String]) -> String {
            var out = ""
            for (i, w) in words.enumerated() {
                if !deleted.contains(i) { out += w + (i % 10 == 9 ? "\n" : " ") }
                if let x = after[i] { out += x + " " }
            }
            return out
        }
        for (n, words) in bases.enumerated() { try a.insertNote("n\(n)", body: render(words, deleted: [], after: [:])) }
        try syncAll([a, b], via: stick)

        // A edits every other stretch of words and B the ones between: 1,000 insertions and 1,000
        // deletions each, at places far enough apart that each edit is unambiguous.
        var expected: [String] = []
        for (n, words) in bases.enumerated() {
            let step = words.count / 4000
            func edits(_ first: Int) -> (Set<Int>, [Int: String]) {
                var deleted = Set<Int>(), after: [Int: String] = [:]
                for k in 0..<2000 {
                    let i = first + 2 * k * step
                    if k % 2 == 0 { deleted.insert(i) } else { after[i] = "\(first == 0 ? "A" : "B")\(k)ins" }
                }
                return (deleted, after)
            }
            let (da, ia) = edits(0), (db, ib) = edits(step)
            try a.writeText("body", of: "n\(n)", render(words, deleted: da, after: ia))
            try b.writeText("body", of: "n\(n)", render(words, deleted: db, after: ib))
            expected.append(render(words, deleted: da.union(db), after: ia.merging(ib) { x, _ in x }))
        }
        try syncAll([a, b], via: stick)

        for n in 0..<2 { try expectText([a, b], "body", of: "n\(n)", is: expected[n]) }
        try expectSameDigest([a, b])
    }

    @Test func retrackingAnLWWColumnAsTextSwitchesItsRule() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp, rules: false), b = try notesReplica("b", in: tmp, rules: false)
        let stick = tmp.dir("stick")
        try a.insertNote("n", title: "T", body: "Alpha paragraph.\n\nBeta paragraph.\n\nGamma paragraph.\n")
        try syncAll([a, b], via: stick)
        for r in [a, b] { #expect(try r.columnRules()["body"] == "lww", "\(r.name): body starts last-writer-wins") }

        try CLI.ok(["track", a.db, "notes", "--text", "body"])
        let rules = try a.columnRules()
        #expect(rules["body"] == "text", "status shows the new rule: \(rules)")
        #expect(rules["title"] == "lww" && rules["settings"] == "lww", "other columns keep theirs: \(rules)")
        try a.writeText("body", of: "n", "Alpha paragraph, edited on A.\n\nBeta paragraph.\n\nGamma paragraph.\n")
        let fromA = try a.export(["--full"], to: stick)

        // B still merges body by lww: A's bundle is refused whole, with the way out.
        let refused = try CLI.run(["import", b.db, fromA])
        #expect(refused.status == 65, "a bundle whose rule for a column differs is refused: exit \(refused.status), \(refused.stderr)")
        #expect(refused.stderr.contains("'body'") && refused.stderr.contains("hint:"), "the refusal names the column and the fix: \(refused.stderr)")
        try expectText([b], "body", of: "n", is: "Alpha paragraph.\n\nBeta paragraph.\n\nGamma paragraph.\n")

        try CLI.ok(["track", b.db, "notes", "--text", "body"])
        #expect(try b.columnRules()["body"] == "text")
        // Concurrent with A's edit: now both merge.
        try b.writeText("body", of: "n", "Alpha paragraph.\n\nBeta paragraph.\n\nGamma paragraph, edited on B.\n")
        try b.importing([fromA])
        try a.importing([try b.export(["--full"], to: stick)])

        try expectText([a, b], "body", of: "n", is: "Alpha paragraph, edited on A.\n\nBeta paragraph.\n\nGamma paragraph, edited on B.\n")
        try expectText([a, b], "title", of: "n", is: "T")
        try expectSameDigest([a, b])
    }

    @Test func replicasThatSwitchRulesOutOfSyncStillConverge() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp, rules: false), b = try notesReplica("b", in: tmp, rules: false)
        let stick = tmp.dir("stick")
        try a.insertNote("n", body: "first draft", settings: #"{"b": 1, "a": 2}"#)
        try syncAll([a, b], via: stick)
        // B's edit has not reached A when both switch.
        tick()
        try b.writeText("body", of: "n", "second draft")
        for r in [a, b] { try CLI.ok(["track", r.db, "notes", "--text", "body", "--json", "settings"]) }
        try a.writeText("body", of: "n", "first draft!")
        try syncAll([a, b], via: stick)
        // Each starting state reaches the other replica: both hold both values' text.
        try expectText([a, b], "body", of: "n", is: "second draftfirst draft!")
        // A seeded JSON cell is rewritten in canonical form when its state is sent.
        try expectText([a, b], "settings", of: "n", is: #"{"a":2,"b":1}"#)
        try expectSameDigest([a, b])
    }

    @Test func emojiCombiningMarksAndCJKComeOutWhole() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("n", body: "Start: 👍🏽 e\u{301} end.")
        try syncAll([a, b], via: stick)

        // A swaps the skin tone (same first scalar) and adds a ZWJ family; B adds CJK at the same
        // spot, turns the combining acute into a grave (same base letter) and appends a precomposed é.
        try a.writeText("body", of: "n", "Start: 👨‍👩‍👧👍🏿 e\u{301} end.")
        try b.writeText("body", of: "n", "Start: 漢字👍🏽 e\u{300} end.\u{E9}")
        try syncAll([a, b], via: stick)

        let candidates = ["Start: 👨‍👩‍👧👍🏿漢字 e\u{300} end.\u{E9}", "Start: 漢字👨‍👩‍👧👍🏿 e\u{300} end.\u{E9}"]
        try expectSameBytes([a, b], "body", of: "n")
        guard case .text(let bytes)? = try a.cellValue("body", of: "n") else {
            Issue.record("body is not TEXT")
            return
        }
        guard let graphemes = graphemeBytes(bytes) else {
            Issue.record("the merged text is not valid UTF-8: \(hexString(bytes))")
            return
        }
        let text = String(decoding: bytes, as: UTF8.self)
        for g in ["👨‍👩‍👧", "👍🏿", "漢", "字", "e\u{300}", "\u{E9}"] {
            let whole = graphemes.contains(Array(g.utf8))
            #expect(whole, "\(g.debugDescription) is whole in \(text.debugDescription)")
        }
        for gone in ["👍🏽", "e\u{301}"] {
            let present = graphemes.contains(Array(gone.utf8))
            #expect(!present, "\(gone.debugDescription) was replaced, yet is in \(text.debugDescription)")
        }
        // Nothing split: no lone modifier, joiner or combining mark.
        for lone in ["\u{1F3FD}", "\u{1F3FF}", "\u{200D}", "\u{301}", "\u{300}"] {
            let present = graphemes.contains(Array(lone.utf8))
            #expect(!present, "a lone \(lone.unicodeScalars.map { String($0.value, radix: 16) }) in \(text.debugDescription)")
        }
        let isCandidate = candidates.contains { bytes == Array($0.utf8) }
        #expect(isCandidate, "merged text is \(text.debugDescription), expected one of \(candidates.map(\.debugDescription))")
        try expectSameDigest([a, b])
    }

    // MARK: - JSON

    @Test func jsonEditsToDifferentKeysAtDepthThreeAllSurvive() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("j", settings: #"{"a":{"b":{"c":1,"d":2,"g":"old"},"e":3},"f":4}"#)
        try syncAll([a, b], via: stick)

        // A: changes a.b.c, adds a.b.x. B (key order and whitespace of its own): changes a.b.d
        // to an array, removes a.b.g, adds the object a.y with a.y.z.
        try a.writeText("settings", of: "j", #"{"a":{"b":{"c":10,"d":2,"g":"old","x":"ax"},"e":3},"f":4}"#)
        try b.writeText("settings", of: "j", #"{ "f": 4, "a": { "e": 3, "y": { "z": true }, "b": { "d": [1, 2], "c": 1 } } }"#)
        try syncAll([a, b], via: stick)

        try expectText([a, b], "settings", of: "j", is: #"{"a":{"b":{"c":10,"d":[1,2],"x":"ax"},"e":3,"y":{"z":true}},"f":4}"#)
        try expectSameDigest([a, b])
    }

    @Test func jsonDeleteRacingASetOnTheSamePathIsDecidedByTheLaterWrite() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        let base = #"{"m":2,"p":{"q":{"k":1,"keep":true}}}"#
        try a.insertNote("delete-first", settings: base)
        try a.insertNote("set-first", settings: base)
        try syncAll([a, b], via: stick)

        // Each write is sealed (exported) before the next one is made, so the order in time
        // is the order of the writes' clocks whichever moment stamps them. Neither side
        // imports the other's write before making its own: the writes are concurrent.
        let outA = tmp.dir("outA"), outB = tmp.dir("outB")
        var fromA: [String] = [], fromB: [String] = []
        try a.writeText("settings", of: "delete-first", #"{"m":2,"p":{"q":{"keep":true}}}"#)
        fromA.append(try a.export(["--full"], to: outA))
        tick()
        try b.writeText("settings", of: "delete-first", #"{"m":2,"p":{"q":{"k":"later","keep":true}}}"#)
        fromB.append(try b.export(["--full"], to: outB))
        tick()
        try a.writeText("settings", of: "set-first", #"{"m":2,"p":{"q":{"k":"earlier","keep":true}}}"#)
        fromA.append(try a.export(["--full"], to: outA))
        tick()
        try b.writeText("settings", of: "set-first", #"{"m":2,"p":{"q":{"keep":true}}}"#)
        fromB.append(try b.export(["--full"], to: outB))

        try a.importing(fromB)
        try b.importing(fromA)

        try expectText([a, b], "settings", of: "delete-first", is: #"{"m":2,"p":{"q":{"k":"later","keep":true}}}"#)
        try expectText([a, b], "settings", of: "set-first", is: #"{"m":2,"p":{"q":{"keep":true}}}"#)
        try expectSameDigest([a, b])
    }

    @Test func jsonRemovedKeyComesBackWithALaterSet() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("j", settings: #"{"k":1,"m":2}"#)
        try syncAll([a, b], via: stick)

        try a.writeText("settings", of: "j", #"{"m":2}"#)
        try syncAll([a, b], via: stick)
        try expectText([a, b], "settings", of: "j", is: #"{"m":2}"#)

        tick()
        try b.writeText("settings", of: "j", #"{"k":{"back":true},"m":2}"#)
        try syncAll([a, b], via: stick)
        try expectText([a, b], "settings", of: "j", is: #"{"k":{"back":true},"m":2}"#)
        try expectSameDigest([a, b])
    }

    @Test func aNonJSONValueInAJSONColumnMergesAsAPlainCell() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("j", settings: #"{"m":2}"#)
        try syncAll([a, b], via: stick)

        // A JSON edit, then a later concurrent write of text that is not JSON: the later whole value wins.
        try a.writeText("settings", of: "j", #"{"m":3}"#)
        tick()
        try b.writeText("settings", of: "j", "not json {")
        try syncAll([a, b], via: stick) // CLI.ok: no error anywhere
        try expectText([a, b], "settings", of: "j", is: "not json {")

        try a.writeCell("settings", of: "j", .null)
        try syncAll([a, b], via: stick)
        try expectCell([a, b], "settings", of: "j", is: .null)

        // A BLOB (TEXT affinity would turn a number into text, which is then not JSON either).
        try b.writeCell("settings", of: "j", .blob([0x00, 0xFF, 0x7B]))
        try syncAll([a, b], via: stick)
        try expectCell([a, b], "settings", of: "j", is: .blob([0x00, 0xFF, 0x7B]))

        // Back to JSON, written after seeing everything: exactly that document.
        try a.writeText("settings", of: "j", #"{"z": 1}"#)
        try syncAll([a, b], via: stick)
        try expectText([a, b], "settings", of: "j", is: #"{"z":1}"#)
        try expectSameDigest([a, b])
    }

    @Test func jsonIsStoredInCanonicalFormOnEveryReplica() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        try a.insertNote("j", settings: #"{"b": 1, "a": [1, 2]}"#)
        try syncAll([a, b], via: stick)
        try expectText([a, b], "settings", of: "j", is: #"{"a":[1,2],"b":1}"#)
        try expectSameDigest([a, b])
    }

    @Test func jsonCanonicalFormSortsByBytesEscapesMinimallyAndKeepsNumbersAsWritten() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp), b = try notesReplica("b", in: tmp)
        let stick = tmp.dir("stick")
        // Whitespace, \/ and \u00e9 escapes, numbers in unusual spellings, duplicate keys,
        // keys whose byte order differs from a naive order (uppercase, multi-byte).
        let written = #"""
            { "z" : "q\"b\\s\/l\u00e9\n\t" , "n": 1.50, "e": 1E3, "Z": null,
              "é": [ true , false ], "a": {"d": 1, "d": 2}, "aa": "", "\u00e9x": 0 }
            """#
        try a.insertNote("j", settings: written)
        try syncAll([a, b], via: stick)
        try expectText([a, b], "settings", of: "j",
                       is: #"{"Z":null,"a":{"d":2},"aa":"","e":1E3,"n":1.50,"z":"q\"b\\s/lé\n\t","é":[true,false],"éx":0}"#)
        try expectSameDigest([a, b])
    }

    @Test func statusShowsEachColumnsRule() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp)
        let tables = try a.status()["tables"] as? [[String: Any]] ?? []
        let notes = tables.first { $0["name"] as? String == "notes" }
        #expect(notes?["key"] as? [String] == ["id"])
        #expect(try a.columnRules() == ["title": "lww", "body": "text", "settings": "json"])
    }
}
