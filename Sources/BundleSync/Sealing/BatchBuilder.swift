import BundleSyncCore
import BundleSyncFormat
import BundleSyncStore

/// Collects row changes into the tables of one batch.
package struct BatchBuilder {
    package private(set) var tables: [TableChanges] = []
    private var current: TableChanges?
    package private(set) var estimatedBytes = 0
    package private(set) var rows = 0
    package private(set) var cells = 0

    package mutating func add(_ change: RowChange, table t: TrackedTable) {
        if current?.table != t.name {
            closeTable()
            current = TableChanges(table: t.name, keyColumns: t.schema.keyColumns, columns: t.schema.columns.map(\.name), rows: [])
        }
        current!.rows.append(change)
        rows += 1
        cells += change.cells.count
        estimatedBytes += 16 + change.key.reduce(0) { $0 + $1.encodedSizeEstimate }
            + change.cells.reduce(0) { $0 + 12 + ($1.merge.map { $0.state.count + 8 } ?? $1.value.encodedSizeEstimate) }
    }

    package mutating func closeTable() {
        if let c = current, !c.rows.isEmpty { tables.append(c) }
        current = nil
    }
}

extension SQLValue {
    package var encodedSizeEstimate: Int {
        switch self {
        case .null: 1
        case .integer: 9
        case .real: 9
        case .text(let b), .blob(let b): 5 + b.count
        }
    }
}
