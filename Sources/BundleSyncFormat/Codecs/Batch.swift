import BundleSyncCore
import BundleSyncMerge


/// One cell written by a batch: the column (an index into the table section's columns), the
/// HLC of the write, and the value.
public struct CellChange: Equatable, Sendable {
    public var column: Int
    public var hlc: HLC
    /// The value written; for an edit of a text or JSON column, `.null` and `merge` is set.
    public var value: SQLValue
    /// The edit, for a text or JSON column written as text.
    public var merge: MergePayload? = nil

    package init(column: Int, hlc: HLC, value: SQLValue, merge: MergePayload? = nil) {
        self.column = column
        self.hlc = hlc
        self.value = value
        self.merge = merge
    }
}

/// The state of one row as one batch leaves it.
///
/// `causalLength` counts the row's inserts and deletes: odd means present, even means
/// deleted. `rowHLC` is set when the batch changed the causal length (an insert or delete)
/// and is that event's timestamp. A present row's `cells` are the columns the batch wrote.
public struct RowChange: Equatable, Sendable {
    public var key: [SQLValue]
    public var causalLength: UInt64
    public var rowHLC: HLC?
    public var cells: [CellChange]

    public var isAlive: Bool { causalLength % 2 == 1 }

    package init(key: [SQLValue], causalLength: UInt64, rowHLC: HLC? = nil, cells: [CellChange]) {
        self.key = key
        self.causalLength = causalLength
        self.rowHLC = rowHLC
        self.cells = cells
    }
}

/// The changes a batch makes to one table.
public struct TableChanges: Equatable, Sendable {
    public var table: String
    public var keyColumns: [String]
    public var columns: [String]
    public var rows: [RowChange]

    package init(table: String, keyColumns: [String], columns: [String], rows: [RowChange]) {
        self.table = table
        self.keyColumns = keyColumns
        self.columns = columns
        self.rows = rows
    }
}

/// A sealed run of one replica's local changes (`bundlesync-format(5)`, "Batches").
///
/// Its canonical encoding is what the batch hash and the origin's signature cover; the
/// compressed form in a bundle may differ between zstd versions without changing either.
public struct Batch: Equatable, Sendable {
    public static let encodingVersion: UInt8 = 1
    /// Causal lengths stay far below 2^63, so a replica can always count further.
    public static let maxCausalLength: UInt64 = 1 << 62

    public var origin: ReplicaID
    public var seq: UInt64
    public var previous: Digest32
    /// What the origin held of other replicas' history when it sealed this batch.
    public var dependencies: VersionVector
    public var tables: [TableChanges]

    public var rowCount: Int { tables.reduce(0) { $0 + $1.rows.count } }
    public var cellCount: Int { tables.reduce(0) { $0 + $1.rows.reduce(0) { $0 + $1.cells.count } } }

    /// The smallest and largest HLC in the batch, or nil for an empty batch.
    public var hlcRange: ClosedRange<HLC>? { OutlineCounter.clockRange(of: tables, zeroClocksCount: true) }

    // MARK: - Encoding

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 4096)
        let base = hlcRange?.lowerBound ?? .zero
        w.u8(Self.encodingVersion)
        w.raw(origin.bytes)
        w.varint(seq)
        w.raw(previous.bytes)
        dependencies.encode(into: &w)
        w.varint(base.rawValue)
        RowGrammar(.batch(base: base.rawValue), container: "batch").encode(tables, into: &w)
        return w.bytes
    }

    /// Decodes and validates a batch's canonical bytes.
    ///
    /// - Throws: `.badData` for anything malformed: unknown version, bad lengths, cells that
    ///   are out of order or name a column that does not exist, trailing bytes.
    public static func decode(_ bytes: [UInt8]) throws -> Batch {
        try bytes.withUnsafeBytes { buffer in
            var builder = RowBuilder<TableChanges>()
            let head = try walk(buffer, into: &builder)
            return Batch(origin: head.origin, seq: head.seq, previous: head.previous, dependencies: head.dependencies,
                         tables: builder.sections)
        }
    }

    /// What a batch says before its rows.
    package struct Head {
        package var origin: ReplicaID
        package var seq: UInt64
        package var previous: Digest32
        package var dependencies: VersionVector
    }

    /// Reads a batch's head, then walks its rows into `visitor`.
    package static func walk<Visitor: RowVisitor>(_ bytes: UnsafeRawBufferPointer, into visitor: inout Visitor) throws -> Head {
        var r = ByteReader(bytes)
        let version = try r.u8("batch version")
        guard version == encodingVersion else {
            throw BundleSyncError.badData("unsupported batch encoding version \(version)")
        }
        let origin = try r.readReplicaID("batch origin")
        let seq = try r.counter("batch sequence number")
        guard seq > 0 else { throw BundleSyncError.badData("batch sequence number is zero") }
        let previous = try r.readDigest("previous batch hash")
        let deps = try VersionVector.decode(from: &r, what: "batch dependencies")
        guard deps[origin] == 0 else {
            throw BundleSyncError.badData("batch \(seq) of \(origin.short) lists its own origin among its dependencies")
        }
        let base = try r.varint("batch base HLC")
        try RowGrammar(.batch(base: base), container: "batch").walk(&r, into: &visitor)
        return Head(origin: origin, seq: seq, previous: previous, dependencies: deps)
    }

    package init(origin: ReplicaID, seq: UInt64, previous: Digest32, dependencies: VersionVector, tables: [TableChanges]) {
        self.origin = origin
        self.seq = seq
        self.previous = previous
        self.dependencies = dependencies
        self.tables = tables
    }
}

/// A batch as it travels: its canonical bytes and the origin's signature over their hash.
public struct SignedBatch: Sendable {
    public let bytes: [UInt8]
    public let signature: [UInt8]
    public let hash: Digest32

    public init(bytes: [UInt8], signature: [UInt8]) {
        self.init(bytes: bytes, signature: signature, hash: Digest32.of(bytes))
    }

    /// A batch whose hash the caller has just computed from these very bytes.
    package init(bytes: [UInt8], signature: [UInt8], hash: Digest32) {
        self.bytes = bytes
        self.signature = signature
        self.hash = hash
    }

    /// Seals `batch` with the origin's key.
    public init(batch: Batch, identity: Identity) throws {
        let bytes = batch.encoded()
        let hash = Digest32.of(bytes)
        self.bytes = bytes
        self.hash = hash
        self.signature = try identity.sign(domain: .batch, hash.bytes)
    }

    public func signatureIsValid(publicKey: [UInt8]) -> Bool {
        Signature.isValid(signature, domain: .batch, message: hash.bytes, publicKey: publicKey)
    }
}
