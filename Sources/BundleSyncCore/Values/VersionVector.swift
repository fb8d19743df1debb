/// How far each replica's history is known: replica id to the number of its batches held,
/// counted contiguously from 1.
public struct VersionVector: Hashable, Sendable {
    public private(set) var entries: [ReplicaID: UInt64]

    public init(_ entries: [ReplicaID: UInt64] = [:]) {
        self.entries = entries.filter { $0.value > 0 }
    }

    public subscript(id: ReplicaID) -> UInt64 {
        get { entries[id] ?? 0 }
        set { entries[id] = newValue == 0 ? nil : newValue }
    }

    /// Entries in id order, the canonical order for encoding.
    public var sorted: [(ReplicaID, UInt64)] {
        entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// The pointwise maximum.
    public func merged(with other: VersionVector) -> VersionVector {
        var out = self
        for (id, n) in other.entries where n > out[id] { out[id] = n }
        return out
    }

    /// The pointwise minimum over the union of ids (a missing id counts as 0).
    public func meet(_ other: VersionVector) -> VersionVector {
        var out = VersionVector()
        for (id, n) in entries { out[id] = min(n, other[id]) }
        return out
    }

    /// Whether every entry of `other` is covered by this vector.
    public func dominates(_ other: VersionVector) -> Bool {
        other.entries.allSatisfy { self[$0.key] >= $0.value }
    }

    public var total: UInt64 { entries.values.reduce(0, +) }

    package func encode(into w: inout ByteWriter) {
        let s = sorted
        w.varint(s.count)
        for (id, n) in s {
            w.raw(id.bytes)
            w.varint(n)
        }
    }

    package static func decode(from r: inout ByteReader, what: String) throws -> VersionVector {
        let n = try r.count("\(what) entry count", limit: min(Limits.maxReplicas, r.remaining / (ReplicaID.byteCount + 1)))
        var v = VersionVector()
        var previous: ReplicaID?
        for _ in 0..<n {
            let id = try r.readReplicaID("\(what) replica id")
            if let p = previous, !(p < id) { throw BundleSyncError.badData("\(what) is not in canonical order") }
            previous = id
            let seq = try r.counter("\(what) sequence number")
            guard seq > 0 else { throw BundleSyncError.badData("\(what) has a zero entry") }
            v[id] = seq
        }
        return v
    }

    /// The JSON form used by `status --json` and `--since` files: hex id to number.
    public var json: [String: UInt64] {
        Dictionary(uniqueKeysWithValues: entries.map { ($0.key.hex, $0.value) })
    }
}
