import BundleSyncCore
import BundleSyncMerge

import Crypto
import Foundation

/// Writes a bundle file in one pass (`bundlesync-format(5)`).
///
/// The file is written under a temporary name beside the target, flushed to disk, then
/// renamed, so a crash or a yanked stick never leaves a partial file under the real name.
/// Batches are compressed as they arrive; memory holds one batch at a time.
package final class BundleWriter {
    package let finalPath: String
    private let displayPath: String
    /// Nil when writing to standard output, which has no temporary name.
    private let tempPath: String?
    private let handle: FileHandle
    /// Bytes written so far.
    package private(set) var bytesWritten = 0
    /// Level 3 with a hash table of 2^19 entries instead of the level's 2^17: a body of a
    /// few MiB and up, where the small table overflows, comes out about 2% smaller, for
    /// about 10% more compression time (2 MiB of table).
    private let compressor: ZstdCompressor
    /// In format version 3, a body of batches up to this size is compressed against the
    /// header's contents. Such a body is where the header's version vector and the batches'
    /// dependencies weigh most. zstd sizes its parameters by the body's length when it is
    /// told it, which needs the length ahead and compression on the caller's thread; a larger
    /// body (and a snapshot's, whose length is known only at the end) is compressed without
    /// the contents, on a thread of its own, which a reader decompresses the same.
    package static let prefixedBodyLimit = 1 << 20
    private var fileHasher = Hasher256()
    private var contentHasher = Hasher256()
    /// Once a large block arrives, the content digest is taken on a thread of its own while
    /// the block is compressed; from then on every block goes through it, in order.
    private var contentDigests: DigestPipeline?
    private var compressedLength: UInt64 = 0
    private var uncompressedLength: UInt64 = 0
    private var pendingCompressed: [UInt8] = []
    private let expected: [BundleHeader.BatchEntry]
    private var written = 0
    private var finished = false
    /// For an encrypted bundle: the body key, the compressed bytes not yet sealed, and the
    /// number of the next chunk.
    private let bodyKey: SymmetricKey?
    private var unsealed: [UInt8] = []
    private var chunkCounter: UInt64 = 0

    /// - Parameters:
    ///   - shownAs: The path to name in messages (the directory, when the final name is
    ///     chosen only at the end).
    ///   - version: The format version to write: 2 for peers that have not said they read
    ///     3, and 1 only to make bundles as the first release did.
    ///   - recipients: For an encrypted bundle, each recipient's replica id and X25519 public
    ///     key; empty for a plain bundle. Versions 2 and 3 encrypt.
    ///   - passphrase: A passphrase the bundle is also encrypted to.
    package convenience init(path: String, header: BundleHeader, shownAs: String? = nil, version: UInt16 = BundleFile.formatVersion,
                             recipients: [(id: ReplicaID, exchangeKey: [UInt8])] = [], passphrase: [UInt8]? = nil) throws {
        let dir = PathText.directory(of: path)
        let tempPath = BundlePath.temporary(for: path)
        // One open that creates the file, so a failure leaves nothing behind, and the reason
        // given is the system's own ("Read-only file system", "Permission denied").
        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let e = errno
            if e != EEXIST { unlink(tempPath) }
            let place = shownAs ?? (dir.isEmpty ? "." : dir)
            throw BundleSyncError(BundlePath.code(forWriteFailure: e), "cannot create a bundle in '\(place)': \(String(cString: strerror(e)).lowercased())",
                                  hint: BundlePath.hint(forWriteFailure: e), cause: .errno(e), bundle: shownAs ?? path)
        }
        let h = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        try self.init(handle: h, path: path, tempPath: tempPath, shownAs: shownAs, header: header,
                      version: version, recipients: recipients, passphrase: passphrase)
    }

    /// Writes the bundle to standard output (`export -o -`), in one pass, for a pipe.
    package convenience init(standardOutputWith header: BundleHeader, version: UInt16 = BundleFile.formatVersion,
                             recipients: [(id: ReplicaID, exchangeKey: [UInt8])] = [], passphrase: [UInt8]? = nil) throws {
        try self.init(handle: FileHandle.standardOutput, path: "-", tempPath: nil, shownAs: "standard output", header: header,
                      version: version, recipients: recipients, passphrase: passphrase)
    }

    private init(handle h: FileHandle, path: String, tempPath: String?, shownAs: String?, header: BundleHeader, version: UInt16,
                 recipients: [(id: ReplicaID, exchangeKey: [UInt8])], passphrase: [UInt8]?) throws {
        precondition(version >= 2 || (recipients.isEmpty && passphrase == nil), "format version 1 does not encrypt")
        finalPath = path
        displayPath = shownAs ?? path
        self.tempPath = tempPath
        handle = h
        expected = header.batches
        let bodyLength = BundleFile.bodyLength(of: header.batches)
        let contents = header.encodedContents(version: version)
        if version >= 3, !header.isSnapshot, bodyLength <= Self.prefixedBodyLimit {
            // The contents name the same replicas, tables and columns as the batches do: a
            // batch's dependencies, a version vector of its own, then cost a few bytes instead
            // of 17 per replica.
            let c = ZstdCompressor(level: 3, hashLog: 19)
            try c.usePrefix(contents, bodyLength: bodyLength)
            compressor = c
        } else {
            compressor = ZstdCompressor(level: 3, hashLog: 19, background: true)
        }
        func prefix(headerLength: Int) -> [UInt8] {
            var w = ByteWriter(capacity: BundleFile.prefixLength)
            w.raw(BundleFile.magic)
            w.u16(version)
            w.u16(0)
            w.u32(UInt32(headerLength))
            return w.bytes
        }
        if version == 1 {
            bodyKey = nil
            let headerBytes = header.encoded()
            try emit(prefix(headerLength: headerBytes.count))
            try emit(headerBytes)
            return
        }
        var header = header
        guard !recipients.isEmpty || passphrase != nil else {
            bodyKey = nil
            header.recipients = []
            header.passphrase = nil
            let clear = header.encodedClearPart()
            try emit(prefix(headerLength: clear.count + contents.count))
            try emit(clear + contents)
            return
        }
        let fileKey = FileKey()
        header.recipients = try recipients.sorted { $0.id < $1.id }.map { try fileKey.wrap(for: $0.id, exchangeKey: $0.exchangeKey) }
        header.passphrase = try passphrase.map { try fileKey.wrap(passphrase: $0) }
        let clear = header.encodedClearPart()
        let p = prefix(headerLength: clear.count + contents.count + BodyCipher.tagLength)
        let sealed = try fileKey.sealHeader(contents, authenticating: p + clear)
        bodyKey = fileKey.bodyKey
        contentHasher.update(fileKey.digestKey)
        try emit(p)
        try emit(clear + sealed)
    }

    deinit {
        contentDigests?.cancel()
        if !finished {
            if let tempPath {
                try? handle.close()
                unlink(tempPath)
            }
        }
    }

    private func emit(_ bytes: [UInt8]) throws {
        fileHasher.update(bytes)
        bytesWritten += bytes.count
        do {
            try handle.write(contentsOf: Data(bytes))
        } catch {
            throw BundleSyncError(.io, "cannot write the bundle into '\(displayPath)': \(error.localizedDescription)",
                                  hint: "check that the stick is still there and has space")
        }
    }

    private func emitCompressed(_ bytes: [UInt8]) throws {
        guard let bodyKey else { return try emitInFile(bytes) }
        unsealed += bytes
        // A chunk is sealed once more bytes follow it, so the last one is always sealed as final.
        var start = 0
        while unsealed.count - start > BodyCipher.chunkLength {
            try emitInFile(try BodyCipher.seal(unsealed[start..<start + BodyCipher.chunkLength], key: bodyKey,
                                               counter: chunkCounter, final: false))
            chunkCounter += 1
            start += BodyCipher.chunkLength
        }
        if start > 0 { unsealed.removeFirst(start) }
    }

    /// Queues bytes of the body as they go into the file.
    private func emitInFile(_ bytes: [UInt8]) throws {
        compressedLength += UInt64(bytes.count)
        pendingCompressed += bytes
        if pendingCompressed.count >= 1 << 20 {
            try emit(pendingCompressed)
            pendingCompressed.removeAll(keepingCapacity: true)
        }
    }

    /// Appends the next batch; it must be the one the header lists next.
    package func append(_ batch: SignedBatch) throws {
        precondition(written < expected.count && expected[written].hash == batch.hash, "batch out of header order")
        written += 1
        var w = ByteWriter(capacity: batch.bytes.count + 80)
        w.varint(batch.bytes.count)
        w.raw(batch.bytes)
        w.raw(batch.signature)
        try compressAndDigest(w.bytes)
    }

    /// Appends a snapshot chunk (only in a snapshot bundle, after any batches).
    package func append(_ chunk: SnapshotChunk) throws {
        let bytes = chunk.encoded()
        var w = ByteWriter(capacity: bytes.count + 10)
        w.varint(bytes.count)
        w.raw(bytes)
        try compressAndDigest(w.bytes)
    }

    /// Adds a block of the body to the content digest and compresses it into the file.
    private func compressAndDigest(_ block: [UInt8]) throws {
        uncompressedLength += UInt64(block.count)
        if contentDigests == nil && block.count >= BundleReader.threadedHashing {
            contentDigests = DigestPipeline([contentHasher], threaded: true)
        }
        guard let digests = contentDigests else {
            contentHasher.update(block)
            return try compressor.compress(block) { try emitCompressed($0) }
        }
        try block.withUnsafeBytes { raw in
            let ticket = digests.hash(raw, into: 0)
            defer { digests.wait(for: ticket) }
            try compressor.compress(block) { try emitCompressed($0) }
        }
    }

    /// Ends the body, writes the signed trailer, syncs and renames into place.
    ///
    /// - Parameter name: Chooses the final path once the trailer is known; by default the
    ///   path given at creation.
    /// - Returns: The final path.
    @discardableResult
    package func finish(identity: Identity, name: ((BundleFile.Trailer) -> String)? = nil) throws -> String {
        precondition(written == expected.count, "header lists batches that were not written")
        try compressor.compress([], finish: true) { try emitCompressed($0) }
        if let bodyKey {
            try emitInFile(try BodyCipher.seal(unsealed, key: bodyKey, counter: chunkCounter, final: true))
            unsealed = []
        }
        if !pendingCompressed.isEmpty { try emit(pendingCompressed) }
        var trailer = BundleFile.Trailer(compressedLength: compressedLength, uncompressedLength: uncompressedLength,
                                         contentDigest: contentDigests?.finish()[0] ?? contentHasher.finalize(), fileDigest: fileHasher.finalize(),
                                         signature: [])
        trailer.signature = try identity.sign(domain: .bundle, BundleFile.signedMessage(trailer: trailer))
        do {
            let end = trailer.encoded()
            try handle.write(contentsOf: Data(end))
            bytesWritten += end.count
            if tempPath != nil {
                try handle.synchronize()
                try handle.close()
            }
        } catch {
            throw BundleSyncError(.io, "cannot write the bundle into '\(displayPath)': \(error.localizedDescription)",
                                  hint: "check that the stick is still there and has space")
        }
        guard let tempPath else {
            finished = true
            return finalPath
        }
        let target = name?(trailer) ?? finalPath
        guard rename(tempPath, target) == 0 else {
            let e = errno
            unlink(tempPath)
            throw BundleSyncError(BundlePath.code(forWriteFailure: e), "cannot move the finished bundle to '\(target)': \(String(cString: strerror(e)).lowercased())",
                                  hint: BundlePath.hint(forWriteFailure: e), cause: .errno(e), bundle: target)
        }
        finished = true
        // The bundle is complete under its name once renamed; flushing the directory makes
        // the rename survive a power cut or a pulled stick. A file system that does not flush
        // directories at all is fine; an I/O error there is reported.
        try syncDirectory(of: target)
        return target
    }

    /// Makes the rename of `path` into place durable by flushing its directory.
    private func syncDirectory(of path: String) throws {
        let dir = PathText.directory(of: path)
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            guard e == EIO else { return }
            throw Self.unflushed(path, e)
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            let e = errno
            // Some file systems refuse to flush a directory (EINVAL, ENOTSUP); that is not a failure.
            guard e == EIO || e == ENOSPC || e == EDQUOT else { return }
            throw Self.unflushed(path, e)
        }
    }

    private static func unflushed(_ path: String, _ e: Int32) -> BundleSyncError {
        BundleSyncError(.io, "'\(path)' was written, but its directory could not be flushed to the disk: \(String(cString: strerror(e)).lowercased())",
                        hint: "the bundle may not survive removing the stick; check the stick and export again",
                        cause: .errno(e), bundle: path)
    }
}
