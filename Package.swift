// swift-tools-version:6.0
import PackageDescription

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
            name: "BundleSync",
            dependencies: [
                "CSQLite",
                "CZstd",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
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
        .testTarget(
            name: "BundleSyncTests",
            dependencies: ["BundleSync"]
        ),
        .testTarget(
            name: "BundleSyncEndToEndTests",
            dependencies: ["BundleSync", "bundlesync", "bundlesync-bench"]
        ),
    ],
    swiftLanguageModes: [.v5]
)
