/// The bytes a ``ByteReader`` reads: an array it keeps alive, or bytes it borrows.
///
/// Gets read at an index already checked to be in range; they never move anything.
@usableFromInline
struct ReadableBytes {
    /// The bytes, when they are owned; empty when borrowed.
    @usableFromInline let owned: [UInt8]
    /// The start of the borrowed bytes; nil when the bytes are owned (or none are borrowed).
    @usableFromInline let base: UnsafeRawPointer?
    @usableFromInline let count: Int

    @inlinable
    init(_ bytes: [UInt8]) {
        owned = bytes
        base = nil
        count = bytes.count
    }

    @inlinable
    init(_ buffer: UnsafeRawBufferPointer) {
        owned = []
        base = buffer.baseAddress
        count = buffer.count
    }

    /// Calls `body` with all the bytes.
    @inlinable @inline(__always)
    func withUnsafeBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        if let base { return try body(UnsafeRawBufferPointer(start: base, count: count)) }
        return try owned.withUnsafeBytes(body)
    }

    @inlinable @inline(__always)
    func getByte(at i: Int) -> UInt8 {
        withUnsafeBytes { $0.load(fromByteOffset: i, as: UInt8.self) }
    }

    /// The little-endian integer of `T`'s width at `i`.
    @inlinable @inline(__always)
    func getInteger<T: FixedWidthInteger>(at i: Int, as: T.Type) -> T {
        withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: i, as: T.self)) }
    }
}

/// The errors of reads, built out of line so that the reads stay small.
@usableFromInline
enum ReadFailure {
    @usableFromInline @inline(never)
    static func truncated(_ what: String, expected n: Int, remaining: Int) -> BundleSyncError {
        BundleSyncError.badData("truncated \(what) (expected \(n) bytes, \(remaining) remain)")
    }

    @usableFromInline @inline(never)
    static func overLimit(_ what: String, _ v: UInt64, _ limit: Int) -> BundleSyncError {
        BundleSyncError.badData("\(what) of \(v) exceeds the limit of \(limit)")
    }

    @usableFromInline @inline(never)
    static func outOfRange(_ what: String, _ v: UInt64) -> BundleSyncError {
        BundleSyncError.badData("\(what) \(v) is out of range")
    }

    static func nonCanonicalVarint(_ what: String) -> BundleSyncError {
        BundleSyncError.badData("non-canonical varint in \(what)")
    }

    static func overlongVarint(_ what: String) -> BundleSyncError {
        BundleSyncError.badData("overlong varint in \(what)")
    }
}
