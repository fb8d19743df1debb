import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// An application keeps writing while a large bundle is imported: the import commits whole
/// batches in slices and leaves the write lock free in between, so a writer with a short
/// busy timeout is never refused, and what it writes meanwhile is captured and synced.
@Suite(.serialized) struct ApplicationPaceTests {
    @Test func aWriterWithAShortBusyTimeoutIsNeverRefusedDuringALargeImport() throws {
        let tmp = TempDir("bundlesync-pace")
        let source = try TestReplica("source", in: tmp, schema: Faults.schema, tables: ["items"])
        let target = try TestReplica("target", in: tmp, schema: Faults.schema, tables: ["items"])
        try source.sql(Faults.bulkInsert(150_000))
        let bundle = try source.export(to: tmp.dir("big"))
        let summary = try CLI.ok(["inspect", bundle])
        #expect(summary.contains("batches"), "\(summary)")

        // The application: one connection with a 3 s busy timeout, a write every 50 ms.
        let app = try Database(path: target.db, busyTimeout: 3_000)
        let importer = try SpawnedCLI(["import", target.db, bundle], stderrTo: tmp.file("import.err"))
        var written = 0
        var refused: [String] = []
        var longest = 0.0
        while importer.process.isRunning {
            let start = DispatchTime.now()
            do {
                try app.execute("INSERT INTO items VALUES ('app-\(written)', \(written), 'written during the import')")
                written += 1
            } catch {
                refused.append("\(error)")
            }
            longest = max(longest, Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
            usleep(50_000)
        }
        let (_, status) = importer.wait()
        #expect(status == 0, "\(importer.stderr)")
        #expect(refused.isEmpty, "writes refused during the import: \(refused.prefix(3))")
        #expect(written > 0)
        print("[pace] \(written) application writes during the import, the longest waited \(String(format: "%.2f", longest)) s")

        // Everything arrived, and every write of the application is captured.
        #expect(try target.rows("SELECT count(*) FROM items WHERE id LIKE 'k%'") == [[.integer(150_000)]])
        try source.importing([try target.export(to: tmp.dir("back"))])
        #expect(try source.rows("SELECT count(*) FROM items WHERE id LIKE 'app-%'") == [[.integer(Int64(written))]])
        #expect(try source.digest() == target.digest())
    }
}
