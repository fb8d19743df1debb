/// One entry of `trust list`.
public struct TrustEntry: Sendable {
    public var id: ReplicaID
    public var name: String?
    public var trusted: Bool
    public var isSelf: Bool
}

import BundleSyncCore
import BundleSyncFormat
import BundleSyncStore

/// The replicas this one accepts history from (SPEC §4.2): anyone by default (trust on first
/// use), or only those on the list once it is enforced.
public struct TrustList {
    package let store: ReplicaStore

    package init(store: ReplicaStore) {
        self.store = store
    }

    private var db: Database { store.db }

    /// Whether only replicas on the trust list may contribute history. Off by default.
    public var isEnforced: Bool {
        get throws { try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'trust_only'")?.integer.map { $0 != 0 } ?? false }
    }

    public func enforce(_ on: Bool) throws {
        try store.withoutCapture {
            try db.run("INSERT OR REPLACE INTO _bundlesync_meta(key, value) VALUES ('trust_only', ?)", [.integer(on ? 1 : 0)])
        }
    }

    /// Puts a replica on the trust list, or takes it off.
    ///
    /// - Parameters:
    ///   - peer: A known replica's name, id or id prefix, or the full 32-digit id of one not
    ///     heard from yet.
    ///   - name: A name to remember it by.
    /// - Returns: The replica's id.
    @discardableResult
    public func set(_ peer: String, trusted: Bool, name: String? = nil) throws -> ReplicaID {
        try store.withoutCapture {
            let idx: Int64
            if let full = ReplicaID(hex: peer.lowercased()) {
                idx = try store.replicas.index(of: full)
            } else {
                idx = try store.replicas.resolve(peer, besides: store.selfIndex)
            }
            if let name { try ReplicaStore.validateName(name) }
            try db.run("UPDATE _bundlesync_replicas SET trusted = ?, name = coalesce(?, name) WHERE idx = ?",
                       [.integer(trusted ? 1 : 0), name.map { .text($0) } ?? .null, .integer(idx)])
            return try store.replicas.id(at: idx)
        }
    }

    public func entries() throws -> [TrustEntry] {
        try db.rows("SELECT idx, id, name, trusted FROM _bundlesync_replicas ORDER BY trusted DESC, name, id").compactMap { row in
            guard case .integer(let idx) = row[0], case .blob(let b) = row[1], let id = ReplicaID(bytes: b),
                  case .integer(let t) = row[3] else { return nil }
            var name: String?
            if case .text(let n) = row[2] { name = String(decoding: n, as: UTF8.self) }
            return TrustEntry(id: id, name: name, trusted: t != 0 || idx == store.selfIndex, isSelf: idx == store.selfIndex)
        }
    }

    /// Refuses a bundle with an exporter or an origin that is not trusted, when the trust
    /// list is on.
    ///
    /// - Throws: `.untrusted` naming the replica and how to trust it.
    package func check(_ header: BundleHeader, path: String) throws {
        guard try isEnforced else { return }
        var seen = Set<ReplicaID>()
        let snapshotOrigins = header.isSnapshot ? header.keys.keys.sorted().map { ("holds a snapshot with history of", $0) } : []
        for (role, id) in [("was exported by", header.exporter)] + header.batches.map({ ("relays history of", $0.origin) }) + snapshotOrigins
        where seen.insert(id).inserted && id != store.id {
            if case .integer(1)? = try db.scalar("SELECT trusted FROM _bundlesync_replicas WHERE id = ?", [.blob(id.bytes)]) { continue }
            throw BundleSyncError(.untrusted, "'\(path)' \(role) replica \(id.hex), which is not on this replica's trust list",
                                  hint: "if you know that device, run 'bundlesync trust \(db.path) add \(id.hex)' and import again", bundle: path)
        }
    }
}
