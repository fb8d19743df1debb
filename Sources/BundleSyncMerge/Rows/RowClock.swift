import BundleSyncCore

/// The merge state of one row: one clock row per user row, with column clocks packed.
///
/// A row's clock is its causal length (odd: present, even: deleted) and the timestamp and
/// origin of the event that set it. A cell's clock is that same row clock unless the cell
/// was written later; only those later writes are stored, as `overrides`. A freshly
/// inserted row therefore costs no per-cell bookkeeping at all.
package struct RowClock: Equatable {
    package struct Stamp: Equatable {
        package var hlc: HLC
        /// The local index of the writing replica (see `_bundlesync_replicas`).
        package var origin: Int64

        package init(hlc: HLC, origin: Int64) {
            self.hlc = hlc
            self.origin = origin
        }

        /// The clock of a cell nobody has written: a column added after its row was
        /// written, or one its row's writer did not track. Every real write is later.
        package static func unwritten(by origin: Int64) -> Stamp { Stamp(hlc: .zero, origin: origin) }
    }

    /// A cell written after its row: its column's ordinal and its clock.
    package struct LaterCell: Equatable {
        package var ordinal: Int
        package var stamp: Stamp

        package init(ordinal: Int, stamp: Stamp) {
            self.ordinal = ordinal
            self.stamp = stamp
        }
    }

    package var causalLength: UInt64
    package var row: Stamp
    /// The cells whose clock is not the row's, in ordinal order, each once. A row has few:
    /// an array searched in order costs less than a dictionary for every cell merged or
    /// sealed, and it packs in order without sorting.
    package private(set) var laterCells: [LaterCell]

    package var isAlive: Bool { causalLength % 2 == 1 }

    package func cell(_ ordinal: Int) -> Stamp {
        for c in laterCells {
            if c.ordinal == ordinal { return c.stamp }
            if c.ordinal > ordinal { break }
        }
        return row
    }

    /// Records a cell write, dropping the override when it equals the row clock.
    package mutating func setCell(_ ordinal: Int, _ stamp: Stamp) {
        place(ordinal, stamp == row ? nil : stamp)
    }

    /// Sets the clock kept for `ordinal` (none: the row's), keeping ordinal order.
    private mutating func place(_ ordinal: Int, _ stamp: Stamp?) {
        let i = laterCells.firstIndex { $0.ordinal >= ordinal } ?? laterCells.count
        if i < laterCells.count && laterCells[i].ordinal == ordinal {
            if let stamp { laterCells[i].stamp = stamp } else { laterCells.remove(at: i) }
        } else if let stamp {
            laterCells.insert(LaterCell(ordinal: ordinal, stamp: stamp), at: i)
        }
    }

    /// The packed overrides: for each, in ordinal order, varint ordinal, varint HLC,
    /// varint origin index. Nil when there are none.
    package func packedOverrides() -> [UInt8]? {
        guard !laterCells.isEmpty else { return nil }
        var w = ByteWriter(capacity: laterCells.count * 14)
        for c in laterCells {
            w.varint(c.ordinal)
            w.varint(c.stamp.hlc.rawValue)
            w.varint(UInt64(c.stamp.origin))
        }
        return w.bytes
    }

    /// A clock with the overrides packed by ``packedOverrides()``; where an ordinal comes
    /// twice, the later entry counts.
    package init(causalLength: UInt64, row: Stamp, packed bytes: [UInt8]?) throws {
        self.causalLength = causalLength
        self.row = row
        laterCells = []
        guard let bytes, !bytes.isEmpty else { return }
        var r = ByteReader(bytes)
        while !r.isAtEnd {
            let ord = try r.count("column ordinal", limit: Limits.maxColumns)
            let hlc = HLC(rawValue: try r.varint("cell clock"))
            let origin = Int64(try r.varint("cell origin"))
            place(ord, Stamp(hlc: hlc, origin: origin))
        }
    }

    package init(causalLength: UInt64, row: Stamp, overrides: [Int: Stamp]) {
        self.causalLength = causalLength
        self.row = row
        laterCells = overrides.sorted { $0.key < $1.key }.map { LaterCell(ordinal: $0.key, stamp: $0.value) }
    }
}
