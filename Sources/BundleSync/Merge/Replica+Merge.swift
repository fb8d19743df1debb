extension Replica {
    // MARK: - Merging a batch

    /// Merges one batch into the tracked tables and their clocks (SPEC §3.1, §3.2).
    ///
    /// For each row: a higher causal length wins outright (a newer incarnation, or a delete
    /// of the one known here), so a delete beats a concurrent update and a re-insert brings
    /// the row back with the inserter's values. At equal causal length each cell is merged
    /// on its own: the write with the greater (HLC, replica id) wins. The result does not
    /// depend on the order in which batches arrive, or on how often.
    ///
    /// Must run inside `withoutCapture`, after the batch was checked against the schema.
    func merge(_ batch: Batch, originIndex: Int64) throws {
        let originID = batch.origin
        for section in batch.tables {
            guard let t = tables[section.table] else {
                throw BundleSyncError.badData("table '\(shown(section.table))' is not tracked here")
            }
            let ordinals = try section.columns.map { name -> Int in
                guard let o = t.ordinal(of: name) else {
                    throw BundleSyncError.badData("column '\(shown(name))' of '\(shown(t.name))' is not tracked here")
                }
                return o
            }
            for row in section.rows {
                try mergeRow(row, into: t, ordinals: ordinals, origin: originIndex, originID: originID)
            }
        }
    }

    private func mergeRow(_ row: RowChange, into t: TrackedTable, ordinals: [Int], origin: Int64, originID: ReplicaID) throws {
        let local = try loadClock(t, key: row.key)
        let localLength = local?.causalLength ?? 0
        if row.causalLength < localLength { return }

        if row.causalLength > localLength {
            // A newer incarnation (or a delete of ours): it replaces the row whole.
            let rowStamp = RowClock.Stamp(hlc: row.rowHLC ?? row.cells.map(\.hlc).max() ?? .zero, origin: origin)
            var clock = RowClock(causalLength: row.causalLength, row: rowStamp, overrides: [:])
            if row.isAlive {
                for c in row.cells { clock.setCell(ordinals[c.column], .init(hlc: c.hlc, origin: origin)) }
                try replaceRow(t, key: row.key, columns: row.cells.map { ordinals[$0.column] }, values: row.cells.map(\.value))
            } else {
                try deleteRow(t, key: row.key)
            }
            try storeClock(t, key: row.key, clock)
            return
        }

        // Same incarnation: merge cell by cell.
        guard var clock = local, clock.isAlive, !row.cells.isEmpty else { return }
        var winners: [(ordinal: Int, value: SQLValue)] = []
        for c in row.cells {
            let ord = ordinals[c.column]
            let mine = clock.cell(ord)
            if try isLater(c.hlc, originID, than: mine) {
                clock.setCell(ord, .init(hlc: c.hlc, origin: origin))
                winners.append((ord, c.value))
            }
        }
        guard !winners.isEmpty else { return }
        try updateRow(t, key: row.key, columns: winners.map(\.ordinal), values: winners.map(\.value))
        try storeClock(t, key: row.key, clock)
    }

    /// Last-writer-wins order: HLC first, then replica id.
    private func isLater(_ hlc: HLC, _ id: ReplicaID, than stamp: RowClock.Stamp) throws -> Bool {
        if hlc != stamp.hlc { return hlc > stamp.hlc }
        return try replicaID(at: stamp.origin) < id
    }

    // MARK: - Writing user rows

    private func replaceRow(_ t: TrackedTable, key: [SQLValue], columns: [Int], values: [SQLValue]) throws {
        let names = t.schema.keyColumns + columns.map { t.schema.columns[$0].name }
        let sql = "INSERT OR REPLACE INTO \(t.quotedTable)(\(names.map(Database.quote).joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: names.count).joined(separator: ", ")))"
        try db.run(sql, key + values)
    }

    private func updateRow(_ t: TrackedTable, key: [SQLValue], columns: [Int], values: [SQLValue]) throws {
        let sets = columns.map { "\(Database.quote(t.schema.columns[$0].name)) = ?" }.joined(separator: ", ")
        try db.run("UPDATE \(t.quotedTable) SET \(sets) WHERE \(t.keyMatch)", values + key)
        if db.changes == 0 {
            // The clock says the row exists but the table lost it: restore what is known.
            try replaceRow(t, key: key, columns: columns, values: values)
        }
    }

    private func deleteRow(_ t: TrackedTable, key: [SQLValue]) throws {
        try db.run("DELETE FROM \(t.quotedTable) WHERE \(t.keyMatch)", key)
    }
}
