import BundleSyncCore
import BundleSyncMerge

extension ValueCodec {
    /// Checks one encoded value and steps over it (`bundlesync-format(5)`, "Values").
    ///
    /// Accepts exactly what ``decode(from:)`` accepts and throws what it throws, without
    /// building the value: the validating walks of batches and snapshot chunks check every
    /// value through this one function. A new tag must be added here as well as to `decode`.
    @inline(__always)
    package static func skip(from r: inout ByteReader) throws {
        switch try r.u8("value tag") {
        case 0: return
        case 1: _ = try r.varint("integer value")
        case 2: try r.skip(8, "real value")
        case 3: try r.skip(try r.count("length of text value", limit: Limits.maxValueBytes), "text value")
        case 4: try r.skip(try r.count("length of blob value", limit: Limits.maxValueBytes), "blob value")
        case let t: throw unknownTag(t)
        }
    }

    @inline(never)
    private static func unknownTag(_ t: UInt8) -> BundleSyncError {
        BundleSyncError.badData("unknown value tag \(t)")
    }
}
