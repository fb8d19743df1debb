import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge

import CSQLite
import Foundation

// The only file that talks to SQLite's C API directly is this one and Statement.swift.

package let SQLITE_TRANSIENT_DESTRUCTOR = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A connection to one SQLite database file.
///
/// Statements are prepared once and cached by their SQL text for the life of the connection,
/// so the hot import and export loops never re-parse SQL.
public final class Database {
    package let handle: OpaquePointer
    public let path: String
    private var cache: [String: Statement] = [:]
    /// Called after every rollback of a write transaction, so in-memory mirrors of tables
    /// follow the transaction.
    private var rollbackHandlers: [() -> Void] = []
    func runRollbackHandlers() { rollbackHandlers.forEach { $0() } }
    /// Whether nothing this connection writes is ever committed (see ``RollbackOnly``).
    package let rollbackOnly: Bool = RollbackOnly.connectionsOpenedNow
    var savepoints = 0
    private var commitHandlers: [() -> Void] = []

    /// Opens a database.
    ///
    /// - Parameters:
    ///   - path: The file. It must exist unless `create` is true.
    ///   - create: Whether a missing file may be created.
    ///   - busyTimeout: How long to wait for another connection's lock, in milliseconds.
    /// - Throws: `.noInput` if the file is missing, `.cannotCreate` or `.io` if it cannot be
    ///   opened, `.usage` if the path is a directory.
    public init(path: String, create: Bool = false, busyTimeout: Int32 = 10_000) throws {
        var isDir: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDir)
        if exists && isDir.boolValue {
            throw BundleSyncError(.usage, "'\(path)' is a directory, not a database file", database: path)
        }
        if !exists && !create {
            throw BundleSyncError(.noInput, "database '\(path)' does not exist",
                                  hint: "create a replica with 'bundlesync init \(path)'", database: path)
        }
        var db: OpaquePointer?
        var flags = SQLITE_OPEN_READWRITE
        if create { flags |= SQLITE_OPEN_CREATE }
        flags |= SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            throw BundleSyncError(exists ? .io : .cannotCreate, "cannot open database '\(path)': \(msg)",
                                  cause: .sqlite(code: rc, message: msg), database: path)
        }
        self.handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeout)
        // Check that this is a database at all before anything else touches it; the error
        // names the file ("the database 'x' is damaged: file is not a database").
        _ = try scalar("SELECT count(*) FROM sqlite_schema")
    }

    /// Turns off SQLite's count of allocated memory, which takes a process-wide lock on every
    /// allocation (SQLite allocates on every run of a statement). A process-wide setting, for
    /// a program to make before it opens its first database; the library never makes it.
    public static func stopCountingMemory() {
        _ = bundlesync_sqlite3_config_memstatus(0)
    }

    deinit {
        cache.removeAll()
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws {
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let text = errmsg.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(errmsg)
            throw error(rc, text)
        }
    }

    /// A cached prepared statement for `sql`, reset and with bindings cleared.
    public func statement(_ sql: String) throws -> Statement {
        if let s = cache[sql] {
            s.reset()
            return s
        }
        let s = try Statement(database: self, sql: sql)
        cache[sql] = s
        return s
    }

    /// Drops every cached statement (needed after schema changes made by this connection).
    public func clearStatementCache() {
        cache.removeAll()
    }

    /// Runs a statement with arguments, discarding any rows.
    public func run(_ sql: String, _ args: [SQLValue] = []) throws {
        let s = try statement(sql)
        try s.bind(args)
        while try s.step() {}
    }

    /// The first column of the first row, or nil when there is no row.
    public func scalar(_ sql: String, _ args: [SQLValue] = []) throws -> SQLValue? {
        let s = try statement(sql)
        try s.bind(args)
        guard try s.step() else { return nil }
        let v = s.value(0)
        s.reset()
        return v
    }

    /// All rows of a query, each as an array of values.
    public func rows(_ sql: String, _ args: [SQLValue] = []) throws -> [[SQLValue]] {
        let s = try statement(sql)
        try s.bind(args)
        var out: [[SQLValue]] = []
        while try s.step() { out.append(s.row()) }
        return out
    }

    public var changes: Int { Int(sqlite3_changes(handle)) }
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    /// Runs `body` in a transaction that takes the write lock at once.
    ///
    /// > "IMMEDIATE cause the database connection to start a new write immediately, without
    /// > waiting for a write statement." (https://www.sqlite.org/lang_transaction.html)
    /// Taking the lock up front means a busy database fails here, before any work, rather
    /// than half-way through with SQLITE_BUSY on an upgrade that can never succeed.
    public func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        if rollbackOnly { return try inRollbackOnlyTransaction(body) }
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            commitHandlers.forEach { $0() }
            return result
        } catch {
            try? execute("ROLLBACK")
            rollbackHandlers.forEach { $0() }
            throw error
        }
    }

    /// Inside ``writeTransaction(_:)``: commits what was done so far, lets other connections
    /// take the write lock for `pause` milliseconds, and takes it again for the rest.
    /// A rollback-only connection (``RollbackOnly``) commits nothing: there it does nothing.
    package func commitAndContinue(pause milliseconds: Int) throws {
        if rollbackOnly { return }
        try execute("COMMIT")
        commitHandlers.forEach { $0() }
        usleep(useconds_t(milliseconds * 1000))
        try execute("BEGIN IMMEDIATE")
    }

    /// Registers `handler` to run after every rollback of ``writeTransaction(_:)``.
    package func onRollback(_ handler: @escaping () -> Void) {
        rollbackHandlers.append(handler)
    }

    /// Registers `handler` to run after every commit of ``writeTransaction(_:)``.
    package func onCommit(_ handler: @escaping () -> Void) {
        commitHandlers.append(handler)
    }

    public func readTransaction<T>(_ body: () throws -> T) throws -> T {
        if rollbackOnly { return try inRollbackOnlyTransaction(body) }
        try execute("BEGIN")
        defer { try? execute("COMMIT") }
        return try body()
    }

    /// Maps an SQLite result code to an error that names this database.
    package func error(_ rc: Int32, _ message: String) -> BundleSyncError {
        let db = "'\(path)'"
        switch rc & 0xff {
        case SQLITE_BUSY, SQLITE_LOCKED:
            return BundleSyncError(.busy, "the database \(db) is busy: \(message)",
                                   hint: "another program holds the write lock; retry when it is done")
        case SQLITE_FULL:
            return BundleSyncError(.io, "the disk holding \(db) is full: \(message)", hint: "free some space and run the command again")
        case SQLITE_IOERR, SQLITE_CANTOPEN:
            return BundleSyncError(.io, "I/O error on \(db): \(message)")
        case SQLITE_READONLY:
            return BundleSyncError(.cannotCreate, "the database \(db) is read-only: \(message)")
        case SQLITE_NOTADB:
            return BundleSyncError(.failure, "\(db) is not a SQLite database",
                                   hint: "give the application's database file; 'bundlesync init' makes a new one")
        case SQLITE_CORRUPT:
            return BundleSyncError(.failure, "the database \(db) is damaged: \(message)")
        default:
            return BundleSyncError(.failure, "SQLite error on \(db): \(message)")
        }
    }

    /// Quotes an identifier for SQL: wraps it in double quotes and doubles any inside.
    public static func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
