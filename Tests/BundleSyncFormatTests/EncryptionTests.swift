import BundleSyncCore
@testable import BundleSyncFormat
import Crypto
import Testing

/// The pieces of `bundlesync-format(5)`, ENCRYPTION, on their own: the STREAM nonces, the
/// file key sealed to a replica and to a passphrase.
@Suite struct EncryptionPieceTests {
    @Test func theNonceIsAnElevenByteBigEndianCounterAndALastChunkFlag() throws {
        #expect(Array(try BodyCipher.nonce(0, final: false)) == [UInt8](repeating: 0, count: 12))
        #expect(Array(try BodyCipher.nonce(0x0102, final: true)) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1])
        #expect(Array(try BodyCipher.nonce(UInt64.max, final: false)) == [0, 0, 0] + [UInt8](repeating: 0xff, count: 8) + [0])
    }

    @Test func aChunkOpensOnlyAtItsPlaceAndWithItsFlag() throws {
        let key = SymmetricKey(size: .bits256)
        let chunk = Array("a chunk of a compressed body".utf8)
        let sealed = try BodyCipher.seal(chunk, key: key, counter: 3, final: false)
        #expect(sealed.count == chunk.count + BodyCipher.tagLength)
        try sealed.withUnsafeBytes { s in
            #expect(BodyCipher.open(s, key: key, counter: 3, final: false).map(Array.init) == chunk)
            #expect(BodyCipher.open(s, key: key, counter: 4, final: false) == nil, "moved")
            #expect(BodyCipher.open(s, key: key, counter: 3, final: true) == nil, "taken for the last chunk")
            #expect(BodyCipher.open(s, key: SymmetricKey(size: .bits256), counter: 3, final: false) == nil, "another key")
            #expect(BodyCipher.open(UnsafeRawBufferPointer(rebasing: s.dropLast()), key: key, counter: 3, final: false) == nil, "cut")
        }
    }

    @Test func aSealedBodyLengthMustLeaveEveryChunkAByte() {
        let full = BodyCipher.sealedChunkLength
        #expect(BodyCipher.isValidSealedLength(17))
        #expect(!BodyCipher.isValidSealedLength(16))
        #expect(!BodyCipher.isValidSealedLength(0))
        #expect(BodyCipher.isValidSealedLength(full))
        #expect(BodyCipher.isValidSealedLength(2 * full))
        #expect(!BodyCipher.isValidSealedLength(full + 16))
        #expect(BodyCipher.isValidSealedLength(full + 17))
        #expect(BodyCipher.chunkCount(sealedLength: full + 17) == 2)
    }

    @Test func theFileKeyOpensForItsRecipientOnly() throws {
        let fileKey = FileKey()
        let reader = ExchangeIdentity(), other = ExchangeIdentity()
        let id = Identity().id
        let stanza = try fileKey.wrap(for: id, exchangeKey: reader.publicKey)
        #expect(FileKey.unwrap(stanza, with: reader)?.bytes == fileKey.bytes)
        #expect(FileKey.unwrap(stanza, with: other) == nil)
        var renamed = stanza
        renamed.replica = Identity().id
        #expect(FileKey.unwrap(renamed, with: reader) == nil, "the recipient's id is bound to the sealed key")
        let keyring = BundleKeyring(replica: id, exchange: reader)
        #expect(keyring.fileKey(recipients: [stanza], passphrase: nil)?.bytes == fileKey.bytes)
    }

    @Test func theFileKeyOpensWithItsPassphraseOnly() throws {
        let fileKey = FileKey()
        let stanza = try fileKey.wrap(passphrase: Array("correct horse battery staple".utf8))
        #expect(stanza.logN == PassphraseRecipient.writtenLogN && stanza.salt.count == 16)
        #expect(FileKey.unwrap(stanza, passphrase: Array("correct horse battery staple".utf8))?.bytes == fileKey.bytes)
        #expect(FileKey.unwrap(stanza, passphrase: Array("correct horse battery stable".utf8)) == nil)
        let again = try fileKey.wrap(passphrase: Array("correct horse battery staple".utf8))
        #expect(again.salt != stanza.salt && again.wrapped != stanza.wrapped, "a fresh salt for every bundle")
    }

    @Test func theHeaderContentsOpenOnlyWithTheClearPartTheyWereSealedWith() throws {
        let fileKey = FileKey()
        let sealed = try fileKey.sealHeader([1, 2, 3], authenticating: [9, 9])
        #expect(try fileKey.openHeader(sealed, authenticating: [9, 9]) == [1, 2, 3])
        #expect(throws: BundleSyncError.self) { try fileKey.openHeader(sealed, authenticating: [9, 8]) }
        #expect(throws: BundleSyncError.self) { try FileKey().openHeader(sealed, authenticating: [9, 9]) }
    }
}
