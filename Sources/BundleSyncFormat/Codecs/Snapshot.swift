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
        w.varint(tables.count)
        for t in tables {
            SectionHeader.encode(table: t.table, keyColumns: t.keyColumns, columns: t.columns, into: &w)
            w.varint(t.rows.count)
            for row in t.rows {
                row.key.forEach { ValueCodec.encode($0, into: &w) }
                w.varint(row.causalLength)
                w.varint(row.rowHLC.rawValue)
                w.varint(row.rowOrigin)
                if row.isAlive {
                    w.varint(row.cells.count)
                    for c in row.cells {
                        w.varint(c.column)
                        w.varint(c.hlc.rawValue)
                        w.varint(c.origin)
                        CellCodec.encode(c.value, c.merge, into: &w)
                    }
                }
            }
        }
        return w.bytes
    }

    /// Decodes and validates a chunk.
    ///
    /// - Throws: `.badData` for anything malformed.
    public static func decode(_ bytes: [UInt8]) throws -> SnapshotChunk {
        var r = ByteReader(bytes)
        let version = try r.u8("snapshot chunk version")
        guard version == encodingVersion else {
            throw BundleSyncError.badData("unsupported snapshot chunk version \(version)")
        }
        let originCount = try r.count("origin count", limit: min(Limits.maxReplicas, r.remaining / ReplicaID.byteCount))
        var origins: [ReplicaID] = []
        for _ in 0..<originCount { origins.append(try r.readReplicaID("origin id")) }
        guard Set(origins).count == origins.count else { throw BundleSyncError.badData("a snapshot chunk lists an origin twice") }
        func origin(_ what: String) throws -> Int {
            let i = try r.count(what, limit: max(originCount - 1, 0))
            guard i < originCount else { throw BundleSyncError.badData("\(what) names no origin") }
            return i
        }
        func hlc(_ what: String) throws -> HLC {
            let v = try r.varint(what)
            guard v <= HLC.maximum.rawValue else { throw BundleSyncError.badData("\(what) is out of range") }
            return HLC(rawValue: v)
        }
        let tableCount = try r.count("table count", limit: min(Limits.maxTables, r.remaining))
        var tables: [Table] = []
        var names = Set<String>()
        var totalRows = 0
        var totalCells = 0
        for _ in 0..<tableCount {
            let section = try SectionHeader.decode(from: &r, seen: &names, container: "snapshot chunk")
            let (name, keys, columns) = (section.table, section.keyColumns, section.columns)
            let (kc, cc) = (keys.count, columns.count)
            let rowCount = try r.count("row count", limit: min(Limits.maxRowsPerBatch - totalRows, r.remaining))
            totalRows += rowCount
            var rows: [Row] = []
            rows.reserveCapacity(min(rowCount, 1024))
            for _ in 0..<rowCount {
                var key: [SQLValue] = []
                for _ in 0..<kc { key.append(try ValueCodec.decode(from: &r)) }
                let cl = try r.counter("causal length")
                guard cl > 0, cl <= Batch.maxCausalLength else { throw BundleSyncError.badData("causal length \(cl) is out of range") }
                let rowHLC = try hlc("row HLC")
                let rowOrigin = try origin("row origin")
                var cells: [Cell] = []
                if cl % 2 == 1 {
                    let n = try r.count("cell count", limit: min(cc, Limits.maxCellsPerBatch - totalCells))
                    totalCells += n
                    var last = -1
                    for _ in 0..<n {
                        let col = try r.count("cell column", limit: max(cc - 1, 0))
                        guard col > last, col < cc else { throw BundleSyncError.badData("cells of a row in '\(shown(name))' are out of order") }
                        last = col
                        let h = try hlc("cell HLC")
                        let o = try origin("cell origin")
                        let (value, merge) = try CellCodec.decode(from: &r)
                        cells.append(Cell(column: col, hlc: h, origin: o, value: value, merge: merge))
                    }
                }
                rows.append(Row(key: key, causalLength: cl, rowHLC: rowHLC, rowOrigin: rowOrigin, cells: cells))
            }
            tables.append(Table(table: name, keyColumns: keys, columns: columns, rows: rows))
        }
        try r.expectEnd("the snapshot chunk")
        return SnapshotChunk(origins: origins, tables: tables)
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
