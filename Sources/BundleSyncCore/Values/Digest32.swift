import Crypto

/// A SHA-256 digest: the hash of a batch, of a bundle's content, or of a schema.
public struct Digest32: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    public static let zero = Digest32(unchecked: [UInt8](repeating: 0, count: 32))
    public let bytes: [UInt8]

    package init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    public static func of<C: Collection>(_ data: C) -> Digest32 where C.Element == UInt8 {
        var h = SHA256()
        if let contiguous = data as? [UInt8] { h.update(data: contiguous) } else { h.update(data: Array(data)) }
        return Digest32(unchecked: Array(h.finalize()))
    }

    public var hex: String { hexString(bytes) }
    public var description: String { hex }
    public var short: String { String(hex.prefix(8)) }
}

/// An incremental SHA-256.
public struct Hasher256 {
    private var inner = SHA256()
    public init() {}
    public mutating func update<C: Collection>(_ data: C) where C.Element == UInt8 {
        if let a = data as? [UInt8] { inner.update(data: a) } else { inner.update(data: Array(data)) }
    }
    public mutating func update(_ buffer: UnsafeRawBufferPointer) { inner.update(bufferPointer: buffer) }
    public func finalize() -> Digest32 { Digest32(unchecked: Array(inner.finalize())) }
}
