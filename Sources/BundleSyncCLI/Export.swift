import ArgumentParser
import BundleSync
import Foundation

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a bundle with the changes a peer lacks.",
        discussion: """
        Seals local changes into signed batches, then writes one bundle and prints its path. \
        Without a target option, the bundle holds what the least up-to-date known peer lacks, \
        or everything when no peer is known yet. With --encrypt, only the named peers, or \
        else every peer heard from or trusted, and this replica can read the bundle; a replica \
        set to 'config DB encrypt always' encrypts every bundle.

        Example:
          bundlesync export clinic.db -o /media/usb --to tablet-2
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Option(name: .shortAndLong, help: ArgumentHelp("The bundle file, an existing directory to write NAME-SEQ-HASH8.bsync into, or - for standard output.", valueName: "path"), completion: Completions.folder)
    var output: String = "."
    @Option(name: .customLong("to"), help: ArgumentHelp("A peer (name, id or id prefix) whose missing changes to include; repeatable.", valueName: "peer"), completion: Completions.peers)
    var peers: [String] = []
    @Option(help: ArgumentHelp("A vector file (as in 'status --json') describing what the target holds.", valueName: "file"), completion: .file())
    var since: String?
    @Flag(help: "Include everything.")
    var full = false
    @Flag(help: "Print one JSON document describing the bundle written, instead of its path.")
    var json = false
    @Flag(help: "Encrypt the bundle to its recipients: the --to peers, or every peer heard from or trusted.")
    var encrypt = false
    @Option(help: ArgumentHelp("Also encrypt the bundle to the passphrase in this file, for a device whose key is not known yet (implies --encrypt).", valueName: "file"))
    var passphraseFile: String?
    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        let modes = (peers.isEmpty ? 0 : 1) + (since == nil ? 0 : 1) + (full ? 1 : 0)
        guard modes <= 1 else { throw ValidationError("choose at most one of --to, --since and --full") }
        if output == "-" && json { throw ValidationError("-o - writes the bundle to standard output, where --json would go too; choose one") }
    }

    func run() throws {
        let replica = try Opened.replica(db)
        replica.progress = outputOptions.apply()
        let target: ExportTarget
        if full { target = .full }
        else if let since { target = .vector(try VectorFile.read(since)) }
        else if !peers.isEmpty { target = .peers(peers) }
        else { target = .automatic }
        let result = try replica.export(to: output, target: target, encrypt: encrypt, passphrase: try PassphraseFile.read(passphraseFile))
        defer {
            if json {
                var d: [String: Any] = ["written": result.written, "snapshot": result.snapshot, "batches": result.batches,
                                        "rows": result.rows, "sealed": result.sealed.count, "hello": result.hello,
                                        "recipients": result.recipients.map(\.hex), "passphrase": result.passphrase]
                d[result.written ? "path" : "already_there"] = result.path
                if result.written { d["bytes"] = result.bytes }
                BundleSyncCLI.output(jsonString(d))
            } else if result.written && output != "-" {
                BundleSyncCLI.output(result.path)
            }
        }
        guard result.written else {
            Diagnostics.note("nothing new to send: '\(result.path)' already tells the target everything; no bundle written")
            return
        }
        if result.snapshot {
            Diagnostics.note("exported a snapshot of the current state (\(plural(result.rows, "row", "rows")), \(Size.text(result.bytes)))")
        } else if result.hello {
            Diagnostics.note("wrote a hello bundle in the clear, with this replica's keys and vector and no changes: the encryption keys of the peers are not all known yet")
        } else if result.batches == 0 {
            Diagnostics.note("nothing to send but this replica's vector and keys: the bundle tells the target what this replica holds (a hello bundle)")
        } else {
            Diagnostics.note("exported \(plural(result.batches, "batch", "batches")) (\(plural(result.rows, "row change", "row changes")), \(Size.text(result.bytes)))")
        }
        if !result.recipients.isEmpty {
            Diagnostics.note("encrypted to \(plural(result.recipients.count, "replica", "replicas")): \(result.recipients.map(\.short).joined(separator: ", "))"
                             + (result.passphrase ? ", and to the passphrase" : ""))
        }
    }
}

/// Vector files for `--since`: a JSON object of hex replica id to batch count, or a whole
/// `status --json` document, whose "vector" is used.
enum VectorFile {
    static func read(_ path: String) throws -> VersionVector {
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() ?? Data() else {
            throw BundleSyncError(.noInput, "vector file '\(path)' does not exist")
        }
        guard var object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw BundleSyncError(.badData, "'\(path)' is not a vector file (expected a JSON object)")
        }
        if let inner = object["vector"] as? [String: Any] { object = inner }
        var v = VersionVector()
        for (key, value) in object {
            guard let id = ReplicaID(hex: key) else {
                throw BundleSyncError(.badData, "'\(path)': '\(key)' is not a replica id")
            }
            guard let n = value as? Int, n >= 0 else {
                throw BundleSyncError(.badData, "'\(path)': the entry for \(id.short) is not a non-negative whole number")
            }
            v[id] = UInt64(n)
        }
        return v
    }
}
