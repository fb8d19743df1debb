import BundleSyncTestSupport
import Foundation
import Testing

/// The benchmark (SPEC §6) is measured by `bundlesync-bench`, not by timed tests. This only
/// checks that it runs end to end on a tiny workload and prints every figure.
@Suite struct BenchmarkSmokeTests {
    /// The built `bundlesync-bench`, next to the `bundlesync` binary the other tests use.
    static let benchBinary: String =
        ((CLI.binary as NSString).deletingLastPathComponent as NSString).appendingPathComponent("bundlesync-bench")

    static let figures = [
        "import, changed cells per second",
        "export, changes per second",
        "export's own SQLite work",
        "import's own SQLite work",
        "bundle size",
        "verify, MB/s",
        "app write cost with capture triggers",
        "small-update delta as SQL text",
        "export cost when 1% changed vs 100% changed",
        "peak memory importing",
        "bookkeeping on disk, right after track",
        "bookkeeping on disk, after the first full export",
    ]

    @Test func benchmarkRunsAndPrintsEveryFigure() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.benchBinary),
                     "bundlesync-bench is not built at \(Self.benchBinary)")
        let tmp = TempDir("bundlesync-bench-smoke")
        let outPath = tmp.file("stdout.txt"), errPath = tmp.file("stderr.txt")
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.benchBinary)
        p.arguments = ["--rows", "400", "--seed", "7", "--dir", tmp.dir("work"),
                       "--text-trace", fixture("traces/paper-shaped.trace.zst"), "--text-keystrokes", "2000", "--text-history-writes", "200"]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        try p.run()
        p.waitUntilExit()
        let out = try String(contentsOfFile: outPath, encoding: .utf8)
        let err = try String(contentsOfFile: errPath, encoding: .utf8)
        #expect(p.terminationStatus == 0, "bundlesync-bench exited \(p.terminationStatus): \(err.suffix(2000))")
        for figure in Self.figures {
            #expect(out.contains(figure), "the table does not mention '\(figure)':\n\(out)")
        }
        for number in ["1", "1b", "1f", "2", "2f", "3", "4", "5", "5b", "6", "7", "8a", "8b"] {
            #expect(out.contains("\n| \(number) "), "the table has no row \(number)")
        }
        #expect(out.contains("skipped (use --big-bundle-mb 1024)"))
        for figure in ["Text merge on a keystroke trace", "state after the trace", "state growth per write", "snapshot bundle of the cell",
                       "seal per write", "inferred edit size / minimal edit size"] {
            #expect(out.contains(figure), "the text section does not mention '\(figure)':\n\(out)")
        }
        for figure in ["Text over a long history, tombstones collected", "seal of a one-word write", "import of that write", "stored state of the cell"] {
            #expect(out.contains(figure), "the long-history text table does not mention '\(figure)':\n\(out)")
        }
        #expect(out.range(of: #"\| A and B converged\s+\| yes"#, options: .regularExpression) != nil, "replicas did not converge:\n\(out)")
        #expect(!out.contains("bug"), "the benchmark reported a problem:\n\(out)")
        // The working files are removed afterwards.
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp.file("work")).isEmpty)
    }
}
