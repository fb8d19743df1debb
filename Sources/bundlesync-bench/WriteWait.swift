import BundleSync
import CSQLite
import Foundation

extension Run {
    // MARK: - Figure 10: the application keeps its pace

    /// Imports `bundle` into a fresh replica in a child process while an application writes
    /// one row every 50 ms on its own connection; returns the figure with the longest time
    /// one of those writes waited for the write lock.
    func writeWaitFigure(bundle: String, changes: Int) throws -> Figure {
        let name = "longest application write wait during an import of \(grouped(changes)) changes"
        guard let cli = bundlesyncBinary() else {
            return Figure(number: "10", name: name, bundlesync: "skipped (bundlesync binary not found)", baseline: "—", ratio: "—",
                          target: "≤ 1 s", meets: "—")
        }
        let path = file("fig10-target.db")
        try createTables(path, rows: false)
        let target = try Replica.initialize(path: path, name: "bench-pace").0
        for t in TableSpec.all { _ = try target.track(table: t.name) }
        try checkpoint(target)
        let app = try RawDB(path)
        try app.exec("CREATE TABLE IF NOT EXISTS app_writes(n INTEGER PRIMARY KEY, at REAL)")
        var longest = 0.0
        var writes = 0
        let started = now()
        let child = Process()
        child.executableURL = URL(fileURLWithPath: cli)
        child.arguments = ["import", path, bundle, "--quiet"]
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle.nullDevice
        try step("figure 10: 'bundlesync import' of \(grouped(changes)) changes while the application writes every 50 ms") {
            try child.run()
            while child.isRunning {
                let t0 = now()
                try app.run("INSERT INTO app_writes(n, at) VALUES (?, ?)", [.integer(Int64(writes)), .real(t0)])
                longest = max(longest, now() - t0)
                writes += 1
                usleep(50_000)
            }
            child.waitUntilExit()
        }
        let importSeconds = now() - started
        guard child.terminationStatus == 0 else { throw BenchError("figure 10: the import exited \(child.terminationStatus)") }
        return Figure(number: "10", name: name,
                      bundlesync: "\(fixed(longest, 2)) s longest of \(grouped(writes)) writes",
                      baseline: "the import took \(fixed(importSeconds, 1)) s (the wait in one transaction)",
                      ratio: ratioText(longest / importSeconds), target: "≤ 1 s", meets: meets(longest <= 1.0))
    }
}
