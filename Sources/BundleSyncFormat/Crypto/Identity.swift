import BundleSyncCore
import BundleSyncMerge

import Crypto

/// A replica's signing key pair.
public struct Identity {
    package let privateKey: Curve25519.Signing.PrivateKey

    public init() { privateKey = Curve25519.Signing.PrivateKey() }

    public init(privateKeyBytes: [UInt8]) throws {
        do {
            privateKey = try Curve25519.Signing.PrivateKey(rawRepresentation: privateKeyBytes)
        } catch {
            throw BundleSyncError.failure("the replica's private key is damaged")
        }
    }

    public var privateKeyBytes: [UInt8] { Array(privateKey.rawRepresentation) }
    public var publicKey: [UInt8] { Array(privateKey.publicKey.rawRepresentation) }
    public var id: ReplicaID { ReplicaID(publicKey: publicKey) }

    /// Signs `message` after prefixing a domain tag, so a signature made for one purpose can
    /// never be replayed for another.
    public func sign(domain: Signature.Domain, _ message: [UInt8]) throws -> [UInt8] {
        Array(try privateKey.signature(for: domain.tag + message))
    }
}

/// Ed25519 signature checks.
public enum Signature {
    public static let byteCount = 64

    /// What a signature is for; the tag is signed along with the message.
    public enum Domain {
        case batch, bundle
        package var tag: [UInt8] {
            switch self {
            case .batch: Array("bundlesync batch v1\0".utf8)
            case .bundle: Array("bundlesync bundle v1\0".utf8)
            }
        }
    }

    public static func isValid(_ signature: [UInt8], domain: Domain, message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == byteCount,
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: domain.tag + message)
    }
}
