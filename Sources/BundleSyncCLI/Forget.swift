import ArgumentParser
import BundleSync
import Foundation

struct Forget: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Stop keeping history for peers that left.",
        discussion: """
        A replica keeps every batch that some peer it has heard from may still lack, and its \
        exports carry what the least up-to-date peer lacks. A peer that never comes back pins \
        both for good. 'forget' takes peers out of that count and prunes the history nobody \
        else needs. Their own writes stay. A forgotten peer that comes back with news counts \
        again, and receives a snapshot if the history it lacks is gone. 'status' shows how \
        long each peer has been silent and what it keeps.

        Examples:
          bundlesync forget clinic.db laptop-old
          bundlesync forget clinic.db --silent-days 90
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Argument(help: "Peers to forget, by name, id or id prefix.", completion: Completions.peers) var peers: [String] = []
    @Option(name: .customLong("silent-days"), help: ArgumentHelp("Also forget every peer not heard from for this many days.", valueName: "DAYS"))
    var silentDays: Int?

    func validate() throws {
        if peers.isEmpty && silentDays == nil {
            throw ValidationError("name at least one peer, or give --silent-days")
        }
        if let silentDays, silentDays < 0 { throw ValidationError("--silent-days must not be negative") }
    }

    func run() throws {
        let replica = try Opened.replica(db)
        let forgotten = try replica.forget(peers, silentFor: silentDays.map { Int64($0) * 86_400_000 })
        for f in forgotten {
            output("forgot \(f.name.map { "'\(shown($0))'" } ?? "peer") (\(f.id.short))")
        }
        if forgotten.isEmpty { Diagnostics.note("no peer has been silent for \(silentDays ?? 0) days") }
        let result = try replica.prune()
        let status = try replica.status()
        Diagnostics.note("pruned \(plural(result.batches, "batch", "batches")) (\(result.bytes) bytes); history holds \(plural(status.historyBatches, "batch", "batches")) (\(status.historyBytes) bytes)")
    }
}
