/// Hard limits on what a bundle may declare, checked before anything is allocated.
package enum Limits {
    package static let maxReplicas = 100_000
    package static let maxHeaderBytes = 64 << 20
    /// A batch holds at least one whole row, and SQLite's own limit on one value is 1e9
    /// bytes: room for a row with a few values of the largest size SQLite stores.
    package static let maxBatchBytes = 1 << 32
    /// The uncompressed body of one bundle. Bodies are read as a stream, frame by frame, so
    /// memory never depends on this; it only bounds what a bundle may declare.
    package static let maxBodyBytes = 1 << 44
    package static let maxBatches = 10_000_000
    package static let maxTables = 10_000
    package static let maxColumns = 32_767
    package static let maxNameBytes = 4096
    /// Above SQLite's own limit on one value (SQLITE_MAX_LENGTH, 1e9 bytes by default).
    package static let maxValueBytes = 1 << 30
    /// Rows and cells one batch or snapshot chunk may hold: twice what a writer puts in one,
    /// so decoding a batch never holds more than a few tens of MiB however it was crafted.
    package static let maxRowsPerBatch = 65_536
    package static let maxCellsPerBatch = 524_288
    package static let maxCapabilities = 256
}
