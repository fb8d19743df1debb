import BundleSyncCore
import BundleSyncMerge

/// The rows of batches and snapshot chunks (`bundlesync-format(5)`, "Batches", "Snapshots").
///
/// After a preamble of its own, each body is a count of table sections, each a
/// ``SectionHeader`` and a count of rows. A row is its key values, its causal length and its
/// stamp, and, when present (odd causal length), its cells in column order: each a column,
/// a stamp, and a value or a merge payload. The two bodies differ only in their stamps
/// (``Stamps``).
///
/// ``walk(_:into:)`` reads this grammar once for every reader of it, checking everything in
/// one order with one set of messages, and reports what it reads to a ``RowVisitor``:
/// ``RowBuilder`` builds the rows, ``OutlineCounter`` only counts them.
package struct RowGrammar {
    package enum Stamps {
        /// A batch's: HLCs are offsets from the batch's base HLC, and a row has a clock only
        /// when the batch inserted or deleted it (bit 0 of its flags).
        case batch(base: UInt64)
        /// A snapshot chunk's: HLCs are absolute, and every row and cell names one of the
        /// chunk's `origins` by index.
        case snapshot(origins: Int)
    }

    package let stamps: Stamps
    /// "batch" or "snapshot chunk", as messages name the body.
    package let container: String

    package init(_ stamps: Stamps, container: String) {
        self.stamps = stamps
        self.container = container
    }

    // MARK: - Reading

    /// Reads the table sections up to the end of the body.
    ///
    /// - Throws: `.badData` for anything malformed.
    package func walk<Visitor: RowVisitor>(_ r: inout ByteReader, into visitor: inout Visitor) throws {
        let tableCount = try r.count("table count", limit: min(Limits.maxTables, r.remaining))
        var names = Set<String>()
        var totalRows = 0
        var totalCells = 0
        for _ in 0..<tableCount {
            let header = try SectionHeader.decode(from: &r, seen: &names, container: container)
            let rowCount = try r.count("row count", limit: min(Limits.maxRowsPerBatch - totalRows, r.remaining))
            totalRows += rowCount
            visitor.beginSection(header, rows: rowCount)
            for _ in 0..<rowCount {
                try row(&r, in: header, cellsBefore: &totalCells, into: &visitor)
            }
            visitor.endSection()
        }
        try r.expectEnd("the \(container)")
    }

    @inline(__always)
    private func row<Visitor: RowVisitor>(_ r: inout ByteReader, in header: SectionHeader, cellsBefore totalCells: inout Int,
                                          into visitor: inout Visitor) throws {
        for _ in 0..<header.keyColumns.count { visitor.key(try ValueCodec.read(from: &r, Visitor.Values.self)) }
        let cl = try r.counter("causal length")
        guard cl <= Batch.maxCausalLength, cl > 0 || isBatch else { throw BundleSyncError.badData("causal length \(cl) is out of range") }
        guard cl > 0 else { throw BundleSyncError.badData("a row in '\(shown(header.table))' has causal length zero") }
        let (rowHLC, rowOrigin) = try rowStamp(&r)
        guard cl % 2 == 1 else { return visitor.row(causalLength: cl, hlc: rowHLC, origin: rowOrigin, cells: 0) }
        let cc = header.columns.count
        let n = try r.count("cell count", limit: min(cc, Limits.maxCellsPerBatch - totalCells))
        totalCells += n
        visitor.row(causalLength: cl, hlc: rowHLC, origin: rowOrigin, cells: n)
        var last = -1
        for _ in 0..<n {
            let col = try r.count("cell column", limit: max(cc - 1, 0))
            guard col > last, col < cc else {
                throw BundleSyncError.badData("cells of a row in '\(shown(header.table))' are out of order")
            }
            last = col
            let h = try hlc(&r, "cell HLC")
            let o = try origin(&r, "cell origin")
            let (value, merge) = try CellCodec.read(from: &r, Visitor.Values.self)
            visitor.cell(column: col, hlc: h, origin: o, value: value, merge: merge)
        }
    }

    private var isBatch: Bool {
        if case .batch = stamps { return true }
        return false
    }

    /// A row's clock and origin: in a batch, its flags and, when they say so, its clock; in
    /// a chunk, its clock and its origin.
    @inline(__always)
    private func rowStamp(_ r: inout ByteReader) throws -> (UInt64?, Int) {
        guard isBatch else { return (try hlc(&r, "row HLC"), try origin(&r, "row origin")) }
        let flags = try r.u8("row flags")
        guard flags & ~1 == 0 else { throw BundleSyncError.badData("reserved row flags are set") }
        return (flags & 1 == 1 ? try hlc(&r, "row HLC") : nil, 0)
    }

    @inline(__always)
    private func hlc(_ r: inout ByteReader, _ what: String) throws -> UInt64 {
        let base: UInt64
        if case .batch(let b) = stamps { base = b } else { base = 0 }
        let (sum, overflow) = base.addingReportingOverflow(try r.varint(what))
        guard !overflow, sum <= HLC.maximum.rawValue else { throw BundleSyncError.badData("\(what) is out of range: later than \(HLC.maximum), the latest time a bundle may carry") }
        return sum
    }

    /// An index into a chunk's origins; 0, and nothing read, in a batch.
    @inline(__always)
    private func origin(_ r: inout ByteReader, _ what: String) throws -> Int {
        guard case .snapshot(let count) = stamps else { return 0 }
        let i = try r.count(what, limit: max(count - 1, 0))
        guard i < count else { throw BundleSyncError.badData("\(what) names no origin") }
        return i
    }

    // MARK: - Writing

    /// Writes `sections` as ``walk(_:into:)`` reads them.
    package func encode<Section: BodySection>(_ sections: [Section], into w: inout ByteWriter) {
        w.varint(sections.count)
        for t in sections {
            SectionHeader.encode(table: t.table, keyColumns: t.keyColumns, columns: t.columns, into: &w)
            w.varint(t.rows.count)
            for row in t.rows {
                row.key.forEach { ValueCodec.encode($0, into: &w) }
                w.varint(row.causalLength)
                switch stamps {
                case .batch(let base):
                    w.u8(row.stamp.hlc == nil ? 0 : 1)
                    if let h = row.stamp.hlc { w.varint(h.rawValue - base) }
                case .snapshot:
                    w.varint(row.stamp.hlc?.rawValue ?? 0)
                    w.varint(row.stamp.origin)
                }
                guard row.isAlive else { continue }
                w.varint(row.cells.count)
                for c in row.cells {
                    w.varint(c.column)
                    switch stamps {
                    case .batch(let base): w.varint(c.hlc.rawValue - base)
                    case .snapshot: w.varint(c.hlc.rawValue); w.varint(c.origin)
                    }
                    CellCodec.encode(c.value, c.merge, into: &w)
                }
            }
        }
    }
}

/// What a walk of rows reports, in the order it reads them (``RowGrammar/walk(_:into:)``).
package protocol RowVisitor {
    /// Whether values are built or only checked.
    associatedtype Values: ValueSink
    /// A table section starts; `rows` rows follow.
    mutating func beginSection(_ header: SectionHeader, rows: Int)
    /// One value of the next row's key, in key column order.
    mutating func key(_ value: Values.Value)
    /// The rest of the row's head: its causal length, the clock and origin of the insert or
    /// delete that set it (no clock when a batch left it as it was; origin 0 in a batch),
    /// and how many cells follow.
    mutating func row(causalLength: UInt64, hlc: UInt64?, origin: Int, cells: Int)
    /// One cell of the row, in column order; origin 0 in a batch.
    mutating func cell(column: Int, hlc: UInt64, origin: Int, value: Values.Value, merge: Values.Merge?)
    mutating func endSection()
}
