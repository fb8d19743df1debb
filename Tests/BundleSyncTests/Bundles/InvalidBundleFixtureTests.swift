@testable import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// One expected outcome in `fixtures/bundles/invalid/cases.json`.
///
/// `verify` and `import` are the exit statuses of `bundlesync verify FILE` and
/// `bundlesync import DB FILE` (into a replica that tracks `fixtures/schemas/golden.sql` and
/// holds `v1-full.bsync`); `message` is a fragment of the error message of whichever command
/// fails; `hint`, when present, a fragment of the `hint:` line.
struct InvalidBundleCase: Codable, Sendable {
    var verify: Int32
    var `import`: Int32
    var message: String?
    var hint: String?
    var what: String
}

/// The hand-crafted invalid bundles of `fixtures/bundles/invalid/`, one per way a bundle can
/// be wrong, and the reader's verdict on each.
///
/// The bundles are written by the generator below, run only with
/// `BUNDLESYNC_RECORD=1 swift test --filter InvalidBundleFixtureTests`, which then fails
/// saying it re-recorded them. Without the variable the tests read every fixture listed in
/// `cases.json` with the library.
@Suite struct InvalidBundleFixtureTests {
    static let recording = Recording.isOn
    static let directory = fixture("bundles/invalid")
    static let casesPath = fixture("bundles/invalid/cases.json")

    static func loadCases() throws -> [(name: String, expected: InvalidBundleCase)] {
        let data = try Data(contentsOf: URL(fileURLWithPath: casesPath))
        return try JSONDecoder().decode([String: InvalidBundleCase].self, from: data)
            .sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    static var caseNames: [String] { ((try? loadCases()) ?? []).map(\.name) }

    // MARK: - Reading the fixtures

    @Test(.enabled(if: !recording)) func everyFixtureIsListedAndEveryListedFileExists() throws {
        let listed = Set(try Self.loadCases().map(\.name))
        #expect(listed.count >= 30)
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: Self.directory)).subtracting(["cases.json"])
        #expect(files == listed, "unlisted: \(files.subtracting(listed).sorted()), missing: \(listed.subtracting(files).sorted())")
        for name in listed {
            let size = (try FileManager.default.attributesOfItem(atPath: Self.directory + "/" + name)[.size] as? NSNumber)?.intValue ?? -1
            #expect(size >= 0 && size <= 4096, "\(name) is \(size) bytes; fixtures stay small")
        }
    }

    @Test(.enabled(if: !recording), arguments: caseNames)
    func theReaderGivesTheExpectedVerdict(_ name: String) throws {
        let expected = try #require(try Self.loadCases().first { $0.name == name }?.expected)
        Self.check(name, expected)
    }

    /// A valid bundle whose batch writes a table the replica does not track (as from a
    /// device whose application is newer) imports: the batch is held, and merged once the
    /// table is tracked (SPEC §3.7).
    @Test(.enabled(if: !recording)) func aBundleForAnUntrackedTableIsHeldUntilTheTableIsTracked() throws {
        let path = fixture("bundles/untracked-table.bsync")
        _ = try BundleSummary.read(path: path)
        let replica = try Self.goldenReplica()
        let before = try replica.digest()
        let outcome = try replica.importBundle(path)
        #expect(outcome.status == .applied)
        #expect(outcome.warnings.contains { $0.contains("table 'visits', not tracked here") }, "\(outcome.warnings)")
        #expect(try replica.digest() == before)
        #expect(try replica.status().held.map(\.what) == ["table 'visits'"])
        try replica.db.execute("CREATE TABLE visits(id INTEGER PRIMARY KEY, note TEXT)")
        _ = try replica.track(table: "visits")
        #expect(try replica.db.rows("SELECT id, note FROM visits") == [[.integer(1), .text("checked")]])
        #expect(try replica.status().held.isEmpty)
    }

    /// A replica with the golden schema that holds `v1-full.bsync`.
    static func goldenReplica() throws -> Replica {
        let (replica, _) = try goldenSchemaReplica()
        _ = try replica.importBundle(fixture("bundles/v1-full.bsync"))
        return replica
    }

    /// Reads one fixture with the library and checks the verdict `verify` would give.
    static func check(_ name: String, _ expected: InvalidBundleCase, sourceLocation: SourceLocation = #_sourceLocation) {
        let path = "\(directory)/\(name)"
        do {
            _ = try BundleSummary.read(path: path)
            #expect(expected.verify == 0, "\(name) should be refused: \(expected.what)", sourceLocation: sourceLocation)
        } catch let e as BundleSyncError {
            #expect(expected.verify == 65, "\(name) was refused, but it should read: \(e)", sourceLocation: sourceLocation)
            #expect(e.code == .badData, "\(name): code \(e.code): \(e)", sourceLocation: sourceLocation)
            #expect(e.message.contains(path), "\(name): the message does not name the file: \(e.message)", sourceLocation: sourceLocation)
            if expected.verify != 0, let fragment = expected.message {
                #expect(e.message.contains(fragment), "\(name): expected '\(fragment)' in: \(e.message)", sourceLocation: sourceLocation)
            }
            if expected.verify != 0, let fragment = expected.hint {
                #expect(e.hint?.contains(fragment) == true, "\(name): expected hint '\(fragment)', got \(e.hint ?? "none")", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("\(name): unexpected error type \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Recording

    @Test(.enabled(if: recording)) func recordInvalidBundles() throws {
        let factory = try InvalidBundleFactory()
        let made = try factory.makeAll()
        let fm = FileManager.default
        try? fm.removeItem(atPath: Self.directory)
        try fm.createDirectory(atPath: Self.directory, withIntermediateDirectories: true)
        var cases: [String: InvalidBundleCase] = [:]
        for m in made {
            #expect(cases[m.name] == nil, "duplicate fixture \(m.name)")
            #expect(m.bytes.count <= 4096, "\(m.name) is \(m.bytes.count) bytes")
            try Data(m.bytes).write(to: URL(fileURLWithPath: "\(Self.directory)/\(m.name)"))
            cases[m.name] = m.expected
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (encoder.encode(cases) + Data("\n".utf8)).write(to: URL(fileURLWithPath: Self.casesPath))
        // The recorded files must give the verdicts recorded for them.
        for (name, expected) in cases.sorted(by: { $0.key < $1.key }) { Self.check(name, expected) }
        Recording.recorded("fixtures/bundles/invalid: \(cases.count) bundles and cases.json")
    }
}

// MARK: - The generator

/// Crafts the invalid bundles of `fixtures/bundles/invalid/`.
///
/// Two kinds of damage:
/// - byte patches of the golden `v1-delta.bsync` (its exporter's key is not available, so
///   these are never re-signed; they model damage in transit);
/// - bundles built from crafted `Batch` and `BundleHeader` values and signed with a fixed
///   fixture key, so every signature a reader checks before the intended check is valid and
///   the intended check is the one that fires. These model a hostile or buggy writer.
///
/// Keys and clocks are fixed, so the output is deterministic for one zstd version.
struct InvalidBundleFactory {
    struct Made {
        var name: String
        var bytes: [UInt8]
        var expected: InvalidBundleCase
    }

    /// The exporter and origin of every crafted bundle.
    let a: Identity
    /// A key that belongs to another replica.
    let b: Identity
    let golden: [UInt8]
    let work: String

    static let created: Int64 = 1_795_562_100_000 // 2026-11-24T23:15:00Z
    static let notesColumns = ["title", "body", "score", "attachment", "counter"]
    static let notes = TableSchema(name: "notes", keyColumns: ["id"],
                                   columns: notesColumns.map { TableSchema.Column(name: $0, rule: .lww) })
    static let readings = TableSchema(name: "readings", keyColumns: ["station", "taken"],
                                      columns: [TableSchema.Column(name: "value", rule: .lww)])
    init() throws {
        func identity(_ label: String) throws -> Identity {
            try Identity(privateKeyBytes: Digest32.of(Array("bundlesync invalid-bundle fixture key \(label)".utf8)).bytes)
        }
        a = try identity("a")
        b = try identity("b")
        golden = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("bundles/v1-delta.bsync"))))
        work = (temporaryPath("x") as NSString).deletingLastPathComponent
        // The crafted schemas are the golden replica's: same fingerprints as in v1-delta.bsync.
        precondition(Self.notes.fingerprint.hex.hasPrefix("eecc9f49"), "notes schema differs from the golden one")
        precondition(Self.readings.fingerprint.hex.hasPrefix("08c8fafc"), "readings schema differs from the golden one")
    }

    // MARK: Building blocks

    func hlc(_ offsetMs: Int64) -> HLC { HLC(milliseconds: Self.created - 60_000 + offsetMs) }

    /// A batch of `a` that writes row `row` of notes.
    func notesBatch(seq: UInt64, previous: Digest32, row: String = "x-01", title: String, body: String,
                    insert: Bool, at ms: Int64, cellOrder: [Int] = [0, 1]) -> Batch {
        let h = hlc(ms)
        let values: [Int: SQLValue] = [0: .text(title), 1: .text(body)]
        let cells = cellOrder.map { CellChange(column: $0, hlc: h, value: values[$0]!) }
        let change = RowChange(key: [.text(row)], causalLength: 1, rowHLC: insert ? h : nil, cells: cells)
        return Batch(origin: a.id, seq: seq, previous: previous, dependencies: VersionVector(),
                     tables: [TableChanges(table: "notes", keyColumns: ["id"], columns: Self.notesColumns, rows: [change])])
    }

    func seal(_ batch: Batch, by signer: Identity? = nil) throws -> SignedBatch {
        let s = try SignedBatch(batch: batch, identity: a)
        guard let signer else { return s }
        return SignedBatch(bytes: s.bytes, signature: try signer.sign(domain: .batch, s.hash.bytes))
    }

    /// Signs raw batch bytes as `a`, for batches the encoder would never produce.
    func seal(bytes: [UInt8]) throws -> SignedBatch {
        SignedBatch(bytes: bytes, signature: try a.sign(domain: .batch, Digest32.of(bytes).bytes))
    }

    func entry(_ s: SignedBatch, seq: UInt64? = nil) throws -> BundleHeader.BatchEntry {
        let decoded = try? Batch.decode(s.bytes)
        return BundleHeader.BatchEntry(origin: decoded?.origin ?? a.id, seq: seq ?? decoded?.seq ?? 1, hash: s.hash, length: s.bytes.count)
    }

    func header(_ entries: [BundleHeader.BatchEntry], tables: [TableSchema] = [notes],
                required: [String] = ["lww-v1"], keys: [Identity]? = nil) -> BundleHeader {
        var vector = VersionVector()
        for e in entries { vector[e.origin] = max(vector[e.origin], e.seq) }
        let keyList = keys ?? [a]
        return BundleHeader(exporter: a.id, exporterKey: a.publicKey, exporterName: "fixture-a",
                            createdMilliseconds: Self.created, exporterVector: vector, baseVector: VersionVector(),
                            requiredCapabilities: required, optionalCapabilities: [],
                            keys: Dictionary(uniqueKeysWithValues: keyList.map { ($0.id, $0.publicKey) }),
                            tables: tables, batches: entries)
    }

    /// Writes a bundle with the real writer, in format version 1 like the golden bundles
    /// these cases are made from, and returns its bytes.
    func write(_ header: BundleHeader, _ batches: [SignedBatch]) throws -> [UInt8] {
        let path = "\(work)/\(UUID().uuidString).bsync"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let w = try BundleWriter(path: path, header: header, version: 1)
        for s in batches { try w.append(s) }
        try w.finish(identity: a)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// One batch frame of the uncompressed body.
    func frame(_ s: SignedBatch) -> [UInt8] {
        var w = ByteWriter()
        w.varint(s.bytes.count)
        w.raw(s.bytes)
        w.raw(s.signature)
        return w.bytes
    }

    /// Assembles a bundle by hand, for layouts the writer refuses to produce, and signs it as
    /// `a` so that the digests and the exporter's signature are valid for what is written.
    func assemble(header: [UInt8], body: [UInt8], compressed: [UInt8]? = nil,
                  uncompressedLength: UInt64? = nil, contentDigest: Digest32? = nil) throws -> [UInt8] {
        var w = ByteWriter()
        w.raw(BundleFile.magic)
        w.u16(1)
        w.u16(0)
        w.u32(UInt32(header.count))
        w.raw(header)
        let c = try compressed ?? ZstdCompressor.compress(body)
        w.raw(c)
        var t = BundleFile.Trailer(compressedLength: UInt64(c.count),
                                   uncompressedLength: uncompressedLength ?? UInt64(body.count),
                                   contentDigest: contentDigest ?? Digest32.of(body),
                                   fileDigest: Digest32.of(w.bytes), signature: [])
        t.signature = try a.sign(domain: .bundle, BundleFile.signedMessage(trailer: t))
        w.raw(t.encoded())
        return w.bytes
    }

    /// Compresses `head` followed by `zeros` zero bytes, streaming, at a high level.
    func compress(_ head: [UInt8], thenZeros zeros: Int) throws -> [UInt8] {
        let z = ZstdCompressor(level: 19)
        var out: [UInt8] = []
        try z.compress(head) { out += $0 }
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        var left = zeros
        while left > 0 {
            let n = min(left, chunk.count)
            try z.compress(Array(chunk.prefix(n))) { out += $0 }
            left -= n
        }
        try z.compress([], finish: true) { out += $0 }
        return out
    }

    /// The first offset of `needle` in `haystack`.
    func offset(of needle: [UInt8], in haystack: [UInt8]) -> Int {
        for i in 0...(haystack.count - needle.count) where Array(haystack[i..<i + needle.count]) == needle { return i }
        preconditionFailure("pattern not found")
    }

    func varintSize(_ n: Int) -> Int {
        var w = ByteWriter()
        w.varint(n)
        return w.count
    }

    func flip(_ bytes: [UInt8], at i: Int, bit: Int = 0) -> [UInt8] {
        var m = bytes
        m[i] ^= UInt8(1 << bit)
        return m
    }

    // MARK: The cases

    func makeAll() throws -> [Made] {
        var out: [Made] = []
        func add(_ name: String, _ bytes: [UInt8], verify: Int32 = 65, import imp: Int32 = 65,
                 _ message: String?, hint: String? = nil, _ what: String) {
            out.append(Made(name: name, bytes: bytes,
                            expected: InvalidBundleCase(verify: verify, import: imp, message: message, hint: hint, what: what)))
        }

        // Damage to the golden v1-delta.bsync: layout from bundlesync-format(5), EXAMPLE.
        let g = golden
        let headerLength = Int(g[12]) | Int(g[13]) << 8 | Int(g[14]) << 16 | Int(g[15]) << 24
        let bodyStart = 16 + headerLength
        let trailerStart = g.count - BundleFile.trailerLength
        precondition(g.count == 807 && headerLength == 340, "v1-delta.bsync is not the golden bundle")

        add("not-a-bundle.bsync", Array("This is a text file, not a bundle.\nbundlesync should say so.\n".utf8),
            "does not look like a bundlesync bundle", "a text file")
        add("empty.bsync", [], "is empty", "an empty file")
        add("bad-magic.bsync", flip(g, at: 0, bit: 7), "does not look like a bundlesync bundle",
            "v1-delta.bsync with the high bit of the first magic byte cleared (a 7-bit transfer)")
        add("bad-magic-crlf.bsync", Array(g[0..<6]) + Array(g[7...]), "does not look like a bundlesync bundle",
            "v1-delta.bsync with the magic's CR LF translated to LF (a text-mode transfer)")
        var v4 = g
        v4[8] = 4
        add("format-version-4.bsync", v4, "format version 4", hint: "upgrade",
            "v1-delta.bsync claiming format version 4")
        var flags = g
        flags[10] = 0x01
        add("reserved-prefix-flags.bsync", flags, "reserved flags", "v1-delta.bsync with reserved prefix flag bit 0 set")
        var hugeHeader = g
        hugeHeader.replaceSubrange(12..<16, with: [0xff, 0xff, 0xff, 0x7f])
        add("header-length-over-limit.bsync", hugeHeader, "over the limit",
            "v1-delta.bsync declaring a header of 2 GiB, over the 64 MiB limit")
        add("truncated-in-header.bsync", Array(g.prefix(200)), "truncated", "v1-delta.bsync cut inside its header (200 bytes)")
        add("truncated-in-body.bsync", Array(g.prefix(bodyStart + 250)), "truncated",
            "v1-delta.bsync cut inside its compressed body")
        add("truncated-in-trailer.bsync", Array(g.prefix(trailerStart + 100)), "truncated",
            "v1-delta.bsync cut inside its trailer, 52 bytes short")
        add("appended-garbage.bsync", g + Array("garbage appended after the trailer\n".utf8), "appended",
            "v1-delta.bsync with text appended")
        add("appended-trailer-copy.bsync", g + Array(g[trailerStart...]), "appended",
            "v1-delta.bsync with a second copy of its trailer appended, so it still ends in BSYNCEND")
        let nameOffset = offset(of: Array("\u{6}golden".utf8), in: g) + 1
        add("flipped-bit-header.bsync", flip(g, at: nameOffset), "file digest does not match",
            "v1-delta.bsync with one bit flipped in the exporter name in the header (golden -> folden)")
        add("flipped-bit-header-exporter-id.bsync", flip(g, at: 16 + 5, bit: 3), "exporter id does not match its public key",
            "v1-delta.bsync with one bit flipped in the exporter id")
        let textOffset = offset(of: Array("hello again".utf8), in: g) + 4
        precondition(textOffset > bodyStart && textOffset < trailerStart)
        add("flipped-bit-body.bsync", flip(g, at: textOffset, bit: 2), "corrupt",
            "v1-delta.bsync with one bit flipped in the compressed body (inside the text 'hello again')")
        add("flipped-bit-trailer-signature.bsync", flip(g, at: trailerStart + 80 + 17, bit: 6),
            "exporter's signature is not valid", "v1-delta.bsync with one bit flipped in the trailer's signature")
        add("flipped-bit-trailer-content-digest.bsync", flip(g, at: trailerStart + 16 + 3, bit: 1),
            "content digest does not match", "v1-delta.bsync with one bit flipped in the trailer's content digest")
        add("flipped-bit-trailer-length.bsync", flip(g, at: trailerStart, bit: 4), "appended",
            "v1-delta.bsync with one bit flipped in the trailer's compressed length")

        // Crafted bundles, validly signed by the fixture key.
        let b1 = notesBatch(seq: 1, previous: .zero, title: "crafted", body: "first", insert: true, at: 0)
        let s1 = try seal(b1)
        let b2 = notesBatch(seq: 2, previous: s1.hash, title: "updated", body: "second", insert: false, at: 1)
        let s2 = try seal(b2)
        precondition(s1.bytes.count == s2.bytes.count, "the two crafted batches must have one length")
        let e1 = try entry(s1), e2 = try entry(s2)

        add("control-valid.bsync", try write(header([e1, e2]), [s1, s2]), verify: 0, import: 0, nil,
            "control: the valid crafted bundle the other crafted cases are variants of (batches 1 and 2 of a new replica, writing notes row x-01); it verifies and imports")

        var wrongHash = e1
        wrongHash.hash = Digest32.of(Array("some other batch".utf8))
        add("batch-hash-mismatch.bsync", try assemble(header: header([wrongHash]).encoded(), body: frame(s1)),
            "does not match its hash in the header", "a batch whose hash differs from its header entry (outer signature valid)")

        let forged = try seal(b1, by: b)
        add("bad-batch-signature.bsync", try write(header([try entry(forged)]), [forged]),
            "bad signature from its origin", "a batch signed by a key that is not its origin's (outer signature valid)")

        let b2Broken = notesBatch(seq: 2, previous: Digest32.of(Array("not the predecessor".utf8)),
                                  title: "updated", body: "second", insert: false, at: 1)
        let s2Broken = try seal(b2Broken)
        add("broken-chain.bsync", try write(header([e1, try entry(s2Broken)]), [s1, s2Broken]),
            "breaks the hash chain", "batch 2 names a predecessor other than batch 1 of the same origin in the same bundle")

        let b1Orphan = notesBatch(seq: 1, previous: Digest32.of(Array("nothing".utf8)), title: "crafted", body: "first",
                                  insert: true, at: 0)
        let s1Orphan = try seal(b1Orphan)
        add("first-batch-names-predecessor.bsync", try write(header([try entry(s1Orphan)]), [s1Orphan]),
            "names a predecessor", "batch 1 of an origin names a non-zero previous hash")

        add("reordered-batches.bsync", try assemble(header: header([e1, e2]).encoded(), body: frame(s2) + frame(s1)),
            "reordered", "the header lists batches 1, 2 and the body holds 2, 1 (same lengths, so the hash check fires)")

        add("reordered-history.bsync", try write(header([e2, e1]), [s2, s1]),
            "repeats or reorders the history", "header and body both list batch 2 before batch 1 of the same origin")

        add("duplicated-batch.bsync", try write(header([e1, e1]), [s1, s1]),
            "repeats or reorders the history", "batch 1 listed and carried twice")

        add("unknown-required-capability.bsync", try write(header([e1], required: ["lww-v1", "zz-future-v9"]), [s1]),
            "requires capability 'zz-future-v9'", hint: "upgrade", "the header requires a capability this release does not know")

        var fpHeader = header([e1]).encoded()
        let fp = offset(of: Self.notes.fingerprint.bytes, in: fpHeader)
        fpHeader[fp + 7] ^= 0x20
        add("schema-fingerprint-mismatch.bsync", try assemble(header: fpHeader, body: frame(s1)),
            "schema fingerprint of table 'notes' does not match", "the notes schema in the header with a wrong fingerprint (outer signature valid)")

        // Row flags follow the key "x-01" (tag 3, length 4) and the causal length 1.
        var flagged = s1.bytes
        let flagsAt = offset(of: [3, 4] + Array("x-01".utf8) + [1], in: flagged) + 7
        precondition(flagged[flagsAt] == 1)
        flagged[flagsAt] = 0x03
        let sFlagged = try seal(bytes: flagged)
        add("reserved-row-flags.bsync", try write(header([try entry(sFlagged, seq: 1)]), [sFlagged]),
            "reserved row flags are set", "a validly signed batch whose row sets reserved flag bit 1")

        let unordered = try seal(notesBatch(seq: 1, previous: .zero, title: "crafted", body: "first", insert: true, at: 0,
                                            cellOrder: [1, 0]))
        add("cells-out-of-order.bsync", try write(header([try entry(unordered, seq: 1)]), [unordered]),
            "are out of order", "a validly signed batch whose row lists column 1 before column 0")

        var longEntry = e1
        longEntry.length = 1 << 30
        add("batch-length-over-limit.bsync", try assemble(header: header([longEntry]).encoded(), body: frame(s1),
                                                          uncompressedLength: UInt64(BundleFile.frameLength(batchLength: 1 << 30))),
            "has length 139, the header says 1073741824",
            "a header entry declaring a batch of 1 GiB whose frame holds 139 bytes: refused at the frame, before anything of that size is read")

        var longValue = s1.bytes
        let textAt = offset(of: [3, 5] + Array("first".utf8), in: longValue)
        longValue.replaceSubrange(textAt + 1..<textAt + 2, with: [0x80, 0x80, 0x80, 0x80, 0x08])
        let sLongValue = try seal(bytes: longValue)
        add("value-length-over-limit.bsync", try write(header([try entry(sLongValue, seq: 1)]), [sLongValue]),
            "exceeds the limit", "a validly signed batch with a TEXT value declaring 2 GiB, over the 1 GiB limit")

        var badTag = s1.bytes
        badTag[textAt] = 9
        let sBadTag = try seal(bytes: badTag)
        add("unknown-value-tag.bsync", try write(header([try entry(sBadTag, seq: 1)]), [sBadTag]),
            "unknown value tag 9", "a validly signed batch with a value of reserved tag 9")

        add("batch-number-mismatch.bsync", try write(header([try entry(s1, seq: 3)]), [s1]),
            "names a different origin or number inside", "the header entry says batch 3, the batch inside says 1")

        add("undeclared-table.bsync", try write(header([e1], tables: [Self.readings]), [s1]),
            "does not declare", "a batch touching notes while the header declares only readings")

        add("origin-key-missing.bsync", try write(header([e1], keys: [b]), [s1]),
            "has no public key in the header", "the header lists no key for the batch's origin")

        add("content-digest-mismatch.bsync",
            try assemble(header: header([e1]).encoded(), body: frame(s1), contentDigest: Digest32.of(Array("other".utf8))),
            "content digest does not match", "a trailer whose content digest is wrong although the exporter signed it")

        var longer = e1
        longer.length += 1
        add("frame-length-mismatch.bsync",
            try assemble(header: header([longer]).encoded(), body: frame(s1),
                         uncompressedLength: UInt64(BundleFile.frameLength(batchLength: longer.length))),
            "the header says", "a batch frame whose length differs from its header entry")

        add("empty-body.bsync", try assemble(header: header([]).encoded(), body: [], compressed: []),
            "truncated", "a header listing no batches and a body of zero bytes (not even an empty zstd frame)")

        let whole = try ZstdCompressor.compress(frame(s1))
        add("body-not-at-frame-end.bsync",
            try assemble(header: header([e1]).encoded(), body: frame(s1), compressed: Array(whole.dropLast(4))),
            "truncated", "a zstd body cut before its frame checksum, digests and signature made for the cut body")

        // Decompression bombs and absurd counts.
        let quarterGiB = 256 << 20
        let bombEntries = (1...16).map {
            BundleHeader.BatchEntry(origin: a.id, seq: UInt64($0), hash: Digest32.of(Array("bomb \($0)".utf8)), length: quarterGiB)
        }
        let bombClaim = bombEntries.reduce(0) { $0 + BundleFile.frameLength(batchLength: $1.length) }
        add("decompression-bomb-claims-4gib.bsync",
            try assemble(header: header(bombEntries).encoded(), body: [], compressed: compress([], thenZeros: 1 << 16),
                         uncompressedLength: UInt64(bombClaim)),
            "has length 0, the header says 268435456",
            "a tiny file whose header and trailer claim 4 GiB of batches: refused at the first frame, in bounded memory")

        add("body-expands-beyond-declared.bsync",
            try assemble(header: header([e1]).encoded(), body: frame(s1), compressed: compress(frame(s1), thenZeros: 64 << 20)),
            "after its last batch", "a valid batch frame followed by 64 MiB of zeros the trailer does not declare")

        let eight = 8 << 20
        let zeroBatch = [UInt8](repeating: 0, count: eight)
        let sZero = try seal(bytes: zeroBatch)
        add("bomb-8mib-batch.bsync",
            try assemble(header: header([BundleHeader.BatchEntry(origin: a.id, seq: 1, hash: sZero.hash, length: eight)]).encoded(),
                         body: [], compressed: compress(frame(sZero), thenZeros: 0),
                         uncompressedLength: UInt64(BundleFile.frameLength(batchLength: eight)),
                         contentDigest: .zero),
            "unsupported batch encoding version 0",
            "a tiny file whose one 8 MiB batch of zeros fits the expansion limit, is read and hashed, and is refused when decoded")

        // A batch of about 8 MiB that claims one row per byte of it.
        var lie = ByteWriter()
        lie.u8(1)
        lie.raw(a.id.bytes)
        lie.varint(1)
        lie.raw(Digest32.zero.bytes)
        lie.varint(0) // dependencies
        lie.varint(hlc(0).rawValue)
        lie.varint(1) // tables
        lie.string("notes")
        lie.varint(1)
        lie.string("id")
        lie.varint(Self.notesColumns.count)
        Self.notesColumns.forEach { lie.string($0) }
        let rowsClaimed = eight - lie.count - 8
        lie.varint(rowsClaimed)
        let lieBatch = lie.bytes + [UInt8](repeating: 0, count: eight - lie.count)
        precondition(lieBatch.count == eight)
        let sLie = try seal(bytes: lieBatch)
        add("row-count-lie.bsync",
            try assemble(header: header([BundleHeader.BatchEntry(origin: a.id, seq: 1, hash: sLie.hash, length: eight)]).encoded(),
                         body: [], compressed: compress(frame(sLie), thenZeros: 0),
                         uncompressedLength: UInt64(BundleFile.frameLength(batchLength: eight)), contentDigest: .zero),
            "exceeds the limit of 65536",
            "a validly signed 8 MiB batch (a tiny file) whose notes section claims \(rowsClaimed) rows, then holds zeros")

        // A validly signed 8 MiB batch of 2.8 million deleted rows, 3 bytes each (key NULL,
        // causal length 2, no flags): decoding it materialises every row. The exporter's
        // signature is damaged so that the bundle is refused, after the batch was decoded.
        var many = ByteWriter()
        many.raw(Array(lie.bytes.prefix(lie.count - varintSize(rowsClaimed))))
        let rowBytes: [UInt8] = [0x00, 0x02, 0x00]
        let manyRows = (eight - many.count - 4) / rowBytes.count
        many.varint(manyRows)
        for _ in 0..<manyRows { many.raw(rowBytes) }
        let sMany = try seal(bytes: many.bytes)
        var amplified = try assemble(header: header([try entry(sMany)]).encoded(), body: frame(sMany),
                                     compressed: compress(frame(sMany), thenZeros: 0))
        amplified[amplified.count - 8 - 64 + 9] ^= 0x01
        add("rows-amplification.bsync", amplified, "exceeds the limit of 65536",
            "a tiny file with a validly signed 8 MiB batch of \(manyRows) deleted rows (3 bytes each), refused only by its damaged exporter signature")

        // Merge payloads (value tag 5) of text and JSON columns, validly signed.
        func mergeBundle(_ payload: MergePayload) throws -> [UInt8] {
            var batch = notesBatch(seq: 1, previous: .zero, title: "t", body: "", insert: true, at: 0)
            batch.tables[0].rows[0].cells[1] = CellChange(column: 1, hlc: hlc(0), value: .null, merge: payload)
            let s = try seal(batch)
            return try write(header([try entry(s)], required: ["lww-v1", BundleHeader.textCapability]), [s])
        }
        func textState(replicas: Int = 1, run: (inout ByteWriter) -> Void) -> [UInt8] {
            var w = ByteWriter()
            w.varint(replicas)
            for i in 0..<replicas { w.raw(Array(repeating: UInt8(0xA0 + i), count: 16)) }
            w.varint(1)
            run(&w)
            w.varint(0)
            return w.bytes
        }
        let goodRun: (inout ByteWriter) -> Void = { w in
            w.varint(0); w.varint(self.hlc(0).rawValue); w.varint(0); w.varint(2); w.u8(0); w.u8(0); w.lengthPrefixed(Array("hé".utf8))
        }
        add("merge-payload-unknown-rule.bsync",
            try mergeBundle(MergePayload(rule: .lww, state: textState(run: goodRun), plain: nil)),
            "merge payload has unknown rule 0", "a text edit whose payload names rule 0 (last writer wins, which has no payload)")
        add("text-run-not-utf8.bsync",
            try mergeBundle(MergePayload(rule: .text, state: textState { w in
                w.varint(0); w.varint(self.hlc(0).rawValue); w.varint(0); w.varint(1); w.u8(0); w.u8(0); w.lengthPrefixed([0xC3])
            }, plain: nil)),
            "not 1 Unicode scalars of valid UTF-8", "a text edit inserting a run whose bytes are a cut UTF-8 sequence")
        add("text-run-unknown-replica.bsync",
            try mergeBundle(MergePayload(rule: .text, state: textState { w in
                w.varint(3); w.varint(self.hlc(0).rawValue); w.varint(0); w.varint(1); w.u8(0); w.u8(0); w.lengthPrefixed(Array("x".utf8))
            }, plain: nil)),
            "text replica index of 3 exceeds the limit of 0", "a text edit whose run names replica 3 of a list of 1")
        var jsonState = ByteWriter()
        jsonState.varint(1)
        jsonState.raw(Array(repeating: 0xA0, count: 16))
        jsonState.varint(1)
        jsonState.varint(1)
        jsonState.lengthPrefixed(Array("k".utf8))
        jsonState.u8(1)
        jsonState.lengthPrefixed(Array("[1, 2]".utf8))
        jsonState.varint(0)
        jsonState.varint(hlc(0).rawValue)
        add("json-value-not-canonical.bsync",
            try mergeBundle(MergePayload(rule: .json, state: jsonState.bytes, plain: nil)),
            "not canonical JSON", "a JSON edit setting a key to [1, 2] with a space, not the canonical [1,2]")
        add("text-edit-of-lww-column.bsync",
            try mergeBundle(MergePayload(rule: .text, state: textState(run: goodRun), plain: nil)),
            "which the header declares as 'lww'",
            "a well-formed text edit of notes.body, which the bundle's own header declares last-writer-wins")

        // Snapshot bundles (capability snapshot-v1): chunks carry no signature of their own
        // and are decoded as they are read, before the exporter's signature is checked.
        func snapshotChunk(rows: Int, rowBytes: [UInt8]) -> [UInt8] {
            var w = ByteWriter()
            w.u8(1)
            w.varint(1)
            w.raw(a.id.bytes)
            w.varint(1)
            w.string("notes")
            w.varint(1)
            w.string("id")
            w.varint(Self.notesColumns.count)
            Self.notesColumns.forEach { w.string($0) }
            w.varint(rows)
            for _ in 0..<(rowBytes.isEmpty ? 0 : rows) { w.raw(rowBytes) }
            return w.bytes
        }
        func snapshotBundle(_ chunk: [UInt8], padTo: Int? = nil) throws -> [UInt8] {
            var h = header([], required: ["lww-v1", BundleHeader.snapshotCapability])
            h.snapshotHeads = [SnapshotHead(origin: a.id, seq: 1, hash: s1.hash)]
            var body = ByteWriter()
            let length = padTo ?? chunk.count
            body.varint(length)
            body.raw(chunk)
            let zeros = length - chunk.count
            return try assemble(header: h.encoded(), body: body.bytes, compressed: compress(body.bytes, thenZeros: zeros),
                                uncompressedLength: UInt64(body.count + zeros), contentDigest: .zero)
        }
        let liePrefix = snapshotChunk(rows: 0, rowBytes: [])
        let snapshotRowsClaimed = eight - liePrefix.count - 8
        add("snapshot-row-count-lie.bsync", try snapshotBundle(snapshotChunk(rows: snapshotRowsClaimed, rowBytes: []), padTo: eight),
            "exceeds the limit of 65536",
            "a tiny snapshot bundle whose 8 MiB chunk claims \(snapshotRowsClaimed) rows of notes, then holds zeros")
        let snapshotRows = (eight - liePrefix.count - 4) / 4
        add("snapshot-rows-amplification.bsync", try snapshotBundle(snapshotChunk(rows: snapshotRows, rowBytes: [0x00, 0x02, 0x00, 0x00])),
            "exceeds the limit of 65536",
            "a tiny snapshot bundle whose 8 MiB chunk holds \(snapshotRows) deleted rows (4 bytes each), decoded before any signature is checked")

        return out
    }
}
