import BundleSyncCore
import BundleSyncFormat

// What a replica keeps of changes to tables and columns it does not track yet (SPEC §3.7):
// the batches and snapshot chunks that hold them, and how bundles declared those tables.

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

package final class HeldStore {
    private let db: Database

    init(db: Database) {
        self.db = db
    }

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
    package var items: [HeldItem]
}

extension HeldStore {
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
        return try db.rows("SELECT id, items FROM \(Self.heldChunksTable) ORDER BY id").map { row in
            HeldChunk(id: row[0].integer ?? 0, items: try Self.decodeItems(row[1].blobBytes))
        }
    }

    /// A held chunk's rows, decompressed and decoded only when they are needed.
    package func chunk(_ id: Int64) throws -> SnapshotChunk {
        let row = try db.rows("SELECT chunk, length FROM \(Self.heldChunksTable) WHERE id = ?", [.integer(id)])
        guard let row = row.first else { throw BundleSyncError(.failure, "held snapshot chunk \(id) is missing", database: db.path) }
        return try SnapshotChunk.decode(try ZstdDecompressor.decompress(row[0].blobBytes, limit: Int(row[1].integer ?? 0)))
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
