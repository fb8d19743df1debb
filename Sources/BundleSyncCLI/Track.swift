import ArgumentParser
import BundleSync

struct Track: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start syncing a table.",
        discussion: """
        The table must exist and have a PRIMARY KEY. Capture triggers written in plain SQL \
        record every later write from any program, and the rows already in the table become \
        this replica's changes. Run it again after 'ALTER TABLE ... ADD COLUMN' to sync the \
        new column.

        Example:
          bundlesync track clinic.db patients
        """
    )

    @Argument(help: "The replica's database file.") var db: String
    @Argument(help: "The table to sync.") var table: String
    @Option(name: .customLong("text"), help: ArgumentHelp("Merge this column as text (not available in this release).", valueName: "column"))
    var textColumns: [String] = []
    @Option(name: .customLong("json"), help: ArgumentHelp("Merge this column as JSON (not available in this release).", valueName: "column"))
    var jsonColumns: [String] = []

    func run() throws {
        let replica = try Replica.open(path: db)
        var rules: [String: ColumnRule] = [:]
        textColumns.forEach { rules[$0] = .text }
        jsonColumns.forEach { rules[$0] = .json }
        let report = try replica.track(table: table, rules: rules)
        report.warnings.forEach(Diagnostics.warn)
        if report.newlyTracked {
            Diagnostics.note("tracking '\(table)': \(report.existingRows) existing rows become this replica's changes")
        } else if report.addedColumns.isEmpty {
            Diagnostics.note("'\(table)' is already tracked; nothing changed")
        } else {
            Diagnostics.note("'\(table)' now also syncs \(report.addedColumns.map { "'\($0)'" }.joined(separator: ", "))")
        }
    }
}
