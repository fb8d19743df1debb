import Foundation

extension Replica {
    // MARK: - Identity and copies

    var recordedHome: String? {
        get throws {
            guard case .text(let b)? = try db.scalar("SELECT value FROM _bundlesync_meta WHERE key = 'home'") else { return nil }
            return String(decoding: b, as: UTF8.self)
        }
    }

    /// Whether this file is where the replica was made (not a copy elsewhere).
    public var isAtHome: Bool {
        get throws { try recordedHome == Home.current(of: db.path) }
    }

    /// Refuses to write history from a copy of a replica's file.
    ///
    /// - Throws: `.failure` with the way out when the file is not at its recorded home.
    func ensureAtHome() throws {
        guard let home = try recordedHome, home != Home.current(of: db.path) else { return }
        let sameMachine = home.hasPrefix(Home.machineID() + ":")
        throw BundleSyncError.failure(
            "'\(db.path)' is a copy of replica '\(name)' (\(id.short)), which was made at \(Home.describe(home))\(sameMachine ? "" : " on another machine"); writing history from two copies under one identity would fork it",
            hint: "if the original is still in use, run 'bundlesync reidentify \(db.path)' to make this copy a new replica; if the file was moved and this is now the only copy, run 'bundlesync reidentify \(db.path) --moved'")
    }

    /// Settles a copied or moved replica file.
    ///
    /// - Parameters:
    ///   - moved: The original was moved here and no longer exists: keep the identity and
    ///     record the new home. Otherwise the file becomes a new replica with a new key pair;
    ///     the history it holds, including the original's, stays and syncs as before.
    ///   - newName: The new replica's name (default: the old name with the new id's start).
    /// - Returns: Whether the identity changed.
    @discardableResult
    public func reidentify(moved: Bool, newName: String? = nil) throws -> Bool {
        if try isAtHome {
            if moved { return false }
            throw BundleSyncError.usage("'\(db.path)' is where replica '\(name)' was made; it is not a copy",
                                        hint: "run 'bundlesync reidentify' on the copy instead")
        }
        return try withoutCapture {
            try db.run("UPDATE _bundlesync_meta SET value = ? WHERE key = 'home'", [.text(Home.current(of: db.path))])
            if moved { return false }
            let fresh = Identity()
            let chosen = newName ?? "\(name)-\(fresh.id.hex.prefix(6))"
            try Replica.validateName(chosen)
            try db.run("INSERT INTO _bundlesync_replicas(id, public_key, name, trusted) VALUES (?, ?, ?, 1)",
                       [.blob(fresh.id.bytes), .blob(fresh.publicKey), .text(chosen)])
            guard case .integer(let idx)? = try db.scalar("SELECT last_insert_rowid()") else {
                throw BundleSyncError.failure("cannot record the new identity")
            }
            try db.run("UPDATE _bundlesync_meta SET value = ? WHERE key = 'private_key'", [.blob(fresh.privateKeyBytes)])
            try db.run("UPDATE _bundlesync_meta SET value = ? WHERE key = 'name'", [.text(chosen)])
            identity = fresh
            selfIndex = idx
            name = chosen
            return true
        }
    }
}
