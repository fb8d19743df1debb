import ArgumentParser
import BundleSync

struct Untrack: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "untrack",
        abstract: "Stop syncing a table.",
        discussion: """
        Removes the table's capture triggers and bookkeeping and keeps its rows as they are. \
        Changes not yet exported are sealed first, when the table still exists. Also the way \
        out when a tracked table was dropped. Other replicas go on syncing the table among \
        themselves; what their bundles change in it is kept here, listed by 'status', and \
        merged once the table is tracked again.

        Example:
          bundlesync untrack clinic.db old_visits
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Argument(help: "The table to stop syncing.") var table: String

    func run() throws {
        let replica = try Opened.replica(db)
        try replica.untrack(table: table)
        Diagnostics.note("'\(shown(table))' is no longer synced; its rows stay as they are")
    }
}
