import BundleSyncCore

/// A bundle's batches and snapshot chunks, read one after the other after the whole file has
/// been proved.
///
/// ``BundleReader`` reads them from the file, checking each as it goes, and proves the
/// file whole only at ``finish()``. ``ProvedContent`` hands out what a reader kept while it
/// proved the file, so a small bundle is read from the disk, decompressed, hashed and
/// checked once, and what is applied is exactly what was proved.
public protocol BundleContents: AnyObject {
    var header: BundleHeader { get }
    var fileSize: Int { get }
    /// How far into the file the item last handed out ends, in bytes, for progress.
    var fileBytesRead: Int { get }
    func nextSnapshotChunk() throws -> SnapshotChunk?
    func nextBatch() throws -> (entry: BundleHeader.BatchEntry, signed: SignedBatch, batch: Batch)?
    func finish() throws
}

/// What a ``BundleReader`` kept of a body it proved (``BundleReader/keepContent(upTo:)``).
public final class ProvedContent: BundleContents {
    struct Items {
        struct KeptBatch {
            var entry: BundleHeader.BatchEntry
            var label: String
            var signed: SignedBatch
            var position: Int
        }
        struct KeptChunk {
            var bytes: [UInt8]
            var position: Int
        }
        var chunks: [KeptChunk] = []
        var batches: [KeptBatch] = []
    }

    public let path: String
    public let header: BundleHeader
    public let fileSize: Int
    public private(set) var fileBytesRead: Int
    private var items: Items
    private var nextChunkIndex = 0
    private var nextBatchIndex = 0

    init(path: String, header: BundleHeader, fileSize: Int, items: Items) {
        self.path = path
        self.header = header
        self.fileSize = fileSize
        self.items = items
        fileBytesRead = 0
    }

    /// Decodes the next kept chunk, or returns nil after the last.
    public func nextSnapshotChunk() throws -> SnapshotChunk? {
        guard nextChunkIndex < items.chunks.count else { return nil }
        // Each item is let go once handed out.
        let kept = items.chunks[nextChunkIndex]
        items.chunks[nextChunkIndex].bytes = []
        nextChunkIndex += 1
        fileBytesRead = kept.position
        do {
            return try SnapshotChunk.decode(kept.bytes)
        } catch let e as BundleSyncError {
            throw e.about(bundle: path)
        }
    }

    /// Decodes the next kept batch, or returns nil after the last.
    public func nextBatch() throws -> (entry: BundleHeader.BatchEntry, signed: SignedBatch, batch: Batch)? {
        guard nextChunkIndex == items.chunks.count, nextBatchIndex < items.batches.count else { return nil }
        let kept = items.batches[nextBatchIndex]
        items.batches[nextBatchIndex].signed = SignedBatch(bytes: [], signature: [], hash: kept.signed.hash)
        nextBatchIndex += 1
        fileBytesRead = kept.position
        do {
            return (kept.entry, kept.signed, try Batch.decode(kept.signed.bytes))
        } catch let e as BundleSyncError {
            throw e.prefixed("\(kept.label): ").about(bundle: path)
        }
    }

    /// Nothing is left to check: the reader that kept these items proved the whole file.
    public func finish() throws {}
}
