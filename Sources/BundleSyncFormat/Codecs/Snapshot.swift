import BundleSyncCore
import BundleSyncMerge

/// One chunk of a snapshot: the full merge state of some rows (`bundlesync-format(5)`,
/// "Snapshots").
///
/// A snapshot bundle carries a replica's whole tracked state instead of its history: every
/// row, deleted ones included, with its causal length and the clock of every cell. It lets a
/// new replica join after history was pruned. Chunks are covered by the bundle's content
/// digest and the exporter's signature; they carry no signature of their own, since their
/// cells come from many origins.
public struct SnapshotChunk: Equatable, Sendable {
    public static let encodingVersion: UInt8 = 1

    public struct Cell: Equatable, Sendable {
        public var column: Int
        public var hlc: HLC
        /// An index into the chunk's `origins`.
        public var origin: Int
        public var value: SQLValue
        /// A text or JSON cell's whole merge state.
        public var merge: MergePayload? = nil

        package init(column: Int, hlc: HLC, origin: Int, value: SQLValue, merge: MergePayload? = nil) {
            self.column = column
            self.hlc = hlc
            self.origin = origin
            self.value = value
            self.merge = merge
        }
    }

    public struct Row: Equatable, Sendable {
        public var key: [SQLValue]
        public var causalLength: UInt64
        /// The clock of the insert or delete that set the causal length.
        public var rowHLC: HLC
        public var rowOrigin: Int
        /// Every synced column of a present row; none for a deleted one.
        public var cells: [Cell]
        public var isAlive: Bool { causalLength % 2 == 1 }

        package init(key: [SQLValue], causalLength: UInt64, rowHLC: HLC, rowOrigin: Int, cells: [Cell]) {
            self.key = key
            self.causalLength = causalLength
            self.rowHLC = rowHLC
            self.rowOrigin = rowOrigin
            self.cells = cells
        }
    }

    public struct Table: Equatable, Sendable {
        public var table: String
        public var keyColumns: [String]
        public var columns: [String]
        public var rows: [Row]

        package init(table: String, keyColumns: [String], columns: [String], rows: [Row]) {
            self.table = table
            self.keyColumns = keyColumns
            self.columns = columns
            self.rows = rows
        }
    }

    /// The replicas that wrote the rows and cells, referred to by index.
    public var origins: [ReplicaID]
    public var tables: [Table]

    public var rowCount: Int { tables.reduce(0) { $0 + $1.rows.count } }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 4096)
        w.u8(Self.encodingVersion)
        w.varint(origins.count)
        origins.forEach { w.raw($0.bytes) }
        RowGrammar(.snapshot(origins: origins.count), container: "snapshot chunk").encode(tables, into: &w)
        return w.bytes
    }

    /// Decodes and validates a chunk.
    ///
    /// - Throws: `.badData` for anything malformed.
    public static func decode(_ bytes: [UInt8]) throws -> SnapshotChunk {
        try bytes.withUnsafeBytes { try decode($0) }
    }

    /// Decodes and validates a chunk in place.
    package static func decode(_ bytes: UnsafeRawBufferPointer) throws -> SnapshotChunk {
        var builder = RowBuilder<Table>()
        let origins = try walk(bytes, into: &builder)
        return SnapshotChunk(origins: origins, tables: builder.sections)
    }

    /// Reads a chunk's origins, then walks its rows into `visitor`.
    ///
    /// - Returns: The origins.
    package static func walk<Visitor: RowVisitor>(_ bytes: UnsafeRawBufferPointer, into visitor: inout Visitor) throws -> [ReplicaID] {
        var r = ByteReader(bytes)
        let version = try r.u8("snapshot chunk version")
        guard version == encodingVersion else {
            throw BundleSyncError.badData("unsupported snapshot chunk version \(version)")
        }
        let originCount = try r.count("origin count", limit: min(Limits.maxReplicas, r.remaining / ReplicaID.byteCount))
        var origins: [ReplicaID] = []
        for _ in 0..<originCount { origins.append(try r.readReplicaID("origin id")) }
        guard Set(origins).count == origins.count else { throw BundleSyncError.badData("a snapshot chunk lists an origin twice") }
        try RowGrammar(.snapshot(origins: originCount), container: "snapshot chunk").walk(&r, into: &visitor)
        return origins
    }

    package init(origins: [ReplicaID], tables: [Table]) {
        self.origins = origins
        self.tables = tables
    }
}

/// Where each origin's history stood when a snapshot was taken: the batch count and the
/// hash of the last batch, so that later batches can link to it.
public struct SnapshotHead: Equatable, Sendable {
    public var origin: ReplicaID
    public var seq: UInt64
    public var hash: Digest32

    package init(origin: ReplicaID, seq: UInt64, hash: Digest32) {
        self.origin = origin
        self.seq = seq
        self.hash = hash
    }
}
