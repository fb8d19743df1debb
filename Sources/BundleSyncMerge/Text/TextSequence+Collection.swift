import BundleSyncCore

// Collecting tombstones (`bundlesync-format(5)`, "Collecting tombstones").
//
// A tombstone is kept so that writes naming it find their place. Once every write that can
// still arrive is known to come after the deletion, nothing will name it again: writes made
// after a deletion was seen never anchor to a deleted scalar (see `edit(to:hlc:replica:)`).
// The replica computes a *stable time* G: every write stamped below G is held by every
// known peer, so every write a known peer makes from now on is causally after it. A deleted
// scalar X is removed when its id and its deletion stamp are below G and every run that
// names X as parent or right origin is stamped below G too.
//
// Removing X keeps the order of everything else. X's children take X's place among its
// parent's children, in their order (left children, then right children), so reading the
// tree gives the remaining scalars in the same order. A run whose right origin was X gets
// X's own right origin instead (or that one's, if X's went too): it still exists, and is
// older than the run, as a state rebuilt in id order needs. Right origins only decide
// between concurrent right siblings, and no write from a known peer can add one next to
// these:
//
// - a new left child of a scalar has a larger id than everything its writer saw, so it
//   comes first among its siblings whatever the rest are;
// - a new right child of a scalar P is made only when P has no right child at its writer,
//   and every child of P stamped below G was seen by every writer.
//
// Writes from a peer that was forgotten, or that no replica here had heard of, may have been
// made before their writer saw a deletion collected here: see `dropLate(_:)`.
extension TextSequence {
    /// Whether the scalars of write `w` were, at least in part, dropped here.
    func isDropped(_ w: WriteKey) -> Bool {
        dropped.contains { $0.first.write == w }
    }

    private func isDropped(_ u: UnitID) -> Bool {
        dropped.contains { $0.first.write == u.write && u.offset >= $0.first.offset && u.offset - $0.first.offset < UInt64($0.length) }
    }

    /// The first scalar of `r` dropped here, as an offset within `r`.
    private func firstDropped(in r: Run) -> Int? {
        var first: Int?
        for d in dropped where d.first.write == r.write && d.first.offset < r.end && r.offset < d.first.offset + UInt64(d.length) {
            let k = d.first.offset > r.offset ? Int(d.first.offset - r.offset) : 0
            first = min(first ?? k, k)
        }
        return first
    }

    /// Whether every scalar of `d` was dropped here.
    private func isAllDropped(_ d: Deletion) -> Bool {
        (0..<UInt64(d.length)).allSatisfy { k in
            isDropped(UnitID(hlc: d.first.hlc, replica: d.first.replica, offset: d.first.offset + k))
        }
    }

    /// Splits incoming runs into those that can be placed and those that cannot: a run is
    /// dropped when it names a dropped scalar, or a missing scalar stamped at or below
    /// ``collectedBelow`` (collected here: the run was written before its writer saw the
    /// deletion, and its place is lost). Dropped runs with text are remembered in ``dropped`` and their
    /// deletion waits in ``unsentDeletions``, so that every replica ends without them.
    mutating func dropLate(_ incoming: [Run]) -> (kept: [Run], dropped: [Run]) {
        let index = RunIndex(runs)
        var kept: [Run] = []
        var keptByWrite: [WriteKey: [Run]] = [:]
        var lost: [Run] = []
        func exists(_ u: UnitID) -> Bool {
            index.locate(u) != nil || keptByWrite[u.write]?.contains { $0.contains(u) } == true
        }
        for whole in incoming.sorted(by: { $0.first < $1.first }) {
            var r = whole
            // Scalars dropped here already (their deletion may have come in a whole state
            // before they did, from a replica that dropped them): they and what follows them
            // in the run, which hangs on them, stay out.
            if let k = firstDropped(in: r) {
                let tail = k == 0 ? r : r.tail(from: k)
                let gone = Deletion(first: tail.first, length: tail.length)
                if !isAllDropped(gone) && !tail.deleted {
                    dropped.append(gone)
                    unsentDeletions.append(gone)
                    lost.append(tail)
                }
                guard k > 0 else { continue }
                r = r.head(k)
            }
            let names = [r.parent, r.side == .right ? r.rightOrigin : nil].compactMap { $0 }
            // A run of a write this state does not hold, stamped at or below the
            // collected-below time, was collected here (its deletion was seen by every
            // replica that writes), or written late.
            let late = r.hlc <= collectedBelow || names.contains { isDropped($0) || (!exists($0) && $0.hlc <= collectedBelow) }
            if late {
                // A tombstone written before the collection is one collected here: nothing
                // to remember or report.
                guard !r.deleted else { continue }
                let gone = Deletion(first: r.first, length: r.length)
                dropped.append(gone)
                unsentDeletions.append(gone)
                lost.append(r)
            } else {
                kept.append(r)
                keptByWrite[r.write, default: []].append(r)
            }
        }
        return (kept, lost)
    }

    /// What this state holds that `whole`, another replica's whole state whose tombstones
    /// were collected, shows was deleted there: every scalar stamped at or below its
    /// collected-below time that it lacks. Its sender saw each of them (a replica's writes
    /// made after it saw what was collected are stamped later), so each was deleted and
    /// collected there, or dropped. Nothing, for a delta or a state nothing was collected
    /// from.
    ///
    /// - Returns: The deletions, and the runs of them this state still showed: those can
    ///   only be here when a replica wrote without being counted (see `config DB fleet N`).
    func deletionsCollected(by whole: TextSequence) -> (deletions: [Deletion], shown: [Run]) {
        guard whole.collectedBelow > 0, !runs.isEmpty else { return ([], []) }
        let index = RunIndex(whole.runs)
        var gone: [Deletion] = []
        var shown: [Run] = []
        for r in runs where r.hlc <= whole.collectedBelow {
            for missing in Self.pieces(of: r, missingFrom: index) {
                gone.append(Deletion(first: r.id(at: missing.lowerBound), length: missing.count))
                if !r.deleted { shown.append(r.tail(from: missing.lowerBound).head(missing.count)) }
            }
        }
        return (gone, shown)
    }

    /// The pieces of `r`, as offsets within it, whose scalars `index` does not hold.
    private static func pieces(of r: Run, missingFrom index: RunIndex) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var k = 0
        while k < r.length {
            guard index.locate(r.id(at: k)) == nil else { k += 1; continue }
            let start = k
            while k < r.length && index.locate(r.id(at: k)) == nil { k += 1 }
            out.append(start..<k)
        }
        return out
    }

    /// Takes `state`, another replica's whole state that reflects everything this one
    /// holds, in place of this one. Scalars this state holds and `state` does not were
    /// collected or dropped there; they count as dropped here, so a later delete naming one
    /// does nothing and a later write naming one is dropped, as there.
    ///
    /// - Parameter stamp: The HLC of the write that carried `state`: when its tombstones
    ///   count as deleted.
    package mutating func adopt(_ state: TextSequence, stamp: UInt64) throws {
        var next = state
        next.stampUnknownDeletions(stamp)
        let tree = try FugueTree(state: next.runs, incoming: [])
        next.runs = try tree.ordered()
        let index = RunIndex(next.runs)
        var gone: [Deletion] = []
        for r in runs {
            gone += Self.pieces(of: r, missingFrom: index).map { Deletion(first: r.id(at: $0.lowerBound), length: $0.count) }
        }
        next.collectedBelow = max(collectedBelow, state.collectedBelow)
        // A whole state's deletions are the runs its sender dropped.
        next.dropped = dropped + gone + state.deletions
        next.deletions = []
        next.unsentDeletions = []
        next.coalesce()
        self = next
    }

    /// Gives every tombstone whose deletion time is not known `stamp`, an upper bound of it.
    package mutating func stampUnknownDeletions(_ stamp: UInt64) {
        for i in runs.indices where runs[i].deleted && runs[i].deletedAt == 0 { runs[i].deletedAt = stamp }
    }

    /// Removes the tombstones every peer is known to have seen deleted.
    ///
    /// - Parameter g: The stable time: every write stamped below it is held by every known
    ///   peer. 0 collects nothing.
    /// - Returns: Whether anything was removed.
    @discardableResult
    package mutating func collect(below g: UInt64) -> Bool {
        guard g > 0, runs.contains(where: { $0.deleted && $0.hlc < g && $0.deletedAt != 0 && $0.deletedAt < g }) else { return false }
        let index = RunIndex(runs)
        var removed = [Bool](repeating: false, count: runs.count)
        for (i, r) in runs.enumerated() where r.deleted && r.hlc < g && r.deletedAt != 0 && r.deletedAt < g {
            removed[i] = true
        }
        // A scalar named by a run stamped at or after G stays, with the rest of its run.
        for r in runs where r.hlc >= g {
            for u in [r.parent, r.side == .right ? r.rightOrigin : nil].compactMap({ $0 }) {
                if let (ri, _) = index.locate(u) { removed[ri] = false }
            }
        }
        guard removed.contains(true) else { return false }
        func isRemoved(_ u: UnitID) -> Int? {
            guard let (ri, _) = index.locate(u), removed[ri] else { return nil }
            return ri
        }
        /// What stands for a removed right origin: the removed scalar's own right origin,
        /// as far as it remains (nil: the end). It is older than every run naming the removed
        /// one, as a state rebuilt in id order needs.
        func remaining(_ o: UnitID?) -> UnitID? {
            var o = o
            while let u = o, let ri = isRemoved(u) { o = runs[ri].rightOrigin }
            return o
        }
        var out: [Run] = []
        out.reserveCapacity(runs.count)
        var top = collectedBelow
        for (i, r) in runs.enumerated() {
            if removed[i] {
                top = max(top, r.hlc, r.deletedAt)
                continue
            }
            var r = r
            // Climb out of removed runs: the run takes the place of the removed one it hung
            // on, on that one's side of that one's parent.
            while let p = r.parent, let ri = isRemoved(p) {
                let x = runs[ri]
                if r.side == .left && x.side == .right { r.rightOrigin = x.rightOrigin }
                r.side = x.side
                r.parent = x.parent
            }
            if r.side == .left {
                r.rightOrigin = r.parent
            } else {
                r.rightOrigin = remaining(r.rightOrigin)
            }
            out.append(r)
        }
        runs = out
        collectedBelow = top
        coalesce()
        return true
    }

    // MARK: - The stored state's local part

    /// What the stored state keeps besides its encoding: deletion stamps, what was collected
    /// and dropped. Never sent.
    package func localAnnotations() -> [UInt8] {
        var w = ByteWriter()
        w.varint(1)
        w.varint(collectedBelow)
        let tombstones = runs.filter(\.deleted)
        w.varint(tombstones.count)
        for r in tombstones { w.varint(r.deletedAt) }
        for list in [dropped, unsentDeletions] {
            w.varint(list.count)
            for d in list {
                w.raw(d.first.replica.bytes)
                w.varint(d.first.hlc)
                w.varint(d.first.offset)
                w.varint(d.length)
            }
        }
        return w.bytes
    }

    /// Reads what ``localAnnotations()`` wrote back into this state.
    package mutating func readLocalAnnotations(_ r: inout ByteReader) throws {
        guard try r.varint("text annotation version") == 1 else { throw BundleSyncError.badData("unknown text annotation version") }
        collectedBelow = try r.varint("text collected HLC")
        let count = try r.count("text tombstone count", limit: r.remaining)
        var stamps: [UInt64] = []
        for _ in 0..<count { stamps.append(try r.varint("text deletion HLC")) }
        var j = 0
        for i in runs.indices where runs[i].deleted {
            guard j < stamps.count else { break }
            runs[i].deletedAt = stamps[j]
            j += 1
        }
        func list() throws -> [Deletion] {
            let n = try r.count("text dropped count", limit: r.remaining)
            var out: [Deletion] = []
            for _ in 0..<n {
                guard let replica = ReplicaID(bytes: try r.raw(ReplicaID.byteCount, "text dropped replica")) else {
                    throw BundleSyncError.badData("a dropped text run names no replica")
                }
                let hlc = try r.varint("text dropped HLC")
                let offset = try r.varint("text dropped offset")
                out.append(Deletion(first: UnitID(hlc: hlc, replica: replica, offset: offset),
                                    length: try r.count("text dropped length", limit: Limits.maxValueBytes)))
            }
            return out
        }
        dropped = try list()
        unsentDeletions = try list()
    }
}
