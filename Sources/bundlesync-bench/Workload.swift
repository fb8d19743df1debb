import BundleSync
import Foundation

// The benchmark's data: two tables filled from a seed, and the application writes made on
// top of them. Everything is a pure function of the seed and the row index, so every copy
// of the database (replica, baselines) receives exactly the same rows and the same writes.

extension SplitMix64 {
    /// Uniform in `0..<n` (n > 0; the tiny modulo bias does not matter here).
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    mutating func bool(_ probability: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < probability }

    mutating func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(n + 8)
        while out.count < n {
            var x = next()
            for _ in 0..<8 { out.append(UInt8(truncatingIfNeeded: x)); x >>= 8 }
        }
        out.removeLast(out.count - n)
        return out
    }
}

/// The SplitMix64 finalizer: a bijection on 64-bit integers, so distinct indices give
/// distinct, random-looking keys.
@inline(__always)
func mix64(_ x: UInt64) -> UInt64 {
    var z = x
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A table of the workload: its name, primary key and other columns.
struct TableSpec {
    let name: String
    let keyColumns: [String]
    let columns: [String]
    let createSQL: String

    var allColumns: [String] { keyColumns + columns }
    var keyMatch: String { keyColumns.map { "\($0) = ?" }.joined(separator: " AND ") }
    var insertSQL: String {
        "INSERT INTO \(name)(\(allColumns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: allColumns.count).joined(separator: ", ")))"
    }
    var upsertSQL: String {
        insertSQL + " ON CONFLICT(\(keyColumns.joined(separator: ", "))) DO UPDATE SET "
            + columns.map { "\($0) = excluded.\($0)" }.joined(separator: ", ")
    }
    var selectByKeySQL: String { "SELECT \(allColumns.joined(separator: ", ")) FROM \(name) WHERE \(keyMatch)" }
    var deleteSQL: String { "DELETE FROM \(name) WHERE \(keyMatch)" }
    func updateSQL(columns idx: [Int]) -> String {
        "UPDATE \(name) SET \(idx.map { "\(columns[$0]) = ?" }.joined(separator: ", ")) WHERE \(keyMatch)"
    }

    static let items = TableSpec(
        name: "items", keyColumns: ["id"], columns: ["n", "r", "t", "j", "b"],
        createSQL: "CREATE TABLE items(id TEXT PRIMARY KEY, n INTEGER, r REAL, t TEXT, j TEXT, b BLOB)")
    static let events = TableSpec(
        name: "events", keyColumns: ["station", "seq"], columns: ["v", "note"],
        createSQL: "CREATE TABLE events(station TEXT, seq INTEGER, v REAL, note TEXT, PRIMARY KEY(station, seq)) WITHOUT ROWID")
    static let all = [items, events]
}

/// One application write.
struct Op {
    enum Kind { case insert, update, delete }
    var table: Int // index into TableSpec.all
    var kind: Kind
    var key: [SQLValue]
    /// For an update: the indices (into `columns`) written; for an insert: all of them.
    var columns: [Int]
    var values: [SQLValue]
}

/// What the mixed delta changed, by table.
struct DeltaPlan {
    var ops: [Op] = []
    var updated = [0, 0]
    var deleted = [0, 0]
    var inserted = [0, 0]
    var updatedCells = 0
    /// Every key the delta touched, per table, each once.
    var touchedKeys: [[[SQLValue]]] = [[], []]
    /// Keys whose rows exist after the delta (updated or inserted), per table.
    var liveKeys: [[[SQLValue]]] = [[], []]
    /// Keys deleted, per table.
    var deletedKeys: [[[SQLValue]]] = [[], []]
}

/// The seeded data set.
struct Workload {
    let seed: UInt64
    let itemCount: Int
    let eventCount: Int
    let stations: Int

    init(rows: Int, seed: UInt64) {
        self.seed = seed
        itemCount = max(1, rows * 6 / 10)
        eventCount = max(1, rows - itemCount)
        // About 200 readings per station, so "seq % 100" style selections hit ~1%.
        stations = max(1, eventCount / 200)
    }

    var rows: Int { itemCount + eventCount }

    private static let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
        "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
        "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "river", "valley", "harbor", "clinic",
        "survey", "station", "sample", "reading", "pump", "valve", "filter", "battery", "solar", "panel",
        "north", "south", "east", "west", "upper", "lower", "inlet", "outlet", "checked", "pending",
        "ok", "warn", "fault", "spare", "stock", "order", "crate", "pallet", "dose", "ward",
        "bed", "visit", "note", "log",
    ]

    private func rng(_ table: UInt64, _ index: Int, _ version: Int) -> SplitMix64 {
        SplitMix64(seed: mix64(seed ^ mix64(table &* 0x1_0000_0001 ^ UInt64(index) ^ (UInt64(version) << 40))))
    }

    private func words(_ r: inout SplitMix64, _ lo: Int, _ hi: Int) -> String {
        (0..<(lo + r.int(hi - lo + 1))).map { _ in Self.words[r.int(Self.words.count)] }.joined(separator: " ")
    }

    // MARK: items

    func itemKey(_ i: Int) -> SQLValue {
        let x = mix64(UInt64(i) &+ mix64(seed))
        let hex = String(x, radix: 16)
        return .text(String(repeating: "0", count: 16 - hex.count) + hex)
    }

    /// The value of column `c` (0 n, 1 r, 2 t, 3 j, 4 b) of item `i` at `version`.
    func itemValue(_ i: Int, column c: Int, version: Int) -> SQLValue {
        var r = rng(1, i, version &* 8 &+ c)
        switch c {
        case 0: return .integer(Int64(r.int(1_000_000)))
        case 1: return .real(Double(r.int(10_000_000)) / 1000)
        case 2: return .text(words(&r, 2, 6))
        case 3:
            let tags = (0..<r.int(4)).map { _ in "\"\(Self.words[r.int(Self.words.count)])\"" }.joined(separator: ",")
            return .text("{\"kind\":\"\(Self.words[r.int(Self.words.count)])\",\"qty\":\(r.int(500)),\"price\":\(Double(r.int(100_000)) / 100),\"tags\":[\(tags)],\"active\":\(r.bool(0.8))}")
        default: return .blob(r.bytes(8 + r.int(25)))
        }
    }

    func itemRow(_ i: Int, version: Int = 0) -> [SQLValue] {
        [itemKey(i)] + (0..<5).map { itemValue(i, column: $0, version: version) }
    }

    // MARK: events

    func eventKey(_ e: Int) -> [SQLValue] {
        let s = e % stations
        return [.text("ST-\(String(mix64(UInt64(s) &+ seed) % 46656, radix: 36, uppercase: true))-\(s)"), .integer(Int64(e / stations + 1))]
    }

    /// The value of column `c` (0 v, 1 note) of event `e` at `version`.
    func eventValue(_ e: Int, column c: Int, version: Int) -> SQLValue {
        var r = rng(2, e, version &* 8 &+ c)
        switch c {
        case 0: return .real(Double(r.int(2_000_000)) / 100 - 5000)
        default: return r.bool(0.3) ? .null : .text(words(&r, 1, 4))
        }
    }

    func eventRow(_ e: Int, version: Int = 0) -> [SQLValue] {
        eventKey(e) + (0..<2).map { eventValue(e, column: $0, version: version) }
    }

    func key(table: Int, _ index: Int) -> [SQLValue] { table == 0 ? [itemKey(index)] : eventKey(index) }
    func row(table: Int, _ index: Int, version: Int = 0) -> [SQLValue] {
        table == 0 ? itemRow(index, version: version) : eventRow(index, version: version)
    }
    func value(table: Int, _ index: Int, column: Int, version: Int) -> SQLValue {
        table == 0 ? itemValue(index, column: column, version: version) : eventValue(index, column: column, version: version)
    }
    func count(table: Int) -> Int { table == 0 ? itemCount : eventCount }

    // MARK: writes

    /// The mixed delta: 10% of rows updated (1–3 columns), 2% deleted, 5% new rows, in a
    /// shuffled order as an application would write them.
    func delta(update: Double = 0.10, delete: Double = 0.02, insert: Double = 0.05) -> DeltaPlan {
        var plan = DeltaPlan()
        var r = SplitMix64(seed: mix64(seed ^ 0xDE17A))
        for t in 0..<2 {
            let n = count(table: t)
            let spec = TableSpec.all[t]
            var perm = Array(0..<n)
            let nu = Int((Double(n) * update).rounded()), nd = Int((Double(n) * delete).rounded())
            let ni = Int((Double(n) * insert).rounded())
            // Partial Fisher–Yates: only the first nu + nd positions are needed.
            for i in 0..<min(n, nu + nd) {
                let j = i + r.int(n - i)
                perm.swapAt(i, j)
            }
            for i in 0..<min(n, nu) {
                let idx = perm[i]
                let width = 1 + r.int(min(3, spec.columns.count))
                var cols = Array(0..<spec.columns.count)
                for k in 0..<width { cols.swapAt(k, k + r.int(cols.count - k)) }
                let chosen = Array(cols.prefix(width)).sorted()
                let key = key(table: t, idx)
                plan.ops.append(Op(table: t, kind: .update, key: key, columns: chosen,
                                   values: chosen.map { value(table: t, idx, column: $0, version: 1) }))
                plan.updated[t] += 1
                plan.updatedCells += width
                plan.touchedKeys[t].append(key)
                plan.liveKeys[t].append(key)
            }
            for i in min(n, nu)..<min(n, nu + nd) {
                let key = key(table: t, perm[i])
                plan.ops.append(Op(table: t, kind: .delete, key: key, columns: [], values: []))
                plan.deleted[t] += 1
                plan.touchedKeys[t].append(key)
                plan.deletedKeys[t].append(key)
            }
            for i in 0..<ni {
                let row = row(table: t, n + i)
                let key = Array(row.prefix(spec.keyColumns.count))
                plan.ops.append(Op(table: t, kind: .insert, key: key, columns: Array(0..<spec.columns.count),
                                   values: Array(row.dropFirst(spec.keyColumns.count))))
                plan.inserted[t] += 1
                plan.touchedKeys[t].append(key)
                plan.liveKeys[t].append(key)
            }
        }
        for i in plan.ops.indices.dropLast() { plan.ops.swapAt(i, i + r.int(plan.ops.count - i)) }
        return plan
    }

    /// Application writes for the capture-trigger cost: single-row INSERTs and UPDATEs
    /// (1–3 columns) over both tables. `round` picks fresh keys for the inserts.
    func appWrites(count: Int, round: Int) -> [Op] {
        var r = SplitMix64(seed: mix64(seed ^ 0xA99 ^ UInt64(round) << 32))
        var ops: [Op] = []
        ops.reserveCapacity(count)
        var nextNew = [itemCount + 50_000_000 * (round + 1), eventCount + 50_000_000 * (round + 1)]
        for _ in 0..<count {
            let t = r.bool(0.65) ? 0 : 1
            let spec = TableSpec.all[t]
            if r.bool(0.6) {
                let idx = r.int(self.count(table: t))
                let width = 1 + r.int(min(3, spec.columns.count))
                var cols = Array(0..<spec.columns.count)
                for k in 0..<width { cols.swapAt(k, k + r.int(cols.count - k)) }
                let chosen = Array(cols.prefix(width)).sorted()
                ops.append(Op(table: t, kind: .update, key: key(table: t, idx), columns: chosen,
                              values: chosen.map { value(table: t, idx, column: $0, version: 100 + round) }))
            } else {
                let row = row(table: t, nextNew[t])
                nextNew[t] += 1
                ops.append(Op(table: t, kind: .insert, key: Array(row.prefix(spec.keyColumns.count)),
                              columns: Array(0..<spec.columns.count), values: Array(row.dropFirst(spec.keyColumns.count))))
            }
        }
        return ops
    }
}

extension Workload {
    /// The small-update delta an application typically writes: 10% of rows get one or two
    /// of their small columns updated (items: n, r; events: v, note), 2% are deleted and 5%
    /// are new, shuffled, one statement per row.
    func smallUpdateDelta() -> [Op] {
        var r = SplitMix64(seed: mix64(seed ^ 0x5A11))
        var ops: [Op] = []
        let small = [[0, 1], [0, 1]] // indices into each table's columns
        for t in 0..<2 {
            let n = count(table: t)
            let spec = TableSpec.all[t]
            let nu = Int((Double(n) * 0.10).rounded()), nd = Int((Double(n) * 0.02).rounded())
            let ni = Int((Double(n) * 0.05).rounded())
            var perm = Array(0..<n)
            for i in 0..<min(n, nu + nd) { perm.swapAt(i, i + r.int(n - i)) }
            for i in 0..<min(n, nu) {
                let idx = perm[i]
                let cols = r.bool(0.5) ? small[t] : [small[t][r.int(2)]]
                ops.append(Op(table: t, kind: .update, key: key(table: t, idx), columns: cols,
                              values: cols.map { value(table: t, idx, column: $0, version: 200) }))
            }
            for i in min(n, nu)..<min(n, nu + nd) {
                ops.append(Op(table: t, kind: .delete, key: key(table: t, perm[i]), columns: [], values: []))
            }
            for i in 0..<ni {
                let row = row(table: t, n + 90_000_000 + i)
                ops.append(Op(table: t, kind: .insert, key: Array(row.prefix(spec.keyColumns.count)),
                              columns: Array(0..<spec.columns.count), values: Array(row.dropFirst(spec.keyColumns.count))))
            }
        }
        for i in ops.indices.dropLast() { ops.swapAt(i, i + r.int(ops.count - i)) }
        return ops
    }
}

extension SQLValue {
    /// The value as an SQL literal, as a program writing SQL text would spell it.
    var sqlLiteral: String {
        switch self {
        case .null: return "NULL"
        case .integer(let x): return String(x)
        case .real(let x): return "\(x)"
        case .text(let b): return "'" + String(decoding: b, as: UTF8.self).replacingOccurrences(of: "'", with: "''") + "'"
        case .blob(let b):
            let digits = Array("0123456789abcdef".utf8)
            var hex = [UInt8]()
            hex.reserveCapacity(b.count * 2)
            for byte in b {
                hex.append(digits[Int(byte >> 4)])
                hex.append(digits[Int(byte & 15)])
            }
            return "X'" + String(decoding: hex, as: UTF8.self) + "'"
        }
    }
}

extension Op {
    /// The write as one SQL statement with its values inline, as the `sqlite3` shell runs it.
    var sqlText: String {
        let spec = TableSpec.all[table]
        let match = zip(spec.keyColumns, key).map { "\($0) = \($1.sqlLiteral)" }.joined(separator: " AND ")
        switch kind {
        case .insert:
            return "INSERT INTO \(spec.name)(\(spec.allColumns.joined(separator: ", "))) VALUES (\((key + values).map(\.sqlLiteral).joined(separator: ", ")));"
        case .update:
            return "UPDATE \(spec.name) SET \(zip(columns, values).map { "\(spec.columns[$0]) = \($1.sqlLiteral)" }.joined(separator: ", ")) WHERE \(match);"
        case .delete:
            return "DELETE FROM \(spec.name) WHERE \(match);"
        }
    }
}
