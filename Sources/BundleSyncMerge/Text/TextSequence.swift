import BundleSyncCore

/// The merge state of one `--text` cell: a Fugue tree of Unicode scalars (Weidner and
/// Kleppmann, "The Art of the Fugue", 2023, in its FugueMax variant), stored as runs in
/// document order (`bundlesync-format(5)`, "Text state").
///
/// Every scalar ever inserted has an id: the HLC of the write that inserted it, the writing
/// replica, and its offset within that write. Each scalar hangs in a tree, on one side of a
/// *parent*: to the right of the scalar it was typed after, when that scalar had nothing on
/// its right yet, and otherwise to the left of the scalar that followed the insertion point.
/// A scalar on the right side also keeps that following scalar, its *right origin*. The text
/// is the tree read in order: a scalar's left children, the scalar, its right children.
/// Left siblings come in descending id order; right siblings in descending order of their
/// right origins (the end of the text last of all), then descending id. So text typed
/// concurrently at one place, forwards or backwards, comes out whole, one insertion after the
/// other, never interleaved.
///
/// A deleted scalar stays as a tombstone (id and place, no text) so that later insertions
/// that name it still find their place, until every known peer is known to have seen its
/// deletion: then ``collect(below:)`` removes it (see `TextSequence+Collection.swift`).
///
/// The same structure serves as a whole state and as a delta: a state lists all runs in
/// document order; a delta lists the runs one write inserted and the ids it deleted. Merging
/// either into a state gives the same result whatever the order, provided each arrives after
/// the writes it refers to (batches are delivered in causal order; see `Importer`).
package struct TextSequence: Equatable {
    package static func == (a: TextSequence, b: TextSequence) -> Bool { a.runs == b.runs && a.deletions == b.deletions }

    /// Kept in the stored state only, never sent: the latest id or deletion stamp of the
    /// scalars collected from this state (0: none). An incoming run stamped at or below it
    /// was written before its writer saw text collected here (see ``merge(_:stamp:)``).
    package var collectedBelow: UInt64 = 0
    /// Kept in the stored state only: runs that arrived too late to be placed and were
    /// dropped here, so that later writes naming them are recognised.
    package var dropped: [Deletion] = []
    /// Kept in the stored state only: deletions of dropped runs that the next write of the
    /// cell sends, so that replicas that placed them delete them too.
    package var unsentDeletions: [Deletion] = []

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

        var write: WriteKey { WriteKey(hlc: hlc, replica: replica) }
    }

    /// The write that inserted a scalar.
    package struct WriteKey: Hashable, Comparable {
        package var hlc: UInt64
        package var replica: ReplicaID

        package static func < (a: WriteKey, b: WriteKey) -> Bool {
            a.hlc != b.hlc ? a.hlc < b.hlc : a.replica < b.replica
        }

        package init(hlc: UInt64, replica: ReplicaID) {
            self.hlc = hlc
            self.replica = replica
        }
    }

    /// Which side of its parent a scalar hangs on.
    package enum Side: UInt8 {
        case left, right
    }

    /// Consecutive scalars of one write that sit together in the document. Every scalar after
    /// the first is the right child of the one before it, with the run's right origin.
    package struct Run: Equatable {
        package static func == (a: Run, b: Run) -> Bool {
            a.hlc == b.hlc && a.replica == b.replica && a.offset == b.offset && a.length == b.length && a.side == b.side
                && a.parent == b.parent && a.rightOrigin == b.rightOrigin && a.deleted == b.deleted && a.bytes == b.bytes
        }

        package var hlc: UInt64
        package var replica: ReplicaID
        package var offset: UInt64
        package var length: Int
        /// The side of its parent the first scalar hangs on.
        package var side: Side
        /// The first scalar's parent; nil (on the right side only) for the start of the text.
        package var parent: UnitID?
        /// The scalar that followed the place where the run's write inserted it; nil for the
        /// end of the text. For a run on the left side, its parent.
        package var rightOrigin: UnitID?
        package var deleted: Bool
        /// UTF-8 of the run's scalars; empty for a tombstone.
        package var bytes: [UInt8]
        /// For a tombstone, kept in the stored state only: the HLC of the write that deleted
        /// it (an upper bound when not known exactly); 0 when unknown.
        package var deletedAt: UInt64 = 0

        package var first: UnitID { UnitID(hlc: hlc, replica: replica, offset: offset) }
        package var last: UnitID { id(at: length - 1) }
        package var write: WriteKey { WriteKey(hlc: hlc, replica: replica) }
        package var end: UInt64 { offset + UInt64(length) }
        package func id(at k: Int) -> UnitID { UnitID(hlc: hlc, replica: replica, offset: offset + UInt64(k)) }

        package func contains(_ u: UnitID) -> Bool {
            u.hlc == hlc && u.replica == replica && u.offset >= offset && u.offset - offset < UInt64(length)
        }

        /// Whether `next` continues this run exactly (same write, next offset, chained).
        package func isContinued(by next: Run) -> Bool {
            next.hlc == hlc && next.replica == replica && next.offset == end && next.side == .right
                && next.parent == last && next.rightOrigin == rightOrigin && next.deleted == deleted
        }

        /// The run from its `k`-th scalar on (0 < k < length): the right child of scalar k-1.
        package func tail(from k: Int) -> Run {
            var t = self
            t.offset = offset + UInt64(k)
            t.length = length - k
            t.side = .right
            t.parent = id(at: k - 1)
            if !deleted { t.bytes = Array(bytes[UTF8Scalars.byteOffset(ofScalar: k, in: bytes)...]) }
            return t
        }

        /// The run's first `k` scalars (0 < k < length).
        package func head(_ k: Int) -> Run {
            var h = self
            h.length = k
            if !deleted { h.bytes = Array(bytes[..<UTF8Scalars.byteOffset(ofScalar: k, in: bytes)]) }
            return h
        }

        package init(hlc: UInt64, replica: ReplicaID, offset: UInt64, length: Int, side: Side = .right, parent: UnitID? = nil,
                     rightOrigin: UnitID? = nil, deleted: Bool, bytes: [UInt8]) {
            self.hlc = hlc
            self.replica = replica
            self.offset = offset
            self.length = length
            self.side = side
            self.parent = parent
            self.rightOrigin = side == .left ? parent : rightOrigin
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

    /// Tree steps a merge may take while comparing places before it gives up on the delta:
    /// an honest edit stays far below, a crafted one cannot make a merge run for minutes.
    package static let searchBudget = 200_000_000

    package static let empty = TextSequence()

    package init(runs: [Run] = [], deletions: [Deletion] = []) {
        self.runs = runs
        self.deletions = deletions
    }

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
    /// - Parameter stamp: The HLC of the write that carried the delta: what the scalars it
    ///   deletes, and the tombstones a whole state brings, count as deleted at.
    /// - Returns: The runs with text that could not be placed because they were written
    ///   before their writer saw text collected here (see ``dropLate(_:)``); they are dropped.
    /// - Throws: `.badData` when the delta refers to a scalar this state does not hold, which
    ///   causal delivery rules out for honest history.
    @discardableResult
    package mutating func merge(_ delta: TextSequence, stamp: UInt64 = 0) throws -> [Run] {
        try mergeReporting(delta, stamp: stamp).dropped
    }

    /// Merges a delta or another replica's whole state (see ``merge(_:stamp:)``).
    ///
    /// - Returns: The runs dropped as written too late (see ``dropLate(_:)``), and the text
    ///   this state still showed that `delta`, a whole state from a replica that collected,
    ///   shows was deleted there (see ``deletionsCollected(by:)``); it is deleted here too.
    package mutating func mergeReporting(_ delta: TextSequence, stamp: UInt64 = 0) throws -> (dropped: [Run], removed: [Run]) {
        // What the sender collected and this state still holds, before anything is added.
        let (collectedThere, shown) = deletionsCollected(by: delta)
        let known = Set(runs.map(\.write))
        var incoming: [Run] = []
        var deletions = delta.deletions
        for r in delta.runs {
            if known.contains(r.write) {
                if r.deleted { deletions.append(Deletion(first: r.first, length: r.length)) }
            } else {
                var r = r
                if r.deleted && r.deletedAt == 0 { r.deletedAt = stamp }
                incoming.append(r)
            }
        }
        var droppedRuns: [Run] = []
        if !incoming.isEmpty && (collectedBelow > 0 || !dropped.isEmpty) {
            (incoming, droppedRuns) = dropLate(incoming)
        }
        if runs.isEmpty && !incoming.isEmpty {
            // A whole state taken in by an empty one is that state, in its order: checked
            // as a state (every run after what it hangs on), not rebuilt in id order, which
            // a state whose tombstones were collected no longer follows (see
            // `collect(below:)`).
            let tree = try FugueTree(state: incoming, incoming: [])
            runs = try tree.ordered()
        } else if !incoming.isEmpty {
            let tree = try FugueTree(state: runs, incoming: incoming)
            runs = try tree.ordered()
        }
        deletions += collectedThere
        if !deletions.isEmpty { try delete(deletions, stamp: stamp) }
        // A scalar at or below the sender's collected-below time that is not held here now
        // was collected there: should it arrive later, from an older bundle, it stays out.
        collectedBelow = max(collectedBelow, delta.collectedBelow)
        coalesce()
        return (droppedRuns, shown)
    }

    /// Marks the scalars of `deletions` deleted, splitting runs where a delete starts or ends
    /// within one.
    private mutating func delete(_ deletions: [Deletion], stamp: UInt64) throws {
        var byWrite: [WriteKey: [Range<UInt64>]] = [:]
        for d in deletions {
            byWrite[d.first.write, default: []].append(d.first.offset..<(d.first.offset + UInt64(d.length)))
        }
        // Every deleted scalar must be held: count what the runs cover.
        var covered: [WriteKey: UInt64] = [:]
        var wanted: [WriteKey: UInt64] = [:]
        for (w, ranges) in byWrite {
            let merged = Self.union(ranges)
            byWrite[w] = merged
            wanted[w] = merged.reduce(0) { $0 + UInt64($1.count) }
        }
        var out: [Run] = []
        out.reserveCapacity(runs.count + deletions.count * 2)
        for r in runs {
            guard let ranges = byWrite[r.write] else { out.append(r); continue }
            // The parts of the run, cut where a deleted range starts or ends inside it.
            var cuts: [UInt64] = []
            var hits: [Range<UInt64>] = []
            var i = Self.firstRange(in: ranges, endingAfter: r.offset)
            while i < ranges.count && ranges[i].lowerBound < r.end {
                let lo = max(ranges[i].lowerBound, r.offset), hi = min(ranges[i].upperBound, r.end)
                hits.append(lo..<hi)
                if lo > r.offset { cuts.append(lo) }
                if hi < r.end { cuts.append(hi) }
                i += 1
            }
            guard !hits.isEmpty else { out.append(r); continue }
            covered[r.write, default: 0] += hits.reduce(0) { $0 + UInt64($1.count) }
            var rest = r
            for c in cuts where c > rest.offset && c < rest.end {
                let k = Int(c - rest.offset)
                out.append(rest.head(k))
                rest = rest.tail(from: k)
            }
            out.append(rest)
            for j in (out.count - cuts.count - 1)..<out.count {
                let piece = out[j]
                if !piece.deleted, hits.contains(where: { $0.lowerBound <= piece.offset && piece.offset < $0.upperBound }) {
                    out[j].deleted = true
                    out[j].bytes = []
                    out[j].deletedAt = stamp
                }
            }
        }
        // A delete naming a scalar collected or dropped here does nothing. One naming a
        // scalar never held comes with a whole state whose sender dropped that scalar (a
        // delta's deletes name only held scalars, as causal delivery ensures): it counts as
        // dropped here too, so that the scalar, should it arrive later in another replica's
        // state, is dropped as there.
        for (w, n) in wanted where covered[w, default: 0] != n && !(w.hlc <= collectedBelow || isDropped(w)) {
            for range in byWrite[w] ?? [] {
                dropped.append(Deletion(first: UnitID(hlc: w.hlc, replica: w.replica, offset: range.lowerBound), length: range.count))
            }
        }
        runs = out
    }

    /// Sorted, disjoint, non-adjacent ranges covering `ranges`.
    private static func union(_ ranges: [Range<UInt64>]) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where !r.isEmpty {
            if let l = out.last, r.lowerBound <= l.upperBound {
                out[out.count - 1] = l.lowerBound..<max(l.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    private static func firstRange(in ranges: [Range<UInt64>], endingAfter offset: UInt64) -> Int {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound <= offset { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    static func missing(_ replica: ReplicaID) -> BundleSyncError {
        BundleSyncError.badData("a text edit refers to text written by \(replica.short) that this replica does not hold")
    }

    /// Joins neighbouring runs that continue one another, keeping the state compact.
    mutating func coalesce() {
        guard runs.count > 1 else { return }
        var out: [Run] = []
        out.reserveCapacity(runs.count)
        for r in runs {
            if let last = out.last, last.isContinued(by: r) {
                out[out.count - 1].length += r.length
                out[out.count - 1].bytes += r.bytes
                // Deleted at the later of the two; unknown (0) when either is.
                out[out.count - 1].deletedAt = last.deletedAt == 0 || r.deletedAt == 0 ? 0 : max(last.deletedAt, r.deletedAt)
            } else {
                out.append(r)
            }
        }
        runs = out
    }

    // MARK: - Local edits

    /// Turns this state's text into `new` as one write, returning the delta that does it.
    ///
    /// Each changed place becomes one run, anchored to visible scalars only, never to a
    /// tombstone (`bundlesync-format(5)`, "Text state"): the scalar it is typed after is the
    /// last visible one before the place (the last one it replaces, for replaced text), and
    /// its right origin the next visible one after. It hangs right of the scalar before when
    /// that scalar has no right child at all, tombstones included; otherwise left of the
    /// next visible scalar; with none after, right of the scalar before, its right origin
    /// the end. So no write made after a deletion was seen names the deleted scalar, which
    /// lets ``collect(below:)`` remove it once every peer has seen the deletion.
    ///
    /// Deletions of dropped runs waiting in ``unsentDeletions`` go with the write.
    ///
    /// - Parameters:
    ///   - new: Valid UTF-8.
    ///   - hlc, replica: The write's id.
    package mutating func edit(to new: [UInt8], hlc: UInt64, replica: ReplicaID) throws -> TextSequence {
        let old = text
        let hunks = TextDiff.hunks(old, new)
        var delta = TextSequence()
        delta.deletions = unsentDeletions
        unsentDeletions = []
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
        /// The run and position of the `s`-th visible scalar.
        func place(_ s: Int) -> (run: Int, k: Int) {
            let v = visible[slot(s)]
            return (v.run, s - v.start)
        }
        // Scalars with a right child that does not continue their run; the start of the
        // text has one whenever there is any run.
        var rightParents = Set<UnitID>()
        for r in runs where r.side == .right {
            if let p = r.parent { rightParents.insert(p) }
        }
        func hasRightChild(_ at: (run: Int, k: Int)?) -> Bool {
            guard let at else { return !runs.isEmpty }
            return at.k + 1 < runs[at.run].length || rightParents.contains(runs[at.run].id(at: at.k))
        }
        let index = RunIndex(runs)
        /// Whether scalar `v` is an ancestor of scalar `at` in the tree.
        func isAncestor(_ v: (run: Int, k: Int), of at: (run: Int, k: Int)) -> Bool {
            var run = at.run
            while let p = runs[run].parent, let (ri, k) = index.locate(p) {
                if ri == v.run && v.k <= k { return true }
                run = ri
            }
            return false
        }

        let counter = UTF8Scalars.Counter(old)
        var written: UInt64 = 0
        /// Where each inserted run goes when it hangs on the right: right after the scalar k
        /// of run i it is typed after.
        var gaps: [(run: Int, k: Int)] = []
        var leftSide = false
        var deleted: [Deletion] = []
        for h in hunks {
            let a = counter.scalarIndex(ofByte: h.old.lowerBound)
            let b = counter.scalarIndex(ofByte: h.old.upperBound)
            var s = a
            while s < b {
                // The rest of the scalar's run, within the deleted range.
                let (ri, k) = place(s)
                let n = min(b - s, runs[ri].length - k)
                deleted.append(Deletion(first: runs[ri].id(at: k), length: n))
                s += n
            }
            guard !h.new.isEmpty else { continue }
            // The scalar the new text is typed after: the last one it replaces, else the one
            // before the place; nil for the start of the text. The next visible scalar is
            // the one at `b` either way.
            let left: (run: Int, k: Int)? = b > a ? place(b - 1) : (a > 0 ? place(a - 1) : nil)
            let leftID = left.map { runs[$0.run].id(at: $0.k) }
            let next: (run: Int, k: Int)? = b < scalars ? place(b) : nil
            var nextID = next.map { runs[$0.run].id(at: $0.k) }
            let side: Side
            let parent: UnitID?
            if !hasRightChild(left) {
                (side, parent) = (.right, leftID)
            } else if let next, !(left.map { isAncestor(next, of: $0) } ?? false) {
                // The next visible scalar's left subtree lies after the scalar typed after.
                (side, parent) = (.left, nextID)
                leftSide = true
            } else {
                // Only tombstones lie between the scalar typed after and the next visible
                // one, whose left subtree holds both: first among the right children of the
                // scalar typed after, which the end as right origin puts first.
                (side, parent, nextID) = (.right, leftID, nil)
            }
            let bytes = Array(new[h.new])
            let length = UTF8Scalars.count(bytes)
            delta.runs.append(Run(hlc: hlc, replica: replica, offset: written, length: length, side: side,
                                  parent: parent, rightOrigin: nextID, deleted: false, bytes: bytes))
            written += UInt64(length)
            gaps.append(left.map { ($0.run, $0.k + 1) } ?? (0, 0))
        }
        delta.deletions += deleted
        if leftSide {
            // A run left of the next visible scalar lands before that scalar's left subtree,
            // which may begin after tombstones: the tree says where.
            let tree = try FugueTree(state: runs, incoming: delta.runs)
            runs = try tree.ordered()
        } else {
            // Each run hangs right of a scalar with no right child, or first among the
            // right children of one followed by tombstones only (the end as right origin
            // comes first), so it lands right after the scalar it was typed after: placed
            // there directly, the state is exactly what merging the delta makes.
            insert(delta.runs, at: gaps)
        }
        if !delta.deletions.isEmpty { try delete(delta.deletions, stamp: hlc) }
        coalesce()
        guard text == new else {
            throw BundleSyncError.failure("internal error: a text edit did not reproduce the written text")
        }
        return delta
    }

    /// Puts `inserted[j]` before scalar `gaps[j].k` of run `gaps[j].run`, for gaps in
    /// document order, splitting runs where a gap falls inside one.
    private mutating func insert(_ inserted: [Run], at gaps: [(run: Int, k: Int)]) {
        guard !inserted.isEmpty else { return }
        var out: [Run] = []
        out.reserveCapacity(runs.count + 2 * inserted.count)
        var j = 0
        for (i, r) in runs.enumerated() {
            var rest = r
            var done = 0
            while j < gaps.count && gaps[j].run == i {
                let k = gaps[j].k - done
                if k == 0 {
                    out.append(inserted[j])
                } else if k >= rest.length {
                    break
                } else {
                    out.append(rest.head(k))
                    rest = rest.tail(from: k)
                    done += k
                    out.append(inserted[j])
                }
                j += 1
            }
            out.append(rest)
            // Gaps after the run's last scalar.
            while j < gaps.count && gaps[j].run == i {
                out.append(inserted[j])
                j += 1
            }
        }
        while j < gaps.count {
            out.append(inserted[j])
            j += 1
        }
        runs = out
    }

}

/// Finds the run holding a scalar, by write and offset.
struct RunIndex {
    private var byWrite: [TextSequence.WriteKey: [(offset: UInt64, end: UInt64, run: Int)]] = [:]

    init(_ runs: [TextSequence.Run]) {
        for (i, r) in runs.enumerated() { byWrite[r.write, default: []].append((r.offset, r.end, i)) }
        for (w, list) in byWrite where list.count > 1 { byWrite[w] = list.sorted { $0.offset < $1.offset } }
    }

    func locate(_ u: TextSequence.UnitID) -> (run: Int, k: Int)? {
        guard let list = byWrite[u.write] else { return nil }
        var lo = 0, hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if list[mid].end <= u.offset { lo = mid + 1 } else { hi = mid }
        }
        guard lo < list.count, list[lo].offset <= u.offset else { return nil }
        return (list[lo].run, Int(u.offset - list[lo].offset))
    }
}

/// The tree of a state's runs and the runs a merge adds, read back in document order.
///
/// Runs are cut first wherever a scalar has children that do not continue its run, so every
/// node of the tree is a whole piece: its left children hang on its first scalar, its right
/// children on its last. The state's pieces enter the tree in document order, which is the
/// tree's order; new pieces enter in id order (every scalar's parent and right origin are
/// older than it), each among its siblings as FugueMax orders them.
struct FugueTree {
    typealias Run = TextSequence.Run
    typealias UnitID = TextSequence.UnitID

    struct Node {
        var run: Run
        var parent: Int
        var side: TextSequence.Side
        var depth: Int
        var left: [Int] = []
        var right: [Int] = []
    }

    /// Node 0 is the start of the text.
    private var nodes: [Node] = []
    private var index: [TextSequence.WriteKey: [(offset: UInt64, end: UInt64, node: Int)]] = [:]
    private var placed: [Bool] = []
    private var steps = 0

    init(state: [Run], incoming: [Run]) throws {
        // Where pieces must start: after every right-side parent, at every left-side parent.
        var cuts: [TextSequence.WriteKey: Set<UInt64>] = [:]
        for r in state + incoming {
            guard let p = r.parent else { continue }
            cuts[p.write, default: []].insert(r.side == .right ? p.offset + 1 : p.offset)
        }
        func pieces(_ r: Run) -> [Run] {
            guard let c = cuts[r.write] else { return [r] }
            var out: [Run] = []
            var rest = r
            for k in 1..<max(1, r.length) where c.contains(r.offset + UInt64(k)) {
                let at = Int(r.offset + UInt64(k) - rest.offset)
                out.append(rest.head(at))
                rest = rest.tail(from: at)
            }
            out.append(rest)
            return out
        }
        nodes.append(Node(run: Run(hlc: 0, replica: ReplicaID(bytes: [UInt8](repeating: 0, count: ReplicaID.byteCount))!, offset: 0,
                                   length: 1, deleted: true, bytes: []), parent: -1, side: .right, depth: 0))
        let old = state.flatMap(pieces)
        let new = incoming.sorted { $0.first < $1.first }.flatMap(pieces)
        for r in old + new {
            index[r.write, default: []].append((r.offset, r.end, nodes.count))
            nodes.append(Node(run: r, parent: -1, side: r.side, depth: 0))
        }
        for (w, list) in index {
            let sorted = list.sorted { $0.offset < $1.offset }
            for i in 1..<max(1, sorted.count) where sorted[i].offset < sorted[i - 1].end {
                throw BundleSyncError.badData("a text edit inserts text by \(w.replica.short) that the state already holds")
            }
            index[w] = sorted
        }
        placed = Array(repeating: false, count: nodes.count)
        for i in 0..<(1 + old.count) { placed[i] = true }

        // The state: already in order, so each piece is its parent's next child.
        for i in 1..<(1 + old.count) {
            let p = try parentNode(of: nodes[i].run)
            nodes[i].parent = p
            if nodes[i].side == .left { nodes[p].left.append(i) } else { nodes[p].right.append(i) }
        }
        computeDepths()
        // New pieces, oldest first.
        for i in (1 + old.count)..<nodes.count {
            try insert(i)
        }
    }

    /// The node whose first (left side) or last (right side) scalar is `r`'s parent.
    private func parentNode(of r: Run) throws -> Int {
        guard let p = r.parent else {
            guard r.side == .right else { throw BundleSyncError.badData("a text run hangs left of the start of the text") }
            return 0
        }
        guard let (n, k) = locate(p), placed[n] else { throw TextSequence.missing(p.replica) }
        guard r.side == .right ? k == nodes[n].run.length - 1 : k == 0 else {
            throw BundleSyncError.failure("internal error: a text run hangs inside another")
        }
        return n
    }

    private func locate(_ u: UnitID) -> (Int, Int)? {
        guard let list = index[u.write] else { return nil }
        var lo = 0, hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if list[mid].end <= u.offset { lo = mid + 1 } else { hi = mid }
        }
        guard lo < list.count, list[lo].offset <= u.offset else { return nil }
        return (list[lo].node, Int(u.offset - list[lo].offset))
    }

    private mutating func computeDepths() {
        var stack = [0]
        while let n = stack.popLast() {
            for c in nodes[n].left + nodes[n].right {
                nodes[c].depth = nodes[n].depth + 1
                stack.append(c)
            }
        }
    }

    private mutating func insert(_ i: Int) throws {
        let p = try parentNode(of: nodes[i].run)
        nodes[i].parent = p
        nodes[i].depth = nodes[p].depth + 1
        let id = nodes[i].run.first
        if nodes[i].side == .left {
            // Left siblings: descending id.
            let at = nodes[p].left.firstIndex { id > nodes[$0].run.first } ?? nodes[p].left.count
            nodes[p].left.insert(i, at: at)
        } else {
            // Right siblings: the later right origin first (the end of the text latest of all),
            // then descending id.
            let origin = try rightOrigin(of: i)
            var at = nodes[p].right.count
            for (j, s) in nodes[p].right.enumerated() {
                let other = try rightOrigin(of: s)
                let before: Bool
                if origin?.0 == other?.0 && origin?.1 == other?.1 {
                    before = id > nodes[s].run.first
                } else {
                    before = try isBefore(other, origin)
                }
                if before { at = j; break }
            }
            nodes[p].right.insert(i, at: at)
        }
        placed[i] = true
    }

    /// The node and position of a right-side piece's right origin; nil for the end of the text.
    private func rightOrigin(of i: Int) throws -> (Int, Int)? {
        guard let o = nodes[i].run.rightOrigin else { return nil }
        guard let found = locate(o), placed[found.0] else { throw TextSequence.missing(o.replica) }
        return found
    }

    /// Whether scalar `a` comes before scalar `b` in the document; nil stands for the end.
    private mutating func isBefore(_ a: (Int, Int)?, _ b: (Int, Int)?) throws -> Bool {
        guard let b else { return a != nil }
        guard let a else { return false }
        if a.0 == b.0 { return a.1 < b.1 }
        var x = a.0, y = b.0
        // Climb to equal depth; if one is the other's ancestor, the side decides.
        var lastSide = TextSequence.Side.right
        while nodes[x].depth > nodes[y].depth {
            lastSide = nodes[x].side
            x = nodes[x].parent
            try spend()
        }
        if x == y { return lastSide == .left }
        while nodes[y].depth > nodes[x].depth {
            lastSide = nodes[y].side
            y = nodes[y].parent
            try spend()
        }
        if x == y { return lastSide == .right }
        while nodes[x].parent != nodes[y].parent {
            x = nodes[x].parent
            y = nodes[y].parent
            try spend()
        }
        if nodes[x].side != nodes[y].side { return nodes[x].side == .left }
        let siblings = nodes[x].side == .left ? nodes[nodes[x].parent].left : nodes[nodes[x].parent].right
        return siblings.firstIndex(of: x)! < siblings.firstIndex(of: y)!
    }

    private mutating func spend() throws {
        steps += 1
        if steps > TextSequence.searchBudget {
            throw BundleSyncError.badData("a text edit is too fragmented to merge")
        }
    }

    /// The pieces in document order.
    func ordered() throws -> [Run] {
        var out: [Run] = []
        out.reserveCapacity(nodes.count)
        // (node, next child: left children, then the node, then right children)
        var stack: [(Int, Int)] = [(0, 0)]
        while !stack.isEmpty {
            let (n, c) = stack[stack.count - 1]
            let node = nodes[n]
            if c < node.left.count {
                stack[stack.count - 1].1 += 1
                stack.append((node.left[c], 0))
            } else if c == node.left.count {
                stack[stack.count - 1].1 += 1
                if n != 0 { out.append(node.run) }
            } else if c - node.left.count - 1 < node.right.count {
                stack[stack.count - 1].1 += 1
                stack.append((node.right[c - node.left.count - 1], 0))
            } else {
                stack.removeLast()
            }
        }
        return out
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
