import BundleSync
import CSQLite
import CZstd
import Foundation

// The "application" and the baselines talk to SQLite through its C API directly, as any
// program would, on their own connections.

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A plain SQLite connection with a statement cache.
final class RawDB {
    let handle: OpaquePointer
    let path: String
    private var cache: [String: OpaquePointer] = [:]

    init(_ path: String) throws {
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil)
        guard rc == SQLITE_OK, let db else {
            sqlite3_close_v2(db)
            throw BenchError("cannot open \(path): rc \(rc)")
        }
        handle = db
        self.path = path
        sqlite3_busy_timeout(db, 30_000)
    }

    deinit {
        for s in cache.values { sqlite3_finalize(s) }
        sqlite3_close_v2(handle)
    }

    private var message: String { String(cString: sqlite3_errmsg(handle)) }

    func exec(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(handle, sql, nil, nil, &err) != SQLITE_OK {
            let m = err.map { String(cString: $0) } ?? message
            sqlite3_free(err)
            throw BenchError("\(path): \(m) in: \(sql.prefix(120))")
        }
    }

    /// A cached prepared statement, reset.
    func prepare(_ sql: String) throws -> OpaquePointer {
        if let s = cache[sql] {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
            return s
        }
        var s: OpaquePointer?
        guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &s, nil) == SQLITE_OK, let s else {
            throw BenchError("\(path): \(message) in: \(sql.prefix(120))")
        }
        cache[sql] = s
        return s
    }

    func bind(_ s: OpaquePointer, _ values: [SQLValue], from first: Int32 = 1) {
        var i = first
        for v in values {
            switch v {
            case .null: sqlite3_bind_null(s, i)
            case .integer(let x): sqlite3_bind_int64(s, i, x)
            case .real(let x): sqlite3_bind_double(s, i, x)
            case .text(let b):
                b.withUnsafeBufferPointer { p in
                    _ = sqlite3_bind_text64(s, i, UnsafeRawPointer(p.baseAddress ?? UnsafePointer(bitPattern: 1)!).assumingMemoryBound(to: CChar.self),
                                            sqlite3_uint64(b.count), transient, UInt8(SQLITE_UTF8))
                }
            case .blob(let b):
                b.withUnsafeBytes { p in _ = sqlite3_bind_blob64(s, i, p.baseAddress, sqlite3_uint64(b.count), transient) }
            }
            i += 1
        }
    }

    @discardableResult
    func step(_ s: OpaquePointer) throws -> Bool {
        switch sqlite3_step(s) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let m = message
            sqlite3_reset(s)
            throw BenchError("\(path): \(m)")
        }
    }

    func run(_ sql: String, _ values: [SQLValue] = []) throws {
        let s = try prepare(sql)
        bind(s, values)
        while try step(s) {}
    }

    func value(_ s: OpaquePointer, _ i: Int32) -> SQLValue {
        switch sqlite3_column_type(s, i) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(s, i))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(s, i))
        case SQLITE_TEXT:
            let n = Int(sqlite3_column_bytes(s, i))
            guard n > 0, let p = sqlite3_column_text(s, i) else { return .text([]) }
            return .text(Array(UnsafeBufferPointer(start: p, count: n)))
        case SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(s, i))
            guard n > 0, let p = sqlite3_column_blob(s, i) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default: return .null
        }
    }

    /// Whether the columns from `first` on hold exactly `values`, read without building
    /// values; false when `values` is empty.
    func matches(_ s: OpaquePointer, _ values: [SQLValue], from first: Int32) -> Bool {
        guard !values.isEmpty else { return false }
        for (n, v) in values.enumerated() {
            let i = first + Int32(n)
            switch v {
            case .integer(let x):
                guard sqlite3_column_type(s, i) == SQLITE_INTEGER, sqlite3_column_int64(s, i) == x else { return false }
            case .text(let b):
                guard sqlite3_column_type(s, i) == SQLITE_TEXT, let p = sqlite3_column_text(s, i),
                      Int(sqlite3_column_bytes(s, i)) == b.count, b.elementsEqual(UnsafeBufferPointer(start: p, count: b.count)) else { return false }
            default:
                return false
            }
        }
        return true
    }

    func rows(_ sql: String, _ values: [SQLValue] = []) throws -> [[SQLValue]] {
        let s = try prepare(sql)
        bind(s, values)
        var out: [[SQLValue]] = []
        let n = sqlite3_column_count(s)
        while try step(s) { out.append((0..<n).map { value(s, $0) }) }
        return out
    }

    func int(_ sql: String) throws -> Int64 {
        if case .integer(let v)? = try rows(sql).first?.first { return v }
        return 0
    }

    var changes: Int { Int(sqlite3_changes(handle)) }

    /// Applies application writes, `perTransaction` to a transaction.
    func apply(_ ops: [Op], perTransaction: Int = 1000) throws {
        var inTx = 0
        for op in ops {
            if inTx == 0 { try exec("BEGIN") }
            let spec = TableSpec.all[op.table]
            switch op.kind {
            case .insert:
                let s = try prepare(spec.insertSQL)
                bind(s, op.key + op.values)
                try step(s)
            case .update:
                let s = try prepare(spec.updateSQL(columns: op.columns))
                bind(s, op.values + op.key)
                try step(s)
            case .delete:
                let s = try prepare(spec.deleteSQL)
                bind(s, op.key)
                try step(s)
            }
            inTx += 1
            if inTx == perTransaction { try exec("COMMIT"); inTx = 0 }
        }
        if inTx > 0 { try exec("COMMIT") }
    }

    /// Page bytes per table, with indexes counted under their table (SQLite's dbstat).
    func bytesByTable() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for row in try rows("""
            SELECT coalesce(m.tbl_name, s.name), sum(s.pgsize) FROM dbstat s
            LEFT JOIN sqlite_schema m ON m.name = s.name GROUP BY 1
            """) {
            if case .text(let n) = row[0], case .integer(let b) = row[1] { out[String(decoding: n, as: UTF8.self), default: 0] += Int(b) }
        }
        return out
    }
}

// MARK: - Session extension

private nonisolated(unsafe) var changesetConflicts = 0

enum SessionBaseline {
    /// Records `ops` on `path` with an SQLite session and returns the changeset.
    static func changeset(path: String, ops: [Op]) throws -> [UInt8] {
        let db = try RawDB(path)
        var session: OpaquePointer?
        guard sqlite3session_create(db.handle, "main", &session) == SQLITE_OK, let session else {
            throw BenchError("sqlite3session_create failed")
        }
        defer { sqlite3session_delete(session) }
        guard sqlite3session_attach(session, nil) == SQLITE_OK else { throw BenchError("sqlite3session_attach failed") }
        try db.apply(ops)
        var n: Int32 = 0
        var p: UnsafeMutableRawPointer?
        guard sqlite3session_changeset(session, &n, &p) == SQLITE_OK else { throw BenchError("sqlite3session_changeset failed") }
        defer { sqlite3_free(p) }
        guard let p else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: Int(n)))
    }

    /// Applies a changeset; returns the number of conflicts (omitted changes).
    static func apply(_ changeset: [UInt8], to db: RawDB) throws -> Int {
        changesetConflicts = 0
        var bytes = changeset
        let rc = bytes.withUnsafeMutableBytes { buf in
            sqlite3changeset_apply(db.handle, Int32(buf.count), buf.baseAddress, nil, { _, _, _ in
                changesetConflicts += 1
                return SQLITE_CHANGESET_OMIT
            }, nil)
        }
        guard rc == SQLITE_OK else { throw BenchError("sqlite3changeset_apply failed: rc \(rc)") }
        return changesetConflicts
    }
}

// MARK: - zstd

enum Zstd {
    static func compress(_ input: [UInt8], level: Int32 = 3) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let n = input.withUnsafeBytes { i in
            out.withUnsafeMutableBytes { o in ZSTD_compress(o.baseAddress, o.count, i.baseAddress, i.count, level) }
        }
        guard ZSTD_isError(n) == 0 else { throw BenchError("ZSTD_compress: \(String(cString: ZSTD_getErrorName(n)))") }
        out.removeSubrange(n...)
        return out
    }

    /// The verify baseline: stream-decompress a bundle's body (between the prefix + header
    /// and the 152-byte trailer) and SHA-256 the decompressed bytes. A plain bundle of format
    /// version 3 is decompressed against its header's contents, as `zstd -d --patch-from`
    /// would be given them.
    ///
    /// - Returns: The number of decompressed bytes and their digest.
    static func decompressAndHashBody(of path: String) throws -> (bytes: Int, digest: Digest32) {
        guard let f = fopen(path, "rb") else { throw BenchError("cannot open \(path)") }
        defer { fclose(f) }
        var prefix = [UInt8](repeating: 0, count: 16)
        guard fread(&prefix, 1, 16, f) == 16 else { throw BenchError("\(path): short file") }
        let headerLength = Int(prefix[12]) | Int(prefix[13]) << 8 | Int(prefix[14]) << 16 | Int(prefix[15]) << 24
        var header = [UInt8](repeating: 0, count: headerLength)
        guard fread(&header, 1, headerLength, f) == headerLength else { throw BenchError("\(path): short header") }
        fseeko(f, 0, SEEK_END)
        let size = Int(ftello(f))
        let start = 16 + headerLength
        var remaining = size - 152 - start
        fseeko(f, off_t(start), SEEK_SET)
        let ctx = ZSTD_createDCtx()
        defer { ZSTD_freeDCtx(ctx) }
        let version = UInt16(prefix[8]) | UInt16(prefix[9]) << 8
        let contents = version >= 3 ? Array(header[try BundleHeader.decodeVersion2(header, version: version).contentsOffset...]) : []
        if !contents.isEmpty { ZSTD_DCtx_refPrefix(ctx, contents, contents.count) }
        var input = [UInt8](repeating: 0, count: 1 << 20)
        var output = [UInt8](repeating: 0, count: 1 << 18)
        var hasher = Hasher256()
        var produced = 0
        var last = 0
        while remaining > 0 {
            let got = fread(&input, 1, min(remaining, input.count), f)
            guard got > 0 else { throw BenchError("\(path): read error") }
            remaining -= got
            try input.withUnsafeBytes { inBuf in
                var inb = ZSTD_inBuffer(src: inBuf.baseAddress, size: got, pos: 0)
                repeat {
                    let n: Int = try output.withUnsafeMutableBytes { outBuf in
                        var outb = ZSTD_outBuffer(dst: outBuf.baseAddress, size: outBuf.count, pos: 0)
                        let r = ZSTD_decompressStream(ctx, &outb, &inb)
                        guard ZSTD_isError(r) == 0 else { throw BenchError("zstd: \(String(cString: ZSTD_getErrorName(r)))") }
                        last = r
                        hasher.update(UnsafeRawBufferPointer(rebasing: outBuf[0..<outb.pos]))
                        return outb.pos
                    }
                    produced += n
                    if inb.pos == inb.size && n < output.count { break }
                } while true
            }
        }
        guard last == 0 else { throw BenchError("\(path): compressed body ends inside a frame") }
        return (produced, hasher.finalize())
    }
}

/// Resets a statement and clears its bindings, for the next row of a loop.
func sqlite3Reset(_ s: OpaquePointer) {
    sqlite3_reset(s)
    sqlite3_clear_bindings(s)
}
