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
    public var hlcRange: ClosedRange<HLC>? {
        var lo: HLC?, hi: HLC?
        for t in tables {
            for r in t.rows {
                for h in [r.rowHLC].compactMap({ $0 }) + r.cells.map(\.hlc) {
                    lo = min(lo ?? h, h)
                    hi = max(hi ?? h, h)
                }
            }
        }
        guard let lo, let hi else { return nil }
        return lo...hi
    }

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
        w.varint(tables.count)
        for t in tables {
            SectionHeader.encode(table: t.table, keyColumns: t.keyColumns, columns: t.columns, into: &w)
            w.varint(t.rows.count)
            for row in t.rows {
                row.key.forEach { ValueCodec.encode($0, into: &w) }
                w.varint(row.causalLength)
                if let h = row.rowHLC {
                    w.u8(1)
                    w.varint(h.rawValue - base.rawValue)
                } else {
                    w.u8(0)
                }
                if row.isAlive {
                    w.varint(row.cells.count)
                    for c in row.cells {
                        w.varint(c.column)
                        w.varint(c.hlc.rawValue - base.rawValue)
                        CellCodec.encode(c.value, c.merge, into: &w)
                    }
                }
            }
        }
        return w.bytes
    }

    /// Decodes and validates a batch's canonical bytes.
    ///
    /// - Throws: `.badData` for anything malformed: unknown version, bad lengths, cells that
    ///   are out of order or name a column that does not exist, trailing bytes.
    public static func decode(_ bytes: [UInt8]) throws -> Batch {
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
        func hlc(_ what: String) throws -> HLC {
            let (sum, overflow) = base.addingReportingOverflow(try r.varint(what))
            guard !overflow, sum <= HLC.maximum.rawValue else { throw BundleSyncError.badData("\(what) is out of range") }
            return HLC(rawValue: sum)
        }
        let tableCount = try r.count("table count", limit: min(Limits.maxTables, r.remaining))
        var tables: [TableChanges] = []
        var names = Set<String>()
        var totalRows = 0
        var totalCells = 0
        for _ in 0..<tableCount {
            let section = try SectionHeader.decode(from: &r, seen: &names, container: "batch")
            let (name, keyColumns, columns) = (section.table, section.keyColumns, section.columns)
            let (kc, cc) = (keyColumns.count, columns.count)
            let rowCount = try r.count("row count", limit: min(Limits.maxRowsPerBatch - totalRows, r.remaining))
            totalRows += rowCount
            var rows: [RowChange] = []
            rows.reserveCapacity(min(rowCount, 1024))
            for _ in 0..<rowCount {
                var key: [SQLValue] = []
                for _ in 0..<kc { key.append(try ValueCodec.decode(from: &r)) }
                let cl = try r.counter("causal length")
                guard cl <= Self.maxCausalLength else { throw BundleSyncError.badData("causal length \(cl) is out of range") }
                guard cl > 0 else { throw BundleSyncError.badData("a row in '\(shown(name))' has causal length zero") }
                let flags = try r.u8("row flags")
                guard flags & ~1 == 0 else { throw BundleSyncError.badData("reserved row flags are set") }
                let rowHLC = flags & 1 == 1 ? try hlc("row HLC") : nil
                var cells: [CellChange] = []
                if cl % 2 == 1 {
                    let n = try r.count("cell count", limit: min(cc, Limits.maxCellsPerBatch - totalCells))
                    totalCells += n
                    var last = -1
                    for _ in 0..<n {
                        let col = try r.count("cell column", limit: max(cc - 1, 0))
                        guard col > last, col < cc else { throw BundleSyncError.badData("cells of a row in '\(shown(name))' are out of order") }
                        last = col
                        let h = try hlc("cell HLC")
                        let (value, merge) = try CellCodec.decode(from: &r)
                        cells.append(CellChange(column: col, hlc: h, value: value, merge: merge))
                    }
                }
                rows.append(RowChange(key: key, causalLength: cl, rowHLC: rowHLC, cells: cells))
            }
            tables.append(TableChanges(table: name, keyColumns: keyColumns, columns: columns, rows: rows))
        }
        try r.expectEnd("the batch")
        return Batch(origin: origin, seq: seq, previous: previous, dependencies: deps, tables: tables)
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
