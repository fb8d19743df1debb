import BundleSyncCore
import BundleSyncFormat
import Testing

@Suite struct BatchTests {
    static func sample(seq: UInt64 = 1, previous: Digest32 = .zero) -> Batch {
        let origin = Identity().id
        return Batch(origin: origin, seq: seq, previous: previous, dependencies: VersionVector(),
                     tables: [TableChanges(table: "notes", keyColumns: ["id"], columns: ["title", "score"], rows: [
                         RowChange(key: [.text("a")], causalLength: 1, rowHLC: HLC(milliseconds: 1_700_000_000_000),
                                   cells: [CellChange(column: 0, hlc: HLC(milliseconds: 1_700_000_000_000), value: .text("x")),
                                           CellChange(column: 1, hlc: HLC(milliseconds: 1_700_000_000_500, counter: 3), value: .real(0.1))]),
                         RowChange(key: [.text("b")], causalLength: 2, rowHLC: HLC(milliseconds: 1_700_000_000_100), cells: []),
                     ])])
    }

    @Test func encodingRoundTrips() throws {
        let b = Self.sample()
        #expect(try Batch.decode(b.encoded()) == b)
    }

    @Test func encodingIsCanonical() {
        #expect(Self.sample().encoded() != [], "non-empty")
        let b = Self.sample()
        #expect(b.encoded() == b.encoded())
    }

    @Test func trailingBytesAreRefused() {
        #expect(throws: BundleSyncError.self) { try Batch.decode(Self.sample().encoded() + [0]) }
    }

    @Test func everyTruncationIsRefused() {
        let bytes = Self.sample().encoded()
        for n in 0..<bytes.count {
            #expect(throws: BundleSyncError.self, "prefix of \(n) bytes") { try Batch.decode(Array(bytes.prefix(n))) }
        }
    }

    @Test func signaturesBindTheOrigin() throws {
        let id = Identity()
        var b = Self.sample()
        b.origin = id.id
        let signed = try SignedBatch(batch: b, identity: id)
        #expect(signed.signatureIsValid(publicKey: id.publicKey))
        #expect(!signed.signatureIsValid(publicKey: Identity().publicKey))
        var tampered = signed.bytes
        tampered[tampered.count - 1] ^= 1
        #expect(!SignedBatch(bytes: tampered, signature: signed.signature).signatureIsValid(publicKey: id.publicKey))
    }

    @Test func replicaIDsDeriveFromKeys() {
        let id = Identity()
        #expect(ReplicaID(publicKey: id.publicKey) == id.id)
        #expect(id.id.bytes.count == 16)
    }
}
