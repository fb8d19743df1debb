/// Hard limits on what a bundle may declare, checked before anything is allocated.
package enum Limits {
    package static let maxReplicas = 100_000
    package static let maxHeaderBytes = 64 << 20
    package static let maxBatchBytes = 256 << 20
    package static let maxBatches = 10_000_000
    package static let maxTables = 10_000
    package static let maxColumns = 32_767
    package static let maxNameBytes = 4096
    package static let maxValueBytes = 1 << 30
    /// Rows and cells one batch or snapshot chunk may hold: twice what a writer puts in one,
    /// so decoding a batch never holds more than a few tens of MiB however it was crafted.
    package static let maxRowsPerBatch = 65_536
    package static let maxCellsPerBatch = 524_288
    package static let maxCapabilities = 256
}
