import BundleSyncCore
import BundleSyncFormat
import BundleSyncStore
import Foundation

/// What happened to one bundle given to `import`.
public struct ImportOutcome: Sendable {
    public enum Status: String, Sendable {
        /// At least one batch was merged.
        case applied
        /// Every batch was already here.
        case skipped
        /// Nothing new could be merged yet; new batches wait for earlier history.
        case parked
        /// The bundle was refused; nothing of it was applied.
        case refused
    }

    public var path: String
    public var status: Status
    public var exporter: String?
    public var applied = 0
    public var parked = 0
    public var known = 0
    /// Parked batches (from earlier bundles too) that this bundle's history released.
    public var released = 0
    /// For a snapshot bundle: the rows it held.
    public var snapshotRows: Int?
    public var warnings: [String] = []
    public var error: BundleSyncError?
    /// Parked batches found to fork their origin's history once it arrived, and dropped.
    public var forks: [BundleSyncError] = []
    /// The exporter's own batches the bundle carries (its id and their numbers): in a shared
    /// folder, the bundle passes these on to every replica that syncs there.
    public var exportersOwn: (exporter: ReplicaID, seqs: [UInt64])?
    /// For a refused delta snapshot: this replica lacks part of the history it assumes. In a
    /// shared folder, such a bundle is for other replicas.
    public var baseNotHeld = false
}

/// Options for `import`.
public struct ImportOptions: Sendable {
    /// Timestamps further ahead of local wall time than this are reported.
    public var clockSkewBound: Int64 = 24 * 3600 * 1000
    /// When set, a bundle with such timestamps is refused instead.
    public var refuseClockSkew = false
    /// Opens bundles encrypted to this passphrase.
    public var passphrase: [UInt8]? = nil
    /// The largest body, in bytes, kept in memory between proving a bundle and merging it;
    /// a larger one is read from the file a second time, so memory stays bounded.
    package var keptBodyLimit = 32 << 20
    public init() {}
}

/// Imports bundles into a replica: proves each one whole and authentic, checks it against
/// the replica's history and schema, then merges it in transactions of whole batches.
package struct Importer {
    package let store: ReplicaStore
    package let sealer: Sealer
    package let progress: ProgressHandler?

    package init(store: ReplicaStore, progress: ProgressHandler?) {
        self.store = store
        self.sealer = Sealer(store: store, progress: progress)
        self.progress = progress
    }

    private var db: Database { store.db }
    private var replicas: ReplicaDirectory { store.replicas }
    private var history: HistoryStore { store.history }

    /// Imports bundle files in the order given, each on its own: a bad one is refused whole
    /// and the rest still import.
    ///
    /// - Throws: Only for the replica itself (for example, a copied replica file with local
    ///   changes that must not be sealed); problems with a bundle are in its outcome.
    package func importBundles(_ paths: [String], options: ImportOptions = ImportOptions()) throws -> [ImportOutcome] {
        // Local changes are sealed first, unless a bundle shows that this file was put back
        // from a backup: then they wait for the new identity it takes (see RestoreCheck).
        // Headers are looked at only when there is something to seal.
        if try !store.catalog.pendingChanges().isEmpty {
            let restoring = try paths.contains { p in
                guard let header = try? BundleReader(path: p, keyring: keyring(passphrase: options.passphrase)).header, header.isOpened else { return false }
                return try RestoreCheck(store: store).showsRestore(header)
            }
            if !restoring { _ = try store.withoutCapture { try sealer.sealPending() } }
        }
        // Each bundle commits without waiting for the disk, and the import is flushed once
        // at the end: with many bundles (a shared folder), waiting for the disk at every
        // commit would cost more than the merging. Every commit stays atomic; a crash before
        // the flush loses whole bundles' work, which importing again redoes, and nothing is
        // exported from this replica before its import is on disk.
        return try store.committingOnceDurably {
            let outcomes = paths.map { path in importOne(path, options: options) }
            // A refused bundle may have committed whole batches before its failure.
            return (outcomes, outcomes.contains { $0.status != .skipped })
        }
    }

    /// Imports one bundle of several; problems with it are in its outcome.
    private func importOne(_ path: String, options: ImportOptions) -> ImportOutcome {
        do {
            return try importBundle(path, options: options)
        } catch let e as BaseNotHeld {
            var outcome = ImportOutcome(path: path, status: .refused, error: e.error)
            outcome.baseNotHeld = true
            return outcome
        } catch let e as BundleSyncError {
            // Errors of the database itself (busy, full, read-only) name the database,
            // not the bundle that happened to be in hand.
            return ImportOutcome(path: path, status: .refused, error: e.about(bundle: path))
        } catch {
            return ImportOutcome(path: path, status: .refused, error: .failure("'\(path)': \(error)"))
        }
    }

    /// Imports one bundle: checks it completely, then merges it in transactions of whole
    /// batches (see ``Slices``).
    package func importBundle(_ path: String, options: ImportOptions = ImportOptions()) throws -> ImportOutcome {
        // Pass 1: prove the bundle whole and authentic, and that it fits this replica,
        // before taking any lock or writing anything.
        let keys = keyring(passphrase: options.passphrase)
        let check = try BundleReader(path: path, keyring: keys)
        try requireOpened(check)
        try checkSchema(of: check.header)
        if try holdsEverything(check.header) { return try skipHeld(check) }
        _ = check.keepContent(upTo: options.keptBodyLimit)
        var allKnown = true
        let label = PathText.fileName(of: path)
        defer { progress?(ProgressEvent(phase: "applying \(label)", kind: .finished)) }
        // The latest timestamp the bundle would bring, and whose it is.
        var newest = HLC.zero
        var newestOrigin = check.header.exporter
        while let outline = try check.nextSnapshotChunkOutline() {
            progress?(ProgressEvent(phase: "verifying \(label)", unit: "bytes", kind: .step(done: check.fileBytesRead, total: check.fileSize)))
            if let top = outline.hlcRange?.upperBound, top > newest { newest = top }
        }
        if let heads = check.header.snapshotHeads {
            allKnown = try checkHeads(heads, path: path)
            // Changes held for a table not tracked here may change rows and text and JSON
            // states that this replica dropped when it untracked the table; a snapshot carries
            // them whole, so its rows of such tables are held too, even when every head is held.
            if allKnown {
                let tables = Set(check.header.tables.map(\.name))
                if try store.held.heldBatches().contains(where: { $0.items.contains { tables.contains($0.table) } }) { allKnown = false }
            }
        }
        while let (entry, outline) = try check.nextBatchOutline() {
            progress?(ProgressEvent(phase: "verifying \(label)", unit: "bytes", kind: .step(done: check.fileBytesRead, total: check.fileSize)))
            if let known = try history.hash(origin: entry.origin, seq: entry.seq) {
                guard known == entry.hash else { throw forkError(entry, existing: known, path: path) }
            } else {
                allKnown = false
                if let top = outline.hlcRange?.upperBound, top > newest {
                    newest = top
                    newestOrigin = entry.origin
                }
            }
        }
        try check.finish()
        progress?(ProgressEvent(phase: "verifying \(label)", kind: .finished))
        if let refusal = try baseRefusal(of: check.header, path: path) { throw BaseNotHeld(error: refusal) }
        try TrustList(store: store).check(check.header, path: path)
        _ = try RestoreCheck(store: store).check(check.header, path: path)

        var outcome = ImportOutcome(path: path, status: .skipped, exporter: check.header.exporterName)
        outcome.exportersOwn = (check.header.exporter, check.header.batches.filter { $0.origin == check.header.exporter }.map(\.seq))
        let now = HLC.nowMilliseconds()
        // Timestamps far ahead of this device's clock are reported, or refused, before
        // anything is written. The latest time this replica had already seen explains writes
        // stamped up to there (and a little past, for overwrites of such writes).
        if newest.milliseconds > now + options.clockSkewBound, !Self.isExplained(newest, seen: try store.clock) {
            let ahead = Double(newest.milliseconds - now) / 3_600_000
            let writer = newestOrigin == check.header.exporter ? "'\(shown(check.header.exporterName))' (\(newestOrigin.short))" : try replicas.label(of: newestOrigin)
            let message = "'\(path)' holds writes of replica \(writer) timestamped \(Self.describe(hours: ahead)) ahead of this device's clock (\(newest))"
            if options.refuseClockSkew {
                throw BundleSyncError(.badData, message, hint: "set the clock of \(writer) right; to accept the writes it made meanwhile, import this file once without --max-clock-skew", bundle: path)
            }
            outcome.warnings.append(message + "; they win conflicts over writes made before that time, and this replica's own clock does not follow them")
        }
        var slices = Slices(store: store)
        store.lateWrites = []
        defer { store.lateWrites = [] }
        do {
            return try store.withoutCapture {
                try sealer.sealPending()
                var newest = HLC.zero
                var heldItems = Set<HeldItem>()
                if !allKnown {
                    // Pass 2: merge. A small body was kept as pass 1 proved it; a large one is
                    // read again, with the same checks as the bytes are read.
                    let reader: any BundleContents
                    if let proved = check.provedContent() {
                        reader = proved
                    } else {
                        let again = try BundleReader(path: path, keyring: keys)
                        guard again.header.isOpened, again.trailer == check.trailer else {
                            throw BundleSyncError(.badData, "'\(path)' changed while it was being imported", bundle: path)
                        }
                        reader = again
                    }
                    // Batches kept here are relayed as they came, so the way their tables were
                    // declared is kept where this replica does not track all of a table.
                    for declared in reader.header.tables {
                        let local = store.catalog[declared.name]
                        if local == nil || declared.columns.contains(where: { local?.ordinal(of: $0.name) == nil }) {
                            try store.held.rememberDeclared(declared)
                        }
                    }
                    // A snapshot that reflects everything this replica holds brings text and
                    // JSON states to take as they are: its sender may have collected
                    // tombstones held here.
                    let covering = try reader.header.snapshotHeads.map { heads in
                        VersionVector(Dictionary(heads.map { ($0.origin, $0.seq) }, uniquingKeysWith: max)).dominates(try replicas.vector())
                    } ?? false
                    while let chunk = try reader.nextSnapshotChunk() {
                        progress?(ProgressEvent(phase: "applying \(label)", unit: "bytes", kind: .step(done: reader.fileBytesRead, total: reader.fileSize)))
                        let held = try RowMerger(store: store, adoptingStates: covering).merge(chunk, keys: reader.header.keys)
                        if !held.isEmpty {
                            try store.held.hold(chunk, items: held)
                            heldItems.formUnion(held)
                        }
                        outcome.snapshotRows = (outcome.snapshotRows ?? 0) + chunk.rowCount
                        for t in chunk.tables {
                            for r in t.rows {
                                newest = max(newest, r.rowHLC)
                                for c in r.cells { newest = max(newest, c.hlc) }
                            }
                        }
                        try slices.next()
                    }
                    if let heads = reader.header.snapshotHeads {
                        _ = try checkHeads(heads, path: path)
                        try store.noteSnapshotAdopted(VersionVector(Dictionary(heads.map { ($0.origin, $0.seq) }, uniquingKeysWith: max)))
                        outcome.applied += try adoptHeads(heads, keys: reader.header.keys, floor: reader.header.snapshotFloor, forks: &outcome.forks)
                    }
                    while let (entry, signed, batch) = try reader.nextBatch() {
                        progress?(ProgressEvent(phase: "applying \(label)", unit: "bytes", kind: .step(done: reader.fileBytesRead, total: reader.fileSize)))
                        let origin = try replicas.index(of: entry.origin, publicKey: reader.header.keys[entry.origin])
                        if let stored = try history.hash(origin: origin, seq: entry.seq) {
                            guard stored == entry.hash else { throw forkError(entry, existing: stored, path: path) }
                            outcome.known += 1
                            continue
                        }
                        let head = try replicas.head(of: origin)
                        if entry.seq <= head.seq {
                            // Held here once, since pruned; the head's hash is still known.
                            if entry.seq == head.seq && entry.hash != head.hash { throw forkError(entry, existing: head.hash, path: path) }
                            outcome.known += 1
                            continue
                        }
                        if let range = batch.hlcRange { newest = max(newest, range.upperBound) }
                        // The body is compressed for keeping while the batch merges.
                        let body = HistoryStore.compressing(signed)
                        if try isApplicable(batch, head: head) {
                            let held = try RowMerger(store: store).merge(batch, originIndex: origin)
                            try history.store(signed, batch: batch, origin: origin, applied: true, body: body)
                            if !held.isEmpty {
                                try store.held.hold(origin: origin, seq: batch.seq, items: held)
                                heldItems.formUnion(held)
                            }
                            outcome.applied += 1
                            progress?(ProgressEvent(phase: "applying", kind: .detail("applied batch \(entry.seq) of \(entry.origin.short) (\(batch.rowCount) rows)")))
                        } else {
                            try history.store(signed, batch: batch, origin: origin, applied: false, body: body)
                            outcome.parked += 1
                            progress?(ProgressEvent(phase: "applying", kind: .detail("parked batch \(entry.seq) of \(entry.origin.short): earlier history has not arrived")))
                        }
                        try slices.next()
                    }
                    try reader.finish()
                    if !heldItems.isEmpty { outcome.warnings.append(Self.holdingNotice(heldItems.sorted { $0.description < $1.description }, path: path)) }
                    outcome.released = try applyParked(forks: &outcome.forks, slices: &slices)
                    outcome.parked = max(0, outcome.parked - outcome.released)
                } else {
                    outcome.known = check.header.batches.count
                }
                if check.header.isSnapshot && outcome.applied > 0 { outcome.applied = 1 }
                try store.advanceClock(to: newest)
                if check.header.exporter != store.id {
                    // Batches pruned here count as known: an old bundle is no news of its exporter.
                    try replicas.remember(exporterOf: check.header, heardAt: now,
                                          broughtHistory: outcome.applied + outcome.parked + outcome.released > 0)
                }
                if outcome.applied + outcome.released > 0 { outcome.status = .applied }
                else if outcome.parked > 0 { outcome.status = .parked }
                outcome.warnings += store.lateWrites
                // Said once per command, whatever the number of bundles.
                if let w = try store.fleetWarning(), !store.notices.contains(w) { store.notices.append(w) }
                return outcome
            }
        } catch var e as BundleSyncError where slices.committed > 0 {
            // Whole batches were committed before the failure: say so, and how to finish.
            let n = slices.committedBatches
            e.message += " (\(n) \(n == 1 ? "batch" : "batches") of it had been applied; importing it again completes it)"
            throw e
        }
    }

    /// The transactions an import is applied in: whole batches, committed once a slice has
    /// held the write lock for ``budget`` milliseconds, then a pause so that an application
    /// waiting for the lock gets it. A bundle that merges quickly is one transaction.
    struct Slices {
        /// How long one transaction holds the write lock, at most about (plus one batch).
        static let budget = 400
        /// How long the lock is left free between slices: longer than SQLite's busy handler
        /// sleeps between its attempts (at most 100 ms), so a waiting writer gets its turn.
        static let pause = 110
        let store: ReplicaStore
        var started = DispatchTime.now()
        var done = 0
        private(set) var committed = 0
        private(set) var committedBatches = 0

        init(store: ReplicaStore) { self.store = store }

        /// Called after each whole batch or chunk.
        mutating func next() throws {
            done += 1
            let elapsed = (DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1_000_000
            guard elapsed >= Self.budget else { return }
            try store.commitSlice(pause: Self.pause)
            committed += 1
            committedBatches = done
            started = DispatchTime.now()
        }
    }

    /// Whether a timestamp ahead of the wall clock is explained by what a replica has seen:
    /// no later than its clock, plus room for overwrites of the writes stamped there (each
    /// overwrite is stamped just after the write it replaces).
    static func isExplained(_ hlc: HLC, seen: HLC) -> Bool {
        hlc.rawValue <= seen.rawValue &+ (UInt64(1) << 32)
    }

    static func describe(hours: Double) -> String {
        if hours >= 48 { return String(format: "%.0f days", hours / 24) }
        return String(format: "%.1f h", hours)
    }

    /// What opens bundles encrypted to this replica, or to `passphrase`.
    package func keyring(passphrase: [UInt8]?) -> BundleKeyring {
        BundleKeyring(replica: store.id, exchange: store.exchange, passphrase: passphrase)
    }

    /// Refuses an encrypted bundle this replica cannot open, once it is proved authentic:
    /// exit status 77, naming the replicas it was encrypted to.
    package func requireOpened(_ reader: BundleReader) throws {
        guard !reader.header.isOpened else { return }
        try reader.finish()
        throw try notAddressed(reader.header, path: reader.path)
    }

    /// The refusal of an authentic encrypted bundle that is not encrypted to this replica.
    package func notAddressed(_ header: BundleHeader, path: String) throws -> BundleSyncError {
        let names = try header.recipients.map { r in
            try store.replicas.name(of: r.replica).map { "'\($0)' (\(r.replica.short))" } ?? r.replica.short
        }
        let to = names + (header.passphrase == nil ? [] : ["a passphrase"])
        return BundleSyncError(.notAddressed, "'\(path)' is encrypted to \(to.joined(separator: ", ")), not to this replica (\(store.id.short))"
                                   + (header.passphrase == nil ? "" : " and not to the passphrase given"),
                               hint: "import it on one of those replicas, or ask its exporter for a bundle encrypted to this one",
                               bundle: path)
    }

    /// A batch can be merged now when it continues its origin's history here and everything
    /// its origin had seen when sealing it is here too (causal delivery).
    private func isApplicable(_ batch: Batch, head: (seq: UInt64, hash: Digest32)) throws -> Bool {
        guard batch.seq == head.seq + 1 else { return false }
        guard batch.previous == head.hash else {
            throw chainError(origin: batch.origin, seq: batch.seq, previous: batch.previous, heldHead: head.hash)
        }
        return try replicas.vector().dominates(batch.dependencies)
    }

    /// Merges parked batches whose history has arrived, until none is left that can be.
    private func applyParked(forks: inout [BundleSyncError], slices: inout Slices) throws -> Int {
        var released = 0
        var advanced = true
        while advanced {
            advanced = false
            for p in try history.parked() {
                let head = try replicas.head(of: p.originIndex)
                guard p.seq == head.seq + 1 else { continue }
                let signed = try history.load(origin: p.originIndex, seq: p.seq)
                let batch = try Batch.decode(signed.bytes)
                guard batch.previous == head.hash else {
                    // It was parked before its predecessor arrived, and that predecessor is
                    // not the one it names: a fork. It is dropped, so that it does not block
                    // every later import, and reported as the fork it is.
                    try history.dropParked(origin: p.originIndex, seq: p.seq)
                    var e = chainError(origin: p.origin, seq: p.seq, previous: batch.previous, heldHead: head.hash)
                    e.message += "; the parked batch is dropped"
                    forks.append(e)
                    continue
                }
                guard try isApplicable(batch, head: head) else { continue }
                let held = try RowMerger(store: store).merge(batch, originIndex: p.originIndex)
                try history.markApplied(origin: p.originIndex, seq: p.seq, hash: p.hash)
                if !held.isEmpty { try store.held.hold(origin: p.originIndex, seq: p.seq, items: held) }
                released += 1
                progress?(ProgressEvent(phase: "applying", kind: .detail("applied parked batch \(p.seq) of \(p.origin.short)")))
                advanced = true
                try slices.next()
            }
        }
        return released
    }

    // MARK: - Header first

    /// Whether this replica already holds every batch a bundle lists (same origin, number
    /// and hash; a batch pruned here counts when it lies below the origin's head, whose hash
    /// is still known). Reads only the replica's bookkeeping; a doubt (a hash that differs)
    /// answers no, so that the full import reports it.
    ///
    /// A bundle that lists nothing (only its exporter's vector) is not skipped this way: its
    /// body is empty, so checking it whole costs nothing. Nor is a snapshot, even when every
    /// head is held: its chunks are not listed in the header, so only reading them proves
    /// that the file holds what a snapshot may hold (row counts, sizes), and a snapshot that
    /// does not is refused as bad data rather than passed over.
    private func holdsEverything(_ header: BundleHeader) throws -> Bool {
        guard !header.isSnapshot, !header.batches.isEmpty else { return false }
        return try header.batches.allSatisfy { entry in
            guard let idx = try replicas.existingIndex(of: entry.origin) else { return false }
            if let stored = try history.hash(origin: idx, seq: entry.seq) { return stored == entry.hash }
            let head = try replicas.head(of: idx)
            return entry.seq < head.seq || (entry.seq == head.seq && entry.hash == head.hash)
        }
    }

    /// Skips a bundle whose every batch is held here, reading its header only: no batch is
    /// decompressed, hashed or checked, and nothing is applied.
    ///
    /// The header is proved authentic first (``BundleReader/authenticateWithoutBody()``): the
    /// exporter's signature covers the file digest, a hash of the stored bytes, so hashing
    /// them without decompressing proves the header exactly as the exporter wrote it. That is
    /// enough to skip: a skipped bundle contributes nothing but what its header says (its
    /// exporter's vector, name and keys, and which batches its exporter's own file passes on
    /// in a shared folder), and each of those is what the exporter signed. A body that an
    /// authentic exporter filled with bad batches is not found out this way; since none of it
    /// is applied and every batch it lists is already held, verified, from elsewhere, that
    /// costs nothing here, and `verify` still finds it.
    private func skipHeld(_ reader: BundleReader) throws -> ImportOutcome {
        let header = reader.header
        try reader.authenticateWithoutBody()
        try TrustList(store: store).check(header, path: reader.path)
        _ = try RestoreCheck(store: store).check(header, path: reader.path)
        var outcome = ImportOutcome(path: reader.path, status: .skipped, exporter: header.exporterName)
        outcome.exportersOwn = (header.exporter, header.batches.filter { $0.origin == header.exporter }.map(\.seq))
        outcome.known = header.batches.count
        guard header.exporter != store.id else { return outcome }
        // Learning the exporter's vector is the only write; most of the time the bundle says
        // nothing new, and the write is not needed.
        if let idx = try replicas.existingIndex(of: header.exporter),
           try replicas.peerVector(idx).dominates(header.exporterVector),
           try header.exchangeKey == nil || replicas.exchangeKey(of: idx) == header.exchangeKey {
            return outcome
        }
        // Only bookkeeping is written: no capture trigger fires, so capture stays on.
        try db.writeTransaction {
            try replicas.remember(exporterOf: header, heardAt: HLC.nowMilliseconds(), broughtHistory: false)
        }
        return outcome
    }

    /// A delta snapshot applied by a replica that lacks part of its base would leave out rows
    /// that batches it lacks changed.
    struct BaseNotHeld: Error { var error: BundleSyncError }

    /// The refusal of a delta snapshot whose base vector this replica does not hold, or nil.
    func baseRefusal(of header: BundleHeader, path: String) throws -> BundleSyncError? {
        guard header.isDeltaSnapshot else { return nil }
        let here = try replicas.vector()
        guard let (origin, needed) = header.baseVector.sorted.first(where: { here[$0.0] < $0.1 }) else { return nil }
        let exporter = "'\(shown(header.exporterName))' (\(header.exporter.short))"
        return BundleSyncError(
            .badData,
            "'\(path)' is a delta snapshot from replica \(exporter) for replicas holding \(needed) \(needed == 1 ? "batch" : "batches") of replica \(try replicas.label(of: origin)); this replica holds \(here[origin])",
            hint: "ask for a whole snapshot: run 'bundlesync export DB --full' on replica \(exporter) and import that file, or import the history this replica lacks first",
            bundle: path)
    }

    /// Checks a snapshot's heads against the history held here.
    ///
    /// - Returns: Whether this replica already holds everything the snapshot reflects.
    /// - Throws: `.badData` when a head contradicts a batch held here (a fork).
    package func checkHeads(_ heads: [SnapshotHead], path: String) throws -> Bool {
        var covered = true
        for h in heads {
            guard let idx = try replicas.existingIndex(of: h.origin) else {
                covered = false
                continue
            }
            let entry = BundleHeader.BatchEntry(origin: h.origin, seq: h.seq, hash: h.hash, length: 0)
            if let stored = try history.hash(origin: idx, seq: h.seq), stored != h.hash {
                // A parked batch there is dropped and reported when the snapshot is adopted;
                // one applied here contradicts the snapshot.
                let parked = try history.parked().contains { $0.originIndex == idx && $0.seq == h.seq }
                if !parked { throw forkError(entry, existing: stored, path: path) }
            }
            let local = try replicas.head(of: idx)
            if local.seq == h.seq && local.hash != h.hash { throw forkError(entry, existing: local.hash, path: path) }
            if local.seq < h.seq { covered = false }
        }
        return covered
    }

    /// Advances this replica's history to a snapshot's heads: the snapshot's state holds the
    /// effect of those batches. Parked batches it covers are dropped.
    ///
    /// - Returns: How many origins advanced.
    /// - Parameter floor: For a delta snapshot, a clock at or before every stamp of the
    ///   batches it reflects beyond its base: recorded as the floor of the batches adopted,
    ///   which this replica holds no clocks of (zero, every row, for a whole snapshot).
    private func adoptHeads(_ heads: [SnapshotHead], keys: [ReplicaID: [UInt8]], floor: HLC?, forks: inout [BundleSyncError]) throws -> Int {
        var advanced = 0
        for h in heads {
            let idx = try replicas.index(of: h.origin, publicKey: keys[h.origin])
            let before = try replicas.head(of: idx).seq
            guard before < h.seq else { continue }
            try history.recordFloor(origin: idx, first: before + 1, last: h.seq, minimum: floor ?? .zero)
            // A parked batch at the snapshot's head that is not the head is a fork: it is
            // dropped with the rest the snapshot covers, and reported.
            for p in try history.parked() where p.originIndex == idx && p.seq == h.seq && p.hash != h.hash {
                let e = BundleSyncError.badData("batch \(p.seq) of replica \(h.origin.short) parked here is \(p.hash.short), but the snapshot's history holds \(h.hash.short) there: the replica's history has forked; the parked batch is dropped",
                                                hint: "a copy of that replica's database wrote its own history; the copy must be re-identified")
                forks.append(e)
            }
            try replicas.advanceHead(origin: idx, seq: h.seq, hash: h.hash)
            try history.dropParked(origin: idx, through: h.seq)
            advanced += 1
        }
        return advanced
    }

    /// A batch that continues an origin's history from another predecessor than the one held.
    package func chainError(origin: ReplicaID, seq: UInt64, previous: Digest32, heldHead: Digest32) -> BundleSyncError {
        BundleSyncError.badData("batch \(seq) of replica \(origin.short) does not follow the history held here (it names \(previous.short) as its predecessor, this replica holds \(heldHead.short)): the replica's history has forked",
                                hint: "a copy of that replica's database wrote its own history; the copy must be re-identified")
    }

    package func forkError(_ entry: BundleHeader.BatchEntry, existing: Digest32, path: String) -> BundleSyncError {
        BundleSyncError(.badData, "'\(path)': replica \(entry.origin.short) has forked: its batch \(entry.seq) here is \(existing.short), the bundle's is \(entry.hash.short)",
                        hint: "a copy of that replica's database wrote its own history; the copy must be re-identified before it syncs",
                        bundle: path)
    }

    // MARK: - Schema

    /// Refuses a bundle whose tables disagree with this replica's on a key or a merge rule.
    ///
    /// A table or column this replica does not track is no reason to refuse a bundle: its
    /// changes are held until it is tracked here (SPEC §3.7).
    package func checkSchema(of header: BundleHeader) throws {
        for t in header.tables {
            guard store.catalog[t.name] != nil else { continue }
            try checkTable(name: t.name, keyColumns: t.keyColumns)
            let local = store.catalog[t.name]!
            for c in t.columns {
                if let i = local.ordinal(of: c.name), local.schema.columns[i].rule != c.rule {
                    throw BundleSyncError.badData("column '\(shown(c.name))' of '\(shown(t.name))' merges by '\(c.rule)' in the bundle but by '\(local.schema.columns[i].rule)' here",
                                                  hint: "run 'bundlesync track' with the same rules on every replica")
                }
            }
        }
    }

    /// The warning for a bundle some of whose changes are held.
    static func holdingNotice(_ held: [HeldItem], path: String) -> String {
        "'\(path)' changes \(held.map(\.description).joined(separator: ", ")), not tracked here: those changes are kept and applied once \(held.count == 1 ? "it is" : "they are") tracked (see 'bundlesync status')"
    }

    private func checkTable(name: String, keyColumns: [String]) throws {
        guard let local = store.catalog[name], local.schema.keyColumns != keyColumns else { return }
        throw BundleSyncError.badData("table '\(shown(name))' is keyed by (\(keyColumns.map(shown).joined(separator: ", "))) in the bundle but by (\(local.schema.keyColumns.joined(separator: ", "))) here",
                                      hint: "every replica must give the table the same primary key")
    }
}
