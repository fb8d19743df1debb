import Foundation

/// Byte counts for people: the exact count with thousands separators, and the size in
/// decimal units beside it ("1,234,567 bytes (1.2 MB)").
enum Size {
    static func text(_ bytes: Int) -> String {
        let exact = "\(grouped(bytes)) \(bytes == 1 ? "byte" : "bytes")"
        guard bytes >= 1000 else { return exact }
        return "\(exact) (\(human(bytes)))"
    }

    /// 1.2 kB, 34 MB, 5.6 GB: three significant digits at most, decimal units as on a stick's label.
    static func human(_ bytes: Int) -> String {
        let units = ["bytes", "kB", "MB", "GB", "TB", "PB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 999.95 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        if unit == 0 { return "\(bytes) bytes" }
        return value < 9.95 ? String(format: "%.1f %@", value, units[unit]) : String(format: "%.0f %@", value, units[unit])
    }

    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }
}
