import BundleSyncCore
import BundleSyncMerge

/// The tagged encoding of one SQLite value (`bundlesync-format(5)`, "Values").
///
/// | tag | type    | payload                                   |
/// |-----|---------|-------------------------------------------|
/// | 0   | NULL    | none                                      |
/// | 1   | INTEGER | zigzag varint                             |
/// | 2   | REAL    | 8 bytes, IEEE 754 bit pattern, little-endian |
/// | 3   | TEXT    | varint length, then the bytes             |
/// | 4   | BLOB    | varint length, then the bytes             |
///
/// Tag 5 starts a merge payload (``MergePayload``) where a cell's value may stand.
package enum ValueCodec {
    package static func encode(_ value: SQLValue, into w: inout ByteWriter) {
        switch value {
        case .null: w.u8(0)
        case .integer(let v): w.u8(1); w.zigzag(v)
        case .real(let v): w.u8(2); w.u64(v.bitPattern)
        case .text(let b): w.u8(3); w.lengthPrefixed(b)
        case .blob(let b): w.u8(4); w.lengthPrefixed(b)
        }
    }

    /// Reads one value, checking it, and hands it to `sink`: the one description of the
    /// grammar of values, for building them and for stepping over them alike. A new tag is
    /// added here.
    @inline(__always)
    package static func read<Sink: ValueSink>(from r: inout ByteReader, _ sink: Sink.Type) throws -> Sink.Value {
        switch try r.u8("value tag") {
        case 0: return Sink.null
        case 1: return Sink.integer(try r.zigzag("integer value"))
        case 2: return Sink.real(try r.u64("real value"))
        case 3: return Sink.text(try Sink.bytes(try r.count("length of text value", limit: Limits.maxValueBytes), from: &r, "text value"))
        case 4: return Sink.blob(try Sink.bytes(try r.count("length of blob value", limit: Limits.maxValueBytes), from: &r, "blob value"))
        case let t: throw unknownTag(t)
        }
    }

    @inline(never)
    private static func unknownTag(_ t: UInt8) -> BundleSyncError {
        BundleSyncError.badData("unknown value tag \(t)")
    }

    package static func decode(from r: inout ByteReader) throws -> SQLValue {
        try read(from: &r, Build.self)
    }

    /// Checks one encoded value and steps over it, accepting and refusing exactly what
    /// ``decode(from:)`` does.
    package static func skip(from r: inout ByteReader) throws {
        try read(from: &r, Check.self)
    }
}

/// What a read of values makes of them: the values themselves (``ValueCodec/Build``), or
/// nothing once they are checked (``ValueCodec/Check``), for the walks that only validate
/// and count.
package protocol ValueSink {
    /// A value as read.
    associatedtype Value
    /// The bytes of a text or blob value as read.
    associatedtype Bytes
    /// A merge payload as read.
    associatedtype Merge

    static var null: Value { get }
    static func integer(_ value: Int64) -> Value
    static func real(_ bitPattern: UInt64) -> Value
    /// Takes `n` bytes, named `what`.
    static func bytes(_ n: Int, from r: inout ByteReader, _ what: String) throws -> Bytes
    static func text(_ bytes: Bytes) -> Value
    static func blob(_ bytes: Bytes) -> Value
    /// A merge payload whose state has been validated.
    static func merge(rule: ColumnRule, state: [UInt8], plain: Value?) -> Merge
    /// The value a cell holds when it carries `merge`.
    static func value(of merge: Merge) -> Value
}

extension ValueCodec {
    /// Builds every value and merge payload.
    package enum Build: ValueSink {
        package static var null: SQLValue { .null }
        package static func integer(_ value: Int64) -> SQLValue { .integer(value) }
        package static func real(_ bitPattern: UInt64) -> SQLValue { .real(Double(bitPattern: bitPattern)) }
        package static func bytes(_ n: Int, from r: inout ByteReader, _ what: String) throws -> [UInt8] { try r.raw(n, what) }
        package static func text(_ bytes: [UInt8]) -> SQLValue { .text(bytes) }
        package static func blob(_ bytes: [UInt8]) -> SQLValue { .blob(bytes) }
        package static func merge(rule: ColumnRule, state: [UInt8], plain: SQLValue?) -> MergePayload {
            MergePayload(rule: rule, state: state, plain: plain)
        }
        package static func value(of merge: MergePayload) -> SQLValue { merge.plain ?? .null }
    }

    /// Checks every value and steps over it; keeps only the rule of a merge payload.
    package enum Check: ValueSink {
        package static var null: Void { () }
        package static func integer(_ value: Int64) {}
        package static func real(_ bitPattern: UInt64) {}
        @inline(__always)
        package static func bytes(_ n: Int, from r: inout ByteReader, _ what: String) throws { try r.skip(n, what) }
        package static func text(_ bytes: Void) {}
        package static func blob(_ bytes: Void) {}
        package static func merge(rule: ColumnRule, state: [UInt8], plain: Void?) -> ColumnRule { rule }
        package static func value(of merge: ColumnRule) {}
    }
}
