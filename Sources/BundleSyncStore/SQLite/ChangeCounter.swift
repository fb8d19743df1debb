import BundleSyncCore
import CSQLite

/// What a run of writes changed in the application's tables, counted by an SQLite session
/// on the connection that writes (`import --dry-run` reports it before rolling back).
///
/// Net changes per row: a row inserted then updated counts once, as inserted. Bookkeeping
/// tables are left out.
package final class ChangeCounter {
    package struct Counts: Sendable {
        package var inserted = 0
        package var updated = 0
        package var deleted = 0
        /// Cells whose value changed: every non-key cell of an inserted row, and the changed
        /// cells of an updated one.
        package var cells = 0
        package var rows: Int { inserted + updated + deleted }
        package init() {}
    }

    private let db: Database
    private var session: OpaquePointer?

    package init(_ db: Database) throws {
        self.db = db
        guard sqlite3session_create(db.handle, "main", &session) == SQLITE_OK, let session else {
            throw BundleSyncError.failure("cannot count the changes to '\(db.path)': SQLite sessions are not available")
        }
        sqlite3session_table_filter(session, { _, name in
            guard let name else { return 0 }
            return String(cString: name).hasPrefix("_bundlesync_") ? 0 : 1
        }, nil)
        guard sqlite3session_attach(session, nil) == SQLITE_OK else {
            throw BundleSyncError.failure("cannot count the changes to '\(db.path)'")
        }
    }

    deinit { sqlite3session_delete(session) }

    /// The changes made since this counter was created, per table.
    package func counts() throws -> [String: Counts] {
        var size: Int32 = 0
        var buffer: UnsafeMutableRawPointer?
        guard sqlite3session_changeset(session, &size, &buffer) == SQLITE_OK else {
            throw BundleSyncError.failure("cannot count the changes to '\(db.path)'")
        }
        defer { sqlite3_free(buffer) }
        var out: [String: Counts] = [:]
        guard size > 0, let buffer else { return out }
        var iterator: OpaquePointer?
        guard sqlite3changeset_start(&iterator, size, buffer) == SQLITE_OK else { return out }
        defer { sqlite3changeset_finalize(iterator) }
        while sqlite3changeset_next(iterator) == SQLITE_ROW {
            var table: UnsafePointer<CChar>?
            var columns: Int32 = 0, op: Int32 = 0, indirect: Int32 = 0
            var pk: UnsafeMutablePointer<UInt8>?
            var pkColumns: Int32 = 0
            guard sqlite3changeset_op(iterator, &table, &columns, &op, &indirect) == SQLITE_OK, let table,
                  sqlite3changeset_pk(iterator, &pk, &pkColumns) == SQLITE_OK, let pk else { continue }
            let name = String(cString: table)
            var c = out[name] ?? Counts()
            let keyCount = (0..<Int(columns)).filter { pk[$0] != 0 }.count
            switch op {
            case SQLITE_INSERT:
                c.inserted += 1
                c.cells += Int(columns) - keyCount
            case SQLITE_UPDATE:
                c.updated += 1
                for i in 0..<columns where pk[Int(i)] == 0 {
                    var value: OpaquePointer?
                    if sqlite3changeset_new(iterator, i, &value) == SQLITE_OK, value != nil { c.cells += 1 }
                }
            case SQLITE_DELETE:
                c.deleted += 1
            default:
                break
            }
            out[name] = c
        }
        return out
    }
}
