import BundleSyncCore
import BundleSyncFormat
import BundleSyncStore

extension Importer {
    // MARK: - Verify against this replica

    /// Checks a bundle against this replica: schema, forks, links to known history, trust.
    ///
    /// - Throws: `.badData` naming the file and what is wrong.
    package func verifyAgainstHistory(_ path: String, passphrase: [UInt8]? = nil) throws -> BundleSummary {
        var heads: [ReplicaID: (seq: UInt64, hash: Digest32)] = [:]
        let summary = try BundleSummary.read(path: path, progress: progress, keyring: keyring(passphrase: passphrase)) { entry, batch in
            guard let idx = try store.replicas.existingIndex(of: batch.origin) else { return }
            if let stored = try store.history.hash(origin: idx, seq: batch.seq), stored != entry.hash {
                throw forkError(entry, existing: stored, path: path)
            }
            let head = try heads[batch.origin] ?? store.replicas.head(of: idx)
            if batch.seq == head.seq + 1 {
                guard batch.previous == head.hash else {
                    throw chainError(origin: batch.origin, seq: batch.seq, previous: batch.previous, heldHead: head.hash).about(bundle: path)
                }
                heads[batch.origin] = (batch.seq, entry.hash)
            }
        }
        guard summary.header.isOpened else { throw try notAddressed(summary.header, path: path) }
        try checkSchema(of: summary.header)
        if let snapshotHeads = summary.header.snapshotHeads { _ = try checkHeads(snapshotHeads, path: path) }
        if let refusal = try baseRefusal(of: summary.header, path: path) { throw refusal }
        try TrustList(store: store).check(summary.header, path: path)
        return summary
    }
}
