// Shared helpers of the test targets, built on no more of the library than BundleSyncCore so
// that every layer's tests can use them:
//
//   Checkout.swift   the checkout's root, found from this target's own path in one place,
//                    and `fixture(_:)` for the files under `fixtures/`
//   TempDir.swift    temporary directories that clean up after themselves: `TempDir` (gone
//                    when released) and `temporaryPath(_:)` (gone when the test run ends)
//   Snapshot.swift   `assertSnapshot(_:matches:_:)`, which compares output with a golden file,
//                    and `Recording`, for tests that write golden files of their own
//   Random.swift     seeded random numbers and fresh replica ids for the lower layers' tests
//
// Two environment variables change what a test run does with files. Each is on when set to
// anything but an empty string or 0:
//
//   BUNDLESYNC_RECORD=1     Re-record every golden file the selected tests compare against
//                           instead of comparing: the help texts
//                           (Tests/BundleSyncEndToEndTests/Snapshots/help), the decoded golden
//                           bundles (fixtures/bundles/*.json) and the crafted invalid bundles
//                           (fixtures/bundles/invalid). Every test that re-records fails and
//                           names what it wrote, so a recording run never passes. Narrow it
//                           with --filter, and review the diff before committing:
//                               BUNDLESYNC_RECORD=1 swift test --filter UsabilityTests
//
//   BUNDLESYNC_KEEP_TEMP=1  Keep the run's temporary files for debugging. Every test writes
//                           under one directory per test process, bundlesync-tests-XXXXXX in
//                           $TMPDIR (or /tmp), which is otherwise removed as the tests end; with
//                           the variable set it stays, and the run prints where it is.

import Foundation

/// The switches a test run reads from its environment (see the top of this file).
package enum TestEnvironment {
    package static let recordVariable = "BUNDLESYNC_RECORD"
    package static let keepTemporaryFilesVariable = "BUNDLESYNC_KEEP_TEMP"

    /// Whether `name` is set to anything but an empty string or 0.
    package static func isOn(_ name: String) -> Bool {
        guard let value = ProcessInfo.processInfo.environment[name]?.trimmingCharacters(in: .whitespaces) else { return false }
        return !value.isEmpty && value != "0"
    }
}
