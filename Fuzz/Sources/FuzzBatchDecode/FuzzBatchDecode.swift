// libFuzzer target: `Batch.decode` on arbitrary bytes.
//
// In a bundle, a batch is decoded only after its hash matched the header and its origin's
// signature verified, so the bundle fuzzer never gets here. Anyone can sign a batch with a
// key of their own, though, so the decoder must be as robust as the reader.
import BundleSync

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let batch = try Batch.decode(bytes)
        // What decodes must encode back to the same bytes: the encoding is canonical.
        precondition(batch.encoded() == bytes || !isCanonicalBase(batch, bytes), "decode/encode round trip differs")
    } catch let e as BundleSyncError {
        precondition(e.code == .badData, "unexpected error code \(e.code): \(e.message)")
    } catch {
        fatalError("an error that is not a BundleSyncError: \(error)")
    }
    return 0
}

/// The writer always sets base to the smallest timestamp in the batch; a reader accepts any
/// base (bundlesync-format(5)), so only batches whose base is that minimum round-trip.
private func isCanonicalBase(_ batch: Batch, _ bytes: [UInt8]) -> Bool {
    var r = ByteReader(bytes)
    do {
        _ = try r.u8("version")
        _ = try r.raw(16, "origin")
        _ = try r.varint("seq")
        _ = try r.raw(32, "previous")
        let n = try r.varint("dependencies")
        for _ in 0..<n {
            _ = try r.raw(16, "id")
            _ = try r.varint("seq")
        }
        let base = try r.varint("base")
        return base == (batch.hlcRange?.lowerBound.rawValue ?? 0)
    } catch {
        return false
    }
}
