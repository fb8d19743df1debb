@testable import BundleSync
import Foundation

/// The checkout's root, found from this file's path (fixtures are not test resources).
let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func fixture(_ relative: String) -> String {
    packageRoot.appendingPathComponent("fixtures").appendingPathComponent(relative).path
}

func temporaryPath(_ name: String) -> String {
    let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("bundlesync-unit-\(UUID().uuidString.prefix(8))")
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return (dir as NSString).appendingPathComponent(name)
}

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
