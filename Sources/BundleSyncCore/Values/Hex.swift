extension String {
    package init(format2hex byte: UInt8) {
        let digits = Array("0123456789abcdef")
        self = String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
    }
}

/// Lowercase hexadecimal of bytes, as replica ids and hashes are shown.
public func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var s = ""
    s.reserveCapacity(bytes.count * 2)
    for b in bytes { s += String(format2hex: b) }
    return s
}

/// Parses lowercase or uppercase hexadecimal; nil if malformed.
public func bytesFromHex(_ hex: String) -> [UInt8]? {
    let chars = Array(hex.utf8)
    guard chars.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }
    var out = [UInt8]()
    out.reserveCapacity(chars.count / 2)
    var i = 0
    while i < chars.count {
        guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}
