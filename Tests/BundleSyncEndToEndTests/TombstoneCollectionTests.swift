import BundleSync
import BundleSyncCore
import BundleSyncTestSupport
import Foundation
import Testing

// Tombstone collection through the built binary: text and JSON cells edited over and over
// by replicas that keep syncing stay about the size of their current value, and a replica
// that was forgotten and comes back with edits made before a collected deletion ends where
// everyone else does.

private let notesSchema = "CREATE TABLE notes(id TEXT PRIMARY KEY, body TEXT, settings TEXT);"

/// A replica of the notes table; `fleet` declares the group's size, which lets it collect.
private func notesReplica(_ name: String, in tmp: TempDir, fleet: Int? = nil) throws -> TestReplica {
    let r = TestReplica(name: name, db: tmp.file("\(name).db"))
    try App.execute(r.db, notesSchema)
    try CLI.ok(["init", r.db, "--name", name])
    try CLI.ok(["track", r.db, "notes", "--text", "body", "--json", "settings"])
    if let fleet { try CLI.ok(["config", r.db, "fleet", String(fleet)]) }
    return r
}

private extension TestReplica {
    /// The application's writes, each its own UPDATE, on one connection of its own.
    func write(_ column: String, of id: String, _ values: [String]) throws {
        let conn = try Database(path: db)
        try conn.execute("BEGIN")
        for v in values {
            try conn.run("UPDATE notes SET \(Database.quote(column)) = ? WHERE id = ?", [.text(v), .text(id)])
        }
        try conn.execute("COMMIT")
    }

    func text(_ column: String, of id: String) throws -> String? {
        guard case .text(let b)? = try rows("SELECT \(Database.quote(column)) FROM notes WHERE id = '\(id)'").first?.first else { return nil }
        return String(decoding: b, as: UTF8.self)
    }

    /// The size of the cell's stored merge state.
    func stateSize(_ column: String, of id: String) throws -> Int {
        let ordinal = column == "body" ? 0 : 1
        let table = try rows("SELECT name FROM sqlite_schema WHERE name LIKE '\\_bundlesync\\_merge\\_%' ESCAPE '\\'")
        guard case .text(let name)? = table.first?.first,
              case .integer(let n)? = try rows("SELECT length(state) FROM \(String(decoding: name, as: UTF8.self)) WHERE col = \(ordinal)").first?.first
        else { return 0 }
        return Int(n)
    }

    /// `bundlesync sync`: imports what is in the shared folder, then exports into it.
    func sync(_ stick: String) throws { try CLI.ok(["sync", db, stick]) }
}

/// Words with no character in common, so that each word edit is one change of whole words:
/// the runs of the state are then the words of the text, and its size past that is history.
private let vocabulary = ["abcdefghijkl", "mnopqrstuvwx", "yzABCDEFGHIJ", "KLMNOPQRSTUV", "WXYZ01234567"]

/// `n` random word edits of `words`: replacements, insertions and deletions at random places.
private func edit(_ words: inout [String], _ n: Int, _ rng: inout SplitMix64) -> [String] {
    var values: [String] = []
    for _ in 0..<n {
        let w = vocabulary[Int(rng.next() % UInt64(vocabulary.count))]
        let at = Int(rng.next() % UInt64(words.count))
        switch rng.next() % 3 {
        case 0: words[at] = w
        case 1: words.insert(w, at: at)
        default: if words.count > 20 { words.remove(at: at) } else { words.insert(w, at: at) }
        }
        values.append(words.joined(separator: " "))
    }
    return values
}

/// `n` random key edits of a flat JSON object: keys added, changed and removed.
private func editKeys(_ keys: inout [String: Int], _ n: Int, _ rng: inout SplitMix64) -> [String] {
    var values: [String] = []
    for _ in 0..<n {
        let k = "k\(rng.next() % 400)"
        if keys[k] != nil && rng.next() % 2 == 0 { keys[k] = nil } else { keys[k] = Int(rng.next() % 1000) }
        let body = keys.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
        values.append("{" + body + "}")
    }
    return values
}

@Suite struct TombstoneCollectionTests {
    @Test func aTextEditedTenThousandTimesStaysWithinTwiceTheSizeOfItsTextWrittenOnce() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp, fleet: 2), b = try notesReplica("b", in: tmp, fleet: 2)
        let stick = tmp.dir("stick")
        var rng = SplitMix64(seed: 0x6C0113C7)
        let words = (0..<600).map { _ in vocabulary[Int(rng.next() % UInt64(vocabulary.count))] }
        try a.sql("INSERT INTO notes(id, body, settings) VALUES ('n', '\(words.joined(separator: " "))', '{}')")
        try a.sync(stick)
        try b.sync(stick)

        // 10 rounds of 500 edits on each side, 10,000 in all, each side editing its own
        // latest text (concurrently with the other's latest edits) and syncing.
        for _ in 0..<10 {
            for r in [a, b] {
                var words = try r.text("body", of: "n")!.split(separator: " ").map(String.init)
                try r.write("body", of: "n", edit(&words, 500, &rng))
                try r.sync(stick)
            }
        }
        // Both learn that the other holds everything; sync compacts.
        for _ in 0..<2 {
            try a.sync(stick)
            try b.sync(stick)
        }

        #expect(try CLI.ok(["status", a.db]).contains("fleet    2 replicas: deleted text and removed JSON keys are dropped"))
        let final = try a.text("body", of: "n")
        let other = try b.text("body", of: "n")
        #expect(final != nil && final == other)
        let fresh = try notesReplica("fresh", in: tmp)
        try fresh.sql("INSERT INTO notes(id, body, settings) VALUES ('n', '', '{}')")
        let alone = tmp.dir("alone")
        _ = try fresh.export(to: alone)
        try fresh.write("body", of: "n", [final ?? ""])
        _ = try fresh.export(to: alone)
        let once = try fresh.stateSize("body", of: "n")
        for r in [a, b] {
            let size = try r.stateSize("body", of: "n")
            #expect(once > 0 && size <= 2 * once, "\(r.name): the state of a text edited 10,000 times is \(size) bytes; written once, \(once)")
        }
        let (da, db) = (try a.digest(), try b.digest())
        #expect(da == db)
    }

    @Test func aJSONDocumentWithKeysAddedAndRemovedTenThousandTimesStaysWithinTwiceItsSizeWrittenOnce() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp, fleet: 2), b = try notesReplica("b", in: tmp, fleet: 2)
        let stick = tmp.dir("stick")
        var rng = SplitMix64(seed: 0x150E)
        try a.sql("INSERT INTO notes(id, body, settings) VALUES ('n', '', '{}')")
        try a.sync(stick)
        try b.sync(stick)
        func read(_ r: TestReplica) throws -> [String: Int] {
            let object = try JSONSerialization.jsonObject(with: Data((try r.text("settings", of: "n") ?? "{}").utf8)) as? [String: Int]
            return object ?? [:]
        }
        for _ in 0..<10 {
            for r in [a, b] {
                var keys = try read(r)
                try r.write("settings", of: "n", editKeys(&keys, 500, &rng))
                try r.sync(stick)
            }
        }
        for _ in 0..<2 {
            try a.sync(stick)
            try b.sync(stick)
        }

        let final = try a.text("settings", of: "n")
        let other = try b.text("settings", of: "n")
        #expect(final != nil && final == other)
        let fresh = try notesReplica("fresh", in: tmp)
        try fresh.sql("INSERT INTO notes(id, body, settings) VALUES ('n', '', '{}')")
        let alone = tmp.dir("alone")
        _ = try fresh.export(to: alone)
        try fresh.write("settings", of: "n", [final ?? "{}"])
        _ = try fresh.export(to: alone)
        let once = try fresh.stateSize("settings", of: "n")
        for r in [a, b] {
            let size = try r.stateSize("settings", of: "n")
            #expect(once > 0 && size <= 2 * once, "\(r.name): the state of a document edited 10,000 times is \(size) bytes; written once, \(once)")
        }
        let (da, db) = (try a.digest(), try b.digest())
        #expect(da == db)
    }

    /// Three replicas; one goes silent and is forgotten while the other two delete text and
    /// collect it; the silent one had typed inside that text and comes back. Its edit cannot
    /// be placed: it is dropped where it arrives, with a message, and all three end the same.
    @Test func aForgottenReplicaReturningWithAnEditInsideCollectedTextIsDroppedLoudlyAndEveryoneConverges() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp, fleet: 3), b = try notesReplica("b", in: tmp, fleet: 3), c = try notesReplica("c", in: tmp, fleet: 3)
        let stick = tmp.dir("stick")
        try a.sql("INSERT INTO notes(id, body, settings) VALUES ('n', 'one two three four five', '{\"keep\":1,\"gone\":2}')")
        for _ in 0..<2 { for r in [a, b, c] { try r.sync(stick) } }
        #expect(try c.text("body", of: "n") == "one two three four five")

        // c types inside "three" and sets a key, and goes silent.
        try c.write("body", of: "n", ["one two thrXee four five"])
        try c.write("settings", of: "n", ["{\"keep\":1,\"gone\":2,\"late\":3}"])
        Thread.sleep(forTimeInterval: 0.01)
        // a deletes "three" and a key; a and b forget c, sync and collect.
        try a.write("body", of: "n", ["one two four five"])
        try a.write("settings", of: "n", ["{\"keep\":1}"])
        for _ in 0..<2 { for r in [a, b] { try r.sync(stick) } }
        try CLI.ok(["forget", a.db, "c"])
        try CLI.ok(["forget", b.db, "c"])
        for _ in 0..<2 { for r in [a, b] { try r.sync(stick) } }

        // c comes back.
        var said: [String: String] = [:]
        for _ in 0..<3 {
            for r in [c, a, b] {
                let run = try CLI.run(["sync", r.db, stick])
                #expect(run.status == 0, "\(r.name): \(run.stderr)")
                said[r.name, default: ""] += run.stderr
            }
        }
        // a takes in c's bundle first and says what it drops; b gets a's snapshot, which
        // already holds c's edit without the dropped text.
        let text = said["a"] ?? ""
        #expect(text.contains("'c'") && text.contains("'body'") && text.contains("'notes'") && text.contains("('n')")
                && text.contains("dropped on every replica: X"), "a said: \(text)")
        #expect(text.contains("/late = 3"), "a said: \(text)")
        let texts = try [a, b, c].map { try $0.text("body", of: "n") }
        #expect(texts == Array(repeating: "one two four five", count: 3), "\(texts)")
        let settings = try [a, b, c].map { try $0.text("settings", of: "n") }
        #expect(Set(settings).count == 1, "\(settings)")
        let digests = try [a, b, c].map { try $0.digest() }
        #expect(Set(digests).count == 1)
    }

    /// Three replicas write, but the group was declared to have two: a and b collect the
    /// text a deleted, while c, started from a's snapshot and unknown to them, still shows
    /// it. A snapshot of a's collected state then reaches c, which has a write of its own:
    /// c deletes the text too and says so, a warns once it hears from a third replica and
    /// stops collecting, and all three end the same.
    @Test func aReplicaTheDeclaredCountLeavesOutGetsCollectedTextRemovedLoudlyAndEveryoneConverges() throws {
        let tmp = TempDir()
        let a = try notesReplica("a", in: tmp, fleet: 2), b = try notesReplica("b", in: tmp, fleet: 2), c = try notesReplica("c", in: tmp, fleet: 2)
        let stick = tmp.dir("stick")
        try a.sql("INSERT INTO notes(id, body, settings) VALUES ('n', 'one two three four five', '{\"keep\":1,\"gone\":2}')")
        let start = try a.export(["--full"], to: tmp.dir("start"))
        try CLI.ok(["import", c.db, start])
        for _ in 0..<2 { for r in [a, b] { try r.sync(stick) } }

        // a deletes "three" and a key; a and b sync until both have collected them.
        try a.write("body", of: "n", ["one two four five"])
        try a.write("settings", of: "n", ["{\"keep\":1}"])
        for _ in 0..<3 { for r in [a, b] { try r.sync(stick) } }
        try CLI.ok(["config", a.db, "keep-batches", "0"])
        try CLI.ok(["prune", a.db])
        let collected = try a.stateSize("body", of: "n")

        // c types elsewhere in the text, then takes a's snapshot, which no longer holds
        // "three" at all and does not cover c's own write.
        Thread.sleep(forTimeInterval: 0.01)
        try c.write("body", of: "n", ["one two three four five six"])
        _ = try c.export(to: tmp.dir("c-out"))
        let snapshot = try a.export(["--full"], to: tmp.dir("a-out"))
        let run = try CLI.run(["import", c.db, snapshot])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("still showed text") && run.stderr.contains("three") && run.stderr.contains("config DB fleet"), "c said: \(run.stderr)")
        #expect(try c.text("body", of: "n") == "one two four five six")
        #expect(try c.text("settings", of: "n") == "{\"keep\":1}")

        // Everyone syncs: a hears from a third replica and says the count is wrong.
        var said = ""
        for _ in 0..<2 {
            for r in [c, a, b] {
                let run = try CLI.run(["sync", r.db, stick])
                #expect(run.status == 0, "\(r.name): \(run.stderr)")
                if r.name == "a" { said += run.stderr }
            }
        }
        #expect(said.contains("3 replicas have written to this group") && said.contains("config DB fleet 3"), "a said: \(said)")
        let fleet = try a.status()["fleet"] as? [String: Any]
        #expect(fleet?["declared"] as? Int == 2 && fleet?["heard_from"] as? Int == 3 && fleet?["collecting"] as? Bool == false, "\(fleet ?? [:])")
        #expect(try CLI.ok(["status", a.db]).contains("fleet    2 replicas: 3 heard from, more than declared"))
        let texts = try [a, b, c].map { try $0.text("body", of: "n") }
        #expect(texts == Array(repeating: "one two four five six", count: 3), "\(texts)")
        let settings = try [a, b, c].map { try $0.text("settings", of: "n") }
        #expect(settings == Array(repeating: "{\"keep\":1}", count: 3), "\(settings)")
        let digests = try [a, b, c].map { try $0.digest() }
        #expect(Set(digests).count == 1)
        #expect(collected > 0)
    }
}
