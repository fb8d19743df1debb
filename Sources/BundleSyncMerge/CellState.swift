import BundleSyncCore

/// The merge state of one text or JSON cell.
package enum CellState {
    case text(TextSequence)
    case json(JSONDocument)

    package static func empty(_ rule: ColumnRule) -> CellState {
        rule == .json ? .json(JSONDocument()) : .text(.empty)
    }

    package static func decode(_ rule: ColumnRule, _ bytes: [UInt8]) throws -> CellState {
        rule == .json ? .json(try JSONDocument.decode(bytes)) : .text(try TextSequence.decode(bytes))
    }

    package var rule: ColumnRule {
        if case .json = self { return .json }
        return .text
    }

    package func encoded() -> [UInt8] {
        switch self {
        case .text(let s): s.encoded()
        case .json(let d): d.encoded()
        }
    }

    /// Merges a delta or another replica's state, encoded.
    package mutating func merge(_ bytes: [UInt8]) throws {
        switch self {
        case .text(var s):
            try s.merge(TextSequence.decode(bytes))
            self = .text(s)
        case .json(var d):
            d.merge(try JSONDocument.decode(bytes))
            self = .json(d)
        }
    }

    /// The value the state shows.
    package var value: SQLValue {
        switch self {
        case .text(let s): .text(s.text)
        case .json(let d): .text(d.document?.canonical ?? Array("{}".utf8))
        }
    }
}

/// Flags stored with a cell's merge state.
package struct CellStateFlags: OptionSet {
    package let rawValue: Int64
    package init(rawValue: Int64) { self.rawValue = rawValue }
    /// The cell's latest write was a whole value, which the user table holds.
    package static let plainLatest = CellStateFlags(rawValue: 1)
    /// The state was seeded when the column's rule changed and has not been sent yet; the
    /// next edit sends the whole state, so peers that never saw the seed can place it.
    package static let unsentSeed = CellStateFlags(rawValue: 2)
}
