import Foundation

/// The files of this checkout that tests read: fixtures, golden files, the manual.
///
/// They are not test resources, so they are found from the path of this source file, and only
/// here: `Tests/BundleSyncTestSupport/Checkout.swift` is three levels below the root.
package enum Checkout {
    package static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        precondition(FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path),
                     "\(url.path) is not the checkout's root; Checkout.swift moved?")
        return url
    }()

    /// The absolute path of `relative`, a path from the checkout's root.
    package static func path(_ relative: String) -> String {
        root.appendingPathComponent(relative).path
    }
}

/// The absolute path of `relative` under `fixtures/`, e.g. `fixture("bundles/v1-full.bsync")`.
package func fixture(_ relative: String) -> String {
    Checkout.path("fixtures/\(relative)")
}
