import BundleSyncCore
import BundleSyncFormat
import BundleSyncTestSupport
import Foundation
import Testing

/// Format version 3 (`bundlesync-format(5)`, "Version 3" and BODY): the base vector written
/// against the exporter's, and the body compressed against the header's contents.
@Suite struct FormatVersion3Tests {
    static let ids = (0..<160).map { _ in Identity().id }

    static func header(exporter: Identity, vector: VersionVector, base: VersionVector, batches: [BundleHeader.BatchEntry] = [],
                       keys: [Identity] = []) -> BundleHeader {
        var h = BundleHeader(exporter: exporter.id, exporterKey: exporter.publicKey, exporterName: "fixture",
                             createdMilliseconds: 1_700_000_000_000, exporterVector: vector, baseVector: base,
                             requiredCapabilities: ["lww-v1"], optionalCapabilities: [],
                             keys: Dictionary(uniqueKeysWithValues: ([exporter] + keys).map { ($0.id, $0.publicKey) }),
                             tables: [], batches: batches)
        h.exchangeKey = ExchangeIdentity().publicKey
        return h
    }

    /// Base vectors of every shape: empty, equal to the exporter's, behind it, ahead of it,
    /// and with replicas the exporter's vector does not list.
    @Test(arguments: 0..<64)
    func theContentsRoundTripInEveryVersion(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var vector = VersionVector(), base = VersionVector()
        for id in Self.ids.prefix(Int(rng.next() % 40)) {
            if rng.next() % 4 != 0 { vector[id] = 1 + rng.next() % 300 }
            switch rng.next() % 4 {
            case 0: break
            case 1: if vector[id] > 0 { base[id] = vector[id] }
            case 2: base[id] = 1 + rng.next() % 300
            default: if vector[id] > 1 { base[id] = vector[id] - 1 }
            }
        }
        let h = Self.header(exporter: Identity(), vector: vector, base: base)
        for version: UInt16 in [1, 2, 3] {
            var decoded = Self.header(exporter: Identity(), vector: VersionVector(), base: VersionVector())
            try decoded.decodeContents(h.encodedContents(version: version), version: version)
            #expect(decoded.exporterVector == vector, "version \(version)")
            #expect(decoded.baseVector == base, "version \(version)")
        }
        #expect(h.encodedContents(version: 1) == h.encodedContents(version: 2))
    }

    /// Every base vector has one encoding: `base_others` may not name a replica that
    /// `base_counts` already covers.
    @Test func aBaseEntryForAReplicaOfTheExportersVectorIsRefusedAmongTheOthers() throws {
        let a = Self.ids[0]
        func contents(others: VersionVector) -> [UInt8] {
            var w = ByteWriter()
            VersionVector([a: 3]).encode(into: &w) // exporter_vector
            w.varint(0)                             // base_counts: the base holds none of a
            others.encode(into: &w)                 // base_others
            // The rest of an empty header's contents, after its two empty vectors.
            let empty = Self.header(exporter: Identity(), vector: VersionVector(), base: VersionVector())
            return w.bytes + empty.encodedContents(version: 3).dropFirst(2)
        }
        var h = Self.header(exporter: Identity(), vector: VersionVector(), base: VersionVector())
        try h.decodeContents(contents(others: VersionVector()), version: 3)
        #expect(h.exporterVector == VersionVector([a: 3]) && h.baseVector == VersionVector())
        let e = #expect(throws: BundleSyncError.self) { try h.decodeContents(contents(others: VersionVector([a: 2])), version: 3) }
        #expect(e?.message.contains("lists replica \(a.short) twice") == true, "\(e?.message ?? "")")
    }

    /// In a mailbox of 128 replicas, the base vector costs about a byte per replica instead
    /// of its id and count.
    @Test func aBaseOfTheExportersReplicasCostsAByteEach() {
        let ids = Array(Self.ids.prefix(128))
        let vector = VersionVector(Dictionary(uniqueKeysWithValues: ids.map { ($0, 5) }))
        let base = VersionVector(Dictionary(uniqueKeysWithValues: ids.map { ($0, 4) }))
        let h = Self.header(exporter: Identity(), vector: vector, base: base)
        let v2 = h.encodedContents(version: 2).count, v3 = h.encodedContents(version: 3).count
        // Version 2: a two-byte entry count, then 128 ids and counts. Version 3: 128 counts,
        // then an empty vector of others (one byte).
        #expect(v2 - v3 == 128 * 16 + 1, "v2 \(v2) bytes, v3 \(v3) bytes")
    }

    /// The same bundle written in each version reads back the same; in version 3 a batch's
    /// dependencies, compressed against the header's vector, all but vanish.
    @Test(arguments: [false, true])
    func aBundleReadsBackTheSameInEveryVersionAndVersion3IsSmaller(encrypted: Bool) throws {
        let tmp = TempDir()
        let origin = Identity(), exporter = Identity(), reader = ExchangeIdentity(), readerID = Identity().id
        let peers = Array(Self.ids.prefix(128))
        let dependencies = VersionVector(Dictionary(uniqueKeysWithValues: peers.map { ($0, UInt64(7)) }))
        let batch = Batch(origin: origin.id, seq: 1, previous: .zero, dependencies: dependencies, tables: [])
        let signed = try SignedBatch(batch: batch, identity: origin)
        var vector = dependencies
        vector[origin.id] = 1
        let entry = BundleHeader.BatchEntry(origin: origin.id, seq: 1, hash: signed.hash, length: signed.bytes.count)
        let header = Self.header(exporter: exporter, vector: vector, base: dependencies, batches: [entry], keys: [origin])
        var sizes: [UInt16: Int] = [:]
        for version: UInt16 in encrypted ? [2, 3] : [1, 2, 3] {
            let path = tmp.file("v\(version).bsync")
            let w = try BundleWriter(path: path, header: header, version: version,
                                     recipients: encrypted ? [(readerID, reader.publicKey)] : [])
            try w.append(signed)
            try w.finish(identity: exporter)
            sizes[version] = w.bytesWritten
            let r = try BundleReader(path: path, keyring: encrypted ? BundleKeyring(replica: readerID, exchange: reader) : nil)
            #expect(r.version == version)
            #expect(r.header.exporterVector == vector && r.header.baseVector == dependencies)
            let read = try #require(try r.nextBatch())
            #expect(read.signed.bytes == signed.bytes && read.batch == batch)
            #expect(try r.nextBatch() == nil)
            try r.finish()
        }
        // Version 2 writes the dependencies' 128 ids in the header twice and in the body once
        // (random bytes, which zstd cannot shrink); version 3 writes them once.
        #expect(sizes[2]! - sizes[3]! > 2 * 128 * 16 - 200, "\(sizes)")
    }

    /// Compressing against the header must not cost a large body its ratio: zstd, told of a
    /// prefix and not of the body's size, would size its window for the prefix. Bodies on
    /// both sides of ``BundleWriter/prefixedBodyLimit`` come out no larger than in version 2.
    @Test(arguments: [6_000, 30_000])
    func aLargeBodyCompressesAsWellInVersion3(rows: Int) throws {
        let tmp = TempDir()
        let origin = Identity()
        var rng = SplitMix64(seed: UInt64(rows))
        let words = (0..<2_000).map { _ in String((0..<(3 + Int(rng.next() % 7))).map { _ in Character(UnicodeScalar(97 + UInt8(rng.next() % 16))) }) }
        let base = HLC(milliseconds: 1_700_000_000_000)
        let changes = (0..<rows).map { i in
            RowChange(key: [.text("note-\(i)")], causalLength: 1, rowHLC: base,
                      cells: [CellChange(column: 0, hlc: base, value: .text((0..<4).map { _ in words[Int(rng.next() % 2_000)] }.joined(separator: " "))),
                              CellChange(column: 1, hlc: base, value: .integer(Int64(rng.next() % 1_000_000)))])
        }
        let batch = Batch(origin: origin.id, seq: 1, previous: .zero, dependencies: VersionVector(),
                          tables: [TableChanges(table: "notes", keyColumns: ["id"], columns: ["title", "counter"], rows: changes)])
        let signed = try SignedBatch(batch: batch, identity: origin)
        let entry = BundleHeader.BatchEntry(origin: origin.id, seq: 1, hash: signed.hash, length: signed.bytes.count)
        var header = Self.header(exporter: origin, vector: VersionVector([origin.id: 1]), base: VersionVector(), batches: [entry])
        header.tables = [TableSchema(name: "notes", keyColumns: ["id"], columns: [.init(name: "title", rule: .lww), .init(name: "counter", rule: .lww)])]
        var sizes: [UInt16: Int] = [:]
        for version: UInt16 in [2, 3] {
            let path = tmp.file("v\(version).bsync")
            let w = try BundleWriter(path: path, header: header, version: version)
            try w.append(signed)
            try w.finish(identity: origin)
            sizes[version] = w.bytesWritten
            let r = try BundleReader(path: path)
            #expect(try r.nextBatch()?.signed.bytes == signed.bytes)
            try r.finish()
        }
        #expect((rows < 10_000) == (signed.bytes.count < BundleWriter.prefixedBodyLimit), "\(signed.bytes.count) bytes")
        #expect(Double(sizes[3]!) <= Double(sizes[2]!) * 1.01, "\(sizes) for a body of \(signed.bytes.count) bytes")
    }
}
