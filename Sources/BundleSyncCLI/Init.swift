import ArgumentParser
import BundleSync

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Make a database a replica.",
        discussion: """
        Creates the file if it is missing, generates the replica's Ed25519 identity, adds the \
        bookkeeping tables to the same file and switches it to WAL mode. Running it again on a \
        replica changes nothing and prints the existing identity.

        Example:
          bundlesync init clinic.db --name tablet-1
        """
    )

    @Argument(help: "The SQLite database file.", completion: Completions.database) var db: String
    @Option(help: ArgumentHelp("A short name for this replica, used in file names and by peers (letters, digits, '-', '_', '.').", valueName: "name"))
    var name: String?

    func run() throws {
        let (replica, created) = try Opened.initialize(db, name: name)
        if !created { Diagnostics.note("'\(db)' is already a replica") }
        output("\(replica.name) \(replica.id.hex)")
    }
}
