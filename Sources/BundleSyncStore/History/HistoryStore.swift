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

    init(db: Database, replicas: ReplicaDirectory) {
        self.db = db
        self.replicas = replicas
    }

    /// Stores a batch: applied (part of this replica's contiguous history) or parked.
    package func store(_ signed: SignedBatch, batch: Batch, origin: Int64, applied: Bool) throws {
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
        let which = "FROM _bundlesync_batches b WHERE b.origin = ? AND b.seq <= ? AND b.applied_order IS NOT NULL \(try notHeldCondition())"
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

/// A batch applied here only in part: some of its changes are to tables or columns this
/// replica does not track yet (an application not yet updated on this device). The batch is
/// kept, never pruned, and merged again once they are tracked (SPEC §3.7).
package struct HeldBatch: Sendable {
    package var originIndex: Int64
    package var seq: UInt64
    /// What is held: a table name, or a table and column.
    package var items: [HeldItem]
}

/// A table, or one column of a table, whose changes a replica holds.
package struct HeldItem: Hashable, Sendable, CustomStringConvertible {
    package var table: String
    package var column: String?

    package init(table: String, column: String?) {
        self.table = table
        self.column = column
    }

    package var description: String {
        column.map { "column '\(shown($0))' of '\(shown(table))'" } ?? "table '\(shown(table))'"
    }
}

extension HistoryStore {
    private static let heldTable = "_bundlesync_held"

    private func heldTableExists() throws -> Bool {
        try db.scalar("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", [.text(Self.heldTable)]) != nil
    }

    /// Records that a stored batch holds changes to `items`.
    package func hold(origin: Int64, seq: UInt64, items: [HeldItem]) throws {
        try db.execute("CREATE TABLE IF NOT EXISTS \(Self.heldTable)(origin INTEGER NOT NULL, seq INTEGER NOT NULL, items BLOB NOT NULL, PRIMARY KEY(origin, seq)) WITHOUT ROWID")
        try db.run("INSERT OR REPLACE INTO \(Self.heldTable)(origin, seq, items) VALUES (?, ?, ?)",
                   [.integer(origin), .integer(Int64(seq)), .blob(Self.encode(items))])
    }

    /// Remembers how a bundle declared a table this replica holds changes to, so that it can
    /// declare it the same way when it relays the held batches.
    package func rememberDeclared(_ declared: TableSchema) throws {
        try db.execute("CREATE TABLE IF NOT EXISTS _bundlesync_held_schemas(name TEXT PRIMARY KEY, schema BLOB NOT NULL) WITHOUT ROWID")
        // Bundles of different application versions declare different columns: keep them all.
        var schema = try self.declared(declared.name) ?? declared
        for c in declared.columns where !schema.columns.contains(where: { $0.name == c.name }) { schema.columns.append(c) }
        var w = ByteWriter()
        schema.encode(into: &w)
        try db.run("INSERT OR REPLACE INTO _bundlesync_held_schemas(name, schema) VALUES (?, ?)", [.text(schema.name), .blob(w.bytes)])
    }

    /// How bundles declared a table this replica holds changes to, if it does.
    package func declared(_ table: String) throws -> TableSchema? {
        guard try db.scalar("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_bundlesync_held_schemas'") != nil,
              case .blob(let b)? = try db.scalar("SELECT schema FROM _bundlesync_held_schemas WHERE name = ?", [.text(table)]) else { return nil }
        var r = ByteReader(b)
        return try TableSchema.decode(from: &r)
    }

    /// Forgets that a batch holds anything: all of it is applied now.
    package func release(origin: Int64, seq: UInt64) throws {
        try db.run("DELETE FROM \(Self.heldTable) WHERE origin = ? AND seq = ?", [.integer(origin), .integer(Int64(seq))])
    }

    /// The batches that hold changes, in the order they were applied.
    package func heldBatches() throws -> [HeldBatch] {
        guard try heldTableExists() else { return [] }
        return try db.rows("""
            SELECT h.origin, h.seq, h.items FROM \(Self.heldTable) h
            LEFT JOIN _bundlesync_batches b ON b.origin = h.origin AND b.seq = h.seq ORDER BY b.applied_order
            """).map { row in
            HeldBatch(originIndex: row[0].integer ?? 0, seq: UInt64(row[1].integer ?? 0), items: try Self.decodeItems(row[2].blobBytes))
        }
    }

    /// The SQL condition that spares held batches (as `b`) from pruning.
    package func notHeldCondition() throws -> String {
        try heldTableExists() ? "AND NOT EXISTS (SELECT 1 FROM \(Self.heldTable) h WHERE h.origin = b.origin AND h.seq = b.seq)" : ""
    }
}

extension SQLValue {
    /// The bytes of a BLOB or TEXT value, or none.
    package var blobBytes: [UInt8] {
        switch self {
        case .blob(let b), .text(let b): b
        default: []
        }
    }
}

/// A snapshot chunk applied here only in part, kept whole until what it holds is tracked.
package struct HeldChunk: Sendable {
    package var id: Int64
    package var chunk: SnapshotChunk
    package var items: [HeldItem]
}

extension HistoryStore {
    private static let heldChunksTable = "_bundlesync_held_chunks"

    static func encode(_ items: [HeldItem]) -> [UInt8] {
        var w = ByteWriter()
        for item in items.sorted(by: { ($0.table, $0.column ?? "") < ($1.table, $1.column ?? "") }) {
            w.string(item.table)
            w.string(item.column ?? "")
        }
        return w.bytes
    }

    static func decodeItems(_ bytes: [UInt8]) throws -> [HeldItem] {
        var r = ByteReader(bytes)
        var items: [HeldItem] = []
        while !r.isAtEnd {
            let table = try r.string("held table")
            let column = try r.string("held column")
            items.append(HeldItem(table: table, column: column.isEmpty ? nil : column))
        }
        return items
    }

    /// Keeps a snapshot chunk some of whose rows or cells belong to `items`.
    package func hold(_ chunk: SnapshotChunk, items: [HeldItem]) throws {
        try db.execute("CREATE TABLE IF NOT EXISTS \(Self.heldChunksTable)(id INTEGER PRIMARY KEY, chunk BLOB NOT NULL, length INTEGER NOT NULL, items BLOB NOT NULL)")
        let bytes = chunk.encoded()
        try db.run("INSERT INTO \(Self.heldChunksTable)(chunk, length, items) VALUES (?, ?, ?)",
                   [.blob(try ZstdCompressor.compress(bytes)), .integer(Int64(bytes.count)), .blob(Self.encode(items))])
    }

    /// The held snapshot chunks, oldest first.
    package func heldChunks() throws -> [HeldChunk] {
        guard try db.scalar("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", [.text(Self.heldChunksTable)]) != nil else { return [] }
        return try db.rows("SELECT id, chunk, length, items FROM \(Self.heldChunksTable) ORDER BY id").map { row in
            let bytes = try ZstdDecompressor.decompress(row[1].blobBytes, limit: Int(row[2].integer ?? 0))
            return HeldChunk(id: row[0].integer ?? 0, chunk: try SnapshotChunk.decode(bytes), items: try Self.decodeItems(row[3].blobBytes))
        }
    }

    /// Records what a held chunk still holds; with nothing left, forgets it.
    package func updateHeld(chunk id: Int64, items: [HeldItem]) throws {
        if items.isEmpty {
            try db.run("DELETE FROM \(Self.heldChunksTable) WHERE id = ?", [.integer(id)])
        } else {
            try db.run("UPDATE \(Self.heldChunksTable) SET items = ? WHERE id = ?", [.blob(Self.encode(items)), .integer(id)])
        }
    }
}
