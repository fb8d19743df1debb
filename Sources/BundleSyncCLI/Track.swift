import ArgumentParser
import BundleSync

struct Track: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "track",
        abstract: "Start syncing a table.",
        discussion: """
        The table must exist and have a PRIMARY KEY. Capture triggers written in plain SQL \
        record every later write from any program, and the rows already in the table become \
        this replica's changes. Columns added later (ALTER TABLE ... ADD COLUMN) are synced \
        from the next command on; a column renamed in the table is followed with --renamed.

        Columns merge by last writer wins unless named with --text (concurrent edits to \
        different places of a text all survive) or --json (objects merge key by key). Run \
        it again with another rule to change a column's rule, on every replica.

        Example:
          bundlesync track clinic.db notes --text body --json settings
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Argument(help: "The table to sync.") var table: String
    @Option(name: .customLong("text"), help: ArgumentHelp("Merge this column's concurrent text edits.", valueName: "column"))
    var textColumns: [String] = []
    @Option(name: .customLong("json"), help: ArgumentHelp("Merge this column's JSON objects key by key.", valueName: "column"))
    var jsonColumns: [String] = []
    @Option(name: .customLong("lww"), help: ArgumentHelp("Merge this column by last writer wins (the default).", valueName: "column"))
    var lwwColumns: [String] = []
    @Option(name: .customLong("renamed"), help: ArgumentHelp("A synced column renamed in the table: it keeps syncing under the name bundles know.", valueName: "old=new"))
    var renamedColumns: [String] = []

    func run() throws {
        let replica = try Opened.replica(db)
        var rules: [String: ColumnRule] = [:]
        for (rule, names) in [(ColumnRule.lww, lwwColumns), (.text, textColumns), (.json, jsonColumns)] {
            for name in names {
                if let other = rules[name], other != rule {
                    throw ValidationError("column '\(shown(name))' is given two rules, --\(other) and --\(rule)")
                }
                rules[name] = rule
            }
        }
        var renamed: [String: String] = [:]
        for pair in renamedColumns {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ValidationError("--renamed takes OLD=NEW, not '\(pair)'")
            }
            renamed[parts[0]] = parts[1]
        }
        let report = try replica.track(table: table, rules: rules, renamed: renamed)
        for (old, new) in renamed.sorted(by: { $0.key < $1.key }) {
            Diagnostics.note("'\(shown(new))' of '\(shown(table))' syncs as '\(shown(old))', the name other replicas know")
        }
        report.warnings.forEach(Diagnostics.warn)
        if report.newlyTracked {
            Diagnostics.note("tracking '\(shown(table))': \(report.existingRows) existing rows become this replica's changes")
        } else {
            if !report.addedColumns.isEmpty {
                Diagnostics.note("'\(shown(table))' now also syncs \(report.addedColumns.map { "'\(shown($0))'" }.joined(separator: ", "))")
            }
            for c in report.changedRules {
                Diagnostics.note("'\(shown(c))' of '\(shown(table))' now merges by '\(rules[c]!)'; give every replica the same rule")
            }
            if report.addedColumns.isEmpty && report.changedRules.isEmpty {
                Diagnostics.note("'\(shown(table))' is already tracked; nothing changed")
            }
        }
    }
}
