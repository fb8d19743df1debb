import Crypto

/// The identity of a replica: the first 16 bytes of SHA-256 over a domain tag and its Ed25519
/// public key.
///
/// Because the id is derived from the key, nobody can sign history for an existing replica
/// without its private key, and a key can never change under the same id.
public struct ReplicaID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let byteCount = 16
    public let bytes: [UInt8]

    public init?(bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.bytes = bytes
    }

    public init?(hex: String) {
        guard let b = bytesFromHex(hex), b.count == Self.byteCount else { return nil }
        self.bytes = b
    }

    /// Derives the id that belongs to a public key (`bundlesync-format(5)`, "Replica ids").
    public init(publicKey: [UInt8]) {
        var h = SHA256()
        h.update(data: Array("bundlesync replica id v1".utf8))
        h.update(data: publicKey)
        self.bytes = Array(h.finalize().prefix(Self.byteCount))
    }

    public var hex: String { hexString(bytes) }
    public var description: String { hex }
    /// The short form used in file names and messages.
    public var short: String { String(hex.prefix(12)) }

    public static func < (a: ReplicaID, b: ReplicaID) -> Bool {
        a.bytes.lexicographicallyPrecedes(b.bytes)
    }
}
