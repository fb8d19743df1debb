import ArgumentParser
import BundleSync

struct Digest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digest",
        abstract: "Print the state digest of the tracked tables.",
        discussion: """
        A Merkle root over the tracked tables' content: tables by name, rows by primary key, \
        values with their SQLite types. Two replicas print the same digest exactly when their \
        tracked content is the same.

        Example:
          bundlesync digest clinic.db
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Flag(help: "Print one JSON document.") var json = false

    func run() throws {
        let digest = try Opened.replica(db).digest().hex
        output(json ? jsonString(["path": db, "digest": digest]) : digest)
    }
}
