import Foundation

/// What happened to one bundle given to `import`.
public struct ImportOutcome: Sendable {
    public enum Status: String, Sendable {
        /// At least one batch was merged.
        case applied
        /// Every batch was already here.
        case skipped
        /// Nothing new could be merged yet; new batches wait for earlier history.
        case parked
        /// The bundle was refused; nothing of it was applied.
        case refused
    }

    public var path: String
    public var status: Status
    public var exporter: String?
    public var applied = 0
    public var parked = 0
    public var known = 0
    /// Parked batches (from earlier bundles too) that this bundle's history released.
    public var released = 0
    /// For a snapshot bundle: the rows it held.
    public var snapshotRows: Int?
    public var warnings: [String] = []
    public var error: BundleSyncError?
}

/// Options for `import`.
public struct ImportOptions: Sendable {
    /// Timestamps further ahead of local wall time than this are reported.
    public var clockSkewBound: Int64 = 24 * 3600 * 1000
    /// When set, a bundle with such timestamps is refused instead.
    public var refuseClockSkew = false
    public init() {}
}

extension Replica {
    // MARK: - Import

    /// Imports bundle files in the order given, each on its own: a bad one is refused whole
    /// and the rest still import.
    ///
    /// - Throws: Only for the replica itself (for example, a copied replica file with local
    ///   changes that must not be sealed); problems with a bundle are in its outcome.
    public func importBundles(_ paths: [String], options: ImportOptions = ImportOptions()) throws -> [ImportOutcome] {
        if try !pendingChanges().isEmpty { try withoutCapture { try sealPending() } }
        return paths.map { path in
            do {
                return try importBundle(path, options: options)
            } catch let e as BundleSyncError {
                // Errors of the database itself (busy, full, read-only) name the database,
                // not the bundle that happened to be in hand.
                let named = e.message.contains("'\(path)'") || e.message.contains("'\(db.path)'") ? e : e.prefixed("'\(path)': ")
                return ImportOutcome(path: path, status: .refused, error: named)
            } catch {
                return ImportOutcome(path: path, status: .refused, error: .failure("'\(path)': \(error)"))
            }
        }
    }

    /// Imports one bundle: checks it completely, then merges it in one transaction.
    public func importBundle(_ path: String, options: ImportOptions = ImportOptions()) throws -> ImportOutcome {
        // Pass 1: prove the bundle whole and authentic, and that it fits this replica,
        // before taking any lock or writing anything.
        let check = try BundleReader(path: path)
        try checkSchema(of: check.header)
        var allKnown = true
        let label = (path as NSString).lastPathComponent
        defer { progress?(ProgressEvent(phase: "applying \(label)", kind: .finished)) }
        while try check.nextSnapshotChunkOutline() != nil {
            progress?(ProgressEvent(phase: "verifying \(label)", unit: "bytes", kind: .step(done: check.fileBytesRead, total: check.fileSize)))
        }
        if let heads = check.header.snapshotHeads {
            allKnown = try checkHeads(heads, path: path)
        }
        while let (entry, _) = try check.nextBatchOutline() {
            progress?(ProgressEvent(phase: "verifying \(label)", unit: "bytes", kind: .step(done: check.fileBytesRead, total: check.fileSize)))
            if let known = try knownBatch(origin: entry.origin, seq: entry.seq) {
                guard known == entry.hash else { throw forkError(entry, existing: known, path: path) }
            } else {
                allKnown = false
            }
        }
        try check.finish()
        progress?(ProgressEvent(phase: "verifying \(label)", kind: .finished))
        try checkTrust(check.header, path: path)

        var outcome = ImportOutcome(path: path, status: .skipped, exporter: check.header.exporterName)
        let now = HLC.nowMilliseconds()
        return try withoutCapture {
            try sealPending()
            var newest = HLC.zero
            if !allKnown {
                // Pass 2: the same checks again as the bytes are read, then merge.
                let reader = try BundleReader(path: path)
                guard reader.trailer == check.trailer else {
                    throw BundleSyncError.badData("'\(path)' changed while it was being imported")
                }
                while let chunk = try reader.nextSnapshotChunk() {
                    progress?(ProgressEvent(phase: "applying \(label)", unit: "bytes", kind: .step(done: reader.fileBytesRead, total: reader.fileSize)))
                    try merge(chunk, keys: reader.header.keys)
                    outcome.snapshotRows = (outcome.snapshotRows ?? 0) + chunk.rowCount
                    for t in chunk.tables {
                        for r in t.rows { newest = max(newest, ([r.rowHLC] + r.cells.map(\.hlc)).max()!) }
                    }
                }
                if let heads = reader.header.snapshotHeads {
                    _ = try checkHeads(heads, path: path)
                    outcome.applied += try adoptHeads(heads, keys: reader.header.keys)
                }
                while let (entry, signed, batch) = try reader.nextBatch() {
                    progress?(ProgressEvent(phase: "applying \(label)", unit: "bytes", kind: .step(done: reader.fileBytesRead, total: reader.fileSize)))
                    let origin = try index(of: entry.origin, publicKey: reader.header.keys[entry.origin])
                    if let stored = try storedBatch(origin: origin, seq: entry.seq) {
                        guard stored == entry.hash else { throw forkError(entry, existing: stored, path: path) }
                        outcome.known += 1
                        continue
                    }
                    let head = try head(of: origin)
                    if entry.seq <= head.seq {
                        outcome.known += 1 // held here once, since pruned
                        continue
                    }
                    if let range = batch.hlcRange { newest = max(newest, range.upperBound) }
                    if try isApplicable(batch, head: head) {
                        try merge(batch, originIndex: origin)
                        try storeBatch(signed, batch: batch, origin: origin, applied: true)
                        outcome.applied += 1
                        progress?(ProgressEvent(phase: "applying", kind: .detail("applied batch \(entry.seq) of \(entry.origin.short) (\(batch.rowCount) rows)")))
                    } else {
                        try storeBatch(signed, batch: batch, origin: origin, applied: false)
                        outcome.parked += 1
                        progress?(ProgressEvent(phase: "applying", kind: .detail("parked batch \(entry.seq) of \(entry.origin.short): earlier history has not arrived")))
                    }
                }
                try reader.finish()
                outcome.released = try applyParked()
                outcome.parked = max(0, outcome.parked - outcome.released)
            } else {
                outcome.known = check.header.batches.count
            }
            if check.header.isSnapshot && outcome.applied > 0 { outcome.applied = 1 }
            if newest.milliseconds > now + options.clockSkewBound {
                let ahead = Double(newest.milliseconds - now) / 3_600_000
                let message = "'\(path)' holds writes timestamped \(String(format: "%.1f", ahead)) h ahead of this device's clock"
                if options.refuseClockSkew {
                    throw BundleSyncError.badData(message, hint: "fix the clock of the device that wrote them, or raise --max-clock-skew")
                }
                outcome.warnings.append(message)
            }
            try advanceClock(to: newest)
            try rememberPeer(check.header, heardAt: now)
            if outcome.applied + outcome.released > 0 { outcome.status = .applied }
            else if outcome.parked > 0 { outcome.status = .parked }
            return outcome
        }
    }

    /// A batch can be merged now when it continues its origin's history here and everything
    /// its origin had seen when sealing it is here too (causal delivery).
    private func isApplicable(_ batch: Batch, head: (seq: UInt64, hash: Digest32)) throws -> Bool {
        guard batch.seq == head.seq + 1 else { return false }
        guard batch.previous == head.hash else {
            throw chainError(origin: batch.origin, seq: batch.seq, previous: batch.previous, heldHead: head.hash)
        }
        return try vector().dominates(batch.dependencies)
    }

    /// Merges parked batches whose history has arrived, until none is left that can be.
    func applyParked() throws -> Int {
        var released = 0
        var advanced = true
        while advanced {
            advanced = false
            for p in try parkedBatches() {
                let head = try head(of: p.originIndex)
                guard p.seq == head.seq + 1 else { continue }
                let signed = try loadBatch(origin: p.originIndex, seq: p.seq)
                let batch = try Batch.decode(signed.bytes)
                guard batch.previous == head.hash else {
                    // It was parked before its predecessor arrived, and that predecessor is
                    // not the one it names: a fork. Drop it rather than block all imports.
                    try db.run("DELETE FROM _bundlesync_batches WHERE origin = ? AND seq = ?", [.integer(p.originIndex), .integer(Int64(p.seq))])
                    continue
                }
                guard try isApplicable(batch, head: head) else { continue }
                try merge(batch, originIndex: p.originIndex)
                try markApplied(origin: p.originIndex, seq: p.seq, hash: p.hash)
                released += 1
                progress?(ProgressEvent(phase: "applying", kind: .detail("applied parked batch \(p.seq) of \(p.origin.short)")))
                advanced = true
            }
        }
        return released
    }

    /// Checks a snapshot's heads against the history held here.
    ///
    /// - Returns: Whether this replica already holds everything the snapshot reflects.
    /// - Throws: `.badData` when a head contradicts a batch held here (a fork).
    func checkHeads(_ heads: [SnapshotHead], path: String) throws -> Bool {
        var covered = true
        for h in heads {
            guard case .integer(let idx)? = try db.scalar("SELECT idx FROM _bundlesync_replicas WHERE id = ?", [.blob(h.origin.bytes)]) else {
                covered = false
                continue
            }
            let entry = BundleHeader.BatchEntry(origin: h.origin, seq: h.seq, hash: h.hash, length: 0)
            if let stored = try storedBatch(origin: idx, seq: h.seq), stored != h.hash {
                throw forkError(entry, existing: stored, path: path)
            }
            let local = try head(of: idx)
            if local.seq == h.seq && local.hash != h.hash { throw forkError(entry, existing: local.hash, path: path) }
            if local.seq < h.seq { covered = false }
        }
        return covered
    }

    /// Advances this replica's history to a snapshot's heads: the snapshot's state holds the
    /// effect of those batches. Parked batches it covers are dropped.
    ///
    /// - Returns: How many origins advanced.
    private func adoptHeads(_ heads: [SnapshotHead], keys: [ReplicaID: [UInt8]]) throws -> Int {
        var advanced = 0
        for h in heads {
            let idx = try index(of: h.origin, publicKey: keys[h.origin])
            guard try head(of: idx).seq < h.seq else { continue }
            try db.run("UPDATE _bundlesync_replicas SET seq = ?, head = ? WHERE idx = ?",
                       [.integer(Int64(h.seq)), .blob(h.hash.bytes), .integer(idx)])
            try db.run("DELETE FROM _bundlesync_batches WHERE origin = ? AND seq <= ? AND applied_order IS NULL",
                       [.integer(idx), .integer(Int64(h.seq))])
            advanced += 1
        }
        return advanced
    }

    private func knownBatch(origin: ReplicaID, seq: UInt64) throws -> Digest32? {
        guard case .integer(let idx)? = try db.scalar("SELECT idx FROM _bundlesync_replicas WHERE id = ?", [.blob(origin.bytes)]) else { return nil }
        return try storedBatch(origin: idx, seq: seq)
    }

    /// A batch that continues an origin's history from another predecessor than the one held.
    func chainError(origin: ReplicaID, seq: UInt64, previous: Digest32, heldHead: Digest32) -> BundleSyncError {
        BundleSyncError.badData("batch \(seq) of replica \(origin.short) does not follow the history held here (it names \(previous.short) as its predecessor, this replica holds \(heldHead.short)): the replica's history has forked",
                                hint: "a copy of that replica's database wrote its own history; the copy must be re-identified")
    }

    func forkError(_ entry: BundleHeader.BatchEntry, existing: Digest32, path: String) -> BundleSyncError {
        BundleSyncError.badData("'\(path)': replica \(entry.origin.short) has forked: its batch \(entry.seq) here is \(existing.short), the bundle's is \(entry.hash.short)",
                                hint: "a copy of that replica's database wrote its own history; the copy must be re-identified before it syncs")
    }

    // MARK: - Schema

    /// Refuses a bundle that names a table or column this replica does not track (SPEC §3.7).
    func checkSchema(of header: BundleHeader) throws {
        for t in header.tables {
            try checkTable(name: t.name, keyColumns: t.keyColumns, columns: t.columns.map(\.name))
            let local = tables[t.name]!
            for c in t.columns {
                if let i = local.ordinal(of: c.name), local.schema.columns[i].rule != c.rule {
                    throw BundleSyncError.badData("column '\(shown(c.name))' of '\(shown(t.name))' merges by '\(c.rule)' in the bundle but by '\(local.schema.columns[i].rule)' here",
                                                  hint: "run 'bundlesync track' with the same rules on every replica")
                }
            }
        }
    }

    private func checkTable(name: String, keyColumns: [String], columns: [String]) throws {
        guard let local = tables[name] else {
            throw BundleSyncError.badData("the bundle changes table '\(shown(name))', which this replica does not track",
                                          hint: "create the table with the same columns and run 'bundlesync track DB \(shown(name))', then import again")
        }
        guard local.schema.keyColumns == keyColumns else {
            throw BundleSyncError.badData("table '\(shown(name))' is keyed by (\(keyColumns.map(shown).joined(separator: ", "))) in the bundle but by (\(local.schema.keyColumns.joined(separator: ", "))) here",
                                          hint: "every replica must give the table the same primary key")
        }
        for c in columns where local.ordinal(of: c) == nil {
            throw BundleSyncError.badData("the bundle changes column '\(shown(c))' of '\(shown(name))', which this replica does not track",
                                          hint: "add it with 'ALTER TABLE \(shown(name)) ADD COLUMN \(shown(c)) ...' and run 'bundlesync track DB \(shown(name))', then import again")
        }
    }

    // MARK: - Peers

    /// Remembers what the exporter held, so the next export to it carries only what it lacks.
    private func rememberPeer(_ header: BundleHeader, heardAt now: Int64) throws {
        guard header.exporter != id else { return }
        let peer = try index(of: header.exporter, publicKey: header.exporterKey)
        try db.run("UPDATE _bundlesync_replicas SET name = coalesce(name, ?), last_heard = max(coalesce(last_heard, 0), ?) WHERE idx = ?",
                   [.text(header.exporterName), .integer(now), .integer(peer)])
        for (origin, seq) in header.exporterVector.sorted {
            let o = try index(of: origin, publicKey: header.keys[origin])
            try db.run("""
                INSERT INTO _bundlesync_peer_vectors(peer, origin, seq) VALUES (?, ?, ?)
                ON CONFLICT(peer, origin) DO UPDATE SET seq = max(seq, excluded.seq)
                """, [.integer(peer), .integer(o), .integer(Int64(seq))])
        }
    }
}
