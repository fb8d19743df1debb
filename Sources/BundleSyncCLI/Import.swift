import ArgumentParser
import BundleSync
import BundleSyncStore
import Foundation

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Merge bundles into a replica.",
        discussion: """
        Takes bundle files, and every *.bsync file in each directory given, in any order. Each \
        bundle is checked completely and then merged in transactions of whole batches; one \
        already imported \
        is skipped. Batches whose earlier history has not arrived are parked and merged \
        automatically once it does. Bad bundles are refused whole and named; the others still \
        import, and the exit status is the worst one.

        Example:
          bundlesync import clinic.db /media/usb
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Argument(help: "Bundle files or directories of them.", completion: Completions.bundles) var paths: [String]
    @Option(help: ArgumentHelp("Refuse bundles with timestamps more than this many seconds ahead of this device's clock (by default they are only reported, beyond 24 h).", valueName: "seconds"))
    var maxClockSkew: Int64?
    @Flag(help: "Print one JSON document describing each bundle's outcome.")
    var json = false
    @Flag(help: "Check the bundles against the replica and report what importing them would do, writing nothing.")
    var dryRun = false
    @Option(help: ArgumentHelp("A file holding the passphrase of bundles encrypted to one.", valueName: "file"))
    var passphraseFile: String?
    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        // A dry run is the import itself, in a transaction that is rolled back at the end.
        RollbackOnly.connectionsOpenedNow = dryRun
        let replica = try Opened.replica(db)
        replica.progress = outputOptions.apply()
        guard paths.filter({ $0 == StandardInputBundle.name }).count <= 1 else {
            throw ValidationError("standard input ('-') holds one bundle; give it once")
        }
        // A bundle from standard input is held in the replica's folder while it is read.
        let stdin = try paths.contains(StandardInputBundle.name) ? StandardInputBundle(spoolingInto: PathText.directory(of: db)) : nil
        let files = BundlePaths.expand(paths, sayingWhereNone: true).map { $0 == StandardInputBundle.name ? stdin!.path : $0 }
        var options = ImportOptions()
        options.passphrase = try PassphraseFile.read(passphraseFile)
        if let maxClockSkew {
            options.clockSkewBound = maxClockSkew * 1000
            options.refuseClockSkew = true
        }
        var imported: [ImportOutcome] = []
        var changes: [ChangeCounter.Counts]? = nil
        if dryRun {
            // One bundle at a time, each with a counter of its own changes.
            var counts: [ChangeCounter.Counts] = []
            for file in files {
                let counter = try ChangeCounter(replica.db)
                let outcome = try replica.importBundles([file], options: options)
                imported += outcome
                let c = outcome.first?.status == .refused ? ChangeCounter.Counts() : try counter.counts().values.reduce(into: ChangeCounter.Counts()) {
                    $0.inserted += $1.inserted; $0.updated += $1.updated; $0.deleted += $1.deleted; $0.cells += $1.cells
                }
                counts.append(c)
            }
            replica.db.rollBackEverything()
            changes = counts
        } else {
            imported = try replica.importBundles(files, options: options)
        }
        let outcomes = imported.map { o -> ImportOutcome in
            guard let stdin, o.path == stdin.path else { return o }
            var shown = o
            shown.path = StandardInputBundle.name
            shown.error = o.error.map(stdin.shown)
            shown.forks = o.forks.map(stdin.shown)
            shown.warnings = o.warnings.map(stdin.shown)
            return shown
        }
        // Each bundle's result on stdout (unless the JSON document is the output), what
        // went wrong on stderr.
        let worst = ImportReport.print(outcomes, results: json ? .none : .standardOutput, changes: changes)
        if dryRun { Diagnostics.note("dry run: nothing was written") }
        if json {
            var document: [String: Any] = ["bundles": outcomes.enumerated().map { index, o -> [String: Any] in
                if BundlePaths.vanished(o) {
                    return ["path": o.path, "status": "skipped", "vanished": true, "applied": 0, "parked": 0, "already_imported": 0, "warnings": [String]()]
                }
                var d: [String: Any] = ["path": o.path, "status": o.status.rawValue, "applied": o.applied + o.released,
                                        "parked": o.parked, "already_imported": o.known, "warnings": o.warnings]
                if let e = o.error {
                    d["error"] = e.message
                    d["exit_code"] = Int(ExitStatus.code(for: e.code))
                    d["code"] = JSONFailure.name(e.code)
                    d["hint"] = BundleHints.hint(for: e) ?? NSNull()
                }
                if o.parked > 0 {
                    d["parked_because"] = "earlier history of a batch's origin, or history it depends on, has not arrived; 'bundlesync status' names what each parked batch waits for"
                }
                if let rows = o.snapshotRows { d["snapshot_rows"] = rows }
                if !o.forks.isEmpty { d["forks"] = o.forks.map(\.message) }
                if let c = changes?[index] {
                    d["would_change"] = ["rows": c.rows, "inserted": c.inserted, "updated": c.updated, "deleted": c.deleted, "cells": c.cells]
                }
                return d
            }]
            if dryRun { document["dry_run"] = true }
            output(jsonString(document))
        }
        if worst != 0 { throw ExitCode(worst) }
    }
}

/// Reports import outcomes, one line per bundle; warnings and errors on stderr.
enum ImportReport {
    /// Where the result lines go: stdout for `import`; stderr for `sync`, whose stdout is the
    /// bundle it writes; nowhere when a JSON document says it all.
    enum Results { case standardOutput, standardError, none }

    /// - Returns: The worst exit status among refused bundles, or 0.
    /// - Parameter changes: For a dry run, what each bundle would change, in the order of
    ///   `outcomes`; the lines then say what would happen.
    /// - Parameter mailbox: In a shared folder, bundles encrypted to other replicas, and delta
    ///   snapshots for replicas holding more history, are expected: they are noted, not refused.
    static func print(_ outcomes: [ImportOutcome], results: Results, changes: [ChangeCounter.Counts]? = nil, mailbox: Bool = false) -> Int32 {
        var worst: Int32 = 0
        func result(_ line: String) {
            switch results {
            case .standardOutput: output(line)
            case .standardError: Diagnostics.note(line)
            case .none: break
            }
        }
        for (index, var o) in outcomes.enumerated() {
            if o.path == StandardInputBundle.name { o.path = StandardInputBundle.shown }
            if let c = changes?[index] {
                worst = max(worst, dryRunLine(o, c, result))
                continue
            }
            if mailbox, o.status == .refused, let e = o.error, e.code == .notAddressed {
                result("\(o.path): skipped, encrypted to other replicas")
                continue
            }
            if mailbox, o.status == .refused, o.baseNotHeld {
                result("\(o.path): skipped, a delta snapshot for replicas holding more history (its exporter sends this one what it lacks once it reads this replica's bundle)")
                continue
            }
            if mailbox, o.status == .refused, o.baseNotHeld {
                result("\(o.path): skipped, a delta snapshot for replicas holding more history (its exporter sends this one what it lacks once it reads this replica's bundle)")
                continue
            }
            if BundlePaths.vanished(o) {
                result("\(o.path): skipped, removed from its folder after it was listed (by another replica's sync?)")
                continue
            }
            o.warnings.forEach(Diagnostics.warn)
            for fork in o.forks {
                Diagnostics.report(fork)
                worst = max(worst, ExitStatus.code(for: fork.code))
            }
            switch o.status {
            case .refused:
                if let e = o.error {
                    result("\(o.path): refused: \(e.message)")
                    Diagnostics.report(e)
                    worst = max(worst, ExitStatus.code(for: e.code))
                }
            case .applied where o.snapshotRows != nil:
                result("\(o.path): applied a snapshot of \(plural(o.snapshotRows!, "row", "rows"))"
                    + (o.released > 0 ? ", then \(plural(o.released, "parked batch", "parked batches"))" : ""))
            case .applied:
                result("\(o.path): applied \(plural(o.applied + o.released, "batch", "batches"))"
                    + (o.parked > 0 ? ", parked \(o.parked)" : "") + (o.known > 0 ? ", \(o.known) already here" : ""))
            case .skipped:
                result("\(o.path): skipped, already imported")
            case .parked:
                result("\(o.path): parked \(plural(o.parked, "batch", "batches")) until earlier history arrives (see 'bundlesync status')")
            }
        }
        return worst
    }

    /// What importing one bundle would do; the same warnings and errors as the import.
    static func dryRunLine(_ o: ImportOutcome, _ c: ChangeCounter.Counts, _ result: (String) -> Void) -> Int32 {
        var worst: Int32 = 0
        o.warnings.forEach(Diagnostics.warn)
        for fork in o.forks {
            Diagnostics.report(fork)
            worst = max(worst, ExitStatus.code(for: fork.code))
        }
        let changing = "changing \(plural(c.rows, "row", "rows")) (\(Size.grouped(c.inserted)) inserted, \(Size.grouped(c.updated)) updated, \(Size.grouped(c.deleted)) deleted) and \(plural(c.cells, "cell", "cells"))"
        switch o.status {
        case .refused:
            if let e = o.error {
                result("\(o.path): would be refused: \(e.message)")
                Diagnostics.report(e)
                worst = max(worst, ExitStatus.code(for: e.code))
            }
        case .applied where o.snapshotRows != nil:
            result("\(o.path): would apply a snapshot of \(plural(o.snapshotRows!, "row", "rows")), \(changing)")
        case .applied:
            result("\(o.path): would apply \(plural(o.applied + o.released, "batch", "batches"))"
                + (o.parked > 0 ? " and park \(o.parked)" : "") + (o.known > 0 ? " (\(o.known) already here)" : "") + ", \(changing)")
        case .skipped:
            result("\(o.path): would be skipped, already imported")
        case .parked:
            result("\(o.path): would park \(plural(o.parked, "batch", "batches")) until earlier history arrives")
        }
        return worst
    }
}

/// "1 batch", "2 batches", "32,768 row changes".
func plural(_ n: Int, _ one: String, _ many: String) -> String { "\(Size.grouped(n)) \(n == 1 ? one : many)" }

/// Expands directories into the bundle files they hold.
enum BundlePaths {
    /// Says so, for each directory given that holds no bundle.
    static func expand(_ paths: [String], sayingWhereNone: Bool) -> [String] {
        let files = expand(paths)
        if sayingWhereNone {
            for p in paths where isDirectory(p) && !files.contains(where: { PathText.directory(of: $0) == p }) {
                Diagnostics.note("'\(p)' holds no *.bsync file")
            }
        }
        return files
    }

    /// The files found by listing a folder (not named on the command line), this run.
    nonisolated(unsafe) static var listed: Set<String> = []

    /// Whether a bundle found in a folder was gone when it was opened: another replica's
    /// `sync` may remove its own superseded bundles at any time. Not an error; the file is
    /// skipped.
    static func vanished(_ o: ImportOutcome) -> Bool {
        o.status == .refused && o.error.map { vanished(o.path, $0) } == true
    }

    static func vanished(_ path: String, _ error: BundleSyncError) -> Bool {
        guard error.code == .noInput, listed.contains(path) else { return false }
        var st = stat()
        return lstat(path, &st) != 0 && errno == ENOENT
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    static func expand(_ paths: [String]) -> [String] {
        var out: [String] = []
        for p in paths {
            var isDir: ObjCBool = false
            // A missing path is passed on: the reader refuses it (66) like any bad bundle,
            // so the others are still handled.
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDir) && isDir.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []
                // Only regular files: a FIFO or a device named like a bundle is not one.
                let found = names.filter { $0.hasSuffix(".bsync") && !$0.hasPrefix(".") }.sorted()
                    .map { PathText.join(p, $0) }
                    .filter { var st = stat(); return stat($0, &st) == 0 && st.st_mode & S_IFMT == S_IFREG }
                listed.formUnion(found)
                out += found
            } else {
                out.append(p)
            }
        }
        return out
    }
}
