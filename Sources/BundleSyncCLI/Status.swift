import ArgumentParser
import BundleSync
import Foundation

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a replica's identity, vector, peers and pending work.",
        discussion: """
        Shows the replica's id and name, its version vector, the peers it has heard from, what \
        each is known to hold and whether its encryption key is known, local changes not yet \
        exported, parked batches and what they wait for, and the tracked tables with their \
        merge rules.

        Example:
          bundlesync status clinic.db --json > tablet-1.vector
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Flag(help: "Print one JSON document.") var json = false

    func run() throws {
        let replica = try Opened.replica(db)
        let s = try replica.status()
        if json {
            var document = s.json
            document["problems"] = replica.problems.map { e -> [String: Any] in
                var d: [String: Any] = ["message": e.message]
                if let h = e.hint { d["hint"] = h }
                return d
            }
            output(jsonString(document))
            return
        }
        output("replica  \(s.name) \(s.id.hex)")
        output("clock    \(s.clock)")
        let vector = s.vector.sorted
        output("vector   " + (vector.isEmpty ? "(empty)" : vector.map { "\($0.0.hex.prefix(12)):\($0.1)" }.joined(separator: " ")))
        output("pending  \(s.pendingChanges) local changes not yet sealed")
        if s.encryptAlways { output("encrypt  always: every bundle written is encrypted") }
        if s.fleet.declared > 0 {
            let (declared, heard) = s.fleet
            let state = heard == declared ? "deleted text and removed JSON keys are dropped once every peer holds their deletion"
                : heard < declared ? "\(heard) heard from so far: tombstones are kept until all \(declared) have been"
                : "\(heard) heard from, more than declared: tombstones are kept until 'bundlesync config DB fleet \(heard)'"
            output("fleet    \(declared) replicas: \(state)")
        }
        output(s.peers.isEmpty ? "peers    (none heard from yet)" : "peers")
        for p in s.peers {
            let heard = p.lastHeard.map { isoFormatter.string(from: Date(timeIntervalSince1970: Double($0) / 1000)) } ?? "never"
            output("  \(p.name ?? "?") \(p.id.hex.prefix(12))  lacks \(plural(p.lacksBatches, "batch", "batches")) (\(plural(p.lacksChanges, "row change", "row changes")), \(p.lacksBytes) bytes kept for it), last heard \(heard)\(silence(p.lastHeard))"
                   + (p.encryptionKeyKnown ? "" : ", encryption key not known yet")
                   + (p.readsFormat3 ? "" : ", an older release: bundles stay in format version 2"))
        }
        if !s.forgotten.isEmpty {
            output("forgotten " + s.forgotten.map { "\($0.name ?? "?") \($0.id.hex.prefix(12))" }.joined(separator: ", "))
        }
        if !s.parked.isEmpty {
            output("parked")
            for p in s.parked {
                output("  \(p.origin.hex.prefix(12))#\(p.seq) waits for \(p.waitsFor)")
            }
        }
        if !s.held.isEmpty {
            output("held     changes to what this replica does not track yet, applied once it does:")
            for h in s.held { output("  \(h.what): \(plural(h.batches, "batch", "batches"))") }
        }
        if !replica.problems.isEmpty {
            output("problems")
            for e in replica.problems { output("  \(e.message)" + (e.hint.map { "\n    hint: \($0)" } ?? "")) }
        }
        output("tables")
        for t in s.tables {
            let cols = t.columns.map { "\($0.name)(\($0.rule))" }
            output("  \(t.name) key (\(t.keyColumns.joined(separator: ", "))) \(cols.joined(separator: " "))")
        }
    }
}

/// ", silent for 12 days" once a peer has been silent for a day or more.
private func silence(_ lastHeard: Int64?) -> String {
    guard let lastHeard else { return "" }
    let days = (HLC.nowMilliseconds() - lastHeard) / 86_400_000
    return days >= 1 ? ", silent for \(plural(Int(days), "day", "days"))" : ""
}
