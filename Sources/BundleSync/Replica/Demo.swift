import BundleSyncCore
import Foundation

/// `bundlesync demo`: the whole job in miniature, narrated.
///
/// Three replicas of a small clinic database make real edits through plain SQL on their
/// own connections, including concurrent edits of the same row, carry bundles over a
/// "stick" folder in a shuffled order, and end with identical rows and equal digests.
public enum Demo {
    /// Runs the demo in `directory`, narrating through `say`.
    ///
    /// - Returns: Whether every replica ended with the same digest.
    public static func run(in directory: String, seed: UInt64 = UInt64(Date().timeIntervalSince1970), say: (String) -> Void) throws -> Bool {
        let fm = FileManager.default
        if let existing = try? fm.contentsOfDirectory(atPath: directory), !existing.isEmpty {
            throw BundleSyncError(.cannotCreate, "'\(directory)' is not empty", hint: "give 'bundlesync demo' an empty or new directory")
        }
        try? fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let stick = PathText.join(directory, "usb-stick")
        let names = ["north", "south", "ship"]
        let paths = names.map { PathText.join(directory, "\($0).db") }
        for p in paths + [stick] where fm.fileExists(atPath: p) {
            throw BundleSyncError(.cannotCreate, "'\(p)' already exists", hint: "give 'bundlesync demo' an empty or new directory")
        }
        try fm.createDirectory(atPath: stick, withIntermediateDirectories: true)

        say("Three sites keep the same patient list: \(names.joined(separator: ", ")). They never share a network;")
        say("a USB stick (\(stick)) carries bundles between them.\n")

        let schema = "CREATE TABLE patients(id TEXT PRIMARY KEY, name TEXT NOT NULL, ward TEXT, weight_kg REAL, notes TEXT);"
        var apps: [Database] = []
        var replicas: [Replica] = []
        for (name, path) in zip(names, paths) {
            let app = try Database(path: path, create: true)
            try app.execute(schema)
            apps.append(app)
            replicas.append(try Replica.initialize(path: path, name: name).0)
        }
        try apps[0].execute("""
            INSERT INTO patients VALUES ('p-3f1a', 'Amara Diallo', 'East', 64.0, 'penicillin allergy');
            INSERT INTO patients VALUES ('p-77c2', 'Jonas Berg', 'West', 82.5, NULL);
            INSERT INTO patients VALUES ('p-a9e0', 'Mei Tanaka', 'East', 55.2, 'follow-up in May');
            """)
        for r in replicas { _ = try r.track(table: "patients", rules: ["notes": .text]) }
        say("1. north records three patients and exports everything; south and ship import it.")
        say("   Every site tracks the table with free-text notes merged as text:")
        say("   $ bundlesync track north.db patients --text notes")
        let first = try replicas[0].export(to: stick, target: .full)
        say("   $ bundlesync export north.db -o usb-stick   ->  \(PathText.fileName(of: first.path))")
        for r in replicas.dropFirst() { _ = try r.importBundle(first.path) }

        say("\n2. Offline, each site edits the same records with ordinary SQL:")
        let edits: [(Int, String, String)] = [
            (0, "UPDATE patients SET ward = 'North' WHERE id = 'p-3f1a'", "north moves Amara to ward North"),
            (1, "UPDATE patients SET weight_kg = 63.1 WHERE id = 'p-3f1a'", "south weighs Amara at 63.1 kg: another column of the same row"),
            (0, "UPDATE patients SET notes = 'penicillin allergy; prefers morning visits' WHERE id = 'p-3f1a'", "north adds to Amara's notes"),
            (1, "UPDATE patients SET notes = 'severe penicillin allergy' WHERE id = 'p-3f1a'", "south, concurrently, edits another place of the same notes: both edits survive"),
            (0, "UPDATE patients SET ward = 'ICU' WHERE id = 'p-77c2'", "north moves Jonas to ICU"),
            (2, "UPDATE patients SET ward = 'Deck 3' WHERE id = 'p-77c2'", "ship, a moment later, moves Jonas to Deck 3: same cell, the later write wins"),
            (1, "DELETE FROM patients WHERE id = 'p-a9e0'", "south deletes Mei's duplicate record"),
            (2, "UPDATE patients SET ward = 'Deck 2' WHERE id = 'p-a9e0'", "ship, concurrently, moves Mei to Deck 2: a delete beats a concurrent update"),
            (2, "INSERT INTO patients VALUES ('p-c410', 'Tomas Ruiz', 'Deck 1', 77.0, 'new arrival')", "ship admits Tomas"),
        ]
        for (site, sql, story) in edits {
            try apps[site].execute(sql)
            let label = (names[site] + ":").padding(toLength: 7, withPad: " ", startingAt: 0)
            say("   \(label) \(sql)")
            say("           \(story)")
            Thread.sleep(forTimeInterval: 0.01)
        }

        say("\n3. Each site exports what the others lack onto the stick:")
        var bundles: [(from: Int, path: String)] = []
        for (i, r) in replicas.enumerated() {
            let e = try r.export(to: stick, target: .automatic)
            bundles.append((i, e.path))
            say("   $ bundlesync export \(names[i]).db -o usb-stick   ->  \(PathText.fileName(of: e.path))")
        }

        var rng = SplitMix64(seed: seed)
        say("\n4. The stick visits every site; each imports the others' bundles in a shuffled order:")
        for (i, r) in replicas.enumerated() {
            var order = bundles.filter { $0.from != i }
            order.shuffle(using: &rng)
            for b in order { _ = try r.importBundle(b.path) }
            say("   \(names[i]) imports " + order.map { names[$0.from] }.joined(separator: ", then "))
        }
        // One more round so that each site also has what the others merged.
        for (i, r) in replicas.enumerated() {
            let e = try r.export(to: stick, target: .automatic)
            for (j, other) in replicas.enumerated() where j != i { _ = try other.importBundle(e.path) }
        }

        say("\n5. The merged patient list, with each site's copy of every row side by side")
        say("   (the columns show a short hash of each site's row: equal hashes, equal rows):")
        let rows = try apps.map { try $0.rows("SELECT id, name, ward, weight_kg, notes FROM patients ORDER BY id") }
        let header = "row".padding(toLength: 62, withPad: " ", startingAt: 0) + names.map { $0.padding(toLength: 8, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        say("   " + header.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression))
        let ids = Set(rows.flatMap { $0.map { $0[0] } }).sorted { $0.display < $1.display }
        for id in ids {
            let copies = rows.map { site in site.first { $0[0] == id } }
            let shown = (copies.compactMap { $0 }.first ?? [id]).map(\.display).joined(separator: " | ")
            let text = shown.count > 60 ? String(shown.prefix(59)) + "…" : shown
            let cells = copies.map { row -> String in
                guard let row else { return "(absent)" }
                var w = ByteWriter()
                row.forEach { ValueCodec.encode($0, into: &w) }
                return String(Digest32.of(w.bytes).hex.prefix(8))
            }
            say("   " + text.padding(toLength: 62, withPad: " ", startingAt: 0) + cells.joined(separator: "  "))
        }
        if case .text(let notes)? = try apps[1].rows("SELECT notes FROM patients WHERE id = 'p-3f1a'").first?.first {
            say("   Amara's notes hold both sites' edits: '\(String(decoding: notes, as: UTF8.self))'")
        }
        say("\n6. Digests (a Merkle root over the tracked rows):")
        var digests = Set<Digest32>()
        for (i, r) in replicas.enumerated() {
            let d = try r.digest()
            digests.insert(d)
            say("   $ bundlesync digest \(names[i]).db   ->  \(d.hex)")
        }
        let equal = digests.count == 1
        say(equal ? "\nAll three replicas hold exactly the same data. Poke around in \(directory)."
                  : "\nThe digests differ: this is a bug; please report it with the contents of \(directory).")
        return equal
    }
}
