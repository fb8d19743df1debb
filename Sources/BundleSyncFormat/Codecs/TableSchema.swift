import BundleSyncCore
import BundleSyncMerge

/// The synced shape of one table: its key columns and its other columns with their merge
/// rules. Bundles carry it per table, with a fingerprint (`bundlesync-format(5)`, "Tables").
public struct TableSchema: Equatable, Sendable {
    public struct Column: Equatable, Sendable {
        public var name: String
        public var rule: ColumnRule
        public init(name: String, rule: ColumnRule) {
            self.name = name
            self.rule = rule
        }
    }

    public var name: String
    public var keyColumns: [String]
    public var columns: [Column]

    public init(name: String, keyColumns: [String], columns: [Column]) {
        self.name = name
        self.keyColumns = keyColumns
        self.columns = columns
    }

    package func encode(into w: inout ByteWriter) {
        w.string(name)
        w.varint(keyColumns.count)
        keyColumns.forEach { w.string($0) }
        w.varint(columns.count)
        for c in columns {
            w.string(c.name)
            w.u8(c.rule.rawValue)
        }
    }

    package static func decode(from r: inout ByteReader) throws -> TableSchema {
        let name = try r.string("table name", limit: Limits.maxNameBytes)
        let kc = try r.count("key column count", limit: min(Limits.maxColumns, r.remaining))
        var keys: [String] = []
        for _ in 0..<kc { keys.append(try r.string("key column name", limit: Limits.maxNameBytes)) }
        let cc = try r.count("column count", limit: min(Limits.maxColumns, r.remaining / 2))
        var cols: [Column] = []
        for _ in 0..<cc {
            let n = try r.string("column name", limit: Limits.maxNameBytes)
            let raw = try r.u8("column rule")
            guard let rule = ColumnRule(rawValue: raw) else {
                throw BundleSyncError.badData("column '\(shown(n))' of '\(shown(name))' has unknown merge rule \(raw)")
            }
            cols.append(Column(name: n, rule: rule))
        }
        guard kc > 0 else { throw BundleSyncError.badData("table '\(shown(name))' has no key columns") }
        guard Set(keys + cols.map(\.name)).count == kc + cc else {
            throw BundleSyncError.badData("table '\(shown(name))' names a column twice")
        }
        return TableSchema(name: name, keyColumns: keys, columns: cols)
    }

    /// SHA-256 of the canonical encoding; equal on two replicas iff the synced shape is equal.
    public var fingerprint: Digest32 {
        var w = ByteWriter()
        encode(into: &w)
        return Digest32.of(w.bytes)
    }
}
