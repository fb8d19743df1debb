import BundleSyncCore

import Crypto
import _CryptoExtras
import Foundation

/// A replica's X25519 key pair: peers encrypt bundles to its public half
/// (`bundlesync-format(5)`, "ENCRYPTION").
public struct ExchangeIdentity {
    package let privateKey: Curve25519.KeyAgreement.PrivateKey

    public init() { privateKey = Curve25519.KeyAgreement.PrivateKey() }

    public init(privateKeyBytes: [UInt8]) throws {
        do {
            privateKey = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: privateKeyBytes)
        } catch {
            throw BundleSyncError.failure("the replica's encryption key is damaged")
        }
    }

    public var privateKeyBytes: [UInt8] { Array(privateKey.rawRepresentation) }
    public var publicKey: [UInt8] { Array(privateKey.publicKey.rawRepresentation) }
}

/// One recipient of an encrypted bundle, as its header lists it in the clear.
public struct BundleRecipient: Equatable, Sendable {
    /// Kind 1: a replica, by id; the file key is sealed to its X25519 key with HPKE.
    public static let replicaKind: UInt8 = 1
    public static let wrappedLength = 32 + 16
    public static let encapsulatedLength = 32

    public var replica: ReplicaID
    /// HPKE's encapsulated key: the sender's one-time X25519 public key.
    public var encapsulated: [UInt8]
    /// The file key sealed by HPKE: 32 bytes and a 16-byte tag.
    public var wrapped: [UInt8]

    package func encode(into w: inout ByteWriter) {
        w.u8(Self.replicaKind)
        w.raw(replica.bytes)
        w.raw(encapsulated)
        w.raw(wrapped)
    }

    /// Decodes the stanza after its kind byte.
    package static func decode(from r: inout ByteReader) throws -> BundleRecipient {
        BundleRecipient(replica: try r.readReplicaID("recipient id"),
                               encapsulated: try r.raw(encapsulatedLength, "recipient encapsulated key"),
                               wrapped: try r.raw(wrappedLength, "recipient wrapped file key"))
    }

    package init(replica: ReplicaID, encapsulated: [UInt8], wrapped: [UInt8]) {
        self.replica = replica
        self.encapsulated = encapsulated
        self.wrapped = wrapped
    }
}

/// A passphrase recipient of an encrypted bundle, for two devices that have never
/// exchanged a bundle: the file key sealed under a key derived from a passphrase by scrypt.
public struct PassphraseRecipient: Equatable, Sendable {
    public static let kind: UInt8 = 2
    /// scrypt's cost: N = 2^logN, with r = 8 and p = 1; 2^15 takes 32 MiB and about a tenth of
    /// a second on a laptop core.
    public static let writtenLogN: UInt8 = 15
    /// The largest cost a reader accepts (2^16, 64 MiB), so a bundle cannot make it exhaust memory.
    public static let maxLogN: UInt8 = 16
    public static let minLogN: UInt8 = 10

    public var salt: [UInt8]
    public var logN: UInt8
    /// The file key sealed with ChaCha20-Poly1305: 32 bytes and a 16-byte tag.
    public var wrapped: [UInt8]

    package func encode(into w: inout ByteWriter) {
        w.u8(Self.kind)
        w.raw(salt)
        w.u8(logN)
        w.raw(wrapped)
    }

    /// Decodes the stanza after its kind byte.
    package static func decode(from r: inout ByteReader) throws -> PassphraseRecipient {
        let salt = try r.raw(16, "passphrase salt")
        let logN = try r.u8("passphrase cost")
        guard (minLogN...maxLogN).contains(logN) else {
            throw BundleSyncError.badData("the passphrase cost 2^\(logN) is outside 2^\(minLogN) to 2^\(maxLogN)")
        }
        return PassphraseRecipient(salt: salt, logN: logN, wrapped: try r.raw(BundleRecipient.wrappedLength, "passphrase wrapped file key"))
    }

    /// The key that seals the file key: scrypt of the passphrase, salted with a label and
    /// the stanza's random salt.
    static func wrappingKey(passphrase: [UInt8], salt: [UInt8], logN: UInt8) throws -> SymmetricKey {
        try KDF.Scrypt.deriveKey(from: passphrase, salt: Array("bundlesync v2 passphrase".utf8) + salt, outputByteCount: 32,
                                 rounds: 1 << Int(logN), blockSize: 8, parallelism: 1, maxMemory: 80 << 20)
    }

    package init(salt: [UInt8], logN: UInt8, wrapped: [UInt8]) {
        self.salt = salt
        self.logN = logN
        self.wrapped = wrapped
    }
}

/// The random key of one encrypted bundle and the keys derived from it.
///
/// ```
/// header key  = HKDF-SHA256(file key, salt: none, info: "bundlesync v2 header")
/// body key    = HKDF-SHA256(file key, salt: none, info: "bundlesync v2 body")
/// digest key  = HKDF-SHA256(file key, salt: none, info: "bundlesync v2 content digest")
/// ```
package struct FileKey {
    package let bytes: [UInt8]

    /// Built on each use rather than kept in a static: a sealed file key is opened once per
    /// bundle, and a static `Data` made once looks like a leak to LeakSanitizer.
    package static var hpkeInfo: Data { Data("bundlesync v2 file key".utf8) }
    package static let suite = HPKE.Ciphersuite.Curve25519_SHA256_ChachaPoly

    package init() {
        bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    package init(bytes: [UInt8]) { self.bytes = bytes }

    private func derive(_ info: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: bytes), info: Data(info.utf8), outputByteCount: 32)
    }

    package var headerKey: SymmetricKey { derive("bundlesync v2 header") }
    package var bodyKey: SymmetricKey { derive("bundlesync v2 body") }
    /// Prefixed to the uncompressed body for the content digest, so that the digest in the
    /// clear trailer confirms no guess about the content to someone without the key.
    package var digestKey: [UInt8] { derive("bundlesync v2 content digest").withUnsafeBytes { Array($0) } }

    /// Seals this key to a replica's X25519 public key (HPKE base mode; the recipient's id
    /// is the associated data).
    package func wrap(for replica: ReplicaID, exchangeKey: [UInt8]) throws -> BundleRecipient {
        guard let key = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: exchangeKey) else {
            throw BundleSyncError.failure("the encryption key recorded for replica \(replica.short) is damaged")
        }
        var sender = try HPKE.Sender(recipientKey: key, ciphersuite: Self.suite, info: Self.hpkeInfo)
        let sealed = try sender.seal(bytes, authenticating: replica.bytes)
        return BundleRecipient(replica: replica, encapsulated: Array(sender.encapsulatedKey), wrapped: Array(sealed))
    }

    /// Seals this key under a passphrase, with a fresh salt.
    package func wrap(passphrase: [UInt8]) throws -> PassphraseRecipient {
        let salt = SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) }
        let key = try PassphraseRecipient.wrappingKey(passphrase: passphrase, salt: salt, logN: PassphraseRecipient.writtenLogN)
        let box = try ChaChaPoly.seal(bytes, using: key, nonce: try ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)))
        return PassphraseRecipient(salt: salt, logN: PassphraseRecipient.writtenLogN, wrapped: Array(box.ciphertext) + Array(box.tag))
    }

    /// Opens the file key from a passphrase recipient, or nil when the passphrase is not
    /// the one it was sealed with.
    package static func unwrap(_ recipient: PassphraseRecipient, passphrase: [UInt8]) -> FileKey? {
        guard let key = try? PassphraseRecipient.wrappingKey(passphrase: passphrase, salt: recipient.salt, logN: recipient.logN),
              let box = try? ChaChaPoly.SealedBox(nonce: try ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)),
                                                  ciphertext: recipient.wrapped.prefix(32), tag: recipient.wrapped.suffix(16)),
              let opened = try? ChaChaPoly.open(box, using: key), opened.count == 32 else { return nil }
        return FileKey(bytes: Array(opened))
    }

    /// Opens the file key from `recipient` with `identity`, or nil when it does not open.
    package static func unwrap(_ recipient: BundleRecipient, with identity: ExchangeIdentity) -> FileKey? {
        guard var r = try? HPKE.Recipient(privateKey: identity.privateKey, ciphersuite: suite, info: hpkeInfo,
                                          encapsulatedKey: Data(recipient.encapsulated)),
              let opened = try? r.open(recipient.wrapped, authenticating: recipient.replica.bytes),
              opened.count == 32 else { return nil }
        return FileKey(bytes: Array(opened))
    }

    /// Seals the header's contents: ChaCha20-Poly1305 under the header key with an all-zero
    /// nonce (the key is used once), authenticating everything before them in the file.
    package func sealHeader(_ contents: [UInt8], authenticating clear: [UInt8]) throws -> [UInt8] {
        let box = try ChaChaPoly.seal(contents, using: headerKey, nonce: try ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)),
                                      authenticating: clear)
        return Array(box.ciphertext) + Array(box.tag)
    }

    package func openHeader(_ sealed: [UInt8], authenticating clear: [UInt8]) throws -> [UInt8] {
        guard sealed.count >= 16,
              let box = try? ChaChaPoly.SealedBox(nonce: try ChaChaPoly.Nonce(data: [UInt8](repeating: 0, count: 12)),
                                                  ciphertext: sealed.dropLast(16), tag: sealed.suffix(16)),
              let opened = try? ChaChaPoly.open(box, using: headerKey, authenticating: clear) else {
            throw BundleSyncError.badData("the encrypted header does not open (damaged or altered)")
        }
        return Array(opened)
    }
}

/// The body's STREAM construction: the compressed body is cut into chunks of 64 KiB, the
/// last one shorter or equal, and each is sealed with ChaCha20-Poly1305 under the body key
/// and its own nonce:
///
/// ```
/// nonce = counter: 11 bytes, big-endian, from 0 || final: 1 byte, 01 for the last chunk, else 00
/// ```
///
/// A reordered, dropped, repeated or cut chunk fails to open, and so does a body cut at a
/// chunk boundary, since its new last chunk was not sealed as final.
package enum BodyCipher {
    package static let chunkLength = 1 << 16
    package static let tagLength = 16
    package static let sealedChunkLength = chunkLength + tagLength

    package static func nonce(_ counter: UInt64, final: Bool) throws -> ChaChaPoly.Nonce {
        var n = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { n[10 - i] = UInt8(truncatingIfNeeded: counter >> (8 * UInt64(i))) }
        n[11] = final ? 1 : 0
        return try ChaChaPoly.Nonce(data: n)
    }

    /// Seals one chunk: its ciphertext, then its tag.
    package static func seal(_ chunk: ArraySlice<UInt8>, key: SymmetricKey, counter: UInt64, final: Bool) throws -> [UInt8] {
        let box = try ChaChaPoly.seal(chunk, using: key, nonce: try nonce(counter, final: final))
        var out = [UInt8](repeating: 0, count: chunk.count + tagLength)
        out.withUnsafeMutableBytes { o in
            box.ciphertext.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: o[0..<chunk.count]))
            box.tag.copyBytes(to: UnsafeMutableRawBufferPointer(rebasing: o[chunk.count...]))
        }
        return out
    }

    package static func seal(_ chunk: [UInt8], key: SymmetricKey, counter: UInt64, final: Bool) throws -> [UInt8] {
        try seal(chunk[...], key: key, counter: counter, final: final)
    }

    /// Opens one sealed chunk, or returns nil when it does not authenticate.
    package static func open(_ sealed: UnsafeRawBufferPointer, key: SymmetricKey, counter: UInt64, final: Bool) -> Data? {
        guard sealed.count > tagLength, let base = sealed.baseAddress else { return nil }
        let n = sealed.count - tagLength
        guard let box = try? ChaChaPoly.SealedBox(nonce: try nonce(counter, final: final), ciphertext: Data(bytes: base, count: n),
                                                  tag: Data(bytes: base + n, count: tagLength)) else { return nil }
        return try? ChaChaPoly.open(box, using: key)
    }

    /// Whether a sealed body of `length` bytes cuts into chunks that each hold at least one byte.
    package static func isValidSealedLength(_ length: Int) -> Bool {
        length > 0 && (length % sealedChunkLength == 0 || length % sealedChunkLength > tagLength)
    }

    package static func chunkCount(sealedLength: Int) -> Int { (sealedLength + sealedChunkLength - 1) / sealedChunkLength }
}

/// What a reader may open an encrypted bundle with: a replica's key, a passphrase, or both.
public struct BundleKeyring {
    public var replica: ReplicaID?
    public var exchange: ExchangeIdentity?
    public var passphrase: [UInt8]?

    public init(replica: ReplicaID, exchange: ExchangeIdentity, passphrase: [UInt8]? = nil) {
        self.replica = replica
        self.exchange = exchange
        self.passphrase = passphrase
    }

    public init(passphrase: [UInt8]) {
        self.passphrase = passphrase
    }

    /// The file key of a bundle with these recipients, or nil when none of them opens.
    package func fileKey(recipients: [BundleRecipient], passphrase stanza: PassphraseRecipient?) -> FileKey? {
        if let replica, let exchange, let mine = recipients.first(where: { $0.replica == replica }),
           let key = FileKey.unwrap(mine, with: exchange) {
            return key
        }
        if let passphrase, let stanza { return FileKey.unwrap(stanza, passphrase: passphrase) }
        return nil
    }
}
