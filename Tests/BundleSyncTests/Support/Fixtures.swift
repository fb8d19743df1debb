// Replicas the library's tests start from.
@testable import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

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

/// Decodes the golden bundle `fixtures/bundles/NAME.bsync` whole and compares its content
/// with `fixtures/bundles/NAME.json` (re-recorded with `BUNDLESYNC_RECORD=1`).
@discardableResult
func expectGoldenDecoding(_ name: String, keyring: BundleKeyring? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> BundleSummary {
    var summary = try BundleSummary.read(path: fixture("bundles/\(name).bsync"), includeRows: true, keyring: keyring)
    summary.path = "fixtures/bundles/\(name).bsync"
    try assertSnapshot(jsonString(summary.json) + "\n", matches: "fixtures/bundles/\(name).json",
                       "decoded content of \(name).bsync changed; if intended, re-record with BUNDLESYNC_RECORD=1",
                       sourceLocation: sourceLocation)
    return summary
}
