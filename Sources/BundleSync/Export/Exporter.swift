import BundleSyncCore
import BundleSyncFormat
import BundleSyncStore
import Foundation

/// Which history an export carries (SPEC §2).
public enum ExportTarget: Sendable {
    /// Whatever the least up-to-date known peer lacks, or everything if no peer is known.
    case automatic
    /// Whatever these peers lack, as far as this replica knows.
    case peers([String])
    /// Whatever a holder of this vector lacks.
    case vector(VersionVector)
    /// Everything.
    case full
}

/// What `export` wrote.
public struct ExportResult: Sendable {
    public var path: String
    public var batches: Int
    public var rows: Int
    /// Whether the bundle is a snapshot of the whole state rather than batches.
    public var snapshot: Bool
    public var sealed: [BatchSummary]
    public var bytes: Int
    /// False when the bundle would carry no batch, only this replica's vector, and the same
    /// bundle is already at `path`: then nothing was written.
    public var written = true
    /// For an encrypted bundle, the replicas it is encrypted to (this one included); empty
    /// for a plain bundle.
    public var recipients: [ReplicaID] = []
    /// Whether the bundle is also encrypted to a passphrase.
    public var passphrase = false
    /// Whether this is a hello bundle written in the clear because encryption was asked
    /// for and a recipient's key was not known.
    public var hello = false
}

/// Writes bundles: seals pending changes, then writes the history a target lacks, or a
/// snapshot of the whole state when that history was pruned here.
package struct Exporter {
    package let store: ReplicaStore
    package let sealer: Sealer
    package let progress: ProgressHandler?

    package init(store: ReplicaStore, progress: ProgressHandler?) {
        self.store = store
        self.sealer = Sealer(store: store, progress: progress)
        self.progress = progress
    }

    private var db: Database { store.db }

    /// Seals pending changes and writes one bundle with the history the target lacks.
    ///
    /// A bundle that must be encrypted while a recipient's key is not known here is
    /// refused, unless it would carry no history: then it is a hello bundle, which holds no
    /// data, and is written in the clear so that the peers learn this replica's keys.
    ///
    /// - Parameters:
    ///   - output: A file path, or an existing directory in which the file is named
    ///     `NAME-SEQ-HASH8.bsync`.
    ///   - encrypt: Encrypt the bundle, as a replica set to `encrypt always` always does.
    ///   - helloWhenNoKeys: When a recipient's key is not known, write a hello bundle
    ///     (this replica's keys and vector, no history) instead of refusing.
    ///   - passphrase: Also encrypt the bundle to this passphrase (implies `encrypt`); peers
    ///     whose key is not known are then left to the passphrase instead of refused.
    ///   - inFolder: Batches that the bundles of their own origins, in the folder being
    ///     exported into, already carry: left out of this bundle, because every replica that
    ///     syncs through the folder reads those bundles too (a shared mailbox).
    /// - Throws: `.usage` for an unknown peer or a recipient whose key is not known,
    ///   `.cannotCreate` when the file cannot be written.
    package func export(to output: String, target: ExportTarget, encrypt: Bool = false, helloWhenNoKeys: Bool = false,
                        passphrase: [UInt8]? = nil, inFolder: [ReplicaID: Set<UInt64>] = [:]) throws -> ExportResult {
        let destination = try ExportDestination.resolve(output)
        guard try encrypt || passphrase != nil || store.requiresEncryption else {
            return try write(to: output, destination: destination, target: target, recipients: [], inFolder: inFolder)
        }
        let (recipients, unknown) = try self.recipients(for: target)
        if let passphrase {
            return try write(to: output, destination: destination, target: target, recipients: recipients, passphrase: passphrase, inFolder: inFolder)
        }
        guard let unknown else {
            return try write(to: output, destination: destination, target: target, recipients: recipients, inFolder: inFolder)
        }
        var result = try write(to: output, destination: destination,
                               target: helloWhenNoKeys ? .vector(try store.replicas.vector()) : target,
                               recipients: [], onlyWithoutHistory: unknown)
        result.hello = true
        return result
    }

    /// Seals pending changes and writes the bundle, encrypted to `recipients` unless empty.
    ///
    /// - Parameter onlyWithoutHistory: Thrown instead when the bundle would carry history.
    private func write(to output: String, destination: ExportDestination, target: ExportTarget,
                       recipients: [(id: ReplicaID, exchangeKey: [UInt8])], passphrase: [UInt8]? = nil,
                       onlyWithoutHistory refusal: BundleSyncError? = nil, inFolder: [ReplicaID: Set<UInt64>] = [:]) throws -> ExportResult {
        var sealed = try store.withoutCapture { try sealer.sealPending(keepingHistory: !(try isFirstSnapshot(target))) }
        // The batches just sealed are written from memory, as signed and stored.
        var justSealed: [UInt64: SignedBatch] = [:]
        for i in sealed.indices {
            if let signed = sealed[i].signed { justSealed[sealed[i].seq] = signed }
            sealed[i].signed = nil
        }
        let base = try baseVector(for: target)
        return try db.readTransaction {
            let vector = try store.replicas.vector()
            let lacking = try store.history.missing(from: base)
            // A snapshot when asked for, or when history the target lacks was pruned here.
            var snapshot = false
            var complete = true
            for (origin, held) in vector.entries where held > base[origin] {
                if lacking.filter({ $0.origin == origin }).count < Int(held - base[origin]) { complete = false }
            }
            // The origin's own bundle in the folder passes these on; this one need not.
            let missing = lacking.filter { $0.origin == store.id || inFolder[$0.origin]?.contains($0.seq) != true }
            if case .full = target { snapshot = true }
            if !complete { snapshot = true }
            // A header lists every batch it carries, and readers bound the header's size: a
            // target that lacks more history than one header can list gets a snapshot.
            if missing.count > Self.maxBatchesListed { snapshot = true }
            if let refusal, snapshot || !missing.isEmpty { throw refusal }
            // A target known to hold some history gets a delta snapshot: only the rows that
            // batches it lacks may have touched (see ``SnapshotWriter/write(to:since:)``).
            var floor: HLC?
            if snapshot, !base.entries.isEmpty {
                if case .full = target {} else { floor = try self.floor(above: base, vector: vector) }
            }

            var keys: [ReplicaID: [UInt8]] = [store.id: store.identity.publicKey]
            var schemas: [TableSchema]
            if snapshot {
                keys.merge(try store.replicas.publicKeys()) { mine, _ in mine }
                let held = try store.held.heldBatches().flatMap(\.items) + store.held.heldChunks().flatMap(\.items)
                schemas = try Set(store.catalog.tracked.map(\.name) + held.map(\.table)).sorted().compactMap { try declaredSchema(of: $0) }
            } else {
                var touched = Set<String>()
                for b in missing {
                    if keys[b.origin] == nil {
                        guard let k = try store.replicas.publicKey(of: b.origin) else {
                            throw BundleSyncError.failure("the public key of replica \(b.origin.short) is missing")
                        }
                        keys[b.origin] = k
                    }
                    touched.formUnion(b.tables)
                }
                schemas = try touched.sorted().compactMap { try declaredSchema(of: $0) }
            }
            var header = BundleHeader(
                exporter: store.id, exporterKey: store.identity.publicKey, exporterName: store.name,
                createdMilliseconds: HLC.nowMilliseconds(), exporterVector: vector, baseVector: snapshot && floor == nil ? VersionVector() : base,
                requiredCapabilities: BundleHeader.requiredCapabilities(tables: schemas, snapshot: snapshot, delta: floor != nil),
                optionalCapabilities: [BundleHeader.liveAnchorsCapability, BundleHeader.readsFormat3Capability], keys: keys, tables: schemas,
                batches: snapshot ? [] : missing.map { .init(origin: $0.origin, seq: $0.seq, hash: $0.hash, length: $0.length) },
                snapshotHeads: snapshot ? try store.replicas.heads() : nil)
            header.snapshotFloor = floor
            var announced = header
            announced.exchangeKey = store.exchange.publicKey

            let intoDirectory = if case .directory = destination { true } else { false }
            let toStandardOutput = if case .standardOutput = destination { true } else { false }
            let mySeq = vector[store.id]
            let name = store.name
            // A bundle with no batch carries only this replica's vector. When the same one is
            // already there, exporting again has nothing to send.
            if !snapshot && missing.isEmpty && !toStandardOutput {
                let same = BundlePath.fileName(exporterName: name, seq: mySeq, header: header, contentDigest: Hasher256().finalize())
                let existing = intoDirectory ? PathText.join(output, same) : output
                if let there = try? BundleReader(path: existing), there.header.batches.isEmpty, !there.header.isSnapshot,
                   BundlePath.fileName(exporterName: name, seq: mySeq, header: there.header, contentDigest: there.trailer.contentDigest) == same,
                   (try? there.finish()) != nil {
                    return ExportResult(path: existing, batches: 0, rows: 0, snapshot: false, sealed: sealed, bytes: there.fileSize, written: false)
                }
            }
            let provisional = intoDirectory ? PathText.join(output, Mailbox.provisionalName(of: store.name)) : output
            if intoDirectory { Mailbox(store: store, directory: output).removeStaleTemporaryFiles() }
            let version = try formatVersion(for: target)
            let writer = toStandardOutput ? try BundleWriter(standardOutputWith: announced, version: version, recipients: recipients, passphrase: passphrase)
                : try BundleWriter(path: provisional, header: announced, shownAs: output, version: version, recipients: recipients, passphrase: passphrase)
            let rows: Int
            if snapshot {
                rows = try SnapshotWriter(store: store, progress: progress).write(to: writer, since: floor)
            } else {
                let totalBytes = missing.reduce(0) { $0 + $1.length }
                var written = 0
                for b in missing {
                    if b.origin == store.id, let signed = justSealed[b.seq], signed.hash == b.hash {
                        try writer.append(signed)
                    } else {
                        try writer.append(try store.history.load(origin: b.originIndex, seq: b.seq))
                    }
                    written += b.length
                    progress?(ProgressEvent(phase: "writing", unit: "bytes", kind: .step(done: written, total: totalBytes)))
                    progress?(ProgressEvent(phase: "writing", kind: .detail("wrote batch \(b.seq) of \(b.origin.short) (\(b.rows) rows)")))
                }
                rows = missing.reduce(0) { $0 + $1.rows }
            }
            progress?(ProgressEvent(phase: "writing", kind: .finished))
            let path = try writer.finish(identity: store.identity) { trailer in
                intoDirectory
                    ? PathText.join(output, BundlePath.fileName(exporterName: name, seq: mySeq, header: header, contentDigest: trailer.contentDigest))
                    : output
            }
            let size = writer.bytesWritten
            return ExportResult(path: path, batches: snapshot ? 0 : missing.count, rows: rows, snapshot: snapshot,
                                sealed: sealed, bytes: size, recipients: recipients.map(\.id), passphrase: passphrase != nil)
        }
    }

    /// The earliest clock of the batches a holder of `base` lacks: the lowest floor, over
    /// every origin it lacks batches of, of that origin's batches numbered above what it holds.
    private func floor(above base: VersionVector, vector: VersionVector) throws -> HLC {
        var lowest = HLC.maximum
        for (origin, held) in vector.entries where held > base[origin] {
            guard let idx = try store.replicas.existingIndex(of: origin) else { return .zero }
            lowest = min(lowest, try store.history.floor(origin: idx, above: base[origin]))
        }
        return lowest
    }

    /// The most batches one bundle lists: their entries stay far below the header's limit
    /// (64 MiB, about 60 bytes an entry).
    static let maxBatchesListed = 400_000

    /// Whether this export is a replica's first, a snapshot (`--full`), made while it knows
    /// no peer: then the batches it seals are not kept in history.
    ///
    /// History is kept for replicas that may lack a part of it. Before its first export, no
    /// replica can hold any of this one's history; after a snapshot of all of it, a replica
    /// holds all of it or none of it, and one holding none takes a snapshot too, which
    /// carries the same rows. So the history sealed for the snapshot that seeds new
    /// replicas (typically every row a table held when it was tracked) would only ever be
    /// dead weight, as large as the table itself. With a known peer, or after an earlier
    /// export, a replica might hold part of the history, and the usual rules apply.
    /// Must run inside the write transaction that seals.
    private func isFirstSnapshot(_ target: ExportTarget) throws -> Bool {
        guard case .full = target else { return false }
        return try store.replicas.head(of: store.selfIndex).seq == 0 && store.replicas.knownPeers(besides: store.selfIndex).isEmpty
    }

    /// How this replica declares a table its bundles touch: as it tracks it, with the columns
    /// it holds changes to as bundles declared them; or, for a table it does not track, as
    /// the bundles it holds declared it.
    private func declaredSchema(of table: String) throws -> TableSchema? {
        let held = try store.held.declared(table)
        guard var schema = store.catalog[table]?.schema else { return held }
        for c in held?.columns ?? [] where !schema.columns.contains(where: { $0.name == c.name }) { schema.columns.append(c) }
        return schema
    }

    /// The format version of a bundle for `target`: 3 once every peer it is for (the named
    /// ones, or else every peer heard from and not forgotten) said in its latest bundle that
    /// it reads version 3; otherwise 2, which every release since encryption reads. A
    /// replica that knows no peer yet writes 2, so a device that joins a fleet of older
    /// releases is read by all of them; once their bundles say they read 3, it writes 3.
    private func formatVersion(for target: ExportTarget) throws -> UInt16 {
        let peers = try self.peers(for: target).map { try store.replicas.id(at: $0) }
        return try !peers.isEmpty && store.replicas.allReadFormat3(peers) ? 3 : 2
    }

    /// The peers a bundle for `target` is for: the named ones, or else every peer heard
    /// from and not forgotten.
    private func peers(for target: ExportTarget) throws -> [Int64] {
        if case .peers(let names) = target {
            return try names.map { try store.replicas.resolve($0, besides: store.selfIndex) }
        }
        return try store.replicas.knownPeers(besides: store.selfIndex).map(\.index)
    }

    /// The replicas an encrypted bundle for `target` is sealed to, with their keys: this
    /// replica itself, and the named peers, or, for any other target, every peer heard from
    /// or trusted here.
    ///
    /// - Returns: The recipients, and the refusal to give when some recipient's key is not
    ///   known here, or no peer is.
    private func recipients(for target: ExportTarget) throws -> (recipients: [(id: ReplicaID, exchangeKey: [UInt8])], unknown: BundleSyncError?) {
        var peers = try self.peers(for: target)
        if case .peers = target {} else {
            peers += try TrustList(store: store).entries().filter { $0.trusted && !$0.isSelf }
                .compactMap { try store.replicas.existingIndex(of: $0.id) }
        }
        let hint = "import a bundle that peer exported (on a new device, 'bundlesync export' with no changes writes a hello bundle that carries its key)"
        guard !peers.isEmpty else {
            return ([(store.id, store.exchange.publicKey)], BundleSyncError.usage("no peer to encrypt the bundle to: this replica knows no peer's encryption key", hint: hint))
        }
        var out: [(id: ReplicaID, exchangeKey: [UInt8])] = [(store.id, store.exchange.publicKey)]
        var unknown: [String] = []
        for p in Set(peers).sorted() {
            let id = try store.replicas.id(at: p)
            if let key = try store.replicas.exchangeKey(of: p) {
                out.append((id, key))
            } else {
                unknown.append("'\(try store.replicas.name(of: id) ?? id.short)' (\(id.short))")
            }
        }
        guard unknown.isEmpty else {
            return (out, BundleSyncError.usage("the encryption key of \(unknown.joined(separator: ", ")) is not known here, so the bundle cannot be encrypted to \(unknown.count == 1 ? "it" : "them")", hint: hint))
        }
        return (out, nil)
    }

    /// The vector the target is assumed to hold.
    private func baseVector(for target: ExportTarget) throws -> VersionVector {
        switch target {
        case .full:
            return VersionVector()
        case .vector(let v):
            return v
        case .peers, .automatic:
            return try peers(for: target).map { try store.replicas.peerVector($0) }.reduce(nil as VersionVector?) { $0?.meet($1) ?? $1 } ?? VersionVector()
        }
    }
}
