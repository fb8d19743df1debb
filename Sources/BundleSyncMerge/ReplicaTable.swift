import BundleSyncCore

/// The replica ids a text or JSON state names, listed once at its start and referred to by
/// index (`bundlesync-format(5)`, "Text state", "JSON state").
package struct ReplicaTable {
    package private(set) var ids: [ReplicaID] = []
    private var slots: [ReplicaID: Int] = [:]

    /// The index of `id`, adding it to the table when it is new.
    package mutating func index(_ id: ReplicaID) -> Int {
        if let s = slots[id] { return s }
        ids.append(id)
        slots[id] = ids.count - 1
        return ids.count - 1
    }

    /// The table followed by `body`.
    package func encoded(before body: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: body.count + 4 + ids.count * ReplicaID.byteCount)
        w.varint(ids.count)
        ids.forEach { w.raw($0.bytes) }
        w.raw(body)
        return w.bytes
    }

    /// Reads the table at the start of a state; `kind` ("text", "JSON") names it in messages.
    package static func decode(from r: inout ByteReader, kind: String) throws -> ReplicaTable {
        let n = try r.count("\(kind) replica count", limit: min(Limits.maxReplicas, r.remaining / ReplicaID.byteCount))
        var table = ReplicaTable()
        for _ in 0..<n {
            let id = ReplicaID(bytes: try r.raw(ReplicaID.byteCount, "\(kind) replica id"))!
            guard table.slots[id] == nil else { throw BundleSyncError.badData("a \(kind) state names a replica twice") }
            _ = table.index(id)
        }
        return table
    }

    /// Reads an index into the table and returns the replica it names.
    package func replica(from r: inout ByteReader, kind: String) throws -> ReplicaID {
        guard !ids.isEmpty else { throw BundleSyncError.badData("a \(kind) state names no replica") }
        return ids[try r.count("\(kind) replica index", limit: ids.count - 1)]
    }

    package init(ids: [ReplicaID] = []) {
        self.ids = ids
    }
}
