import ArgumentParser
import BundleSync

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
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

    @Argument(help: "The bundle file.") var path: String
    @Flag(help: "Print one JSON document.") var json = false
    @Flag(help: "Also list every row change (with --json).") var rows = false
    @Option(help: ArgumentHelp("Open an encrypted bundle with this replica's key.", valueName: "db")) var db: String?
    @Option(help: ArgumentHelp("Open an encrypted bundle with the passphrase in this file.", valueName: "file"))
    var passphraseFile: String?

    func validate() throws {
        if rows && !json { throw ValidationError("--rows lists row changes in the JSON output; add --json") }
    }

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
            output("size       \(s.fileBytes) bytes")
            output("content    encrypted; give --db with a recipient's database to show it")
            return
        }
        output("size       \(s.fileBytes) bytes (\(s.bodyBytes) uncompressed)")
        output("vector     \(describe(h.exporterVector))")
        output("base       \(describe(h.baseVector))")
        if let heads = h.snapshotHeads {
            output("snapshot   \(plural(s.snapshotChunks, "chunk", "chunks")) of the whole state, holding history up to:")
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
    }

    private func describe(_ v: VersionVector) -> String {
        v.sorted.isEmpty ? "(empty)" : v.sorted.map { "\($0.0.short):\($0.1)" }.joined(separator: " ")
    }
}
