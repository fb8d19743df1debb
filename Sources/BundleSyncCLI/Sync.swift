import ArgumentParser
import BundleSync

struct Sync: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Use a shared folder as a mailbox: import everything in it, then export into it.",
        discussion: """
        Imports every bundle in DIR, then writes into DIR one bundle with what the known peers \
        still lack, removes this replica's own older bundles there (the new one supersedes \
        them), and prunes history every known peer holds. Other replicas' files are never \
        touched, so the folder holds at most one bundle per replica. Bundles encrypted to \
        other replicas are skipped. A replica set to 'config DB encrypt always' encrypts its \
        bundle to every known peer; while it knows no peer's key, it writes a hello bundle, \
        with its keys and no changes, instead.

        Example:
          bundlesync sync clinic.db /media/usb/bundles
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Argument(help: "The shared folder.", completion: Completions.folder) var dir: String
    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        try Mailbox.requireFolder(dir)
        let replica = try Opened.replica(db)
        replica.progress = outputOptions.apply()
        let files = BundlePaths.expand([dir])
        let outcomes = try replica.importBundles(files)
        let worst = ImportReport.print(outcomes, results: .standardError, mailbox: true)
        let result = try replica.exportToFolder(dir, target: .automatic, imported: outcomes, helloWhenNoKeys: true)
        if !result.written {
            Diagnostics.note("nothing new to send: '\(result.path)' still tells the others what this replica holds")
        } else if result.hello {
            Diagnostics.note("wrote a hello bundle with this replica's keys and no changes: no peer's encryption key is known yet")
        } else if result.snapshot {
            Diagnostics.note("exported a snapshot of the current state (\(plural(result.rows, "row", "rows")))")
        } else {
            Diagnostics.note("exported \(plural(result.batches, "batch", "batches"))")
        }
        output(result.path)
        for path in replica.mailbox(dir).removeSupersededBundles(keeping: result.path) + replica.mailbox(dir).removeStaleTemporaryFiles() {
            Diagnostics.note("removed \(path), superseded")
        }
        let pruned = try replica.prune()
        if pruned.batches > 0 {
            Diagnostics.note("pruned \(plural(pruned.batches, "batch", "batches")) every known peer holds")
        }
        if worst != 0 { throw ExitCode(worst) }
    }
}
