// swift-tools-version:6.0
// Fuzz targets for bundlesync's readers. A separate package, so the main package's
// `swift build` and `swift test` never build it. See README.md.
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its directory, so the root package's identity is
/// the name of the checkout's directory (e.g. "bundlesync" or "main").
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()
let bundleSync = Target.Dependency.product(name: "BundleSync", package: root)

let package = Package(
    name: "bundlesync-fuzz",
    dependencies: [
        .package(path: ".."),
    ],
    targets: [
        // The whole bundle reader on a file: prefix, header, trailer, zstd body, frames.
        .executableTarget(name: "FuzzBundleReader", dependencies: [bundleSync, "FuzzSupport"]),
        // The batch decoder alone, which the reader only reaches behind a valid hash and
        // signature (a fuzzer cannot forge those).
        .executableTarget(name: "FuzzBatchDecode", dependencies: [bundleSync, "FuzzSupport"]),
        // Hands `main` to libFuzzer's driver (see entry.c).
        .target(name: "FuzzSupport"),
    ],
    swiftLanguageModes: [.v5]
)
