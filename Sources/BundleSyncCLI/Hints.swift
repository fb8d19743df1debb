import BundleSync

/// Advice for a bad bundle, as the manual's DIAGNOSTICS gives it, for errors that carry none
/// of their own. The phrases are those the manual lists for each refusal.
enum BundleHints {
    private static let table: [(fragments: [String], hint: String)] = [
        (["does not look like a bundlesync bundle"],
         "this file is not a bundle; check that the right file was copied to the stick"),
        (["truncated", "appended", "body ends early", "is empty"],
         "the file was cut short, typically by a stick pulled out during the copy; export again on the device that wrote it, and run 'bundlesync verify' on the stick before carrying it"),
        (["digest does not match", "signature is not valid", "does not match its hash", "breaks the hash chain"],
         "the bytes changed after export (failing flash, a damaged copy, or tampering); export again on the source device, and if it happens again with a new stick, treat the file as forged"),
        (["uses bundle format version", "requires capability"],
         "a newer release wrote this bundle; upgrade bundlesync on this device"),
        (["decompression bomb", "expands beyond", "exceeds the limit"],
         "bundlesync never writes such a file; discard it"),
        (["refers to text", "not canonical JSON", "Unicode scalars of valid UTF-8"],
         "the bundle was most likely made by another program, or damaged before it was signed; discard it"),
    ]

    /// A hint for `error`: its own, or the manual's advice when it is a bad bundle.
    static func hint(for error: BundleSyncError) -> String? {
        if let own = error.hint { return own }
        guard error.code == .badData else { return nil }
        for entry in table where entry.fragments.contains(where: error.message.contains) { return entry.hint }
        guard error.bundle != nil else { return nil }
        return "the bundle is damaged; export it again on the device that wrote it, and run 'bundlesync verify' on the stick before carrying it"
    }
}
