/// The reads that decoding the bundle format needs, shared by ``ByteReader`` (over an array
/// it owns) and ``ByteCursor`` (over bytes it borrows), so that code written against it
/// (section headers, vectors, values) checks the same things with the same messages on both.
package protocol ByteInput {
    var remaining: Int { get }
    mutating func u8(_ what: String) throws -> UInt8
    mutating func varint(_ what: String) throws -> UInt64
    mutating func count(_ what: String, limit: Int) throws -> Int
    mutating func counter(_ what: String) throws -> UInt64
    mutating func raw(_ n: Int, _ what: String) throws -> [UInt8]
    mutating func string(_ what: String, limit: Int) throws -> String
}

extension ByteReader: ByteInput {}

/// Reads the fixed vocabulary of the bundle format from borrowed bytes, without copying them.
///
/// The validating walks of batches and snapshot chunks (``Batch/outline(of:)``,
/// ``SnapshotChunk/outline(of:)``) read frames in place, straight from the reader's
/// decompression buffer. Every read is bounds-checked and throws exactly what
/// ``ByteReader`` throws for the same bytes; skipping (``skip(_:_:)``,
/// ``skipLengthPrefixed(_:limit:)``) checks lengths the same way without touching the bytes.
/// The bytes must stay valid and unchanged while the cursor is in use.
package struct ByteCursor: ByteInput {
    private let base: UnsafeRawPointer?
    private let end: Int
    package private(set) var offset = 0

    package init(_ buffer: UnsafeRawBufferPointer) {
        base = buffer.baseAddress
        end = buffer.count
    }

    package var remaining: Int { end - offset }
    package var isAtEnd: Bool { offset == end }

    /// The next byte, without consuming it; nil at the end.
    package func peek() -> UInt8? { offset < end ? byte(at: offset) : nil }

    @inline(__always)
    private func need(_ n: Int, _ what: String) throws {
        guard n >= 0, n <= remaining else { throw truncated(what, n) }
    }

    @inline(never)
    private func truncated(_ what: String, _ n: Int) -> BundleSyncError {
        BundleSyncError.badData("truncated \(what) (expected \(n) bytes, \(remaining) remain)")
    }

    @inline(__always)
    private func byte(at i: Int) -> UInt8 { base.unsafelyUnwrapped.load(fromByteOffset: i, as: UInt8.self) }

    @inline(__always)
    package mutating func u8(_ what: String) throws -> UInt8 {
        try need(1, what)
        defer { offset += 1 }
        return byte(at: offset)
    }

    package mutating func u64(_ what: String) throws -> UInt64 {
        try need(8, what)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(byte(at: offset + i)) << UInt64(8 * i) }
        offset += 8
        return v
    }

    /// An unsigned LEB128 varint, canonical and at most 64 bits (as ``ByteReader/varint(_:)``).
    @inline(__always)
    package mutating func varint(_ what: String) throws -> UInt64 {
        if offset < end {
            let b = byte(at: offset)
            if b < 0x80 {
                offset += 1
                return UInt64(b)
            }
        }
        return end - offset >= 10 ? try wideVarint(what) : try longVarint(what)
    }

    /// A varint of two bytes or more with ten bytes to read from: the groups of the first
    /// eight bytes are gathered at once, then the ninth and tenth looked at.
    private mutating func wideVarint(_ what: String) throws -> UInt64 {
        let word = UInt64(littleEndian: base.unsafelyUnwrapped.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        let stops = ~word & 0x8080_8080_8080_8080
        if stops != 0 {
            let length = (stops.trailingZeroBitCount + 1) / 8
            let bytes = length == 8 ? word : word & ((1 << UInt64(8 * length)) - 1)
            // Canonical encoding: no superfluous trailing zero groups.
            guard bytes >> UInt64(8 * (length - 1)) != 0 else { throw BundleSyncError.badData("non-canonical varint in \(what)") }
            offset += length
            return Self.gather(bytes)
        }
        let value = Self.gather(word)
        let ninth = byte(at: offset + 8)
        if ninth < 0x80 {
            guard ninth != 0 else { throw BundleSyncError.badData("non-canonical varint in \(what)") }
            offset += 9
            return value | UInt64(ninth) << 56
        }
        let tenth = byte(at: offset + 9)
        guard tenth <= 1 else { throw BundleSyncError.badData("overlong varint in \(what)") }
        guard tenth != 0 else { throw BundleSyncError.badData("non-canonical varint in \(what)") }
        offset += 10
        return value | UInt64(ninth & 0x7f) << 56 | 1 << 63
    }

    /// The low seven bits of each of the eight bytes of `w`, packed (little-endian groups).
    @inline(__always)
    private static func gather(_ w: UInt64) -> UInt64 {
        (w & 0x7f) | (w & 0x7f00) >> 1 | (w & 0x7f_0000) >> 2 | (w & 0x7f00_0000) >> 3
            | (w & 0x7f_0000_0000) >> 4 | (w & 0x7f00_0000_0000) >> 5 | (w & 0x7f_0000_0000_0000) >> 6
            | (w & 0x7f00_0000_0000_0000) >> 7
    }

    /// A varint read byte by byte, near the end of the bytes.
    private mutating func longVarint(_ what: String) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try u8(what)
            if shift == 63 && byte > 1 {
                throw BundleSyncError.badData("overlong varint in \(what)")
            }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                // Canonical encoding: no superfluous trailing zero groups.
                if byte == 0 && shift > 0 { throw BundleSyncError.badData("non-canonical varint in \(what)") }
                return result
            }
            shift += 7
            if shift > 63 { throw BundleSyncError.badData("overlong varint in \(what)") }
        }
    }

    @inline(__always)
    package mutating func count(_ what: String, limit: Int) throws -> Int {
        let v = try varint(what)
        guard v <= UInt64(limit) else { throw Self.overLimit(what, v, limit) }
        return Int(v)
    }

    @inline(never)
    private static func overLimit(_ what: String, _ v: UInt64, _ limit: Int) -> BundleSyncError {
        BundleSyncError.badData("\(what) of \(v) exceeds the limit of \(limit)")
    }

    @inline(__always)
    package mutating func counter(_ what: String) throws -> UInt64 {
        let v = try varint(what)
        guard v <= UInt64(Int64.max) else { throw Self.outOfRange(what, v) }
        return v
    }

    @inline(never)
    private static func outOfRange(_ what: String, _ v: UInt64) -> BundleSyncError {
        BundleSyncError.badData("\(what) \(v) is out of range")
    }

    package mutating func raw(_ n: Int, _ what: String) throws -> [UInt8] {
        try need(n, what)
        defer { offset += n }
        return n == 0 ? [] : Array(UnsafeRawBufferPointer(start: base.unsafelyUnwrapped + offset, count: n))
    }

    /// Steps over `n` bytes.
    @inline(__always)
    package mutating func skip(_ n: Int, _ what: String) throws {
        try need(n, what)
        offset += n
    }

    /// Steps over a varint length (named `lengthWhat`, at most `limit`) and that many bytes
    /// (named `what`): ``ByteReader/lengthPrefixed(_:limit:)`` without the copy.
    @inline(__always)
    package mutating func skipLengthPrefixed(_ lengthWhat: String, _ what: String, limit: Int) throws {
        let n = try count(lengthWhat, limit: limit)
        try skip(n, what)
    }

    package mutating func string(_ what: String, limit: Int = 4096) throws -> String {
        let n = try count("length of \(what)", limit: limit)
        try need(n, what)
        if n == 0 { return "" }
        defer { offset += n }
        guard let s = String(validating: UnsafeRawBufferPointer(start: base.unsafelyUnwrapped + offset, count: n), as: UTF8.self) else {
            throw BundleSyncError.badData("\(what) is not valid UTF-8")
        }
        return s
    }

    package func expectEnd(_ what: String) throws {
        guard isAtEnd else { throw BundleSyncError.badData("\(remaining) unexpected bytes after \(what)") }
    }
}
