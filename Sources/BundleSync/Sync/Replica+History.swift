/// A batch kept in the replica's history, without its body.
struct StoredBatch {
    var origin: ReplicaID
    var originIndex: Int64
    var seq: UInt64
    var hash: Digest32
    var length: Int
    var tables: [String]
    var rows: Int
}

extension Replica {
    // MARK: - History

    /// Stores a batch: applied (part of this replica's contiguous history) or parked.
    ///
    /// Bodies are kept zstd-compressed; the hash and signature cover the canonical bytes, so
    /// relaying a stored batch later reproduces exactly what its origin signed.
    func storeBatch(_ signed: SignedBatch, batch: Batch, origin: Int64, applied: Bool) throws {
        var names = ByteWriter()
        names.varint(batch.tables.count)
        batch.tables.forEach { names.string($0.table) }
        let order: SQLValue = applied ? try nextAppliedOrder() : .null
        try db.run("""
            INSERT INTO _bundlesync_batches(origin, seq, hash, length, signature, body, tables, rows, applied_order, received)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.integer(origin), .integer(Int64(batch.seq)), .blob(signed.hash.bytes), .integer(Int64(signed.bytes.count)),
                  .blob(signed.signature), .blob(try ZstdCompressor.compress(signed.bytes)), .blob(names.bytes), .integer(Int64(batch.rowCount)), order,
                  .integer(HLC.nowMilliseconds())])
        if applied { try advanceHead(origin: origin, seq: batch.seq, hash: signed.hash) }
    }

    /// Marks a parked batch as applied.
    func markApplied(origin: Int64, seq: UInt64, hash: Digest32) throws {
        try db.run("UPDATE _bundlesync_batches SET applied_order = ? WHERE origin = ? AND seq = ?",
                   [try nextAppliedOrder(), .integer(origin), .integer(Int64(seq))])
        try advanceHead(origin: origin, seq: seq, hash: hash)
    }

    private func nextAppliedOrder() throws -> SQLValue {
        guard case .integer(let n)? = try db.scalar("SELECT coalesce(max(applied_order), 0) + 1 FROM _bundlesync_batches") else {
            return .integer(1)
        }
        return .integer(n)
    }

    /// Makes batch `seq` (with `hash`) the head of `origin`'s contiguous history here.
    func advanceHead(origin: Int64, seq: UInt64, hash: Digest32) throws {
        try db.run("UPDATE _bundlesync_replicas SET seq = ?, head = ? WHERE idx = ?",
                   [.integer(Int64(seq)), .blob(hash.bytes), .integer(origin)])
    }

    /// The hash of the stored batch (applied or parked) of `origin` numbered `seq`, if any.
    func storedBatch(origin: Int64, seq: UInt64) throws -> Digest32? {
        let s = try db.statement("SELECT hash FROM _bundlesync_batches WHERE origin = ? AND seq = ?")
        try s.bind([.integer(origin), .integer(Int64(seq))])
        guard try s.step(), let h = s.bytes(0).flatMap(Digest32.init(bytes:)) else { return nil }
        s.reset()
        return h
    }

    /// Loads a stored batch's canonical bytes and signature.
    func loadBatch(origin: Int64, seq: UInt64) throws -> SignedBatch {
        let s = try db.statement("SELECT body, signature, length, hash FROM _bundlesync_batches WHERE origin = ? AND seq = ?")
        try s.bind([.integer(origin), .integer(Int64(seq))])
        guard try s.step(), let body = s.bytes(0), let sig = s.bytes(1) else {
            throw BundleSyncError.failure("batch \(seq) of replica index \(origin) is missing from history")
        }
        let length = Int(s.int(2))
        let hash = s.bytes(3)
        s.reset()
        let bytes = try ZstdDecompressor.decompress(body, limit: length)
        let signed = SignedBatch(bytes: bytes, signature: sig)
        guard signed.hash.bytes == hash else {
            throw BundleSyncError.failure("stored batch \(seq) of replica index \(origin) is damaged (hash mismatch)")
        }
        return signed
    }

    /// Applied batches that a holder of `base` lacks, in the order they were applied here
    /// (a causal order).
    func batchesMissing(from base: VersionVector) throws -> [StoredBatch] {
        var out: [StoredBatch] = []
        let s = try db.statement("""
            SELECT r.id, b.origin, b.seq, b.hash, b.length, b.tables, b.rows FROM _bundlesync_batches b
            JOIN _bundlesync_replicas r ON r.idx = b.origin
            WHERE b.applied_order IS NOT NULL ORDER BY b.applied_order
            """)
        while try s.step() {
            guard let id = ReplicaID(bytes: s.bytes(0) ?? []) else { continue }
            let seq = UInt64(s.int(2))
            guard seq > base[id] else { continue }
            var r = ByteReader(s.bytes(5) ?? [])
            let n = try r.count("table count", limit: Limits.maxTables)
            var names: [String] = []
            for _ in 0..<n { names.append(try r.string("table name")) }
            out.append(StoredBatch(origin: id, originIndex: s.int(1), seq: seq, hash: Digest32(bytes: s.bytes(3) ?? [])!,
                                   length: Int(s.int(4)), tables: names, rows: Int(s.int(6))))
        }
        return out
    }

    /// Parked batches: stored, waiting for earlier history.
    func parkedBatches() throws -> [StoredBatch] {
        var out: [StoredBatch] = []
        let s = try db.statement("""
            SELECT r.id, b.origin, b.seq, b.hash, b.length FROM _bundlesync_batches b
            JOIN _bundlesync_replicas r ON r.idx = b.origin
            WHERE b.applied_order IS NULL ORDER BY b.origin, b.seq
            """)
        while try s.step() {
            guard let id = ReplicaID(bytes: s.bytes(0) ?? []) else { continue }
            out.append(StoredBatch(origin: id, originIndex: s.int(1), seq: UInt64(s.int(2)),
                                   hash: Digest32(bytes: s.bytes(3) ?? [])!, length: Int(s.int(4)), tables: [], rows: 0))
        }
        return out
    }
}
