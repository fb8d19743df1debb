import ArgumentParser
import BundleSync

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Drop stored history that every known peer already holds.",
        discussion: """
        A replica keeps the batches it applied so that it can pass them on. This drops those \
        that every peer it has heard from is known to hold. A peer that later needs dropped \
        history, or a new replica, gets a snapshot of the current state instead: export \
        switches to one by itself. 'sync' prunes after every run.

        Example:
          bundlesync prune clinic.db
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String

    func run() throws {
        let replica = try Opened.replica(db)
        let result = try replica.prune()
        let status = try replica.status()
        Diagnostics.note("pruned \(plural(result.batches, "batch", "batches")) (\(Size.text(result.bytes))); history holds \(plural(status.historyBatches, "batch", "batches")) (\(Size.text(status.historyBytes)))")
    }
}
