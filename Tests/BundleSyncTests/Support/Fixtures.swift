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
