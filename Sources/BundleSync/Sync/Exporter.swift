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
    public var base: VersionVector
    public var bytes: Int
}

extension Replica {
    // MARK: - Export

    /// Seals pending changes and writes one bundle with the history the target lacks.
    ///
    /// - Parameters:
    ///   - output: A file path, or an existing directory in which the file is named
    ///     `NAME-SEQ-HASH8.bsync`.
    /// - Throws: `.usage` for an unknown peer, `.cannotCreate` when the file cannot be written.
    public func export(to output: String, target: ExportTarget) throws -> ExportResult {
        let sealed = try withoutCapture { try sealPending(keepingHistory: !(try isFirstSnapshot(target))) }
        let base = try baseVector(for: target)
        return try db.readTransaction {
            let vector = try vector()
            let missing = try batchesMissing(from: base)
            // A snapshot when asked for, or when history the target lacks was pruned here.
            var snapshot = false
            if case .full = target { snapshot = true }
            for (origin, held) in vector.entries where held > base[origin] {
                if missing.filter({ $0.origin == origin }).count < Int(held - base[origin]) { snapshot = true }
            }

            var keys: [ReplicaID: [UInt8]] = [id: identity.publicKey]
            var schemas: [TableSchema]
            if snapshot {
                for row in try db.rows("SELECT id, public_key FROM _bundlesync_replicas WHERE public_key IS NOT NULL") {
                    if case .blob(let i) = row[0], let rid = ReplicaID(bytes: i), case .blob(let k) = row[1] { keys[rid] = k }
                }
                schemas = trackedTables.map(\.schema)
            } else {
                var touched = Set<String>()
                for b in missing {
                    if keys[b.origin] == nil {
                        guard let k = try publicKey(of: b.origin) else {
                            throw BundleSyncError.failure("the public key of replica \(b.origin.short) is missing")
                        }
                        keys[b.origin] = k
                    }
                    touched.formUnion(b.tables)
                }
                schemas = trackedTables.filter { touched.contains($0.name) }.map(\.schema)
            }
            let header = BundleHeader(
                exporter: id, exporterKey: identity.publicKey, exporterName: name,
                createdMilliseconds: HLC.nowMilliseconds(), exporterVector: vector, baseVector: snapshot ? VersionVector() : base,
                requiredCapabilities: BundleHeader.requiredCapabilities(tables: schemas, snapshot: snapshot),
                optionalCapabilities: [], keys: keys, tables: schemas,
                batches: snapshot ? [] : missing.map { .init(origin: $0.origin, seq: $0.seq, hash: $0.hash, length: $0.length) },
                snapshotHeads: snapshot ? try heads() : nil)

            var isDir: ObjCBool = false
            let intoDirectory = FileManager.default.fileExists(atPath: output, isDirectory: &isDir) && isDir.boolValue
            let provisional = intoDirectory ? (output as NSString).appendingPathComponent("export-\(name)") : output
            if intoDirectory { removeStaleTemporaryFiles(in: output) }
            let writer = try BundleWriter(path: provisional, header: header, shownAs: output)
            let rows: Int
            if snapshot {
                rows = try writeSnapshot(to: writer)
            } else {
                let totalBytes = missing.reduce(0) { $0 + $1.length }
                var written = 0
                for b in missing {
                    try writer.append(try loadBatch(origin: b.originIndex, seq: b.seq))
                    written += b.length
                    progress?(ProgressEvent(phase: "writing", unit: "bytes", kind: .step(done: written, total: totalBytes)))
                    progress?(ProgressEvent(phase: "writing", kind: .detail("wrote batch \(b.seq) of \(b.origin.short) (\(b.rows) rows)")))
                }
                rows = missing.reduce(0) { $0 + $1.rows }
            }
            progress?(ProgressEvent(phase: "writing", kind: .finished))
            let mySeq = vector[id]
            let path = try writer.finish(identity: identity) { trailer in
                intoDirectory
                    ? (output as NSString).appendingPathComponent("\(self.name)-\(mySeq)-\(trailer.fileDigest.short).\(BundleFile.fileExtension)")
                    : output
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.intValue ?? 0
            return ExportResult(path: path, batches: snapshot ? 0 : missing.count, rows: rows, snapshot: snapshot,
                                sealed: sealed, base: base, bytes: size)
        }
    }

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
    func isFirstSnapshot(_ target: ExportTarget) throws -> Bool {
        guard case .full = target else { return false }
        return try head(of: selfIndex).seq == 0 && knownPeers().isEmpty
    }

    /// The vector the target is assumed to hold.
    func baseVector(for target: ExportTarget) throws -> VersionVector {
        switch target {
        case .full:
            return VersionVector()
        case .vector(let v):
            return v
        case .peers(let names):
            let peers = try names.map { try resolvePeer($0) }
            return try peers.map { try peerVector($0) }.reduce(nil as VersionVector?) { $0?.meet($1) ?? $1 } ?? VersionVector()
        case .automatic:
            let peers = try knownPeers()
            guard !peers.isEmpty else { return VersionVector() }
            return try peers.map { try peerVector($0.index) }.reduce(nil as VersionVector?) { $0?.meet($1) ?? $1 }!
        }
    }

    /// What this replica knows a peer to hold.
    func peerVector(_ peer: Int64) throws -> VersionVector {
        var v = VersionVector()
        let s = try db.statement("SELECT r.id, p.seq FROM _bundlesync_peer_vectors p JOIN _bundlesync_replicas r ON r.idx = p.origin WHERE p.peer = ?")
        try s.bind([.integer(peer)])
        while try s.step() {
            if let id = ReplicaID(bytes: s.bytes(0) ?? []) { v[id] = UInt64(s.int(1)) }
        }
        return v
    }

    /// Peers this replica has heard from (it imported a bundle they exported).
    func knownPeers() throws -> [(index: Int64, id: ReplicaID, name: String?, lastHeard: Int64?)] {
        try db.rows("SELECT idx, id, name, last_heard FROM _bundlesync_replicas WHERE last_heard IS NOT NULL AND idx != ? ORDER BY name, id",
                    [.integer(selfIndex)]).compactMap { row in
            guard case .integer(let idx) = row[0], case .blob(let b) = row[1], let id = ReplicaID(bytes: b) else { return nil }
            var name: String?
            if case .text(let n) = row[2] { name = String(decoding: n, as: UTF8.self) }
            var heard: Int64?
            if case .integer(let h) = row[3] { heard = h }
            return (idx, id, name, heard)
        }
    }

    /// Finds a replica by name, id, or unambiguous id prefix.
    public func resolvePeer(_ text: String) throws -> Int64 {
        let all = try db.rows("SELECT idx, id, name FROM _bundlesync_replicas WHERE idx != ?", [.integer(selfIndex)])
        var byName: [Int64] = []
        var byPrefix: [Int64] = []
        let lower = text.lowercased()
        for row in all {
            guard case .integer(let idx) = row[0], case .blob(let b) = row[1] else { continue }
            if case .text(let n) = row[2], String(decoding: n, as: UTF8.self) == text { byName.append(idx) }
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
}
