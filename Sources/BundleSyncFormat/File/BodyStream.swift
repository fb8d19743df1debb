import BundleSyncCore
import Crypto
import Foundation

/// The compressed body of a bundle being read: read from the file piece by piece,
/// decompressed into a buffer that frames are read from in place, and hashed beside the
/// reading (the file digest over the compressed bytes, the content digest over the
/// uncompressed ones).
final class BodyStream {
    private let path: String
    private let handle: FileHandle
    /// The file digest (stream 0) and the content digest (stream 1), computed beside the
    /// reading for a large body.
    private let digests: DigestPipeline
    private static let fileStream = 0, contentStream = 1
    /// The last block handed to each digest.
    private var fileTicket: DigestPipeline.Ticket = 0
    private var contentTicket: DigestPipeline.Ticket = 0
    private let decompressor = ZstdDecompressor()
    private(set) var compressedRemaining: Int
    /// Decompressed bytes not yet taken are `buffer[start..<end]`. Frames are read in place
    /// from here; the buffer grows to hold the largest frame, and moves what is left of the
    /// bytes to its front only when it must. Taken bytes from `hashFrom` to `start` are not
    /// yet handed to the content digest.
    private var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var start = 0
    private var end = 0
    private var hashFrom = 0
    /// Uncompressed bytes taken so far.
    private(set) var consumed = 0
    let expectedContentLength: Int
    /// For an encrypted body: the body key, the number of the next sealed chunk, and the
    /// buffer a sealed chunk is read into (the file digest reads it from there).
    private let bodyKey: SymmetricKey?
    private var chunkCounter: UInt64 = 0
    private var sealedChunk = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    /// - Parameters:
    ///   - handle: Positioned at the start of the compressed body.
    ///   - fileHasher: The file digest, already fed with the prefix and the header.
    ///   - contentHasher: The content digest, fed with the digest key for an encrypted body.
    ///   - bodyKey: For an encrypted body, the key its chunks are sealed with; nil for a
    ///     plain body, and for an encrypted one that is only hashed.
    init(path: String, handle: FileHandle, compressedLength: Int, contentLength: Int, fileHasher: Hasher256,
         contentHasher: Hasher256 = Hasher256(), bodyKey: SymmetricKey? = nil, threaded: Bool) {
        self.path = path
        self.handle = handle
        compressedRemaining = compressedLength
        expectedContentLength = contentLength
        self.bodyKey = bodyKey
        digests = DigestPipeline([fileHasher, contentHasher], threaded: threaded)
    }

    /// Decompresses the body's first frame against `prefix` (format version 3: the header's
    /// contents). Called before anything is read.
    func decompress(against prefix: [UInt8]) throws {
        try decompressor.usePrefix(prefix)
    }

    deinit {
        digests.cancel()
        try? handle.close()
        buffer.deallocate()
        sealedChunk.deallocate()
    }


    /// Ensures at least `n` uncompressed bytes are buffered.
    func fill(_ n: Int, _ what: String) throws {
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
    func readCompressed(orThrow message: @autoclosure () -> String) throws {
        if let bodyKey { return try openNextChunk(key: bodyKey, orThrow: message()) }
        digests.wait(for: fileTicket) // the file digest may still be reading the previous piece
        let piece = decompressor.refill(capacity: min(compressedRemaining, 1 << 20)) { readFile(into: $0) }
        guard !piece.isEmpty else { throw BundleSyncError(.badData, message(), bundle: path) }
        fileTicket = digests.hash(piece, into: Self.fileStream)
        compressedRemaining -= piece.count
    }

    /// Reads as much of `into` from the file as it can; returns the count.
    private func readFile(into: UnsafeMutableRawBufferPointer) -> Int {
        let fd = handle.fileDescriptor
        var got = 0
        while got < into.count {
            let r = read(fd, into.baseAddress! + got, into.count - got)
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { break }
            got += r
        }
        return got
    }

    /// Reads the next sealed chunk of the file into `sealedChunk` and hands it to the file
    /// digest, returning its bytes, or nil at the end of the body.
    private func readSealedChunk(orThrow message: @autoclosure () -> String) throws -> UnsafeRawBufferPointer? {
        guard compressedRemaining > 0 else { return nil }
        if sealedChunk.count == 0 {
            sealedChunk = .allocate(byteCount: BodyCipher.sealedChunkLength, alignment: 16)
        }
        digests.wait(for: fileTicket) // the file digest may still be reading the previous chunk
        let want = min(compressedRemaining, BodyCipher.sealedChunkLength)
        let got = readFile(into: UnsafeMutableRawBufferPointer(rebasing: sealedChunk[0..<want]))
        guard got == want else { throw BundleSyncError(.badData, message(), bundle: path) }
        let piece = UnsafeRawBufferPointer(rebasing: sealedChunk[0..<got])
        fileTicket = digests.hash(piece, into: Self.fileStream)
        compressedRemaining -= got
        return piece
    }

    /// Reads, authenticates and decrypts the next chunk of an encrypted body into the
    /// decompressor.
    private func openNextChunk(key: SymmetricKey, orThrow message: @autoclosure () -> String) throws {
        guard let sealed = try readSealedChunk(orThrow: message()) else {
            throw BundleSyncError(.badData, message(), bundle: path)
        }
        guard let plain = BodyCipher.open(sealed, key: key, counter: chunkCounter, final: compressedRemaining == 0) else {
            throw BundleSyncError(.badData, "'\(path)': encrypted chunk \(chunkCounter + 1) of the body does not open (damaged, truncated, reordered or altered)", bundle: path)
        }
        chunkCounter += 1
        _ = decompressor.refill(capacity: plain.count) { into in
            plain.withUnsafeBytes { into.copyMemory(from: $0) }
            return plain.count
        }
    }

    /// For an encrypted body read without its key: hashes the rest of the body for the file
    /// digest, the only check possible without the key.
    ///
    /// - Returns: The file digest.
    func finishSealed() throws -> Digest32 {
        while try readSealedChunk(orThrow: "'\(path)' is truncated") != nil {}
        return digests.finish()[Self.fileStream]
    }

    /// Takes the next `n` buffered bytes (`fill` them first) for the content digest. The
    /// bytes stay valid until the next `fill`.
    func take(_ n: Int) -> UnsafeRawBufferPointer {
        precondition(end - start >= n)
        let out = UnsafeRawBufferPointer(rebasing: buffer[start..<start + n])
        start += n
        consumed += n
        if start - hashFrom >= 1 << 18 { handTakenBytesToDigest() }
        return out
    }

    /// Hands the bytes taken since the last call to the content digest.
    func handTakenBytesToDigest() {
        guard start > hashFrom else { return }
        contentTicket = digests.hash(UnsafeRawBufferPointer(rebasing: buffer[hashFrom..<start]), into: Self.contentStream)
        hashFrom = start
    }

    func takeVarint(_ what: String) throws -> Int {
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

    /// Checks that nothing follows the last frame, neither uncompressed nor compressed
    /// bytes, and that the compressed body ends a frame.
    ///
    /// - Returns: The file digest and the content digest.
    func finish() throws -> (file: Digest32, content: Digest32) {
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
        // The buffer held the largest frame; a reader kept for its header after the body
        // was checked need not hold that memory too.
        buffer.deallocate()
        buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        (start, end, hashFrom) = (0, 0, 0)
        return (digest[Self.fileStream], digest[Self.contentStream])
    }
}
