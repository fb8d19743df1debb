/// How a column is merged (SPEC §3).
public enum ColumnRule: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Last writer wins on the whole cell.
    case lww = 0
    /// A sequence merge of text edits.
    case text = 1
    /// A key-by-key merge of JSON objects.
    case json = 2

    public var description: String {
        switch self {
        case .lww: "lww"
        case .text: "text"
        case .json: "json"
        }
    }
}
