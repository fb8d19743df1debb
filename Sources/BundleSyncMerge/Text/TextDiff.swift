import BundleSyncCore

/// The difference between two texts as replaced byte ranges, cut only at extended grapheme
/// cluster boundaries.
///
/// The common prefix and suffix are trimmed first (in bytes, then moved back to cluster
/// boundaries). What remains is compared line by line: lines that occur exactly once on each
/// side and in the same order (patience anchors) are kept, and the stretches between them are
/// compared again the same way, with Myers' algorithm where no anchor is left. Each changed run
/// of lines is compared word by word the same way, and each changed run of words cluster by
/// cluster. So text that is the same on both sides is kept wherever a line, word or cluster
/// of it can be matched, and the work grows with the size of the changed stretches, not with
/// the size of the text. Clusters compare by their exact bytes, not by canonical equivalence,
/// so the result always reproduces the new text byte for byte. Only a stretch with no anchor
/// that differs in more than `maxEdits` clusters is replaced whole.
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

    /// Edit distance beyond which Myers' algorithm gives up on a stretch with no anchor, which
    /// is then compared at the next finer level, or replaced whole at the finest.
    package static let maxEdits = 2_000

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

        var d = Differ(a: a, b: b)
        d.compare(start..<endA, start..<endB, level: .lines)
        return d.out
    }

    // MARK: - Lines, words, clusters

    fileprivate enum Level {
        case lines, words, clusters

        var finer: Level? {
            switch self {
            case .lines: .words
            case .words: .clusters
            case .clusters: nil
            }
        }

        /// Whether a token ends after byte `i` of `bytes`. Lines end after a line feed, which
        /// always ends a cluster; words end after a space or tab followed by an ASCII byte,
        /// which starts a new cluster (a space may carry a combining mark).
        func endsToken(_ bytes: [UInt8], _ i: Int) -> Bool {
            let b = bytes[i]
            if b == 0x0A { return true }
            guard self == .words, b == 0x20 || b == 0x09 else { return false }
            return i + 1 < bytes.count && bytes[i + 1] < 0x80
        }

        func tokens(_ bytes: [UInt8], _ r: Range<Int>) -> [Range<Int>] {
            if self == .clusters { return Clusters.ranges(bytes, r) }
            var out: [Range<Int>] = []
            var s = r.lowerBound
            for i in r where endsToken(bytes, i) {
                out.append(s..<(i + 1))
                s = i + 1
            }
            if s < r.upperBound { out.append(s..<r.upperBound) }
            return out
        }
    }

    /// One comparison: the texts, and the hunks found so far, in order.
    private struct Differ {
        let a: [UInt8]
        let b: [UInt8]
        var out: [Hunk] = []

        init(a: [UInt8], b: [UInt8]) {
            self.a = a
            self.b = b
        }

        mutating func emit(_ old: Range<Int>, _ new: Range<Int>) {
            if old.isEmpty && new.isEmpty { return }
            if let last = out.last, last.old.upperBound == old.lowerBound, last.new.upperBound == new.lowerBound {
                out[out.count - 1] = Hunk(old: last.old.lowerBound..<old.upperBound, new: last.new.lowerBound..<new.upperBound)
            } else {
                out.append(Hunk(old: old, new: new))
            }
        }

        /// Compares `ra` of the old text with `rb` of the new at `level`, and finer where they differ.
        mutating func compare(_ ra: Range<Int>, _ rb: Range<Int>, level: Level) {
            if ra.isEmpty || rb.isEmpty { return emit(ra, rb) }
            let ta = level.tokens(a, ra), tb = level.tokens(b, rb)
            var interner = Interner()
            let ia = ta.map { interner.id(a[$0]) }
            let ib = tb.map { interner.id(b[$0]) }
            compareTokens(ta, ia, 0..<ta.count, tb, ib, 0..<tb.count, level: level, interner.count)
        }

        /// Compares token ranges `x` of the old tokens and `y` of the new ones.
        mutating func compareTokens(_ ta: [Range<Int>], _ ia: [Int], _ x: Range<Int>,
                                    _ tb: [Range<Int>], _ ib: [Int], _ y: Range<Int>, level: Level, _ ids: Int) {
            var x = x, y = y
            // Equal tokens at both ends are kept.
            while !x.isEmpty && !y.isEmpty && ia[x.lowerBound] == ib[y.lowerBound] {
                x = (x.lowerBound + 1)..<x.upperBound
                y = (y.lowerBound + 1)..<y.upperBound
            }
            while !x.isEmpty && !y.isEmpty && ia[x.upperBound - 1] == ib[y.upperBound - 1] {
                x = x.lowerBound..<(x.upperBound - 1)
                y = y.lowerBound..<(y.upperBound - 1)
            }
            let ra = TextDiff.span(ta, x)
            let rb = TextDiff.span(tb, y)
            if x.isEmpty || y.isEmpty { return emit(ra, rb) }
            if x.count == 1 && y.count == 1 {
                // One token for one: only a finer level can keep part of it.
                if let finer = level.finer { return compare(ra, rb, level: finer) }
                return emit(ra, rb)
            }

            // Patience anchors: tokens found exactly once on each side, in the same order.
            let anchors = Self.anchors(ia, x, ib, y, ids)
            if !anchors.isEmpty {
                var px = x.lowerBound, py = y.lowerBound
                for (ax, ay) in anchors {
                    compareTokens(ta, ia, px..<ax, tb, ib, py..<ay, level: level, ids)
                    px = ax + 1
                    py = ay + 1
                }
                compareTokens(ta, ia, px..<x.upperBound, tb, ib, py..<y.upperBound, level: level, ids)
                return
            }

            // No anchor: a shortest edit script of the tokens, each replaced stretch finer.
            if let script = TextDiff.myers(Array(ia[x]), Array(ib[y])) {
                for h in script {
                    let hx = (x.lowerBound + h.old.lowerBound)..<(x.lowerBound + h.old.upperBound)
                    let hy = (y.lowerBound + h.new.lowerBound)..<(y.lowerBound + h.new.upperBound)
                    let ha = TextDiff.span(ta, hx)
                    let hb = TextDiff.span(tb, hy)
                    if let finer = level.finer, !hx.isEmpty, !hy.isEmpty { compare(ha, hb, level: finer) } else { emit(ha, hb) }
                }
                return
            }
            if let finer = level.finer { return compare(ra, rb, level: finer) }
            emit(ra, rb)
        }

        /// Tokens occurring exactly once in `x` and once in `y`, the longest run of them in the
        /// same order on both sides (patience sorting), as (old index, new index) pairs.
        static func anchors(_ ia: [Int], _ x: Range<Int>, _ ib: [Int], _ y: Range<Int>, _ ids: Int) -> [(Int, Int)] {
            // Per token id: occurrences in x and y (capped at 2) and the last place seen.
            var countA = [UInt8](repeating: 0, count: ids), countB = [UInt8](repeating: 0, count: ids)
            var placeA = [Int](repeating: 0, count: ids)
            for i in x {
                let t = ia[i]
                if countA[t] < 2 { countA[t] += 1 }
                placeA[t] = i
            }
            for j in y where countB[ib[j]] < 2 { countB[ib[j]] += 1 }
            // Candidates in new-text order, with their old index.
            var pairs: [(Int, Int)] = []
            for j in y {
                let t = ib[j]
                if countA[t] == 1 && countB[t] == 1 { pairs.append((placeA[t], j)) }
            }
            if pairs.isEmpty { return [] }
            // Longest increasing subsequence of old indices.
            var tails: [Int] = []      // index into pairs of the smallest tail of each length
            var back = [Int](repeating: -1, count: pairs.count)
            for (k, p) in pairs.enumerated() {
                var lo = 0, hi = tails.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if pairs[tails[mid]].0 < p.0 { lo = mid + 1 } else { hi = mid }
                }
                if lo > 0 { back[k] = tails[lo - 1] }
                if lo == tails.count { tails.append(k) } else { tails[lo] = k }
            }
            var out: [(Int, Int)] = []
            var k = tails.last!
            while k >= 0 {
                out.append(pairs[k])
                k = back[k]
            }
            return out.reversed()
        }
    }

    /// The bytes covered by tokens `r` of a non-empty token list; for an empty token range,
    /// the position before token `r.lowerBound` (or the end of the last token).
    fileprivate static func span(_ tokens: [Range<Int>], _ r: Range<Int>) -> Range<Int> {
        if r.isEmpty {
            let at = r.lowerBound < tokens.count ? tokens[r.lowerBound].lowerBound : tokens[tokens.count - 1].upperBound
            return at..<at
        }
        return tokens[r.lowerBound].lowerBound..<tokens[r.upperBound - 1].upperBound
    }

    fileprivate struct Interner {
        var ids: [ArraySlice<UInt8>: Int] = [:]
        var count: Int { ids.count }
        mutating func id(_ s: ArraySlice<UInt8>) -> Int {
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
            // Only diagonals -d...d matter at step d: keep just those.
            trace.append(Array(v[(offset - d)...(offset + d)]))
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
            } else if k == -d || (k != d && vd[d + k - 1] < vd[d + k + 1]) {
                prevK = k + 1
            } else {
                prevK = k - 1
            }
            let prevX = d == 0 ? 0 : vd[d + prevK]
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
