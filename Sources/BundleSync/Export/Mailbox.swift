import BundleSyncCore
import BundleSyncFormat
import BundleSyncStore
import Foundation

/// What pruning removed.
public struct PruneResult: Sendable {
    public var batches: Int
    public var bytes: Int
}

/// A replica's own files in a shared folder (a mailbox on a USB stick). The only type that
/// deletes files: this replica's superseded bundles, and partial files of its interrupted
/// exports. Other replicas' files are never touched.
public struct Mailbox {
    package let store: ReplicaStore
    public let directory: String

    package init(store: ReplicaStore, directory: String) {
        self.store = store
        self.directory = directory
    }

    /// Refuses a shared folder that is not an existing directory, before anything is done.
    public static func requireFolder(_ directory: String) throws { try ExportDestination.requireDirectory(directory) }

    /// The name an export into a folder writes under, before its final name is known.
    package static func provisionalName(of replica: String) -> String { "export-\(replica)" }

    /// Removes this replica's own older bundles from the folder, keeping `keep`.
    ///
    /// Safe once `keep` was exported for every known peer: each batch of an older file is
    /// either held by all of them or carried again by `keep`. A file that cannot be read is
    /// left alone.
    ///
    /// - Returns: The paths removed.
    public func removeSupersededBundles(keeping keep: String) -> [String] {
        let fm = FileManager.default
        var removed: [String] = []
        let keepName = PathText.fileName(of: keep)
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] {
            let path = PathText.join(directory, name)
            guard name.hasSuffix(".\(BundleFile.fileExtension)"), name != keepName, !name.hasPrefix(".") else { continue }
            guard let header = try? BundleReader(path: path).header, header.exporter == store.id else { continue }
            if (try? fm.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        return removed.sorted()
    }

    /// Removes partial files that an interrupted export of this replica left in the folder
    /// (hidden, named `.export-NAME.PID.tmp`, never `*.bsync`), unless their process still runs.
    ///
    /// - Returns: The paths removed.
    @discardableResult
    public func removeStaleTemporaryFiles() -> [String] {
        let fm = FileManager.default
        var removed: [String] = []
        for file in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] {
            guard let pid = BundlePath.writer(ofTemporary: file, for: Self.provisionalName(of: store.name)),
                  pid != getpid(), pid <= 0 || kill(pid, 0) != 0 else { continue }
            let path = PathText.join(directory, file)
            if (try? fm.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        return removed
    }

    // MARK: - Bounded history

    /// How many of each origin's latest batches pruning keeps, even when every known peer
    /// holds them, unless the replica is set otherwise (`config DB keep-batches N`).
    ///
    /// What a peer holds is learned from its bundles, so it is always a little old, and a
    /// peer first heard from late (a device that joins, or one whose bundle was read after the
    /// others') may lack batches every other peer holds. Keeping the latest batches of each
    /// origin lets such a peer, when it is fewer than this many batches of an origin behind,
    /// still receive batches rather than a snapshot. One batch is sealed per export with
    /// changes, so 32 covers a peer a month of daily syncs behind; the cost is bounded by the
    /// data, at most 32 batches per origin (each at most ``Sealer/batchByteLimit``), and is
    /// typically small, since a batch holds one export's changes. A peer further behind
    /// receives a delta snapshot: the rows changed since what it holds.
    public static let keptBatchesPerOrigin: UInt64 = 32

    /// Drops stored batches that every known peer is known to hold, except each origin's
    /// latest ``keptBatchesPerOrigin``, and the text and JSON tombstones that may be collected.
    ///
    /// A replica keeps the batches it has applied so it can pass them on. Once every peer it
    /// has heard from holds a batch, nobody it knows needs it from here, apart from a peer
    /// whose news is late (see ``keptBatchesPerOrigin``). A peer that later needs pruned
    /// history receives a snapshot of the rows changed since what it holds instead, and a new
    /// replica a snapshot of the whole state (`export` switches to one by itself). With no
    /// known peer, nothing is pruned.
    package static func prune(_ store: ReplicaStore) throws -> PruneResult {
        try store.withoutCapture {
            let peers = try store.replicas.knownPeers(besides: store.selfIndex)
            guard !peers.isEmpty else { return PruneResult(batches: 0, bytes: 0) }
            let everyone = try peers.map { try store.replicas.peerVector($0.index) }.reduce(nil as VersionVector?) { $0?.meet($1) ?? $1 }!
            var result = PruneResult(batches: 0, bytes: 0)
            // Tombstones every known peer has seen deleted go first, while the batches that
            // tell when each was written are still there.
            try CellMerger(store: store).collectAll()
            let kept = try store.keptBatches ?? keptBatchesPerOrigin
            for (origin, held) in everyone.entries {
                guard let idx = try store.replicas.existingIndex(of: origin) else { continue }
                let head = try store.replicas.head(of: idx).seq
                let through = min(held, head > kept ? head - kept : 0)
                guard through > 0 else { continue }
                let dropped = try store.history.dropApplied(origin: idx, through: through)
                result.batches += dropped.batches
                result.bytes += dropped.bytes
                if dropped.batches > 0 { try store.history.compactFloors(origin: idx, head: head) }
            }
            return result
        }
    }
}
