// Replicas the library's tests start from.
@testable import BundleSync
import BundleSyncTestSupport
import Foundation

/// A fresh replica with the golden schema (`fixtures/schemas/golden.sql`), both tables
/// tracked, and the plain-SQL connection an application would use on it.
func goldenSchemaReplica(_ name: String = "golden.db") throws -> (Replica, app: Database) {
    let path = temporaryPath(name)
    let app = try Database(path: path, create: true)
    try app.execute(try String(contentsOfFile: fixture("schemas/golden.sql"), encoding: .utf8))
    let (replica, _) = try Replica.initialize(path: path, name: "reader")
    _ = try replica.track(table: "notes")
    _ = try replica.track(table: "readings")
    return (replica, app)
}
