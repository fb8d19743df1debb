import BundleSyncCore

extension TextSequence {
    // MARK: - Encoding

    package func encoded() -> [UInt8] {
        var table = ReplicaTable()
        func index(_ r: ReplicaID) -> Int { table.index(r) }
        var body = ByteWriter(capacity: 64 + runs.reduce(0) { $0 + $1.bytes.count + 24 })
        body.varint(runs.count)
        for r in runs {
            body.varint(index(r.replica))
            body.varint(r.hlc)
            body.varint(r.offset)
            body.varint(r.length)
            if let p = r.parent {
                if p.hlc == r.hlc && p.replica == r.replica && r.offset > 0 && p.offset == r.offset - 1 {
                    body.u8(1)
                } else {
                    body.u8(2)
                    body.varint(index(p.replica))
                    body.varint(p.hlc)
                    body.varint(p.offset)
                }
            } else {
                body.u8(0)
            }
            body.u8(r.deleted ? 1 : 0)
            if !r.deleted { body.lengthPrefixed(r.bytes) }
        }
        body.varint(deletions.count)
        for d in deletions {
            body.varint(index(d.first.replica))
            body.varint(d.first.hlc)
            body.varint(d.first.offset)
            body.varint(d.length)
        }
        return table.encoded(before: body.bytes)
    }

    /// Decodes and validates a text state or delta.
    package static func decode(_ bytes: [UInt8]) throws -> TextSequence {
        var r = ByteReader(bytes)
        let table = try ReplicaTable.decode(from: &r, kind: "text")
        func replica() throws -> ReplicaID { try table.replica(from: &r, kind: "text") }
        func hlc() throws -> UInt64 {
            let h = try r.varint("text write HLC")
            guard h <= HLC.maximum.rawValue else { throw BundleSyncError.badData("a text write HLC is out of range: later than \(HLC.maximum), the latest time a bundle may carry") }
            return h
        }
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
            seq.runs.append(Run(hlc: h, replica: rep, offset: off, length: length, parent: parent, deleted: flags & 1 == 1, bytes: content))
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

    package init(runs: [Run] = [], deletions: [Deletion] = []) {
        self.runs = runs
        self.deletions = deletions
    }
}
