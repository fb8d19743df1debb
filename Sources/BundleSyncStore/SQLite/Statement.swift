import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge

import CSQLite
import Foundation

/// A prepared SQLite statement.
public final class Statement {
    package let handle: OpaquePointer
    unowned let database: Database

    package init(database: Database, sql: String) throws {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(database.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            throw database.error(rc, String(cString: sqlite3_errmsg(database.handle)))
        }
        self.handle = stmt
        self.database = database
    }

    deinit { sqlite3_finalize(handle) }

    public func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    public func bind(_ values: [SQLValue]) throws {
        for (i, v) in values.enumerated() { try bind(v, at: Int32(i + 1)) }
    }

    public func bind(_ value: SQLValue, at index: Int32) throws {
        let rc: Int32
        switch value {
        case .null:
            rc = sqlite3_bind_null(handle, index)
        case .integer(let v):
            rc = sqlite3_bind_int64(handle, index, v)
        case .real(let v):
            rc = sqlite3_bind_double(handle, index, v)
        case .text(let bytes):
            rc = bytes.withUnsafeBufferPointer { buf in
                // A non-NULL pointer even for the empty string, so SQLite stores '' and not NULL.
                let base = buf.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(bitPattern: 1)!
                return sqlite3_bind_text64(handle, index, base.assumingMemoryBound(to: CChar.self),
                                           sqlite3_uint64(bytes.count), SQLITE_TRANSIENT_DESTRUCTOR, UInt8(SQLITE_UTF8))
            }
        case .blob(let bytes):
            if bytes.isEmpty {
                rc = sqlite3_bind_zeroblob(handle, index, 0)
            } else {
                rc = bytes.withUnsafeBytes { buf in
                    sqlite3_bind_blob64(handle, index, buf.baseAddress, sqlite3_uint64(bytes.count), SQLITE_TRANSIENT_DESTRUCTOR)
                }
            }
        }
        guard rc == SQLITE_OK else { throw database.error(rc, String(cString: sqlite3_errmsg(database.handle))) }
    }

    /// Advances to the next row; false when done.
    @discardableResult
    public func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let msg = String(cString: sqlite3_errmsg(database.handle))
            sqlite3_reset(handle)
            throw database.error(rc, msg)
        }
    }

    public var columnCount: Int { Int(sqlite3_column_count(handle)) }

    public func value(_ index: Int) -> SQLValue {
        let i = Int32(index)
        switch sqlite3_column_type(handle, i) {
        case SQLITE_INTEGER:
            return .integer(sqlite3_column_int64(handle, i))
        case SQLITE_FLOAT:
            return .real(sqlite3_column_double(handle, i))
        case SQLITE_TEXT:
            // > "The safest policy is to invoke these routines in one of the following ways:
            // > sqlite3_column_text() followed by sqlite3_column_bytes() [...]"
            // > (https://www.sqlite.org/c3ref/column_blob.html)
            // Asking for the bytes first could convert the value and free the text pointer.
            guard let p = sqlite3_column_text(handle, i) else { return .text([]) }
            let n = Int(sqlite3_column_bytes(handle, i))
            guard n > 0 else { return .text([]) }
            return .text(Array(UnsafeBufferPointer(start: p, count: n)))
        case SQLITE_BLOB:
            let p = sqlite3_column_blob(handle, i) // then the size, as for text
            let n = Int(sqlite3_column_bytes(handle, i))
            guard n > 0, let p else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default:
            return .null
        }
    }

    public func int(_ index: Int) -> Int64 { sqlite3_column_int64(handle, Int32(index)) }

    /// The storage class of a column of the current row.
    public enum ColumnType { case null, integer, real, text, blob }

    public func type(_ index: Int) -> ColumnType {
        switch sqlite3_column_type(handle, Int32(index)) {
        case SQLITE_INTEGER: .integer
        case SQLITE_FLOAT: .real
        case SQLITE_TEXT: .text
        case SQLITE_BLOB: .blob
        default: .null
        }
    }

    public func bytes(_ index: Int) -> [UInt8]? {
        let i = Int32(index)
        guard sqlite3_column_type(handle, i) != SQLITE_NULL else { return nil }
        let p = sqlite3_column_blob(handle, i)
        let n = Int(sqlite3_column_bytes(handle, i))
        guard n > 0, let p else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }

    public func row() -> [SQLValue] { (0..<columnCount).map { value($0) } }

    /// Whether the columns from `first` on hold exactly `values` (same types and bytes),
    /// read without building values.
    package func matches(_ values: [SQLValue]?, from first: Int) -> Bool {
        guard let values else { return false }
        for (n, v) in values.enumerated() {
            let i = Int32(first + n)
            switch v {
            case .null:
                guard sqlite3_column_type(handle, i) == SQLITE_NULL else { return false }
            case .integer(let x):
                guard sqlite3_column_type(handle, i) == SQLITE_INTEGER, sqlite3_column_int64(handle, i) == x else { return false }
            case .real(let x):
                guard sqlite3_column_type(handle, i) == SQLITE_FLOAT, sqlite3_column_double(handle, i).bitPattern == x.bitPattern else { return false }
            case .text(let b):
                guard sqlite3_column_type(handle, i) == SQLITE_TEXT else { return false }
                let p = sqlite3_column_text(handle, i) // before sqlite3_column_bytes, as in value(_:)
                guard Int(sqlite3_column_bytes(handle, i)) == b.count else { return false }
                if !b.isEmpty { guard let p, b.withUnsafeBytes({ memcmp($0.baseAddress!, p, b.count) == 0 }) else { return false } }
            case .blob(let b):
                guard sqlite3_column_type(handle, i) == SQLITE_BLOB else { return false }
                let p = sqlite3_column_blob(handle, i)
                guard Int(sqlite3_column_bytes(handle, i)) == b.count else { return false }
                if !b.isEmpty { guard let p, b.withUnsafeBytes({ memcmp($0.baseAddress!, p, b.count) == 0 }) else { return false } }
            }
        }
        return true
    }
}

extension Database {
    /// The declared collation of a column, from SQLite's own metadata.
    package func collation(table: String, column: String) -> String? {
        var dataType: UnsafePointer<CChar>?
        var collSeq: UnsafePointer<CChar>?
        var notNull: Int32 = 0, pk: Int32 = 0, autoinc: Int32 = 0
        let rc = sqlite3_table_column_metadata(handle, "main", table, column, &dataType, &collSeq, &notNull, &pk, &autoinc)
        guard rc == SQLITE_OK, let collSeq else { return nil }
        return String(cString: collSeq)
    }

    /// The declared type of a column, from SQLite's own metadata ("" when none).
    package func declaredType(table: String, column: String) -> String {
        var dataType: UnsafePointer<CChar>?
        var collSeq: UnsafePointer<CChar>?
        var notNull: Int32 = 0, pk: Int32 = 0, autoinc: Int32 = 0
        let rc = sqlite3_table_column_metadata(handle, "main", table, column, &dataType, &collSeq, &notNull, &pk, &autoinc)
        guard rc == SQLITE_OK, let dataType else { return "" }
        return String(cString: dataType)
    }

    /// Whether the table declares AUTOINCREMENT on its rowid key.
    package func isAutoincrement(table: String, column: String) -> Bool {
        var dataType: UnsafePointer<CChar>?
        var collSeq: UnsafePointer<CChar>?
        var notNull: Int32 = 0, pk: Int32 = 0, autoinc: Int32 = 0
        let rc = sqlite3_table_column_metadata(handle, "main", table, column, &dataType, &collSeq, &notNull, &pk, &autoinc)
        return rc == SQLITE_OK && autoinc != 0
    }
}
