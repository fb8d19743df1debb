import ArgumentParser
import BundleSync

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show or change a replica's settings.",
        discussion: """
        Settings:
          encrypt always   write only encrypted bundles; export refuses a peer
                           whose encryption key is not known here
          encrypt never    encrypt only with 'export --encrypt' (the default)
          keep-batches N   keep each replica's latest N batches when pruning,
                           even once every known peer holds them, so that a
                           peer a little behind still gets batches rather
                           than a snapshot (default 32; 0 prunes all that
                           every known peer holds)
          fleet N          N replicas write to this group, this one included:
                           deleted text and removed JSON keys are dropped
                           from the merge state once N replicas have been
                           heard from and each holds the deletion (default
                           0: never dropped; raise N before a new device
                           starts writing)

        Without a value, prints the setting.

        Example:
          bundlesync config clinic.db encrypt always
          bundlesync config clinic.db keep-batches 100
          bundlesync config clinic.db fleet 4
        """
    )

    @Argument(help: "The replica's database file.") var db: String
    @Argument(help: "The setting: encrypt, keep-batches or fleet.") var setting: String
    @Argument(help: "The new value: always or never for encrypt, a count for keep-batches or fleet.") var value: String?

    func validate() throws {
        switch setting {
        case "encrypt":
            if let value, value != "always", value != "never" { throw ValidationError("'encrypt' takes 'always' or 'never'") }
        case "keep-batches":
            if let value, UInt32(value) == nil { throw ValidationError("'keep-batches' takes a count of batches, such as 32") }
        case "fleet":
            if let value, UInt32(value) == nil { throw ValidationError("'fleet' takes the number of replicas in the group, such as 4") }
        default:
            throw ValidationError("unknown setting '\(setting)'; the settings are encrypt, keep-batches and fleet")
        }
    }

    func run() throws {
        let replica = try Opened.replica(db)
        if setting == "keep-batches" {
            if let value, let n = UInt32(value) { try replica.setKeptBatches(UInt64(n)) }
            output("keep-batches \(try replica.keptBatches)")
            return
        }
        if setting == "fleet" {
            if let value, let n = UInt32(value) { try replica.setFleetSize(UInt64(n)) }
            output("fleet \(try replica.fleetSize)")
            return
        }
        if let value { try replica.setRequiresEncryption(value == "always") }
        output("encrypt \(try replica.requiresEncryption ? "always" : "never")")
    }
}
