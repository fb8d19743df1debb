import ArgumentParser
import BundleSync

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show or change a replica's settings.",
        discussion: """
        Settings:
          encrypt always   write only encrypted bundles; export refuses a peer
                           whose encryption key is not known here
          encrypt never    encrypt only with 'export --encrypt' (the default)

        Without a value, prints the setting.

        Example:
          bundlesync config clinic.db encrypt always
        """
    )

    @Argument(help: "The replica's database file.") var db: String
    @Argument(help: "The setting: encrypt.") var setting: String
    @Argument(help: "The new value: always or never.") var value: String?

    func validate() throws {
        guard setting == "encrypt" else { throw ValidationError("unknown setting '\(setting)'; the only one is encrypt") }
        if let value, value != "always", value != "never" { throw ValidationError("'encrypt' takes 'always' or 'never'") }
    }

    func run() throws {
        let replica = try Opened.replica(db)
        if let value { try replica.setRequiresEncryption(value == "always") }
        output("encrypt \(try replica.requiresEncryption ? "always" : "never")")
    }
}
