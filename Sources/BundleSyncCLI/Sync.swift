import ArgumentParser
import BundleSync

struct Sync: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Use a shared folder as a mailbox: import everything in it, then export into it.",
        discussion: """
        Imports every bundle in DIR, then writes into DIR one bundle with what the known peers \
        still lack.

        Example:
          bundlesync sync clinic.db /media/usb/bundles
        """
    )

    @Argument(help: "The replica's database file.") var db: String
    @Argument(help: "The shared folder.") var dir: String
    @OptionGroup var outputOptions: OutputOptions

    func run() throws {
        let replica = try Replica.open(path: db)
        replica.progress = outputOptions.apply()
        let files = BundlePaths.expand([dir])
        let worst = ImportReport.print(try replica.importBundles(files))
        let result = try replica.export(to: dir, target: .automatic)
        Diagnostics.note("exported \(plural(result.batches, "batch", "batches"))")
        output(result.path)
        if worst != 0 { throw ExitCode(worst) }
    }
}
