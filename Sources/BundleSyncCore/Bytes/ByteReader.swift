/// Reads the fixed vocabulary of the bundle format from a byte buffer.
///
/// Every read is bounds-checked. A read past the end, an overlong varint or a length larger
/// than what remains throws a ``BundleSyncError`` with code `.badData` naming what was
/// expected, so hostile input can never index out of range or allocate on a lie.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    private let end: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
        self.end = bytes.count
    }

    public var remaining: Int { end - offset }
    public var isAtEnd: Bool { offset == end }

    /// The next byte, without consuming it; nil at the end.
    public func peek() -> UInt8? { offset < end ? bytes[offset] : nil }

    private mutating func need(_ n: Int, _ what: String) throws {
        guard n >= 0, n <= remaining else {
            throw BundleSyncError.badData("truncated \(what) (expected \(n) bytes, \(remaining) remain)")
        }
    }

    public mutating func u8(_ what: String) throws -> UInt8 {
        try need(1, what)
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16(_ what: String) throws -> UInt16 {
        try need(2, what)
        defer { offset += 2 }
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    public mutating func u32(_ what: String) throws -> UInt32 {
        try need(4, what)
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[offset + i]) << UInt32(8 * i) }
        offset += 4
        return v
    }

    public mutating func u64(_ what: String) throws -> UInt64 {
        try need(8, what)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << UInt64(8 * i) }
        offset += 8
        return v
    }

    public mutating func varint(_ what: String) throws -> UInt64 {
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

    /// A varint that must not exceed `limit`; used for every length and count.
    public mutating func count(_ what: String, limit: Int) throws -> Int {
        let v = try varint(what)
        guard v <= UInt64(limit) else {
            throw BundleSyncError.badData("\(what) of \(v) exceeds the limit of \(limit)")
        }
        return Int(v)
    }

    /// A varint that fits SQLite's signed 64-bit integers, as every stored counter must
    /// (sequence numbers, causal lengths).
    public mutating func counter(_ what: String) throws -> UInt64 {
        let v = try varint(what)
        guard v <= UInt64(Int64.max) else { throw BundleSyncError.badData("\(what) \(v) is out of range") }
        return v
    }

    public mutating func zigzag(_ what: String) throws -> Int64 {
        let v = try varint(what)
        return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
    }

    public mutating func raw(_ n: Int, _ what: String) throws -> [UInt8] {
        try need(n, what)
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    public mutating func lengthPrefixed(_ what: String, limit: Int) throws -> [UInt8] {
        let n = try count("length of \(what)", limit: limit)
        return try raw(n, what)
    }

    public mutating func string(_ what: String, limit: Int = 4096) throws -> String {
        let data = try lengthPrefixed(what, limit: limit)
        guard let s = String(validating: data, as: UTF8.self) else {
            throw BundleSyncError.badData("\(what) is not valid UTF-8")
        }
        return s
    }

    public func expectEnd(_ what: String) throws {
        guard isAtEnd else { throw BundleSyncError.badData("\(remaining) unexpected bytes after \(what)") }
    }
}
