import Foundation

/// A database that bundlesync syncs: the application's tables plus the bookkeeping that
/// makes them a replica.
///
/// A `Replica` owns one connection. Every operation that writes runs in one IMMEDIATE
/// transaction with capture switched off for its own writes, so the application can keep
/// writing from other connections and never sees half of an import.
public final class Replica {
    public let db: Database
    public internal(set) var identity: Identity
    public var id: ReplicaID { identity.id }
    public internal(set) var name: String
    /// This replica's own row in `_bundlesync_replicas`.
    internal(set) var selfIndex: Int64
    private(set) var tables: [String: TrackedTable] = [:]
    /// Per-row statement texts, built once per table.
    var sqlTexts = SQLTexts()
    /// See ``loadClock(_:key:)``.
    var readAhead: ReadAhead?
    /// Receives progress of long operations (sealing, export, import).
    public var progress: ProgressHandler?
    private var idsByIndex: [Int64: ReplicaID] = [:]
    private var indexByID: [ReplicaID: Int64] = [:]

    private init(db: Database, identity: Identity, name: String, selfIndex: Int64) {
        self.db = db
        self.identity = identity
        self.name = name
        self.selfIndex = selfIndex
    }

    // MARK: - Opening

    /// Makes `path` a replica, creating the file if it is missing. Idempotent.
    ///
    /// - Returns: The replica and whether it was created just now.
    public static func initialize(path: String, name: String?) throws -> (Replica, created: Bool) {
        if let name { try validateName(name) }
        let db = try Database(path: path, create: true)
        if try isReplica(db) {
            let r = try open(db)
            if let name, name != r.name {
                throw BundleSyncError.usage("'\(path)' is already the replica '\(r.name)'; its name cannot change to '\(name)'")
            }
            return (r, false)
        }
        let mode = try db.scalar("PRAGMA journal_mode=WAL")
        guard mode == .text("wal") else {
            throw BundleSyncError.failure("cannot switch '\(path)' to WAL mode")
        }
        let identity = Identity()
        let chosen = name ?? "replica-\(identity.id.hex.prefix(8))"
        try validateName(chosen)
        try db.writeTransaction {
            try db.execute(Bookkeeping.createSQL)
            for (k, v): (String, SQLValue) in [
                ("schema_version", .integer(Int64(Bookkeeping.schemaVersion))),
                ("private_key", .blob(identity.privateKeyBytes)),
                ("name", .text(chosen)),
                ("hlc", .integer(0)),
                ("created", .integer(HLC.nowMilliseconds())),
                ("home", .text(Home.current(of: path))),
                ("trust_only", .integer(0)),
            ] {
                try db.run("INSERT INTO _bundlesync_meta(key, value) VALUES (?, ?)", [.text(k), v])
            }
            try db.run("INSERT INTO _bundlesync_replicas(id, public_key, name, trusted) VALUES (?, ?, ?, 1)",
                       [.blob(identity.id.bytes), .blob(identity.publicKey), .text(chosen)])
        }
        return (try open(db), true)
    }

    /// Opens an existing replica.
    ///
    /// - Throws: `.noInput` if the file is missing, `.usage` if it is not a replica.
    public static func open(path: String) throws -> Replica {
        let db = try Database(path: path)
        guard try isReplica(db) else {
            throw BundleSyncError.usage("'\(path)' is not a bundlesync replica", hint: "run 'bundlesync init \(path)' first")
        }
        return try open(db)
    }

    static func isReplica(_ db: Database) throws -> Bool {
        try db.scalar("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_bundlesync_meta'") != nil
    }

    private static func open(_ db: Database) throws -> Replica {
        try db.execute("PRAGMA synchronous = FULL")
        guard case .integer(let version)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'schema_version'") else {
            throw BundleSyncError.failure("'\(db.path)' has damaged bundlesync bookkeeping (no schema version)")
        }
        guard version <= Int64(Bookkeeping.schemaVersion) else {
            throw BundleSyncError.failure("'\(db.path)' was made by a newer bundlesync (bookkeeping version \(version))",
                                          hint: "upgrade bundlesync on this device")
        }
        guard case .blob(let key)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'private_key'") else {
            throw BundleSyncError.failure("'\(db.path)' has damaged bundlesync bookkeeping (no key)")
        }
        let identity = try Identity(privateKeyBytes: key)
        guard case .text(let nameBytes)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'name'"),
              case .integer(let idx)? = try db.scalar("SELECT idx FROM _bundlesync_replicas WHERE id = ?", [.blob(identity.id.bytes)]) else {
            throw BundleSyncError.failure("'\(db.path)' has damaged bundlesync bookkeeping (no identity)")
        }
        let r = Replica(db: db, identity: identity, name: String(decoding: nameBytes, as: UTF8.self), selfIndex: idx)
        try r.loadTables()
        return r
    }

    static func validateName(_ name: String) throws {
        guard ReplicaName.isValid(name) else {
            throw BundleSyncError.usage("'\(shown(name))' is not a valid replica name",
                                        hint: "use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'")
        }
    }

    func loadTables() throws {
        tables = [:]
        sqlTexts.removeAll()
        let s = try db.statement("SELECT id, schema FROM _bundlesync_tables")
        while try s.step() {
            let id = s.int(0)
            var r = ByteReader(s.bytes(1) ?? [])
            let schema = try TableSchema.decode(from: &r)
            let collations = schema.keyColumns.map { db.collation(table: schema.name, column: $0) ?? "BINARY" }
            tables[schema.name] = TrackedTable(id: id, schema: schema, keyCollations: collations)
        }
    }

    public var trackedTables: [TrackedTable] { tables.values.sorted { $0.name < $1.name } }

    // MARK: - Replicas

    /// The local index of a replica, adding it (with its key) the first time it is seen.
    func index(of id: ReplicaID, publicKey: [UInt8]? = nil) throws -> Int64 {
        if let i = indexByID[id] {
            if let publicKey { try db.run("UPDATE _bundlesync_replicas SET public_key = ? WHERE idx = ? AND public_key IS NULL", [.blob(publicKey), .integer(i)]) }
            return i
        }
        if case .integer(let i)? = try db.scalar("SELECT idx FROM _bundlesync_replicas WHERE id = ?", [.blob(id.bytes)]) {
            remember(i, id)
            return try index(of: id, publicKey: publicKey)
        }
        try db.run("INSERT INTO _bundlesync_replicas(id, public_key) VALUES (?, ?)",
                   [.blob(id.bytes), publicKey.map { .blob($0) } ?? .null])
        guard case .integer(let idx)? = try db.scalar("SELECT last_insert_rowid()") else {
            throw BundleSyncError.failure("cannot record replica \(id.short)")
        }
        remember(idx, id)
        return idx
    }

    /// The replica id behind a local index.
    func replicaID(at index: Int64) throws -> ReplicaID {
        if let id = idsByIndex[index] { return id }
        guard case .blob(let b)? = try db.scalar("SELECT id FROM _bundlesync_replicas WHERE idx = ?", [.integer(index)]),
              let id = ReplicaID(bytes: b) else {
            throw BundleSyncError.failure("bookkeeping names an unknown replica index \(index)")
        }
        remember(index, id)
        return id
    }

    private func remember(_ i: Int64, _ id: ReplicaID) {
        idsByIndex[i] = id
        indexByID[id] = i
    }

    func publicKey(of id: ReplicaID) throws -> [UInt8]? {
        guard case .blob(let k)? = try db.scalar("SELECT public_key FROM _bundlesync_replicas WHERE id = ?", [.blob(id.bytes)]) else { return nil }
        return k
    }

    /// What this replica holds: for each origin, how many of its batches, contiguously.
    public func vector() throws -> VersionVector {
        var v = VersionVector()
        let s = try db.statement("SELECT id, seq FROM _bundlesync_replicas WHERE seq > 0")
        while try s.step() {
            if let id = ReplicaID(bytes: s.bytes(0) ?? []) { v[id] = UInt64(s.int(1)) }
        }
        return v
    }

    /// The head of an origin's contiguous history here: its number and hash.
    func head(of origin: Int64) throws -> (seq: UInt64, hash: Digest32) {
        let s = try db.statement("SELECT seq, head FROM _bundlesync_replicas WHERE idx = ?")
        try s.bind([.integer(origin)])
        guard try s.step() else { return (0, .zero) }
        let seq = UInt64(s.int(0))
        let hash = s.bytes(1).flatMap(Digest32.init(bytes:)) ?? .zero
        s.reset()
        return (seq, hash)
    }

    // MARK: - Clock

    /// The replica's hybrid logical clock: at least every timestamp issued or seen.
    var clock: HLC {
        get throws {
            guard case .integer(let v)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'hlc'") else { return .zero }
            return HLC(rawValue: UInt64(bitPattern: v))
        }
    }

    func advanceClock(to hlc: HLC) throws {
        try db.run("UPDATE _bundlesync_meta SET value = max(value, ?) WHERE key = 'hlc'", [.integer(Int64(bitPattern: hlc.rawValue))])
    }

    // MARK: - Own transactions

    /// Runs `body` in one write transaction with capture off, so the replica's own writes to
    /// tracked tables are never logged as local changes.
    func withoutCapture<T>(_ body: () throws -> T) throws -> T {
        try db.writeTransaction {
            try db.run("INSERT INTO _bundlesync_capture_off(x) VALUES (1)")
            let result = try body()
            try db.run("DELETE FROM _bundlesync_capture_off")
            return result
        }
    }
}
