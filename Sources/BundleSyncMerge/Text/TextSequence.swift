import BundleSyncCore

/// The merge state of one `--text` cell: a replicated growable array (RGA) of Unicode
/// scalars, stored as runs (`bundlesync-format(5)`, "Text state").
///
/// Every scalar ever inserted has an id: the HLC of the write that inserted it, the writing
/// replica, and its offset within that write. An insertion names the scalar it follows, its
/// *parent* (or the start of the text). Scalars that follow the same parent are ordered by
/// descending id, and each insertion is a chain of parent links, so concurrent insertions at
/// one place come out whole, one after the other (the later write first), never interleaved.
/// A deleted scalar stays as a tombstone (id and place, no text) so that later insertions
/// that name it still find their place.
///
/// The same structure serves as a whole state and as a delta: a state lists all runs in
/// document order; a delta lists the runs one write inserted and the ids it deleted. Merging
/// either into a state gives the same result whatever the order, provided each arrives after
/// the writes it refers to (batches are delivered in causal order; see `Importer`).
package struct TextSequence: Equatable {
    package static func == (a: TextSequence, b: TextSequence) -> Bool { a.runs == b.runs && a.deletions == b.deletions }

    /// The id of one scalar.
    package struct UnitID: Hashable, Comparable {
        package var hlc: UInt64
        package var replica: ReplicaID
        package var offset: UInt64

        package static func < (a: UnitID, b: UnitID) -> Bool {
            if a.hlc != b.hlc { return a.hlc < b.hlc }
            if a.replica != b.replica { return a.replica < b.replica }
            return a.offset < b.offset
        }

        package init(hlc: UInt64, replica: ReplicaID, offset: UInt64) {
            self.hlc = hlc
            self.replica = replica
            self.offset = offset
        }
    }

    /// Consecutive scalars of one write that sit together in the document.
    package struct Run: Equatable {
        package var hlc: UInt64
        package var replica: ReplicaID
        package var offset: UInt64
        package var length: Int
        /// The scalar the first one follows; nil for the start of the text.
        package var parent: UnitID?
        package var deleted: Bool
        /// UTF-8 of the run's scalars; empty for a tombstone.
        package var bytes: [UInt8]

        package var first: UnitID { UnitID(hlc: hlc, replica: replica, offset: offset) }
        package func id(at k: Int) -> UnitID { UnitID(hlc: hlc, replica: replica, offset: offset + UInt64(k)) }

        package func contains(_ u: UnitID) -> Bool {
            u.hlc == hlc && u.replica == replica && u.offset >= offset && u.offset - offset < UInt64(length)
        }

        /// Whether `next` continues this run exactly (same write, next offset, chained).
        package func isContinued(by next: Run) -> Bool {
            next.hlc == hlc && next.replica == replica && next.offset == offset + UInt64(length)
                && next.parent == id(at: length - 1) && next.deleted == deleted
        }

        package init(hlc: UInt64, replica: ReplicaID, offset: UInt64, length: Int, parent: UnitID? = nil, deleted: Bool, bytes: [UInt8]) {
            self.hlc = hlc
            self.replica = replica
            self.offset = offset
            self.length = length
            self.parent = parent
            self.deleted = deleted
            self.bytes = bytes
        }
    }

    /// A delete of `length` consecutive scalars of one write, starting at `first`.
    package struct Deletion: Equatable {
        package var first: UnitID
        package var length: Int

        package init(first: UnitID, length: Int) {
            self.first = first
            self.length = length
        }
    }

    /// In a state: every run, in document order. In a delta: the runs a write inserted.
    package var runs: [Run] = []
    /// Only in a delta: the scalars a write deleted.
    package var deletions: [Deletion] = []

    /// Where the last run was found or placed: merges mostly proceed in document order, so
    /// the next search starts there.
    private var hint = 0
    /// Runs a merge may visit while searching before it gives up on the delta: an honest edit
    /// stays far below, a crafted one cannot make a merge run for minutes.
    package static let searchBudget = 200_000_000
    private var searched = 0

    package static let empty = TextSequence()

    /// The visible text, as UTF-8.
    package var text: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(runs.reduce(0) { $0 + $1.bytes.count })
        for r in runs where !r.deleted { out += r.bytes }
        return out
    }

    package var isEmpty: Bool { runs.isEmpty && deletions.isEmpty }

    // MARK: - Merging

    /// Merges a delta (or a whole state from another replica) into this state.
    ///
    /// - Throws: `.badData` when the delta refers to a scalar this state does not hold, which
    ///   causal delivery rules out for honest history.
    package mutating func merge(_ delta: TextSequence) throws {
        searched = 0
        var known = Set<WriteKey>()
        for r in runs { known.insert(WriteKey(hlc: r.hlc, replica: r.replica)) }
        for r in delta.runs {
            if known.contains(WriteKey(hlc: r.hlc, replica: r.replica)) {
                if r.deleted { try delete(from: r.first, length: r.length) }
                continue
            }
            try insert(r)
        }
        for d in delta.deletions { try delete(from: d.first, length: d.length) }
        coalesce()
    }

    private struct WriteKey: Hashable {
        package var hlc: UInt64
        package var replica: ReplicaID
    }

    private mutating func insert(_ run: Run) throws {
        var i = 0
        if let p = run.parent {
            guard let (ri, k) = try locate(p) else { throw missing(p) }
            if k < runs[ri].length - 1 { split(ri, at: k + 1) }
            i = ri + 1
        }
        // RGA: skip the subtrees of siblings that sort first (greater ids, newer writes).
        let id = run.first
        let from = i
        while i < runs.count && runs[i].first > id { i += 1 }
        try spend(i - from)
        var r = run
        if r.deleted { r.bytes = [] }
        runs.insert(r, at: i)
        hint = i
    }

    private mutating func delete(from first: UnitID, length: Int) throws {
        var next = first
        var left = length
        while left > 0 {
            guard let (ri, k) = try locate(next) else { throw missing(next) }
            if k > 0 { split(ri, at: k) }
            let at = k > 0 ? ri + 1 : ri
            if runs[at].length > left { split(at, at: left) }
            let n = runs[at].length
            runs[at].deleted = true
            runs[at].bytes = []
            left -= n
            next.offset += UInt64(n)
        }
    }

    private func missing(_ u: UnitID) -> BundleSyncError {
        BundleSyncError.badData("a text edit refers to text written by \(u.replica.short) that this replica does not hold")
    }

    /// The run holding `u` and the position of `u` in it, searching on from the hint.
    private mutating func locate(_ u: UnitID) throws -> (Int, Int)? {
        let n = runs.count
        guard n > 0 else { return nil }
        let start = min(hint, n - 1)
        for step in 0..<n {
            let i = (start + step) % n
            if runs[i].contains(u) {
                try spend(step + 1)
                hint = i
                return (i, Int(u.offset - runs[i].offset))
            }
        }
        try spend(n)
        return nil
    }

    private mutating func spend(_ visits: Int) throws {
        searched += visits
        if searched > Self.searchBudget {
            throw BundleSyncError.badData("a text edit is too fragmented to merge")
        }
    }

    /// Splits run `i` before its `k`-th scalar (0 < k < length).
    private mutating func split(_ i: Int, at k: Int) {
        let r = runs[i]
        var head = r
        var tail = r
        head.length = k
        tail.length = r.length - k
        tail.offset = r.offset + UInt64(k)
        tail.parent = r.id(at: k - 1)
        if !r.deleted {
            let cut = UTF8Scalars.byteOffset(ofScalar: k, in: r.bytes)
            head.bytes = Array(r.bytes[..<cut])
            tail.bytes = Array(r.bytes[cut...])
        }
        runs[i] = head
        runs.insert(tail, at: i + 1)
    }

    /// Joins neighbouring runs that continue one another, keeping the state compact.
    private mutating func coalesce() {
        guard runs.count > 1 else { return }
        var out: [Run] = []
        out.reserveCapacity(runs.count)
        for r in runs {
            if let last = out.last, last.isContinued(by: r) {
                out[out.count - 1].length += r.length
                out[out.count - 1].bytes += r.bytes
            } else {
                out.append(r)
            }
        }
        runs = out
    }

    // MARK: - Local edits

    /// Turns this state's text into `new` as one write, returning the delta that does it.
    ///
    /// - Parameters:
    ///   - new: Valid UTF-8.
    ///   - hlc, replica: The write's id.
    package mutating func edit(to new: [UInt8], hlc: UInt64, replica: ReplicaID) throws -> TextSequence {
        let old = text
        let hunks = TextDiff.hunks(old, new)
        var delta = TextSequence()
        guard !hunks.isEmpty else { return delta }

        // Visible runs with the scalar index each starts at.
        var visible: [(run: Int, start: Int)] = []
        var scalars = 0
        for (i, r) in runs.enumerated() where !r.deleted {
            visible.append((i, scalars))
            scalars += r.length
        }
        func slot(_ s: Int) -> Int {
            var lo = 0, hi = visible.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if visible[mid].start <= s { lo = mid } else { hi = mid - 1 }
            }
            return lo
        }
        func unit(at s: Int) -> UnitID {
            let v = visible[slot(s)]
            return runs[v.run].id(at: s - v.start)
        }

        let counter = UTF8Scalars.Counter(old)
        var written: UInt64 = 0
        for h in hunks {
            let a = counter.scalarIndex(ofByte: h.old.lowerBound)
            let b = counter.scalarIndex(ofByte: h.old.upperBound)
            var s = a
            while s < b {
                // The rest of the scalar's run, within the deleted range.
                let v = visible[slot(s)]
                let n = min(b - s, runs[v.run].length - (s - v.start))
                delta.deletions.append(Deletion(first: runs[v.run].id(at: s - v.start), length: n))
                s += n
            }
            if !h.new.isEmpty {
                let bytes = Array(new[h.new])
                let length = UTF8Scalars.count(bytes)
                delta.runs.append(Run(hlc: hlc, replica: replica, offset: written, length: length,
                                      parent: a > 0 ? unit(at: a - 1) : nil, deleted: false, bytes: bytes))
                written += UInt64(length)
            }
        }
        try merge(delta)
        guard text == new else {
            throw BundleSyncError.failure("internal error: a text edit did not reproduce the written text")
        }
        return delta
    }

}

/// Counting and cutting Unicode scalars in UTF-8.
package enum UTF8Scalars {
    @inline(__always) package static func isContinuation(_ b: UInt8) -> Bool { b & 0xC0 == 0x80 }

    /// Scalars in valid UTF-8.
    package static func count(_ bytes: [UInt8]) -> Int {
        var n = 0
        for b in bytes where !isContinuation(b) { n += 1 }
        return n
    }

    /// Scalars in `bytes` when they are valid UTF-8, else nil.
    package static func validCount(_ bytes: [UInt8]) -> Int? {
        var n = 0
        var valid = true
        _ = bytes.withUnsafeBufferPointer { buf in
            var it = buf.makeIterator()
            var decoder = UTF8()
            loop: while true {
                switch decoder.decode(&it) {
                case .scalarValue: n += 1
                case .emptyInput: break loop
                case .error: valid = false; break loop
                }
            }
        }
        return valid ? n : nil
    }

    package static func isValid(_ bytes: [UInt8]) -> Bool { validCount(bytes) != nil }

    /// The byte offset of the `k`-th scalar.
    package static func byteOffset(ofScalar k: Int, in bytes: [UInt8]) -> Int {
        var seen = 0
        for (i, b) in bytes.enumerated() where !isContinuation(b) {
            if seen == k { return i }
            seen += 1
        }
        return bytes.count
    }

    /// Maps byte offsets to scalar indices, for offsets visited in ascending order.
    package final class Counter {
        private let bytes: [UInt8]
        private var byte = 0
        private var scalar = 0

        package init(_ bytes: [UInt8]) { self.bytes = bytes }

        package func scalarIndex(ofByte offset: Int) -> Int {
            if offset < byte {
                byte = 0
                scalar = 0
            }
            while byte < offset {
                if !isContinuation(bytes[byte]) { scalar += 1 }
                byte += 1
            }
            return scalar
        }
    }
}
