import Foundation

extension Replica {
    // MARK: - Status

    /// Local changes captured but not yet sealed into a batch, by table.
    public func pendingChanges() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for t in trackedTables {
            if case .integer(let n)? = try db.scalar("SELECT count(*) FROM \(Database.quote(t.logTable))"), n > 0 { out[t.name] = Int(n) }
        }
        return out
    }

    /// Everything `status` shows, as one JSON object.
    public func status() throws -> [String: Any] {
        try db.readTransaction {
            let vector = try vector()
            let peers = try knownPeers().map { p -> [String: Any] in
                let holds = try peerVector(p.index)
                let missing = try batchesMissing(from: holds)
                var d: [String: Any] = ["id": p.id.hex, "name": p.name ?? NSNull(), "vector": holds.json,
                                        "lacks_batches": missing.count, "lacks_changes": missing.reduce(0) { $0 + $1.rows }]
                if let h = p.lastHeard { d["last_heard"] = isoFormatter.string(from: Date(timeIntervalSince1970: Double(h) / 1000)) }
                return d
            }
            let parked = try parkedBatches().map { p -> [String: Any] in
                let head = try head(of: p.originIndex)
                var waiting: [String: Any] = ["origin": p.origin.hex, "seq": p.seq, "hash": p.hash.hex]
                if p.seq > head.seq + 1 {
                    waiting["waits_for"] = Self.describeRange(head.seq + 1, p.seq - 1, of: p.origin)
                } else {
                    let batch = try Batch.decode(try loadBatch(origin: p.originIndex, seq: p.seq).bytes)
                    let missing = batch.dependencies.sorted.filter { vector[$0.0] < $0.1 }
                    waiting["waits_for"] = missing.map { Self.describeRange(vector[$0.0] + 1, $0.1, of: $0.0) }.joined(separator: ", ")
                }
                return waiting
            }
            let history = try db.rows("SELECT count(*), coalesce(sum(length(body)), 0) FROM _bundlesync_batches")[0]
            var historyInfo: [String: Any] = [:]
            if case .integer(let n) = history[0], case .integer(let b) = history[1] {
                historyInfo = ["batches": n, "bytes": b]
            }
            let pending = try pendingChanges()
            return [
                "id": id.hex,
                "name": name,
                "path": db.path,
                "vector": vector.json,
                "clock": try clock.description,
                "peers": peers,
                "pending_changes": pending.values.reduce(0, +),
                "pending_by_table": pending,
                "parked": parked,
                "history": historyInfo,
                "trust_only": try trustOnly,
                "at_home": try isAtHome,
                "tables": trackedTables.map { t in
                    ["name": t.name, "key": t.schema.keyColumns,
                     "columns": t.schema.columns.map { ["name": $0.name, "rule": $0.rule.description] }] as [String: Any]
                },
            ]
        }
    }

    /// "batch 3 of ID" or "batches 3–5 of ID".
    static func describeRange(_ first: UInt64, _ last: UInt64, of origin: ReplicaID) -> String {
        first == last ? "batch \(first) of \(origin.short)" : "batches \(first)–\(last) of \(origin.short)"
    }

    // MARK: - Verify against this replica

    /// Checks a bundle against this replica: schema, forks, and links to known history.
    ///
    /// - Throws: `.badData` naming the file and what is wrong.
    public func verifyAgainstHistory(_ path: String) throws -> BundleSummary {
        var heads: [ReplicaID: (seq: UInt64, hash: Digest32)] = [:]
        let summary = try BundleSummary.read(path: path, progress: progress) { entry, batch in
            guard case .integer(let idx)? = try self.db.scalar("SELECT idx FROM _bundlesync_replicas WHERE id = ?", [.blob(batch.origin.bytes)]) else { return }
            if let stored = try self.storedBatch(origin: idx, seq: batch.seq), stored != entry.hash {
                throw self.forkError(entry, existing: stored, path: path)
            }
            let head = try heads[batch.origin] ?? self.head(of: idx)
            if batch.seq == head.seq + 1 {
                guard batch.previous == head.hash else {
                    throw self.chainError(origin: batch.origin, seq: batch.seq, previous: batch.previous, heldHead: head.hash).prefixed("'\(path)': ")
                }
                heads[batch.origin] = (batch.seq, entry.hash)
            }
        }
        try checkSchema(of: summary.header)
        if let snapshotHeads = summary.header.snapshotHeads { _ = try checkHeads(snapshotHeads, path: path) }
        try checkTrust(summary.header, path: path)
        return summary
    }
}
