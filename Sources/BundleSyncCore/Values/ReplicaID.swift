import Crypto

/// The identity of a replica: the first 16 bytes of SHA-256 over a domain tag and its Ed25519
/// public key.
///
/// Because the id is derived from the key, nobody can sign history for an existing replica
/// without its private key, and a key can never change under the same id.
///
/// Held as two big-endian words, so comparing, hashing and copying an id (done for every
/// scalar of a text merge) costs no array.
public struct ReplicaID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let byteCount = 16
    private let high: UInt64
    private let low: UInt64

    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.init(words: bytes)
    }

    public init?(hex: String) {
        guard let b = bytesFromHex(hex), b.count == Self.byteCount else { return nil }
        self.init(words: b)
    }

    /// An id from bytes known to be exactly ``byteCount`` long.
    package init(exactly b: [UInt8]) {
        self.init(words: b)
    }

    private init<C: Collection>(words b: C) where C.Element == UInt8 {
        var h: UInt64 = 0, l: UInt64 = 0
        for (i, x) in b.enumerated() {
            if i < 8 { h = h << 8 | UInt64(x) } else { l = l << 8 | UInt64(x) }
        }
        high = h
        low = l
    }

    /// The id's 16 bytes.
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) } + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
    }

    /// Derives the id that belongs to a public key (`bundlesync-format(5)`, "Replica ids").
    public init(publicKey: [UInt8]) {
        var h = SHA256()
        h.update(data: Array("bundlesync replica id v1".utf8))
        h.update(data: publicKey)
        self.init(words: Array(h.finalize().prefix(Self.byteCount)))
    }

    public var hex: String { hexString(bytes) }
    public var description: String { hex }
    /// The short form used in file names and messages.
    public var short: String { String(hex.prefix(12)) }

    public static func < (a: ReplicaID, b: ReplicaID) -> Bool {
        a.high != b.high ? a.high < b.high : a.low < b.low
    }
}
