extension ByteReader {
    /// An unsigned LEB128 varint, canonical (no superfluous trailing zero groups) and at most
    /// 64 bits.
    @inlinable
    public mutating func varint(_ what: String) throws -> UInt64 {
        if readerIndex < bytes.count {
            let b = bytes.getByte(at: readerIndex)
            if b < 0x80 {
                readerIndex += 1
                return UInt64(b)
            }
        }
        return remaining >= 10 ? try wideVarint(what) : try varintByBytes(what)
    }

    /// A varint of two bytes or more with ten bytes to read from: the groups of the first
    /// eight bytes are gathered at once, then the ninth and tenth looked at.
    @usableFromInline
    mutating func wideVarint(_ what: String) throws -> UInt64 {
        // The low seven bits of each of the eight bytes of `w`, packed (little-endian groups).
        func gather(_ w: UInt64) -> UInt64 {
            (w & 0x7f) | (w & 0x7f00) >> 1 | (w & 0x7f_0000) >> 2 | (w & 0x7f00_0000) >> 3
                | (w & 0x7f_0000_0000) >> 4 | (w & 0x7f00_0000_0000) >> 5 | (w & 0x7f_0000_0000_0000) >> 6
                | (w & 0x7f00_0000_0000_0000) >> 7
        }
        let word = bytes.getInteger(at: readerIndex, as: UInt64.self)
        let stops = ~word & 0x8080_8080_8080_8080
        if stops != 0 {
            let length = (stops.trailingZeroBitCount + 1) / 8
            let groups = length == 8 ? word : word & ((1 << UInt64(8 * length)) - 1)
            // Canonical encoding: no superfluous trailing zero groups.
            guard groups >> UInt64(8 * (length - 1)) != 0 else { throw ReadFailure.nonCanonicalVarint(what) }
            readerIndex += length
            return gather(groups)
        }
        let value = gather(word)
        let ninth = bytes.getByte(at: readerIndex + 8)
        if ninth < 0x80 {
            guard ninth != 0 else { throw ReadFailure.nonCanonicalVarint(what) }
            readerIndex += 9
            return value | UInt64(ninth) << 56
        }
        let tenth = bytes.getByte(at: readerIndex + 9)
        guard tenth <= 1 else { throw ReadFailure.overlongVarint(what) }
        guard tenth != 0 else { throw ReadFailure.nonCanonicalVarint(what) }
        readerIndex += 10
        return value | UInt64(ninth & 0x7f) << 56 | 1 << 63
    }

    /// A varint read byte by byte, near the end of the bytes.
    @usableFromInline
    mutating func varintByBytes(_ what: String) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try u8(what)
            if shift == 63 && byte > 1 { throw ReadFailure.overlongVarint(what) }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                guard byte != 0 || shift == 0 else { throw ReadFailure.nonCanonicalVarint(what) }
                return result
            }
            shift += 7
            if shift > 63 { throw ReadFailure.overlongVarint(what) }
        }
    }

    /// A varint that must not exceed `limit`; used for every length and count.
    @inlinable
    public mutating func count(_ what: String, limit: Int) throws -> Int {
        let v = try varint(what)
        guard v <= UInt64(limit) else { throw ReadFailure.overLimit(what, v, limit) }
        return Int(v)
    }

    /// A varint that fits SQLite's signed 64-bit integers, as every stored counter must
    /// (sequence numbers, causal lengths).
    @inlinable
    public mutating func counter(_ what: String) throws -> UInt64 {
        let v = try varint(what)
        guard v <= UInt64(Int64.max) else { throw ReadFailure.outOfRange(what, v) }
        return v
    }

    /// A zigzag-mapped signed varint.
    @inlinable
    public mutating func zigzag(_ what: String) throws -> Int64 {
        let v = try varint(what)
        return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
    }
}
