import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge

/// A table this replica syncs: its synced schema and where its bookkeeping lives.
///
/// Column ordinals are positions in `schema.columns`; they are local to this replica
/// (bundles name columns) and only ever grow, so clocks stored against them stay valid.
public struct TrackedTable: Sendable {
    public let id: Int64
    public var schema: TableSchema
    /// The declared collation of each key column, copied onto the clock and log tables so
    /// they match keys exactly as the user table does.
    package var keyCollations: [String]
    /// For each key column, whether its affinity keeps an integral REAL apart from the
    /// INTEGER of the same value (BLOB affinity: no declared type, or BLOB). SQLite treats
    /// 1 and 1.0 there as one key with two spellings, so such REAL keys are not synced.
    package var keepsRealSpelling: [Bool] = []
    /// The name of each synced column in this replica's table, where it was renamed here
    /// (`track --renamed`); bundles keep the synced name.
    package var renamed: [String: String] = [:]
    /// Local ordinals of the synced columns declared with a collation other than BINARY,
    /// whose capture compares text byte for byte all the same.
    package var collatedColumns: Set<Int> = []
    /// Local ordinals of the synced columns with a type, whose affinity stores 1.0 as 1 (or 1
    /// as 1.0, or either as text): there a value compares equal only to a value of its own
    /// storage class, so capture need not compare classes (see ``CaptureTriggers``).
    package var typedColumns: Set<Int> = []

    public var name: String { schema.name }
    package var clockTable: String { Bookkeeping.clockTable(id) }
    package var logTable: String { Bookkeeping.logTable(id) }
    /// The merge states of the table's text and JSON cells.
    package var mergeTable: String { Bookkeeping.mergeTable(id) }

    package func rule(_ ordinal: Int) -> ColumnRule { schema.columns[ordinal].rule }
    package var hasMergeColumns: Bool { schema.columns.contains { $0.rule != .lww } }

    /// The column's name in this replica's table.
    package func sqlName(_ ordinal: Int) -> String {
        let synced = schema.columns[ordinal].name
        return renamed[synced] ?? synced
    }

    /// The local names of all synced columns, in ordinal order.
    package var sqlNames: [String] { schema.columns.indices.map(sqlName) }

    /// The ordinal of the column named `column` in this replica's table.
    package func ordinal(ofLocal column: String) -> Int? {
        schema.columns.indices.first { sqlName($0) == column }
    }

    package func ordinal(of column: String) -> Int? {
        schema.columns.firstIndex { $0.name == column }
    }

    // MARK: - SQL fragments

    package var quotedTable: String { Database.quote(name) }
    /// The columns bundlesync names when it writes capture-log rows itself.
    package var logColumns: String { (keyNames + ["change", "wall"]).joined(separator: ", ") }

    package func columnCollated(_ ordinal: Int) -> Bool { collatedColumns.contains(ordinal) }
    package func columnTyped(_ ordinal: Int) -> Bool { typedColumns.contains(ordinal) }
    package var keyList: String { schema.keyColumns.map(Database.quote).joined(separator: ", ") }
    package var keyNames: [String] { (0..<schema.keyColumns.count).map { "k\($0)" } }
    package var keyMatch: String { schema.keyColumns.map { "\(Database.quote($0)) = ?" }.joined(separator: " AND ") }
    package var clockKeyMatch: String { keyNames.map { "\($0) = ?" }.joined(separator: " AND ") }
    package var keyColumnDefinitions: String {
        zip(keyNames, keyCollations).map { name, coll in
            coll.uppercased() == "BINARY" ? name : "\(name) COLLATE \(Database.quote(coll))"
        }.joined(separator: ", ")
    }

    package init(id: Int64, schema: TableSchema, keyCollations: [String], keepsRealSpelling: [Bool] = []) {
        self.keepsRealSpelling = keepsRealSpelling
        self.id = id
        self.schema = schema
        self.keyCollations = keyCollations
    }
}

extension TrackedTable {
    /// Why a row's key cannot be synced, or nil when it can.
    package func unsyncableKey(_ key: [SQLValue]) -> String? {
        for (i, v) in key.enumerated() {
            switch v {
            case .null:
                return "a NULL key"
            case .real(let d) where i < keepsRealSpelling.count && keepsRealSpelling[i] && d.rounded() == d:
                return "an integral REAL key in '\(schema.keyColumns[i])', which has no numeric type (SQLite takes 1.0 and 1 for the same key)"
            default:
                continue
            }
        }
        return nil
    }

    /// The conditions of ``unsyncableKey(_:)`` in SQL, on key columns `prefix.k0`, … : true
    /// for a key that can sync. Any REAL counts where the column keeps its spelling, so a
    /// key it passes always can; the others are for the key-by-key check to decide.
    package func syncableKeySQL(_ prefix: String) -> String {
        keyNames.enumerated().map { i, k in
            "\(prefix).\(k) IS NOT NULL" + (i < keepsRealSpelling.count && keepsRealSpelling[i] ? " AND typeof(\(prefix).\(k)) != 'real'" : "")
        }.joined(separator: " AND ")
    }
}
