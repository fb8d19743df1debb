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

    package var causalLength: UInt64
    package var row: Stamp
    package var overrides: [Int: Stamp]

    package var isAlive: Bool { causalLength % 2 == 1 }

    package func cell(_ ordinal: Int) -> Stamp { overrides[ordinal] ?? row }

    /// Records a cell write, dropping the override when it equals the row clock.
    package mutating func setCell(_ ordinal: Int, _ stamp: Stamp) {
        overrides[ordinal] = stamp == row ? nil : stamp
    }

    /// The packed overrides: for each, in ordinal order, varint ordinal, varint HLC,
    /// varint origin index. Nil when there are none.
    package func packedOverrides() -> [UInt8]? {
        guard !overrides.isEmpty else { return nil }
        var w = ByteWriter(capacity: overrides.count * 14)
        for (ord, stamp) in overrides.sorted(by: { $0.key < $1.key }) {
            w.varint(ord)
            w.varint(stamp.hlc.rawValue)
            w.varint(UInt64(stamp.origin))
        }
        return w.bytes
    }

    package static func unpackOverrides(_ bytes: [UInt8]?) throws -> [Int: Stamp] {
        guard let bytes, !bytes.isEmpty else { return [:] }
        var r = ByteReader(bytes)
        var out: [Int: Stamp] = [:]
        while !r.isAtEnd {
            let ord = try r.count("column ordinal", limit: Limits.maxColumns)
            let hlc = HLC(rawValue: try r.varint("cell clock"))
            let origin = Int64(try r.varint("cell origin"))
            out[ord] = Stamp(hlc: hlc, origin: origin)
        }
        return out
    }

    package init(causalLength: UInt64, row: Stamp, overrides: [Int: Stamp]) {
        self.causalLength = causalLength
        self.row = row
        self.overrides = overrides
    }
}
