/// One SQLite value, held exactly.
///
/// TEXT is kept as its bytes rather than as a Swift `String`, so text that is not valid UTF-8
/// or holds NUL characters survives a round trip unchanged. REAL keeps its bit pattern.
public enum SQLValue: Hashable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text([UInt8])
    case blob([UInt8])

    public static func text(_ string: String) -> SQLValue { .text(Array(string.utf8)) }

    /// Exact equality: same type and same bits (so `-0.0` differs from `0.0`).
    public static func == (lhs: SQLValue, rhs: SQLValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case let (.integer(a), .integer(b)): a == b
        case let (.real(a), .real(b)): a.bitPattern == b.bitPattern
        case let (.text(a), .text(b)): a == b
        case let (.blob(a), .blob(b)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .integer(let v): hasher.combine(1); hasher.combine(v)
        case .real(let v): hasher.combine(2); hasher.combine(v.bitPattern)
        case .text(let v): hasher.combine(3); hasher.combine(v)
        case .blob(let v): hasher.combine(4); hasher.combine(v)
        }
    }

    /// A readable rendering for the demo and for inspect output (never used in errors).
    public var display: String {
        switch self {
        case .null: "NULL"
        case .integer(let v): String(v)
        case .real(let v): String(v)
        case .text(let v): "'" + String(decoding: v, as: UTF8.self) + "'"
        case .blob(let v): "x'" + v.map { String(format2hex: $0) }.joined() + "'"
        }
    }
}
