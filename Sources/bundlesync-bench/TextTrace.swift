import BundleSync
import Foundation

// The text section: a keystroke trace replayed into a `--text` cell, the application writing
// the whole text every N keystrokes, as an editor saving its buffer would.

/// One keystroke of a trace: at `position`, delete `deleted` characters, insert `inserted`.
struct Keystroke {
    var position: Int
    var deleted: Int
    var inserted: [Unicode.Scalar]
}

/// A trace file (`fixtures/traces/*.trace.zst`, described in `fixtures/traces/make-trace.py`).
struct KeystrokeTrace {
    var keystrokes: [Keystroke] = []
    var finalLength = 0

    static func load(_ path: String, limit: Int?) throws -> KeystrokeTrace {
        guard let compressed = FileManager.default.contents(atPath: path) else { throw BenchError("cannot read the trace \(path)") }
        let raw = try ZstdDecompressor.decompress(Array(compressed), limit: 1 << 30)
        var trace = KeystrokeTrace()
        var end = 0
        for line in String(decoding: raw, as: UTF8.self).split(separator: "\n") {
            if line.hasPrefix("#") {
                trace.finalLength = Int(line.split(separator: " ")[1]) ?? 0
                continue
            }
            let parts = line.split(separator: " ", maxSplits: 2)
            guard parts.count == 3, let offset = Int(parts[0]), let deleted = Int(parts[1]),
                  let inserted = try JSONSerialization.jsonObject(with: Data(parts[2].utf8), options: .fragmentsAllowed) as? String
            else { throw BenchError("a trace line is malformed: \(line.prefix(80))") }
            let scalars = Array(inserted.unicodeScalars)
            trace.keystrokes.append(Keystroke(position: end + offset, deleted: deleted, inserted: scalars))
            end = end + offset + scalars.count
            if let limit, trace.keystrokes.count >= limit { trace.finalLength = -1; break }
        }
        return trace
    }
}

extension Run {
    /// Replays the trace into one text cell of a real replica and into an in-memory state,
    /// and prints the text table.
    func textSection() throws {
        guard let path = o.textTrace ?? (FileManager.default.fileExists(atPath: Options.defaultTrace) ? Options.defaultTrace : nil) else {
            print("\n## Text merge on a keystroke trace\n\nskipped: no trace (use --text-trace FILE)\n")
            return
        }
        let trace = try step("read the keystroke trace \(PathText.fileName(of: path))") { try KeystrokeTrace.load(path, limit: o.textKeystrokes) }
        let every = o.textEvery

        // The replica: one note, its body merged as text; the application writes through its
        // own connection and each write is sealed as the exporter would seal it.
        let dbPath = file("text.db")
        let app = try Database(path: dbPath, create: true)
        try app.execute("CREATE TABLE notes(id TEXT PRIMARY KEY, body TEXT)")
        let replica = try Replica.initialize(path: dbPath, name: "bench-text").0
        _ = try replica.track(table: "notes", rules: ["body": .text])
        try app.run("INSERT INTO notes(id, body) VALUES ('n', '')")
        _ = try replica.withoutCapture { try replica.sealPending() }

        // Alongside, the same writes as edits of an in-memory state, to weigh each one.
        var state = TextSequence.empty
        let me = ReplicaID(bytes: Array(repeating: 7, count: ReplicaID.byteCount))!
        var hlc: UInt64 = 1 << 40

        var text: [Unicode.Scalar] = []
        // The write each character was typed in: a character typed and deleted between two
        // writes costs neither an insertion nor a deletion in the minimal edit.
        var bornIn: [Int32] = []
        var window: Int32 = 0
        var minimal = 0, inferred = 0
        var windowInserted = 0, windowDeleted = 0
        var sealSeconds: [Double] = []
        var editSeconds = 0.0
        var growth: [Int] = []
        var lastStateBytes = state.encoded().count

        func write() throws {
            let bytes = Array(String(String.UnicodeScalarView(text)).utf8)
            try app.run("UPDATE notes SET body = ? WHERE id = 'n'", [.text(bytes)])
            let (_, t) = try timed { try replica.withoutCapture { try replica.sealPending() } }
            sealSeconds.append(t)
            hlc += 1 << 16
            let (delta, te) = try timed { try state.edit(to: bytes, hlc: hlc, replica: me) }
            editSeconds += te
            inferred += delta.runs.reduce(0) { $0 + $1.length } + delta.deletions.reduce(0) { $0 + $1.length }
            minimal += windowInserted + windowDeleted
            windowInserted = 0
            windowDeleted = 0
            window += 1
            let size = state.encoded().count
            growth.append(size - lastStateBytes)
            lastStateBytes = size
        }

        try step("replay \(grouped(trace.keystrokes.count)) keystrokes, writing the text every \(every)") {
            for (i, k) in trace.keystrokes.enumerated() {
                for j in k.position..<(k.position + k.deleted) {
                    if bornIn[j] == window { windowInserted -= 1 } else { windowDeleted += 1 }
                }
                text.removeSubrange(k.position..<(k.position + k.deleted))
                bornIn.removeSubrange(k.position..<(k.position + k.deleted))
                text.insert(contentsOf: k.inserted, at: k.position)
                bornIn.insert(contentsOf: Array(repeating: window, count: k.inserted.count), at: k.position)
                windowInserted += k.inserted.count
                if (i + 1) % every == 0 || i == trace.keystrokes.count - 1 { try write() }
            }
        }
        let mismatch = trace.finalLength >= 0 && text.count != trace.finalLength
            ? "\nbug: the replayed trace ends with \(text.count) characters, the trace says \(trace.finalLength)\n" : ""

        let writes = sealSeconds.count
        let traceSeals = sealSeconds
        let traceGrowthBytes = growth.reduce(0, +)
        let chars = text.count
        let stateBytes = state.encoded().count
        guard case .text(let stored)? = try app.rows("SELECT body FROM notes").first?.first,
              stored == Array(String(String.UnicodeScalarView(text)).utf8) else {
            throw BenchError("the replica's cell does not hold the trace's text")
        }

        let inferredTrace = inferred, minimalTrace = minimal
        // A word replaced per write, 200 times, on the finished text.
        var rng = SplitMix64(seed: o.seed)
        let before = stateBytes
        for _ in 0..<200 {
            var at = Int(rng.next() % UInt64(max(1, text.count)))
            while at > 0 && at < text.count && text[at - 1] != " " { at -= 1 }
            var end = at
            while end < text.count && text[end] != " " { end += 1 }
            text.replaceSubrange(at..<end, with: "word\(rng.next() % 1000)".unicodeScalars)
            bornIn = Array(repeating: -1, count: text.count)
            try write()
        }
        let afterWords = state.encoded().count
        let perWordWrite = Double(afterWords - before) / 200

        // Bundles: the whole history as batches, and the cell's snapshot.
        let batches = try replica.export(to: file("text-history.bsync"), target: .vector(VersionVector()))
        let snapshotPath = file("text-snapshot.bsync")
        let fresh = try Replica.initialize(path: file("text-reader.db"), name: "bench-text-reader").0
        let reader = try Database(path: file("text-reader.db"))
        try reader.execute("CREATE TABLE notes(id TEXT PRIMARY KEY, body TEXT)")
        _ = try fresh.track(table: "notes", rules: ["body": .text])
        let (imported, tImport) = try timed { try fresh.importBundle(batches.path) }
        guard imported.status == .applied else { throw BenchError("the text history did not apply: \(imported.status)") }
        let snap = try fresh.export(to: snapshotPath, target: .full)

        let tenth = max(1, writes / 10)
        let early = traceSeals.prefix(tenth).reduce(0, +) / Double(tenth)
        let late = traceSeals.suffix(tenth).reduce(0, +) / Double(tenth)
        let traceGrowth = Double(traceGrowthBytes) / Double(max(1, writes))
        var out = "\n## Text merge on a keystroke trace\n\n"
        out += "\(PathText.fileName(of: path)): \(grouped(trace.keystrokes.count)) keystrokes, a write every \(every) (\(grouped(writes)) writes), then 200 writes replacing one word each; \(grouped(chars)) characters at the end.\n\n"
        out += markdownTable(["figure", "value"], [
            ["state after the trace", "\(grouped(before)) B, \(fixed(Double(before) / Double(max(1, chars)), 2)) B per character of text"],
            ["state growth per write (trace)", "\(fixed(traceGrowth, 1)) B"],
            ["state growth per write (one word replaced)", "\(fixed(perWordWrite, 1)) B"],
            ["state after the word writes", "\(grouped(afterWords)) B"],
            ["bundle of the whole history", "\(bytesText(batches.bytes)), \(batches.snapshot ? "a snapshot" : "\(batches.batches) batches")"],
            ["snapshot bundle of the cell", bytesText(snap.bytes)],
            ["seal per write, first tenth of the trace", "\(fixed(early * 1000, 2)) ms"],
            ["seal per write, last tenth of the trace", "\(fixed(late * 1000, 2)) ms"],
            ["edit inference and merge, in memory, all writes", "\(fixed(editSeconds, 3)) s"],
            ["import of the whole history into an empty replica", "\(fixed(tImport, 3)) s"],
            ["inferred edit size / minimal edit size", "\(grouped(inferredTrace)) / \(grouped(minimalTrace)) characters = \(ratioText(Double(inferredTrace) / Double(max(1, minimalTrace))))"],
        ])
        print(out + mismatch)
    }
}

extension Run {
    /// Two replicas of one note that keep syncing, with tombstone collection on (`config DB
    /// fleet 2`): what sealing and importing a one-word edit cost after 10,000 edits of the
    /// cell (`--text-history-writes`), against the first ones, and the state's size against
    /// the text written once.
    func textHistorySection() throws {
        let vocabulary = ["field", "clinic", "ship", "survey", "note", "water", "road", "day", "north", "the", "a", "report"]
        var rng = SplitMix64(seed: o.seed ^ 0x7E57)
        var words = (0..<300).map { _ in vocabulary[Int(rng.next() % UInt64(vocabulary.count))] }
        func side(_ name: String) throws -> (Replica, Database) {
            let path = file("history-\(name).db")
            let app = try Database(path: path, create: true)
            try app.execute("CREATE TABLE notes(id TEXT PRIMARY KEY, body TEXT)")
            let r = try Replica.initialize(path: path, name: name).0
            _ = try r.track(table: "notes", rules: ["body": .text])
            try r.setFleetSize(2)
            return (r, app)
        }
        let (a, appA) = try side("a"), (b, appB) = try side("b")
        try appA.run("INSERT INTO notes(id, body) VALUES ('n', ?)", [.text(Array(words.joined(separator: " ").utf8))])
        var syncs = 0
        /// Each exports what the other lacks, and the other takes it in.
        func sync() throws {
            for (from, to) in [(a, b), (b, a)] {
                syncs += 1
                let out = try from.export(to: file("history-\(syncs).bsync"), target: .automatic)
                if out.written { _ = try to.importBundle(out.path) }
            }
        }
        try sync()
        try sync()
        let apps = [appA, appB], replicas = [a, b]
        /// One word replaced on replica `r`, sealed; the seal's seconds.
        func editWord(_ r: Int) throws -> Double {
            words[Int(rng.next() % UInt64(words.count))] = vocabulary[Int(rng.next() % UInt64(vocabulary.count))]
            try apps[r].run("UPDATE notes SET body = ? WHERE id = 'n'", [.text(Array(words.joined(separator: " ").utf8))])
            return try timed { try replicas[r].withoutCapture { try replicas[r].sealPending() } }.1
        }
        /// 20 one-word edits on a, each sealed and imported by b: median seal and import times.
        func probe() throws -> (seal: Double, merge: Double) {
            var seals: [Double] = [], merges: [Double] = []
            for _ in 0..<20 {
                seals.append(try editWord(0))
                syncs += 1
                let out = try a.export(to: file("history-\(syncs).bsync"), target: .automatic)
                merges.append(try timed { try b.importBundle(out.path) }.1)
                try sync()
            }
            return (seals.sorted()[10], merges.sorted()[10])
        }
        let first = try step("a one-word edit on a note edited once, sealed and imported") { try probe() }
        let writes = o.textHistoryWrites
        try step("\(grouped(writes)) one-word edits, alternating between two replicas that sync every 100") {
            for i in 0..<writes {
                _ = try editWord(i % 2)
                if i % 100 == 99 { try sync() }
            }
            try sync()
            try sync()
        }
        let late = try step("a one-word edit after \(grouped(writes)) edits, sealed and imported") { try probe() }
        func stateBytes(_ db: Database) throws -> Int {
            let table = try db.rows("SELECT name FROM sqlite_schema WHERE name LIKE '\\_bundlesync\\_merge\\_%' ESCAPE '\\'")
            guard case .text(let name)? = table.first?.first,
                  case .integer(let n)? = try db.rows("SELECT length(state) FROM \(Database.quote(String(decoding: name, as: UTF8.self)))").first?.first
            else { return 0 }
            return Int(n)
        }
        let once = TextSequence.seed(Array(words.joined(separator: " ").utf8), hlc: 1 << 40, replica: ReplicaID(bytes: Array(repeating: 7, count: ReplicaID.byteCount))!).encoded().count
        let (sizeA, sizeB) = (try stateBytes(appA), try stateBytes(appB))
        var out = "\n## Text over a long history, tombstones collected\n\n"
        out += "Two replicas of one 300-word note, both declaring a group of two, replace one word per write \(grouped(writes)) times, alternating and syncing every 100 writes. Times are medians of 20 one-word writes, each sealed on one replica and imported by the other.\n\n"
        out += markdownTable(["figure", "first writes", "after \(grouped(writes)) writes"], [
            ["seal of a one-word write", "\(fixed(first.seal * 1000, 2)) ms", "\(fixed(late.seal * 1000, 2)) ms (\(ratioText(late.seal / first.seal)))"],
            ["import of that write", "\(fixed(first.merge * 1000, 2)) ms", "\(fixed(late.merge * 1000, 2)) ms (\(ratioText(late.merge / first.merge)))"],
            ["stored state of the cell (a / b)", "–", "\(grouped(sizeA)) / \(grouped(sizeB)) B; the text written once: \(grouped(once)) B (\(ratioText(Double(max(sizeA, sizeB)) / Double(once))))"],
        ])
        print(out)
    }
}
