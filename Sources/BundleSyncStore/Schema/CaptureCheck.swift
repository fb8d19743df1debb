import BundleSyncCore
import BundleSyncFormat

/// Makes sure capture still covers every tracked table, as the application's schema drifts.
///
/// Run when a replica is opened, before any command uses it. It finds what happened to each
/// tracked table since bundlesync last looked, and either follows it or says what stops it:
///
/// - columns added (ALTER TABLE ... ADD COLUMN) are synced from then on, and the values
///   they already hold become this replica's changes;
/// - capture triggers that are missing (a table rebuilt by SQLite's twelve-step ALTER, or
///   triggers dropped by hand) are installed again, and every row is sent again, since
///   writes made while capture was off cannot be told apart; a warning says so;
/// - triggers of an earlier release, or rewritten by SQLite, are installed afresh, and a
///   capture log of an earlier release is rewritten in this release's layout;
/// - a dropped table, a synced column that is gone (renamed or dropped) or a changed key
///   are problems that block sync of the replica until settled, each with the command
///   that settles it.
package struct CaptureCheck {
    package let store: ReplicaStore

    package init(store: ReplicaStore) {
        self.store = store
    }

    private var db: Database { store.db }

    /// What needs doing to one table.
    private enum Finding {
        case fine
        case problem(BundleSyncError)
        /// New columns to pick up, and whether triggers were missing (rather than only out
        /// of date); the triggers are installed afresh either way, and the log upgraded.
        case repair(added: [String], triggersMissing: Bool)
    }

    /// Checks every tracked table and repairs what can be repaired.
    ///
    /// - Returns: The problems that block sync; notices of what was repaired go to the
    ///   store's notices.
    package func run() throws -> [BundleSyncError] {
        var problems: [BundleSyncError] = []
        var repairs: [(TrackedTable, added: [String], missing: Bool)] = []
        for t in store.catalog.tracked {
            switch try inspect(t) {
            case .fine: continue
            case .problem(let e): problems.append(e)
            case .repair(let added, let missing): repairs.append((t, added, missing))
            }
        }
        guard !repairs.isEmpty else { return problems }
        try store.withoutCapture {
            for (t, added, missing) in repairs { try repair(t, added: added, triggersMissing: missing) }
        }
        return problems
    }

    private func inspect(_ t: TrackedTable) throws -> Finding {
        let path = db.path
        guard try store.catalog.exists(t.name) else {
            return .problem(BundleSyncError(.failure, "tracked table '\(shown(t.name))' no longer exists in '\(path)'",
                                            hint: "run 'bundlesync untrack \(path) \(shown(t.name))' to stop syncing it, or create it again and run 'bundlesync track \(path) \(shown(t.name))'",
                                            database: path))
        }
        let shape = try store.catalog.columns(of: t.name)
        guard shape.keyColumns == t.schema.keyColumns else {
            return .problem(BundleSyncError(.failure, "the primary key of tracked table '\(shown(t.name))' changed from (\(t.schema.keyColumns.joined(separator: ", "))) to (\(shape.keyColumns.joined(separator: ", ")))",
                                            hint: "bundlesync cannot follow a key change: run 'bundlesync untrack \(path) \(shown(t.name))' and sync the table under a new name",
                                            database: path))
        }
        let synced = t.sqlNames
        let gone = synced.filter { !shape.columns.contains($0) }
        let added = shape.columns.filter { !synced.contains($0) }
        if gone.count == 1, added.count == 1 {
            return .problem(BundleSyncError(.failure, "column '\(shown(gone[0]))' of '\(shown(t.name))' is gone and '\(shown(added[0]))' is new: it looks renamed, and bundles name columns",
                                            hint: "if it was renamed, run 'bundlesync track \(path) \(shown(t.name)) --renamed \(shown(gone[0]))=\(shown(added[0]))'; if it was dropped, add it back with ALTER TABLE ... ADD COLUMN",
                                            database: path))
        }
        if !gone.isEmpty {
            return .problem(BundleSyncError(.failure, "synced column\(gone.count == 1 ? "" : "s") \(gone.map { "'\(shown($0))'" }.joined(separator: ", ")) of '\(shown(t.name))' \(gone.count == 1 ? "is" : "are") gone from the table",
                                            hint: "bundlesync cannot stop syncing a column: add it back with 'ALTER TABLE \(shown(t.name)) ADD COLUMN ...', or run 'bundlesync untrack \(path) \(shown(t.name))'",
                                            database: path))
        }
        let installed = try store.catalog.installedTriggers(t)
        let expected = CaptureTriggers.statements(t)
        // Missing: some write went uncaptured (a table rebuilt, a trigger dropped by hand).
        // Stale: every write was captured, by triggers other than this release's.
        let missing = !CaptureTriggers.complete(Set(installed.keys), for: t)
        let stale = !missing && (installed.count != expected.count || expected.contains { installed[$0.name] != $0.sql })
        guard !added.isEmpty || missing || stale else { return .fine }
        return .repair(added: added, triggersMissing: missing)
    }

    private func repair(_ t: TrackedTable, added: [String], triggersMissing: Bool) throws {
        var schema = t.schema
        for name in added { schema.columns.append(.init(name: name, rule: .lww)) }
        _ = try store.catalog.upgradeLog(t)
        let now = try store.catalog.update(t, to: schema)
        try store.clocks.markUnwritten(now, ordinals: added.compactMap { now.ordinal(of: $0) }, origin: store.selfIndex)
        let log = "INSERT INTO \(Database.quote(now.logTable))(\(now.logColumns))"
        if triggersMissing {
            // Writes made while capture was off cannot be told from the rows as they were:
            // every present row is sent again, and rows that vanished are deleted.
            let match = zip(now.schema.keyColumns, now.keyNames).map { "u.\(Database.quote($0)) = c.\($1)" }.joined(separator: " AND ")
            try db.run("\(log) SELECT \(now.schema.keyColumns.map { "u.\(Database.quote($0))" }.joined(separator: ", ")), \(LogOp.insertCode), \(CaptureTriggers.wallExpression) FROM \(now.quotedTable) u")
            let present = db.changes
            try db.run("\(log) SELECT \(now.keyNames.map { "c.\($0)" }.joined(separator: ", ")), \(LogOp.deleteCode), \(CaptureTriggers.wallExpression) FROM \(Database.quote(now.clockTable)) c WHERE c.cl % 2 = 1 AND NOT EXISTS (SELECT 1 FROM \(now.quotedTable) u WHERE \(match))")
            let vanished = db.changes
            store.notices.append("capture of '\(t.name)' was off (its triggers were missing, as after a table rebuild); they are installed again, and its \(present == 1 ? "1 row is" : "\(present) rows are") sent again as this replica's writes\(vanished > 0 ? ", \(vanished) vanished row\(vanished == 1 ? "" : "s") as deletes" : "")\nhint: writes made meanwhile cannot be told apart, so concurrent edits of these rows made elsewhere lose to these; after rebuilding a tracked table, run any bundlesync command before the application writes again")
        } else {
            for name in added {
                guard let ordinal = now.ordinal(of: name) else { continue }
                try db.run("\(log) SELECT \(now.keyList), \(LogOp.update(ordinal: ordinal).code), \(CaptureTriggers.wallExpression) FROM \(now.quotedTable) WHERE \(Database.quote(name)) IS NOT NULL")
            }
        }
        if !added.isEmpty {
            store.notices.append("'\(t.name)' has new column\(added.count == 1 ? "" : "s") \(added.map { "'\($0)'" }.joined(separator: ", ")), synced from now on, last writer wins; the values \(added.count == 1 ? "it holds" : "they hold") are this replica's changes")
        }
    }
}
