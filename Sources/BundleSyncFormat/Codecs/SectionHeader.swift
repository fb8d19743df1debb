import BundleSyncCore
import BundleSyncMerge

/// The start of a table section in a batch or a snapshot chunk: the table's name, its key
/// columns and the other columns the section names (`bundlesync-format(5)`, "Batches").
package struct SectionHeader {
    package var table: String
    package var keyColumns: [String]
    package var columns: [String]
    /// The rule of each column (an index into `columns`) whose cells carry merge payloads.
    package var mergeRules: [Int: ColumnRule] = [:]

    package init(table: String, keyColumns: [String], columns: [String], mergeRules: [Int: ColumnRule] = [:]) {
        self.table = table
        self.keyColumns = keyColumns
        self.columns = columns
        self.mergeRules = mergeRules
    }

    /// A decoded section's header, with the rules of the merge payloads among `cells`.
    package init<S: Sequence>(table: String, keyColumns: [String], columns: [String], cells: S) where S.Element == (Int, MergePayload?) {
        self.init(table: table, keyColumns: keyColumns, columns: columns)
        for (column, merge) in cells { if let merge { mergeRules[column] = merge.rule } }
    }

    package static func encode(table: String, keyColumns: [String], columns: [String], into w: inout ByteWriter) {
        w.string(table)
        w.varint(keyColumns.count)
        keyColumns.forEach { w.string($0) }
        w.varint(columns.count)
        columns.forEach { w.string($0) }
    }

    /// Reads a section header, refusing a table seen before in the same container, a
    /// section without key columns, and a column named twice.
    package static func decode(from r: inout ByteReader, seen: inout Set<String>, container: String) throws -> SectionHeader {
        let name = try r.string("table name", limit: Limits.maxNameBytes)
        guard seen.insert(name).inserted else {
            throw BundleSyncError.badData("table '\(shown(name))' appears twice in a \(container)")
        }
        let kc = try r.count("key column count", limit: min(Limits.maxColumns, r.remaining))
        guard kc > 0 else { throw BundleSyncError.badData("table '\(shown(name))' has no key columns") }
        var keys: [String] = []
        for _ in 0..<kc { keys.append(try r.string("key column name", limit: Limits.maxNameBytes)) }
        let cc = try r.count("column count", limit: min(Limits.maxColumns, r.remaining))
        var columns: [String] = []
        for _ in 0..<cc { columns.append(try r.string("column name", limit: Limits.maxNameBytes)) }
        guard Set(keys + columns).count == kc + cc else {
            throw BundleSyncError.badData("table '\(shown(name))' names a column twice")
        }
        return SectionHeader(table: name, keyColumns: keys, columns: columns)
    }

    /// Checks the section against the schemas a bundle's header declares.
    package func check(against declared: [TableSchema], label: String) throws {
        guard let schema = declared.first(where: { $0.name == table }), schema.keyColumns == keyColumns,
              Set(columns).isSubset(of: Set(schema.columns.map(\.name))) else {
            throw BundleSyncError.badData("\(label) touches '\(shown(table))' in a way the header does not declare")
        }
        for (index, rule) in mergeRules.sorted(by: { $0.key < $1.key }) {
            let name = columns[index]
            let declared = schema.columns.first { $0.name == name }!.rule
            guard declared == rule else {
                throw BundleSyncError.badData("\(label) holds a \(rule) edit of column '\(shown(name))' of '\(shown(table))', which the header declares as '\(declared)'")
            }
        }
    }
}
