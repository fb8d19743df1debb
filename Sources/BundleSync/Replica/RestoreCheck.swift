import BundleSyncCore
import BundleSyncFormat
import BundleSyncStore

/// Finds out whether a replica's file was put back from an older copy, and if so gives it a
/// new identity before it writes anything.
///
/// A replica that has lost part of its own history (a backup restored over its file) must
/// not go on writing under its identity: its next batch would carry a number its peers
/// already hold with other contents, and every peer would refuse it as a fork. Two things
/// show such a loss: the ``HeadJournal`` beside the file is ahead of the file, or a peer's
/// bundle shows that the peer holds more of this replica's history than the replica itself.
///
/// The way out is the one `reidentify` takes for a copy: a new identity for the file. The old
/// identity becomes one more origin, whose history continues from what the file holds; its
/// missing batches arrive from the peers that hold them. Writes made since the restore are
/// sealed under the new identity, so none is lost.
package struct RestoreCheck {
    package let store: ReplicaStore

    package init(store: ReplicaStore) {
        self.store = store
    }

    /// Compares the file with its head journal, at open.
    package func run() throws {
        let head = try store.ownHead()
        guard let note = HeadJournal.read(for: store.db.path), note != head else { return }
        if note.id == store.id {
            if note.seq > head.seq {
                try recover(held: head.seq, written: note.seq, evidence: "the note beside it, \(PathText.fileName(of: HeadJournal.path(for: store.db.path))), records batch \(note.seq)")
            } else if let held = try store.history.hash(origin: store.selfIndex, seq: note.seq), held != note.hash {
                try recover(held: head.seq, written: note.seq, evidence: "its batch \(note.seq) differs from the one recorded beside it")
            }
            // Otherwise the file is ahead of its note (a crash between commit and note).
        } else if try store.replicas.existingIndex(of: note.id) == nil {
            // The note names an identity this file never had: the file predates it.
            try recover(held: head.seq, written: nil, evidence: "the note beside it names identity \(note.id.short), which this file never took")
        }
        try store.noteHead()
    }

    /// Checks a bundle's header, at import: does its exporter hold more of this replica's own
    /// history than the replica does?
    ///
    /// - Returns: What happened, for the import's report, or nil when nothing did.
    package func check(_ header: BundleHeader, path: String) throws -> String? {
        let head = try store.ownHead()
        let peerHolds = ownHistory(in: header)
        guard peerHolds > head.seq else { return nil }
        return try store.db.writeTransaction {
            try recover(held: head.seq, written: peerHolds,
                        evidence: "'\(path)' shows that \(shown(header.exporterName)) holds its batch \(peerHolds)")
        }
    }

    /// Whether a bundle's header shows more of this replica's own history than it holds.
    package func showsRestore(_ header: BundleHeader) throws -> Bool {
        ownHistory(in: header) > (try store.ownHead()).seq
    }

    /// How much of this replica's own history a bundle's exporter holds or carries.
    private func ownHistory(in header: BundleHeader) -> UInt64 {
        var holds = header.exporterVector[store.id]
        for b in header.batches where b.origin == store.id { holds = max(holds, b.seq) }
        for h in header.snapshotHeads ?? [] where h.origin == store.id { holds = max(holds, h.seq) }
        return holds
    }

    /// Gives the replica a new identity; the old one's missing history comes from peers.
    @discardableResult
    private func recover(held: UInt64, written: UInt64?, evidence: String) throws -> String {
        let old = store.name
        let oldID = store.id
        let fresh = Identity()
        let newName = "\(old)-\(fresh.id.hex.prefix(6))"
        if store.db.isInTransaction {
            try store.adopt(fresh, name: newName)
        } else {
            try store.db.writeTransaction { try store.adopt(fresh, name: newName) }
        }
        let missing = written.map {
            $0 == held + 1 ? "; its batch \($0) is missing here and comes back from the peers that hold it"
                : $0 > held ? "; its batches \(held + 1) to \($0) are missing here and come back from the peers that hold them" : ""
        } ?? ""
        let message = """
            '\(store.db.path)' is an older copy of replica '\(shown(old))' (\(oldID.short)): it holds its history up to batch \(held), but \(evidence). \
            It was put back from a backup, so it now writes as a new replica, '\(newName)' (\(fresh.id.short)), and '\(shown(old))' stays one more origin\(missing). \
            Every write made since the restore is kept and sent under the new name.
            """
        store.notices.append(message)
        return message
    }
}
