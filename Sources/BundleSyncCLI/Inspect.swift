import ArgumentParser
import BundleSync

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a bundle holds.",
        discussion: """
        Reads a bundle without any database: exporter, vectors, batches per origin, tables, \
        row and cell counts, sizes and time range. The bundle is verified while it is read.

        Example:
          bundlesync inspect --json /media/usb/tablet-2-14-3fa9c2d1.bsync
        """
    )

    @Argument(help: "The bundle file.") var path: String
    @Flag(help: "Print one JSON document.") var json = false
    @Flag(help: "Also list every row change (with --json).") var rows = false

    func validate() throws {
        if rows && !json { throw ValidationError("--rows lists row changes in the JSON output; add --json") }
    }

    func run() throws {
        let s = try BundleSummary.read(path: path, includeRows: rows)
        if json {
            output(jsonString(s.json))
            return
        }
        let h = s.header
        output("bundle     \(path)")
        output("exporter   \(h.exporterName) \(h.exporter.hex)")
        output("created    \(s.json["created"] as? String ?? "")")
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
