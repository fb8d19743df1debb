import BundleSyncCore
import BundleSyncFormat
import Testing

@Suite struct ValueCodecTests {
    @Test func everyValueTypeRoundTripsExactly() throws {
        let values: [SQLValue] = [
            .null, .integer(0), .integer(Int64.max), .integer(Int64.min), .real(0.1), .real(-0.0), .real(.infinity),
            .real(1e308), .text(""), .text("héllo 🚑 日本語"), .text([0xff, 0x00, 0xfe]), .blob([]),
            .blob((0..<5000).map { UInt8(truncatingIfNeeded: $0 * 31) }),
        ]
        var w = ByteWriter()
        values.forEach { ValueCodec.encode($0, into: &w) }
        var r = ByteReader(w.bytes)
        for v in values { #expect(try ValueCodec.decode(from: &r) == v) }
        #expect(r.isAtEnd)
        #expect(SQLValue.real(-0.0) != .real(0.0), "REAL compares by bit pattern")
    }
}
