import BundleSyncCore
import BundleSyncFormat
import BundleSyncStore

/// The state digest of a replica's tracked tables.
package enum StateDigest {
    /// A Merkle root over the tracked tables' user-visible content (SPEC §3.6).
    ///
    /// Tables in name order; in each, rows in primary-key order, each row a leaf hashing its
    /// key and every synced column (in column-name order) with its SQLite type. Leaves fold
    /// pairwise into a binary tree. Bookkeeping never enters it, so two replicas have the same
    /// digest exactly when their tracked content is the same.
    package static func compute(_ store: ReplicaStore) throws -> Digest32 {
        let db = store.db
        return try db.readTransaction {
            var root = Hasher256()
            root.update([0x03])
            for t in store.catalog.tracked {
                // Hashed under their synced names, read under this replica's names.
                let columns = t.schema.columns.map(\.name).sorted()
                let select = (t.schema.keyColumns + columns.map { t.sqlName(t.ordinal(of: $0)!) }).map(Database.quote).joined(separator: ", ")
                let s = try db.statement("SELECT \(select) FROM \(t.quotedTable) ORDER BY \(t.keyList)")
                var tree = MerkleAccumulator()
                var rows: UInt64 = 0
                var w = ByteWriter(capacity: 256)
                while try s.step() {
                    w.removeAll()
                    w.u8(0x00)
                    for i in 0..<(t.schema.keyColumns.count + columns.count) { ValueCodec.encode(Self.comparable(s.value(i)), into: &w) }
                    tree.add(Digest32.of(w.bytes))
                    rows += 1
                }
                var node = ByteWriter()
                node.u8(0x02)
                node.string(t.name)
                node.varint(t.schema.keyColumns.count)
                t.schema.keyColumns.forEach { node.string($0) }
                node.varint(columns.count)
                columns.forEach { node.string($0) }
                node.varint(rows)
                node.raw(tree.root.bytes)
                root.update(Digest32.of(node.bytes).bytes)
            }
            return root.finalize()
        }
    }
}

extension StateDigest {
    /// A value as SQLite compares it, where that differs from its bits: -0.0 is 0.0.
    ///
    /// No built-in SQL function tells -0.0 from 0.0 (`quote`, `printf` and comparisons
    /// all see 0.0), so capture triggers, which are built-in SQL, cannot see a write that
    /// only flips the sign of a zero; the digest sees what capture sees.
    static func comparable(_ v: SQLValue) -> SQLValue {
        if case .real(let d) = v, d == 0 { return .real(0) }
        return v
    }
}

/// Folds leaf hashes into a binary Merkle tree as they stream in, holding one hash per level.
struct MerkleAccumulator {
    private var stack: [(level: Int, hash: Digest32)] = []

    static func combine(_ a: Digest32, _ b: Digest32) -> Digest32 {
        Digest32.of([0x01] + a.bytes + b.bytes)
    }

    mutating func add(_ leaf: Digest32) {
        var node = (level: 0, hash: leaf)
        while let top = stack.last, top.level == node.level {
            stack.removeLast()
            node = (node.level + 1, Self.combine(top.hash, node.hash))
        }
        stack.append(node)
    }

    /// The root: complete subtrees folded from the right. An empty tree is all zeros.
    var root: Digest32 {
        guard var acc = stack.last?.hash else { return .zero }
        for entry in stack.dropLast().reversed() { acc = Self.combine(entry.hash, acc) }
        return acc
    }
}
