import BundleSyncCore

/// The merge state of one `--json` cell: last-writer-wins registers per object path
/// (`bundlesync-format(5)`, "JSON state").
///
/// Each path (a list of object keys from the root) has two registers: the *leaf* register
/// holds the latest whole value written at the path (a scalar or an array) or its removal;
/// the *object* register holds the latest time the path was written as an object. A write
/// anywhere under a path also counts as an object write at that path. The document shown is
/// a function of the registers alone:
///
/// - a path whose latest leaf write is newer than every object write at or under it shows
///   that leaf (or is absent, for a removal);
/// - otherwise it is an object, showing only members written after its latest leaf write,
///   so a value or removal written at a path hides everything older beneath it, and a
///   later write beneath brings the key back with just that write.
///
/// Registers merge by taking the later write, (HLC, replica id) ordered, so states merge in
/// any order, any number of times, to the same document. A delta is a state holding just
/// the registers one write set.
package struct JSONDocument: Equatable {
    package static func == (a: JSONDocument, b: JSONDocument) -> Bool { a.nodes == b.nodes }

    package struct Stamp: Comparable, Hashable {
        package var hlc: UInt64
        package var replica: ReplicaID

        package static func < (a: Stamp, b: Stamp) -> Bool {
            a.hlc != b.hlc ? a.hlc < b.hlc : a.replica < b.replica
        }

        package init(hlc: UInt64, replica: ReplicaID) {
            self.hlc = hlc
            self.replica = replica
        }
    }

    package enum Leaf: Equatable {
        case removed
        /// The canonical JSON text of a scalar or an array.
        case value([UInt8])
    }

    package struct Node: Equatable {
        package var leaf: (stamp: Stamp, leaf: Leaf)?
        package var object: Stamp?

        package static func == (a: Node, b: Node) -> Bool {
            a.object == b.object && a.leaf?.stamp == b.leaf?.stamp && a.leaf?.leaf == b.leaf?.leaf
        }

        package init(leaf: (stamp: Stamp, leaf: Leaf)? = nil, object: Stamp? = nil) {
            self.leaf = leaf
            self.object = object
        }
    }

    package typealias Path = [[UInt8]]

    package var nodes: [Path: Node] = [:]
    /// The latest stamp of the registers collected from this document (0: none), sent with
    /// the whole state (a snapshot's) so that its receivers drop what was collected. See
    /// ``collect(below:)``.
    package var collectedBelow: UInt64 = 0
    /// Kept in the stored state only: paths the cell's next write removes, because a value
    /// set there was ignored as late here (see ``mergeLate(_:)``).
    package var unsentRemovals: [Path] = []

    package var isEmpty: Bool { nodes.isEmpty }

    // MARK: - Merging

    package mutating func merge(_ other: JSONDocument) {
        for (path, n) in other.nodes {
            var mine = nodes[path] ?? Node()
            if let l = n.leaf, mine.leaf.map({ l.stamp > $0.stamp }) ?? true { mine.leaf = l }
            if let o = n.object, mine.object.map({ o > $0 }) ?? true { mine.object = o }
            nodes[path] = mine
        }
    }

    mutating func setLeaf(_ path: Path, _ leaf: Leaf, _ stamp: Stamp) {
        nodes[path, default: Node()].leaf = (stamp, leaf)
    }

    private mutating func setObject(_ path: Path, _ stamp: Stamp) {
        nodes[path, default: Node()].object = stamp
    }

    // MARK: - The document shown

    /// The document the registers describe; nil when they describe none.
    package var document: JSONValue? {
        let tree = Tree(nodes)
        return tree.render(tree.root, cutoff: nil)
    }

    /// The registers arranged as a tree, with the newest write at or under each path.
    private final class Tree {
        package final class Entry {
            package var node = Node()
            package var children: [[UInt8]: Entry] = [:]
            /// The newest stamp strictly under this path, or of its object register.
            package var newestBelow: Stamp?
        }
        package let root = Entry()

        package init(_ nodes: [Path: Node]) {
            for (path, node) in nodes {
                var e = root
                for k in path {
                    if let c = e.children[k] { e = c } else {
                        let c = Entry()
                        e.children[k] = c
                        e = c
                    }
                }
                e.node = node
            }
            _ = newest(root)
        }

        /// Fills `newestBelow` and returns the newest stamp at or under `e`.
        private func newest(_ e: Entry) -> Stamp? {
            var below = e.node.object
            for c in e.children.values {
                if let s = newest(c) { below = max(below ?? s, s) }
            }
            e.newestBelow = below
            if let l = e.node.leaf?.stamp { return max(below ?? l, l) }
            return below
        }

        package func render(_ e: Entry, cutoff: Stamp?) -> JSONValue? {
            let leaf = e.node.leaf.flatMap { l in cutoff.map { l.stamp > $0 } ?? true ? l : nil }
            let object = e.newestBelow.flatMap { o in cutoff.map { o > $0 } ?? true ? o : nil }
            if let leaf, object.map({ leaf.stamp > $0 }) ?? true {
                switch leaf.leaf {
                case .removed: return nil
                case .value(let text): return JSONValue.parse(text)
                }
            }
            guard object != nil else { return nil }
            let inner = [cutoff, e.node.leaf?.stamp].compactMap { $0 }.max()
            var members: [(key: [UInt8], value: JSONValue)] = []
            for (k, c) in e.children {
                if let v = render(c, cutoff: inner) { members.append((k, v)) }
            }
            members.sort { $0.key.lexicographicallyPrecedes($1.key) }
            return .object(members)
        }
    }

    // MARK: - Local edits

    /// Turns the shown document into `new` as one write, returning the delta that does it.
    package mutating func edit(to new: JSONValue, stamp: Stamp) throws -> JSONDocument {
        var delta = JSONDocument()
        Self.diff([], document, new, stamp, into: &delta)
        // A value ignored here as late is removed where it was taken in: under an object of
        // the document, where a removal changes nothing else that is shown.
        for path in unsentRemovals where delta.nodes[path] == nil && !path.isEmpty {
            if case .object(let members)? = new.value(at: Array(path.dropLast())), !members.contains(where: { $0.key == path.last! }) {
                delta.setLeaf(path, .removed, stamp)
            }
        }
        unsentRemovals = []
        merge(delta)
        guard document == new else {
            throw BundleSyncError.failure("internal error: a JSON edit did not reproduce the written document")
        }
        return delta
    }

    private static func diff(_ path: Path, _ old: JSONValue?, _ new: JSONValue?, _ stamp: Stamp, into delta: inout JSONDocument) {
        guard let new else {
            if old != nil { delta.setLeaf(path, .removed, stamp) }
            return
        }
        if case .object(let n) = new {
            if case .object(let o)? = old {
                var oldMembers: [[UInt8]: JSONValue] = [:]
                for m in o { oldMembers[m.key] = m.value }
                var newKeys = Set<[UInt8]>()
                for m in n {
                    newKeys.insert(m.key)
                    diff(path + [m.key], oldMembers[m.key], m.value, stamp, into: &delta)
                }
                for m in o where !newKeys.contains(m.key) {
                    delta.setLeaf(path + [m.key], .removed, stamp)
                }
            } else {
                write(path, new, stamp, into: &delta)
            }
            return
        }
        if old != new { delta.setLeaf(path, .value(new.canonical), stamp) }
    }

    private static func write(_ path: Path, _ value: JSONValue, _ stamp: Stamp, into delta: inout JSONDocument) {
        if case .object(let members) = value {
            delta.setObject(path, stamp)
            for m in members { write(path + [m.key], m.value, stamp, into: &delta) }
        } else {
            delta.setLeaf(path, .value(value.canonical), stamp)
        }
    }

    /// The state a column switched to `--json` starts from: the value as one write stamped
    /// with the cell's clock, so replicas holding the same value derive the same state.
    package static func seed(_ value: JSONValue, stamp: Stamp) -> JSONDocument {
        var d = JSONDocument()
        write([], value, stamp, into: &d)
        return d
    }

    // MARK: - Encoding

    private enum Kind: UInt8 {
        case removed = 0, value = 1, object = 2
    }

    private static func precedes(_ a: Path, _ b: Path) -> Bool {
        a.lexicographicallyPrecedes(b) { $0.lexicographicallyPrecedes($1) }
    }

    package func encoded() -> [UInt8] {
        var table = ReplicaTable()
        var body = ByteWriter()
        var entries = 0
        for (path, node) in nodes.sorted(by: { Self.precedes($0.key, $1.key) }) {
            var items: [(Kind, [UInt8]?, Stamp)] = []
            if let l = node.leaf {
                switch l.leaf {
                case .removed: items.append((.removed, nil, l.stamp))
                case .value(let text): items.append((.value, text, l.stamp))
                }
            }
            if let o = node.object { items.append((.object, nil, o)) }
            for (kind, text, stamp) in items {
                entries += 1
                body.varint(path.count)
                path.forEach { body.lengthPrefixed($0) }
                body.u8(kind.rawValue)
                if let text { body.lengthPrefixed(text) }
                body.varint(table.index(stamp.replica))
                body.varint(stamp.hlc)
            }
        }
        // A whole state whose removals were collected ends with its collected-below time.
        if collectedBelow > 0 { body.varint(collectedBelow) }
        var counted = ByteWriter(capacity: body.bytes.count + 8)
        counted.varint(entries)
        counted.raw(body.bytes)
        return table.encoded(before: counted.bytes)
    }

    /// Decodes and validates a JSON state or delta.
    package static func decode(_ bytes: [UInt8]) throws -> JSONDocument {
        var r = ByteReader(bytes)
        let table = try ReplicaTable.decode(from: &r, kind: "JSON")
        let count = try r.count("JSON entry count", limit: r.remaining / 4)
        var doc = JSONDocument()
        var last: (Path, UInt8)?
        for _ in 0..<count {
            let depth = try r.count("JSON path length", limit: min(JSONValue.maxDepth, r.remaining))
            var path: Path = []
            for _ in 0..<depth {
                let k = try r.lengthPrefixed("JSON key", limit: Limits.maxValueBytes)
                guard UTF8Scalars.isValid(k) else { throw BundleSyncError.badData("a JSON key is not valid UTF-8") }
                path.append(k)
            }
            let raw = try r.u8("JSON entry kind")
            guard let kind = Kind(rawValue: raw) else { throw BundleSyncError.badData("unknown JSON entry kind \(raw)") }
            if let (lp, lk) = last {
                guard precedes(lp, path) || (lp == path && lk < raw) else {
                    throw BundleSyncError.badData("JSON state entries are out of order")
                }
            }
            last = (path, raw)
            var text: [UInt8]?
            if kind == .value {
                let t = try r.lengthPrefixed("JSON value", limit: Limits.maxValueBytes)
                guard let v = JSONValue.parse(t), v.canonical == t else {
                    throw BundleSyncError.badData("a JSON state holds a value that is not canonical JSON")
                }
                if case .object = v { throw BundleSyncError.badData("a JSON state holds an object as a leaf value") }
                text = t
            }
            let replica = try table.replica(from: &r, kind: "JSON")
            let hlc = try r.varint("JSON write HLC")
            guard hlc <= HLC.maximum.rawValue else { throw BundleSyncError.badData("a JSON write HLC is out of range: later than \(HLC.maximum), the latest time a bundle may carry") }
            let stamp = Stamp(hlc: hlc, replica: replica)
            switch kind {
            case .removed:
                if doc.nodes[path]?.leaf != nil { throw BundleSyncError.badData("a JSON path has two leaf writes") }
                doc.setLeaf(path, .removed, stamp)
            case .value:
                if doc.nodes[path]?.leaf != nil { throw BundleSyncError.badData("a JSON path has two leaf writes") }
                doc.setLeaf(path, .value(text!), stamp)
            case .object: doc.setObject(path, stamp)
            }
        }
        if r.remaining > 0 {
            doc.collectedBelow = try r.varint("JSON collected-below HLC")
            guard doc.collectedBelow > 0, doc.collectedBelow <= HLC.maximum.rawValue else {
                throw BundleSyncError.badData("a JSON state gives a collected-below time out of range")
            }
        }
        try r.expectEnd("the JSON state")
        return doc
    }

    package init(nodes: [Path: Node] = [:]) {
        self.nodes = nodes
    }
}
