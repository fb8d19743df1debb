import ArgumentParser
import BundleSync
import Foundation

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Prove bundles whole and authentic.",
        discussion: """
        Checks everything a bundle can prove on its own: layout and lengths, every batch's hash \
        and its origin's signature, the hash chain between batches, the digests of the whole \
        file and the exporter's signature. Prints one line per bundle. With --db it also checks \
        the bundle against that replica: tables it tracks, links to the history it holds, forks. \
        An encrypted bundle is proved whole and signed by its exporter without any key; with \
        --db of one of its recipients, its content is checked too.

        Example:
          bundlesync verify /media/usb/tablet-2-14-3fa9c2d1.bsync
        """
    )

    @Argument(help: "Bundle files or directories of them.", completion: Completions.bundles) var paths: [String]
    @Option(help: ArgumentHelp("Also check against this replica.", valueName: "db"), completion: Completions.database) var db: String?
    @Flag(help: "Print one JSON document.") var json = false
    @Option(help: ArgumentHelp("A file holding the passphrase of bundles encrypted to one.", valueName: "file"))
    var passphraseFile: String?
    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        let progress = outputOptions.apply()
        let replica = try db.map { try Opened.replica($0) }
        replica?.progress = progress
        var worst: Int32 = 0
        let passphrase = try PassphraseFile.read(passphraseFile)
        var reports: [[String: Any]] = []
        guard paths.filter({ $0 == StandardInputBundle.name }).count <= 1 else {
            throw ValidationError("standard input ('-') holds one bundle; give it once")
        }
        // A bundle from standard input is held in the temporary folder while it is read.
        let stdin = try paths.contains(StandardInputBundle.name) ? StandardInputBundle(spoolingInto: NSTemporaryDirectory()) : nil
        let files = BundlePaths.expand(paths)
        guard !files.isEmpty else {
            throw BundleSyncError(.noInput, "no bundle to verify: \(paths.map { "'\($0)'" }.joined(separator: ", ")) \(paths.count == 1 ? "holds" : "hold") no *.bsync file")
        }
        for given in files {
            let fromStdin = given == StandardInputBundle.name
            let path = fromStdin ? stdin!.path : given
            let label = fromStdin ? StandardInputBundle.shown : given
            do {
                let s = try replica.map { try $0.verifyAgainstHistory(path, passphrase: passphrase) }
                    ?? BundleSummary.read(path: path, progress: progress, keyring: passphrase.map { BundleKeyring(passphrase: $0) })
                let by = "exported by \(s.header.exporterName) (\(s.header.exporter.short)), \(Size.text(s.fileBytes))"
                if !json, !s.header.isOpened {
                    output("\(label): OK, encrypted to \(plural(s.header.recipients.count, "replica", "replicas"))\(s.header.passphrase == nil ? "" : " and a passphrase") (content not checked without a recipient's key), \(by)")
                } else if !json, let heads = s.header.snapshotHeads {
                    output("\(label): OK, a \(s.header.isDeltaSnapshot ? "delta snapshot" : "snapshot") of \(plural(s.rowCount, "row", "rows")) holding the history of \(plural(heads.count, "replica", "replicas")), \(by)")
                } else if !json {
                    output("\(label): OK, \(plural(s.batchCount, "batch", "batches")) from \(plural(s.origins.count, "replica", "replicas")), \(plural(s.rowCount, "row change", "row changes")), \(by)")
                }
                var report: [String: Any] = ["path": given, "ok": true, "batches": s.batchCount, "rows": s.rowCount, "exporter": s.header.exporter.hex,
                                             "file_bytes": s.fileBytes]
                if s.header.isEncrypted {
                    report["encrypted"] = true
                    report["opened"] = s.header.isOpened
                }
                reports.append(report)
            } catch let e as BundleSyncError where BundlePaths.vanished(path, e) {
                if !json { output("\(label): skipped, removed from its folder after it was listed (by another replica's sync?)") }
                reports.append(["path": given, "ok": true, "vanished": true])
            } catch let e as BundleSyncError {
                let code = ExitStatus.code(for: e.code)
                worst = max(worst, code)
                let error = fromStdin ? stdin!.shown(e.about(bundle: path)) : e.about(bundle: path)
                if !json { output("\(label): FAILED: \(error.message)") }
                Diagnostics.report(error)
                reports.append(["path": given, "ok": false, "error": error.message, "exit_code": Int(code), "code": JSONFailure.name(e.code),
                                "hint": BundleHints.hint(for: error) ?? NSNull()])
            }
        }
        if json { output(jsonString(["bundles": reports])) }
        if worst != 0 { throw ExitCode(worst) }
    }
}
