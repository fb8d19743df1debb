import BundleSyncCore
import BundleSyncMerge

/// The tagged encoding of one SQLite value (`bundlesync-format(5)`, "Values").
///
/// | tag | type    | payload                                   |
/// |-----|---------|-------------------------------------------|
/// | 0   | NULL    | none                                      |
/// | 1   | INTEGER | zigzag varint                             |
/// | 2   | REAL    | 8 bytes, IEEE 754 bit pattern, little-endian |
/// | 3   | TEXT    | varint length, then the bytes             |
/// | 4   | BLOB    | varint length, then the bytes             |
package enum ValueCodec {
    package static func encode(_ value: SQLValue, into w: inout ByteWriter) {
        switch value {
        case .null: w.u8(0)
        case .integer(let v): w.u8(1); w.zigzag(v)
        case .real(let v): w.u8(2); w.u64(v.bitPattern)
        case .text(let b): w.u8(3); w.lengthPrefixed(b)
        case .blob(let b): w.u8(4); w.lengthPrefixed(b)
        }
    }

    package static func decode(from r: inout ByteReader) throws -> SQLValue {
        switch try r.u8("value tag") {
        case 0: return .null
        case 1: return .integer(try r.zigzag("integer value"))
        case 2: return .real(Double(bitPattern: try r.u64("real value")))
        case 3: return .text(try r.lengthPrefixed("text value", limit: Limits.maxValueBytes))
        case 4: return .blob(try r.lengthPrefixed("blob value", limit: Limits.maxValueBytes))
        case let t: throw BundleSyncError.badData("unknown value tag \(t)")
        }
    }
}
