import BundleSyncCore
import BundleSyncMerge

extension Batch {
    /// What a validating walk of a batch's canonical bytes proves and counts, without its rows.
    ///
    /// `verify`, `inspect` and the first pass of `import` need to know that a batch is well
    /// formed, and how many rows and cells it holds, but not its values; building every row
    /// as Swift values cost several times the decompression and hashing of the bundle.
    public struct Outline: Equatable, Sendable {
        /// One table section: its header and what its rows hold.
        public struct Section: Equatable, Sendable {
            public var table: String
            public var keyColumns: [String]
            public var columns: [String]
            public var rows = 0
            /// Rows left deleted (even causal length).
            public var deletes = 0
            public var cells = 0
            /// The rule of each column whose cells carry merge payloads.
            package var mergeRules: [Int: ColumnRule] = [:]

            package var header: SectionHeader {
                SectionHeader(table: table, keyColumns: keyColumns, columns: columns, mergeRules: mergeRules)
            }

            package init(table: String, keyColumns: [String], columns: [String], rows: Int = 0, deletes: Int = 0, cells: Int = 0,
                         mergeRules: [Int: ColumnRule] = [:]) {
                self.table = table
                self.keyColumns = keyColumns
                self.columns = columns
                self.rows = rows
                self.deletes = deletes
                self.cells = cells
                self.mergeRules = mergeRules
            }
        }

        public var origin: ReplicaID
        public var seq: UInt64
        public var previous: Digest32
        public var sections: [Section]
        /// The smallest and largest HLC in the batch, as ``Batch/hlcRange``.
        public var hlcRange: ClosedRange<HLC>?

        package init(origin: ReplicaID, seq: UInt64, previous: Digest32, sections: [Section], hlcRange: ClosedRange<HLC>? = nil) {
            self.origin = origin
            self.seq = seq
            self.previous = previous
            self.sections = sections
            self.hlcRange = hlcRange
        }
    }

    /// The outline of `batch`, as ``outline(of:)`` finds it in the batch's encoding.
    public var outline: Outline {
        Outline(origin: origin, seq: seq, previous: previous, sections: tables.map { t in
            Outline.Section(table: t.table, keyColumns: t.keyColumns, columns: t.columns, rows: t.rows.count,
                            deletes: t.rows.filter { !$0.isAlive }.count, cells: t.rows.reduce(0) { $0 + $1.cells.count },
                            mergeRules: SectionHeader(table: t.table, keyColumns: t.keyColumns, columns: t.columns,
                                                      cells: t.rows.lazy.flatMap(\.cells).map { ($0.column, $0.merge) }).mergeRules)
        }, hlcRange: hlcRange)
    }

    /// Walks a batch's canonical bytes, checking everything ``decode(_:)`` checks, in the same
    /// order and with the same messages, without building its rows.
    ///
    /// - Throws: `.badData` for anything malformed, as ``decode(_:)``.
    package static func outline(of bytes: UnsafeRawBufferPointer) throws -> Outline {
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
        var lowest = UInt64.max, highest: UInt64 = 0
        let tableCount = try r.count("table count", limit: min(Limits.maxTables, r.remaining))
        var sections: [Outline.Section] = []
        var names = Set<String>()
        var totalRows = 0
        var totalCells = 0
        for _ in 0..<tableCount {
            let header = try SectionHeader.decode(from: &r, seen: &names, container: "batch")
            var section = Outline.Section(table: header.table, keyColumns: header.keyColumns, columns: header.columns)
            let (kc, cc) = (header.keyColumns.count, header.columns.count)
            let rowCount = try r.count("row count", limit: min(Limits.maxRowsPerBatch - totalRows, r.remaining))
            totalRows += rowCount
            for _ in 0..<rowCount {
                for _ in 0..<kc { try ValueCodec.skip(from: &r) }
                let cl = try r.counter("causal length")
                guard cl <= maxCausalLength else { throw BundleSyncError.badData("causal length \(cl) is out of range") }
                guard cl > 0 else { throw BundleSyncError.badData("a row in '\(shown(header.table))' has causal length zero") }
                let flags = try r.u8("row flags")
                guard flags & ~1 == 0 else { throw BundleSyncError.badData("reserved row flags are set") }
                if flags & 1 == 1 {
                    let h = try hlc(&r, base: base, "row HLC")
                    (lowest, highest) = (min(lowest, h), max(highest, h))
                }
                if cl % 2 == 1 {
                    let n = try r.count("cell count", limit: min(cc, Limits.maxCellsPerBatch - totalCells))
                    totalCells += n
                    section.cells += n
                    var last = -1
                    for _ in 0..<n {
                        let col = try r.count("cell column", limit: max(cc - 1, 0))
                        guard col > last, col < cc else {
                            throw BundleSyncError.badData("cells of a row in '\(shown(header.table))' are out of order")
                        }
                        last = col
                        let h = try hlc(&r, base: base, "cell HLC")
                        (lowest, highest) = (min(lowest, h), max(highest, h))
                        if let rule = try CellCodec.skip(from: &r) { section.mergeRules[col] = rule }
                    }
                } else {
                    section.deletes += 1
                }
            }
            section.rows = rowCount
            sections.append(section)
        }
        try r.expectEnd("the batch")
        let range = lowest <= highest ? HLC(rawValue: lowest)...HLC(rawValue: highest) : nil
        return Outline(origin: origin, seq: seq, previous: previous, sections: sections, hlcRange: range)
    }

    /// An HLC stored as an offset from the batch's base, as ``decode(_:)`` reads it.
    @inline(__always)
    private static func hlc(_ r: inout ByteReader, base: UInt64, _ what: String) throws -> UInt64 {
        let (sum, overflow) = base.addingReportingOverflow(try r.varint(what))
        guard !overflow, sum <= HLC.maximum.rawValue else { throw BundleSyncError.badData("\(what) is out of range") }
        return sum
    }
}

extension SnapshotChunk {
    /// What a validating walk of a snapshot chunk proves and counts, without its rows.
    public struct Outline: Equatable, Sendable {
        public var origins: [ReplicaID]
        public var sections: [Batch.Outline.Section]
        /// The smallest and largest nonzero HLC of any row or cell.
        public var hlcRange: ClosedRange<HLC>?

        public var rowCount: Int { sections.reduce(0) { $0 + $1.rows } }

        package init(origins: [ReplicaID], sections: [Batch.Outline.Section], hlcRange: ClosedRange<HLC>? = nil) {
            self.origins = origins
            self.sections = sections
            self.hlcRange = hlcRange
        }
    }

    /// The outline of `chunk`, as ``outline(of:)`` finds it in the chunk's encoding.
    public var outline: Outline {
        var lo: HLC?, hi: HLC?
        for t in tables {
            for r in t.rows {
                for h in [r.rowHLC] + r.cells.map(\.hlc) where h != .zero {
                    lo = min(lo ?? h, h)
                    hi = max(hi ?? h, h)
                }
            }
        }
        return Outline(origins: origins, sections: tables.map { t in
            Batch.Outline.Section(table: t.table, keyColumns: t.keyColumns, columns: t.columns, rows: t.rows.count,
                                  deletes: t.rows.filter { !$0.isAlive }.count, cells: t.rows.reduce(0) { $0 + $1.cells.count },
                                  mergeRules: SectionHeader(table: t.table, keyColumns: t.keyColumns, columns: t.columns,
                                                            cells: t.rows.lazy.flatMap(\.cells).map { ($0.column, $0.merge) }).mergeRules)
        }, hlcRange: lo.flatMap { lo in hi.map { lo...$0 } })
    }

    /// Walks a chunk's bytes, checking everything ``decode(_:)`` checks, in the same order and
    /// with the same messages, without building its rows.
    ///
    /// - Throws: `.badData` for anything malformed, as ``decode(_:)``.
    package static func outline(of bytes: UnsafeRawBufferPointer) throws -> Outline {
        var r = ByteReader(bytes)
        let version = try r.u8("snapshot chunk version")
        guard version == encodingVersion else {
            throw BundleSyncError.badData("unsupported snapshot chunk version \(version)")
        }
        let originCount = try r.count("origin count", limit: min(Limits.maxReplicas, r.remaining / ReplicaID.byteCount))
        var origins: [ReplicaID] = []
        for _ in 0..<originCount { origins.append(try r.readReplicaID("origin id")) }
        guard Set(origins).count == origins.count else { throw BundleSyncError.badData("a snapshot chunk lists an origin twice") }
        var lowest = UInt64.max, highest: UInt64 = 0
        let tableCount = try r.count("table count", limit: min(Limits.maxTables, r.remaining))
        var sections: [Batch.Outline.Section] = []
        var names = Set<String>()
        var totalRows = 0
        var totalCells = 0
        for _ in 0..<tableCount {
            let header = try SectionHeader.decode(from: &r, seen: &names, container: "snapshot chunk")
            var section = Batch.Outline.Section(table: header.table, keyColumns: header.keyColumns, columns: header.columns)
            let (kc, cc) = (header.keyColumns.count, header.columns.count)
            let rowCount = try r.count("row count", limit: min(Limits.maxRowsPerBatch - totalRows, r.remaining))
            totalRows += rowCount
            for _ in 0..<rowCount {
                for _ in 0..<kc { try ValueCodec.skip(from: &r) }
                let cl = try r.counter("causal length")
                guard cl > 0, cl <= Batch.maxCausalLength else { throw BundleSyncError.badData("causal length \(cl) is out of range") }
                let h = try hlc(&r, "row HLC")
                if h != 0 { (lowest, highest) = (min(lowest, h), max(highest, h)) }
                try origin(&r, of: originCount, "row origin")
                if cl % 2 == 1 {
                    let n = try r.count("cell count", limit: min(cc, Limits.maxCellsPerBatch - totalCells))
                    totalCells += n
                    section.cells += n
                    var last = -1
                    for _ in 0..<n {
                        let col = try r.count("cell column", limit: max(cc - 1, 0))
                        guard col > last, col < cc else {
                            throw BundleSyncError.badData("cells of a row in '\(shown(header.table))' are out of order")
                        }
                        last = col
                        let h = try hlc(&r, "cell HLC")
                        if h != 0 { (lowest, highest) = (min(lowest, h), max(highest, h)) }
                        try origin(&r, of: originCount, "cell origin")
                        if let rule = try CellCodec.skip(from: &r) { section.mergeRules[col] = rule }
                    }
                } else {
                    section.deletes += 1
                }
            }
            section.rows = rowCount
            sections.append(section)
        }
        try r.expectEnd("the snapshot chunk")
        let range = lowest <= highest ? HLC(rawValue: lowest)...HLC(rawValue: highest) : nil
        return Outline(origins: origins, sections: sections, hlcRange: range)
    }

    /// An HLC, as ``decode(_:)`` reads it.
    @inline(__always)
    private static func hlc(_ r: inout ByteReader, _ what: String) throws -> UInt64 {
        let v = try r.varint(what)
        guard v <= HLC.maximum.rawValue else { throw BundleSyncError.badData("\(what) is out of range") }
        return v
    }

    /// An index into the chunk's `count` origins, as ``decode(_:)`` reads it.
    @inline(__always)
    private static func origin(_ r: inout ByteReader, of count: Int, _ what: String) throws {
        let i = try r.count(what, limit: max(count - 1, 0))
        guard i < count else { throw BundleSyncError.badData("\(what) names no origin") }
    }
}
