import BundleSyncCore
import BundleSyncFormat
import BundleSyncMerge

/// The SQL text of the per-row statements on tracked tables, built once per table and
/// column set.
///
/// Import and sealing run these statements once per row; building their text (quoting
/// identifiers, joining column lists) each time cost more than running them.
package final class SQLTexts {
    package enum Kind: Hashable {
        case loadClock, insertClock, insertClockIfAbsent, updateClock, replaceRow, updateRow, deleteRow
        case loadMerge, storeMerge, dropMerge, markMergePlain
    }

    private struct Key: Hashable {
        package var table: Int64
        package var kind: Kind
        package var columns: [Int]
    }

    package init() {}

    private var texts: [Key: String] = [:]
    private var statements: [Key: Statement] = [:]

    package func removeAll() {
        texts.removeAll()
        statements.removeAll()
    }

    /// The prepared statement for `kind` on `t`, reset, found without hashing its text:
    /// the per-key statements of sealing and merging run once per row.
    package func statement(_ kind: Kind, _ t: TrackedTable, columns: [Int] = [], in db: Database) throws -> Statement {
        let key = Key(table: t.id, kind: kind, columns: columns)
        if let s = statements[key] {
            s.reset()
            return s
        }
        let s = try db.statement(text(kind, t, columns: columns))
        statements[key] = s
        return s
    }

    /// The text for `kind` on `t` (with `columns`, local ordinals, where the statement
    /// names some of the columns).
    package func text(_ kind: Kind, _ t: TrackedTable, columns: [Int] = []) -> String {
        let key = Key(table: t.id, kind: kind, columns: columns)
        if let s = texts[key] { return s }
        let s = Self.build(kind, t, columns)
        texts[key] = s
        return s
    }

    private static func build(_ kind: Kind, _ t: TrackedTable, _ columns: [Int]) -> String {
        let clock = Database.quote(t.clockTable)
        switch kind {
        case .loadClock:
            return "SELECT cl, hlc, origin, cells FROM \(clock) WHERE \(t.clockKeyMatch)"
        case .insertClock, .insertClockIfAbsent:
            let names = t.keyNames + ["cl", "hlc", "origin", "cells"]
            return "INSERT\(kind == .insertClockIfAbsent ? " OR IGNORE" : "") INTO \(clock)(\(names.joined(separator: ", "))) VALUES (\(placeholders(names.count)))"
        case .updateClock:
            // The key comes first, as in every other per-key statement; the clock follows it.
            let n = t.keyNames.count
            let match = t.keyNames.enumerated().map { "\($0.element) = ?\($0.offset + 1)" }.joined(separator: " AND ")
            return "UPDATE \(clock) SET cl = ?\(n + 1), hlc = ?\(n + 2), origin = ?\(n + 3), cells = ?\(n + 4) WHERE \(match)"
        case .replaceRow:
            let names = t.schema.keyColumns + columns.map { t.sqlName($0) }
            return "INSERT OR REPLACE INTO \(t.quotedTable)(\(names.map(Database.quote).joined(separator: ", "))) VALUES (\(placeholders(names.count)))"
        case .updateRow:
            let sets = columns.map { "\(Database.quote(t.sqlName($0))) = ?" }.joined(separator: ", ")
            return "UPDATE \(t.quotedTable) SET \(sets) WHERE \(t.keyMatch)"
        case .deleteRow:
            return "DELETE FROM \(t.quotedTable) WHERE \(t.keyMatch)"
        case .loadMerge:
            return "SELECT flags, state FROM \(Database.quote(t.mergeTable)) WHERE \(t.clockKeyMatch) AND col = ?"
        case .storeMerge:
            let names = t.keyNames + ["col", "flags", "state"]
            return "INSERT OR REPLACE INTO \(Database.quote(t.mergeTable))(\(names.joined(separator: ", "))) VALUES (\(placeholders(names.count)))"
        case .dropMerge:
            return "DELETE FROM \(Database.quote(t.mergeTable)) WHERE \(t.clockKeyMatch)"
        case .markMergePlain:
            return "UPDATE \(Database.quote(t.mergeTable)) SET flags = flags | 1 WHERE \(t.clockKeyMatch) AND col = ?"
        }
    }

    private static func placeholders(_ n: Int) -> String {
        Array(repeating: "?", count: n).joined(separator: ", ")
    }
}
