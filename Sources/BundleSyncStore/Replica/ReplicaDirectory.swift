import BundleSyncCore
import BundleSyncFormat

/// A peer this replica has heard from.
package struct KnownPeer: Sendable {
    package var index: Int64
    package var id: ReplicaID
    package var name: String?
    package var lastHeard: Int64?
}

/// The replicas this one knows (`_bundlesync_replicas`): their local indexes, keys, the
/// history held of each, and what each peer is known to hold (`_bundlesync_peer_vectors`).
///
/// Ids and local indexes are cached in memory. The cache mirrors a table, so it is dropped
/// whenever a write transaction rolls back: a replica recorded by a refused bundle must not
/// lend its index to the next one.
package final class ReplicaDirectory {
    private let db: Database
    private var idsByIndex: [Int64: ReplicaID] = [:]
    private var indexByID: [ReplicaID: Int64] = [:]

    init(db: Database) {
        self.db = db
        db.onRollback { [weak self] in
            self?.idsByIndex = [:]
            self?.indexByID = [:]
        }
    }

    /// The local index of a replica, adding it (with its key) the first time it is seen.
    package func index(of id: ReplicaID, publicKey: [UInt8]? = nil) throws -> Int64 {
        if let i = indexByID[id] {
            if let publicKey { try db.run("UPDATE _bundlesync_replicas SET public_key = ? WHERE idx = ? AND public_key IS NULL", [.blob(publicKey), .integer(i)]) }
            return i
        }
        if let i = try existingIndex(of: id) {
            remember(i, id)
            return try index(of: id, publicKey: publicKey)
        }
        try db.run("INSERT INTO _bundlesync_replicas(id, public_key) VALUES (?, ?)",
                   [.blob(id.bytes), publicKey.map { .blob($0) } ?? .null])
        guard case .integer(let idx)? = try db.scalar("SELECT last_insert_rowid()") else {
            throw BundleSyncError.failure("cannot record replica \(id.short)")
        }
        remember(idx, id)
        return idx
    }

    /// The local index of a replica already recorded here, without recording it.
    package func existingIndex(of id: ReplicaID) throws -> Int64? {
        if let i = indexByID[id] { return i }
        guard case .integer(let i)? = try db.scalar("SELECT idx FROM _bundlesync_replicas WHERE id = ?", [.blob(id.bytes)]) else { return nil }
        return i
    }

    /// The replica id behind a local index.
    package func id(at index: Int64) throws -> ReplicaID {
        if let id = idsByIndex[index] { return id }
        guard case .blob(let b)? = try db.scalar("SELECT id FROM _bundlesync_replicas WHERE idx = ?", [.integer(index)]),
              let id = ReplicaID(bytes: b) else {
            throw BundleSyncError.failure("bookkeeping names an unknown replica index \(index)")
        }
        remember(index, id)
        return id
    }

    private func remember(_ i: Int64, _ id: ReplicaID) {
        idsByIndex[i] = id
        indexByID[id] = i
    }

    package func publicKey(of id: ReplicaID) throws -> [UInt8]? {
        guard case .blob(let k)? = try db.scalar("SELECT public_key FROM _bundlesync_replicas WHERE id = ?", [.blob(id.bytes)]) else { return nil }
        return k
    }

    /// Every public key recorded here, by replica id.
    package func publicKeys() throws -> [ReplicaID: [UInt8]] {
        var keys: [ReplicaID: [UInt8]] = [:]
        for row in try db.rows("SELECT id, public_key FROM _bundlesync_replicas WHERE public_key IS NOT NULL") {
            if case .blob(let i) = row[0], let rid = ReplicaID(bytes: i), case .blob(let k) = row[1] { keys[rid] = k }
        }
        return keys
    }

    // MARK: - Encryption keys

    private static let exchangeKeysTable = "_bundlesync_exchange_keys"

    /// Records a replica's X25519 public key, as its latest bundle announced it.
    package func rememberExchangeKey(_ key: [UInt8], of replica: Int64) throws {
        try db.execute("CREATE TABLE IF NOT EXISTS \(Self.exchangeKeysTable)(replica INTEGER PRIMARY KEY, key BLOB NOT NULL)")
        try db.run("INSERT INTO \(Self.exchangeKeysTable)(replica, key) VALUES (?, ?) ON CONFLICT(replica) DO UPDATE SET key = excluded.key",
                   [.integer(replica), .blob(key)])
    }

    /// The X25519 public key a replica announced, or nil when none of its bundles said.
    package func exchangeKey(of replica: Int64) throws -> [UInt8]? {
        guard try db.scalar("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", [.text(Self.exchangeKeysTable)]) != nil,
              case .blob(let k)? = try db.scalar("SELECT key FROM \(Self.exchangeKeysTable) WHERE replica = ?", [.integer(replica)]) else {
            return nil
        }
        return k
    }

    /// The name recorded for a replica, if any.
    package func name(of id: ReplicaID) throws -> String? {
        try db.scalar("SELECT name FROM _bundlesync_replicas WHERE id = ?", [.blob(id.bytes)])?.string
    }

    // MARK: - History held

    /// What this replica holds: for each origin, how many of its batches, contiguously.
    package func vector() throws -> VersionVector {
        var v = VersionVector()
        let s = try db.statement("SELECT id, seq FROM _bundlesync_replicas WHERE seq > 0")
        while try s.step() {
            if let id = ReplicaID(bytes: s.bytes(0) ?? []) { v[id] = UInt64(s.int(1)) }
        }
        return v
    }

    /// The head of an origin's contiguous history here: its number and hash.
    package func head(of origin: Int64) throws -> (seq: UInt64, hash: Digest32) {
        let s = try db.statement("SELECT seq, head FROM _bundlesync_replicas WHERE idx = ?")
        try s.bind([.integer(origin)])
        guard try s.step() else { return (0, .zero) }
        let seq = UInt64(s.int(0))
        let hash = s.bytes(1).flatMap(Digest32.init(bytes:)) ?? .zero
        s.reset()
        return (seq, hash)
    }

    /// Makes batch `seq` (with `hash`) the head of `origin`'s contiguous history here.
    package func advanceHead(origin: Int64, seq: UInt64, hash: Digest32) throws {
        try db.run("UPDATE _bundlesync_replicas SET seq = ?, head = ? WHERE idx = ?",
                   [.integer(Int64(seq)), .blob(hash.bytes), .integer(origin)])
    }

    /// Where every origin's history stands here: its batch count and last batch hash.
    package func heads() throws -> [SnapshotHead] {
        try db.rows("SELECT id, seq, head FROM _bundlesync_replicas WHERE seq > 0").compactMap { row in
            guard case .blob(let id) = row[0], let rid = ReplicaID(bytes: id), case .integer(let seq) = row[1],
                  case .blob(let h) = row[2], let hash = Digest32(bytes: h) else { return nil }
            return SnapshotHead(origin: rid, seq: UInt64(seq), hash: hash)
        }
    }

    /// How messages name a replica: its name and short id when its name is known here.
    package func label(of id: ReplicaID) throws -> String {
        if case .text(let b)? = try db.scalar("SELECT name FROM _bundlesync_replicas WHERE id = ?", [.blob(id.bytes)]) {
            return "'\(shown(String(decoding: b, as: UTF8.self)))' (\(id.short))"
        }
        return id.short
    }

    // MARK: - Peers

    /// Peers heard from (this replica imported a bundle they exported), other than `me`.
    package func knownPeers(besides me: Int64) throws -> [KnownPeer] {
        try db.rows("""
            SELECT idx, id, name, last_heard FROM _bundlesync_replicas
            WHERE last_heard IS NOT NULL AND idx != ? AND NOT EXISTS (SELECT 1 FROM _bundlesync_meta WHERE key = \(Self.forgottenKey("id")))
            ORDER BY name, id
            """, [.integer(me)]).compactMap { row in
            guard case .integer(let idx) = row[0], case .blob(let b) = row[1], let id = ReplicaID(bytes: b) else { return nil }
            return KnownPeer(index: idx, id: id, name: row[2].string, lastHeard: row[3].integer)
        }
    }

    /// How many replicas other than `me` were ever heard from here, forgotten ones included.
    package func heardFromCount(besides me: Int64) throws -> UInt64 {
        UInt64(try db.scalar("SELECT count(*) FROM _bundlesync_replicas WHERE last_heard IS NOT NULL AND idx != ?", [.integer(me)])?.integer ?? 0)
    }

    /// The `_bundlesync_meta` key that marks a peer as forgotten, as an SQL expression over
    /// the column holding its id.
    private static func forgottenKey(_ idColumn: String) -> String { "'forgotten:' || lower(hex(\(idColumn)))" }

    /// The `_bundlesync_meta` key that marks a peer whose text writes name live text only
    /// (it runs a release that collects tombstones), as an SQL expression over its id column.
    private static func liveAnchorsKey(_ idColumn: String) -> String { "'live-anchors:' || lower(hex(\(idColumn)))" }

    /// The `_bundlesync_meta` key that marks a peer whose latest bundle read here said it
    /// reads format version 3, as an SQL expression over its id column.
    private static func readsFormat3Key(_ idColumn: String) -> String { "'reads-format-v3:' || lower(hex(\(idColumn)))" }

    /// Whether every one of `peers` said, in the latest of its bundles read here, that it
    /// reads format version 3.
    package func allReadFormat3(_ peers: [ReplicaID]) throws -> Bool {
        try allMarked(peers, Self.readsFormat3Key)
    }

    /// Whether `_bundlesync_meta` holds the per-peer mark `key` for every one of `peers`.
    private func allMarked(_ peers: [ReplicaID], _ key: (String) -> String) throws -> Bool {
        for p in peers {
            guard try db.scalar("SELECT 1 FROM _bundlesync_meta WHERE key = \(key("?"))", [.blob(p.bytes)]) != nil else { return false }
        }
        return true
    }

    /// Whether some replica other than `me` is known by name only: a replica that wrote
    /// history held here, or that a peer holds history of, whose own bundles were never
    /// imported here, and that was not forgotten.
    package func hasUnheardReplica(besides me: Int64) throws -> Bool {
        try db.scalar("""
            SELECT 1 FROM _bundlesync_replicas WHERE idx != ? AND last_heard IS NULL
              AND NOT EXISTS (SELECT 1 FROM _bundlesync_meta WHERE key = \(Self.forgottenKey("id"))) LIMIT 1
            """, [.integer(me)]) != nil
    }

    /// Whether every one of `peers` writes text naming live text only, as this release does.
    package func allAnchorLive(_ peers: [KnownPeer]) throws -> Bool {
        try allMarked(peers.map(\.id), Self.liveAnchorsKey)
    }

    /// Forgets a peer: it no longer counts among the peers whose needs keep history and
    /// decide what an export carries. What it was known to hold is kept, so that an old
    /// bundle of it brings nothing back; a bundle with news makes it a peer again.
    package func forget(_ peer: Int64) throws {
        try db.run("INSERT OR REPLACE INTO _bundlesync_meta(key, value) SELECT \(Self.forgottenKey("id")), last_heard FROM _bundlesync_replicas WHERE idx = ?",
                   [.integer(peer)])
    }

    /// Peers forgotten here: their index, id and name.
    package func forgottenPeers() throws -> [KnownPeer] {
        try db.rows("""
            SELECT idx, id, name, last_heard FROM _bundlesync_replicas
            WHERE EXISTS (SELECT 1 FROM _bundlesync_meta WHERE key = \(Self.forgottenKey("id"))) ORDER BY name, id
            """).compactMap { row in
            guard case .integer(let idx) = row[0], case .blob(let b) = row[1], let id = ReplicaID(bytes: b) else { return nil }
            return KnownPeer(index: idx, id: id, name: row[2].string, lastHeard: row[3].integer)
        }
    }

    /// What this replica knows a peer to hold.
    package func peerVector(_ peer: Int64) throws -> VersionVector {
        var v = VersionVector()
        let s = try db.statement("SELECT r.id, p.seq FROM _bundlesync_peer_vectors p JOIN _bundlesync_replicas r ON r.idx = p.origin WHERE p.peer = ?")
        try s.bind([.integer(peer)])
        while try s.step() {
            if let id = ReplicaID(bytes: s.bytes(0) ?? []) { v[id] = UInt64(s.int(1)) }
        }
        return v
    }

    /// Finds a replica other than `me` by name, id, or unambiguous id prefix.
    package func resolve(_ text: String, besides me: Int64) throws -> Int64 {
        let all = try db.rows("SELECT idx, id, name FROM _bundlesync_replicas WHERE idx != ?", [.integer(me)])
        var byName: [Int64] = []
        var byPrefix: [Int64] = []
        let lower = text.lowercased()
        for row in all {
            guard case .integer(let idx) = row[0], case .blob(let b) = row[1] else { continue }
            if row[2].string == text { byName.append(idx) }
            if !lower.isEmpty, hexString(b).hasPrefix(lower) { byPrefix.append(idx) }
        }
        if byName.count == 1 { return byName[0] }
        if byName.isEmpty && byPrefix.count == 1 { return byPrefix[0] }
        if byName.count + byPrefix.count > 1 {
            throw BundleSyncError.usage("peer '\(text)' is ambiguous", hint: "give more of its id; 'bundlesync status' lists peers")
        }
        throw BundleSyncError.usage("no known peer is called '\(text)'",
                                    hint: "a peer becomes known when one of its bundles is imported; 'bundlesync status' lists peers")
    }

    /// Remembers what a bundle's exporter held, so the next export to it carries only what
    /// it lacks.
    ///
    /// The peer counts as heard from at `now` only when the bundle brought news: history
    /// new here, or a vector that says more than the one known. An old bundle left on a
    /// stick says nothing about whether its exporter is still around.
    package func remember(exporterOf header: BundleHeader, heardAt now: Int64, broughtHistory: Bool) throws {
        let known = try existingIndex(of: header.exporter).map { try peerVector($0) }
        let news = broughtHistory || known.map { !$0.dominates(header.exporterVector) } ?? true
        let peer = try index(of: header.exporter, publicKey: header.exporterKey)
        if news {
            try db.run("DELETE FROM _bundlesync_meta WHERE key = (SELECT \(Self.forgottenKey("id")) FROM _bundlesync_replicas WHERE idx = ?)", [.integer(peer)])
        }
        if let key = header.exchangeKey { try rememberExchangeKey(key, of: peer) }
        // A peer whose release went back says so in its next bundle.
        if header.optionalCapabilities.contains(BundleHeader.readsFormat3Capability) {
            try db.run("INSERT OR IGNORE INTO _bundlesync_meta(key, value) SELECT \(Self.readsFormat3Key("id")), 1 FROM _bundlesync_replicas WHERE idx = ?",
                       [.integer(peer)])
        } else {
            try db.run("DELETE FROM _bundlesync_meta WHERE key = (SELECT \(Self.readsFormat3Key("id")) FROM _bundlesync_replicas WHERE idx = ?)",
                       [.integer(peer)])
        }
        if header.optionalCapabilities.contains(BundleHeader.liveAnchorsCapability) {
            try db.run("INSERT OR IGNORE INTO _bundlesync_meta(key, value) SELECT \(Self.liveAnchorsKey("id")), 1 FROM _bundlesync_replicas WHERE idx = ?",
                       [.integer(peer)])
        }
        try db.run("""
            UPDATE _bundlesync_replicas SET name = coalesce(name, ?),
              last_heard = CASE WHEN ? OR last_heard IS NULL THEN max(coalesce(last_heard, 0), ?) ELSE last_heard END
            WHERE idx = ?
            """, [.text(header.exporterName), .integer(news ? 1 : 0), .integer(now), .integer(peer)])
        // Only what says more than the vector already known here is written: with many
        // replicas, a vector is long and mostly unchanged from one bundle to the next.
        for (origin, seq) in header.exporterVector.sorted where seq > known?[origin] ?? 0 {
            let o = try index(of: origin, publicKey: header.keys[origin])
            try db.run("""
                INSERT INTO _bundlesync_peer_vectors(peer, origin, seq) VALUES (?, ?, ?)
                ON CONFLICT(peer, origin) DO UPDATE SET seq = max(seq, excluded.seq)
                """, [.integer(peer), .integer(o), .integer(Int64(seq))])
        }
    }
}

extension SQLValue {
    /// The text of a TEXT value, or nil.
    package var string: String? {
        if case .text(let b) = self { return String(decoding: b, as: UTF8.self) }
        return nil
    }

    /// The integer of an INTEGER value, or nil.
    package var integer: Int64? {
        if case .integer(let v) = self { return v }
        return nil
    }
}
