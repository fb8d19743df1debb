import BundleSyncCore
import BundleSyncFormat

// MARK: - Batch floors

/// The earliest clock of each run of an origin's batches held here (`_bundlesync_floors`),
/// kept after the batches themselves are pruned, so that a delta snapshot can tell which
/// rows may hold the effect of batches a peer lacks.
///
/// A replica's stamps follow its wall clock, which can be set back, so a batch numbered
/// higher may hold earlier stamps than one numbered lower: the floor of the batches above a
/// number is the minimum over all of them, not the first one's. Each row is a run of
/// consecutive batches `first...last` of one origin and the smallest HLC any of them holds.
/// Runs are merged as they age (see ``compactFloors(origin:head:)``), which only lowers the
/// floor a peer is given: more rows than needed, never fewer.
extension HistoryStore {
    static let floorsTable = "_bundlesync_floors"

    /// Creates the floors table when a replica made before it is opened. Batches the replica
    /// held before then are recorded with floor zero (every row), since their clocks are no
    /// longer known; a new replica records none.
    package static func createFloors(_ db: Database) throws {
        guard try db.scalar("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", [.text(floorsTable)]) == nil else { return }
        try db.writeTransaction {
            try db.execute("""
                CREATE TABLE IF NOT EXISTS \(floorsTable)(
                    origin INTEGER NOT NULL,
                    last INTEGER NOT NULL,
                    first INTEGER NOT NULL,
                    min_hlc INTEGER NOT NULL,
                    PRIMARY KEY(origin, last)
                ) WITHOUT ROWID
                """)
            try db.run("INSERT INTO \(floorsTable)(origin, last, first, min_hlc) SELECT idx, seq, 1, 0 FROM _bundlesync_replicas WHERE seq > 0")
        }
    }

    /// Records that batches `first...last` of `origin` hold no clock earlier than `minimum`.
    /// Must run inside a write transaction.
    package func recordFloor(origin: Int64, first: UInt64, last: UInt64, minimum: HLC) throws {
        guard first <= last, first > 0 else { return }
        try db.run("""
            INSERT INTO \(Self.floorsTable)(origin, last, first, min_hlc) VALUES (?, ?, ?, ?)
            ON CONFLICT(origin, last) DO UPDATE SET first = min(first, excluded.first), min_hlc = min(min_hlc, excluded.min_hlc)
            """, [.integer(origin), .integer(Int64(last)), .integer(Int64(first)), .integer(Int64(bitPattern: minimum.rawValue))])
    }

    /// The earliest clock in any batch of `origin` numbered above `seq` that is held here:
    /// every stamp those batches hold is at or after it. Zero when nothing is known.
    package func floor(origin: Int64, above seq: UInt64) throws -> HLC {
        let v = try db.scalar("SELECT min(min_hlc) FROM \(Self.floorsTable) WHERE origin = ? AND last > ?",
                              [.integer(origin), .integer(Int64(seq))])
        guard case .integer(let n)? = v else { return .zero }
        return HLC(rawValue: UInt64(bitPattern: n))
    }

    /// Merges an origin's older runs, so that the floors stay about logarithmic in the length
    /// of its history: a run is merged into the next older one while the merged run would
    /// span at most a quarter of the batches since its end. The newest batches keep a run
    /// each, so a peer that is a few batches behind gets a precise floor.
    package func compactFloors(origin: Int64, head: UInt64) throws {
        let rows = try db.rows("SELECT first, last, min_hlc FROM \(Self.floorsTable) WHERE origin = ? ORDER BY last",
                               [.integer(origin)])
        guard rows.count > 8 else { return }
        var runs: [(first: Int64, last: Int64, min: Int64)] = []
        for r in rows {
            let run = (first: r[0].integer ?? 1, last: r[1].integer ?? 0, min: r[2].integer ?? 0)
            if let prev = runs.last, run.last - prev.first + 1 <= (Int64(head) - run.last) / 4 {
                runs[runs.count - 1] = (Swift.min(prev.first, run.first), run.last, Swift.min(prev.min, run.min))
            } else {
                runs.append(run)
            }
        }
        guard runs.count < rows.count else { return }
        try db.run("DELETE FROM \(Self.floorsTable) WHERE origin = ?", [.integer(origin)])
        for r in runs {
            try db.run("INSERT INTO \(Self.floorsTable)(origin, last, first, min_hlc) VALUES (?, ?, ?, ?)",
                       [.integer(origin), .integer(r.last), .integer(r.first), .integer(r.min)])
        }
    }
}
