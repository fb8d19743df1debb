import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Encrypted bundles (`bundlesync-format(5)`, ENCRYPTION): a lost stick gives away no
/// table, column or value, only the replicas a bundle is for can read it, and any damage
/// is refused.
@Suite struct EncryptionTests {
    static let schema = "CREATE TABLE patients(id TEXT PRIMARY KEY, name TEXT NOT NULL, ward TEXT, notes TEXT);"
    static let order = "SELECT * FROM patients ORDER BY id"
    /// Names and values that must never appear in the bytes of an encrypted bundle.
    static let secrets = ["patients", "name", "ward", "notes", "Amina Yusuf", "Tomas Berg", "fever", "Lena Ortiz",
                          "discharged", "p-7f3a", "p-19c2", "p-a041"]

    func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard haystack.count >= n.count else { return false }
        return (0...(haystack.count - n.count)).contains { haystack[$0] == n[0] && Array(haystack[$0..<$0 + n.count]) == n }
    }

    /// What `strings` finds in a file: runs of at least four printable ASCII bytes.
    func printableRuns(_ bytes: [UInt8]) -> [String] {
        var runs: [String] = [], current: [UInt8] = []
        for b in bytes + [0] {
            if (0x20...0x7e).contains(b) || b == 0x09 { current.append(b); continue }
            if current.count >= 4 { runs.append(String(decoding: current, as: UTF8.self)) }
            current = []
        }
        return runs
    }

    func expectNothingReadable(in path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let b = try bytes(path)
        let strings = printableRuns(b).joined(separator: "\n")
        for secret in Self.secrets {
            #expect(!contains(b, secret), "'\(secret)' is in \(path)", sourceLocation: sourceLocation)
            #expect(!strings.contains(secret), "strings shows '\(secret)' in \(path)", sourceLocation: sourceLocation)
        }
    }

    @Test func aClinicLaptopAndTabletExchangeOnlyEncryptedBundles() throws {
        let tmp = TempDir()
        let laptop = try TestReplica("laptop", in: tmp, schema: Self.schema, tables: ["patients"])
        let tablet = try TestReplica("tablet", in: tmp, schema: Self.schema, tables: ["patients"])
        for r in [laptop, tablet] { #expect(try CLI.ok(["config", r.db, "encrypt", "always"]) == "encrypt always") }
        var written: [String] = []

        // The tablet has never exported: with nothing to send, it writes a hello bundle.
        let hello = try CLI.run(["export", tablet.db, "-o", tmp.dir("stick1")])
        #expect(hello.status == 0, "\(hello.stderr)")
        #expect(hello.stderr.contains("hello bundle"))
        try laptop.importing([hello.trimmedOut])

        try laptop.sql("INSERT INTO patients VALUES ('p-7f3a', 'Amina Yusuf', 'B', 'fever'), ('p-19c2', 'Tomas Berg', 'A', NULL)")
        written.append(try laptop.export(to: tmp.dir("stick2")))
        try tablet.importing([written.last!])
        #expect(try tablet.rows(Self.order) == laptop.rows(Self.order))

        try tablet.sql("UPDATE patients SET notes = 'discharged' WHERE id = 'p-19c2'; INSERT INTO patients VALUES ('p-a041', 'Lena Ortiz', 'A', 'new')")
        written.append(try tablet.export(to: tmp.dir("stick3")))
        try laptop.importing([written.last!])
        written.append(try laptop.export(["--full"], to: tmp.dir("stick4")))
        try tablet.importing([written.last!])

        #expect(try laptop.digest() == tablet.digest())
        #expect(try laptop.rows("SELECT count(*) FROM patients") == [[.integer(3)]])
        for path in written {
            try expectNothingReadable(in: path)
            let v = try CLI.run(["verify", path])
            #expect(v.status == 0 && v.stdout.contains("encrypted to 2 replicas"), "\(v.stdout)\(v.stderr)")
            let shown = try CLI.ok(["inspect", path])
            #expect(shown.contains("content    encrypted") && !shown.contains("patients"))
            #expect(try CLI.ok(["inspect", path, "--db", tablet.db]).contains("patients"))
            #expect(try CLI.run(["verify", "--db", laptop.db, path]).status == 0)
        }
    }

    @Test func aReplicaThatIsNotARecipientGets77AndNothingIsApplied() throws {
        let tmp = TempDir()
        let laptop = try TestReplica("laptop", in: tmp, schema: Self.schema, tables: ["patients"])
        let tablet = try TestReplica("tablet", in: tmp, schema: Self.schema, tables: ["patients"])
        let stranger = try TestReplica("stranger", in: tmp, schema: Self.schema, tables: ["patients"])
        try laptop.importing([try tablet.export(to: tmp.dir("hello"))])
        let peers = try laptop.status()["peers"] as! [[String: Any]]
        #expect(peers.count == 1 && peers[0]["encryption_key_known"] as? Bool == true, "\(peers)")
        #expect(try laptop.status()["encrypt"] as? String == "never")
        try laptop.sql("INSERT INTO patients VALUES ('p-7f3a', 'Amina Yusuf', 'B', 'fever')")
        let bundle = try laptop.export(["--encrypt", "--to", "tablet"], to: tmp.dir("stick"))
        try expectNothingReadable(in: bundle)

        let before = try stranger.digest()
        let r = try CLI.run(["import", stranger.db, bundle])
        #expect(r.status == 77, "\(r.stderr)")
        let tabletID = String((try tablet.status()["id"] as! String).prefix(12))
        #expect(r.stderr.contains("is encrypted to") && r.stderr.contains(tabletID), "\(r.stderr)")
        #expect(try stranger.digest() == before)
        #expect(try stranger.rows("SELECT count(*) FROM patients") == [[.integer(0)]])
        #expect(try CLI.run(["verify", "--db", stranger.db, bundle]).status == 77)
        // Without a key, the bundle still proves itself whole and signed.
        #expect(try CLI.run(["verify", bundle]).status == 0)
        try tablet.importing([bundle])
        #expect(try tablet.rows(Self.order) == laptop.rows(Self.order))
    }

    @Test func encryptionRefusesAPeerWhoseKeyIsUnknownWithAHintAboutTheHelloBundle() throws {
        let tmp = TempDir()
        let laptop = try TestReplica("laptop", in: tmp, schema: Self.schema, tables: ["patients"])
        try laptop.sql("INSERT INTO patients VALUES ('p-7f3a', 'Amina Yusuf', 'B', 'fever')")
        let r = try CLI.run(["export", laptop.db, "-o", tmp.dir("stick"), "--encrypt"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("no peer to encrypt the bundle to") && r.stderr.contains("hello bundle"), "\(r.stderr)")
        try CLI.ok(["config", laptop.db, "encrypt", "always"])
        let again = try CLI.run(["export", laptop.db, "-o", tmp.dir("stick")])
        #expect(again.status == 64, "encrypt always never writes changes in the clear: \(again.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.dir("stick")).isEmpty)
        #expect(try CLI.ok(["config", laptop.db, "encrypt"]) == "encrypt always")
        #expect(try CLI.ok(["config", laptop.db, "encrypt", "never"]) == "encrypt never")
        #expect(try CLI.run(["export", laptop.db, "-o", tmp.dir("stick")]).status == 0)
    }

    /// A body of many 64 KiB chunks: every chunk must open, in order, and a cut at a chunk
    /// boundary, a swap of two chunks or a flipped bit is refused, by verify without a key
    /// and by import with it.
    @Test func aLargeEncryptedBundleStreamsInChunksAndDamageIsRefused() throws {
        let tmp = TempDir()
        let laptop = try TestReplica("laptop", in: tmp, schema: Self.schema, tables: ["patients"])
        let tablet = try TestReplica("tablet", in: tmp, schema: Self.schema, tables: ["patients"])
        try laptop.importing([try tablet.export(to: tmp.dir("hello"))])
        var rng = SplitMix64(seed: 7)
        var values: [String] = []
        for i in 0..<3000 {
            let noise = (0..<12).map { _ in String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 36) }.joined()
            values.append("('k\(i)', 'n\(i)', 'w', '\(noise)')")
        }
        try laptop.sql("INSERT INTO patients VALUES " + values.joined(separator: ", "))
        let bundle = try laptop.export(["--encrypt"], to: tmp.dir("stick"))
        let good = try bytes(bundle)
        let chunk = 65_552
        #expect(good.count > 3 * chunk, "\(good.count) bytes: the body spans several chunks")

        let headerEnd = 16 + (Int(good[12]) | Int(good[13]) << 8 | Int(good[14]) << 16)
        let bodyEnd = good.count - 152
        var mutants: [(String, [UInt8])] = []
        var flipped = good
        flipped[headerEnd + chunk + 100] ^= 0x04
        mutants.append(("a bit flipped in chunk 2", flipped))
        mutants.append(("cut after chunk 1", Array(good[..<(headerEnd + chunk)]) + Array(good[bodyEnd...])))
        var swapped = Array(good[..<headerEnd])
        swapped += good[(headerEnd + chunk)..<(headerEnd + 2 * chunk)]
        swapped += good[headerEnd..<(headerEnd + chunk)]
        swapped += good[(headerEnd + 2 * chunk)...]
        mutants.append(("chunks 1 and 2 swapped", swapped))
        mutants.append(("truncated", Array(good.dropLast(1))))
        for (what, m) in mutants {
            let path = tmp.file("mutant.bsync")
            try Data(m).write(to: URL(fileURLWithPath: path))
            #expect(try CLI.run(["verify", path]).status == 65, "verify accepted \(what)")
            let before = try tablet.digest()
            #expect(try CLI.run(["import", tablet.db, path]).status == 65, "import accepted \(what)")
            #expect(try tablet.digest() == before)
        }
        try tablet.importing([bundle])
        #expect(try tablet.digest() == laptop.digest())
    }

    /// The mailbox works with encryption on: replicas that know no key yet leave hello
    /// bundles, bundles for others are skipped, and everyone converges.
    @Test func theMailboxSyncsWithEncryptionOn() throws {
        let tmp = TempDir()
        let box = tmp.dir("box")
        let replicas = try ["site0", "site1", "site2"].map { try TestReplica($0, in: tmp, schema: Self.schema, tables: ["patients"]) }
        for (i, r) in replicas.enumerated() {
            try CLI.ok(["config", r.db, "encrypt", "always"])
            try r.sql("INSERT INTO patients VALUES ('p-\(i)', 'Amina Yusuf \(i)', 'B', 'fever')")
        }
        for _ in 0..<3 {
            for r in replicas {
                let s = try CLI.run(["sync", r.db, box])
                #expect(s.status == 0, "\(r.name): \(s.stderr)")
            }
        }
        let expected = try replicas[0].rows(Self.order)
        #expect(expected.count == 3)
        for r in replicas { #expect(try r.rows(Self.order) == expected, "\(r.name) differs") }
        for name in try FileManager.default.contentsOfDirectory(atPath: box) where name.hasSuffix(".bsync") {
            try expectNothingReadable(in: (box as NSString).appendingPathComponent(name))
        }
    }

    /// A copy of a replica's file that takes a new identity takes a new encryption key too.
    @Test func aReidentifiedCopyHasItsOwnEncryptionKey() throws {
        let tmp = TempDir()
        let laptop = try TestReplica("laptop", in: tmp, schema: Self.schema, tables: ["patients"])
        let copy = tmp.file("copy.db")
        try FileManager.default.copyItem(atPath: laptop.db, toPath: copy)
        let query = "SELECT value FROM _bundlesync_meta WHERE key = 'exchange_private_key'"
        #expect(try App.rows(copy, query) == App.rows(laptop.db, query))
        try CLI.ok(["reidentify", copy])
        #expect(try App.rows(copy, query) != App.rows(laptop.db, query))
        let hello = try CLI.ok(["export", copy, "-o", tmp.dir("stick")])
        let shown = try CLI.ok(["inspect", "--json", hello])
        let json = try JSONSerialization.jsonObject(with: Data(shown.utf8)) as! [String: Any]
        let laptopHello = try CLI.ok(["inspect", "--json", try laptop.export(to: tmp.dir("stick2"))])
        let laptopJSON = try JSONSerialization.jsonObject(with: Data(laptopHello.utf8)) as! [String: Any]
        #expect(json["exchange_key"] as? String != laptopJSON["exchange_key"] as? String)
    }

    /// Replicas made before encrypted bundles get their key pair when first opened, and
    /// version 1 bundles still import.
    @Test func theVersion1GoldenBundlesStillImport() throws {
        let tmp = TempDir()
        let r = try TestReplica("reader", in: tmp, schema: try String(contentsOfFile: Checkout.path("fixtures/schemas/golden.sql"), encoding: .utf8),
                                tables: ["notes", "readings"])
        try r.importing([Checkout.path("fixtures/bundles/v1-full.bsync"), Checkout.path("fixtures/bundles/v1-delta.bsync")])
        #expect(try r.rows("SELECT count(*) FROM notes") == [[.integer(2)]])
        try App.execute(r.db, "DELETE FROM _bundlesync_meta WHERE key = 'exchange_private_key'")
        try CLI.ok(["status", r.db])
        #expect(try App.rows(r.db, "SELECT count(*) FROM _bundlesync_meta WHERE key = 'exchange_private_key'") == [[.integer(1)]])
    }
}

/// The passphrase recipient: first contact between two devices that have never exchanged a
/// bundle.
@Suite struct PassphraseRecipientTests {
    @Test func aPassphraseBundleIntroducesTwoDevicesThatNeverMet() throws {
        let tmp = TempDir()
        let schema = EncryptionTests.schema
        let laptop = try TestReplica("laptop", in: tmp, schema: schema, tables: ["patients"])
        let tablet = try TestReplica("tablet", in: tmp, schema: schema, tables: ["patients"])
        let pass = tmp.file("pass"), wrong = tmp.file("wrong")
        try Data("correct horse battery staple\n".utf8).write(to: URL(fileURLWithPath: pass))
        try Data("correct horse battery stable\n".utf8).write(to: URL(fileURLWithPath: wrong))
        try CLI.ok(["config", laptop.db, "encrypt", "always"])
        try laptop.sql("INSERT INTO patients VALUES ('p-7f3a', 'Amina Yusuf', 'B', 'fever')")

        // Knowing no peer, the laptop still encrypts: to itself and the passphrase.
        let first = try CLI.ok(["export", laptop.db, "-o", tmp.dir("stick1"), "--passphrase-file", pass])
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: first)))
        #expect(!EncryptionTests().contains(bytes, "Amina Yusuf") && !EncryptionTests().contains(bytes, "patients"))
        #expect(try CLI.ok(["verify", first]).contains("and a passphrase"))
        #expect(try CLI.ok(["verify", first, "--passphrase-file", pass]).contains("1 row change"))

        let before = try tablet.digest()
        let refused = try CLI.run(["import", tablet.db, first, "--passphrase-file", wrong])
        #expect(refused.status == 77 && refused.stderr.contains("a passphrase"), "\(refused.stderr)")
        #expect(try tablet.digest() == before)
        #expect(try CLI.run(["import", tablet.db, first]).status == 77)

        try CLI.ok(["import", tablet.db, first, "--passphrase-file", pass])
        #expect(try tablet.rows(EncryptionTests.order) == laptop.rows(EncryptionTests.order))
        // The tablet learnt the laptop's key, and the laptop learns the tablet's from its
        // answer: from then on, no passphrase.
        try tablet.sql("UPDATE patients SET ward = 'C'")
        let answer = try tablet.export(["--encrypt"], to: tmp.dir("stick2"))
        try laptop.importing([answer])
        try laptop.sql("UPDATE patients SET notes = 'improving'")
        try tablet.importing([try laptop.export(to: tmp.dir("stick3"))])
        #expect(try tablet.digest() == laptop.digest())
        #expect(try laptop.rows("SELECT ward, notes FROM patients") == [[.text("C"), .text("improving")]])
    }

    @Test func anEmptyOrMissingPassphraseFileIsRefusedBeforeAnythingIsWritten() throws {
        let tmp = TempDir()
        let laptop = try TestReplica("laptop", in: tmp, schema: EncryptionTests.schema, tables: ["patients"])
        let empty = tmp.file("empty")
        try Data("\n".utf8).write(to: URL(fileURLWithPath: empty))
        #expect(try CLI.run(["export", laptop.db, "-o", tmp.dir("stick"), "--passphrase-file", empty]).status == 64)
        #expect(try CLI.run(["export", laptop.db, "-o", tmp.dir("stick"), "--passphrase-file", tmp.file("none")]).status == 66)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.dir("stick")).isEmpty)
    }
}
