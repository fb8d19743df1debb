import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge

/// A replica's database file: the application's tables plus the bookkeeping that makes them
/// a replica, reached through one connection.
///
/// The store owns the pieces of bookkeeping, each behind a type of its own: the replicas it
/// knows (``replicas``), the tracked tables (``catalog``), row and cell clocks (``clocks``),
/// text and JSON merge states (``cellStates``), writes to the user's rows (``rows``) and the
/// history of batches (``history``). Every operation that writes runs in one IMMEDIATE
/// transaction with capture switched off for its own writes (``withoutCapture(_:)``).
package final class ReplicaStore {
    package let db: Database
    package private(set) var identity: Identity
    /// The replica's X25519 key pair, to which peers encrypt bundles.
    package private(set) var exchange: ExchangeIdentity
    package private(set) var name: String
    /// This replica's own row in `_bundlesync_replicas`.
    package private(set) var selfIndex: Int64
    package let replicas: ReplicaDirectory
    package let catalog: TableCatalog
    package let clocks: ClockStore
    package let cellStates: CellStateStore
    package let rows: RowWriter
    package let history: HistoryStore
    package let held: HeldStore
    /// Warnings for the person at the keyboard, gathered while commands work (rows that
    /// could not be synced, capture that was repaired); the command line prints them.
    package var notices: [String] = []
    /// Messages about late writes a merge dropped (see `CellMerger`), for the import that
    /// met them to report with its bundle.
    package var lateWrites: [String] = []
    /// The stable time of the current write transaction (see `StableTime.swift`).
    let stableCache = StableTimeCache()

    package var id: ReplicaID { identity.id }

    private init(db: Database, identity: Identity, exchange: ExchangeIdentity, name: String, selfIndex: Int64) throws {
        self.db = db
        self.identity = identity
        self.exchange = exchange
        self.name = name
        self.selfIndex = selfIndex
        let texts = SQLTexts()
        replicas = ReplicaDirectory(db: db)
        catalog = try TableCatalog(db: db, texts: texts)
        clocks = ClockStore(db: db, texts: texts)
        cellStates = CellStateStore(db: db, texts: texts)
        rows = RowWriter(db: db, texts: texts)
        held = HeldStore(db: db)
        history = HistoryStore(db: db, replicas: replicas, held: held)
        db.onCommit { [weak self] in try? self?.noteHead() }
        // The stable time holds for one transaction: committed batches are what the next
        // one counts from.
        db.onCommit { [stableCache] in stableCache.reset() }
        db.onRollback { [stableCache] in stableCache.reset() }
        // The identity mirrors `_bundlesync_meta`: a new identity taken in a transaction
        // that rolls back is not taken.
        db.onRollback { [weak self] in try? self?.reloadIdentity() }
    }

    private func reloadIdentity() throws {
        guard case .blob(let key)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'private_key'"),
              case .text(let nameBytes)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'name'") else { return }
        let fresh = try Identity(privateKeyBytes: key)
        guard case .integer(let idx)? = try db.scalar("SELECT idx FROM _bundlesync_replicas WHERE id = ?", [.blob(fresh.id.bytes)]) else { return }
        (identity, name, selfIndex) = (fresh, String(decoding: nameBytes, as: UTF8.self), idx)
    }

    /// The head last written to the ``HeadJournal``.
    private var notedHead: HeadJournal?

    /// This replica's own head, as the ``HeadJournal`` records it.
    package func ownHead() throws -> HeadJournal {
        let head = try replicas.head(of: selfIndex)
        return HeadJournal(id: id, seq: head.seq, hash: head.hash)
    }

    /// Rewrites the ``HeadJournal`` when the replica's own head moved.
    package func noteHead() throws {
        let head = try ownHead()
        guard head != notedHead else { return }
        head.write(for: db.path)
        notedHead = head
    }

    // MARK: - Opening

    /// Makes `path` a replica, creating the file if it is missing. Idempotent.
    ///
    /// - Returns: The store and whether the replica was created just now.
    package static func initialize(path: String, name: String?) throws -> (ReplicaStore, created: Bool) {
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
            throw BundleSyncError(.failure, "cannot switch '\(path)' to WAL mode", database: path)
        }
        let identity = Identity()
        let chosen = name ?? "replica-\(identity.id.hex.prefix(8))"
        try validateName(chosen)
        try db.writeTransaction {
            try db.execute(Bookkeeping.createSQL)
            for (k, v): (String, SQLValue) in [
                ("schema_version", .integer(Int64(Bookkeeping.schemaVersion))),
                ("private_key", .blob(identity.privateKeyBytes)),
                ("exchange_private_key", .blob(ExchangeIdentity().privateKeyBytes)),
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
    package static func open(path: String) throws -> ReplicaStore {
        let db = try Database(path: path)
        guard try isReplica(db) else {
            throw BundleSyncError(.usage, "'\(path)' is not a bundlesync replica", hint: "run 'bundlesync init \(path)' first",
                                  database: path)
        }
        return try open(db)
    }

    private static func isReplica(_ db: Database) throws -> Bool {
        try db.scalar("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_bundlesync_meta'") != nil
    }

    private static func open(_ db: Database) throws -> ReplicaStore {
        try db.execute("PRAGMA synchronous = FULL")
        // > "Foreign key constraints are disabled by default (for backwards compatibility), so
        // > must be enabled separately for each database connection."
        // > (https://www.sqlite.org/foreignkeys.html#fk_enable)
        // Merges apply rows in the order their batches arrive, so a child row can come before
        // its parent; enforcement stays off on bundlesync's own connection, explicitly
        // rather than by relying on the build's default.
        try db.execute("PRAGMA foreign_keys = OFF")
        func damaged(_ what: String) -> BundleSyncError {
            BundleSyncError(.failure, "'\(db.path)' has damaged bundlesync bookkeeping (\(what))", database: db.path)
        }
        guard case .integer(let version)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'schema_version'") else {
            throw damaged("no schema version")
        }
        guard version <= Int64(Bookkeeping.schemaVersion) else {
            throw BundleSyncError(.failure, "'\(db.path)' was made by a newer bundlesync (bookkeeping version \(version))",
                                  hint: "upgrade bundlesync on this device", database: db.path)
        }
        guard case .blob(let key)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'private_key'") else {
            throw damaged("no key")
        }
        let identity = try Identity(privateKeyBytes: key)
        try HistoryStore.createFloors(db)
        guard case .text(let nameBytes)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'name'"),
              case .integer(let idx)? = try db.scalar("SELECT idx FROM _bundlesync_replicas WHERE id = ?", [.blob(identity.id.bytes)]) else {
            throw damaged("no identity")
        }
        return try ReplicaStore(db: db, identity: identity, exchange: try exchangeIdentity(db),
                                name: String(decoding: nameBytes, as: UTF8.self), selfIndex: idx)
    }

    /// The replica's encryption key pair; a replica made before encrypted bundles gets one
    /// the first time it is opened.
    private static func exchangeIdentity(_ db: Database) throws -> ExchangeIdentity {
        let query = "SELECT value FROM _bundlesync_meta WHERE key = 'exchange_private_key'"
        if case .blob(let key)? = try db.scalar(query) { return try ExchangeIdentity(privateKeyBytes: key) }
        try db.writeTransaction {
            try db.run("INSERT OR IGNORE INTO _bundlesync_meta(key, value) VALUES ('exchange_private_key', ?)",
                       [.blob(ExchangeIdentity().privateKeyBytes)])
        }
        guard case .blob(let key)? = try db.scalar(query) else {
            throw BundleSyncError(.failure, "'\(db.path)' has damaged bundlesync bookkeeping (no encryption key)", database: db.path)
        }
        return try ExchangeIdentity(privateKeyBytes: key)
    }

    package static func validateName(_ name: String) throws {
        guard ReplicaName.isValid(name) else {
            throw BundleSyncError.usage("'\(shown(name))' is not a valid replica name",
                                        hint: "use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'")
        }
    }

    // MARK: - Settings kept in `_bundlesync_meta`

    /// The replica's hybrid logical clock: at least every timestamp issued or seen.
    package var clock: HLC {
        get throws {
            guard case .integer(let v)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'hlc'") else { return .zero }
            return HLC(rawValue: UInt64(bitPattern: v))
        }
    }

    package func advanceClock(to hlc: HLC) throws {
        try db.run("UPDATE _bundlesync_meta SET value = max(value, ?) WHERE key = 'hlc'", [.integer(Int64(bitPattern: hlc.rawValue))])
    }

    /// Whether this replica writes encrypted bundles only (`bundlesync config DB encrypt always`).
    package var requiresEncryption: Bool {
        get throws { try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'encrypt'") == .text("always") }
    }

    /// Sets whether this replica writes encrypted bundles only.
    package func setRequiresEncryption(_ on: Bool) throws {
        try db.writeTransaction {
            try db.run("INSERT INTO _bundlesync_meta(key, value) VALUES ('encrypt', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       [.text(on ? "always" : "never")])
        }
    }

    /// How many of each origin's latest batches pruning keeps (`config DB keep-batches N`),
    /// or nil for the default.
    package var keptBatches: UInt64? {
        get throws {
            guard case .integer(let n)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'keep-batches'"), n >= 0 else { return nil }
            return UInt64(n)
        }
    }

    /// Sets how many of each origin's latest batches pruning keeps.
    package func setKeptBatches(_ n: UInt64) throws {
        try db.writeTransaction {
            try db.run("INSERT INTO _bundlesync_meta(key, value) VALUES ('keep-batches', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       [.integer(Int64(n))])
        }
    }

    /// How many replicas write to this replica's group, this one included, as the user
    /// declared it (`config DB fleet N`), or nil when it was not declared. Tombstones are
    /// collected only once that many replicas are known here (see ``stableTime()``).
    package var fleetSize: UInt64? {
        get throws {
            guard case .integer(let n)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'fleet'"), n > 0 else { return nil }
            return UInt64(n)
        }
    }

    /// Declares how many replicas write to the group; 0 withdraws the declaration.
    package func setFleetSize(_ n: UInt64) throws {
        try db.writeTransaction {
            try db.run("INSERT INTO _bundlesync_meta(key, value) VALUES ('fleet', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       [.integer(Int64(n))])
        }
    }

    // MARK: - Durability

    /// Runs `body` with commits that do not wait for the disk, then, when `body` says it
    /// wrote, makes everything durable with one flush before returning.
    ///
    /// > "WAL mode is always consistent with synchronous=NORMAL, but WAL mode does lose
    /// > durability. A transaction committed in WAL mode with synchronous=NORMAL might roll
    /// > back following a power loss or system crash."
    /// > "When synchronous is FULL (2) [...] In WAL mode [...] the WAL file is synchronized
    /// > before each transaction commit."
    /// > (https://www.sqlite.org/pragma.html#pragma_synchronous)
    ///
    /// So a crash inside `body` loses whole transactions, never part of one, and the final
    /// commit under FULL flushes the WAL file, which holds every earlier commit before it.
    /// On a connection that commits nothing (a dry run), or inside a transaction, `body` just runs.
    package func committingOnceDurably<T>(_ body: () throws -> (result: T, wrote: Bool)) throws -> T {
        guard !db.rollbackOnly, !db.isInTransaction else { return try body().result }
        try db.execute("PRAGMA synchronous = NORMAL")
        let out: (result: T, wrote: Bool)
        do {
            out = try body()
        } catch {
            try? db.execute("PRAGMA synchronous = FULL")
            throw error
        }
        try db.execute("PRAGMA synchronous = FULL")
        if out.wrote {
            // A write of one unchanged row is enough to commit, and so to flush the WAL.
            try db.writeTransaction { try db.run("UPDATE _bundlesync_meta SET value = value WHERE key = 'schema_version'") }
        }
        return out.result
    }

    // MARK: - Own transactions

    /// Runs `body` in one write transaction with capture off, so the replica's own writes to
    /// tracked tables are never logged as local changes.
    ///
    /// Capture is off because the transaction drops the capture triggers when it begins and
    /// creates them again before it commits (``TableCatalog/holdCapture()``): the
    /// application's writes, on any connection, meet triggers with no condition to check,
    /// and a transaction that rolls back or never commits leaves the triggers as they were.
    package func withoutCapture<T>(_ body: () throws -> T) throws -> T {
        var holding = false
        do {
            return try db.writeTransaction {
                try catalog.holdCapture()
                holding = true
                let result = try body()
                try catalog.resumeCapture()
                holding = false
                return result
            }
        } catch {
            // The rollback put the triggers back; forget what this call held (and only
            // this call: one that could not begin its transaction held nothing).
            if holding { catalog.forgetHeldCapture() }
            throw error
        }
    }

    /// Inside ``withoutCapture(_:)``: commits the work so far (capture is on while the lock is
    /// free, so an application's writes in the pause are captured) and goes on in a new
    /// transaction after `pause` milliseconds.
    package func commitSlice(pause milliseconds: Int) throws {
        try catalog.resumeCapture()
        try db.commitAndContinue(pause: milliseconds)
        try catalog.holdCapture()
    }

    /// Inside ``withoutCapture(_:)``: turns capture back on for every table but `t` (nil:
    /// off for every table again), so that writes an application's triggers make to other
    /// tracked tables while bundlesync writes `t` are captured.
    package func captureOff(onlyFor t: TrackedTable?) throws {
        try catalog.captureOn(exceptFor: t?.name)
    }

    /// Takes a new identity (see `Replica.reidentify`): records its key and name and makes it
    /// this store's own, with a new encryption key pair too, so that the copy this replica
    /// came from cannot read the bundles encrypted to it. Must run inside a write transaction.
    package func adopt(_ fresh: Identity, name chosen: String) throws {
        try Self.validateName(chosen)
        try db.run("INSERT INTO _bundlesync_replicas(id, public_key, name, trusted) VALUES (?, ?, ?, 1)",
                   [.blob(fresh.id.bytes), .blob(fresh.publicKey), .text(chosen)])
        guard case .integer(let idx)? = try db.scalar("SELECT last_insert_rowid()") else {
            throw BundleSyncError.failure("cannot record the new identity")
        }
        try db.run("UPDATE _bundlesync_meta SET value = ? WHERE key = 'private_key'", [.blob(fresh.privateKeyBytes)])
        try db.run("UPDATE _bundlesync_meta SET value = ? WHERE key = 'name'", [.text(chosen)])
        let freshExchange = ExchangeIdentity()
        try db.run("UPDATE _bundlesync_meta SET value = ? WHERE key = 'exchange_private_key'", [.blob(freshExchange.privateKeyBytes)])
        exchange = freshExchange
        identity = fresh
        selfIndex = idx
        name = chosen
    }
}
