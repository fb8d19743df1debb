/// Renders a name that came from outside (a bundle, a peer) for a one-line message.
///
/// Control characters, including newlines and terminal escapes, are shown as `\u{..}` so a
/// hostile name can neither break a message over several lines nor drive the terminal; a
/// name longer than 80 characters is cut short with an ellipsis.
public func shown(_ name: String) -> String {
    var out = ""
    for scalar in name.unicodeScalars.prefix(80) {
        if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format
            || scalar == "\u{2028}" || scalar == "\u{2029}" {
            out += "\\u{\(String(scalar.value, radix: 16))}"
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return name.unicodeScalars.count > 80 ? out + "…" : out
}

/// Replica names: short labels that are safe in file names and messages.
public enum ReplicaName {
    /// 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'.
    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.count <= 64 && !name.hasPrefix(".") && name.unicodeScalars.allSatisfy {
            ($0.properties.isAlphabetic || $0.properties.numericType == .decimal) && $0.properties.generalCategory != .control
                || "-_.".unicodeScalars.contains($0)
        }
    }
}
