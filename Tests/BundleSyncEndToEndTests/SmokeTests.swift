import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

@Suite struct SmokeTests {
    @Test func demoEndsWithEqualDigests() throws {
        let tmp = TempDir()
        let r = try CLI.run(["demo", tmp.file("demo")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("All three replicas hold exactly the same data"))
    }
}
