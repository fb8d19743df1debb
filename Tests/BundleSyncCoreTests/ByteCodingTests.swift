import BundleSyncCore
import Testing

@Suite struct ByteCodingTests {
    @Test(arguments: [UInt64(0), 1, 127, 128, 300, 16_383, 16_384, UInt64(UInt32.max), UInt64.max])
    func varintRoundTrips(_ value: UInt64) throws {
        var w = ByteWriter()
        w.varint(value)
        var r = ByteReader(w.bytes)
        #expect(try r.varint("v") == value)
        #expect(r.isAtEnd)
    }

    @Test(arguments: [Int64.min, -1, 0, 1, Int64.max])
    func zigzagRoundTrips(_ value: Int64) throws {
        var w = ByteWriter()
        w.zigzag(value)
        var r = ByteReader(w.bytes)
        #expect(try r.zigzag("z") == value)
    }

    @Test func nonCanonicalAndOverlongVarintsAreRefused() {
        var padded = ByteReader([0x81, 0x00])
        #expect(throws: BundleSyncError.self) { try padded.varint("v") }
        var overlong = ByteReader([UInt8](repeating: 0xff, count: 10) + [0x01])
        #expect(throws: BundleSyncError.self) { try overlong.varint("v") }
    }

    @Test func readsPastTheEndNameWhatWasExpected() {
        var r = ByteReader([1, 2])
        do {
            _ = try r.u32("header length")
            Issue.record("expected an error")
        } catch let e as BundleSyncError {
            #expect(e.code == .badData)
            #expect(e.message.contains("header length"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func lengthsAreCheckedAgainstLimits() {
        var w = ByteWriter()
        w.varint(UInt64(1) << 40)
        var r = ByteReader(w.bytes)
        #expect(throws: BundleSyncError.self) { try r.lengthPrefixed("blob", limit: 1 << 20) }
    }
}
