import BundleSyncCore
import BundleSyncFormat
import BundleSyncStore

/// What `track` reports besides success.
public struct TrackReport: Sendable {
    public var table: String
    public var newlyTracked: Bool
    public var addedColumns: [String]
    /// Columns whose merge rule changed.
    public var changedRules: [String]
    public var existingRows: Int
    public var warnings: [String]
}

/// Starts syncing tables, and follows them as columns are added and rules change.
package struct TableTracker {
    package let store: ReplicaStore
    package let sealer: Sealer

    package init(store: ReplicaStore, progress: ProgressHandler?) {
        self.store = store
        self.sealer = Sealer(store: store, progress: progress)
    }

    /// Starts syncing `table`, or picks up columns added since it was tracked.
    ///
    /// Installs the capture triggers and the table's clock and log tables, and logs every
    /// existing row as this replica's insert, all in one transaction.
    ///
    /// - Parameters:
    ///   - rules: Merge rules for named columns; columns not named keep their rule (new
    ///     columns merge by last writer wins). Changing a column's rule seals pending changes
    ///     first, then derives each cell's new merge state from its value and clock.
    /// - Throws: `.usage` when the table is missing, has no primary key, is a bookkeeping
    ///   table, or has a constraint that merges cannot honour (SPEC §3.8).
    package func track(table: String, rules: [String: ColumnRule] = [:], renamed: [String: String] = [:]) throws -> TrackReport {
        let catalog = store.catalog
        let shape = try catalog.shape(of: table)
        // Every reader refuses longer names; a table that could never travel is not tracked.
        for name in [table] + shape.keyColumns + shape.columns where name.utf8.count > Limits.maxNameBytes {
            throw BundleSyncError.usage("'\(shown(String(name.prefix(40))))…' is \(name.utf8.count) bytes long; a bundle carries names of at most \(Limits.maxNameBytes) bytes",
                                        hint: "rename the table or column")
        }
        if !renamed.isEmpty { try store.withoutCapture { try followRenames(table, renamed, shape: shape) } }
        for name in rules.keys where !shape.columns.contains(name) {
            throw BundleSyncError.usage("'\(shown(table))' has no non-key column '\(shown(name))'")
        }
        var warnings: [String] = []
        if shape.keyColumns.count == 1, shape.declaredType[shape.keyColumns[0]]?.uppercased() == "INTEGER" {
            let auto = catalog.isAutoincrement(table: table, column: shape.keyColumns[0]) ? " AUTOINCREMENT" : ""
            warnings.append("'\(shown(table))' is keyed by an auto-assigned INTEGER PRIMARY KEY\(auto): two devices that insert rows will pick the same keys, and the rows will overwrite each other\nhint: give new rows random keys, such as a UUID or randomblob(16), or keys that embed the device")
        }

        return try store.withoutCapture {
            guard let existing = catalog[table] else {
                let schema = TableSchema(name: table, keyColumns: shape.keyColumns,
                                         columns: shape.columns.map { .init(name: $0, rule: rules[$0] ?? .lww) })
                let (t, rows) = try catalog.create(schema)
                if t.hasMergeColumns { try store.cellStates.createTable(t) }
                try HeldReplay(store: store).replay(try HeldReplay(store: store).due())
                return TrackReport(table: table, newlyTracked: true, addedColumns: shape.columns, changedRules: [],
                                   existingRows: rows, warnings: warnings)
            }
            return try retrack(existing, shape: shape, rules: rules, warnings: warnings)
        }
    }

    /// Records columns renamed in this replica's table (`--renamed OLD=NEW`): each keeps
    /// syncing under the name bundles know it by.
    private func followRenames(_ table: String, _ renamed: [String: String], shape: TableShape) throws {
        guard var t = store.catalog[table] else {
            throw BundleSyncError.usage("'\(shown(table))' is not tracked yet; --renamed follows a tracked table's columns")
        }
        for (old, new) in renamed.sorted(by: { $0.key < $1.key }) {
            guard let ordinal = t.ordinal(ofLocal: old) else {
                throw BundleSyncError.usage("'\(shown(table))' syncs no column called '\(shown(old))'")
            }
            guard shape.columns.contains(new), t.ordinal(ofLocal: new) == nil else {
                throw BundleSyncError.usage("'\(shown(table))' has no new column '\(shown(new))' to follow '\(shown(old))'",
                                            hint: "rename the column in the table first (ALTER TABLE \(table) RENAME COLUMN \(old) TO \(new))")
            }
            t = try store.catalog.rename(t, column: t.schema.columns[ordinal].name, to: new)
        }
        try store.catalog.reinstallTriggers(t)
    }

    /// Follows a tracked table's new columns and rule changes.
    private func retrack(_ existing: TrackedTable, shape: TableShape, rules: [String: ColumnRule], warnings: [String]) throws -> TrackReport {
        let table = existing.name
        guard existing.schema.keyColumns == shape.keyColumns else {
            throw BundleSyncError.usage("the primary key of '\(shown(table))' changed since it was tracked",
                                        hint: "bundlesync cannot follow a key change; sync a new table instead")
        }
        for c in existing.sqlNames where !shape.columns.contains(c) {
            throw BundleSyncError.usage("column '\(shown(c))' of '\(shown(table))' was dropped, but it is synced",
                                        hint: "bundlesync cannot sync a dropped column; add it back, or name its new name with --renamed OLD=NEW")
        }
        let known = Set(existing.sqlNames)
        let added = shape.columns.filter { !known.contains($0) }
        for name in added where existing.ordinal(of: name) != nil {
            throw BundleSyncError.usage("new column '\(shown(name))' of '\(shown(table))' has the name under which a renamed column syncs",
                                        hint: "give the new column another name")
        }
        var changedRules: [String] = []
        for (name, rule) in rules {
            if let i = existing.ordinal(ofLocal: name), existing.schema.columns[i].rule != rule { changedRules.append(name) }
        }
        // Changes made under the old rules are sealed under them.
        if !changedRules.isEmpty { try sealer.sealPending() }
        var schema = existing.schema
        for name in added { schema.columns.append(.init(name: name, rule: rules[name] ?? .lww)) }
        for (name, rule) in rules {
            if let i = existing.ordinal(ofLocal: name) ?? schema.columns.firstIndex(where: { $0.name == name }) { schema.columns[i].rule = rule }
        }
        let t = try store.catalog.update(existing, to: schema)
        try store.clocks.markUnwritten(t, ordinals: added.compactMap { t.ordinal(ofLocal: $0) }, origin: store.selfIndex)
        if t.hasMergeColumns || !changedRules.isEmpty { try store.cellStates.createTable(t) }
        let cells = CellMerger(store: store)
        for name in changedRules + added.filter({ t.rule(t.ordinal(ofLocal: $0)!) != .lww }) {
            try cells.seed(t, ordinal: t.ordinal(ofLocal: name)!)
        }
        try HeldReplay(store: store).replay(try HeldReplay(store: store).due())
        return TrackReport(table: table, newlyTracked: false, addedColumns: added, changedRules: changedRules.sorted(),
                           existingRows: 0, warnings: warnings)
    }
}
