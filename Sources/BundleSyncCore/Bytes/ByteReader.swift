/// Reads the fixed vocabulary of the bundle format (`bundlesync-format(5)`, "Primitive
/// types") from bytes it owns or borrows.
///
/// As with swift-nio's `ByteBuffer`, a read is a get at the reader index followed by a move
/// of the index. Every get is bounds-checked first: a read past the end, an overlong varint
/// or a length larger than what remains throws a ``BundleSyncError`` with code `.badData`
/// naming what was expected, so hostile input can never index out of range or allocate on
/// a lie.
///
/// A reader made from an array keeps the array alive. A reader made from borrowed bytes
/// copies nothing: the validating walks of batches and snapshot chunks read frames in place
/// this way, straight from the bundle reader's decompression buffer; those bytes must stay
/// valid and unchanged while the reader is in use. Both read the same bytes the same way and
/// throw the same errors.
///
/// The reads the row walks make for every row are `@inlinable`, so that the format layer
/// compiles them into its loops.
public struct ByteReader {
    @usableFromInline let bytes: ReadableBytes
    /// Where the next read starts.
    @usableFromInline var readerIndex: Int

    /// A reader over `bytes`, starting at `offset`.
    @inlinable
    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = ReadableBytes(bytes)
        readerIndex = offset
    }

    /// A reader over borrowed bytes, which must outlive it unchanged.
    @inlinable
    package init(_ buffer: UnsafeRawBufferPointer) {
        bytes = ReadableBytes(buffer)
        readerIndex = 0
    }

    /// How many bytes have been read.
    @inlinable public var offset: Int { readerIndex }
    @inlinable public var remaining: Int { bytes.count - readerIndex }
    @inlinable public var isAtEnd: Bool { readerIndex == bytes.count }

    /// The next byte, without consuming it; nil at the end.
    @inlinable
    public func peek() -> UInt8? { readerIndex < bytes.count ? bytes.getByte(at: readerIndex) : nil }

    // MARK: - Reads: a get, then a move of the index

    /// Throws unless `n` more bytes can be read.
    @inlinable @inline(__always)
    func need(_ n: Int, _ what: String) throws {
        guard n >= 0, n <= remaining else { throw ReadFailure.truncated(what, expected: n, remaining: remaining) }
    }

    @inlinable
    public mutating func u8(_ what: String) throws -> UInt8 {
        try need(1, what)
        defer { readerIndex += 1 }
        return bytes.getByte(at: readerIndex)
    }

    /// A little-endian integer of `T`'s width.
    @inlinable
    mutating func integer<T: FixedWidthInteger>(_ what: String, as: T.Type) throws -> T {
        try need(MemoryLayout<T>.size, what)
        defer { readerIndex += MemoryLayout<T>.size }
        return bytes.getInteger(at: readerIndex, as: T.self)
    }

    public mutating func u16(_ what: String) throws -> UInt16 { try integer(what, as: UInt16.self) }
    public mutating func u32(_ what: String) throws -> UInt32 { try integer(what, as: UInt32.self) }
    @inlinable public mutating func u64(_ what: String) throws -> UInt64 { try integer(what, as: UInt64.self) }

    public mutating func raw(_ n: Int, _ what: String) throws -> [UInt8] {
        try need(n, what)
        let start = readerIndex
        readerIndex += n
        return bytes.withUnsafeBytes { Array(UnsafeRawBufferPointer(rebasing: $0[start..<start + n])) }
    }

    /// Steps over `n` bytes, checking that they are there.
    @inlinable
    package mutating func skip(_ n: Int, _ what: String) throws {
        try need(n, what)
        readerIndex += n
    }

    /// A varint length, at most `limit`, then that many bytes: `what` names the bytes, and
    /// "length of `what`" their length.
    public mutating func lengthPrefixed(_ what: String, limit: Int) throws -> [UInt8] {
        let n = try count("length of \(what)", limit: limit)
        return try raw(n, what)
    }

    /// A length-prefixed UTF-8 string, validated in place.
    public mutating func string(_ what: String, limit: Int = 4096) throws -> String {
        let n = try count("length of \(what)", limit: limit)
        try need(n, what)
        let start = readerIndex
        guard let s = bytes.withUnsafeBytes({ String(validating: UnsafeRawBufferPointer(rebasing: $0[start..<start + n]), as: UTF8.self) }) else {
            throw BundleSyncError.badData("\(what) is not valid UTF-8")
        }
        readerIndex += n
        return s
    }

    public func expectEnd(_ what: String) throws {
        guard isAtEnd else { throw BundleSyncError.badData("\(remaining) unexpected bytes after \(what)") }
    }
}
