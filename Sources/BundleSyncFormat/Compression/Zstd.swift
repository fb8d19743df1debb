import BundleSyncCore
import BundleSyncMerge

import CZstd

// The only file that talks to zstd's C API. Where correctness rests on what zstd does, its
// documentation is quoted from its header, zstd.h, as of zstd 1.5.4:
// https://github.com/facebook/zstd/blob/v1.5.4/lib/zstd.h

/// A streaming zstd compressor.
///
/// Output is produced in chunks handed to a sink, so memory stays bounded whatever the
/// input size. Frames carry zstd's own content checksum as an extra early check; bundle
/// integrity does not depend on it (hashes cover the uncompressed content).
/// The bytes a frame is compressed or decompressed against, held in memory of their own:
/// zstd references a prefix rather than copying it, so it must outlive the frame.
private final class Prefix {
    let bytes: UnsafeMutableRawBufferPointer

    init(_ source: [UInt8]) {
        bytes = .allocate(byteCount: source.count, alignment: 16)
        source.withUnsafeBytes { bytes.copyMemory(from: $0) }
    }

    deinit { bytes.deallocate() }
}

package final class ZstdCompressor {
    private let ctx: OpaquePointer
    private var out = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
    /// The prefix the frame is compressed against.
    private var prefix: Prefix?

    /// - Parameter hashLog: When set, the size of the match finder's hash table (a power of
    ///   two), in place of the level's. zstd.h, ZSTD_c_hashLog:
    ///   > Size of the initial probe table, as a power of 2.
    ///   > Resulting memory usage is (1 << (hashLog+2)).
    ///   > [...] Larger tables improve compression ratio of strategies <= dFast,
    ///   > and improve speed of strategies > dFast.
    /// - Parameter background: Whether compression runs on a thread of zstd's own while the
    ///   caller produces the next input. zstd.h, ZSTD_c_nbWorkers:
    ///   > When nbWorkers >= 1, triggers asynchronous mode when invoking ZSTD_compressStream*() :
    ///   > ZSTD_compressStream*() consumes input and flush output if possible, but immediately gives back control to caller,
    ///   > while compression is performed in parallel, within worker thread(s).
    ///   The output is a valid frame either way. A zstd built without threads refuses the
    ///   parameter, and compression stays on the caller's thread.
    package init(level: Int32 = 3, hashLog: Int32? = nil, background: Bool = false) {
        ctx = ZSTD_createCCtx()
        ZSTD_CCtx_setParameter(ctx, ZSTD_c_compressionLevel, level)
        if let hashLog { ZSTD_CCtx_setParameter(ctx, ZSTD_c_hashLog, hashLog) }
        if background { ZSTD_CCtx_setParameter(ctx, ZSTD_c_nbWorkers, 1) }
        // zstd.h, ZSTD_c_checksumFlag:
        // > A 32-bits checksum of content is written at end of frame (default:0)
        ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 1)
    }

    deinit { ZSTD_freeCCtx(ctx) }

    /// Compresses the next frame, of exactly `bodyLength` bytes, against `bytes`, which the
    /// frame may then refer back to as if they came just before it; a reader decompresses
    /// it with the same prefix (``ZstdDecompressor/usePrefix(_:)``). Called before the
    /// frame's first input, on a compressor without a background thread.
    ///
    /// The length matters: told of a prefix but not of the input's size, zstd picks the
    /// parameters of an input the prefix's size, and a body of 10 MB then comes out 20%
    /// larger (measured with zstd 1.5.4, also with the length given but a background thread).
    /// zstd.h, ZSTD_CCtx_setPledgedSrcSize():
    /// > Total input data size to be compressed as a single frame.
    /// > Value will be written in frame header, unless if explicitly forbidden using ZSTD_c_contentSizeFlag.
    /// > This value will also be controlled at end of frame, and trigger an error if not respected.
    ///
    /// zstd.h, ZSTD_CCtx_refPrefix():
    /// > Reference a prefix (single-usage dictionary) for next compressed frame.
    /// > A prefix is **only used once**. Tables are discarded at end of frame (ZSTD_e_end).
    /// > Decompression will need same prefix to properly regenerate data.
    /// > [...]
    /// > Note 1 : Prefix buffer is referenced. It **must** outlive compression.
    /// So the compressor keeps its own copy.
    package func usePrefix(_ bytes: [UInt8], bodyLength: Int) throws {
        guard !bytes.isEmpty else { return }
        let held = Prefix(bytes)
        prefix = held
        for r in [ZSTD_CCtx_setPledgedSrcSize(ctx, UInt64(bodyLength)), ZSTD_CCtx_refPrefix(ctx, held.bytes.baseAddress, held.bytes.count)]
        where ZSTD_isError(r) != 0 {
            throw BundleSyncError.failure("compression failed: \(String(cString: ZSTD_getErrorName(r)))")
        }
    }

    /// Compresses `input`, handing output to `sink`; `finish` ends the frame.
    package func compress(_ input: [UInt8], finish: Bool = false, sink: ([UInt8]) throws -> Void) throws {
        try input.withUnsafeBytes { inBuf in
            var inb = ZSTD_inBuffer(src: inBuf.baseAddress, size: inBuf.count, pos: 0)
            let mode = finish ? ZSTD_e_end : ZSTD_e_continue
            while true {
                let (remaining, produced): (Int, Int) = try out.withUnsafeMutableBytes { outBuf in
                    var outb = ZSTD_outBuffer(dst: outBuf.baseAddress, size: outBuf.count, pos: 0)
                    let r = ZSTD_compressStream2(ctx, &outb, &inb, mode)
                    if ZSTD_isError(r) != 0 {
                        throw BundleSyncError.failure("compression failed: \(String(cString: ZSTD_getErrorName(r)))")
                    }
                    return (r, outb.pos)
                }
                if produced > 0 { try sink(Array(out[0..<produced])) }
                // zstd.h, ZSTD_compressStream2():
                // > - @return provides a minimum amount of data remaining to be flushed from internal buffers
                // >           or an error code, which can be tested using ZSTD_isError().
                // >           if @return != 0, flush is not fully completed, there is still some data left within internal buffers.
                // > [...]
                // >           For ZSTD_e_end, @return == 0 when internal buffers are fully flushed and frame is completed.
                // So the frame is whole once an `ZSTD_e_end` call returns 0; before the end, all
                // of the input is taken once `pos` reaches `size`.
                if finish ? remaining == 0 : inb.pos == inb.size { break }
            }
        }
    }

    /// One-shot compression of a small buffer into a single frame.
    package static func compress(_ input: [UInt8], level: Int32 = 3) throws -> [UInt8] {
        var result: [UInt8] = []
        try ZstdCompressor(level: level).compress(input, finish: true) { result += $0 }
        return result
    }
}

/// A streaming zstd decompressor with a hard cap on output.
///
/// Hostile input must end in a clean error quickly: the window size is capped so a frame
/// cannot demand a huge buffer, and the caller caps total output, so a decompression bomb
/// stops as soon as it exceeds what the bundle declared.
package final class ZstdDecompressor {
    private let ctx: OpaquePointer
    /// Compressed bytes not yet decompressed are `input[inputPos..<inputEnd]`.
    private var input = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    private var inputPos = 0
    private var inputEnd = 0
    /// Whether the last call to ``decompress(into:)`` that consumed or produced anything
    /// completed a frame (`ZSTD_decompressStream` returned 0).
    package private(set) var frameEnded = false

    /// Windows above 2^27 bytes (128 MiB) are refused. bundlesync writes level-3 frames, whose
    /// windows are far smaller.
    package static let maxWindowLog: Int32 = 27

    package init() {
        ctx = ZSTD_createDCtx()
        // zstd.h, ZSTD_d_windowLogMax:
        // > Select a size limit (in power of 2) beyond which
        // > the streaming API will refuse to allocate memory buffer
        // > in order to protect the host from unreasonable memory requirements.
        ZSTD_DCtx_setParameter(ctx, ZSTD_d_windowLogMax, Self.maxWindowLog)
    }

    deinit {
        ZSTD_freeDCtx(ctx)
        input.deallocate()
    }

    /// The prefix the next frame was compressed against.
    private var prefix: Prefix?

    /// Decompresses the next frame against `bytes` (``ZstdCompressor/usePrefix(_:)``).
    /// Called before the frame's first input.
    ///
    /// zstd.h, ZSTD_DCtx_refPrefix():
    /// > Reference a prefix (single-usage dictionary) to decompress next frame.
    /// > This is the reverse operation of ZSTD_CCtx_refPrefix(),
    /// > and must use the same prefix as the one used during compression.
    /// > Prefix is **only used once**. Reference is discarded at end of frame.
    /// > [...]
    /// > Prefix buffer must remain unmodified up to the end of frame,
    /// > reached when ZSTD_decompressStream() returns 0.
    /// A frame compressed without a prefix never refers to one, so it decompresses the same.
    package func usePrefix(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        let held = Prefix(bytes)
        prefix = held
        let r = ZSTD_DCtx_refPrefix(ctx, held.bytes.baseAddress, held.bytes.count)
        if ZSTD_isError(r) != 0 {
            throw BundleSyncError.failure("decompression failed: \(String(cString: ZSTD_getErrorName(r)))")
        }
    }

    /// Makes the input buffer hold at least `capacity` bytes, keeping what is pending at its front.
    private func reserve(_ capacity: Int) {
        let pending = inputEnd - inputPos
        if input.count < capacity {
            let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
            if pending > 0 { grown.copyMemory(from: UnsafeRawBufferPointer(rebasing: input[inputPos..<inputEnd])) }
            input.deallocate()
            input = grown
        } else if inputPos > 0 && pending > 0 {
            input.baseAddress!.copyMemory(from: input.baseAddress! + inputPos, byteCount: pending)
        }
        inputPos = 0
        inputEnd = pending
    }

    /// Hands more compressed bytes to the decompressor.
    package func feed(_ bytes: [UInt8]) {
        reserve(inputEnd - inputPos + bytes.count)
        bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: input[inputEnd...]).copyMemory(from: $0) }
        inputEnd += bytes.count
    }

    /// Hands more compressed bytes to the decompressor by letting `read` write up to
    /// `capacity` of them straight into its input buffer, which is reused from one call to
    /// the next. Only once the previous input is consumed.
    ///
    /// - Returns: The bytes `read` wrote, in place; they stay valid and unchanged until the
    ///   next `refill` or `feed`.
    package func refill(capacity: Int, _ read: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows -> UnsafeRawBufferPointer {
        precondition(!hasPendingInput, "refill before the input is consumed")
        reserve(capacity)
        let n = try read(UnsafeMutableRawBufferPointer(rebasing: input[0..<capacity]))
        inputPos = 0
        inputEnd = n
        return UnsafeRawBufferPointer(rebasing: input[0..<n])
    }

    package var hasPendingInput: Bool { inputPos < inputEnd }

    /// Decompresses into `out`, filling at most all of it. Returns the number of bytes
    /// written (possibly none when more input is needed).
    package func decompress(into out: UnsafeMutableRawBufferPointer) throws -> Int {
        var inb = ZSTD_inBuffer(src: input.baseAddress, size: inputEnd, pos: inputPos)
        var outb = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
        let r = ZSTD_decompressStream(ctx, &outb, &inb)
        // zstd.h, ZSTD_decompressStream():
        // > Function will update both input and output `pos` fields exposing current state via these fields:
        // > - `input.pos < input.size`, some input remaining and caller should provide remaining input
        // >   on the next call.
        // > - `output.pos < output.size`, decoder finished and flushed all remaining buffers.
        // > [...]
        // > @return : 0 when a frame is completely decoded and fully flushed,
        // >           or an error code, which can be tested using ZSTD_isError(),
        // >           or any other value > 0, which means there is some decoding or flushing to do to complete current frame.
        // The streaming how-to adds that such a value is
        // > the return value is a suggested next input size (just a hint for better latency)
        // > that will never request more than the remaining frame size.
        if ZSTD_isError(r) != 0 {
            throw BundleSyncError.badData("the compressed body is corrupt (\(String(cString: ZSTD_getErrorName(r))))")
        }
        // So the body ends on a frame boundary when the last call that did anything returned
        // 0. A call that consumed and produced nothing says nothing about frame ends (after a
        // frame, zstd then only hints at the next frame's header size).
        if inb.pos != inputPos || outb.pos > 0 { frameEnded = (r == 0) }
        inputPos = inb.pos
        return outb.pos
    }

    /// Decompresses into at most `capacity` bytes. Returns the bytes produced (possibly none
    /// when more input is needed).
    package func drain(capacity: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: capacity)
        let produced = try out.withUnsafeMutableBytes { try decompress(into: $0) }
        out.removeSubrange(produced...)
        return out
    }

    /// One-shot decompression of a stored buffer, refusing more than `limit` bytes of output.
    package static func decompress(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        let d = ZstdDecompressor()
        d.feed(input)
        var result: [UInt8] = []
        while true {
            let chunk = try d.drain(capacity: 1 << 17)
            result += chunk
            if result.count > limit { throw BundleSyncError.badData("compressed data expands beyond \(limit) bytes") }
            if chunk.isEmpty && !d.hasPendingInput { break }
        }
        guard d.frameEnded else { throw BundleSyncError.badData("compressed data is truncated") }
        return result
    }
}
