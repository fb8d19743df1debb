import BundleSyncCore

// Text states and deltas have two encodings (`bundlesync-format(5)`, "Text state"):
//
// - version 1, the replicated growable array of the first release: runs with a parent each.
//   It is still read, from golden bundles, relayed batches and cells stored by that release;
//   each of its runs becomes a right child of its parent, with the end of the text as right
//   origin, which puts every run where version 1 put it.
// - version 2, the Fugue tree, which this release writes: it starts with the bytes 0 and 2,
//   which no version 1 encoding does (replica count 0 there leaves nothing to refer to).
extension TextSequence {
    /// The bytes every version 2 text state starts with.
    package static let version2Marker: [UInt8] = [0, 2]

    private enum RunFlag {
        static let tombstone: UInt8 = 1
        /// The run is of the same write as the run before it.
        static let sameWrite: UInt8 = 2
        /// The offset is given; otherwise the run starts where the write's previous run ended.
        static let offsetGiven: UInt8 = 4
        /// Bits 3-5: where the first scalar hangs.
        static let anchorShift: UInt8 = 3
        /// Bits 6-7: its right origin, for a run on the right side.
        static let originShift: UInt8 = 6
    }

    private enum Anchor: UInt8 {
        /// Right of the start of the text.
        case start = 0
        /// Right of the scalar before it in the same write.
        case continued = 1
        /// Right of the scalar given.
        case rightOf = 2
        /// Left of the scalar given.
        case leftOf = 3
        /// Right of the last scalar of the run before it in the list.
        case rightOfPrevious = 4
        /// Left of the first scalar of the run after it in the list.
        case leftOfNext = 5
    }

    private enum Origin: UInt8 {
        /// The end of the text.
        case end = 0
        /// The right origin of the write's previous run in the list.
        case asBefore = 1
        /// Given.
        case given = 2
        /// The first scalar of the run after it in the list.
        case next = 3
    }

    /// An HLC difference: its multiples of 2^16 (whole milliseconds) and whether a remainder
    /// follows, then the remainder.
    private static func writeHLCDelta(_ d: UInt64, into w: inout ByteWriter) {
        let rest = d & 0xFFFF
        w.varint((d >> 16) << 1 | (rest != 0 ? 1 : 0))
        if rest != 0 { w.varint(rest) }
    }

    private static func readHLCDelta(from r: inout ByteReader) throws -> UInt64 {
        let head = try r.varint("text write HLC")
        guard head >> 1 <= HLC.maximum.rawValue >> 16 else { throw BundleSyncError.badData("a text write HLC is out of range") }
        var d = (head >> 1) << 16
        if head & 1 == 1 {
            let rest = try r.varint("text write HLC")
            guard rest > 0 && rest <= 0xFFFF else { throw BundleSyncError.badData("a text write HLC remainder is out of range") }
            d |= rest
        }
        return d
    }

    // MARK: - Encoding

    /// The version 2 encoding.
    package func encoded() -> [UInt8] {
        // Writes, ordered by (HLC, replica), each referred to by its place in that order.
        var writeSet = Set<WriteKey>()
        for r in runs {
            writeSet.insert(r.write)
            if let p = r.parent { writeSet.insert(p.write) }
            if let o = r.rightOrigin { writeSet.insert(o.write) }
        }
        for d in deletions { writeSet.insert(d.first.write) }
        let writes = writeSet.sorted()
        var slot: [WriteKey: Int] = [:]
        for (i, w) in writes.enumerated() { slot[w] = i }
        var table = ReplicaTable()
        for w in writes { _ = table.index(w.replica) }

        var body = ByteWriter(capacity: 64 + writes.count * 6 + runs.reduce(0) { $0 + $1.bytes.count + 8 })
        var head = ByteWriter(capacity: 0)
        head.varint(writes.count)
        var previousHLC: UInt64 = 0
        for w in writes {
            head.varint(table.index(w.replica))
            Self.writeHLCDelta(w.hlc - previousHLC, into: &head)
            previousHLC = w.hlc
        }
        func id(_ u: UnitID) {
            body.varint(slot[u.write]!)
            body.varint(u.offset)
        }
        body.varint(runs.count)
        var previous: WriteKey?
        var nextOffset: [WriteKey: UInt64] = [:]
        var lastOrigin: [WriteKey: UnitID?] = [:]
        for (i, r) in runs.enumerated() {
            let before: Run? = i > 0 ? runs[i - 1] : nil
            let after: Run? = i + 1 < runs.count ? runs[i + 1] : nil
            var flags: UInt8 = r.deleted ? RunFlag.tombstone : 0
            let same = previous == r.write
            if same { flags |= RunFlag.sameWrite }
            let offsetGiven = r.offset != nextOffset[r.write, default: 0]
            if offsetGiven { flags |= RunFlag.offsetGiven }
            let anchor: Anchor
            if r.side == .left {
                anchor = r.parent == after?.first ? .leftOfNext : .leftOf
            } else if let p = r.parent {
                if p.write == r.write && p.offset + 1 == r.offset {
                    anchor = .continued
                } else {
                    anchor = p == before?.last ? .rightOfPrevious : .rightOf
                }
            } else {
                anchor = .start
            }
            flags |= anchor.rawValue << RunFlag.anchorShift
            var origin = Origin.end
            if r.side == .right, let o = r.rightOrigin {
                if let last = lastOrigin[r.write], last == o {
                    origin = .asBefore
                } else {
                    origin = o == after?.first ? .next : .given
                }
            }
            flags |= origin.rawValue << RunFlag.originShift
            body.u8(flags)
            if !same { body.varint(slot[r.write]!) }
            if offsetGiven { body.varint(r.offset) }
            body.varint(r.length)
            if anchor == .rightOf || anchor == .leftOf { id(r.parent!) }
            if origin == .given { id(r.rightOrigin!) }
            if !r.deleted { body.lengthPrefixed(r.bytes) }
            previous = r.write
            nextOffset[r.write] = r.end
            // As the reader sees it: an origin read from the next run is not repeated.
            lastOrigin[r.write] = anchor == .leftOfNext || origin == .next ? .some(nil) : r.rightOrigin
        }
        body.varint(deletions.count)
        for d in deletions {
            id(d.first)
            body.varint(d.length)
        }
        // A whole state whose tombstones were collected ends with its collected-below time.
        if collectedBelow > 0 { body.varint(collectedBelow) }
        // Marker, replica table, writes, then the runs and deletes.
        var out = ByteWriter(capacity: body.bytes.count + head.bytes.count + 4 + table.ids.count * ReplicaID.byteCount)
        out.raw(Self.version2Marker)
        out.raw(table.encoded(before: head.bytes))
        out.raw(body.bytes)
        return out.bytes
    }

    // MARK: - Decoding

    /// Decodes and validates a text state or delta, of either version.
    package static func decode(_ bytes: [UInt8]) throws -> TextSequence {
        if bytes.starts(with: version2Marker) { return try decodeVersion2(bytes) }
        return try decodeVersion1(bytes)
    }

    private static func checkedHLC(_ h: UInt64) throws -> UInt64 {
        guard h <= HLC.maximum.rawValue else { throw BundleSyncError.badData("a text write HLC is out of range: later than \(HLC.maximum), the latest time a bundle may carry") }
        return h
    }

    private static func decodeVersion2(_ bytes: [UInt8]) throws -> TextSequence {
        var r = ByteReader(bytes)
        _ = try r.raw(version2Marker.count, "text state version")
        let table = try ReplicaTable.decode(from: &r, kind: "text")
        let writeCount = try r.count("text write count", limit: r.remaining / 2)
        var writes: [WriteKey] = []
        writes.reserveCapacity(writeCount)
        var hlc: UInt64 = 0
        for _ in 0..<writeCount {
            let rep = try table.replica(from: &r, kind: "text")
            let (sum, overflow) = hlc.addingReportingOverflow(try readHLCDelta(from: &r))
            guard !overflow else { throw BundleSyncError.badData("a text write HLC is out of range") }
            hlc = try checkedHLC(sum)
            let w = WriteKey(hlc: hlc, replica: rep)
            if let last = writes.last, !(last < w) { throw BundleSyncError.badData("text writes are not in order") }
            writes.append(w)
        }
        func write() throws -> WriteKey {
            guard !writes.isEmpty else { throw BundleSyncError.badData("a text state names no write") }
            return writes[try r.count("text write index", limit: writes.count - 1)]
        }
        func offset() throws -> UInt64 { UInt64(try r.count("text offset", limit: Limits.maxValueBytes)) }
        func id() throws -> UnitID {
            let w = try write()
            return UnitID(hlc: w.hlc, replica: w.replica, offset: try offset())
        }

        var seq = TextSequence()
        let runCount = try r.count("text run count", limit: r.remaining / 2)
        seq.runs.reserveCapacity(runCount)
        var units = 0
        var previous: WriteKey?
        var nextOffset: [WriteKey: UInt64] = [:]
        var lastOrigin: [WriteKey: UnitID?] = [:]
        // Runs whose parent or right origin is the first scalar of the run after them.
        var pointsToNext: [(run: Int, parent: Bool)] = []
        for i in 0..<runCount {
            let flags = try r.u8("text run flags")
            let w: WriteKey
            if flags & RunFlag.sameWrite != 0 {
                guard let previous else { throw BundleSyncError.badData("the first text run continues no write") }
                w = previous
            } else {
                w = try write()
            }
            let off = flags & RunFlag.offsetGiven != 0 ? try offset() : nextOffset[w, default: 0]
            let length = try r.count("text run length", limit: Limits.maxValueBytes)
            guard length > 0 else { throw BundleSyncError.badData("a text run is empty") }
            units += length
            guard units <= Limits.maxValueBytes else { throw BundleSyncError.badData("a text state is too large") }
            guard let anchor = Anchor(rawValue: (flags >> RunFlag.anchorShift) & 7) else {
                throw BundleSyncError.badData("unknown text anchor kind")
            }
            let origin = Origin(rawValue: flags >> RunFlag.originShift)!
            let side: Side = anchor == .leftOf || anchor == .leftOfNext ? .left : .right
            var parent: UnitID?
            switch anchor {
            case .start: parent = nil
            case .continued:
                guard off > 0 else { throw BundleSyncError.badData("a text run continues nothing") }
                parent = UnitID(hlc: w.hlc, replica: w.replica, offset: off - 1)
            case .rightOf, .leftOf: parent = try id()
            case .rightOfPrevious:
                guard let before = seq.runs.last else { throw BundleSyncError.badData("the first text run follows no run") }
                parent = before.last
            case .leftOfNext:
                guard i + 1 < runCount else { throw BundleSyncError.badData("the last text run precedes no run") }
                pointsToNext.append((i, true))
            }
            var rightOrigin: UnitID?
            if side == .left {
                guard origin == .end else { throw BundleSyncError.badData("a text run on the left side gives a right origin") }
            } else {
                switch origin {
                case .end: rightOrigin = nil
                case .asBefore:
                    guard let before = lastOrigin[w], before != nil else {
                        throw BundleSyncError.badData("a text run repeats a right origin it has none of")
                    }
                    rightOrigin = before
                case .given: rightOrigin = try id()
                case .next:
                    guard i + 1 < runCount else { throw BundleSyncError.badData("the last text run precedes no run") }
                    pointsToNext.append((i, false))
                }
            }
            var content: [UInt8] = []
            let deleted = flags & RunFlag.tombstone != 0
            if !deleted {
                content = try r.lengthPrefixed("text run", limit: min(Limits.maxValueBytes, length * 4))
                guard UTF8Scalars.validCount(content) == length else {
                    throw BundleSyncError.badData("a text run is not \(length) Unicode scalars of valid UTF-8")
                }
            }
            let run = Run(hlc: w.hlc, replica: w.replica, offset: off, length: length, side: side, parent: parent,
                          rightOrigin: rightOrigin, deleted: deleted, bytes: content)
            seq.runs.append(run)
            previous = w
            nextOffset[w] = run.end
            // A right origin taken from the next run is known only once that run is read; a
            // later run of the write cannot repeat it.
            lastOrigin[w] = origin == .next ? .some(nil) : run.rightOrigin
        }
        for (i, isParent) in pointsToNext {
            let next = seq.runs[i + 1].first
            if isParent {
                seq.runs[i].parent = next
                seq.runs[i].rightOrigin = next
            } else {
                seq.runs[i].rightOrigin = next
            }
        }
        let deleteCount = try r.count("text delete count", limit: r.remaining / 3)
        for _ in 0..<deleteCount {
            let first = try id()
            let length = try r.count("text delete length", limit: Limits.maxValueBytes)
            guard length > 0 else { throw BundleSyncError.badData("a text delete is empty") }
            seq.deletions.append(Deletion(first: first, length: length))
        }
        if r.remaining > 0 {
            seq.collectedBelow = try checkedHLC(try r.varint("text collected-below HLC"))
            guard seq.collectedBelow > 0 else { throw BundleSyncError.badData("a text state gives a collected-below time of 0") }
        }
        try r.expectEnd("the text state")
        return seq
    }

    /// Reads the first release's encoding; each run becomes a right child of its parent with
    /// the end of the text as right origin.
    private static func decodeVersion1(_ bytes: [UInt8]) throws -> TextSequence {
        var r = ByteReader(bytes)
        let table = try ReplicaTable.decode(from: &r, kind: "text")
        func replica() throws -> ReplicaID { try table.replica(from: &r, kind: "text") }
        func hlc() throws -> UInt64 { try checkedHLC(try r.varint("text write HLC")) }
        func offset() throws -> UInt64 { UInt64(try r.count("text offset", limit: Limits.maxValueBytes)) }
        var seq = TextSequence()
        let runCount = try r.count("text run count", limit: r.remaining / 6)
        var units = 0
        for _ in 0..<runCount {
            let rep = try replica()
            let h = try hlc()
            let off = try offset()
            let length = try r.count("text run length", limit: Limits.maxValueBytes)
            guard length > 0 else { throw BundleSyncError.badData("a text run is empty") }
            units += length
            guard units <= Limits.maxValueBytes else { throw BundleSyncError.badData("a text state is too large") }
            let parent: UnitID?
            switch try r.u8("text run parent kind") {
            case 0: parent = nil
            case 1:
                guard off > 0 else { throw BundleSyncError.badData("a text run continues nothing") }
                parent = UnitID(hlc: h, replica: rep, offset: off - 1)
            case 2:
                let prep = try replica()
                parent = UnitID(hlc: try hlc(), replica: prep, offset: try offset())
            case let k: throw BundleSyncError.badData("unknown text parent kind \(k)")
            }
            let flags = try r.u8("text run flags")
            guard flags & ~1 == 0 else { throw BundleSyncError.badData("reserved text run flags are set") }
            var content: [UInt8] = []
            if flags & 1 == 0 {
                content = try r.lengthPrefixed("text run", limit: min(Limits.maxValueBytes, length * 4))
                guard UTF8Scalars.validCount(content) == length else {
                    throw BundleSyncError.badData("a text run is not \(length) Unicode scalars of valid UTF-8")
                }
            }
            seq.runs.append(Run(hlc: h, replica: rep, offset: off, length: length, side: .right, parent: parent,
                                rightOrigin: nil, deleted: flags & 1 == 1, bytes: content))
        }
        let deleteCount = try r.count("text delete count", limit: r.remaining / 4)
        for _ in 0..<deleteCount {
            let rep = try replica()
            let first = UnitID(hlc: try hlc(), replica: rep, offset: try offset())
            let length = try r.count("text delete length", limit: Limits.maxValueBytes)
            guard length > 0 else { throw BundleSyncError.badData("a text delete is empty") }
            seq.deletions.append(Deletion(first: first, length: length))
        }
        try r.expectEnd("the text state")
        return seq
    }

    /// The state a column switched to `--text` starts from: the current value as one write,
    /// identified by the cell's clock, so replicas holding the same value at the same clock
    /// derive the same state.
    package static func seed(_ value: [UInt8], hlc: UInt64, replica: ReplicaID) -> TextSequence {
        guard !value.isEmpty else { return TextSequence() }
        return TextSequence(runs: [Run(hlc: hlc, replica: replica, offset: 0, length: UTF8Scalars.count(value),
                                       parent: nil, deleted: false, bytes: value)])
    }
}
