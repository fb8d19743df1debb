import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// A replica on disk, set up the way a user would: schema by SQL, then `init` and `track`.
struct TestReplica {
    let name: String
    let db: String

    init(name: String, db: String) {
        self.name = name
        self.db = db
    }

    init(_ name: String, in dir: TempDir, schema: String, tables: [String]) throws {
        self.name = name
        db = dir.file("\(name).db")
        try App.execute(db, schema)
        try CLI.ok(["init", db, "--name", name])
        for t in tables { try CLI.ok(["track", db, t]) }
    }

    func sql(_ statements: String) throws { try App.execute(db, statements) }
    func rows(_ query: String) throws -> [[SQLValue]] { try App.rows(db, query) }

    /// Exports and returns the bundle path.
    func export(_ extra: [String] = [], to dir: String, wrapper: [String] = []) throws -> String {
        try CLI.ok(["export", db, "-o", dir] + extra, wrapper: wrapper)
    }

    func importing(_ paths: [String], wrapper: [String] = []) throws {
        try CLI.ok(["import", db] + paths, wrapper: wrapper)
    }

    func digest() throws -> String { try CLI.ok(["digest", db]) }

    func status() throws -> [String: Any] {
        let out = try CLI.ok(["status", db, "--json"])
        return (try JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any] ?? [:]
    }
}
