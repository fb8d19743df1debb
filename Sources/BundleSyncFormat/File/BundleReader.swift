import BundleSyncCore
import BundleSyncMerge

import Foundation

/// Reads a bundle file as a stream and checks everything it can prove on its own.
///
/// Layout, lengths and limits are checked before anything is allocated. Each batch frame is
/// checked against the header's list as it is read (length, hash, origin signature, chain
/// link to the previous batch of the same origin). ``finish()`` then checks that nothing
/// follows the last frame and that both digests and the exporter's signature hold. A caller
/// must not act on anything it read until `finish()` has returned.
public final class BundleReader {
    public let path: String
    public let header: BundleHeader
    public let trailer: BundleFile.Trailer
    public let fileSize: Int

    private let handle: FileHandle
    private let headerLength: Int
    /// The file digest (stream 0) and the content digest (stream 1), computed beside the
    /// reading for a large body.
    private let digests: DigestPipeline
    private static let fileStream = 0, contentStream = 1
    /// The last block handed to each digest.
    private var fileTicket: DigestPipeline.Ticket = 0
    private var contentTicket: DigestPipeline.Ticket = 0
    private let decompressor = ZstdDecompressor()
    private var compressedRemaining: Int
    /// Decompressed bytes not yet taken are `buffer[start..<end]`. Frames are read in place
    /// from here; the buffer grows to hold the largest frame, and moves what is left of the
    /// bytes to its front only when it must. Taken bytes from `hashFrom` to `start` are not
    /// yet handed to the content digest.
    private var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var start = 0
    private var end = 0
    private var hashFrom = 0
    private var consumed = 0
    private var index = 0
    private var lastHashByOrigin: [ReplicaID: (seq: UInt64, hash: Digest32)] = [:]
    private let expectedContentLength: Int

    /// Opens a bundle and checks its prefix, header and trailer.
    ///
    /// - Throws: `.noInput` if the file is missing, `.badData` for anything malformed.
    public init(path: String) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw BundleSyncError(.noInput, "'\(path)' does not exist", bundle: path)
        }
        guard !isDir.boolValue else { throw BundleSyncError(.usage, "'\(path)' is a directory", bundle: path) }
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw BundleSyncError(.noInput, "'\(path)' cannot be opened for reading", bundle: path)
        }
        handle = h
        let size = Int((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.int64Value ?? 0)
        fileSize = size
        guard size > 0 else { throw BundleSyncError(.badData, "'\(path)' is empty", bundle: path) }

        func readExactly(_ n: Int, _ what: String) throws -> [UInt8] {
            let d = (try? h.read(upToCount: n)) ?? nil
            let bytes = d.map { [UInt8]($0) } ?? []
            guard bytes.count == n else { throw BundleSyncError(.badData, "'\(path)' is truncated (\(what) incomplete)", bundle: path) }
            return bytes
        }

        let prefixLen = min(size, BundleFile.prefixLength)
        let prefix = try readExactly(prefixLen, "prefix")
        guard prefix.count >= BundleFile.magic.count, Array(prefix.prefix(8)) == BundleFile.magic else {
            throw BundleSyncError(.badData, "'\(path)' does not look like a bundlesync bundle", bundle: path)
        }
        guard prefix.count == BundleFile.prefixLength else {
            throw BundleSyncError(.badData, "'\(path)' is truncated (expected at least \(BundleFile.prefixLength + BundleFile.trailerLength) bytes, found \(size))", bundle: path)
        }
        var pr = ByteReader(prefix, offset: 8)
        let version = try pr.u16("format version")
        guard version == BundleFile.formatVersion else {
            throw BundleSyncError(.badData, "'\(path)' uses bundle format version \(version), which this release cannot read",
                                  hint: "upgrade bundlesync on this device", bundle: path)
        }
        let flags = try pr.u16("flags")
        guard flags == 0 else { throw BundleSyncError(.badData, "'\(path)' sets reserved flags \(flags)", bundle: path) }
        headerLength = Int(try pr.u32("header length"))
        let minimum = BundleFile.prefixLength + headerLength + BundleFile.trailerLength
        guard headerLength <= Limits.maxHeaderBytes else {
            throw BundleSyncError(.badData, "'\(path)' declares a header of \(headerLength) bytes, over the limit", bundle: path)
        }
        guard size >= minimum else {
            throw BundleSyncError(.badData, "'\(path)' is truncated (expected at least \(minimum) bytes, found \(size))", bundle: path)
        }
        let headerBytes = try readExactly(headerLength, "header")
        var fileHasher = Hasher256()
        fileHasher.update(prefix)
        fileHasher.update(headerBytes)
        do {
            header = try BundleHeader.decode(headerBytes)
        } catch let e as BundleSyncError {
            throw e.prefixed("header at offset \(BundleFile.prefixLength): ").about(bundle: path)
        }
        try h.seek(toOffset: UInt64(size - BundleFile.trailerLength))
        do {
            trailer = try BundleFile.Trailer.decode(try readExactly(BundleFile.trailerLength, "trailer"))
        } catch let e as BundleSyncError {
            throw e.about(bundle: path)
        }
        compressedRemaining = size - minimum
        guard trailer.compressedLength == UInt64(compressedRemaining) else {
            throw BundleSyncError(.badData, "'\(path)' is truncated or has data appended (the body should be \(trailer.compressedLength) bytes, found \(compressedRemaining))", bundle: path)
        }
        if header.isSnapshot {
            // Chunks are written as the state is read, so only the trailer knows their total;
            // the expansion cap below still bounds it before anything is decompressed.
            guard trailer.uncompressedLength <= UInt64(Int.max / 2) else {
                throw BundleSyncError(.badData, "'\(path)': the trailer's body length is out of range", bundle: path)
            }
            expectedContentLength = Int(trailer.uncompressedLength)
        } else {
            expectedContentLength = header.batches.reduce(0) { $0 + BundleFile.frameLength(batchLength: $1.length) }
        }
        guard trailer.uncompressedLength == UInt64(expectedContentLength) else {
            throw BundleSyncError(.badData, "'\(path)': the trailer's body length disagrees with the header's batch list", bundle: path)
        }
        guard expectedContentLength <= compressedRemaining * BundleFile.maxExpansionRatio + BundleFile.expansionSlack else {
            throw BundleSyncError(.badData, "'\(path)' claims a body of \(expectedContentLength) bytes from \(compressedRemaining) compressed bytes; refusing a likely decompression bomb", bundle: path)
        }
        try h.seek(toOffset: UInt64(BundleFile.prefixLength + headerLength))
        // Hashing a large body on a second core, beside decompressing and checking it, hides
        // most of its cost; a small one is hashed in line.
        digests = DigestPipeline([fileHasher, Hasher256()], threaded: expectedContentLength >= Self.threadedHashing)
    }

    /// The body size from which digests are computed on a thread of their own.
    package static let threadedHashing = 1 << 20

    deinit {
        digests.cancel()
        try? handle.close()
        buffer.deallocate()
    }

    // MARK: - The decompressed stream

    /// Ensures at least `n` uncompressed bytes are buffered.
    private func fill(_ n: Int, _ what: String) throws {
        while end - start < n {
            let cap = min(1 << 18, max(1, expectedContentLength - consumed - (end - start)))
            makeRoom(n, then: cap)
            let produced = try decompressor.decompress(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end..<end + cap]))
            if produced > 0 {
                guard consumed + end - start + produced <= expectedContentLength else {
                    throw BundleSyncError(.badData, "'\(path)': the body expands beyond its declared \(expectedContentLength) bytes", bundle: path)
                }
                end += produced
                continue
            }
            if decompressor.hasPendingInput { continue }
            guard compressedRemaining > 0 else {
                throw BundleSyncError(.badData, "'\(path)': the body ends early (truncated inside \(what))", bundle: path)
            }
            try readCompressed(orThrow: "'\(path)' is truncated inside \(what)")
        }
    }

    /// Makes sure the buffer can hold `n` bytes from `start` and `cap` more after `end`.
    ///
    /// When the frame being filled does not fit after `start`, the bytes left over from the
    /// frames before (less than one decompression step) move to the front, into a buffer
    /// grown to hold the whole frame; so a frame is never moved while it is being filled.
    private func makeRoom(_ n: Int, then cap: Int) {
        guard buffer.count - start < n + cap || buffer.count - end < cap else { return }
        // The content digest may still be reading the bytes about to move.
        handTakenBytesToDigest()
        digests.wait(for: contentTicket)
        hashFrom = 0
        let needed = max(n, end - start) + cap
        if needed > buffer.count {
            // An eighth more than needed: frames of one bundle vary a little in size, and
            // every byte of the buffer is touched in turn, so more would only cost memory.
            let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: (needed + needed / 8 + 0xffff) & ~0xffff, alignment: 16)
            grown.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[start..<end]))
            buffer.deallocate()
            buffer = grown
        } else if start > 0 {
            buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: end - start)
        }
        end -= start
        start = 0
    }

    /// Reads the next piece of the compressed body into the decompressor, handing it to the
    /// file digest.
    private func readCompressed(orThrow message: @autoclosure () -> String) throws {
        let fd = handle.fileDescriptor
        digests.wait(for: fileTicket) // the file digest may still be reading the previous piece
        let piece = decompressor.refill(capacity: min(compressedRemaining, 1 << 20)) { into -> Int in
            var got = 0
            while got < into.count {
                let r = read(fd, into.baseAddress! + got, into.count - got)
                if r < 0 && errno == EINTR { continue }
                if r <= 0 { break }
                got += r
            }
            return got
        }
        guard !piece.isEmpty else { throw BundleSyncError(.badData, message(), bundle: path) }
        fileTicket = digests.hash(piece, into: Self.fileStream)
        compressedRemaining -= piece.count
    }

    /// Takes the next `n` buffered bytes (`fill` them first) for the content digest. The
    /// bytes stay valid until the next `fill`.
    private func take(_ n: Int) -> UnsafeRawBufferPointer {
        precondition(end - start >= n)
        let out = UnsafeRawBufferPointer(rebasing: buffer[start..<start + n])
        start += n
        consumed += n
        if start - hashFrom >= 1 << 18 { handTakenBytesToDigest() }
        return out
    }

    /// Hands the bytes taken since the last call to the content digest.
    private func handTakenBytesToDigest() {
        guard start > hashFrom else { return }
        contentTicket = digests.hash(UnsafeRawBufferPointer(rebasing: buffer[hashFrom..<start]), into: Self.contentStream)
        hashFrom = start
    }

    private func takeVarint(_ what: String) throws -> Int {
        var n = 1
        while true {
            try fill(n, what)
            if buffer[start + n - 1] & 0x80 == 0 { break }
            guard n < 10 else { throw BundleSyncError(.badData, "'\(path)': overlong \(what)", bundle: path) }
            n += 1
        }
        var r = ByteReader(take(n))
        return try r.count(what, limit: Limits.maxBatchBytes)
    }

    /// How much of the file has been read, in bytes.
    public var fileBytesRead: Int { fileSize - BundleFile.trailerLength - compressedRemaining }

    // MARK: - Batches

    /// Reads and checks the next batch, or returns nil after the last one.
    public func nextBatch() throws -> (entry: BundleHeader.BatchEntry, signed: SignedBatch, batch: Batch)? {
        try namingFile {
            try readNextBatch { bytes, signature, hash in
                let signed = SignedBatch(bytes: Array(bytes), signature: Array(signature), hash: hash)
                let batch = try Batch.decode(signed.bytes)
                return ((signed, batch), (batch.origin, batch.seq, batch.previous, batch.tables.map(\.header)))
            }.map { ($0.entry, $0.read.0, $0.read.1) }
        }
    }

    /// Reads and checks the next batch as ``nextBatch()`` does, but walks it instead of
    /// decoding it: returns its outline, or nil after the last one.
    public func nextBatchOutline() throws -> (entry: BundleHeader.BatchEntry, outline: Batch.Outline)? {
        try namingFile {
            try readNextBatch { bytes, _, _ in
                let outline = try Batch.outline(of: bytes)
                return (outline, (outline.origin, outline.seq, outline.previous, outline.sections.map(\.header)))
            }.map { ($0.entry, $0.read) }
        }
    }

    /// Runs `body`, making sure any error it throws is about this file (and names it).
    private func namingFile<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as BundleSyncError {
            throw e.about(bundle: path)
        }
    }

    /// What a batch frame says about itself, for the checks against the header and the chain.
    private typealias BatchFacts = (origin: ReplicaID, seq: UInt64, previous: Digest32, sections: [SectionHeader])

    /// Reads the next batch frame and checks it: length, hash, signature, then what `parse`
    /// finds inside (origin, number, sections, chain link).
    ///
    /// - Parameter parse: Decodes or walks the batch's bytes; it is given the batch and its
    ///   signature, which stay valid only during the call, and the batch's hash.
    private func readNextBatch<T>(_ parse: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, Digest32) throws -> (T, BatchFacts))
        throws -> (entry: BundleHeader.BatchEntry, read: T)? {
        guard index < header.batches.count else { return nil }
        let entry = header.batches[index]
        let label = "batch \(index + 1) (\(entry.origin.short)#\(entry.seq))"
        let length = try takeVarint("length of \(label)")
        guard length == entry.length else {
            throw BundleSyncError(.badData, "'\(path)': \(label) at body offset \(consumed) has length \(length), the header says \(entry.length)", bundle: path)
        }
        try fill(length, label)
        try fill(length + Signature.byteCount, "signature of \(label)")
        let bytes = take(length)
        let signature = take(Signature.byteCount)
        var hasher = Hasher256()
        hasher.update(bytes)
        let hash = hasher.finalize()
        guard hash == entry.hash else {
            throw BundleSyncError(.badData, "'\(path)': \(label) does not match its hash in the header (corrupt, reordered or replaced)", bundle: path)
        }
        guard let key = header.keys[entry.origin],
              Signature.isValid(Array(signature), domain: .batch, message: hash.bytes, publicKey: key) else {
            throw BundleSyncError(.badData, "'\(path)': \(label) has a bad signature from its origin", bundle: path)
        }
        let read: T, facts: BatchFacts
        do {
            (read, facts) = try parse(bytes, signature, hash)
        } catch let e as BundleSyncError {
            throw e.prefixed("\(label): ").about(bundle: path)
        }
        guard facts.origin == entry.origin, facts.seq == entry.seq else {
            throw BundleSyncError(.badData, "'\(path)': \(label) names a different origin or number inside", bundle: path)
        }
        for section in facts.sections {
            try section.check(against: header.tables, label: label)
        }
        if let last = lastHashByOrigin[entry.origin] {
            guard entry.seq > last.seq else {
                throw BundleSyncError(.badData, "'\(path)': \(label) repeats or reorders the history of \(entry.origin.short)", bundle: path)
            }
            if entry.seq == last.seq + 1 && facts.previous != last.hash {
                throw BundleSyncError(.badData, "'\(path)': \(label) breaks the hash chain (it names \(facts.previous.short) as its predecessor, the bundle holds \(last.hash.short))", bundle: path)
            }
        }
        if entry.seq == 1 && facts.previous != .zero {
            throw BundleSyncError(.badData, "'\(path)': \(label) is its origin's first batch but names a predecessor", bundle: path)
        }
        lastHashByOrigin[entry.origin] = (entry.seq, entry.hash)
        index += 1
        return (entry, read)
    }

    // MARK: - Snapshot chunks

    /// Reads and checks the next chunk of a snapshot bundle, or returns nil after the last.
    public func nextSnapshotChunk() throws -> SnapshotChunk? {
        try readNextChunk { bytes in
            let chunk = try SnapshotChunk.decode(bytes)
            return (chunk, chunk.origins, chunk.tables.map(\.header))
        }
    }

    /// Reads and checks the next chunk as ``nextSnapshotChunk()`` does, but walks it instead
    /// of decoding it: returns its outline, or nil after the last.
    public func nextSnapshotChunkOutline() throws -> SnapshotChunk.Outline? {
        try readNextChunk { bytes in
            let outline = try SnapshotChunk.outline(of: bytes)
            return (outline, outline.origins, outline.sections.map(\.header))
        }
    }

    private func readNextChunk<T>(_ parse: (UnsafeRawBufferPointer) throws -> (T, [ReplicaID], [SectionHeader])) throws -> T? {
        try namingFile {
            guard header.isSnapshot, consumed < expectedContentLength else { return nil }
            let label = "snapshot chunk \(index + 1)"
            let length = try takeVarint("length of \(label)")
            try fill(length, label)
            let (read, origins, sections) = try parse(take(length))
            for origin in origins where header.keys[origin] == nil {
                throw BundleSyncError.badData("\(label) names replica \(origin.short), which has no public key in the header")
            }
            for section in sections {
                try section.check(against: header.tables, label: label)
            }
            index += 1
            return read
        }
    }

    // MARK: - The end

    /// Checks that the body ends where the header said, and that the digests and the
    /// exporter's signature hold.
    public func finish() throws {
        try namingFile { try checkEnd() }
    }

    private func checkEnd() throws {
        guard header.isSnapshot ? consumed == expectedContentLength : index == header.batches.count else {
            throw BundleSyncError(.badData, "'\(path)': only \(index) of \(header.batches.count) batches were read", bundle: path)
        }
        // Drain: nothing may follow the last frame, neither uncompressed nor compressed bytes.
        var scratch = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let extra = try scratch.withUnsafeMutableBytes { try decompressor.decompress(into: $0) }
            if extra > 0 {
                throw BundleSyncError(.badData, "'\(path)': the body holds data after its last batch", bundle: path)
            }
            if decompressor.hasPendingInput { continue }
            if compressedRemaining == 0 { break }
            try readCompressed(orThrow: "'\(path)' is truncated")
        }
        guard end == start else {
            throw BundleSyncError(.badData, "'\(path)': the body holds data after its last batch", bundle: path)
        }
        guard decompressor.frameEnded else {
            throw BundleSyncError(.badData, "'\(path)': the compressed body is truncated", bundle: path)
        }
        handTakenBytesToDigest()
        let digest = digests.finish()
        guard digest[Self.fileStream] == trailer.fileDigest else {
            throw BundleSyncError(.badData, "'\(path)': the file digest does not match (the file was altered after export)", bundle: path)
        }
        guard digest[Self.contentStream] == trailer.contentDigest else {
            throw BundleSyncError(.badData, "'\(path)': the content digest does not match", bundle: path)
        }
        guard Signature.isValid(trailer.signature, domain: .bundle, message: BundleFile.signedMessage(trailer: trailer),
                                publicKey: header.exporterKey) else {
            throw BundleSyncError(.badData, "'\(path)': the exporter's signature is not valid", bundle: path)
        }
    }
}
