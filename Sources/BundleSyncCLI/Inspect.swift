import ArgumentParser
import BundleSync
import Foundation

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a bundle holds.",
        discussion: """
        Reads a bundle without any database: exporter, vectors, batches per origin, tables, \
        row and cell counts, sizes and time range. The bundle is verified while it is read. \
        Of an encrypted bundle it shows, without a key, only what is in the clear: exporter, \
        creation time, size and recipients; with --db of a recipient, everything.

        Example:
          bundlesync inspect --json /media/usb/tablet-2-14-3fa9c2d1.bsync
        """
    )

    @Argument(help: "The bundle file.", completion: Completions.bundles) var path: String
    @Flag(help: "Print one JSON document.") var json = false
    @Flag(help: "Also list every row change with its cells and their clocks.") var rows = false
    @Option(help: ArgumentHelp("Open an encrypted bundle with this replica's key.", valueName: "db")) var db: String?
    @Option(help: ArgumentHelp("Open an encrypted bundle with the passphrase in this file.", valueName: "file"))
    var passphraseFile: String?

    func run() throws {
        let passphrase = try PassphraseFile.read(passphraseFile)
        let keyring = try db.map { try Opened.replica($0).keyring(passphrase: passphrase) } ?? passphrase.map { BundleKeyring(passphrase: $0) }
        let s = try BundleSummary.read(path: path, includeRows: rows, keyring: keyring)
        if json {
            output(jsonString(s.json))
            return
        }
        let h = s.header
        output("bundle     \(path)")
        output("exporter   \(h.exporterName) \(h.exporter.hex)")
        output("created    \(s.json["created"] as? String ?? "")")
        if h.isEncrypted {
            output("encrypted  to \(plural(h.recipients.count, "replica", "replicas"))\(h.passphrase == nil ? "" : " and a passphrase"):")
            for r in h.recipients { output("  \(r.replica.hex)") }
        }
        guard h.isOpened else {
            output("size       \(Size.text(s.fileBytes))")
            output("content    encrypted; give --db with a recipient's database to show it")
            return
        }
        output("size       \(Size.text(s.fileBytes)), \(Size.text(s.bodyBytes)) uncompressed")
        output("vector     \(describe(h.exporterVector))")
        output("base       \(describe(h.baseVector))")
        if let heads = h.snapshotHeads {
            let what = h.isDeltaSnapshot ? "the rows changed since the base" : "the whole state"
            output("snapshot   \(plural(s.snapshotChunks, "chunk", "chunks")) of \(what), holding history up to:")
            for head in heads { output("  \(head.origin.short)  #\(head.seq)  \(head.hash.short)") }
        } else {
            output("batches    \(s.batchCount)")
        }
        for o in s.origins { output("  \(o.origin.short)  #\(o.firstSeq)–#\(o.lastSeq)  (\(o.batches) batches)") }
        output("tables")
        for t in s.tables.values.sorted(by: { $0.name < $1.name }) {
            output("  \(shown(t.name)): \(t.rows) rows (\(t.deletes) deletes), \(t.cells) cells")
        }
        if let o = s.oldest, let n = s.newest { output("time range \(o) … \(n)") }
        if let changes = s.rows {
            output("row changes")
            for row in changes { RowListing.lines(row).forEach(output) }
        }
    }

    private func describe(_ v: VersionVector) -> String {
        v.sorted.isEmpty ? "(empty)" : v.sorted.map { "\($0.0.short):\($0.1)" }.joined(separator: " ")
    }
}

/// `inspect --rows` for people: one line per row change, then one per cell.
enum RowListing {
    static func lines(_ row: [String: Any]) -> [String] {
        let table = shown(row["table"] as? String ?? "?")
        let key = (row["key"] as? [Any] ?? []).map(value).joined(separator: ", ")
        let cl = row["causal_length"] as? UInt64 ?? UInt64(row["causal_length"] as? Int ?? 0)
        let source: String
        if let origin = row["origin"] as? String, let batch = row["batch"] {
            source = "batch \(origin.prefix(12))#\(batch)"
        } else {
            source = "snapshot, written by \((row["row_origin"] as? String)?.prefix(12) ?? "?")"
        }
        let kind = cl % 2 == 1 ? "present" : "deleted"
        var out = ["  \(table) (\(key))  \(kind), causal length \(cl), \(source)"]
        for cell in row["cells"] as? [[String: Any]] ?? [] {
            let column = shown(cell["column"] as? String ?? "?")
            let shownValue = (cell["merge"] as? String).map { "(\($0))" } ?? value(cell["value"] ?? NSNull())
            out.append("    \(column) = \(shownValue)  at \(clock(cell["hlc"]))")
        }
        return out
    }

    /// An HLC given as its decimal string, as a time.
    static func clock(_ raw: Any?) -> String {
        guard let text = raw as? String, let v = UInt64(text) else { return "?" }
        return HLC(rawValue: v).description
    }

    /// A value as `inspect --json` gives it, written as SQL would: NULL, numbers, 'text',
    /// X'blob'.
    static func value(_ v: Any) -> String {
        switch v {
        case is NSNull: return "NULL"
        case let s as String: return "'" + shown(s).replacingOccurrences(of: "'", with: "''") + "'"
        case let d as [String: Any]:
            if let hex = d["blob"] as? String { return "X'\(hex)'" }
            if let decimal = d["integer"] as? String { return decimal }
            if let hex = d["text_hex"] as? String { return "text X'\(hex)' (not UTF-8)" }
            if let r = d["real"] { return "\(r)" }
            return "?"
        default: return "\(v)"
        }
    }
}
