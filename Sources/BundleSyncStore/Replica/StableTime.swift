import BundleSyncCore
import BundleSyncFormat

/// The stable time of a replica: every write stamped below it is held by every known peer,
/// so every write a known peer makes from now on is causally after it (`bundlesync-format(5)`,
/// "Collecting tombstones"). Tombstones deleted below it may go.
///
/// It is the least HLC of the stored batches (applied or parked) that some known peer does
/// not hold, as far as this replica knows; with every stored batch held by all, no write
/// this replica holds limits it. It is 0 (nothing may go) when there is no known peer; when
/// fewer replicas are known here than the user declared the group to have (`config DB fleet
/// N`), or none was declared; when a
/// known peer's bundles do not say that its text writes name live text only (a peer of an
/// earlier release, whose writes may name a tombstone); when a replica was heard of (it wrote
/// history held here, or a peer holds history of it) but never from; when a batch is parked; when a known peer holds a batch this replica lacks (its writes may be
/// concurrent with a deletion that would go); when some batch a known peer lacks is not
/// stored here; and while a snapshot this replica adopted reflects history that not every
/// known peer is known to hold.
///
/// Computed once per transaction and lowered, within it, to the least HLC of every batch
/// merged or sealed in it before the batch is stored.
final class StableTimeCache {
    var value: UInt64?
    var ceiling: UInt64 = .max

    func reset() {
        value = nil
        ceiling = .max
    }
}

extension ReplicaStore {
    /// The `_bundlesync_meta` key holding the history reflected by adopted snapshots that not
    /// every known peer is known to hold yet.
    private static let snapshotVectorKey = "uncovered_snapshot_vector"

    /// The stable time, within the current write transaction.
    package func stableTime() throws -> UInt64 {
        let g: UInt64
        if let v = stableCache.value {
            g = v
        } else {
            g = try computeStableTime()
            stableCache.value = g
        }
        return min(g, stableCache.ceiling)
    }

    /// Lowers the stable time for the rest of the transaction: writes stamped from `hlc` on
    /// are being merged or sealed, and not every peer holds them.
    package func lowerStableTime(to hlc: UInt64) {
        stableCache.ceiling = min(stableCache.ceiling, hlc)
    }

    /// Records that a snapshot reflecting `vector` was adopted: until every known peer is
    /// known to hold that history, nothing is collected.
    package func noteSnapshotAdopted(_ vector: VersionVector) throws {
        lowerStableTime(to: 0)
        let merged = try uncoveredSnapshotVector().map { $0.merged(with: vector) } ?? vector
        var w = ByteWriter()
        merged.encode(into: &w)
        try db.run("INSERT OR REPLACE INTO _bundlesync_meta(key, value) VALUES (?, ?)", [.text(Self.snapshotVectorKey), .blob(w.bytes)])
    }

    private func uncoveredSnapshotVector() throws -> VersionVector? {
        guard case .blob(let b)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = ?", [.text(Self.snapshotVectorKey)]) else { return nil }
        var r = ByteReader(b)
        return try VersionVector.decode(from: &r, what: "snapshot vector")
    }

    /// A warning when more replicas were heard from than the group was declared to have, so
    /// that nothing is collected until the count is set right; nil otherwise.
    package func fleetWarning() throws -> String? {
        guard let fleet = try fleetSize else { return nil }
        let heard = try replicas.heardFromCount(besides: selfIndex) + 1
        guard heard > fleet else { return nil }
        return """
            \(heard) replicas have written to this group, this one included, but it was declared to have \(fleet) \
            ('config DB fleet'): deleted text and removed JSON keys are kept from now on, until the count is right
            hint: run 'bundlesync config DB fleet \(heard)' on every replica (and 'bundlesync forget DB NAME' for a replica gone for good)
            """
    }

    private func computeStableTime() throws -> UInt64 {
        // A replica no one here has heard from yet, such as a device that started from a
        // snapshot, may be writing next to any deletion: only the user knows how many
        // replicas there are, and nothing is collected until that many were heard from
        // (a forgotten one counts: it left the group after it was heard from).
        // More than that means the count is wrong: a replica was added, or a restored backup
        // took a new identity, and collecting could drop text a replica still shows.
        guard let fleet = try fleetSize, try replicas.heardFromCount(besides: selfIndex) + 1 == fleet else { return 0 }
        try history.ensureLeastHLCColumn()
        let peers = try replicas.knownPeers(besides: selfIndex)
        // A peer of an earlier release may still name a tombstone in its writes.
        guard !peers.isEmpty, try replicas.allAnchorLive(peers) else { return 0 }
        // A replica heard of but not from may hold writes concurrent with any deletion.
        guard try !replicas.hasUnheardReplica(besides: selfIndex) else { return 0 }
        let vectors = try peers.map { try replicas.peerVector($0.index) }
        let everyone = vectors.dropFirst().reduce(vectors[0]) { $0.meet($1) }
        let mine = try replicas.vector()
        // A known peer holds a batch this replica lacks.
        for v in vectors {
            for (origin, seq) in v.entries where seq > mine[origin] { return 0 }
        }
        if let snapshot = try uncoveredSnapshotVector() {
            guard everyone.dominates(snapshot) else { return 0 }
            try db.run("DELETE FROM _bundlesync_meta WHERE key = ?", [.text(Self.snapshotVectorKey)])
        }
        if try db.scalar("SELECT 1 FROM _bundlesync_batches WHERE applied_order IS NULL LIMIT 1") != nil { return 0 }
        var least = UInt64.max
        for (origin, seq) in mine.entries where seq > everyone[origin] {
            // Batches seq+1 through `held` of origin are not held by some peer: each must be
            // stored here, and the least HLC among them limits the stable time.
            guard let idx = try replicas.existingIndex(of: origin) else { return 0 }
            let row = try db.rows("SELECT count(*), min(coalesce(least_hlc, 0)) FROM _bundlesync_batches WHERE origin = ? AND seq > ? AND seq <= ?",
                                  [.integer(idx), .integer(Int64(everyone[origin])), .integer(Int64(seq))])[0]
            guard UInt64(row[0].integer ?? 0) == seq - everyone[origin] else { return 0 }
            least = min(least, UInt64(bitPattern: row[1].integer ?? 0))
        }
        return least
    }
}
