import BundleSyncCore
import BundleSyncFormat

/// A batch kept in the replica's history, without its body.
package struct StoredBatch: Sendable {
    package var origin: ReplicaID
    package var originIndex: Int64
    package var seq: UInt64
    package var hash: Digest32
    package var length: Int
    package var tables: [String]
    package var rows: Int
}

/// The batches a replica keeps (`_bundlesync_batches`): applied ones, to pass on to peers
/// that lack them, and parked ones, waiting for earlier history.
///
/// Bodies are kept zstd-compressed; the hash and signature cover the canonical bytes, so
/// relaying a stored batch later reproduces exactly what its origin signed.
package final class HistoryStore {
    let db: Database
    private let replicas: ReplicaDirectory
    private let held: HeldStore

    init(db: Database, replicas: ReplicaDirectory, held: HeldStore) {
        self.db = db
        self.replicas = replicas
        self.held = held
    }

    private var hasLeastHLC = false

    /// Adds `least_hlc`, each batch's least HLC, to a history kept by an earlier release;
    /// the batches stored before have none (NULL, counted as 0). Inside a write transaction.
    package func ensureLeastHLCColumn() throws {
        guard !hasLeastHLC else { return }
        let columns = try db.rows("SELECT name FROM pragma_table_info('_bundlesync_batches')").compactMap { $0[0].string }
        if !columns.contains("least_hlc") {
            try db.run("ALTER TABLE _bundlesync_batches ADD COLUMN least_hlc INTEGER")
        }
        hasLeastHLC = true
    }

    /// Begins compressing a batch's body for ``store(_:batch:origin:applied:body:)``, on a
    /// thread of its own when the body is large, so that merging the batch runs beside it.
    package static func compressing(_ signed: SignedBatch) -> PendingCompression {
        PendingCompression(signed.bytes)
    }

    /// Stores a batch: applied (part of this replica's contiguous history) or parked.
    /// `body` is its compression begun by ``compressing(_:)``; without it, the body is
    /// compressed here.
    package func store(_ signed: SignedBatch, batch: Batch, origin: Int64, applied: Bool, body: PendingCompression? = nil) throws {
        try ensureLeastHLCColumn()
        var names = ByteWriter()
        names.varint(batch.tables.count)
        batch.tables.forEach { names.string($0.table) }
        let order: SQLValue = applied ? try nextAppliedOrder() : .null
        let range = batch.hlcRange
        let least: SQLValue = range.map { .integer(Int64(bitPattern: $0.lowerBound.rawValue)) } ?? .null
        try db.run("""
            INSERT INTO _bundlesync_batches(origin, seq, hash, length, signature, body, tables, rows, applied_order, received, least_hlc)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.integer(origin), .integer(Int64(batch.seq)), .blob(signed.hash.bytes), .integer(Int64(signed.bytes.count)),
                  .blob(signed.signature), .blob(try body?.result() ?? ZstdCompressor.compress(signed.bytes)), .blob(names.bytes), .integer(Int64(batch.rowCount)), order,
                  .integer(HLC.nowMilliseconds()), least])
        try recordFloor(origin: origin, first: batch.seq, last: batch.seq, minimum: range?.lowerBound ?? .zero)
        if applied { try replicas.advanceHead(origin: origin, seq: batch.seq, hash: signed.hash) }
    }

    /// Marks a parked batch as applied.
    package func markApplied(origin: Int64, seq: UInt64, hash: Digest32) throws {
        try db.run("UPDATE _bundlesync_batches SET applied_order = ? WHERE origin = ? AND seq = ?",
                   [try nextAppliedOrder(), .integer(origin), .integer(Int64(seq))])
        try replicas.advanceHead(origin: origin, seq: seq, hash: hash)
    }

    private func nextAppliedOrder() throws -> SQLValue {
        guard case .integer(let n)? = try db.scalar("SELECT coalesce(max(applied_order), 0) + 1 FROM _bundlesync_batches") else {
            return .integer(1)
        }
        return .integer(n)
    }

    /// The hash of the stored batch (applied or parked) of `origin` numbered `seq`, if any.
    package func hash(origin: Int64, seq: UInt64) throws -> Digest32? {
        let s = try db.statement("SELECT hash FROM _bundlesync_batches WHERE origin = ? AND seq = ?")
        try s.bind([.integer(origin), .integer(Int64(seq))])
        guard try s.step(), let h = s.bytes(0).flatMap(Digest32.init(bytes:)) else { return nil }
        s.reset()
        return h
    }

    /// The hash of a stored batch of a replica known by id, if any.
    package func hash(origin: ReplicaID, seq: UInt64) throws -> Digest32? {
        guard let idx = try replicas.existingIndex(of: origin) else { return nil }
        return try hash(origin: idx, seq: seq)
    }

    /// Loads a stored batch's canonical bytes and signature.
    package func load(origin: Int64, seq: UInt64) throws -> SignedBatch {
        let s = try db.statement("SELECT body, signature, length, hash FROM _bundlesync_batches WHERE origin = ? AND seq = ?")
        try s.bind([.integer(origin), .integer(Int64(seq))])
        guard try s.step(), let body = s.bytes(0), let sig = s.bytes(1) else {
            throw BundleSyncError(.failure, "batch \(seq) of replica index \(origin) is missing from history", database: db.path)
        }
        let length = Int(s.int(2))
        let hash = s.bytes(3)
        s.reset()
        let bytes = try ZstdDecompressor.decompress(body, limit: length)
        let signed = SignedBatch(bytes: bytes, signature: sig)
        guard signed.hash.bytes == hash else {
            throw BundleSyncError(.failure, "stored batch \(seq) of replica index \(origin) is damaged (hash mismatch)", database: db.path)
        }
        return signed
    }

    /// Applied batches that a holder of `base` lacks, in the order they were applied here
    /// (a causal order).
    package func missing(from base: VersionVector) throws -> [StoredBatch] {
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
            out.append(StoredBatch(origin: id, originIndex: s.int(1), seq: seq, hash: Digest32(bytes: s.bytes(3) ?? []) ?? .zero,
                                   length: Int(s.int(4)), tables: names, rows: Int(s.int(6))))
        }
        return out
    }

    /// Parked batches: stored, waiting for earlier history.
    package func parked() throws -> [StoredBatch] {
        var out: [StoredBatch] = []
        let s = try db.statement("""
            SELECT r.id, b.origin, b.seq, b.hash, b.length FROM _bundlesync_batches b
            JOIN _bundlesync_replicas r ON r.idx = b.origin
            WHERE b.applied_order IS NULL ORDER BY b.origin, b.seq
            """)
        while try s.step() {
            guard let id = ReplicaID(bytes: s.bytes(0) ?? []) else { continue }
            out.append(StoredBatch(origin: id, originIndex: s.int(1), seq: UInt64(s.int(2)),
                                   hash: Digest32(bytes: s.bytes(3) ?? []) ?? .zero, length: Int(s.int(4)), tables: [], rows: 0))
        }
        return out
    }

    /// Drops a parked batch.
    package func dropParked(origin: Int64, seq: UInt64) throws {
        try db.run("DELETE FROM _bundlesync_batches WHERE origin = ? AND seq = ? AND applied_order IS NULL",
                   [.integer(origin), .integer(Int64(seq))])
    }

    /// Drops the parked batches of `origin` up to `seq` (a snapshot covered them).
    package func dropParked(origin: Int64, through seq: UInt64) throws {
        try db.run("DELETE FROM _bundlesync_batches WHERE origin = ? AND seq <= ? AND applied_order IS NULL",
                   [.integer(origin), .integer(Int64(seq))])
    }

    /// Drops the applied batches of `origin` up to `seq`.
    ///
    /// - Returns: How many were dropped, and their stored size.
    package func dropApplied(origin: Int64, through seq: UInt64) throws -> (batches: Int, bytes: Int) {
        let args: [SQLValue] = [.integer(origin), .integer(Int64(seq))]
        let which = "FROM _bundlesync_batches b WHERE b.origin = ? AND b.seq <= ? AND b.applied_order IS NOT NULL \(try held.notHeldCondition())"
        let size = try db.rows("SELECT count(*), coalesce(sum(length(b.body)), 0) \(which)", args)
        try db.run("DELETE FROM _bundlesync_batches WHERE rowid IN (SELECT b.rowid \(which))", args)
        return (Int(size[0][0].integer ?? 0), Int(size[0][1].integer ?? 0))
    }

    /// How many batches are kept, and their stored size.
    package func totals() throws -> (batches: Int, bytes: Int) {
        let row = try db.rows("SELECT count(*), coalesce(sum(length(body)), 0) FROM _bundlesync_batches")[0]
        return (Int(row[0].integer ?? 0), Int(row[1].integer ?? 0))
    }
}
