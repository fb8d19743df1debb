import BundleSyncCore
import BundleSyncMerge

/// The fixed parts of a bundle file (`bundlesync-format(5)`, "File layout").
///
/// ```
/// prefix   16 bytes   magic[8] version:u16le flags:u16le header_length:u32le
/// header   header_length bytes (uncompressed)
/// body     zstd frames; uncompressed, a run of batch frames
/// trailer  152 bytes
/// ```
public enum BundleFile {
    /// `\x89 B S Y N C \r \n`: the high byte catches 7-bit transfers, CR LF catches newline
    /// translation, and the letters make the file recognisable in a hex dump.
    public static let magic: [UInt8] = [0x89, 0x42, 0x53, 0x59, 0x4E, 0x43, 0x0D, 0x0A]
    public static let endMagic: [UInt8] = Array("BSYNCEND".utf8)
    /// The format version this release writes.
    public static let formatVersion: UInt16 = 3
    /// The format versions this release reads: every one an earlier release wrote.
    public static let readableVersions: ClosedRange<UInt16> = 1...3
    public static let prefixLength = 16
    public static let trailerLength = 8 + 8 + 32 + 32 + 64 + 8
    public static let fileExtension = "bsync"


    /// The bytes of one batch frame in the uncompressed body.
    package static func frameLength(batchLength: Int) -> Int {
        var w = ByteWriter()
        w.varint(batchLength)
        return w.count + batchLength + Signature.byteCount
    }

    /// The uncompressed body of a bundle that carries these batches: their frames.
    package static func bodyLength(of batches: [BundleHeader.BatchEntry]) -> Int {
        batches.reduce(0) { $0 + frameLength(batchLength: $1.length) }
    }

    /// What the exporter signs: both digests and both lengths.
    package static func signedMessage(trailer: Trailer) -> [UInt8] {
        var w = ByteWriter()
        w.raw(trailer.fileDigest.bytes)
        w.raw(trailer.contentDigest.bytes)
        w.u64(trailer.compressedLength)
        w.u64(trailer.uncompressedLength)
        return w.bytes
    }

    public struct Trailer: Equatable, Sendable {
        public var compressedLength: UInt64
        public var uncompressedLength: UInt64
        /// SHA-256 of the uncompressed body.
        public var contentDigest: Digest32
        /// SHA-256 of every byte from the magic to the end of the compressed body.
        public var fileDigest: Digest32
        public var signature: [UInt8]

        package func encoded() -> [UInt8] {
            var w = ByteWriter(capacity: BundleFile.trailerLength)
            w.u64(compressedLength)
            w.u64(uncompressedLength)
            w.raw(contentDigest.bytes)
            w.raw(fileDigest.bytes)
            w.raw(signature)
            w.raw(BundleFile.endMagic)
            return w.bytes
        }

        package static func decode(_ bytes: [UInt8]) throws -> Trailer {
            var r = ByteReader(bytes)
            let t = Trailer(compressedLength: try r.u64("compressed length"),
                            uncompressedLength: try r.u64("uncompressed length"),
                            contentDigest: try r.readDigest("content digest"),
                            fileDigest: try r.readDigest("file digest"),
                            signature: try r.raw(64, "bundle signature"))
            guard try r.raw(8, "end magic") == BundleFile.endMagic else {
                throw BundleSyncError.badData("the trailer's end marker is damaged or missing (truncated or appended data)")
            }
            return t
        }

        package init(compressedLength: UInt64, uncompressedLength: UInt64, contentDigest: Digest32, fileDigest: Digest32, signature: [UInt8]) {
            self.compressedLength = compressedLength
            self.uncompressedLength = uncompressedLength
            self.contentDigest = contentDigest
            self.fileDigest = fileDigest
            self.signature = signature
        }
    }
}
