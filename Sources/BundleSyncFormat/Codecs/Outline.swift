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
        }

        public var origin: ReplicaID
        public var seq: UInt64
        public var previous: Digest32
        public var sections: [Section]
        /// The smallest and largest HLC in the batch, as ``Batch/hlcRange``.
        public var hlcRange: ClosedRange<HLC>?
    }

    /// The outline of `batch`, as ``outline(of:)`` finds it in the batch's encoding.
    public var outline: Outline {
        Outline(origin: origin, seq: seq, previous: previous, sections: tables.map(Outline.Section.init), hlcRange: hlcRange)
    }

    /// Walks a batch's canonical bytes, checking everything ``decode(_:)`` checks, in the same
    /// order and with the same messages, without building its rows.
    ///
    /// - Throws: `.badData` for anything malformed, as ``decode(_:)``.
    package static func outline(of bytes: UnsafeRawBufferPointer) throws -> Outline {
        var counter = OutlineCounter(zeroClocksCount: true)
        let head = try walk(bytes, into: &counter)
        return Outline(origin: head.origin, seq: head.seq, previous: head.previous, sections: counter.sections,
                       hlcRange: counter.hlcRange)
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
    }

    /// The outline of `chunk`, as ``outline(of:)`` finds it in the chunk's encoding.
    public var outline: Outline {
        Outline(origins: origins, sections: tables.map(Batch.Outline.Section.init),
                hlcRange: OutlineCounter.clockRange(of: tables, zeroClocksCount: false))
    }

    /// Walks a chunk's bytes, checking everything ``decode(_:)`` checks, in the same order and
    /// with the same messages, without building its rows.
    ///
    /// - Throws: `.badData` for anything malformed, as ``decode(_:)``.
    package static func outline(of bytes: UnsafeRawBufferPointer) throws -> Outline {
        var counter = OutlineCounter(zeroClocksCount: false)
        let origins = try walk(bytes, into: &counter)
        return Outline(origins: origins, sections: counter.sections, hlcRange: counter.hlcRange)
    }
}

extension Batch.Outline.Section {
    /// The outline of a decoded section.
    package init<Section: BodySection>(_ section: Section) {
        let header = section.header
        self.init(table: header.table, keyColumns: header.keyColumns, columns: header.columns, rows: section.rows.count,
                  deletes: section.rows.filter { !$0.isAlive }.count, cells: section.rows.reduce(0) { $0 + $1.cells.count },
                  mergeRules: header.mergeRules)
    }
}

/// Counts what a walk of rows reads (``RowGrammar/walk(_:into:)``): sections, rows, deletes,
/// cells, the rules of merge payloads, and the range of the clocks.
package struct OutlineCounter: RowVisitor {
    package typealias Values = ValueCodec.Check

    package private(set) var sections: [Batch.Outline.Section] = []
    private var section = Batch.Outline.Section(table: "", keyColumns: [], columns: [])
    /// False when a zero clock means none (snapshot chunks).
    private let zeroClocksCount: Bool
    private var lowest = UInt64.max
    private var highest: UInt64 = 0

    package init(zeroClocksCount: Bool) {
        self.zeroClocksCount = zeroClocksCount
    }

    /// The smallest and largest clock noted.
    package var hlcRange: ClosedRange<HLC>? {
        lowest <= highest ? HLC(rawValue: lowest)...HLC(rawValue: highest) : nil
    }

    /// The smallest and largest clock of any row or cell of `sections`.
    package static func clockRange<Section: BodySection>(of sections: [Section], zeroClocksCount: Bool) -> ClosedRange<HLC>? {
        var counter = OutlineCounter(zeroClocksCount: zeroClocksCount)
        for row in sections.lazy.flatMap(\.rows) {
            if let h = row.stamp.hlc { counter.note(h.rawValue) }
            row.cells.forEach { counter.note($0.hlc.rawValue) }
        }
        return counter.hlcRange
    }

    @inline(__always)
    private mutating func note(_ hlc: UInt64) {
        guard zeroClocksCount || hlc != 0 else { return }
        (lowest, highest) = (min(lowest, hlc), max(highest, hlc))
    }

    package mutating func beginSection(_ header: SectionHeader, rows: Int) {
        section = Batch.Outline.Section(table: header.table, keyColumns: header.keyColumns, columns: header.columns, rows: rows)
    }

    package mutating func key(_ value: Void) {}

    package mutating func row(causalLength: UInt64, hlc: UInt64?, origin: Int, cells: Int) {
        if let hlc { note(hlc) }
        if causalLength % 2 == 0 { section.deletes += 1 }
        section.cells += cells
    }

    package mutating func cell(column: Int, hlc: UInt64, origin: Int, value: Void, merge: ColumnRule?) {
        note(hlc)
        if let merge { section.mergeRules[column] = merge }
    }

    package mutating func endSection() {
        sections.append(section)
    }
}
