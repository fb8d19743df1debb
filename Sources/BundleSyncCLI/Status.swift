import ArgumentParser
import BundleSync

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a replica's identity, vector, peers and pending work.",
        discussion: """
        Shows the replica's id and name, its version vector, the peers it has heard from and \
        what each is known to hold, local changes not yet exported, parked batches and what \
        they wait for, and the tracked tables with their merge rules.

        Example:
          bundlesync status clinic.db --json > tablet-1.vector
        """
    )

    @Argument(help: "The replica's database file.") var db: String
    @Flag(help: "Print one JSON document.") var json = false

    func run() throws {
        let replica = try Replica.open(path: db)
        let s = try replica.status()
        if json {
            output(jsonString(s))
            return
        }
        output("replica  \(s["name"] as? String ?? "") \(s["id"] as? String ?? "")")
        output("clock    \(s["clock"] as? String ?? "")")
        let vector = (s["vector"] as? [String: UInt64] ?? [:]).sorted { $0.key < $1.key }
        output("vector   " + (vector.isEmpty ? "(empty)" : vector.map { "\($0.key.prefix(12)):\($0.value)" }.joined(separator: " ")))
        output("pending  \(s["pending_changes"] as? Int ?? 0) local changes not yet sealed")
        let peers = s["peers"] as? [[String: Any]] ?? []
        output(peers.isEmpty ? "peers    (none heard from yet)" : "peers")
        for p in peers {
            let name = p["name"] as? String ?? "?"
            output("  \(name) \((p["id"] as? String ?? "").prefix(12))  lacks \(plural(p["lacks_batches"] as? Int ?? 0, "batch", "batches")) (\(plural(p["lacks_changes"] as? Int ?? 0, "row change", "row changes"))), last heard \(p["last_heard"] as? String ?? "never")")
        }
        let parked = s["parked"] as? [[String: Any]] ?? []
        if !parked.isEmpty {
            output("parked")
            for p in parked {
                output("  \((p["origin"] as? String ?? "").prefix(12))#\(p["seq"] ?? "") waits for \(p["waits_for"] as? String ?? "")")
            }
        }
        output("tables")
        for t in s["tables"] as? [[String: Any]] ?? [] {
            let cols = (t["columns"] as? [[String: String]] ?? []).map { "\($0["name"] ?? "")(\($0["rule"] ?? ""))" }
            output("  \(t["name"] as? String ?? "") key (\((t["key"] as? [String] ?? []).joined(separator: ", "))) \(cols.joined(separator: " "))")
        }
    }
}
