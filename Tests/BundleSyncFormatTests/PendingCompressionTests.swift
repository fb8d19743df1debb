import BundleSyncCore
import BundleSyncFormat
import Testing

@Suite struct PendingCompressionTests {
    /// Bytes that compress, but not to nothing: a counter's varints, repeated with variation.
    static func sample(count: Int) -> [UInt8] {
        var w = ByteWriter()
        var i: UInt64 = 0
        while w.bytes.count < count {
            w.varint(i * 2_654_435_761 % 1_000_003)
            i += 1
        }
        return Array(w.bytes.prefix(count))
    }

    @Test(arguments: [0, 1_000, PendingCompression.threadThreshold - 1, PendingCompression.threadThreshold, 3 << 20])
    func givesOneFrameOfTheInput(size: Int) throws {
        let input = Self.sample(count: size)
        let pending = PendingCompression(input)
        let frame = try pending.result()
        #expect(try ZstdDecompressor.decompress(frame, limit: input.count) == input)
        // The result is the same when asked for again, and the same as compressing in place.
        #expect(try pending.result() == frame)
        #expect(frame == (try ZstdCompressor.compress(input)))
    }

    @Test func manyAtOnceEachGiveTheirOwn() throws {
        let inputs = (0..<8).map { Self.sample(count: PendingCompression.threadThreshold + $0 * 4_099) }
        let pending = inputs.map { PendingCompression($0) }
        for (input, p) in zip(inputs, pending).reversed() {
            #expect(try ZstdDecompressor.decompress(try p.result(), limit: input.count) == input)
        }
    }
}
