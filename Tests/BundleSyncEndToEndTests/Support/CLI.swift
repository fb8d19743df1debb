import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// What one run of the built `bundlesync` binary produced.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String

    var trimmedOut: String { stdout.trimmingCharacters(in: .whitespacesAndNewlines) }
}

/// Runs the built `bundlesync` binary the way a user would.
enum CLI {
    /// The binary next to the test bundle (SwiftPM builds it because the test target
    /// depends on it), or under `.build/debug` of this checkout.
    static let binary: String = {
        let fm = FileManager.default
        var candidates: [String] = []
        if let exe = CommandLine.arguments.first {
            var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
            // The runner may live inside a .xctest bundle directory.
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("bundlesync").path)
                dir = dir.deletingLastPathComponent()
            }
        }
        candidates.append(Checkout.path(".build/debug/bundlesync"))
        return candidates.first { fm.isExecutableFile(atPath: $0) } ?? candidates.last!
    }()

    /// Runs `bundlesync ARGS`, optionally under a wrapper such as `faketime` (or `program`
    /// instead of the binary, such as a shell running a pipeline).
    @discardableResult
    static func run(_ args: [String], wrapper: [String] = [], environment: [String: String] = [:], stdin: String? = nil,
                    program: String? = nil) throws -> CLIResult {
        let p = Process()
        let command = wrapper + [program ?? binary] + args
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = command
        var env = ProcessInfo.processInfo.environment
        environment.forEach { env[$0.key] = $0.value }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        if let stdin {
            let inPipe = Pipe()
            p.standardInput = inPipe
            try p.run()
            inPipe.fileHandleForWriting.write(Data(stdin.utf8))
            try inPipe.fileHandleForWriting.close()
        } else {
            p.standardInput = FileHandle.nullDevice
            try p.run()
        }
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        let collected = Collected()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            collected.set(out.fileHandleForReading.readDataToEndOfFile())
            group.leave()
        }
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let outData = collected.get()
        p.waitUntilExit()
        return CLIResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs a command that must succeed, and returns its trimmed stdout.
    @discardableResult
    static func ok(_ args: [String], wrapper: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let r = try run(args, wrapper: wrapper)
        #expect(r.status == 0, "bundlesync \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)", sourceLocation: sourceLocation)
        if r.status != 0 { throw TestFailure("bundlesync \(args.joined(separator: " ")) failed: \(r.stderr)") }
        return r.trimmedOut
    }
}

/// Bytes handed from the reading thread to the waiting one.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The application: plain SQL on its own connection, as any program would write.
enum App {
    static func execute(_ db: String, _ sql: String) throws {
        let conn = try Database(path: db, create: true)
        try conn.execute(sql)
    }

    static func rows(_ db: String, _ sql: String) throws -> [[SQLValue]] {
        try Database(path: db).rows(sql)
    }

    /// Every tracked row of `table`, ordered by its primary key, with exact types.
    static func snapshot(_ db: String, table: String, orderBy: String) throws -> [[SQLValue]] {
        try rows(db, "SELECT * FROM \(Database.quote(table)) ORDER BY \(orderBy)")
    }
}
