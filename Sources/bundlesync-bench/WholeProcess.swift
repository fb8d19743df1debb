import BundleSync
import Foundation

extension Run {
    /// Figures 9a and 9b: a full export and its import as a user runs them, each a whole
    /// `bundlesync` process (start, sealing, verification, signatures, the final flush),
    /// against SQLite inserting the same rows into plain tables.
    ///
    /// - Parameter baseInsert: Seconds SQLite took to insert the base rows in one transaction.
    func wholeProcessFigures(baseInsert: Double) throws -> [Figure] {
        guard let cli = bundlesyncBinary() else {
            notes.append("Figures 9a and 9b were skipped: the bundlesync binary was not found next to bundlesync-bench.")
            return []
        }
        func run(_ args: [String]) throws -> Double {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: cli)
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            let err = Pipe()
            p.standardError = err
            let t0 = now()
            try p.run()
            let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            let dt = now() - t0
            guard p.terminationStatus == 0 else {
                throw BenchError("bundlesync \(args.joined(separator: " ")) exited \(p.terminationStatus): \(errText.suffix(500))")
            }
            return dt
        }
        // The exporter: the base rows, tracked as a user would, not yet exported.
        let from = file("whole-a.db"), to = file("whole-b.db"), bundle = file("whole.bsync")
        try copy(file("base.db"), from)
        _ = try run(["init", from, "--name", "whole-a"])
        for t in TableSpec.all { _ = try run(["track", from, t.name]) }
        // The importer: the same tables, empty and tracked.
        try createTables(to, rows: false)
        _ = try run(["init", to, "--name", "whole-b"])
        for t in TableSpec.all { _ = try run(["track", to, t.name]) }

        let tExport = try step("whole process: bundlesync export --full of the freshly tracked base") { try run(["export", from, "--full", "-o", bundle]) }
        let tImport = try step("whole process: bundlesync import of that snapshot into an empty replica") { try run(["import", to, bundle]) }
        let rows = Double(w.rows)
        return [
            Figure(number: "9a", name: "full import, whole process, rows per second",
                   bundlesync: perSecond(rows, tImport, "rows"), baseline: perSecond(rows, baseInsert, "rows") + " (plain INSERT, one transaction)",
                   ratio: ratioText(baseInsert / tImport), target: "≥ 0.5×", meets: meets(baseInsert / tImport >= 0.5)),
            Figure(number: "9b", name: "full export, whole process, against the import of it",
                   bundlesync: "\(fixed(tExport, 2)) s (export --full)", baseline: "\(fixed(tImport, 2)) s (import)",
                   ratio: ratioText(tImport / tExport), target: "≥ 1.0× (no slower)", meets: meets(tImport / tExport >= 1.0)),
        ]
    }
}
