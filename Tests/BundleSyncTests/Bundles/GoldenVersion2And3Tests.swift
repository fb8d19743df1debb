@testable import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// The golden bundles of format versions 2 and 3 (`fixtures/make-golden-v2.sh`,
/// `fixtures/make-golden-v3.sh`): plain, hello and encrypted, with the keys of the replica
/// they are encrypted to in `v2-keys.json` and `v3-keys.json`; and in version 3 one whose
/// base vector has both kinds of entry.
///
/// Set `BUNDLESYNC_RECORD=1` to re-record the expected JSON (never the bundles).
@Suite struct GoldenVersion2And3Tests {
    static let versions = ["v2", "v3"]
    static let bundles = versions.flatMap { v in ["hello", "plain", "encrypted", "encrypted-snapshot"].map { "\(v)-\($0)" } } + ["v3-since"]

    /// The test keys of the replica 'reader' that the bundles `NAME` begins with are for.
    struct Keys: Decodable {
        var id: String
        var signing_private_key: String
        var exchange_private_key: String

        static func load(for name: String) throws -> Keys {
            let version = name.prefix(while: { $0 != "-" })
            return try JSONDecoder().decode(Keys.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("bundles/\(version)-keys.json"))))
        }

        var keyring: BundleKeyring {
            get throws {
                BundleKeyring(replica: ReplicaID(hex: id)!,
                              exchange: try ExchangeIdentity(privateKeyBytes: bytesFromHex(exchange_private_key)!))
            }
        }
    }

    @Test(arguments: bundles)
    func aGoldenBundleDecodesToItsExpectedJSON(_ name: String) throws {
        let summary = try expectGoldenDecoding(name, keyring: try Keys.load(for: name).keyring)
        #expect(summary.header.isOpened)
        #expect(summary.formatVersion == (name.hasPrefix("v3") ? 3 : 2))
    }

    /// The base vector of `v3-since.bsync` has an entry against the exporter's vector and
    /// one for a replica the exporter has never heard of.
    @Test func theVersion3GoldenBaseVectorHasBothKindsOfEntry() throws {
        let header = try BundleReader(path: fixture("bundles/v3-since.bsync")).header
        let exporterEntries = header.baseVector.entries.keys.filter { header.exporterVector[$0] > 0 }
        let others = header.baseVector.entries.keys.filter { header.exporterVector[$0] == 0 }
        #expect(exporterEntries == [header.exporter] && header.baseVector[header.exporter] == 1)
        #expect(others.map(\.hex) == ["00112233445566778899aabbccddeeff"])
    }

    /// Without a key, an encrypted bundle still proves itself whole and signed, and shows
    /// only its clear fields.
    @Test(arguments: versions)
    func anEncryptedGoldenBundleVerifiesWithoutAKeyAndShowsOnlyItsClearFields(_ version: String) throws {
        let name = "\(version)-encrypted"
        var summary = try BundleSummary.read(path: fixture("bundles/\(name).bsync"), includeRows: true)
        summary.path = "fixtures/bundles/\(name).bsync"
        #expect(!summary.header.isOpened)
        #expect(summary.header.recipients.map(\.replica.hex).contains(try Keys.load(for: name).id))
        #expect(summary.rows?.isEmpty == true)
        try assertSnapshot(jsonString(summary.json) + "\n", matches: "fixtures/bundles/\(name).sealed.json",
                           "the clear fields of \(name).bsync changed; if intended, re-record with BUNDLESYNC_RECORD=1")
    }

    @Test(arguments: versions)
    func theEncryptedGoldenBundleHoldsNoNameOrValueInTheClear(_ version: String) throws {
        for name in ["\(version)-encrypted", "\(version)-encrypted-snapshot"] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("bundles/\(name).bsync"))))
            for secret in ["notes", "readings", "title", "body", "score", "attachment", "station", "taken",
                           "plain", "hello", "unicode", "日本語", "blob", "north", "ship", "lww-v1"] {
                #expect(!contains(bytes, Array(secret.utf8)), "\(name).bsync shows '\(secret)'")
            }
            // The plain bundle with the same batch does show them.
            let plain = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("bundles/\(version)-plain.bsync"))))
            #expect(contains(plain, Array("notes".utf8)))
        }
    }

    /// A fresh replica with the golden schema that holds the keys of the 'reader' that the
    /// bundle `file` (named after it) is for.
    static func readerReplica(_ file: String) throws -> (Replica, app: Database) {
        let keys = try Keys.load(for: file)
        let (fresh, _) = try goldenSchemaReplica(file)
        try fresh.store.db.writeTransaction {
            try fresh.store.adopt(try Identity(privateKeyBytes: bytesFromHex(keys.signing_private_key)!), name: "reader")
            try fresh.store.db.run("UPDATE _bundlesync_meta SET value = ? WHERE key = 'exchange_private_key'",
                                   [.blob(bytesFromHex(keys.exchange_private_key)!)])
        }
        let replica = try Replica.open(path: fresh.store.db.path)
        #expect(replica.store.id.hex == keys.id)
        return (replica, try Database(path: fresh.store.db.path))
    }

    static let expectedNotes: [[SQLValue]] = [
        [.text("n-01"), .text("hello")], [.text("n-02"), .text("mixed 日本語 text")], [.text("n-03"), .null],
    ]

    @Test(arguments: versions.flatMap { v in ["plain", "encrypted", "encrypted-snapshot"].map { "\(v)-\($0)" } })
    func aGoldenBundleImportsIntoTheReplicaItIsFor(_ name: String) throws {
        let (replica, app) = try Self.readerReplica("\(name).db")
        let outcome = try replica.importBundle(fixture("bundles/\(name).bsync"))
        #expect(outcome.status == .applied, "\(outcome.error.map { "\($0)" } ?? "")")
        #expect(try app.rows("SELECT id, body FROM notes ORDER BY id") == Self.expectedNotes)
        #expect(try app.rows("SELECT count(*) FROM readings") == [[.integer(3)]])
    }

    @Test(arguments: versions)
    func anEncryptedGoldenBundleIsRefusedByAReplicaItIsNotFor(_ version: String) throws {
        let (replica, app) = try goldenSchemaReplica("stranger.db")
        let before = try replica.digest()
        let outcome = try #require(try replica.importBundles([fixture("bundles/\(version)-encrypted.bsync")]).first)
        #expect(outcome.status == .refused)
        #expect(outcome.error?.code == .notAddressed)
        #expect(outcome.error?.message.contains(try Keys.load(for: version).id.prefix(12)) == true, "\(outcome.error?.message ?? "")")
        #expect(try replica.digest() == before)
        #expect(try app.rows("SELECT count(*) FROM notes") == [[.integer(0)]])
    }

    /// Every bit flip, truncation and splice of the encrypted golden bundle is refused, both
    /// without a key (the signature covers every byte) and with it (before anything is
    /// applied).
    @Test(arguments: versions)
    func everyDamageToTheEncryptedGoldenBundleIsRefused(_ version: String) throws {
        let tmp = TempDir()
        let keyring = try Keys.load(for: version).keyring
        let golden = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("bundles/\(version)-encrypted.bsync"))))
        let other = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("bundles/\(version)-encrypted-snapshot.bsync"))))
        var mutants: [(String, [UInt8])] = []
        for i in golden.indices {
            var m = golden
            m[i] ^= UInt8(1 << (i % 8))
            mutants.append(("bit \(i % 8) of byte \(i) flipped", m))
        }
        for n in stride(from: 0, to: golden.count, by: 3) { mutants.append(("cut to \(n) bytes", Array(golden.prefix(n)))) }
        mutants.append(("a byte appended", golden + [0]))
        // Splices: the other bundle's header or body in place of this one's.
        let h1 = 16 + Int(golden[12]) | Int(golden[13]) << 8
        let h2 = 16 + Int(other[12]) | Int(other[13]) << 8
        mutants.append(("header of another bundle", Array(other[..<h2]) + Array(golden[h1...])))
        mutants.append(("body of another bundle", Array(golden[..<h1]) + Array(other[h2...])))
        let path = tmp.file("mutant.bsync")
        for (what, bytes) in mutants {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            for key in [nil, keyring] {
                do {
                    _ = try BundleSummary.read(path: path, keyring: key)
                    Issue.record("\(what) was accepted \(key == nil ? "without" : "with") the key")
                } catch let e as BundleSyncError {
                    #expect(e.code == .badData || e.code == .noInput, "\(what): \(e)")
                }
            }
        }
    }

    private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { Array(haystack[$0..<$0 + needle.count]) == needle }
    }
}
