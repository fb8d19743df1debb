import BundleSyncCore
import BundleSyncMerge

/// A text or JSON cell's merge state, or one write's delta of it, as carried in a bundle
/// (`bundlesync-format(5)`, "Merge payloads": value tag 5).
///
/// In a batch it is one write's edit (flags 0); a whole value written to such a column is
/// an ordinary value. In a snapshot it is the cell's whole state, and when the cell's latest
/// write was a whole value, that value too.
public struct MergePayload: Equatable, Sendable {
    package static let tag: UInt8 = 5

    public var rule: ColumnRule
    /// The rule's state encoding: `TextSequence` or `JSONDocument`.
    public var state: [UInt8]
    /// The cell's latest write, when it was a whole value rather than an edit.
    public var plain: SQLValue?

    package func encode(into w: inout ByteWriter) {
        w.u8(Self.tag)
        w.u8(rule.rawValue)
        w.lengthPrefixed(state)
        if let plain {
            w.u8(1)
            ValueCodec.encode(plain, into: &w)
        } else {
            w.u8(0)
        }
    }

    /// Reads the payload after its tag, validating the state, and hands it to `sink`: the one
    /// description of the grammar of merge payloads, for building them and for stepping over
    /// them alike.
    package static func read<Sink: ValueSink>(from r: inout ByteReader, _ sink: Sink.Type) throws -> Sink.Merge {
        let raw = try r.u8("merge rule")
        guard let rule = ColumnRule(rawValue: raw), rule != .lww else {
            throw BundleSyncError.badData("a merge payload has unknown rule \(raw)")
        }
        let state = try r.lengthPrefixed("merge state", limit: Limits.maxValueBytes)
        switch rule {
        case .text: _ = try TextSequence.decode(state)
        case .json: _ = try JSONDocument.decode(state)
        case .lww: break
        }
        let flags = try r.u8("merge payload flags")
        guard flags & ~1 == 0 else { throw BundleSyncError.badData("reserved merge payload flags are set") }
        let plain = flags & 1 == 1 ? try ValueCodec.read(from: &r, Sink.self) : nil
        return Sink.merge(rule: rule, state: state, plain: plain)
    }

    /// A short description for `inspect`.
    package var summary: String {
        switch rule {
        case .text:
            guard let s = try? TextSequence.decode(state) else { return "text edit" }
            let inserted = s.runs.filter { !$0.deleted }.reduce(0) { $0 + $1.length }
            let deleted = s.deletions.reduce(0) { $0 + $1.length }
            return "text: \(inserted) scalars inserted in \(s.runs.count) runs, \(deleted) deleted"
        case .json:
            guard let d = try? JSONDocument.decode(state) else { return "JSON edit" }
            return "json: \(d.nodes.count) paths written"
        case .lww:
            return "value"
        }
    }

    package init(rule: ColumnRule, state: [UInt8], plain: SQLValue? = nil) {
        self.rule = rule
        self.state = state
        self.plain = plain
    }
}

/// The value of a cell as carried in a bundle: a plain value, or a merge payload.
package enum CellCodec {
    package static func encode(_ value: SQLValue, _ merge: MergePayload?, into w: inout ByteWriter) {
        if let merge { merge.encode(into: &w) } else { ValueCodec.encode(value, into: &w) }
    }

    /// Reads one cell's value, checking it, and hands it to `sink`.
    ///
    /// - Returns: The cell's value, and its merge payload when it carries one.
    @inline(__always)
    package static func read<Sink: ValueSink>(from r: inout ByteReader, _ sink: Sink.Type) throws -> (Sink.Value, Sink.Merge?) {
        guard r.peek() == MergePayload.tag else { return (try ValueCodec.read(from: &r, Sink.self), nil) }
        _ = try r.u8("value tag")
        let merge = try MergePayload.read(from: &r, Sink.self)
        return (Sink.value(of: merge), merge)
    }
}
