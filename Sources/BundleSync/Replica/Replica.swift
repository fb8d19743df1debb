import Foundation

/// A database that bundlesync syncs: the application's tables plus the bookkeeping that
/// makes them a replica.
///
/// `Replica` is the library's front door. Each job is done by a type of its own, over the
/// replica's ``ReplicaStore``: ``TableTracker`` (track), ``Sealer`` (local changes into
/// batches), ``Exporter`` and ``SnapshotWriter`` (export), ``Importer`` with ``RowMerger``
/// and ``CellMerger`` (import), ``TrustList``, ``Mailbox`` (shared folders), ``StatusReport``
/// and ``StateDigest``. A `Replica` owns one connection; every operation that writes runs in
/// one IMMEDIATE transaction with capture switched off for its own writes, so the
/// application can keep writing from other connections and never sees half of an import.
public final class Replica {
    package let store: ReplicaStore
    /// Receives progress of long operations (sealing, export, import).
    public var progress: ProgressHandler?
    /// What stops this replica from syncing until the user settles it (a dropped tracked
    /// table, a renamed column), found by ``CaptureCheck`` when it was opened.
    public let problems: [BundleSyncError]

    private init(store: ReplicaStore) throws {
        self.store = store
        try RestoreCheck(store: store).run()
        problems = try CaptureCheck(store: store).run()
        if problems.isEmpty { try HeldReplay(store: store).run() }
    }

    /// Throws the first problem that stops sync, if any.
    private func requireSyncable() throws {
        if let first = problems.first { throw first }
    }

    /// Warnings gathered since the last call: rows that could not be synced, capture that
    /// was repaired.
    public func takeNotices() -> [String] {
        defer { (store.notices, store.lateWrites) = ([], []) }
        return store.notices + store.lateWrites
    }

    public var db: Database { store.db }
    public var id: ReplicaID { store.id }
    public var name: String { store.name }

    // MARK: - Opening

    /// Settles SQLite's process-wide settings for a program that runs one command and exits:
    /// no count of allocated memory (see ``Database/stopCountingMemory()``). Call it before
    /// opening any replica; later calls have no effect.
    public static func configureProcess() {
        Database.stopCountingMemory()
    }

    /// Makes `path` a replica, creating the file if it is missing. Idempotent.
    ///
    /// - Returns: The replica and whether it was created just now.
    public static func initialize(path: String, name: String?) throws -> (Replica, created: Bool) {
        let (store, created) = try ReplicaStore.initialize(path: path, name: name)
        return (try Replica(store: store), created)
    }

    /// Opens an existing replica.
    ///
    /// - Throws: `.noInput` if the file is missing, `.usage` if it is not a replica.
    public static func open(path: String) throws -> Replica {
        try Replica(store: try ReplicaStore.open(path: path))
    }

    // MARK: - The jobs

    /// Starts syncing `table`, or picks up columns added since it was tracked (see
    /// ``TableTracker/track(table:rules:)``).
    public func track(table: String, rules: [String: ColumnRule] = [:], renamed: [String: String] = [:]) throws -> TrackReport {
        try TableTracker(store: store, progress: progress).track(table: table, rules: rules, renamed: renamed)
    }

    /// Seals every pending local change into signed batches (see ``Sealer``). Must run
    /// inside a write transaction.
    @discardableResult
    package func sealPending(keepingHistory: Bool = true) throws -> [BatchSummary] {
        try requireSyncable()
        return try Sealer(store: store, progress: progress).sealPending(keepingHistory: keepingHistory)
    }

    /// Seals pending changes and writes one bundle with the history the target lacks.
    ///
    /// - Parameters:
    ///   - encrypt: Encrypt the bundle to its recipients; a replica set to `encrypt always`
    ///     encrypts every bundle.
    ///   - helloWhenNoKeys: When the bundle must be encrypted and a recipient's key is not
    ///     known, write a hello bundle (keys and vector, no changes, in the clear) instead of
    ///     refusing.
    ///   - passphrase: Also encrypt the bundle to this passphrase, for a device whose key is
    ///     not known here yet.
    public func export(to output: String, target: ExportTarget, encrypt: Bool = false, helloWhenNoKeys: Bool = false,
                       passphrase: [UInt8]? = nil) throws -> ExportResult {
        try requireSyncable()
        return try Exporter(store: store, progress: progress).export(to: output, target: target, encrypt: encrypt,
                                                                     helloWhenNoKeys: helloWhenNoKeys, passphrase: passphrase)
    }

    /// Exports into a shared folder (`sync`): like ``export(to:target:)``, but leaves out the
    /// batches that their origins' own bundles there carry, as imported just before
    /// (`imported`); every replica that syncs through the folder reads those bundles too. So
    /// each replica's file carries its own history and what the folder lacks, and the folder
    /// grows with the number of replicas, not with its square.
    public func exportToFolder(_ directory: String, target: ExportTarget, imported: [ImportOutcome], encrypt: Bool = false,
                               helloWhenNoKeys: Bool = false, passphrase: [UInt8]? = nil) throws -> ExportResult {
        try requireSyncable()
        var carried: [ReplicaID: Set<UInt64>] = [:]
        for outcome in imported where outcome.status != .refused {
            guard let own = outcome.exportersOwn else { continue }
            carried[own.exporter, default: []].formUnion(own.seqs)
        }
        return try Exporter(store: store, progress: progress).export(to: directory, target: target, encrypt: encrypt,
                                                                    helloWhenNoKeys: helloWhenNoKeys, passphrase: passphrase, inFolder: carried)
    }

    /// What opens bundles encrypted to this replica.
    public var keyring: BundleKeyring { BundleKeyring(replica: store.id, exchange: store.exchange) }

    /// This replica's key with a passphrase.
    public func keyring(passphrase: [UInt8]?) -> BundleKeyring {
        BundleKeyring(replica: store.id, exchange: store.exchange, passphrase: passphrase)
    }

    /// Whether this replica writes encrypted bundles only.
    public var requiresEncryption: Bool { get throws { try store.requiresEncryption } }

    /// Makes this replica write encrypted bundles only, or plain ones unless asked.
    public func setRequiresEncryption(_ on: Bool) throws { try store.setRequiresEncryption(on) }

    /// How many of each origin's latest batches pruning keeps even when every known peer
    /// holds them (see ``Mailbox/keptBatchesPerOrigin``, the default).
    public var keptBatches: UInt64 { get throws { try store.keptBatches ?? Mailbox.keptBatchesPerOrigin } }

    /// Sets how many of each origin's latest batches pruning keeps.
    public func setKeptBatches(_ n: UInt64) throws { try store.setKeptBatches(n) }

    /// How many replicas the user declared the group to have, this one included (0: not
    /// declared, so text and JSON tombstones are kept).
    public var fleetSize: UInt64 { get throws { try store.fleetSize ?? 0 } }

    /// Declares how many replicas write to the group (`config DB fleet N`); 0 withdraws it.
    public func setFleetSize(_ n: UInt64) throws { try store.setFleetSize(n) }

    /// This replica's X25519 public key, which its bundles announce.
    public var exchangeKey: [UInt8] { store.exchange.publicKey }

    /// Imports bundle files, each checked completely and merged in transactions of whole
    /// batches.
    public func importBundles(_ paths: [String], options: ImportOptions = ImportOptions()) throws -> [ImportOutcome] {
        try requireSyncable()
        return try Importer(store: store, progress: progress).importBundles(paths, options: options)
    }

    /// Imports one bundle.
    public func importBundle(_ path: String, options: ImportOptions = ImportOptions()) throws -> ImportOutcome {
        try requireSyncable()
        do {
            return try Importer(store: store, progress: progress).importBundle(path, options: options)
        } catch let e as Importer.BaseNotHeld {
            throw e.error
        }
    }

    /// Checks a bundle against this replica: schema, forks, links to known history, trust.
    public func verifyAgainstHistory(_ path: String, passphrase: [UInt8]? = nil) throws -> BundleSummary {
        try requireSyncable()
        return try Importer(store: store, progress: progress).verifyAgainstHistory(path, passphrase: passphrase)
    }

    /// Everything `status` shows.
    public func status() throws -> StatusReport { try StatusReport(store) }

    /// The state digest of the tracked tables (SPEC §3.6).
    public func digest() throws -> Digest32 {
        try requireSyncable()
        return try StateDigest.compute(store)
    }

    /// Drops stored batches that every known peer is known to hold.
    public func prune() throws -> PruneResult {
        try requireSyncable()
        return try Mailbox.prune(store)
    }

    /// A peer that was forgotten, and what history that freed.
    public struct Forgotten: Sendable {
        public var id: ReplicaID
        public var name: String?
        public var lastHeard: Int64?
    }

    /// Forgets peers: they no longer keep history here nor decide what exports carry, so
    /// history and bundle sizes stop growing for a peer that left for good. A forgotten peer
    /// that comes back with news is a peer again, and receives a snapshot if the history it
    /// lacks was pruned meanwhile.
    ///
    /// - Parameters:
    ///   - names: Peers by name, id or id prefix.
    ///   - silentFor: Also every peer not heard from for at least this many milliseconds.
    public func forget(_ names: [String], silentFor: Int64? = nil, now: Int64 = HLC.nowMilliseconds()) throws -> [Forgotten] {
        try withoutCapture {
            var chosen: [Int64] = try names.map { try store.replicas.resolve($0, besides: store.selfIndex) }
            if let silentFor {
                for p in try store.replicas.knownPeers(besides: store.selfIndex) where now - (p.lastHeard ?? 0) >= silentFor {
                    chosen.append(p.index)
                }
            }
            var seen = Set<Int64>()
            var out: [Forgotten] = []
            let known = Dictionary(try store.replicas.knownPeers(besides: store.selfIndex).map { ($0.index, $0) }) { a, _ in a }
            for idx in chosen where seen.insert(idx).inserted {
                try store.replicas.forget(idx)
                let p = known[idx]
                out.append(Forgotten(id: try store.replicas.id(at: idx), name: p?.name, lastHeard: p?.lastHeard))
            }
            return out
        }
    }

    /// Stops syncing `table`: removes its triggers and bookkeeping, keeps its rows.
    ///
    /// - Throws: `.usage` when the table is not tracked.
    public func untrack(table: String) throws {
        guard let t = store.catalog[table] else {
            throw BundleSyncError.usage("'\(shown(table))' is not tracked in '\(db.path)'", hint: "'bundlesync status \(db.path)' lists the tracked tables")
        }
        try withoutCapture {
            if try problems.isEmpty && store.catalog.exists(table) { try Sealer(store: store, progress: progress).sealPending() }
            // History that changed the table is still relayed, declared as it was tracked.
            try store.held.rememberDeclared(t.schema)
            try store.catalog.remove(t)
        }
    }

    /// This replica's own bundles in a shared folder.
    public func mailbox(_ directory: String) -> Mailbox { Mailbox(store: store, directory: directory) }


    /// The trust list.
    public var trust: TrustList { TrustList(store: store) }

    /// What this replica holds: for each origin, how many of its batches, contiguously.
    public func vector() throws -> VersionVector { try store.replicas.vector() }

    /// Local changes captured but not yet sealed into a batch, by table.
    public func pendingChanges() throws -> [String: Int] { try store.catalog.pendingChanges() }

    /// Runs `body` in one write transaction with capture off.
    package func withoutCapture<T>(_ body: () throws -> T) throws -> T { try store.withoutCapture(body) }

    // MARK: - Identity and copies

    /// Settles a copied or moved replica file.
    ///
    /// - Parameters:
    ///   - moved: The original was moved here and no longer exists: keep the identity and
    ///     record the new home. Otherwise the file becomes a new replica with a new key pair;
    ///     the history it holds, including the original's, stays and syncs as before.
    ///   - newName: The new replica's name (default: the old name with the new id's start).
    /// - Returns: Whether the identity changed.
    @discardableResult
    public func reidentify(moved: Bool, newName: String? = nil) throws -> Bool {
        if try Home.isAtHome(db) {
            if moved { return false }
            throw BundleSyncError.usage("'\(db.path)' is where replica '\(name)' was made; it is not a copy",
                                        hint: "run 'bundlesync reidentify' on the copy instead")
        }
        return try withoutCapture {
            try Home.record(in: db)
            if moved { return false }
            let fresh = Identity()
            try store.adopt(fresh, name: newName ?? "\(name)-\(fresh.id.hex.prefix(6))")
            return true
        }
    }
}
