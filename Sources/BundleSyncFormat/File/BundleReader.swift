import BundleSyncCore
import BundleSyncMerge

import Crypto
import Foundation

/// Reads a bundle file as a stream and checks everything it can prove on its own.
///
/// Layout, lengths and limits are checked before anything is allocated. Each batch frame is
/// checked against the header's list as it is read (length, hash, origin signature, chain
/// link to the previous batch of the same origin). ``finish()`` then checks that nothing
/// follows the last frame and that both digests and the exporter's signature hold. A caller
/// must not act on anything it read until `finish()` has returned.
public final class BundleReader: BundleContents {
    public let path: String
    public let header: BundleHeader
    public let trailer: BundleFile.Trailer
    public let fileSize: Int
    /// The format version of the file.
    public let version: UInt16

    private let body: BodyStream
    private var index = 0
    private var lastHashByOrigin: [ReplicaID: (seq: UInt64, hash: Digest32)] = [:]
    /// What this reading keeps of the body, once asked to (``keepContent(upTo:)``).
    private var kept: ProvedContent.Items?
    private var finished = false

    /// Opens a bundle and checks its prefix, header and trailer.
    ///
    /// An encrypted bundle is opened with `keyring` when it names the keyring's replica
    /// among its recipients, or the keyring's passphrase opens its passphrase recipient.
    /// Otherwise its header holds only the fields in the clear
    /// (``BundleHeader/isOpened`` is false), no batch or chunk is read, and ``finish()``
    /// checks what can be checked without the key: the file digest and the exporter's
    /// signature, which cover every byte of the file.
    ///
    /// - Throws: `.noInput` if the file is missing, `.badData` for anything malformed.
    public init(path: String, keyring: BundleKeyring? = nil) throws {
        self.path = path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw BundleSyncError(.noInput, "'\(path)' does not exist", bundle: path)
        }
        guard !isDir.boolValue else { throw BundleSyncError(.usage, "'\(path)' is a directory", bundle: path) }
        // Opening a FIFO would wait for a writer forever; a bundle is a regular file.
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw BundleSyncError(.usage, "'\(path)' is not a regular file", hint: "give the bundle file itself, or a directory of them", bundle: path)
        }
        let h = try BundlePath.openForReading(path)
        // The size of what was opened, also when the path is a link to it (/proc/self/fd/N).
        var opened = stat()
        let size = fstat(h.fileDescriptor, &opened) == 0 ? Int(opened.st_size) : 0
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
        self.version = version
        guard BundleFile.readableVersions.contains(version) else {
            throw BundleSyncError(.badData, "'\(path)' uses bundle format version \(version), which this release cannot read",
                                  hint: "upgrade bundlesync on this device", bundle: path)
        }
        let flags = try pr.u16("flags")
        guard flags == 0 else { throw BundleSyncError(.badData, "'\(path)' sets reserved flags \(flags)", bundle: path) }
        let headerLength = Int(try pr.u32("header length"))
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
        var fileKey: FileKey?
        // In format version 3, the header's contents in the clear, which the body's frame is
        // compressed against.
        var bodyPrefix: [UInt8] = []
        do {
            if version == 1 {
                header = try BundleHeader.decode(headerBytes)
            } else {
                let (clear, offset, sealed) = try BundleHeader.decodeVersion2(headerBytes, version: version)
                var h = clear
                if version >= 3 && !sealed { bodyPrefix = Array(headerBytes[offset...]) }
                if sealed, let keyring, let key = keyring.fileKey(recipients: clear.recipients, passphrase: clear.passphrase) {
                    let opened = try key.openHeader(Array(headerBytes[offset...]), authenticating: prefix + headerBytes[0..<offset])
                    try h.decodeContents(opened, version: version)
                    if version >= 3 { bodyPrefix = opened }
                    fileKey = key
                }
                header = h
            }
        } catch let e as BundleSyncError {
            throw e.prefixed("header at offset \(BundleFile.prefixLength): ").about(bundle: path)
        }
        try h.seek(toOffset: UInt64(size - BundleFile.trailerLength))
        do {
            trailer = try BundleFile.Trailer.decode(try readExactly(BundleFile.trailerLength, "trailer"))
        } catch let e as BundleSyncError {
            throw e.about(bundle: path)
        }
        let compressedLength = size - minimum
        guard trailer.compressedLength == UInt64(compressedLength) else {
            throw BundleSyncError(.badData, "'\(path)' is truncated or has data appended (the body should be \(trailer.compressedLength) bytes, found \(compressedLength))", bundle: path)
        }
        if header.isEncrypted {
            guard BodyCipher.isValidSealedLength(compressedLength) else {
                throw BundleSyncError(.badData, "'\(path)': the encrypted body's length \(compressedLength) does not cut into whole chunks (truncated or appended data)", bundle: path)
            }
        }
        let expectedContentLength: Int
        if header.isSnapshot || !header.isOpened {
            // Chunks are written as the state is read, so only the trailer knows their total
            // (and a sealed header hides the batch list from a reader without the key).
            guard trailer.uncompressedLength <= UInt64(Limits.maxBodyBytes) else {
                throw BundleSyncError(.badData, "'\(path)': the trailer's body length is out of range", bundle: path)
            }
            expectedContentLength = Int(trailer.uncompressedLength)
        } else {
            expectedContentLength = BundleFile.bodyLength(of: header.batches)
        }
        guard trailer.uncompressedLength == UInt64(expectedContentLength) else {
            throw BundleSyncError(.badData, "'\(path)': the trailer's body length disagrees with the header's batch list", bundle: path)
        }
        // No ratio between compressed and declared sizes is checked: honest data (a zero-filled
        // blob, a repeated string) compresses by any factor. The body is read frame by frame
        // and checked as it expands, so memory is bounded by the largest frame actually
        // produced; a declared size only has to be one the format allows.
        guard expectedContentLength <= Limits.maxBodyBytes else {
            throw BundleSyncError(.badData, "'\(path)' claims a body of \(expectedContentLength) bytes, more than a bundle may hold (\(Limits.maxBodyBytes))", bundle: path)
        }
        try h.seek(toOffset: UInt64(BundleFile.prefixLength + headerLength))
        // Hashing a large body on a second core, beside decompressing and checking it, hides
        // most of its cost; a small one is hashed in line.
        var contentHasher = Hasher256()
        if let fileKey { contentHasher.update(fileKey.digestKey) }
        body = BodyStream(path: path, handle: h, compressedLength: compressedLength, contentLength: expectedContentLength,
                          fileHasher: fileHasher, contentHasher: contentHasher, bodyKey: fileKey?.bodyKey,
                          threaded: expectedContentLength >= Self.threadedHashing)
        try body.decompress(against: bodyPrefix)
    }

    /// The body size from which digests are computed on a thread of their own.
    package static let threadedHashing = 1 << 20

    /// How much of the file has been read, in bytes.
    public var fileBytesRead: Int { fileSize - BundleFile.trailerLength - body.compressedRemaining }

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
            let keeping = kept != nil
            guard let (entry, read) = try readNextBatch({ bytes, signature, hash in
                let outline = try Batch.outline(of: bytes)
                let signed = keeping ? SignedBatch(bytes: Array(bytes), signature: Array(signature), hash: hash) : nil
                return ((outline, signed), (outline.origin, outline.seq, outline.previous, outline.sections.map(\.header)))
            }) else { return nil }
            if let signed = read.1 {
                kept!.batches.append(.init(entry: entry, label: Self.label(ofBatch: index - 1, entry), signed: signed, position: fileBytesRead))
            }
            return (entry, read.0)
        }
    }

    /// How errors name the batch at `index` (counted from 0, after any snapshot chunks).
    static func label(ofBatch index: Int, _ entry: BundleHeader.BatchEntry) -> String {
        "batch \(index + 1) (\(entry.origin.short)#\(entry.seq))"
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
        let label = Self.label(ofBatch: index, entry)
        let length = try body.takeVarint("length of \(label)")
        guard length == entry.length else {
            throw BundleSyncError(.badData, "'\(path)': \(label) at body offset \(body.consumed) has length \(length), the header says \(entry.length)", bundle: path)
        }
        try body.fill(length, label)
        try body.fill(length + Signature.byteCount, "signature of \(label)")
        let bytes = body.take(length)
        let signature = body.take(Signature.byteCount)
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
            if kept != nil { kept!.chunks.append(.init(bytes: Array(bytes), position: fileBytesRead)) }
            return (outline, outline.origins, outline.sections.map(\.header))
        }
    }

    private func readNextChunk<T>(_ parse: (UnsafeRawBufferPointer) throws -> (T, [ReplicaID], [SectionHeader])) throws -> T? {
        try namingFile {
            guard header.isSnapshot, body.consumed < body.expectedContentLength else { return nil }
            let label = "snapshot chunk \(index + 1)"
            let length = try body.takeVarint("length of \(label)")
            try body.fill(length, label)
            let (read, origins, sections) = try parse(body.take(length))
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

    // MARK: - Keeping what was proved

    /// Keeps the batches and chunks that the outline readers (``nextBatchOutline()``,
    /// ``nextSnapshotChunkOutline()``) go on to prove, when the body holds no more than
    /// `limit` bytes: an import can then apply them without reading the file again.
    ///
    /// - Returns: Whether they are kept.
    public func keepContent(upTo limit: Int) -> Bool {
        guard index == 0, header.isOpened, body.expectedContentLength <= limit else { return false }
        kept = ProvedContent.Items()
        return true
    }

    /// What was kept, once ``finish()`` has proved the whole file; nil before, when nothing
    /// was kept, or when some of the body was read by a reader that does not keep.
    public func provedContent() -> ProvedContent? {
        guard finished, let kept, kept.chunks.count + kept.batches.count == index else { return nil }
        return ProvedContent(path: path, header: header, fileSize: fileSize, items: kept)
    }

    // MARK: - The end

    /// Checks that the body ends where the header said, and that the digests and the
    /// exporter's signature hold.
    public func finish() throws {
        try namingFile { try checkEnd() }
    }

    /// Proves the header authentic without reading the body's contents: hashes the file's
    /// bytes as they are stored (compressed, and encrypted for an encrypted bundle) for the
    /// file digest, and checks the exporter's signature over it.
    ///
    /// The exporter signs the trailer, whose file digest covers the prefix, the header and
    /// the stored body (`bundlesync-format(5)`, "Trailer"), so this proves the header as
    /// written by the exporter. It proves nothing about the batches or chunks inside: a
    /// caller may use the header (to skip the bundle, or to learn the exporter's vector) but
    /// must not apply anything from the body. Call it instead of reading the body, not after.
    public func authenticateWithoutBody() throws {
        try namingFile {
            guard try body.finishSealed() == trailer.fileDigest else {
                throw BundleSyncError(.badData, "'\(path)': the file digest does not match (the file was altered after export)", bundle: path)
            }
            try checkExporterSignature()
        }
    }

    private func checkEnd() throws {
        guard header.isOpened else {
            guard try body.finishSealed() == trailer.fileDigest else {
                throw BundleSyncError(.badData, "'\(path)': the file digest does not match (the file was altered after export)", bundle: path)
            }
            try checkExporterSignature()
            return
        }
        guard header.isSnapshot ? body.consumed == body.expectedContentLength : index == header.batches.count else {
            throw BundleSyncError(.badData, "'\(path)': only \(index) of \(header.batches.count) batches were read", bundle: path)
        }
        let digest = try body.finish()
        guard digest.file == trailer.fileDigest else {
            throw BundleSyncError(.badData, "'\(path)': the file digest does not match (the file was altered after export)", bundle: path)
        }
        guard digest.content == trailer.contentDigest else {
            throw BundleSyncError(.badData, "'\(path)': the content digest does not match", bundle: path)
        }
        try checkExporterSignature()
        finished = true
    }

    private func checkExporterSignature() throws {
        guard Signature.isValid(trailer.signature, domain: .bundle, message: BundleFile.signedMessage(trailer: trailer),
                                publicKey: header.exporterKey) else {
            throw BundleSyncError(.badData, "'\(path)': the exporter's signature is not valid", bundle: path)
        }
    }
}
