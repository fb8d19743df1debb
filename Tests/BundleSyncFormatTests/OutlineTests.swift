import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge
import BundleSyncTestSupport
import Testing

/// The validating walks (`Batch.outline(of:)`, `SnapshotChunk.outline(of:)`) accept exactly
/// what the decoders accept, refuse the rest with the same message, and count the same rows.
@Suite struct OutlineTests {
    static let t0 = HLC(milliseconds: 1_700_000_000_000)

    static func batch() -> Batch {
        Batch(origin: Identity().id, seq: 7, previous: Digest32(bytes: [UInt8](repeating: 9, count: 32))!,
              dependencies: VersionVector([Identity().id: 3]), tables: [
                  TableChanges(table: "notes", keyColumns: ["id"], columns: ["title", "score", "blob", "none"], rows: [
                      RowChange(key: [.text("a")], causalLength: 1, rowHLC: t0, cells: [
                          CellChange(column: 0, hlc: t0, value: .text("x")),
                          CellChange(column: 1, hlc: HLC(milliseconds: 1_700_000_000_500, counter: 3), value: .real(0.1)),
                          CellChange(column: 2, hlc: HLC(milliseconds: 1_700_000_000_501), value: .blob([1, 2, 3])),
                          CellChange(column: 3, hlc: HLC(milliseconds: 1_700_000_000_502), value: .null),
                      ]),
                      RowChange(key: [.text("b")], causalLength: 2, rowHLC: HLC(milliseconds: 1_700_000_000_100), cells: []),
                      RowChange(key: [.text("")], causalLength: 3, rowHLC: nil, cells: [
                          CellChange(column: 0, hlc: HLC(milliseconds: 1_700_000_900_000), value: .null, merge: textEdit()),
                          CellChange(column: 1, hlc: HLC(milliseconds: 1_700_000_900_000), value: .integer(-300)),
                          CellChange(column: 3, hlc: HLC(milliseconds: 1_700_000_900_000), value: .null, merge: jsonEdit()),
                      ]),
                  ]),
                  TableChanges(table: "readings", keyColumns: ["station", "seq"], columns: ["v"], rows: [
                      RowChange(key: [.text("ST-1"), .integer(1)], causalLength: 1, rowHLC: t0,
                                cells: [CellChange(column: 0, hlc: t0, value: .integer(Int64.min))]),
                  ]),
              ])
    }

    /// A text edit and a JSON edit, as merge payloads (value tag 5).
    static func textEdit() -> MergePayload {
        var s = TextSequence.empty
        _ = try? s.edit(to: Array("héllo".utf8), hlc: 1, replica: Identity().id)
        let delta = try? s.edit(to: Array("hé, llo 👍🏽".utf8), hlc: 2, replica: Identity().id)
        return MergePayload(rule: .text, state: delta!.encoded(), plain: nil)
    }

    static func jsonEdit() -> MergePayload {
        var d = JSONDocument()
        let delta = try? d.edit(to: JSONValue.parse(Array(#"{"a":{"b":[1]},"c":null}"#.utf8))!, stamp: .init(hlc: 3, replica: Identity().id))
        return MergePayload(rule: .json, state: delta!.encoded(), plain: .text(Array("not json".utf8)))
    }

    static func chunk() -> SnapshotChunk {
        SnapshotChunk(origins: [Identity().id, Identity().id], tables: [
            .init(table: "notes", keyColumns: ["id"], columns: ["title", "score"], rows: [
                .init(key: [.text("a")], causalLength: 1, rowHLC: t0, rowOrigin: 0, cells: [
                    .init(column: 0, hlc: t0, origin: 0, value: .text("x")),
                    .init(column: 1, hlc: HLC(milliseconds: 1_700_000_000_500), origin: 1, value: .real(-2.5)),
                ]),
                .init(key: [.blob([0xff])], causalLength: 4, rowHLC: HLC(milliseconds: 1_700_000_000_100), rowOrigin: 1, cells: []),
                .init(key: [.integer(5)], causalLength: 1, rowHLC: .zero, rowOrigin: 0, cells: [
                    .init(column: 0, hlc: .zero, origin: 0, value: .null),
                    .init(column: 1, hlc: t0, origin: 1, value: .blob([]), merge: textEdit()),
                ]),
            ]),
        ])
    }

    /// The verdict of a decoder or a walk: an outline, or the message it refused with.
    enum Verdict<T: Equatable>: Equatable {
        case read(T)
        case refused(String)
    }

    static func verdict<T: Equatable>(_ body: () throws -> T) -> Verdict<T> {
        do { return .read(try body()) } catch let e as BundleSyncError { return .refused(e.message) } catch { return .refused("\(error)") }
    }

    static func batchVerdicts(_ bytes: [UInt8]) -> (Verdict<Batch.Outline>, Verdict<Batch.Outline>) {
        (verdict { try Batch.decode(bytes).outline }, verdict { try bytes.withUnsafeBytes { try Batch.outline(of: $0) } })
    }

    static func chunkVerdicts(_ bytes: [UInt8]) -> (Verdict<SnapshotChunk.Outline>, Verdict<SnapshotChunk.Outline>) {
        (verdict { try SnapshotChunk.decode(bytes).outline }, verdict { try bytes.withUnsafeBytes { try SnapshotChunk.outline(of: $0) } })
    }

    /// The encoding with every single byte replaced by a few other values, every truncation,
    /// and a byte inserted at every position.
    static func mutants(of bytes: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = [bytes, bytes + [0]]
        for i in bytes.indices {
            for v: UInt8 in [bytes[i] ^ 1, bytes[i] ^ 0x80, 0, 0x7f, 0x80, 0xff, 5] where v != bytes[i] {
                var m = bytes
                m[i] = v
                out.append(m)
            }
            out.append(Array(bytes.prefix(i)))
            var inserted = bytes
            inserted.insert(0x81, at: i)
            out.append(inserted)
        }
        return out
    }

    @Test func theBatchWalkCountsWhatTheDecoderBuilds() throws {
        let b = Self.batch()
        let outline = try b.encoded().withUnsafeBytes { try Batch.outline(of: $0) }
        #expect(outline == b.outline)
        #expect(outline.sections.map(\.rows) == [3, 1])
        #expect(outline.sections.map(\.deletes) == [1, 0])
        #expect(outline.sections.map(\.cells) == [7, 1])
        #expect(outline.sections.map(\.mergeRules) == [[0: .text, 3: .json], [:]], "the walk notes the rule of every merge payload")
        #expect(outline.hlcRange == b.hlcRange)
    }

    @Test func theBatchWalkAgreesWithTheDecoderOnEveryMutant() {
        var refused = 0
        for m in Self.mutants(of: Self.batch().encoded()) {
            let (decoded, walked) = Self.batchVerdicts(m)
            #expect(decoded == walked, "mutant \(m)")
            if case .refused = walked { refused += 1 }
        }
        #expect(refused > 100)
    }

    @Test func theChunkWalkCountsWhatTheDecoderBuilds() throws {
        let c = Self.chunk()
        let outline = try c.encoded().withUnsafeBytes { try SnapshotChunk.outline(of: $0) }
        #expect(outline == c.outline)
        #expect(outline.rowCount == 3)
        #expect(outline.sections.map(\.deletes) == [1])
        #expect(outline.hlcRange == Self.t0...HLC(milliseconds: 1_700_000_000_500))
    }

    @Test func theChunkWalkAgreesWithTheDecoderOnEveryMutant() {
        var refused = 0
        for m in Self.mutants(of: Self.chunk().encoded()) {
            let (decoded, walked) = Self.chunkVerdicts(m)
            #expect(decoded == walked, "mutant \(m)")
            if case .refused = walked { refused += 1 }
        }
        #expect(refused > 100)
    }

    @Test func valuesAreSkippedAsTheyAreDecoded() {
        let values: [[UInt8]] = [[0], [1, 0x80], [1, 0x80, 0], [2, 1, 2, 3], [3, 2, 0x61], [3, 0x80, 0x80, 0x80, 0x80, 0x10], [4, 0], [9], []]
        for bytes in values {
            let decoded = Self.verdict { () -> Int in
                var r = ByteReader(bytes)
                _ = try ValueCodec.decode(from: &r)
                return r.offset
            }
            let skipped = Self.verdict { () -> Int in
                try bytes.withUnsafeBytes { buffer in
                    var r = ByteReader(buffer)
                    try ValueCodec.skip(from: &r)
                    return r.offset
                }
            }
            #expect(decoded == skipped, "\(bytes)")
        }
    }

    @Test func varintsAreReadAsTheReaderReadsThem() {
        var rng = SplitMix64(seed: 3)
        var cases: [[UInt8]] = []
        for length in 1...11 {
            for last: UInt8 in [0, 1, 2, 0x7f] {
                cases.append([UInt8](repeating: 0xff, count: length - 1) + [last])
                cases.append([UInt8](repeating: 0x80, count: length - 1) + [last])
            }
            cases.append([UInt8](repeating: 0x80, count: length))
        }
        for _ in 0..<4000 {
            let length = Int.random(in: 1...11, using: &rng)
            cases.append((0..<length).map { i in
                let b = UInt8.random(in: 0...255, using: &rng)
                return i < length - 1 && Bool.random(using: &rng) ? b | 0x80 : b
            })
        }
        for bytes in cases {
            for padding in [0, 12] {
                let padded = bytes + [UInt8](repeating: 0, count: padding)
                let read = Self.verdict { () -> [UInt64] in
                    var r = ByteReader(padded)
                    return [try r.varint("v"), UInt64(r.offset)]
                }
                let walked = Self.verdict { () -> [UInt64] in
                    try padded.withUnsafeBytes { buffer in
                        var r = ByteReader(buffer)
                        return [try r.varint("v"), UInt64(r.offset)]
                    }
                }
                #expect(read == walked, "\(padded)")
            }
        }
    }
}
