import ArgumentParser
import BundleSync
import Foundation

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge bundles into a replica.",
        discussion: """
        Takes bundle files, and every *.bsync file in each directory given, in any order. Each \
        bundle is checked completely and then merged in one transaction; one already imported \
        is skipped. Batches whose earlier history has not arrived are parked and merged \
        automatically once it does. Bad bundles are refused whole and named; the others still \
        import, and the exit status is the worst one.

        Example:
          bundlesync import clinic.db /media/usb
        """
    )

    @Argument(help: "The replica's database file.") var db: String
    @Argument(help: "Bundle files or directories of them.") var paths: [String]
    @Option(help: ArgumentHelp("Refuse bundles with timestamps more than this many seconds ahead of this device's clock (by default they are only reported, beyond 24 h).", valueName: "seconds"))
    var maxClockSkew: Int64?
    @Flag(help: "Print one JSON document describing each bundle's outcome.")
    var json = false
    @Option(help: ArgumentHelp("A file holding the passphrase of bundles encrypted to one.", valueName: "file"))
    var passphraseFile: String?
    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        let replica = try Opened.replica(db)
        replica.progress = outputOptions.apply()
        let files = BundlePaths.expand(paths, sayingWhereNone: true)
        var options = ImportOptions()
        options.passphrase = try PassphraseFile.read(passphraseFile)
        if let maxClockSkew {
            options.clockSkewBound = maxClockSkew * 1000
            options.refuseClockSkew = true
        }
        let outcomes = try replica.importBundles(files, options: options)
        let worst = ImportReport.print(outcomes)
        if json {
            output(jsonString(["bundles": outcomes.map { o -> [String: Any] in
                var d: [String: Any] = ["path": o.path, "status": o.status.rawValue, "applied": o.applied + o.released,
                                        "parked": o.parked, "already_imported": o.known, "warnings": o.warnings]
                if let e = o.error { d["error"] = e.message; d["exit_code"] = Int(ExitStatus.code(for: e.code)) }
                if o.parked > 0 {
                    d["parked_because"] = "earlier history of a batch's origin, or history it depends on, has not arrived; 'bundlesync status' names what each parked batch waits for"
                }
                if let rows = o.snapshotRows { d["snapshot_rows"] = rows }
                if !o.forks.isEmpty { d["forks"] = o.forks.map(\.message) }
                return d
            }]))
        }
        if worst != 0 { throw ExitCode(worst) }
    }
}

/// Reports import outcomes on stderr, one line per bundle.
enum ImportReport {
    /// - Parameter mailbox: In a shared folder, bundles encrypted to other replicas are
    ///   expected: they are noted, not refused.
    /// - Returns: The worst exit status among refused bundles, or 0.
    static func print(_ outcomes: [ImportOutcome], mailbox: Bool = false) -> Int32 {
        var worst: Int32 = 0
        for o in outcomes {
            if mailbox, o.status == .refused, let e = o.error, e.code == .notAddressed {
                Diagnostics.note("\(o.path): skipped, encrypted to other replicas")
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
                    Diagnostics.report(e)
                    worst = max(worst, ExitStatus.code(for: e.code))
                }
            case .applied where o.snapshotRows != nil:
                Diagnostics.note("\(o.path): applied a snapshot of \(plural(o.snapshotRows!, "row", "rows"))"
                    + (o.released > 0 ? ", then \(plural(o.released, "parked batch", "parked batches"))" : ""))
            case .applied:
                Diagnostics.note("\(o.path): applied \(plural(o.applied + o.released, "batch", "batches"))"
                    + (o.parked > 0 ? ", parked \(o.parked)" : "") + (o.known > 0 ? ", \(o.known) already here" : ""))
            case .skipped:
                Diagnostics.note("\(o.path): skipped, already imported")
            case .parked:
                Diagnostics.note("\(o.path): parked \(plural(o.parked, "batch", "batches")) until earlier history arrives (see 'bundlesync status')")
            }
        }
        return worst
    }
}

/// "1 batch", "2 batches".
func plural(_ n: Int, _ one: String, _ many: String) -> String { "\(n) \(n == 1 ? one : many)" }

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
                out += names.filter { $0.hasSuffix(".bsync") && !$0.hasPrefix(".") }.sorted()
                    .map { PathText.join(p, $0) }
                    .filter { var st = stat(); return stat($0, &st) == 0 && st.st_mode & S_IFMT == S_IFREG }
            } else {
                out.append(p)
            }
        }
        return out
    }
}
