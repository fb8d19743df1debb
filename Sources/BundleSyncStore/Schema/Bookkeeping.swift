import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge

/// The bookkeeping tables bundlesync keeps inside the replica's own database file.
///
/// Everything lives in one file so that a copy of the database is a copy of the replica,
/// and so that application data and bookkeeping commit in the same transaction. All names
/// start with `_bundlesync_`; `track` refuses to sync such a table.
package enum Bookkeeping {
    package static let prefix = "_bundlesync_"
    package static let schemaVersion = 1

    package static let createSQL = """
    CREATE TABLE IF NOT EXISTS _bundlesync_meta(
        key TEXT PRIMARY KEY,
        value
    ) WITHOUT ROWID;
    -- Earlier releases' capture triggers skipped while it held a row; unused since capture is
    -- held off by dropping the triggers inside bundlesync's own transactions.
    CREATE TABLE IF NOT EXISTS _bundlesync_capture_off(x);
    CREATE TABLE IF NOT EXISTS _bundlesync_replicas(
        idx INTEGER PRIMARY KEY,
        id BLOB NOT NULL UNIQUE,
        public_key BLOB,
        name TEXT,
        seq INTEGER NOT NULL DEFAULT 0,
        head BLOB,
        last_heard INTEGER,
        trusted INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS _bundlesync_peer_vectors(
        peer INTEGER NOT NULL,
        origin INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY(peer, origin)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS _bundlesync_tables(
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        schema BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS _bundlesync_batches(
        origin INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL,
        length INTEGER NOT NULL,
        signature BLOB NOT NULL,
        body BLOB NOT NULL,
        tables BLOB NOT NULL,
        rows INTEGER NOT NULL,
        applied_order INTEGER,
        received INTEGER NOT NULL,
        least_hlc INTEGER,
        UNIQUE(origin, seq)
    );
    CREATE INDEX IF NOT EXISTS _bundlesync_batches_applied ON _bundlesync_batches(applied_order);
    """

    package static func clockTable(_ id: Int64) -> String { "_bundlesync_clock_\(id)" }
    package static func logTable(_ id: Int64) -> String { "_bundlesync_log_\(id)" }
    package static func mergeTable(_ id: Int64) -> String { "_bundlesync_merge_\(id)" }
    package static func trigger(_ id: Int64, _ kind: String) -> String { "_bundlesync_\(id)_\(kind)" }
}
