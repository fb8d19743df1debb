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

    /// The whole state as sent (in a snapshot, or as a seed) and as kept within the stored
    /// form. A text state carries the deletions of the runs dropped here as written too late
    /// (see `TextSequence.dropLate(_:)`): a replica that placed one deletes it, and one that
    /// never held one drops it should it arrive later, as here. Without dropped runs the
    /// encoding is the state's own.
    package func encoded() -> [UInt8] {
        switch self {
        case .text(let s):
            guard !s.dropped.isEmpty else { return s.encoded() }
            var sent = s
            sent.deletions = s.dropped
            return sent.encoded()
        case .json(let d): return d.encoded()
        }
    }

    /// What a merge could not take in: text written before its writer saw text collected
    /// here, or a JSON value set before a removal collected here hid it (see
    /// `TextSequence.dropLate(_:)`, `JSONDocument.mergeLate(_:)`).
    package struct Dropped: Equatable {
        /// The replica that wrote it.
        package var writer: ReplicaID
        /// The text dropped, or the JSON path and value ignored.
        package var text: String
        /// Whether it is not a late write but text or a value this replica still showed
        /// that another replica had deleted and collected (see
        /// `TextSequence.deletionsCollected(by:)`, `JSONDocument.dropCollected(by:)`).
        package var collectedElsewhere = false

        package init(writer: ReplicaID, text: String, collectedElsewhere: Bool = false) {
            self.writer = writer
            self.text = text
            self.collectedElsewhere = collectedElsewhere
        }
    }

    /// Merges a delta or another replica's state, encoded.
    ///
    /// - Parameter stamp: The HLC of the write that carried it.
    /// - Returns: What was dropped as written too late to be placed.
    @discardableResult
    package mutating func merge(_ bytes: [UInt8], stamp: UInt64 = 0) throws -> [Dropped] {
        switch self {
        case .text(var s):
            let (lost, removed) = try s.mergeReporting(TextSequence.decode(bytes), stamp: stamp)
            self = .text(s)
            return lost.map { Dropped(writer: $0.replica, text: String(decoding: $0.bytes, as: UTF8.self)) }
                + removed.map { Dropped(writer: $0.replica, text: String(decoding: $0.bytes, as: UTF8.self), collectedElsewhere: true) }
        case .json(var d):
            let lost = d.mergeLate(try JSONDocument.decode(bytes))
            self = .json(d)
            return lost
        }
    }

    /// Takes another replica's whole state, encoded, that reflects everything this replica
    /// holds, in place of this one (see `TextSequence.adopt(_:stamp:)`): what it lacks was
    /// collected or dropped there.
    package mutating func adopt(_ bytes: [UInt8], stamp: UInt64) throws {
        switch self {
        case .text(var s):
            try s.adopt(TextSequence.decode(bytes), stamp: stamp)
            self = .text(s)
        case .json(let d):
            var next = try JSONDocument.decode(bytes)
            next.collectedBelow = d.collectedBelow
            self = .json(next)
        }
    }

    /// Removes what every known peer is known to have seen deleted or replaced (see
    /// `TextSequence.collect(below:)`, `JSONDocument.collect(below:)`).
    @discardableResult
    package mutating func collect(below g: UInt64) -> Bool {
        switch self {
        case .text(var s):
            let changed = s.collect(below: g)
            self = .text(s)
            return changed
        case .json(var d):
            let changed = d.collect(below: g)
            self = .json(d)
            return changed
        }
    }

    /// Whether the state holds deletions that the cell's next write must send.
    package var hasUnsentDeletions: Bool {
        switch self {
        case .text(let s): !s.unsentDeletions.isEmpty
        case .json(let d): !d.unsentRemovals.isEmpty
        }
    }

    // MARK: - Stored form

    /// The bytes a stored state starts with when the state's local part follows its
    /// encoding. No encoding of a text or JSON state starts so: both begin with a replica
    /// table, and one of no replicas leaves nothing for entries to name.
    private static let storedMarker: [UInt8] = [0, 0xF0]

    /// The form kept in the merge table: the encoding, then what only this replica keeps
    /// (deletion stamps, what was collected and dropped). Never sent.
    package func storedEncoding() -> [UInt8] {
        var w = ByteWriter()
        w.raw(Self.storedMarker)
        w.lengthPrefixed(encoded())
        switch self {
        case .text(let s): w.raw(s.localAnnotations())
        case .json(let d): w.raw(d.localAnnotations())
        }
        return w.bytes
    }

    /// Decodes a stored state: the stored form, or a bare encoding, as earlier releases
    /// stored. A bare text state's tombstones get `stamp` as their deletion time.
    package static func decodeStored(_ rule: ColumnRule, _ bytes: [UInt8], unknownDeletionsAt stamp: @autoclosure () throws -> UInt64) throws -> CellState {
        guard bytes.starts(with: storedMarker) else {
            var state = try decode(rule, bytes)
            if case .text(var s) = state, s.runs.contains(where: \.deleted) {
                s.stampUnknownDeletions(try stamp())
                state = .text(s)
            }
            return state
        }
        var r = ByteReader(bytes)
        _ = try r.raw(storedMarker.count, "stored state marker")
        var state = try decode(rule, try r.lengthPrefixed("stored state", limit: r.remaining))
        switch state {
        case .text(var s):
            // The deletions within are the dropped runs, which the local part lists.
            s.deletions = []
            try s.readLocalAnnotations(&r)
            state = .text(s)
        case .json(var d):
            try d.readLocalAnnotations(&r)
            state = .json(d)
        }
        try r.expectEnd("the stored state")
        return state
    }

    /// The encoding within a stored state, as it is sent.
    package static func wireBytes(ofStored bytes: [UInt8]) throws -> [UInt8] {
        guard bytes.starts(with: storedMarker) else { return bytes }
        var r = ByteReader(bytes)
        _ = try r.raw(storedMarker.count, "stored state marker")
        return try r.lengthPrefixed("stored state", limit: r.remaining)
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
