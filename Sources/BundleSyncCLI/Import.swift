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

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Argument(help: "Bundle files or directories of them.", completion: Completions.bundles) var paths: [String]
    @Option(help: ArgumentHelp("Refuse bundles with timestamps more than this many seconds ahead of this device's clock (by default they are only reported, beyond 24 h).", valueName: "seconds"))
    var maxClockSkew: Int64?
    @Flag(help: "Print one JSON document describing each bundle's outcome.")
    var json = false
    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        let replica = try Opened.replica(db)
        replica.progress = outputOptions.apply()
        guard paths.filter({ $0 == StandardInputBundle.name }).count <= 1 else {
            throw ValidationError("standard input ('-') holds one bundle; give it once")
        }
        // A bundle from standard input is held in the replica's folder while it is read.
        let stdin = try paths.contains(StandardInputBundle.name) ? StandardInputBundle(spoolingInto: PathText.directory(of: db)) : nil
        let files = BundlePaths.expand(paths, sayingWhereNone: true).map { $0 == StandardInputBundle.name ? stdin!.path : $0 }
        var options = ImportOptions()
        if let maxClockSkew {
            options.clockSkewBound = maxClockSkew * 1000
            options.refuseClockSkew = true
        }
        let outcomes = try replica.importBundles(files, options: options).map { o -> ImportOutcome in
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
        let worst = ImportReport.print(outcomes, results: json ? .none : .standardOutput)
        if json {
            output(jsonString(["bundles": outcomes.map { o -> [String: Any] in
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
                return d
            }]))
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
    static func print(_ outcomes: [ImportOutcome], results: Results) -> Int32 {
        var worst: Int32 = 0
        func result(_ line: String) {
            switch results {
            case .standardOutput: output(line)
            case .standardError: Diagnostics.note(line)
            case .none: break
            }
        }
        for var o in outcomes {
            if o.path == StandardInputBundle.name { o.path = StandardInputBundle.shown }
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
