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

        Columns merge by last writer wins unless named with --text (concurrent edits to \
        different places of a text all survive) or --json (objects merge key by key). Run \
        it again with another rule to change a column's rule, on every replica.

        Example:
          bundlesync track clinic.db notes --text body --json settings
        """
    )

    @Argument(help: "The replica's database file.") var db: String
    @Argument(help: "The table to sync.") var table: String
    @Option(name: .customLong("text"), help: ArgumentHelp("Merge this column's concurrent text edits.", valueName: "column"))
    var textColumns: [String] = []
    @Option(name: .customLong("json"), help: ArgumentHelp("Merge this column's JSON objects key by key.", valueName: "column"))
    var jsonColumns: [String] = []
    @Option(name: .customLong("lww"), help: ArgumentHelp("Merge this column by last writer wins (the default).", valueName: "column"))
    var lwwColumns: [String] = []

    func run() throws {
        let replica = try Replica.open(path: db)
        var rules: [String: ColumnRule] = [:]
        for (rule, names) in [(ColumnRule.lww, lwwColumns), (.text, textColumns), (.json, jsonColumns)] {
            for name in names {
                if let other = rules[name], other != rule {
                    throw ValidationError("column '\(name)' is given two rules, --\(other) and --\(rule)")
                }
                rules[name] = rule
            }
        }
        let report = try replica.track(table: table, rules: rules)
        report.warnings.forEach(Diagnostics.warn)
        if report.newlyTracked {
            Diagnostics.note("tracking '\(table)': \(report.existingRows) existing rows become this replica's changes")
        } else {
            if !report.addedColumns.isEmpty {
                Diagnostics.note("'\(table)' now also syncs \(report.addedColumns.map { "'\($0)'" }.joined(separator: ", "))")
            }
            for c in report.changedRules {
                Diagnostics.note("'\(c)' of '\(table)' now merges by '\(rules[c]!)'; give every replica the same rule")
            }
            if report.addedColumns.isEmpty && report.changedRules.isEmpty {
                Diagnostics.note("'\(table)' is already tracked; nothing changed")
            }
        }
    }
}
