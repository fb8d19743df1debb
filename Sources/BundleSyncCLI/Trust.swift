import ArgumentParser
import BundleSync

struct Trust: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "Keep the list of replicas this one accepts history from.",
        discussion: """
        By default any replica may join (trust on first use). Once 'only on' is set, import \
        refuses, with exit status 77, bundles exported by or relaying history of a replica \
        that is not on the list. A replica's id is derived from its public key, so an id on \
        the list can never be claimed by another key.

        Actions:
          list                 show every known replica and whether it is trusted
          add PEER [--name N]  trust a replica (known name, id prefix or full id)
          remove PEER          stop trusting it
          only on|off          enforce the list, or go back to trust on first use

        Example:
          bundlesync trust clinic.db add tablet-2
          bundlesync trust clinic.db add 3fa9c2d18b7e40aa91c2d3e4f5a6b7c8 \\
              --name tablet-3
          bundlesync trust clinic.db only on
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Argument(help: "list, add, remove or only.", completion: Completions.trustActions) var action: String
    @Argument(help: "A peer for add and remove; on or off for only.", completion: Completions.trustValue) var value: String?
    @Option(help: "A name to remember the peer by (with add).") var name: String?
    @Flag(help: "Print one JSON document (with list).") var json = false

    func validate() throws {
        switch action {
        case "list": guard value == nil else { throw ValidationError("'list' takes no argument") }
        case "add", "remove": guard value != nil else { throw ValidationError("'\(action)' needs a peer") }
        case "only": guard value == "on" || value == "off" else { throw ValidationError("'only' takes 'on' or 'off'") }
        default: throw ValidationError("unknown action '\(action)'; use list, add, remove or only")
        }
    }

    func run() throws {
        let replica = try Opened.replica(db)
        switch action {
        case "add":
            let id = try replica.trust.set(value!, trusted: true, name: name)
            Diagnostics.note("trusted \(id.hex)")
        case "remove":
            let id = try replica.trust.set(value!, trusted: false)
            Diagnostics.note("no longer trusted: \(id.hex)")
        case "only":
            try replica.trust.enforce(value == "on")
            Diagnostics.note(value == "on" ? "only trusted replicas may contribute history now" : "any replica may join again (trust on first use)")
            if value == "on" {
                for e in try replica.trust.entries() where !e.trusted {
                    Diagnostics.note("  not trusted: \(e.id.hex) \(e.name ?? "")")
                }
            }
        default:
            let entries = try replica.trust.entries()
            let only = try replica.trust.isEnforced
            if json {
                output(jsonString(["only": only, "replicas": entries.map {
                    ["id": $0.id.hex, "name": $0.name as Any, "trusted": $0.trusted, "self": $0.isSelf] as [String: Any]
                }]))
            } else {
                output("trust list \(only ? "enforced (only on)" : "not enforced (trust on first use)")")
                for e in entries {
                    output("  \(e.trusted ? "trusted  " : "untrusted") \(e.id.hex) \(e.name ?? "")\(e.isSelf ? " (this replica)" : "")")
                }
            }
        }
    }
}
