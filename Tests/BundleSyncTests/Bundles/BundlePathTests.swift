@testable import BundleSync
import BundleSyncTestSupport
import Testing

@Suite struct BundlePathTests {
    @Test func aBundleIsWrittenUnderAHiddenNameBesideItsTarget() {
        #expect(BundlePath.temporary(for: "a", pid: 42) == ".a.42.tmp")
        #expect(BundlePath.temporary(for: "out/export-laptop", pid: 7) == "out/.export-laptop.7.tmp")
        #expect(BundlePath.temporary(for: "/a.bsync", pid: 7) == "/.a.bsync.7.tmp")
    }

    @Test func aTemporaryNameTellsItsWriter() {
        #expect(BundlePath.writer(ofTemporary: ".export-laptop.123.tmp", for: "export-laptop") == 123)
        #expect(BundlePath.writer(ofTemporary: ".export-laptop.x.tmp", for: "export-laptop") == 0)
        #expect(BundlePath.writer(ofTemporary: ".export-laptop.123.tmp", for: "export-lap") == nil)
        #expect(BundlePath.writer(ofTemporary: "export-laptop.123.tmp", for: "export-laptop") == nil)
        #expect(BundlePath.writer(ofTemporary: ".export-laptop.tmp", for: "export-laptop") == nil)
        let name = PathText.fileName(of: BundlePath.temporary(for: "d/export-laptop", pid: 99))
        #expect(BundlePath.writer(ofTemporary: name, for: "export-laptop") == 99)
    }
}
