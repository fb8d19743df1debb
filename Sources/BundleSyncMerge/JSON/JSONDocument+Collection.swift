import BundleSyncCore

// Collecting removed keys (`bundlesync-format(5)`, "Collecting tombstones").
//
// A removal at a path is a register stamped with the removing write: it hides every older
// register at and under the path. Once its stamp is below the stable time G (every write
// stamped below G is held by every known peer), every write still to come from a known
// peer is later than it, so the removal, together with the registers it hides, decides
// nothing any more and is dropped, unless it is what makes an enclosing path show as an
// object rather than the older value written there.
//
// A write from a peer that was forgotten, or that no replica had heard of, may be older
// than a removal collected here, which would have hidden it: see `mergeLate(_:)`.
extension JSONValue {
    /// The value at `path` of object keys, if any.
    func value(at path: [[UInt8]]) -> JSONValue? {
        var v = self
        for k in path {
            guard case .object(let members) = v, let m = members.first(where: { $0.key == k }) else { return nil }
            v = m.value
        }
        return v
    }
}

extension JSONDocument {
    private static func isPrefix(_ a: Path, of b: Path) -> Bool { a.count <= b.count && Array(b[..<a.count]) == a }

    /// Drops the removals every known peer is known to have seen, with what they hide.
    ///
    /// - Parameter g: The stable time (0: nothing is dropped).
    /// - Returns: Whether anything was dropped.
    @discardableResult
    package mutating func collect(below g: UInt64) -> Bool {
        guard g > 0 else { return false }
        let candidates = nodes.compactMap { (path, node) -> (Path, Stamp)? in
            guard let l = node.leaf, case .removed = l.leaf, l.stamp.hlc < g else { return nil }
            return (path, l.stamp)
        }.sorted { $0.0.count < $1.0.count }
        guard !candidates.isEmpty else { return false }
        let shown = document
        var changed = false
        for (path, s) in candidates {
            // Still there, and not dropped with an enclosing removal.
            guard let l = nodes[path]?.leaf, l.stamp == s, case .removed = l.leaf else { continue }
            // What goes: the removal and every register at or under the path older than it.
            func goes(_ p: Path, _ stamp: Stamp, leaf: Bool) -> Bool {
                Self.isPrefix(path, of: p) && (stamp < s || (leaf && p == path))
            }
            // An enclosing path that shows an object only because something that goes is
            // newer than the value written there keeps the removal.
            var keeps = false
            for depth in 0..<path.count {
                let a = Array(path[..<depth])
                guard let la = nodes[a]?.leaf, la.stamp < s else { continue }
                var newest: Stamp?
                for (p, n) in nodes where Self.isPrefix(a, of: p) {
                    if p != a, let x = n.leaf, !goes(p, x.stamp, leaf: true) { newest = max(newest ?? x.stamp, x.stamp) }
                    if let o = n.object, !goes(p, o, leaf: false) { newest = max(newest ?? o, o) }
                }
                if newest.map({ $0 <= la.stamp }) ?? true { keeps = true; break }
            }
            guard !keeps else { continue }
            var trial = self
            var top = collectedBelow
            for (p, n) in nodes where Self.isPrefix(path, of: p) {
                var n = n
                if let x = n.leaf, goes(p, x.stamp, leaf: true) {
                    top = max(top, x.stamp.hlc)
                    n.leaf = nil
                }
                if let o = n.object, goes(p, o, leaf: false) {
                    top = max(top, o.hlc)
                    n.object = nil
                }
                trial.nodes[p] = n.leaf == nil && n.object == nil ? nil : n
            }
            // What is shown never changes: a path that shows as an object only because of
            // registers under it (its own removal collected before) keeps the last of them.
            guard trial.document == shown else { continue }
            nodes = trial.nodes
            collectedBelow = top
            changed = true
        }
        return changed
    }

    /// Merges another state or a delta, leaving out values and objects written before a
    /// removal collected here: those stamped at or below ``collectedBelow`` that no register
    /// here at their path already outdates. Their paths wait in ``unsentRemovals`` for the
    /// cell's next write, which removes them where they were taken in.
    ///
    /// - Returns: What was left out.
    package mutating func mergeLate(_ other: JSONDocument) -> [CellState.Dropped] {
        let removed = dropCollected(by: other)
        defer { collectedBelow = max(collectedBelow, other.collectedBelow) }
        guard collectedBelow > 0 else {
            merge(other)
            return removed
        }
        var kept = JSONDocument()
        var lateValues: [(Path, Stamp, [UInt8])] = []
        var lateObjects: [Path] = []
        for (path, n) in other.nodes.sorted(by: { $0.key.count < $1.key.count }) {
            var keep = Node()
            if let l = n.leaf {
                // A late removal is taken in: it hides here what it hides everywhere.
                if l.stamp.hlc > collectedBelow || l.leaf == .removed || nodes[path]?.leaf.map({ $0.stamp >= l.stamp }) == true {
                    keep.leaf = l
                } else if case .value(let text) = l.leaf {
                    lateValues.append((path, l.stamp, text))
                }
            }
            if let o = n.object {
                if o.hlc > collectedBelow || nodes[path]?.object.map({ $0 >= o }) == true {
                    keep.object = o
                } else {
                    lateObjects.append(path)
                }
            }
            if keep.leaf != nil || keep.object != nil { kept.nodes[path] = keep }
        }
        merge(kept)
        guard !lateValues.isEmpty || !lateObjects.isEmpty else { return removed }
        // What was left out is lost only where its sender shows it and this document, now,
        // does not. A whole state also lists registers hidden there by a removal that was
        // collected here: leaving those out changes nothing.
        let theirs = other.document, ours = document
        func isObject(_ v: JSONValue?) -> Bool { if case .object? = v { return true }; return false }
        var lost: [CellState.Dropped] = []
        var lostPaths: [Path] = []
        for (path, stamp, text) in lateValues {
            let shown = theirs?.value(at: path)
            guard let shown, !isObject(shown), ours?.value(at: path) != shown else { continue }
            lost.append(.init(writer: stamp.replica, text: Self.describe(path) + " = " + String(decoding: text, as: UTF8.self)))
            lostPaths.append(path)
        }
        for path in lateObjects where isObject(theirs?.value(at: path)) && !isObject(ours?.value(at: path)) {
            lostPaths.append(path)
        }
        for p in lostPaths where !unsentRemovals.contains(where: { Self.isPrefix($0, of: p) }) {
            unsentRemovals.append(p)
        }
        return removed + lost
    }

    /// Drops the registers that `whole`, another replica's whole state whose removals were
    /// collected, shows were collected there: those stamped at or below its collected-below
    /// time at a path it holds nothing at. Its sender saw each of them (a replica's writes
    /// made after it saw what was collected are stamped later), so each was hidden by a
    /// removal there, and went with it. Nothing, for a delta or a state nothing was
    /// collected from.
    ///
    /// - Returns: The values this document showed that go: those can only be here when a
    ///   replica wrote without being counted (see `config DB fleet N`).
    mutating func dropCollected(by whole: JSONDocument) -> [CellState.Dropped] {
        guard whole.collectedBelow > 0, !nodes.isEmpty else { return [] }
        let before = document
        var goneValues: [(Path, Stamp, [UInt8])] = []
        for (path, n) in nodes where whole.nodes[path] == nil {
            var n = n
            if let l = n.leaf, l.stamp.hlc <= whole.collectedBelow {
                if case .value(let text) = l.leaf { goneValues.append((path, l.stamp, text)) }
                n.leaf = nil
            }
            if let o = n.object, o.hlc <= whole.collectedBelow { n.object = nil }
            nodes[path] = n.leaf == nil && n.object == nil ? nil : n
        }
        guard document != before else { return [] }
        return goneValues.filter { before?.value(at: $0.0) != nil && document?.value(at: $0.0) == nil }
            .map { .init(writer: $0.1.replica, text: Self.describe($0.0) + " = " + String(decoding: $0.2, as: UTF8.self), collectedElsewhere: true) }
    }

    private static func describe(_ path: Path) -> String {
        path.isEmpty ? "(the document)" : path.map { "/" + String(decoding: $0, as: UTF8.self) }.joined()
    }

    // MARK: - The stored state's local part

    package func localAnnotations() -> [UInt8] {
        var w = ByteWriter()
        w.varint(1)
        w.varint(collectedBelow)
        w.varint(unsentRemovals.count)
        for p in unsentRemovals {
            w.varint(p.count)
            p.forEach { w.lengthPrefixed($0) }
        }
        return w.bytes
    }

    package mutating func readLocalAnnotations(_ r: inout ByteReader) throws {
        guard try r.varint("JSON annotation version") == 1 else { throw BundleSyncError.badData("unknown JSON annotation version") }
        collectedBelow = try r.varint("JSON collected HLC")
        let n = try r.count("JSON removal count", limit: r.remaining)
        unsentRemovals = []
        for _ in 0..<n {
            let depth = try r.count("JSON path length", limit: min(JSONValue.maxDepth, r.remaining))
            var path: Path = []
            for _ in 0..<depth { path.append(try r.lengthPrefixed("JSON key", limit: Limits.maxValueBytes)) }
            unsentRemovals.append(path)
        }
    }
}
