import BundleSyncCore
import BundleSyncMerge

/// The header of a bundle (`bundlesync-format(5)`, "Header").
///
/// It says who exported the bundle and when, what the exporter held, what it assumed the
/// target held, which capabilities a reader needs, the schema of every table the body
/// touches, the public key of every origin, and the list of batches the body holds, in order.
public struct BundleHeader: Equatable, Sendable {
    /// Capabilities this release understands. A bundle that requires any other is refused.
    public static let knownCapabilities: Set<String> = ["lww-v1", Self.snapshotCapability, Self.textCapability, Self.textFugueCapability, Self.jsonCapability,
                                                        Self.textCollectedCapability, Self.deltaSnapshotCapability]
    /// Required by a snapshot whose tables have a column merged as text or JSON: its text
    /// states may have had tombstones collected, and are taken as listed rather than rebuilt
    /// in id order, and its text and JSON states may end with a collected-below time.
    public static let textCollectedCapability = "text-collected-v1"
    /// Optional, in every bundle of this release: its exporter's text writes name live text
    /// only, so its peers may collect tombstones.
    public static let liveAnchorsCapability = "text-live-anchors-v1"
    /// Optional, in every bundle of this release: its exporter reads format version 3, so
    /// its peers may write version 3 for it.
    public static let readsFormat3Capability = "reads-format-v3"
    /// Required by a bundle that carries a snapshot instead of batches.
    public static let snapshotCapability = "snapshot-v1"
    /// Required, with `snapshot-v1`, by a snapshot of only the rows changed since its base
    /// vector (a delta snapshot), which only a replica holding that vector may apply.
    public static let deltaSnapshotCapability = "snapshot-delta-v1"
    /// Required by a bundle whose tables have a column merged as text.
    public static let textCapability = "text-v1"
    /// Required, with `text-v1`, by a bundle whose text merge payloads may be version 2 (Fugue) states.
    public static let textFugueCapability = "text-fugue-v1"
    /// Required by a bundle whose tables have a column merged as JSON.
    public static let jsonCapability = "json-v1"

    /// The capabilities a reader needs for a bundle with these tables.
    public static func requiredCapabilities(tables: [TableSchema], snapshot: Bool, delta: Bool = false) -> [String] {
        var caps = ["lww-v1"]
        if snapshot { caps.append(snapshotCapability) }
        if snapshot && delta { caps.append(deltaSnapshotCapability) }
        let rules = Set(tables.flatMap { $0.columns.map(\.rule) })
        if rules.contains(.text) { caps += [textCapability, textFugueCapability] }
        if rules.contains(.json) { caps.append(jsonCapability) }
        if snapshot && (rules.contains(.text) || rules.contains(.json)) { caps.append(textCollectedCapability) }
        return caps
    }

    public struct BatchEntry: Equatable, Sendable {
        public var origin: ReplicaID
        public var seq: UInt64
        public var hash: Digest32
        public var length: Int

        package init(origin: ReplicaID, seq: UInt64, hash: Digest32, length: Int) {
            self.origin = origin
            self.seq = seq
            self.hash = hash
            self.length = length
        }
    }

    public var exporter: ReplicaID
    public var exporterKey: [UInt8]
    public var exporterName: String
    public var createdMilliseconds: Int64
    public var exporterVector: VersionVector
    public var baseVector: VersionVector
    public var requiredCapabilities: [String]
    public var optionalCapabilities: [String]
    /// Public keys of the exporter and of every origin in the body, keyed by the id each one derives.
    public var keys: [ReplicaID: [UInt8]]
    public var tables: [TableSchema]
    public var batches: [BatchEntry]
    /// For a snapshot bundle (capability `snapshot-v1`): where each origin's history stood
    /// when the snapshot was taken. Nil for a bundle of batches.
    public var snapshotHeads: [SnapshotHead]? = nil

    /// For a delta snapshot (capability `snapshot-delta-v1`): a clock at or before every
    /// stamp of the batches above the base vector that the snapshot reflects. The rows it
    /// carries are every row with a stamp at or after it. Nil for any other bundle.
    public var snapshotFloor: HLC? = nil

    public var isSnapshot: Bool { snapshotHeads != nil }

    /// Whether the bundle is a snapshot of only the rows changed since its base vector.
    public var isDeltaSnapshot: Bool { snapshotHeads != nil && snapshotFloor != nil }

    /// Format version 2: the exporter's X25519 public key, to which peers encrypt bundles.
    public var exchangeKey: [UInt8]? = nil
    /// Format version 2: the replicas an encrypted bundle is encrypted to; empty for a
    /// plain one.
    public var recipients: [BundleRecipient] = []
    /// Format version 2: the passphrase an encrypted bundle is also encrypted to, if any.
    public var passphrase: PassphraseRecipient? = nil
    /// False for an encrypted bundle read without a key that opens it: then only the fields
    /// in the clear (exporter, keys, name, creation time, recipients) are set.
    public var isOpened = true

    public var isEncrypted: Bool { !recipients.isEmpty || passphrase != nil }

    /// The header in format version 1's layout.
    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 1024)
        w.raw(exporter.bytes)
        w.raw(exporterKey)
        w.string(exporterName)
        w.varint(UInt64(max(0, createdMilliseconds)))
        w.raw(encodedContents(version: 1))
        return w.bytes
    }

    /// The fields of format version 2 that stay in the clear, up to the contents: exporter,
    /// its two public keys, name, creation time and the recipients.
    package func encodedClearPart() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.raw(exporter.bytes)
        w.raw(exporterKey)
        w.raw(exchangeKey ?? [UInt8](repeating: 0, count: 32))
        w.string(exporterName)
        w.varint(UInt64(max(0, createdMilliseconds)))
        w.varint(recipients.count + (passphrase == nil ? 0 : 1))
        for r in recipients { r.encode(into: &w) }
        passphrase?.encode(into: &w)
        return w.bytes
    }

    /// The header's contents, from the exporter's vector to the end: what an encrypted
    /// bundle seals, and in format version 3 the prefix its body is compressed against.
    /// Versions 1 and 2 write the same bytes; version 3 writes the base vector against the
    /// exporter's (``encodeBase(into:)``).
    package func encodedContents(version: UInt16 = BundleFile.formatVersion) -> [UInt8] {
        var w = ByteWriter(capacity: 1024)
        exporterVector.encode(into: &w)
        if version >= 3 { encodeBase(into: &w) } else { baseVector.encode(into: &w) }
        for list in [requiredCapabilities, optionalCapabilities] {
            let canonical = Set(list).sorted()
            w.varint(canonical.count)
            canonical.forEach { w.string($0) }
        }
        let sortedKeys = keys.sorted { $0.key < $1.key }
        w.varint(sortedKeys.count)
        sortedKeys.forEach { w.raw($0.value) }
        w.varint(tables.count)
        for t in tables.sorted(by: { $0.name < $1.name }) {
            t.encode(into: &w)
            w.raw(t.fingerprint.bytes)
        }
        w.varint(batches.count)
        for b in batches {
            w.raw(b.origin.bytes)
            w.varint(b.seq)
            w.raw(b.hash.bytes)
            w.varint(b.length)
        }
        if let heads = snapshotHeads {
            let sorted = heads.sorted { $0.origin < $1.origin }
            w.varint(sorted.count)
            for h in sorted {
                w.raw(h.origin.bytes)
                w.varint(h.seq)
                w.raw(h.hash.bytes)
            }
            if let snapshotFloor { w.varint(snapshotFloor.rawValue) }
        }
        return w.bytes
    }

    /// Writes the base vector as format version 3 does: for each entry of the exporter's
    /// vector, in its order, the base's count for that replica (0 when the base has none),
    /// then the base's entries for replicas the exporter's vector lacks, as a vector.
    ///
    /// A base is mostly the same replicas as the exporter's vector, so this leaves out their
    /// ids: 17 bytes or more per replica in versions 1 and 2, usually one byte here.
    private func encodeBase(into w: inout ByteWriter) {
        for (id, _) in exporterVector.sorted { w.varint(baseVector[id]) }
        VersionVector(baseVector.entries.filter { exporterVector[$0.key] == 0 }).encode(into: &w)
    }

    /// Reads a base vector written by ``encodeBase(into:)`` against `exporterVector`.
    private static func decodeBase(from r: inout ByteReader, against exporterVector: VersionVector) throws -> VersionVector {
        var base = VersionVector()
        for (id, _) in exporterVector.sorted {
            let n = try r.counter("base vector sequence number")
            if n > 0 { base[id] = n }
        }
        let others = try VersionVector.decode(from: &r, what: "base vector")
        for (id, n) in others.entries {
            guard exporterVector[id] == 0 else {
                throw BundleSyncError.badData("the base vector lists replica \(id.short) twice")
            }
            base[id] = n
        }
        return base
    }

    /// The most recipients a header may list.
    package static let maxRecipients = 10_000

    /// Decodes a header of format version 2 or 3. For an encrypted bundle, the contents stay
    /// sealed: the header returned has only its clear fields and ``isOpened`` false.
    ///
    /// - Returns: The header, where its contents start in `bytes`, and whether they are
    ///   sealed (then they run to the end of `bytes`, the authentication tag included).
    package static func decodeVersion2(_ bytes: [UInt8], version: UInt16) throws -> (header: BundleHeader, contentsOffset: Int, sealed: Bool) {
        var r = ByteReader(bytes)
        let exporter = try r.readReplicaID("exporter id")
        let exporterKey = try r.raw(32, "exporter public key")
        guard ReplicaID(publicKey: exporterKey) == exporter else {
            throw BundleSyncError.badData("the exporter id does not match its public key")
        }
        let exchangeKey = try r.raw(32, "exporter encryption key")
        let name = try r.string("exporter name", limit: Limits.maxNameBytes)
        guard ReplicaName.isValid(name) else {
            throw BundleSyncError.badData("the exporter name '\(shown(name))' is not a valid replica name")
        }
        let created = try r.varint("creation time")
        guard created <= UInt64(Int64.max) else { throw BundleSyncError.badData("creation time is out of range") }
        let n = try r.count("recipient count", limit: min(maxRecipients, r.remaining / 66))
        var recipients: [BundleRecipient] = []
        var passphrase: PassphraseRecipient?
        for _ in 0..<n {
            let kind = try r.u8("recipient kind")
            switch kind {
            case BundleRecipient.replicaKind:
                let rec = try BundleRecipient.decode(from: &r)
                guard passphrase == nil else { throw BundleSyncError.badData("a replica recipient follows the passphrase recipient") }
                if let last = recipients.last, !(last.replica < rec.replica) {
                    throw BundleSyncError.badData("recipients are not in canonical order")
                }
                recipients.append(rec)
            case PassphraseRecipient.kind:
                guard passphrase == nil else { throw BundleSyncError.badData("the header lists two passphrase recipients") }
                passphrase = try PassphraseRecipient.decode(from: &r)
            default:
                throw BundleSyncError.badData("recipient kind \(kind) is unknown")
            }
        }
        var header = BundleHeader(exporter: exporter, exporterKey: exporterKey, exporterName: name,
                                  createdMilliseconds: Int64(created), exporterVector: VersionVector(), baseVector: VersionVector(),
                                  requiredCapabilities: [], optionalCapabilities: [], keys: [exporter: exporterKey],
                                  tables: [], batches: [])
        header.exchangeKey = exchangeKey
        header.recipients = recipients
        header.passphrase = passphrase
        let offset = r.offset
        if !header.isEncrypted {
            try header.decodeContents(from: &r, version: version)
            return (header, offset, false)
        }
        guard r.remaining > 16 else { throw BundleSyncError.badData("the encrypted header contents are missing") }
        header.isOpened = false
        return (header, offset, true)
    }

    /// Decodes the contents of a header (what ``encodedContents(version:)`` writes) into this one.
    package mutating func decodeContents(_ bytes: [UInt8], version: UInt16) throws {
        var r = ByteReader(bytes)
        try decodeContents(from: &r, version: version)
        isOpened = true
    }

    package static func decode(_ bytes: [UInt8]) throws -> BundleHeader {
        var r = ByteReader(bytes)
        let exporter = try r.readReplicaID("exporter id")
        let exporterKey = try r.raw(32, "exporter public key")
        guard ReplicaID(publicKey: exporterKey) == exporter else {
            throw BundleSyncError.badData("the exporter id does not match its public key")
        }
        let name = try r.string("exporter name", limit: Limits.maxNameBytes)
        guard ReplicaName.isValid(name) else {
            throw BundleSyncError.badData("the exporter name '\(shown(name))' is not a valid replica name")
        }
        let created = try r.varint("creation time")
        guard created <= UInt64(Int64.max) else { throw BundleSyncError.badData("creation time is out of range") }
        var header = BundleHeader(exporter: exporter, exporterKey: exporterKey, exporterName: name,
                                  createdMilliseconds: Int64(created), exporterVector: VersionVector(), baseVector: VersionVector(),
                                  requiredCapabilities: [], optionalCapabilities: [], keys: [:], tables: [], batches: [])
        try header.decodeContents(from: &r, version: 1)
        return header
    }

    private mutating func decodeContents(from r: inout ByteReader, version: UInt16) throws {
        let ev = try VersionVector.decode(from: &r, what: "exporter vector")
        let bv = version >= 3 ? try Self.decodeBase(from: &r, against: ev) : try VersionVector.decode(from: &r, what: "base vector")
        func capabilities(_ what: String) throws -> [String] {
            let n = try r.count("\(what) count", limit: Limits.maxCapabilities)
            var out: [String] = []
            for _ in 0..<n { out.append(try r.string(what, limit: 256)) }
            guard out == out.sorted(), Set(out).count == out.count else {
                throw BundleSyncError.badData("\(what)s are not in canonical order")
            }
            return out
        }
        let required = try capabilities("required capability")
        // Checked before anything after it is parsed: a later format may change what follows
        // once it requires a capability, and the reader must say so rather than call it damage.
        for cap in required where !Self.knownCapabilities.contains(cap) {
            throw BundleSyncError.badData("the bundle requires capability '\(shown(cap))', which this release lacks",
                                          hint: "upgrade bundlesync on this device")
        }
        let optional = try capabilities("optional capability")
        let keyCount = try r.count("key count", limit: min(Limits.maxReplicas, r.remaining / 32))
        var keys: [ReplicaID: [UInt8]] = [:]
        var lastID: ReplicaID?
        for _ in 0..<keyCount {
            let k = try r.raw(32, "origin public key")
            let id = ReplicaID(publicKey: k)
            if let l = lastID, !(l < id) { throw BundleSyncError.badData("origin keys are not in canonical order") }
            lastID = id
            keys[id] = k
        }
        let tableCount = try r.count("table count", limit: min(Limits.maxTables, r.remaining))
        var tables: [TableSchema] = []
        for _ in 0..<tableCount {
            let t = try TableSchema.decode(from: &r)
            let fp = try r.raw(32, "schema fingerprint")
            guard fp == t.fingerprint.bytes else {
                throw BundleSyncError.badData("the schema fingerprint of table '\(shown(t.name))' does not match its description")
            }
            if let last = tables.last, !(last.name < t.name) {
                throw BundleSyncError.badData("tables are not in canonical order")
            }
            tables.append(t)
        }
        let batchCount = try r.count("batch count", limit: min(Limits.maxBatches, r.remaining / 50))
        var batches: [BatchEntry] = []
        batches.reserveCapacity(min(batchCount, 1024))
        for _ in 0..<batchCount {
            let origin = try r.readReplicaID("batch origin")
            let seq = try r.counter("batch sequence number")
            let hash = try r.readDigest("batch hash")
            let length = try r.count("batch length", limit: Limits.maxBatchBytes)
            guard keys[origin] != nil else {
                throw BundleSyncError.badData("batch \(origin.short)#\(seq) has no public key in the header")
            }
            batches.append(BatchEntry(origin: origin, seq: seq, hash: hash, length: length))
        }
        var heads: [SnapshotHead]?
        if required.contains(Self.snapshotCapability) {
            guard batches.isEmpty else { throw BundleSyncError.badData("a snapshot bundle also lists batches") }
            let n = try r.count("snapshot head count", limit: min(Limits.maxReplicas, r.remaining / 49))
            var list: [SnapshotHead] = []
            for _ in 0..<n {
                let origin = try r.readReplicaID("snapshot head origin")
                if let last = list.last, !(last.origin < origin) { throw BundleSyncError.badData("snapshot heads are not in canonical order") }
                let seq = try r.counter("snapshot head sequence number")
                guard seq > 0 else { throw BundleSyncError.badData("a snapshot head is zero") }
                guard keys[origin] != nil else { throw BundleSyncError.badData("snapshot head \(origin.short) has no public key in the header") }
                list.append(SnapshotHead(origin: origin, seq: seq, hash: try r.readDigest("snapshot head hash")))
            }
            heads = list
        }
        var floor: HLC?
        if required.contains(Self.deltaSnapshotCapability) {
            guard heads != nil else { throw BundleSyncError.badData("'\(Self.deltaSnapshotCapability)' is required by a bundle that is not a snapshot") }
            guard !bv.entries.isEmpty else { throw BundleSyncError.badData("a delta snapshot has an empty base vector") }
            let raw = try r.varint("snapshot floor")
            guard raw <= HLC.maximum.rawValue else { throw BundleSyncError.badData("the snapshot floor is out of range") }
            floor = HLC(rawValue: raw)
        }
        try r.expectEnd("the header")
        exporterVector = ev
        baseVector = bv
        requiredCapabilities = required
        optionalCapabilities = optional
        self.keys = keys
        self.tables = tables
        self.batches = batches
        snapshotHeads = heads
        snapshotFloor = floor
    }

    package init(exporter: ReplicaID, exporterKey: [UInt8], exporterName: String, createdMilliseconds: Int64, exporterVector: VersionVector, baseVector: VersionVector, requiredCapabilities: [String], optionalCapabilities: [String], keys: [ReplicaID: [UInt8]], tables: [TableSchema], batches: [BatchEntry], snapshotHeads: [SnapshotHead]? = nil) {
        self.exporter = exporter
        self.exporterKey = exporterKey
        self.exporterName = exporterName
        self.createdMilliseconds = createdMilliseconds
        self.exporterVector = exporterVector
        self.baseVector = baseVector
        self.requiredCapabilities = requiredCapabilities
        self.optionalCapabilities = optionalCapabilities
        self.keys = keys
        self.tables = tables
        self.batches = batches
        self.snapshotHeads = snapshotHeads
    }
}
