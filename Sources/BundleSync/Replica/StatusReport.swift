import BundleSyncCore
import BundleSyncFormat
import BundleSyncStore
import Foundation

/// Everything `status` shows about a replica, read in one transaction.
public struct StatusReport: Sendable {
    public struct Peer: Sendable {
        public var id: ReplicaID
        public var name: String?
        /// What the peer is known to hold.
        public var vector: VersionVector
        public var lacksBatches: Int
        public var lacksChanges: Int
        /// The bytes of history kept here for it: the batches it lacks.
        public var lacksBytes: Int
        /// Milliseconds since the Unix epoch.
        public var lastHeard: Int64?
        /// Whether one of its bundles told this replica its encryption key.
        public var encryptionKeyKnown = false
        /// Whether its latest bundle read here said it reads format version 3. Bundles for
        /// it, and for every peer when no target is named, are in version 2 until it does.
        public var readsFormat3 = false
    }

    public struct Parked: Sendable {
        public var origin: ReplicaID
        public var seq: UInt64
        public var hash: Digest32
        /// The batches that would release it ("batches 3–5 of ID").
        public var waitsFor: String
    }

    public var id: ReplicaID
    public var name: String
    public var path: String
    public var vector: VersionVector
    public var clock: HLC
    public var peers: [Peer]
    /// Peers forgotten with `forget`: they keep no history here.
    public var forgotten: [(id: ReplicaID, name: String?)]
    public var pendingByTable: [String: Int]
    public var parked: [Parked]
    public var historyBatches: Int
    public var historyBytes: Int
    public var trustOnly: Bool
    /// Whether every bundle this replica writes is encrypted (`config DB encrypt always`).
    public var encryptAlways = false
    /// How many replicas the group was declared to have (`config DB fleet N`; 0: not
    /// declared), and how many were heard from, this one and forgotten ones included.
    public var fleet: (declared: UInt64, heard: UInt64) = (0, 1)
    public var atHome: Bool
    public var tables: [TableSchema]
    /// Tables and columns not tracked here whose changes this replica holds, with how many
    /// batches or snapshot chunks hold them.
    public var held: [(what: String, batches: Int)]

    public var pendingChanges: Int { pendingByTable.values.reduce(0, +) }

    package init(_ store: ReplicaStore) throws {
        let replicas = store.replicas
        (id, name, path) = (store.id, store.name, store.db.path)
        (vector, clock, peers, parked, forgotten) = (VersionVector(), .zero, [], [], [])
        (pendingByTable, historyBatches, historyBytes, trustOnly, atHome, tables, held) = ([:], 0, 0, false, false, [], [])
        try store.db.readTransaction {
            vector = try replicas.vector()
            clock = try store.clock
            peers = try replicas.knownPeers(besides: store.selfIndex).map { p in
                let holds = try replicas.peerVector(p.index)
                let missing = try store.history.missing(from: holds)
                return Peer(id: p.id, name: p.name, vector: holds, lacksBatches: missing.count,
                            lacksChanges: missing.reduce(0) { $0 + $1.rows }, lacksBytes: missing.reduce(0) { $0 + $1.length },
                            lastHeard: p.lastHeard,
                            encryptionKeyKnown: try replicas.exchangeKey(of: p.index) != nil,
                            readsFormat3: try replicas.allReadFormat3([p.id]))
            }
            forgotten = try replicas.forgottenPeers().map { ($0.id, $0.name) }
            parked = try store.history.parked().map { try Self.describe($0, store: store, vector: vector) }
            (historyBatches, historyBytes) = try store.history.totals()
            pendingByTable = try store.catalog.pendingChanges()
            trustOnly = try TrustList(store: store).isEnforced
            encryptAlways = try store.requiresEncryption
            fleet = (try store.fleetSize ?? 0, try replicas.heardFromCount(besides: store.selfIndex) + 1)
            atHome = try Home.isAtHome(store.db)
            tables = store.catalog.tracked.map(\.schema)
            var counts: [String: Int] = [:]
            for items in try store.held.heldBatches().map(\.items) + store.held.heldChunks().map(\.items) {
                for item in items { counts[item.description, default: 0] += 1 }
            }
            held = counts.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
    }

    private static func describe(_ p: StoredBatch, store: ReplicaStore, vector: VersionVector) throws -> Parked {
        let head = try store.replicas.head(of: p.originIndex)
        var waits: String
        if p.seq > head.seq + 1 {
            waits = describeRange(head.seq + 1, p.seq - 1, of: p.origin)
        } else {
            let batch = try Batch.decode(try store.history.load(origin: p.originIndex, seq: p.seq).bytes)
            let missing = batch.dependencies.sorted.filter { vector[$0.0] < $0.1 }
            waits = missing.map { describeRange(vector[$0.0] + 1, $0.1, of: $0.0) }.joined(separator: ", ")
        }
        return Parked(origin: p.origin, seq: p.seq, hash: p.hash, waitsFor: waits)
    }

    /// "batch 3 of ID" or "batches 3–5 of ID".
    static func describeRange(_ first: UInt64, _ last: UInt64, of origin: ReplicaID) -> String {
        first == last ? "batch \(first) of \(origin.short)" : "batches \(first)–\(last) of \(origin.short)"
    }

    /// The JSON document of `status --json`.
    public var json: [String: Any] {
        [
            "id": id.hex,
            "name": name,
            "path": path,
            "vector": vector.json,
            "clock": clock.description,
            "peers": peers.map { p -> [String: Any] in
                var d: [String: Any] = ["id": p.id.hex, "name": p.name ?? NSNull(), "vector": p.vector.json,
                                        "lacks_batches": p.lacksBatches, "lacks_changes": p.lacksChanges, "lacks_bytes": p.lacksBytes,
                                        "encryption_key_known": p.encryptionKeyKnown, "reads_format_3": p.readsFormat3]
                if let h = p.lastHeard { d["last_heard"] = isoFormatter.string(from: Date(timeIntervalSince1970: Double(h) / 1000)) }
                return d
            },
            "forgotten": forgotten.map { ["id": $0.id.hex, "name": $0.name ?? NSNull()] as [String: Any] },
            "pending_changes": pendingChanges,
            "pending_by_table": pendingByTable,
            "parked": parked.map { ["origin": $0.origin.hex, "seq": $0.seq, "hash": $0.hash.hex, "waits_for": $0.waitsFor] as [String: Any] },
            "history": ["batches": historyBatches, "bytes": historyBytes],
            "trust_only": trustOnly,
            "encrypt": encryptAlways ? "always" : "never",
            "fleet": ["declared": fleet.declared, "heard_from": fleet.heard, "collecting": fleet.declared > 0 && fleet.declared == fleet.heard],
            "at_home": atHome,
            "held": held.map { ["what": $0.what, "batches": $0.batches] as [String: Any] },
            "tables": tables.map { t in
                ["name": t.name, "key": t.keyColumns,
                 "columns": t.columns.map { ["name": $0.name, "rule": $0.rule.description] }] as [String: Any]
            },
        ]
    }
}
