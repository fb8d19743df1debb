extension ByteReader {
    /// A replica id: its 16 bytes.
    public mutating func readReplicaID(_ what: String) throws -> ReplicaID {
        ReplicaID(exactly: try raw(ReplicaID.byteCount, what))
    }

    /// A SHA-256 digest: its 32 bytes.
    public mutating func readDigest(_ what: String) throws -> Digest32 {
        Digest32(unchecked: try raw(Digest32.byteCount, what))
    }
}

