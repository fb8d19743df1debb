import BundleSyncCore

/// The difference between two texts as replaced byte ranges, cut only at extended grapheme
/// cluster boundaries.
///
/// Large texts with small edits are the common case, so the common prefix and suffix are
/// trimmed first (in bytes, then moved back to cluster boundaries). What remains is diffed
/// cluster by cluster with Myers' algorithm when it is small; a large remainder is diffed
/// line by line first, each changed run of lines word by word, and each changed run of words
/// cluster by cluster. Clusters compare by their exact bytes, not by canonical equivalence, so the
/// result always reproduces the new text byte for byte. A part that differs too much for the
/// cost cap is replaced whole, which is still correct, only coarser.
package enum TextDiff {
    package struct Hunk: Equatable {
        /// Bytes of the old text replaced...
        package var old: Range<Int>
        /// ...by these bytes of the new text.
        package var new: Range<Int>

        package init(old: Range<Int>, new: Range<Int>) {
            self.old = old
            self.new = new
        }
    }

    /// Edit distance beyond which a part is replaced whole instead of diffed finer.
    package static let maxEdits = 1_000
    /// Clusters beyond which a changed run of words is replaced whole.
    package static let maxClusters = 50_000
    /// Clusters up to which the changed part is diffed cluster by cluster directly.
    package static let directClusters = 20_000

    package static func hunks(_ a: [UInt8], _ b: [UInt8]) -> [Hunk] {
        if a == b { return [] }
        var prefix = 0
        let limit = min(a.count, b.count)
        while prefix < limit && a[prefix] == b[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < limit - prefix && a[a.count - 1 - suffix] == b[b.count - 1 - suffix] { suffix += 1 }

        // Move both cuts to positions that are cluster boundaries in both texts.
        var start = prefix
        while true {
            let s = min(Clusters.boundary(in: a, atOrBefore: start), Clusters.boundary(in: b, atOrBefore: start))
            if s == start { break }
            start = s
        }
        var endA = a.count - suffix
        var endB = b.count - suffix
        while true {
            let ea = Clusters.boundary(in: a, atOrAfter: endA)
            let eb = Clusters.boundary(in: b, atOrAfter: endB)
            // Both ends must move by the same amount: they border the same common suffix.
            let shift = max(ea - endA, eb - endB)
            if shift == 0 { break }
            endA += shift
            endB += shift
        }
        endA = max(endA, start)
        endB = max(endB, start)

        // Cluster by cluster when the changed part is small enough; otherwise lines first,
        // then words, then clusters, each level refining the hunks of the one before.
        if let exact = clusterHunks(a, start..<endA, b, start..<endB, limit: directClusters) { return exact }
        return refine(a, start..<endA, b, start..<endB, level: .lines)
    }

    // MARK: - Lines, words, clusters

    private enum Level {
        case lines, words

        package var next: Level? { self == .lines ? .words : nil }

        /// Whether a token ends after byte `i` of `bytes`. Lines end after a line feed, which
        /// always ends a cluster; words end after a space or tab followed by an ASCII byte,
        /// which starts a new cluster (a space may carry a combining mark).
        package func endsToken(_ bytes: [UInt8], _ i: Int) -> Bool {
            let b = bytes[i]
            if b == 0x0A { return true }
            guard self == .words, b == 0x20 || b == 0x09 else { return false }
            return i + 1 < bytes.count && bytes[i + 1] < 0x80
        }
    }

    private static func refine(_ a: [UInt8], _ ra: Range<Int>, _ b: [UInt8], _ rb: Range<Int>, level: Level) -> [Hunk] {
        if ra.isEmpty || rb.isEmpty { return ra.isEmpty && rb.isEmpty ? [] : [Hunk(old: ra, new: rb)] }
        let finer: (Range<Int>, Range<Int>) -> [Hunk] = { x, y in
            if let next = level.next { return refine(a, x, b, y, level: next) }
            return clusterHunks(a, x, b, y, limit: maxClusters) ?? [Hunk(old: x, new: y)]
        }
        let la = tokens(a, ra, level), lb = tokens(b, rb, level)
        if la.count <= 1 || lb.count <= 1 { return finer(ra, rb) }
        var interner = Interner()
        let ta = la.map { interner.id(a[$0]) }
        let tb = lb.map { interner.id(b[$0]) }
        guard let script = myers(ta, tb) else { return finer(ra, rb) }
        var out: [Hunk] = []
        for h in script {
            out += finer(span(la, h.old, default: ra.lowerBound), span(lb, h.new, default: rb.lowerBound))
        }
        return out
    }

    /// A shortest cluster-level script, or nil when the parts hold more than `limit`
    /// clusters or differ in more than `maxEdits`.
    private static func clusterHunks(_ a: [UInt8], _ ra: Range<Int>, _ b: [UInt8], _ rb: Range<Int>, limit: Int) -> [Hunk]? {
        if ra.isEmpty || rb.isEmpty { return ra.isEmpty && rb.isEmpty ? [] : [Hunk(old: ra, new: rb)] }
        guard ra.count + rb.count <= limit * 4 else { return nil }
        var interner = Interner()
        let ca = Clusters.ranges(a, ra), cb = Clusters.ranges(b, rb)
        guard ca.count + cb.count <= limit else { return nil }
        let ta = ca.map { interner.id(a[$0]) }
        let tb = cb.map { interner.id(b[$0]) }
        guard let script = myers(ta, tb) else { return nil }
        return script.map { Hunk(old: span(ca, $0.old, default: ra.lowerBound), new: span(cb, $0.new, default: rb.lowerBound)) }
    }

    /// The byte range covered by tokens `r`; for an empty token range, the position before
    /// token `r.lowerBound`.
    private static func span(_ tokens: [Range<Int>], _ r: Range<Int>, default start: Int) -> Range<Int> {
        if r.isEmpty {
            let at = r.lowerBound < tokens.count ? tokens[r.lowerBound].lowerBound : (tokens.last?.upperBound ?? start)
            return at..<at
        }
        return tokens[r.lowerBound].lowerBound..<tokens[r.upperBound - 1].upperBound
    }

    private static func tokens(_ bytes: [UInt8], _ r: Range<Int>, _ level: Level) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var s = r.lowerBound
        for i in r where level.endsToken(bytes, i) {
            out.append(s..<(i + 1))
            s = i + 1
        }
        if s < r.upperBound { out.append(s..<r.upperBound) }
        return out
    }

    private struct Interner {
        package var ids: [ArraySlice<UInt8>: Int] = [:]
        package mutating func id(_ s: ArraySlice<UInt8>) -> Int {
            if let i = ids[s] { return i }
            ids[s] = ids.count
            return ids.count - 1
        }
    }

    // MARK: - Myers

    package struct TokenHunk: Equatable {
        package var old: Range<Int>
        package var new: Range<Int>

        package init(old: Range<Int>, new: Range<Int>) {
            self.old = old
            self.new = new
        }
    }

    /// Myers' O((N+M)D) shortest edit script, as replaced token ranges; nil beyond `maxEdits`.
    package static func myers(_ a: [Int], _ b: [Int]) -> [TokenHunk]? {
        let n = a.count, m = b.count
        let maxD = min(n + m, maxEdits)
        let offset = maxD + 1
        var v = [Int](repeating: 0, count: 2 * maxD + 3)
        var trace: [[Int]] = []
        var found = false
        outer: for d in 0...maxD {
            trace.append(v)
            for k in stride(from: -d, through: d, by: 2) {
                var x: Int
                if k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1]) {
                    x = v[offset + k + 1]
                } else {
                    x = v[offset + k - 1] + 1
                }
                var y = x - k
                while x < n && y < m && a[x] == b[y] {
                    x += 1
                    y += 1
                }
                v[offset + k] = x
                if x >= n && y >= m {
                    found = true
                    break outer
                }
            }
        }
        guard found else { return nil }

        // Walk back through the trace, collecting the matched diagonals.
        var x = n, y = m
        var matches: [(Int, Int, Int)] = [] // (x, y, length), in reverse
        for d in stride(from: trace.count - 1, through: 0, by: -1) {
            let vd = trace[d]
            let k = x - y
            var prevK: Int
            if d == 0 {
                prevK = k
            } else if k == -d || (k != d && vd[offset + k - 1] < vd[offset + k + 1]) {
                prevK = k + 1
            } else {
                prevK = k - 1
            }
            let prevX = d == 0 ? 0 : vd[offset + prevK]
            let prevY = prevX - prevK
            let startX = d == 0 ? 0 : (prevK == k + 1 ? prevX : prevX + 1)
            let startY = startX - k
            if x > startX { matches.append((startX, startY, x - startX)) }
            x = prevX
            y = prevY
            if d == 0 { break }
        }
        matches.reverse()

        var hunks: [TokenHunk] = []
        var ax = 0, by = 0
        for (mx, my, len) in matches {
            if mx > ax || my > by { hunks.append(TokenHunk(old: ax..<mx, new: by..<my)) }
            ax = mx + len
            by = my + len
        }
        if ax < n || by < m { hunks.append(TokenHunk(old: ax..<n, new: by..<m)) }
        return hunks
    }
}

/// Extended grapheme cluster boundaries in UTF-8, found by the standard library.
package enum Clusters {
    /// How far before a position segmentation starts; clusters are almost always far shorter.
    private static let lead = 256

    /// The byte ranges of the clusters in `r`, which starts and ends on cluster boundaries.
    package static func ranges(_ bytes: [UInt8], _ r: Range<Int>) -> [Range<Int>] {
        let s = String(decoding: bytes[r], as: UTF8.self)
        var out: [Range<Int>] = []
        var at = r.lowerBound
        for c in s {
            let n = c.utf8.count
            out.append(at..<(at + n))
            at += n
        }
        return out
    }

    /// Cluster boundaries within a window around `p`, as absolute byte offsets.
    private static func boundaries(_ bytes: [UInt8], around p: Int) -> [Int] {
        var start = max(0, p - lead)
        while start > 0 && UTF8Scalars.isContinuation(bytes[start]) { start -= 1 }
        var end = min(bytes.count, p + lead)
        while end < bytes.count && UTF8Scalars.isContinuation(bytes[end]) { end += 1 }
        var out = [start]
        var at = start
        for c in String(decoding: bytes[start..<end], as: UTF8.self) {
            at += c.utf8.count
            out.append(at)
        }
        return out
    }

    package static func boundary(in bytes: [UInt8], atOrBefore p: Int) -> Int {
        if p <= 0 { return 0 }
        if p >= bytes.count { return bytes.count }
        let b = boundaries(bytes, around: p)
        // The window's last cluster may continue past its end; do not trust that boundary.
        let trusted = b.last == bytes.count ? b : Array(b.dropLast())
        return trusted.last { $0 <= p } ?? b[0]
    }

    package static func boundary(in bytes: [UInt8], atOrAfter p: Int) -> Int {
        if p <= 0 { return 0 }
        if p >= bytes.count { return bytes.count }
        let b = boundaries(bytes, around: p)
        if let x = b.first(where: { $0 >= p }), x < b.last! || b.last == bytes.count { return x }
        return bytes.count
    }
}
