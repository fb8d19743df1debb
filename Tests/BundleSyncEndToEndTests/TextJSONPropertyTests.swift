import BundleSync
import BundleSyncMerge
import BundleSyncTestSupport
import Foundation
import Testing

// The text and JSON merge rules' central property, checked on the BUILT BINARY: 2-4 replicas
// run random concurrent edit scripts (insert, delete, replace, often at the same place, with
// é, e + combining acute, CJK, 👍🏽 and the ZWJ family 👨‍👩‍👧) on the same text cells, and
// random set/delete scripts on the same JSON cells (nested objects up to depth 3, arrays and
// scalars as leaves). They exchange bundles late, out of order and twice. Afterwards every
// replica holds byte-identical cells (SQL hex()) and the same digest, and every edit that no
// other edit removed is there:
//   text: every inserted piece carries a unique token; a token no replica deleted any part of
//         appears whole exactly once; a token some replica deleted whole does not appear;
//         every grapheme cluster of the result is one that was inserted (nothing split);
//   JSON: the result is canonical, and a key set by exactly one replica at a unique path that
//         nobody else ever removed or overwrote (at that path or above it), and its writer did
//         not later remove, holds exactly its value.
//
// Tokens are made of characters used nowhere else (CJK Extension B, sometimes with a combining
// mark), never of shared characters such as "⟨r1-7⟩": the capture diff (prefix/suffix trimming
// and Myers) may legitimately align a shared character of a new token with an old one, and a
// concurrent delete of the old one would then break a token nobody deleted. For the same reason
// each text cell gets at most one edit between two seals of its replica (edits are sealed at
// every export).
//
// Seeds (as ConvergencePropertyTests):
//   default                          seeds 1, 2, 3
//   BUNDLESYNC_PROPERTY_SEEDS=N      N seeds starting at BUNDLESYNC_PROPERTY_SEED_BASE (default 1)
//   BUNDLESYNC_PROPERTY_SEED=S       exactly seed S (edits and deliveries replay exactly;
//                                    replica ids and wall clocks are new each run)
//   BUNDLESYNC_PROPERTY_ROUNDS=R     R rounds per seed instead of 4
//   BUNDLESYNC_KEEP_TEMP=1           keep the run's directory: replicas, bundles, and log.txt,
//                                    every application write and bundlesync call in order.

private let environment = PropertySeeds.environment

@Suite struct TextJSONPropertyTests {
    @Test("concurrent text and JSON edit scripts, shuffled late duplicate deliveries: cells converge byte for byte and keep every uncontested edit",
          arguments: PropertySeeds.plan().seeds)
    func textAndJSONCellsConverge(seed: UInt64) throws {
        try TextJSONRun.check(seed: seed)
    }
}

/// The text half alone, on 200 seeds by default (`BUNDLESYNC_PROPERTY_SEEDS` and the other
/// variables above choose others): replicas type, delete and replace at the same places,
/// and the merged text keeps every token nobody touched, whole, exactly once.
@Suite struct TextPropertyTests {
    @Test("concurrent text edit scripts, shuffled late duplicate deliveries: cells converge byte for byte and keep every untouched token whole",
          arguments: PropertySeeds.plan(defaultCount: 24).seeds)
    func textCellsConverge(seed: UInt64) throws {
        try TextJSONRun.check(seed: seed, textOnly: true)
    }
}

/// Both halves with tombstone collection on: every replica declares the group's size
/// (`config DB fleet N`), so deleted text and removed keys are dropped from merge states as
/// soon as every replica holds their deletion. The same property must hold.
@Suite struct CollectingPropertyTests {
    @Test("text and JSON edit scripts with tombstones collected: cells converge byte for byte and keep every uncontested edit",
          arguments: PropertySeeds.plan(defaultCount: 8).seeds)
    func collectedCellsConverge(seed: UInt64) throws {
        try TextJSONRun.check(seed: seed, collecting: true)
    }
}

// MARK: - A JSON model (objects keep members as written; keys compare by bytes)

private enum JValue {
    case object([(key: String, value: JValue)])
    case array([JValue])
    case string(String)
    case number(String) // exactly as written
    case bool(Bool)
    case null

    var isObject: Bool { if case .object = self { return true }; return false }
}

private func sameKey(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

/// The design's canonical form: no whitespace, members sorted by key bytes, minimal escapes.
private func canonical(_ v: JValue) -> String {
    var out = ""
    func str(_ s: String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += "\\u00" + String(format2: UInt8(u.value))
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }
    func go(_ v: JValue) {
        switch v {
        case .object(let members):
            out += "{"
            let sorted = members.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
            for (i, m) in sorted.enumerated() {
                if i > 0 { out += "," }
                str(m.key)
                out += ":"
                go(m.value)
            }
            out += "}"
        case .array(let items):
            out += "["
            for (i, x) in items.enumerated() {
                if i > 0 { out += "," }
                go(x)
            }
            out += "]"
        case .string(let s): str(s)
        case .number(let n): out += n
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }
    go(v)
    return out
}

private extension String {
    init(format2 byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}

/// The same document as an application might write it: whitespace, members in reverse
/// order, and (when `escapeAll`) every non-ASCII character as a \u escape.
private func loose(_ v: JValue, escapeAll: Bool) -> String {
    func str(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += "\\u00" + String(format2: UInt8(u.value))
            case _ where escapeAll && u.value > 0x7F:
                for unit in String(u).utf16 { out += "\\u" + String(unit, radix: 16, uppercase: true).leftPadded(4) }
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
    switch v {
    case .object(let members):
        return "{ " + members.reversed().map { str($0.key) + " : " + loose($0.value, escapeAll: escapeAll) }.joined(separator: " , ") + " }"
    case .array(let items): return "[ " + items.map { loose($0, escapeAll: escapeAll) }.joined(separator: ", ") + " ]"
    case .string(let s): return str(s)
    default: return canonical(v)
    }
}

private extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}

private struct JSONParseError: Error, CustomStringConvertible {
    var description: String
}

/// RFC 8259 text to a JValue; duplicate keys: the last one wins.
private func parseJSON(_ bytes: [UInt8]) throws -> JValue {
    var i = 0
    func fail(_ what: String) -> JSONParseError { JSONParseError(description: "\(what) at byte \(i)") }
    func ws() { while i < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[i]) { i += 1 } }
    func expect(_ c: UInt8) throws {
        ws()
        guard i < bytes.count, bytes[i] == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
        i += 1
    }
    func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16) else { throw fail("bad \\u escape") }
        i += 4
        return v
    }
    func string() throws -> String {
        try expect(UInt8(ascii: "\""))
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            i += 1
            if c == UInt8(ascii: "\"") { break }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard i < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var v = try hex4()
                if (0xD800..<0xDC00).contains(v), i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                    i += 2
                    let low = try hex4()
                    v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let s = Unicode.Scalar(v) else { throw fail("bad scalar \(v)") }
                out += Array(String(s).utf8)
            default: throw fail("bad escape")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
    func value() throws -> JValue {
        ws()
        guard i < bytes.count else { throw fail("unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var members: [(key: String, value: JValue)] = []
            ws()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object([]) }
            while true {
                ws()
                let k = try string()
                try expect(UInt8(ascii: ":"))
                let v = try value()
                members.removeAll { sameKey($0.key, k) }
                members.append((k, v))
                ws()
                if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "}"))
                return .object(members)
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JValue] = []
            ws()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array([]) }
            while true {
                items.append(try value())
                ws()
                if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                try expect(UInt8(ascii: "]"))
                return .array(items)
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            for (word, v) in [("true", JValue.bool(true)), ("false", .bool(false)), ("null", .null)] {
                let w = Array(word.utf8)
                if i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w { i += w.count; return v }
            }
            throw fail("bad literal")
        default:
            let start = i
            while i < bytes.count, "+-0123456789.eE".utf8.contains(bytes[i]) { i += 1 }
            guard i > start else { throw fail("unexpected character") }
            return .number(String(decoding: bytes[start..<i], as: UTF8.self))
        }
    }
    let v = try value()
    ws()
    guard i == bytes.count else { throw fail("trailing characters") }
    return v
}

private func jsonGet(_ v: JValue, _ path: ArraySlice<String>) -> JValue? {
    guard let first = path.first else { return v }
    guard case .object(let members) = v, let m = members.last(where: { sameKey($0.key, first) }) else { return nil }
    return jsonGet(m.value, path.dropFirst())
}

/// Sets `path` to `value`; a missing or non-object step on the way becomes an object.
private func jsonSet(_ v: JValue, _ path: ArraySlice<String>, _ value: JValue) -> JValue {
    guard let first = path.first else { return value }
    var members: [(key: String, value: JValue)] = []
    if case .object(let m) = v { members = m }
    if let at = members.firstIndex(where: { sameKey($0.key, first) }) {
        members[at].value = jsonSet(members[at].value, path.dropFirst(), value)
    } else {
        members.append((first, jsonSet(.object([]), path.dropFirst(), value)))
    }
    return .object(members)
}

private func jsonRemove(_ v: JValue, _ path: ArraySlice<String>) -> JValue {
    guard let first = path.first, case .object(var members) = v else { return v }
    guard let at = members.firstIndex(where: { sameKey($0.key, first) }) else { return v }
    if path.count == 1 { members.remove(at: at) } else { members[at].value = jsonRemove(members[at].value, path.dropFirst()) }
    return .object(members)
}

/// Every member path (not the root), with whether its value is an object.
private func jsonPaths(_ v: JValue, prefix: [String] = []) -> [(path: [String], isObject: Bool)] {
    guard case .object(let members) = v else { return [] }
    var out: [(path: [String], isObject: Bool)] = []
    for m in members {
        let p = prefix + [m.key]
        out.append((p, m.value.isObject))
        out += jsonPaths(m.value, prefix: p)
    }
    return out
}

// MARK: - Text helpers

/// The exact bytes of each extended grapheme cluster, or nil when the bytes are not UTF-8.
private func graphemeBytes(_ bytes: [UInt8]) -> [[UInt8]]? {
    guard let s = String(validating: bytes, as: UTF8.self) else { return nil }
    return s.map { Array(String($0).utf8) }
}

private func occurrences(of needle: [UInt8], in haystack: [UInt8]) -> Int {
    guard !needle.isEmpty, needle.count <= haystack.count else { return 0 }
    var n = 0
    var i = 0
    let first = needle[0]
    while i + needle.count <= haystack.count {
        if haystack[i] == first, haystack[i..<(i + needle.count)].elementsEqual(needle) { n += 1; i += needle.count } else { i += 1 }
    }
    return n
}

private func readable(_ bytes: [UInt8], limit: Int = 600) -> String {
    let s = String(decoding: bytes, as: UTF8.self)
    return s.count > limit ? String(s.prefix(limit)).debugDescription + "… (\(bytes.count) bytes)" : s.debugDescription
}

private let fillers = ["é", "e\u{301}", "漢字", "👍🏽", "👨‍👩‍👧", " ", "ab", "\n", "ß", "x", ".,"]
private let keyNames = ["a", "b", "c", "é", "漢字", "👍🏽", "a b"]
private let numberPool = ["0", "-7", "42", "1.50", "2e10", "-0.5", "1E-3", "123456789012345678901234567890"]
private let stringPool = ["", "plain", "é", "e\u{301}", "漢字", "👍🏽", "👨‍👩‍👧", "q\"uote", "back\\slash", "line\nbreak", "tab\t"]

// MARK: - One seeded run

private final class TextJSONRun {
    struct Abort: Error {}

    struct Bundle {
        var path: String
        /// Per receiver, the first round in which it may be delivered.
        var due: [Int]
        /// For a delta snapshot, the vector a replica must hold to apply it (a replica below
        /// it refuses it, with exit status 65, as it must); nil for any other bundle.
        var deltaBase: VersionVector? = nil
    }

    struct Token {
        var label: String
        var row: String
        var graphemes: [[UInt8]]
        var bytes: [UInt8] { graphemes.flatMap { $0 } }
        /// Some replica deleted part or all of it.
        var touched = false
        /// Some replica deleted all of it.
        var deletedWhole = false
    }

    struct UniqueKey {
        var owner: Int
        var row: String
        var path: [String]
        var value: JValue
        var step: Int
    }

    /// A removal, or a set of a shared path (which may replace a subtree).
    struct Clobber {
        var replica: Int
        var row: String
        var path: [String]
        var step: Int
    }

    let seed: UInt64
    var rng: SplitMix64
    let tmp: TempDir
    var log: [String] = []

    var count = 0
    var dbs: [String] = []
    let rowIDs = ["d0", "d1"]
    var pool: [Bundle] = []
    var delivered: [Set<String>] = []
    /// Cells ("row/column") a replica edited since its last export (which seals them).
    var unsealed: [Set<String>] = []
    var exportCounter = 0

    var tokens: [Token] = []
    var tokenByFirstGrapheme: [[UInt8]: Int] = [:]
    var tokenCounter: [Int] = []
    var nextScalar: UInt32 = 0x20000
    var knownGraphemes: Set<[UInt8]> = []
    var uniqueKeys: [UniqueKey] = []
    var clobbers: [Clobber] = []
    var keyCounter: [Int] = []
    var step = 0

    /// Only the text half of the property: JSON cells are not edited or checked.
    let textOnly: Bool
    /// Every replica declares the group's size, so tombstones are collected.
    let collecting: Bool

    var suite: String { collecting ? "CollectingPropertyTests" : textOnly ? "TextPropertyTests" : "TextJSONPropertyTests" }

    /// Runs one seed, recording what fails with the seed and how to replay it.
    static func check(seed: UInt64, textOnly: Bool = false, collecting: Bool = false) throws {
        if let problem = PropertySeeds.plan().problem { Issue.record(Comment(rawValue: problem)) }
        let run = TextJSONRun(seed: seed, textOnly: textOnly, collecting: collecting)
        defer { run.writeLog() }
        do {
            try run.execute()
        } catch is Abort {
            // Already recorded, with the seed.
        } catch {
            run.record("unexpected error: \(error)")
        }
    }

    init(seed: UInt64, textOnly: Bool = false, collecting: Bool = false) {
        self.seed = seed
        self.textOnly = textOnly
        self.collecting = collecting
        var mixer = SplitMix64(seed: seed ^ 0x7E87_0150_0000_0000)
        rng = SplitMix64(seed: mixer.next())
        tmp = TempDir("bundlesync-\(textOnly ? "text" : "textjson")-seed\(seed)")
        log = ["# \(suite) seed \(seed): every application write and bundlesync call in order",
               "# binary: \(CLI.binary)", "# directory: \(tmp.path)"]
    }

    // MARK: reporting

    func record(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let keep = TempDir.keepsFiles
        let text = """
            [seed \(seed)] \(message)
              replay: \(PropertySeeds.replayCommand(seed, suite: suite))
              files:  \(keep ? "kept in \(tmp.path) (log.txt lists every step)" : "add BUNDLESYNC_KEEP_TEMP=1 to keep the run's directory and its log.txt")
            """
        Issue.record(Comment(rawValue: text), sourceLocation: sourceLocation)
    }

    func check(_ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
        if !condition { record(message(), sourceLocation: sourceLocation) }
    }

    func writeLog() {
        try? (log.joined(separator: "\n") + "\n").write(toFile: tmp.file("log.txt"), atomically: true, encoding: .utf8)
    }

    // MARK: randomness

    func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &rng) }
    func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    func pick<T>(_ a: [T]) -> T { a[int(0..<a.count)] }

    // MARK: running things

    @discardableResult
    func bs(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        log.append("bundlesync " + args.map { "'\($0)'" }.joined(separator: " "))
        let r = try CLI.run(args)
        for line in r.stderr.split(separator: "\n").prefix(12) { log.append("#   \(line)") }
        if r.status != 0 {
            record("bundlesync \(args.joined(separator: " ")) exited \(r.status)\nstderr: \(r.stderr)\nstdout: \(r.stdout.prefix(2000))",
                   sourceLocation: sourceLocation)
            throw Abort()
        }
        // Every replica is counted, so no write can be late and no text collected elsewhere
        // can still show here.
        if collecting, r.stderr.contains(" late: ") || r.stderr.contains("still showed") || r.stderr.contains("have written to this group") {
            record("bundlesync \(args.joined(separator: " ")) reported a write as late, or text collected elsewhere, though every replica is counted:\n\(r.stderr)",
                   sourceLocation: sourceLocation)
        }
        return r.trimmedOut
    }

    func sql(_ r: Int, _ statement: String, _ args: [SQLValue] = []) throws {
        log.append("sqlite r\(r): \(statement) -- " + args.map { v -> String in
            if case .text(let b) = v { return readable(b, limit: 400) }
            return v.display
        }.joined(separator: ", "))
        do {
            try Database(path: dbs[r]).run(statement, args)
        } catch {
            record("application SQL failed on r\(r): \(error)\nSQL: \(statement)")
            throw Abort()
        }
    }

    func cell(_ db: String, _ row: String, _ column: String) throws -> SQLValue {
        do {
            guard let v = try Database(path: db).rows("SELECT \(column) FROM docs WHERE id = ?", [.text(row)]).first?.first else {
                record("\(db): row '\(row)' is missing")
                throw Abort()
            }
            return v
        } catch let e as Abort { throw e } catch {
            record("reading \(db) failed: \(error)")
            throw Abort()
        }
    }

    func cellHex(_ db: String, _ row: String, _ column: String) throws -> String {
        let v = try Database(path: db).rows("SELECT quote(typeof(\(column))) || ':' || coalesce(hex(\(column)), '') FROM docs WHERE id = ?", [.text(row)])
        guard case .text(let b)? = v.first?.first else { return "(no row)" }
        return String(decoding: b, as: UTF8.self)
    }

    /// The merge-state table of `docs`.
    func mergeTable(_ db: String) throws -> String {
        guard case .text(let name)? = try Database(path: db).rows("SELECT name FROM sqlite_schema WHERE name LIKE '\\_bundlesync\\_merge\\_%' ESCAPE '\\'").first?.first else {
            record("\(db) has no merge-state table")
            throw Abort()
        }
        return Database.quote(String(decoding: name, as: UTF8.self))
    }

    func status(_ db: String) throws -> [String: Any] {
        let text = try bs(["status", db, "--json"])
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            record("status --json of \(db) is not a JSON object:\n\(text.prefix(2000))")
            throw Abort()
        }
        return obj
    }

    // MARK: the property

    func execute() throws {
        count = 2 + int(0..<3)
        let rounds = max(1, Int(environment["BUNDLESYNC_PROPERTY_ROUNDS"] ?? "") ?? 4)
        tokenCounter = Array(repeating: 0, count: count)
        keyCounter = Array(repeating: 0, count: count)
        for f in fillers { graphemeBytes(Array(f.utf8))!.forEach { knownGraphemes.insert($0) } }
        _ = tmp.dir("bundles")
        _ = tmp.dir("vectors")
        _ = tmp.dir("final")

        for r in 0..<count {
            let db = tmp.file("r\(r).db")
            dbs.append(db)
            delivered.append([])
            unsealed.append([])
            log.append("sqlite r\(r): CREATE TABLE docs(id TEXT PRIMARY KEY, body TEXT, meta TEXT)")
            try App.execute(db, "CREATE TABLE docs(id TEXT PRIMARY KEY, body TEXT, meta TEXT);")
            try bs(["init", db, "--name", "r\(r)"])
            try bs(["track", db, "docs", "--text", "body", "--json", "meta"])
            if collecting { try bs(["config", db, "fleet", String(count)]) }
        }
        // r0 writes the documents everyone then edits; everyone starts from them.
        for row in rowIDs {
            let t1 = token(owner: 0, row: row), t2 = token(owner: 0, row: row)
            let body = "Base " + (t1 ?? "") + " é 漢字 👍🏽 e\u{301}\n" + (t2 ?? "") + " 👨‍👩‍👧 end."
            graphemeBytes(Array(body.utf8))!.forEach { knownGraphemes.insert($0) }
            let meta = #"{"base": {"x": 1, "y": [1, "é"]}, "s": "e\#u{301}"}"#
            try sql(0, "INSERT INTO docs(id, body, meta) VALUES (?, ?, ?)", [.text(row), .text(body), .text(meta)])
        }
        let first = try bs(["export", dbs[0], "--full", "-o", tmp.file("bundles/base.bsync")])
        for r in 1..<count { try bs(["import", dbs[r], first]) }
        pool.append(Bundle(path: first, due: Array(repeating: 0, count: count)))

        for round in 0..<rounds {
            log.append("# ---- round \(round)")
            for r in Array(0..<count).shuffled(using: &rng) { try editScript(r) }
            for r in Array(0..<count).shuffled(using: &rng) { try export(r, round: round) }
            for r in Array(0..<count).shuffled(using: &rng) {
                try deliver(to: r, round: round)
                if chance(0.4) { try editScript(r) }
            }
        }

        // A key set after every other edit, which nothing contests, so the JSON survival
        // check always has one to check whatever the scripts did.
        if !textOnly { for row in rowIDs { try jsonEdit(0, row: row, unique: true) } }

        // Final exchange until quiescent: everyone exports everything, everyone imports all of it, twice.
        log.append("# ---- final exchange")
        var finals: [String] = []
        for pass in 0..<2 {
            finals = []
            for r in 0..<count {
                finals.append(try bs(["export", dbs[r], "--full", "-o", tmp.file("final/pass\(pass)-r\(r).bsync")]))
                unsealed[r] = []
            }
            for r in 0..<count { try bs(["import", dbs[r]] + finals.shuffled(using: &rng)) }
        }

        // 1. Nothing parked; byte-identical cells; equal digests.
        for r in 0..<count {
            let parked = try status(dbs[r])["parked"] as? [Any] ?? []
            check(parked.isEmpty, "r\(r) still has parked batches after the full exchange: \(parked)")
        }
        var reference: [String: String] = [:]
        for row in rowIDs {
            for column in ["body", "meta"] {
                let hexes = try dbs.map { try cellHex($0, row, column) }
                reference["\(row)/\(column)"] = hexes[0]
                if Set(hexes).count != 1 {
                    var lines = ["after the full exchange, \(column) of '\(row)' differs between replicas:"]
                    for r in 0..<count {
                        let v = try cell(dbs[r], row, column)
                        if case .text(let b) = v { lines.append("  r\(r): \(readable(b))") } else { lines.append("  r\(r): \(v.display)") }
                    }
                    record(lines.joined(separator: "\n"))
                }
            }
        }
        let digests = try dbs.map { try bs(["digest", $0]) }
        check(Set(digests).count == 1, "digests differ after the full exchange: "
              + digests.enumerated().map { "r\($0.offset)=\($0.element)" }.joined(separator: " "))

        // 2. Text: valid UTF-8, nothing split, every untouched token whole exactly once.
        var checkedTokens = 0
        for row in rowIDs {
            guard case .text(let bytes) = try cell(dbs[0], row, "body") else {
                record("body of '\(row)' is not TEXT: \(try cell(dbs[0], row, "body").display)")
                continue
            }
            guard let graphemes = graphemeBytes(bytes) else {
                record("body of '\(row)' is not valid UTF-8: \(hexString(bytes))")
                continue
            }
            let strange = graphemes.filter { !knownGraphemes.contains($0) }
            check(strange.isEmpty, "body of '\(row)' holds grapheme clusters nobody inserted (split characters?): "
                  + strange.prefix(8).map { "\(readable($0)) [\(hexString($0))]" }.joined(separator: ", ") + "\nin \(readable(bytes))")
            for t in tokens where t.row == row {
                let n = occurrences(of: t.bytes, in: bytes)
                if !t.touched {
                    checkedTokens += 1
                    check(n == 1, "token \(t.label) \(readable(t.bytes)) was deleted by nobody but appears \(n) times in body of '\(row)': \(readable(bytes, limit: 2000))")
                } else if t.deletedWhole {
                    check(n == 0, "token \(t.label) \(readable(t.bytes)) was deleted whole but appears \(n) times in body of '\(row)': \(readable(bytes, limit: 2000))")
                }
            }
        }

        // 3. JSON: canonical, and every uncontested unique key present with its value.
        var checkedKeys = 0
        for row in rowIDs {
            guard case .text(let bytes) = try cell(dbs[0], row, "meta") else {
                record("meta of '\(row)' is not TEXT: \(try cell(dbs[0], row, "meta").display)")
                continue
            }
            let doc: JValue
            do { doc = try parseJSON(bytes) } catch {
                record("meta of '\(row)' is not JSON (\(error)): \(readable(bytes))")
                continue
            }
            check(Array(canonical(doc).utf8) == bytes, "meta of '\(row)' is not in canonical form:\n  stored:    \(readable(bytes))\n  canonical: \(canonical(doc).debugDescription)")
            for k in uniqueKeys where k.row == row {
                let contested = clobbers.contains { c in
                    c.row == row && c.path.count <= k.path.count && zip(c.path, k.path).allSatisfy { sameKey($0.0, $0.1) }
                        && (c.replica != k.owner || c.step > k.step)
                }
                if contested { continue }
                checkedKeys += 1
                let got = jsonGet(doc, k.path[...])
                check(got.map(canonical) == canonical(k.value),
                      "r\(k.owner) set \(k.path) of meta '\(row)' to \(canonical(k.value)) and nobody removed or overwrote it, "
                      + "but the merged document holds \(got.map(canonical) ?? "nothing") there: \(readable(bytes))")
            }
        }
        check(checkedTokens > 0, "test self-check: no token was left untouched, so the text survival check checked nothing")
        check(textOnly || checkedKeys > 0, "test self-check: no unique JSON key was left uncontested, so the JSON survival check checked nothing")

        // With collection on, every replica holds every deletion now: once prune has
        // collected, no text tombstone is left, and nothing visible changed.
        if collecting {
            for r in 0..<count {
                try bs(["prune", dbs[r]])
                let states = try Database(path: dbs[r]).rows("SELECT col, state FROM \(try mergeTable(dbs[r]))")
                for row in states {
                    guard row[0].integer == 0, case .blob(let b) = row[1] else { continue }
                    guard case .text(let s) = try CellState.decodeStored(.text, b, unknownDeletionsAt: 0) else { continue }
                    let left = s.runs.filter(\.deleted).reduce(0) { $0 + $1.length }
                    check(left == 0, "r\(r) still holds \(left) deleted characters in a body after every replica holds every deletion and prune ran")
                }
                for row in rowIDs {
                    for column in ["body", "meta"] {
                        check(try cellHex(dbs[r], row, column) == reference["\(row)/\(column)"], "prune changed \(column) of '\(row)' on r\(r)")
                    }
                }
            }
        }

        // 4. Importing every bundle again changes nothing.
        log.append("# ---- re-import everything")
        let everything = pool.map(\.path) + finals
        for r in 0..<count {
            try bs(["import", dbs[r]] + everything.shuffled(using: &rng))
            for row in rowIDs {
                for column in ["body", "meta"] {
                    let h = try cellHex(dbs[r], row, column)
                    check(h == reference["\(row)/\(column)"], "re-importing every bundle changed \(column) of '\(row)' on r\(r)")
                }
            }
            let d = try bs(["digest", dbs[r]])
            check(d == digests[0], "re-importing every bundle changed r\(r)'s digest from \(digests[0]) to \(d)")
        }
    }

    // MARK: edits

    /// A token of three or four characters used nowhere else; nil when the pool is exhausted.
    func token(owner r: Int, row: String) -> String? {
        var scalars: [String] = []
        for _ in 0..<(3 + int(0..<2)) {
            if nextScalar == 0x2A6E0 { nextScalar = 0x3400 }
            if nextScalar == 0x4DC0 { return nil }
            scalars.append(String(Unicode.Scalar(nextScalar)!))
            nextScalar += 1
        }
        if chance(0.3) { scalars[1] += "\u{301}" } // a combining mark inside the token
        tokenCounter[r] += 1
        let text = scalars.joined()
        let t = Token(label: "r\(r)#\(tokenCounter[r])", row: row, graphemes: graphemeBytes(Array(text.utf8))!)
        tokenByFirstGrapheme[t.graphemes[0]] = tokens.count
        tokens.append(t)
        t.graphemes.forEach { knownGraphemes.insert($0) }
        return text
    }

    /// What an insertion types: a token, sometimes with multi-byte neighbours.
    func piece(owner r: Int, row: String) -> String {
        var s = ""
        if chance(0.5) { s += pick(fillers) }
        if let t = token(owner: r, row: row) { s += t } else { s += pick(fillers) }
        if chance(0.5) { s += pick(fillers) }
        return s
    }

    /// At most one edit per cell between two seals (see the header).
    func editScript(_ r: Int) throws {
        var cells: [(String, String)] = []
        for row in rowIDs {
            for column in textOnly ? ["body"] : ["body", "meta"] where !unsealed[r].contains("\(row)/\(column)") && chance(0.7) {
                cells.append((row, column))
            }
        }
        for (row, column) in cells.shuffled(using: &rng) {
            if column == "body" { try textEdit(r, row: row) } else { try jsonEdit(r, row: row) }
            unsealed[r].insert("\(row)/\(column)")
        }
    }

    /// Where the replica sees whole tokens: (token index, first grapheme, end).
    func tokenSpans(_ g: [[UInt8]], row: String, on r: Int) -> [(Int, Int, Int)] {
        var spans: [(Int, Int, Int)] = []
        var seen: Set<Int> = []
        for (i, x) in g.enumerated() {
            guard let t = tokenByFirstGrapheme[x], tokens[t].row == row else { continue }
            let tg = tokens[t].graphemes
            guard i + tg.count <= g.count, Array(g[i..<(i + tg.count)]) == tg else { continue }
            check(!seen.contains(t), "r\(r) sees token \(tokens[t].label) twice in body of '\(row)'")
            seen.insert(t)
            spans.append((t, i, i + tg.count))
        }
        return spans
    }

    func textEdit(_ r: Int, row: String) throws {
        guard case .text(let bytes) = try cell(dbs[r], row, "body") else {
            record("r\(r): body of '\(row)' is not TEXT: \(try cell(dbs[r], row, "body").display)")
            throw Abort()
        }
        guard var g = graphemeBytes(bytes) else {
            record("r\(r): body of '\(row)' is not valid UTF-8: \(hexString(bytes))")
            throw Abort()
        }
        let spans = tokenSpans(g, row: row, on: r)
        func deleteRange() -> Int {
            let s = int(0..<g.count)
            let e = s + 1 + int(0..<min(6, g.count - s))
            for (t, ts, te) in spans where ts < e && s < te {
                tokens[t].touched = true
                if s <= ts && te <= e { tokens[t].deletedWhole = true }
            }
            g.removeSubrange(s..<e)
            return s
        }
        func typed() -> [[UInt8]] { graphemeBytes(Array(piece(owner: r, row: row).utf8))! }
        let kind = g.isEmpty ? 0 : int(0..<100)
        switch kind {
        case 0..<45: // insert, often at the very start or end, where concurrent inserts meet
            let allowed = (0...g.count).filter { p in !spans.contains { $0.1 < p && p < $0.2 } }
            let p = chance(0.3) ? 0 : chance(0.2) ? g.count : pick(allowed)
            g.insert(contentsOf: typed(), at: p)
        case 45..<75: // delete 1-6 grapheme clusters the replica sees
            _ = deleteRange()
        default: // replace
            let s = deleteRange()
            g.insert(contentsOf: typed(), at: s)
        }
        try sql(r, "UPDATE docs SET body = ? WHERE id = ?", [.text(g.flatMap { $0 }), .text(row)])
    }

    func randomLeaf(depth: Int = 0) -> JValue {
        switch int(0..<100) {
        case 0..<30: return .number(pick(numberPool))
        case 30..<60: return .string(pick(stringPool))
        case 60..<70: return .bool(chance(0.5))
        case 70..<78: return .null
        default:
            return .array((0..<int(0..<4)).map { _ in depth < 1 && chance(0.2) ? randomLeaf(depth: depth + 1) : scalar() })
        }
    }

    func scalar() -> JValue {
        switch int(0..<4) {
        case 0: return .number(pick(numberPool))
        case 1: return .string(pick(stringPool))
        case 2: return .bool(chance(0.5))
        default: return .null
        }
    }

    /// A leaf, or (room permitting) an object of 1-2 members.
    func randomValue(room: Int) -> JValue {
        guard room > 0, chance(0.3) else { return randomLeaf() }
        var members: [(key: String, value: JValue)] = []
        for _ in 0..<(1 + int(0..<2)) {
            let k = pick(keyNames)
            members.removeAll { sameKey($0.key, k) }
            members.append((k, randomValue(room: room - 1)))
        }
        return .object(members)
    }

    /// - Parameter unique: Sets a key only this replica ever sets, at the top of the document.
    func jsonEdit(_ r: Int, row: String, unique: Bool = false) throws {
        guard case .text(let bytes) = try cell(dbs[r], row, "meta") else {
            record("r\(r): meta of '\(row)' is not TEXT: \(try cell(dbs[r], row, "meta").display)")
            throw Abort()
        }
        var doc: JValue
        do { doc = try parseJSON(bytes) } catch {
            record("r\(r): meta of '\(row)' is not JSON (\(error)): \(readable(bytes))")
            throw Abort()
        }
        guard doc.isObject else {
            record("r\(r): meta of '\(row)' is not a JSON object: \(readable(bytes))")
            throw Abort()
        }
        step += 1
        let paths = jsonPaths(doc)
        switch unique ? 0 : int(0..<100) {
        case 0..<40: // a key only this replica ever sets, with a leaf value
            var parent: [String] = []
            let objects = paths.filter { $0.isObject && $0.path.count <= 2 }.map(\.path)
            if unique {
                // At the top, where only a removal of the key itself contests it.
            } else if chance(0.3), !objects.isEmpty { parent = pick(objects) } else if chance(0.4) {
                parent = (0..<(1 + int(0..<2))).map { _ in pick(keyNames) }
            }
            keyCounter[r] += 1
            let key = "u\(r)-\(keyCounter[r])" + pick(["", "é", "漢", "👍🏽"])
            let value = randomLeaf()
            doc = jsonSet(doc, (parent + [key])[...], value)
            uniqueKeys.append(UniqueKey(owner: r, row: row, path: parent + [key], value: value, step: step))
        case 40..<75: // a shared path, contested by everyone
            let path = (0..<(1 + int(0..<3))).map { _ in pick(keyNames) }
            doc = jsonSet(doc, path[...], randomValue(room: 3 - path.count))
            clobbers.append(Clobber(replica: r, row: row, path: path, step: step))
        default: // remove a key the replica sees
            guard !paths.isEmpty else { return }
            let path = pick(paths).path
            doc = jsonRemove(doc, path[...])
            clobbers.append(Clobber(replica: r, row: row, path: path, step: step))
        }
        let text = chance(0.3) ? loose(doc, escapeAll: chance(0.5)) : canonical(doc)
        try sql(r, "UPDATE docs SET meta = ? WHERE id = ?", [.text(text), .text(row)])
    }

    // MARK: exports and deliveries

    func export(_ r: Int, round: Int) throws {
        exportCounter += 1
        var args = ["export", dbs[r], "-o", tmp.file("bundles/e\(exportCounter)-r\(r)-round\(round).bsync")]
        switch int(0..<4) {
        case 0: args.append("--full")
        case 1:
            // Only what one other replica lacks right now: parks on replicas lacking more.
            let other = pick(Array(0..<count).filter { $0 != r })
            let file = tmp.file("vectors/r\(other)-\(exportCounter).json")
            try bs(["status", dbs[other], "--json"]).write(toFile: file, atomically: true, encoding: .utf8)
            args += ["--since", file]
        default: break // what the least up-to-date known peer lacks
        }
        let path = try bs(args)
        unsealed[r] = []
        var due: [Int] = []
        for _ in 0..<count {
            let delay = int(0..<10)
            due.append(round + (delay < 5 ? 0 : delay < 8 ? 1 : 2))
        }
        let header = try BundleReader(path: path).header
        pool.append(Bundle(path: path, due: due, deltaBase: header.isDeltaSnapshot ? header.baseVector : nil))
    }

    /// What replica `r` holds now.
    func vector(_ r: Int) throws -> VersionVector {
        let status = try JSONSerialization.jsonObject(with: Data(try bs(["status", dbs[r], "--json"]).utf8)) as? [String: Any]
        var v = VersionVector()
        for (id, n) in status?["vector"] as? [String: Any] ?? [:] {
            if let id = ReplicaID(hex: id), let n = n as? Int { v[id] = UInt64(n) }
        }
        return v
    }

    func deliver(to r: Int, round: Int) throws {
        if chance(0.15) { return } // offline this round
        var batch: [String] = []
        // A delta snapshot is delivered only where it fits: a replica that lacks part of its
        // base refuses it (DeltaSnapshotTests), and the rows it carries come again later.
        let holds = try vector(r)
        for b in pool where b.due[r] <= round && b.deltaBase.map(holds.dominates) != false {
            if delivered[r].contains(b.path) ? chance(0.15) : chance(0.6) { batch.append(b.path) }
        }
        if let dup = batch.randomElement(using: &rng), chance(0.3) { batch.append(dup) }
        if chance(0.35) {
            // Newest first, one bundle per call: later batches arrive before earlier ones.
            let order = Dictionary(pool.enumerated().map { ($1.path, $0) }, uniquingKeysWith: max)
            batch.sort { order[$0]! > order[$1]! }
            for path in batch { try bs(["import", dbs[r], path]) }
        } else {
            batch.shuffle(using: &rng)
            var i = 0
            while i < batch.count {
                let n = chance(0.5) ? batch.count - i : 1 + int(0..<(batch.count - i))
                try bs(["import", dbs[r]] + batch[i..<(i + n)])
                i += n
            }
        }
        for p in batch { delivered[r].insert(p) }
    }
}
