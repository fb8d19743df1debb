import ArgumentParser
import BundleSync

struct Reidentify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reidentify",
        abstract: "Settle a replica file that was copied or moved.",
        discussion: """
        A replica remembers the machine and path where it was made. A copy of the file \
        elsewhere refuses to write history, because two copies writing under one identity \
        would fork it. Run this on the copy to make it a new replica with a new key pair: the \
        data and the history it holds stay. If the file was moved and the original no longer \
        exists anywhere, use --moved to keep the identity instead. Never use --moved on a copy \
        whose original is still in use, or on an older backup of a replica that has exported \
        since: its history would fork, and peers will refuse it.

        Example:
          bundlesync reidentify copy-of-clinic.db
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Flag(help: "The file was moved and is the only copy: keep its identity.") var moved = false
    @Option(help: "The new replica's name (default: the old name and the start of the new id).") var name: String?

    func validate() throws {
        if moved && name != nil { throw ValidationError("--name applies only to a new identity, not with --moved") }
    }

    func run() throws {
        let replica = try Opened.replica(db)
        let old = (replica.name, replica.id)
        if try replica.reidentify(moved: moved, newName: name) {
            Diagnostics.note("'\(db)' is now the replica '\(replica.name)'; it was a copy of '\(old.0)' (\(old.1.short))")
        } else {
            Diagnostics.note("'\(db)' keeps the identity of '\(replica.name)' at its new place")
        }
        output("\(replica.name) \(replica.id.hex)")
    }
}
