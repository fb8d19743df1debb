import BundleSyncCore
import CSQLite

/// Connections whose writes are never committed, for `import --dry-run`.
///
/// The first transaction such a connection starts takes the write lock and stays open; each
/// transaction the code asks for, then and later, is a savepoint inside it, released or
/// rolled back as a transaction would be committed or rolled back, and what runs after a
/// commit (the note of the replica's head beside the file) never runs, nor does a pause
/// between bounded transactions commit. ``Database/rollBackEverything()`` ends it, so the
/// database file, its WAL as other connections see it, every byte of bookkeeping and the
/// files beside it are as they were. The code that runs under it is the same code that imports.
package enum RollbackOnly {
    /// Set before a replica is opened: the connections opened meanwhile commit nothing.
    nonisolated(unsafe) package static var connectionsOpenedNow = false
}

extension Database {
    func inRollbackOnlyTransaction<T>(_ body: () throws -> T) throws -> T {
        if !isInTransaction { try execute("BEGIN IMMEDIATE") }
        savepoints += 1
        let name = "bundlesync_dry_run_\(savepoints)"
        try execute("SAVEPOINT \(name)")
        do {
            let result = try body()
            try execute("RELEASE \(name)")
            return result
        } catch {
            try? execute("ROLLBACK TO \(name)")
            try? execute("RELEASE \(name)")
            runRollbackHandlers()
            throw error
        }
    }

    /// Ends a rollback-only connection's transaction, undoing everything it wrote.
    package func rollBackEverything() {
        if isInTransaction { try? execute("ROLLBACK") }
    }
}
