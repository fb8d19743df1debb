// swift-tools-version:6.0
import PackageDescription

// Layers, lowest first; each target may import only the ones above it in this list, so the
// compiler refuses a cycle:
//   BundleSyncCore    values and rules (SQLValue, ReplicaID, HLC, VersionVector, limits,
//                     errors, byte reading and writing); no SQLite, no zstd
//   BundleSyncMerge   the pure merge rules: row clocks, text sequences, JSON documents
//   BundleSyncFormat  the bundle format: codecs, reader, writer, zstd, signatures
//   BundleSyncStore   the replica's SQLite file: the only target that imports CSQLite
//   BundleSync        sync on top: seal, merge into tables, export, import, verify, mailbox
//   BundleSyncCLI     the commands, and the one mapping from errors to exit statuses
let package = Package(
    name: "bundlesync",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "bundlesync", targets: ["bundlesync"]),
        .library(name: "BundleSync", targets: ["BundleSync"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        .target(
            name: "BundleSyncCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "BundleSyncMerge",
            dependencies: ["BundleSyncCore"]
        ),
        .target(
            name: "BundleSyncFormat",
            dependencies: [
                "BundleSyncCore",
                "BundleSyncMerge",
                "CZstd",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "BundleSyncStore",
            dependencies: ["BundleSyncCore", "BundleSyncMerge", "BundleSyncFormat", "CSQLite"]
        ),
        .target(
            name: "BundleSync",
            dependencies: ["BundleSyncCore", "BundleSyncMerge", "BundleSyncFormat", "BundleSyncStore"]
        ),
        .target(
            name: "BundleSyncCLI",
            dependencies: [
                "BundleSync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "bundlesync",
            dependencies: ["BundleSyncCLI"]
        ),
        .executableTarget(
            name: "bundlesync-bench",
            dependencies: ["BundleSync", "CSQLite", "CZstd"]
        ),
        // Tests: one target per layer, each depending on the layer it tests (and the layers
        // below it) plus BundleSyncTestSupport, which stands on BundleSyncCore only; the
        // end-to-end suite runs the built binaries and holds the slow tests.
        .target(
            name: "BundleSyncTestSupport",
            dependencies: ["BundleSyncCore"],
            path: "Tests/BundleSyncTestSupport"
        ),
        .testTarget(
            name: "BundleSyncCoreTests",
            dependencies: ["BundleSyncCore", "BundleSyncTestSupport"]
        ),
        .testTarget(
            name: "BundleSyncMergeTests",
            dependencies: ["BundleSyncMerge", "BundleSyncCore", "BundleSyncTestSupport"]
        ),
        .testTarget(
            name: "BundleSyncFormatTests",
            dependencies: ["BundleSyncFormat", "BundleSyncMerge", "BundleSyncCore", "BundleSyncTestSupport",
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "BundleSyncTests",
            dependencies: ["BundleSync", "BundleSyncTestSupport"]
        ),
        .testTarget(
            name: "BundleSyncEndToEndTests",
            dependencies: ["BundleSync", "BundleSyncTestSupport", "bundlesync", "bundlesync-bench"],
            exclude: ["Snapshots"]
        ),
    ],
    swiftLanguageModes: [.v5]
)
