import BundleSync
import Foundation

/// The fleet section: many replicas on one shared folder, each syncing through the CLI in
/// random order every round, as devices passing a stick around would.
struct Fleet {
    let cli: String
    let root: String
    let replicas: Int
    let rounds: Int
    /// A quarter of the replicas join only at half-time, when the others have pruned.
    var late = false
    var rng: SplitMix64

    struct Result {
        var replicas: Int
        var secondsPerSync: Double
        var averageBundleBytes: Int
        var mailboxBytes: Int
        var deviceSecondsPerRound: Double
        var converged: Bool
        /// Snapshot bundles written by the syncs of each round (whole ones and delta ones).
        var snapshotsPerRound: [(whole: Int, delta: Int)]
        /// Quiet passes (every replica syncs once, nobody writes) until every digest is equal.
        var roundsToConverge: Int?
    }

    mutating func run() throws -> Result {
        let folder = PathText.join(root, "fleet-\(replicas)")
        let mailbox = PathText.join(folder, "mailbox")
        try FileManager.default.createDirectory(atPath: mailbox, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let dbs = (0..<replicas).map { PathText.join(folder, "r\($0).db") }
        for (i, db) in dbs.enumerated() {
            try RawDB(db).exec("CREATE TABLE t(id TEXT PRIMARY KEY, v INTEGER)")
            _ = try cliRun(["init", db, "--name", "r\(i)"])
            _ = try cliRun(["track", db, "t"])
        }
        var syncSeconds = 0.0
        var syncs = 0
        var snapshots: [(whole: Int, delta: Int)] = []
        for n in 0..<rounds {
            snapshots.append((0, 0))
            var order = Array(0..<replicas)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            let lateCount = late ? replicas / 4 : 0
            for i in order where n >= rounds / 2 || i < replicas - lateCount {
                let app = try RawDB(dbs[i])
                try app.exec("INSERT INTO t VALUES ('r\(i)-\(n)-a', \(n)), ('r\(i)-\(n)-b', \(n)), ('r\(i)-\(n)-c', \(n))")
                if n > 0 { try app.exec("UPDATE t SET v = v + 1 WHERE id IN ('r\(i)-\(n - 1)-a', 'r\(i)-\(n - 1)-b', 'r\(i)-\(n - 1)-c')") }
                let t0 = now()
                let written = try cliRun(["sync", dbs[i], mailbox, "--quiet"]).trimmingCharacters(in: .whitespacesAndNewlines)
                syncSeconds += now() - t0
                syncs += 1
                if let header = try? BundleReader(path: written).header, header.isSnapshot {
                    if header.requiredCapabilities.contains("snapshot-delta-v1") { snapshots[n].delta += 1 } else { snapshots[n].whole += 1 }
                }
            }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: mailbox).filter { $0.hasSuffix(".bsync") }
        let mailboxBytes = files.reduce(0) { $0 + fileSize(PathText.join(mailbox, $1)) }
        // Quiet passes until every replica holds the same rows (at most four).
        var converged: Int?
        for pass in 1...4 {
            for db in dbs { _ = try cliRun(["sync", db, mailbox, "--quiet"]) }
            if Set(try dbs.map { try cliRun(["digest", $0]) }).count == 1 {
                converged = pass
                break
            }
        }
        return Result(replicas: replicas, secondsPerSync: syncSeconds / Double(syncs),
                      averageBundleBytes: files.isEmpty ? 0 : mailboxBytes / files.count, mailboxBytes: mailboxBytes,
                      deviceSecondsPerRound: syncSeconds / Double(rounds), converged: converged != nil,
                      snapshotsPerRound: snapshots, roundsToConverge: converged)
    }

    private func cliRun(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: cli)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw BenchError("fleet: 'bundlesync \(args.joined(separator: " "))' exited \(p.terminationStatus)") }
        return String(decoding: data, as: UTF8.self)
    }
}

extension Run {
    /// Runs the fleet section for each size asked for and returns its table.
    func fleetSection(sizes: [Int], rounds: Int, late: Bool = false) throws -> String {
        guard let cli = bundlesyncBinary() else { return "\n### Fleet\n\nskipped: the bundlesync binary was not found next to bundlesync-bench.\n" }
        var rows: [[String]] = []
        for r in sizes {
            var fleet = Fleet(cli: cli, root: root, replicas: r, rounds: rounds, late: late, rng: SplitMix64(seed: mix64(o.seed ^ UInt64(r))))
            let result = try step("fleet: \(r) replicas, \(rounds) rounds on one folder") { try fleet.run() }
            let perRound = result.snapshotsPerRound.map { $0.delta > 0 ? "\($0.whole)+\($0.delta)d" : "\($0.whole)" }.joined(separator: " ")
            rows.append(["\(r)", fixed(result.secondsPerSync, 2), grouped(result.averageBundleBytes), grouped(result.mailboxBytes),
                         fixed(result.deviceSecondsPerRound, 1), perRound,
                         result.roundsToConverge.map { "yes, \($0) quiet \($0 == 1 ? "pass" : "passes")" } ?? "NO"])
        }
        let joining = late ? ", a quarter of the replicas joining at round \(rounds / 2 + 1)" : ""
        return "\n### Fleet: one shared folder, `sync` in random order, 3 inserts and 3 updates per replica per round (\(rounds) rounds\(joining))\n\n"
            + markdownTable(["replicas", "seconds per sync", "bundle bytes (mean)", "folder bytes", "device seconds per round",
                             "snapshot exports per round (whole+delta)", "converged"], rows) + "\n"
    }
}
