import Foundation

/// What pruning removed.
public struct PruneResult: Sendable {
    public var batches: Int
    public var bytes: Int
}

extension Replica {
    // MARK: - Bounded history

    /// Drops stored batches that every known peer is known to hold.
    ///
    /// A replica keeps the batches it has applied so it can pass them on. Once every peer it
    /// has heard from holds a batch, nobody it knows needs it from here. A peer that later
    /// needs pruned history, or a new replica, receives a snapshot of the current state
    /// instead (`export` switches to one by itself). With no known peer, nothing is pruned.
    public func prune() throws -> PruneResult {
        try withoutCapture {
            let peers = try knownPeers()
            guard !peers.isEmpty else { return PruneResult(batches: 0, bytes: 0) }
            let everyone = try peers.map { try peerVector($0.index) }.reduce(nil as VersionVector?) { $0?.meet($1) ?? $1 }!
            var result = PruneResult(batches: 0, bytes: 0)
            for (origin, held) in everyone.entries {
                guard case .integer(let idx)? = try db.scalar("SELECT idx FROM _bundlesync_replicas WHERE id = ?", [.blob(origin.bytes)]) else { continue }
                let args: [SQLValue] = [.integer(idx), .integer(Int64(held))]
                let size = try db.rows("SELECT count(*), coalesce(sum(length(body)), 0) FROM _bundlesync_batches WHERE origin = ? AND seq <= ? AND applied_order IS NOT NULL", args)
                if case .integer(let n) = size[0][0], case .integer(let b) = size[0][1] {
                    result.batches += Int(n)
                    result.bytes += Int(b)
                }
                try db.run("DELETE FROM _bundlesync_batches WHERE origin = ? AND seq <= ? AND applied_order IS NOT NULL", args)
            }
            return result
        }
    }

    // MARK: - Mailbox folders

    /// Removes this replica's own older bundles from a shared folder, keeping `keep`.
    ///
    /// Safe once `keep` was exported for every known peer: each batch of an older file is
    /// either held by all of them or carried again by `keep`. Other replicas' files are never
    /// touched; a file that cannot be read is left alone. Leftover temporary files from an
    /// interrupted export of this replica are removed too.
    ///
    /// - Returns: The paths removed.
    public func removeSupersededBundles(in directory: String, keeping keep: String) -> [String] {
        let fm = FileManager.default
        var removed: [String] = []
        let keepName = (keep as NSString).lastPathComponent
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] {
            let path = (directory as NSString).appendingPathComponent(name)
            guard name.hasSuffix(".\(BundleFile.fileExtension)"), name != keepName, !name.hasPrefix(".") else { continue }
            guard let header = try? BundleReader(path: path).header, header.exporter == id else { continue }
            if (try? fm.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        return removed.sorted()
    }

    /// Removes partial files that an interrupted export of this replica left in `directory`
    /// (hidden, named `.export-NAME.PID.tmp`, never `*.bsync`), unless their process still runs.
    ///
    /// - Returns: The paths removed.
    @discardableResult
    public func removeStaleTemporaryFiles(in directory: String) -> [String] {
        let fm = FileManager.default
        let prefix = ".export-\(name)."
        var removed: [String] = []
        for file in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where file.hasPrefix(prefix) && file.hasSuffix(".tmp") {
            let pid = Int32(file.dropFirst(prefix.count).dropLast(4)) ?? 0
            guard pid != getpid(), pid <= 0 || kill(pid, 0) != 0 else { continue }
            let path = (directory as NSString).appendingPathComponent(file)
            if (try? fm.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        return removed
    }
}
