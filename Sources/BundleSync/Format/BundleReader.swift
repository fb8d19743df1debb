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
    private var fileHasher = Hasher256()
    private var contentHasher = Hasher256()
    private let decompressor = ZstdDecompressor()
    private var compressedRemaining: Int
    private var buffer: [UInt8] = []
    private var bufferPos = 0
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
            throw BundleSyncError(.noInput, "'\(path)' does not exist")
        }
        guard !isDir.boolValue else { throw BundleSyncError(.usage, "'\(path)' is a directory") }
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw BundleSyncError(.noInput, "'\(path)' cannot be opened for reading")
        }
        handle = h
        let size = Int((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)??.int64Value ?? 0)
        fileSize = size
        guard size > 0 else { throw BundleSyncError.badData("'\(path)' is empty") }

        func readExactly(_ n: Int, _ what: String) throws -> [UInt8] {
            let d = (try? h.read(upToCount: n)) ?? nil
            let bytes = d.map { [UInt8]($0) } ?? []
            guard bytes.count == n else { throw BundleSyncError.badData("'\(path)' is truncated (\(what) incomplete)") }
            return bytes
        }

        let prefixLen = min(size, BundleFile.prefixLength)
        let prefix = try readExactly(prefixLen, "prefix")
        guard prefix.count >= BundleFile.magic.count, Array(prefix.prefix(8)) == BundleFile.magic else {
            throw BundleSyncError.badData("'\(path)' does not look like a bundlesync bundle")
        }
        guard prefix.count == BundleFile.prefixLength else {
            throw BundleSyncError.badData("'\(path)' is truncated (expected at least \(BundleFile.prefixLength + BundleFile.trailerLength) bytes, found \(size))")
        }
        var pr = ByteReader(prefix, offset: 8)
        let version = try pr.u16("format version")
        guard version == BundleFile.formatVersion else {
            throw BundleSyncError.badData("'\(path)' uses bundle format version \(version), which this release cannot read",
                                          hint: "upgrade bundlesync on this device")
        }
        let flags = try pr.u16("flags")
        guard flags == 0 else { throw BundleSyncError.badData("'\(path)' sets reserved flags \(flags)") }
        headerLength = Int(try pr.u32("header length"))
        let minimum = BundleFile.prefixLength + headerLength + BundleFile.trailerLength
        guard headerLength <= Limits.maxHeaderBytes else {
            throw BundleSyncError.badData("'\(path)' declares a header of \(headerLength) bytes, over the limit")
        }
        guard size >= minimum else {
            throw BundleSyncError.badData("'\(path)' is truncated (expected at least \(minimum) bytes, found \(size))")
        }
        let headerBytes = try readExactly(headerLength, "header")
        fileHasher.update(prefix)
        fileHasher.update(headerBytes)
        do {
            header = try BundleHeader.decode(headerBytes)
        } catch let e as BundleSyncError {
            throw e.prefixed("'\(path)': header at offset \(BundleFile.prefixLength): ")
        }
        try h.seek(toOffset: UInt64(size - BundleFile.trailerLength))
        do {
            trailer = try BundleFile.Trailer.decode(try readExactly(BundleFile.trailerLength, "trailer"))
        } catch let e as BundleSyncError {
            throw e.prefixed("'\(path)': ")
        }
        compressedRemaining = size - minimum
        guard trailer.compressedLength == UInt64(compressedRemaining) else {
            throw BundleSyncError.badData("'\(path)' is truncated or has data appended (the body should be \(trailer.compressedLength) bytes, found \(compressedRemaining))")
        }
        if header.isSnapshot {
            // Chunks are written as the state is read, so only the trailer knows their total;
            // the expansion cap below still bounds it before anything is decompressed.
            guard trailer.uncompressedLength <= UInt64(Int.max / 2) else {
                throw BundleSyncError.badData("'\(path)': the trailer's body length is out of range")
            }
            expectedContentLength = Int(trailer.uncompressedLength)
        } else {
            expectedContentLength = header.batches.reduce(0) { $0 + BundleFile.frameLength(batchLength: $1.length) }
        }
        guard trailer.uncompressedLength == UInt64(expectedContentLength) else {
            throw BundleSyncError.badData("'\(path)': the trailer's body length disagrees with the header's batch list")
        }
        guard expectedContentLength <= compressedRemaining * BundleFile.maxExpansionRatio + BundleFile.expansionSlack else {
            throw BundleSyncError.badData("'\(path)' claims a body of \(expectedContentLength) bytes from \(compressedRemaining) compressed bytes; refusing a likely decompression bomb")
        }
        try h.seek(toOffset: UInt64(BundleFile.prefixLength + headerLength))
    }

    deinit { try? handle.close() }

    /// Ensures at least `n` uncompressed bytes are buffered.
    private func fill(_ n: Int, _ what: String) throws {
        while buffer.count - bufferPos < n {
            if bufferPos > 0 && bufferPos >= buffer.count / 2 {
                buffer.removeSubrange(0..<bufferPos)
                bufferPos = 0
            }
            let cap = min(1 << 18, max(1, expectedContentLength - consumed - (buffer.count - bufferPos)))
            let produced = try decompressor.drain(capacity: cap)
            if !produced.isEmpty {
                guard consumed + buffer.count - bufferPos + produced.count <= expectedContentLength else {
                    throw BundleSyncError.badData("'\(path)': the body expands beyond its declared \(expectedContentLength) bytes")
                }
                buffer += produced
                continue
            }
            if decompressor.hasPendingInput { continue }
            guard compressedRemaining > 0 else {
                throw BundleSyncError.badData("'\(path)': the body ends early (truncated inside \(what))")
            }
            let chunk = (try? handle.read(upToCount: min(compressedRemaining, 1 << 20))) ?? nil
            guard let chunk, !chunk.isEmpty else {
                throw BundleSyncError.badData("'\(path)' is truncated inside \(what)")
            }
            let bytes = [UInt8](chunk)
            compressedRemaining -= bytes.count
            fileHasher.update(bytes)
            decompressor.feed(bytes)
        }
    }

    private func take(_ n: Int, _ what: String) throws -> [UInt8] {
        try fill(n, what)
        let out = Array(buffer[bufferPos..<bufferPos + n])
        bufferPos += n
        consumed += n
        contentHasher.update(out)
        return out
    }

    private func takeVarint(_ what: String) throws -> Int {
        var bytes: [UInt8] = []
        while true {
            let b = try take(1, what)[0]
            bytes.append(b)
            if b & 0x80 == 0 { break }
            guard bytes.count < 10 else { throw BundleSyncError.badData("'\(path)': overlong \(what)") }
        }
        var r = ByteReader(bytes)
        return try r.count(what, limit: Limits.maxBatchBytes)
    }

    /// How much of the file has been read, in bytes.
    public var fileBytesRead: Int { fileSize - BundleFile.trailerLength - compressedRemaining }

    /// Reads and checks the next batch, or returns nil after the last one.
    public func nextBatch() throws -> (entry: BundleHeader.BatchEntry, signed: SignedBatch, batch: Batch)? {
        try namingFile { try readNextBatch() }
    }

    /// Runs `body`, making sure any error names this file.
    private func namingFile<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as BundleSyncError where !e.message.contains("'\(path)'") {
            throw e.prefixed("'\(path)': ")
        }
    }

    private func readNextBatch() throws -> (entry: BundleHeader.BatchEntry, signed: SignedBatch, batch: Batch)? {
        guard index < header.batches.count else { return nil }
        let entry = header.batches[index]
        let label = "batch \(index + 1) (\(entry.origin.short)#\(entry.seq))"
        let length = try takeVarint("length of \(label)")
        guard length == entry.length else {
            throw BundleSyncError.badData("'\(path)': \(label) at body offset \(consumed) has length \(length), the header says \(entry.length)")
        }
        let bytes = try take(length, label)
        let signature = try take(Signature.byteCount, "signature of \(label)")
        let batch = SignedBatch(bytes: bytes, signature: signature)
        guard batch.hash == entry.hash else {
            throw BundleSyncError.badData("'\(path)': \(label) does not match its hash in the header (corrupt, reordered or replaced)")
        }
        guard let key = header.keys[entry.origin], batch.signatureIsValid(publicKey: key) else {
            throw BundleSyncError.badData("'\(path)': \(label) has a bad signature from its origin")
        }
        let decoded: Batch
        do {
            decoded = try Batch.decode(bytes)
        } catch let e as BundleSyncError {
            throw e.prefixed("'\(path)': \(label): ")
        }
        guard decoded.origin == entry.origin, decoded.seq == entry.seq else {
            throw BundleSyncError.badData("'\(path)': \(label) names a different origin or number inside")
        }
        for section in decoded.tables {
            try SectionHeader(table: section.table, keyColumns: section.keyColumns, columns: section.columns)
                .check(against: header.tables, label: label)
        }
        if let last = lastHashByOrigin[entry.origin] {
            guard entry.seq > last.seq else {
                throw BundleSyncError.badData("'\(path)': \(label) repeats or reorders the history of \(entry.origin.short)")
            }
            if entry.seq == last.seq + 1 && decoded.previous != last.hash {
                throw BundleSyncError.badData("'\(path)': \(label) breaks the hash chain (it names \(decoded.previous.short) as its predecessor, the bundle holds \(last.hash.short))")
            }
        }
        if entry.seq == 1 && decoded.previous != .zero {
            throw BundleSyncError.badData("'\(path)': \(label) is its origin's first batch but names a predecessor")
        }
        lastHashByOrigin[entry.origin] = (entry.seq, entry.hash)
        index += 1
        return (entry, batch, decoded)
    }

    /// Reads and checks the next chunk of a snapshot bundle, or returns nil after the last.
    public func nextSnapshotChunk() throws -> SnapshotChunk? {
        try namingFile {
            guard header.isSnapshot, consumed < expectedContentLength else { return nil }
            let label = "snapshot chunk \(index + 1)"
            let length = try takeVarint("length of \(label)")
            let chunk = try SnapshotChunk.decode(try take(length, label))
            for origin in chunk.origins where header.keys[origin] == nil {
                throw BundleSyncError.badData("\(label) names replica \(origin.short), which has no public key in the header")
            }
            for section in chunk.tables {
                try SectionHeader(table: section.table, keyColumns: section.keyColumns, columns: section.columns)
                    .check(against: header.tables, label: label)
            }
            index += 1
            return chunk
        }
    }

    /// Checks that the body ends where the header said, and that the digests and the
    /// exporter's signature hold.
    public func finish() throws {
        try namingFile { try checkEnd() }
    }

    private func checkEnd() throws {
        guard header.isSnapshot ? consumed == expectedContentLength : index == header.batches.count else {
            throw BundleSyncError.badData("'\(path)': only \(index) of \(header.batches.count) batches were read")
        }
        // Drain: nothing may follow the last frame, neither uncompressed nor compressed bytes.
        while true {
            let extra = try decompressor.drain(capacity: 1 << 16)
            if !extra.isEmpty {
                throw BundleSyncError.badData("'\(path)': the body holds data after its last batch")
            }
            if decompressor.hasPendingInput { continue }
            if compressedRemaining == 0 { break }
            let chunk = (try? handle.read(upToCount: min(compressedRemaining, 1 << 20))) ?? nil
            guard let chunk, !chunk.isEmpty else { throw BundleSyncError.badData("'\(path)' is truncated") }
            compressedRemaining -= chunk.count
            let bytes = [UInt8](chunk)
            fileHasher.update(bytes)
            decompressor.feed(bytes)
        }
        guard buffer.count == bufferPos else {
            throw BundleSyncError.badData("'\(path)': the body holds data after its last batch")
        }
        guard decompressor.frameEnded else {
            throw BundleSyncError.badData("'\(path)': the compressed body is truncated")
        }
        guard fileHasher.finalize() == trailer.fileDigest else {
            throw BundleSyncError.badData("'\(path)': the file digest does not match (the file was altered after export)")
        }
        guard contentHasher.finalize() == trailer.contentDigest else {
            throw BundleSyncError.badData("'\(path)': the content digest does not match")
        }
        guard Signature.isValid(trailer.signature, domain: .bundle, message: BundleFile.signedMessage(trailer: trailer),
                                publicKey: header.exporterKey) else {
            throw BundleSyncError.badData("'\(path)': the exporter's signature is not valid")
        }
    }
}
