import BundleSyncCore
import Foundation

/// A note beside the database file of how far the replica's own history has gone: its id,
/// and the number and hash of its latest batch.
///
/// A database file put back from a backup holds less of its own history than the replica
/// already wrote and sent out. Going on under the same identity would fork that history:
/// every peer would refuse the new batches. The note is outside the file, so restoring the
/// file alone leaves it ahead, and the replica sees that it was restored before it writes
/// anything (see `RestoreCheck`). The note is rewritten after every transaction that moved
/// the head; losing it only loses the early warning.
package struct HeadJournal: Equatable {
    package var id: ReplicaID
    package var seq: UInt64
    package var hash: Digest32

    package init(id: ReplicaID, seq: UInt64, hash: Digest32) {
        self.id = id
        self.seq = seq
        self.hash = hash
    }

    /// The note's path for a database file: beside it, as SQLite's own `-wal` and `-shm`.
    package static func path(for database: String) -> String { database + "-bundlesync" }

    private static let heading = "bundlesync head 1"

    package static func read(for database: String) -> HeadJournal? {
        guard let text = try? String(contentsOfFile: path(for: database), encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n")
        guard lines.count >= 2, lines[0] == heading else { return nil }
        let fields = lines[1].split(separator: " ")
        guard fields.count == 3, let idBytes = bytesFromHex(String(fields[0])), let id = ReplicaID(bytes: idBytes),
              let seq = UInt64(fields[1]), let hashBytes = bytesFromHex(String(fields[2])), let hash = Digest32(bytes: hashBytes)
        else { return nil }
        return HeadJournal(id: id, seq: seq, hash: hash)
    }

    /// Writes the note through a temporary file and a rename, so a reader sees the old note
    /// or the new one. Failing to write it is not an error: the database is the record.
    package func write(for database: String) {
        let target = Self.path(for: database)
        let temporary = target + ".tmp"
        let text = "\(Self.heading)\n\(id.hex) \(seq) \(hash.hex)\n"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8)) else { return }
        if rename(temporary, target) != 0 { unlink(temporary) }
    }
}
