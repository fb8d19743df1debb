import BundleSyncCore
import BundleSyncMerge

/// A table section of a batch (``TableChanges``) or a snapshot chunk
/// (``SnapshotChunk/Table``), as ``RowGrammar`` writes and ``RowBuilder`` builds it.
package protocol BodySection {
    associatedtype Row: BodyRow
    var table: String { get }
    var keyColumns: [String] { get }
    var columns: [String] { get }
    var rows: [Row] { get }
    init(_ header: SectionHeader, rows: [Row])
}

/// A row of a ``BodySection``.
package protocol BodyRow {
    associatedtype Cell: BodyCell
    var key: [SQLValue] { get }
    var causalLength: UInt64 { get }
    var isAlive: Bool { get }
    var cells: [Cell] { get set }
    /// The clock of the insert or delete that set the causal length, when the row carries
    /// one, and the index of its origin (0 in a batch).
    var stamp: (hlc: HLC?, origin: Int) { get }
    init(key: [SQLValue], causalLength: UInt64, stamp: (hlc: HLC?, origin: Int), cells: [Cell])
}

/// A cell of a ``BodyRow``.
package protocol BodyCell {
    var column: Int { get }
    var hlc: HLC { get }
    /// The index of the cell's origin (0 in a batch).
    var origin: Int { get }
    var value: SQLValue { get }
    var merge: MergePayload? { get }
    init(column: Int, hlc: HLC, origin: Int, value: SQLValue, merge: MergePayload?)
}

extension BodySection {
    /// The section's header, with the rules of the merge payloads its cells carry.
    package var header: SectionHeader {
        SectionHeader(table: table, keyColumns: keyColumns, columns: columns,
                      cells: rows.lazy.flatMap(\.cells).map { ($0.column, $0.merge) })
    }
}

/// Builds the sections of a batch or a snapshot chunk from a walk of its rows.
package struct RowBuilder<Section: BodySection>: RowVisitor {
    package typealias Values = ValueCodec.Build

    package private(set) var sections: [Section] = []
    private var header = SectionHeader(table: "", keyColumns: [], columns: [])
    private var rows: [Section.Row] = []
    private var key: [SQLValue] = []

    package init() {}

    package mutating func beginSection(_ header: SectionHeader, rows count: Int) {
        self.header = header
        rows = []
        rows.reserveCapacity(min(count, 1024))
    }

    package mutating func key(_ value: SQLValue) {
        key.append(value)
    }

    package mutating func row(causalLength: UInt64, hlc: UInt64?, origin: Int, cells: Int) {
        var cellList: [Section.Row.Cell] = []
        cellList.reserveCapacity(cells)
        rows.append(Section.Row(key: key, causalLength: causalLength, stamp: (hlc.map(HLC.init(rawValue:)), origin), cells: cellList))
        key = []
    }

    package mutating func cell(column: Int, hlc: UInt64, origin: Int, value: SQLValue, merge: MergePayload?) {
        rows[rows.count - 1].cells.append(Section.Row.Cell(column: column, hlc: HLC(rawValue: hlc), origin: origin, value: value, merge: merge))
    }

    package mutating func endSection() {
        sections.append(Section(header, rows: rows))
    }
}

extension TableChanges: BodySection {
    package init(_ header: SectionHeader, rows: [RowChange]) {
        self.init(table: header.table, keyColumns: header.keyColumns, columns: header.columns, rows: rows)
    }
}

extension RowChange: BodyRow {
    package var stamp: (hlc: HLC?, origin: Int) { (rowHLC, 0) }

    package init(key: [SQLValue], causalLength: UInt64, stamp: (hlc: HLC?, origin: Int), cells: [CellChange]) {
        self.init(key: key, causalLength: causalLength, rowHLC: stamp.hlc, cells: cells)
    }
}

extension CellChange: BodyCell {
    package var origin: Int { 0 }

    package init(column: Int, hlc: HLC, origin: Int, value: SQLValue, merge: MergePayload?) {
        self.init(column: column, hlc: hlc, value: value, merge: merge)
    }
}

extension SnapshotChunk.Table: BodySection {
    package init(_ header: SectionHeader, rows: [SnapshotChunk.Row]) {
        self.init(table: header.table, keyColumns: header.keyColumns, columns: header.columns, rows: rows)
    }
}

extension SnapshotChunk.Row: BodyRow {
    package var stamp: (hlc: HLC?, origin: Int) { (rowHLC, rowOrigin) }

    package init(key: [SQLValue], causalLength: UInt64, stamp: (hlc: HLC?, origin: Int), cells: [SnapshotChunk.Cell]) {
        self.init(key: key, causalLength: causalLength, rowHLC: stamp.hlc ?? .zero, rowOrigin: stamp.origin, cells: cells)
    }
}

extension SnapshotChunk.Cell: BodyCell {}
