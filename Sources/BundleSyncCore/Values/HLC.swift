import Foundation

/// A hybrid logical clock timestamp.
///
/// The high 48 bits are milliseconds since the Unix epoch; the low 16 bits count events
/// within one millisecond. Ordering is plain integer ordering. A replica's clock never goes
/// backwards: every timestamp it issues exceeds every timestamp it has issued or seen.
public struct HLC: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let counterBits: UInt64 = 16
    public static let zero = HLC(rawValue: 0)
    /// The largest timestamp a bundle may carry: under 2^63, so it fits SQLite's signed
    /// integers and can always be counted past (about the year 6400).
    public static let maximum = HLC(rawValue: (UInt64(1) << 63) - (UInt64(1) << 32))

    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(milliseconds: Int64, counter: UInt16 = 0) {
        rawValue = UInt64(max(0, milliseconds)) << Self.counterBits | UInt64(counter)
    }

    public var milliseconds: Int64 { Int64(rawValue >> Self.counterBits) }
    public var counter: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    /// The next timestamp after `self` for an event that happened at wall time `wall`.
    public func next(wall: Int64) -> HLC {
        let candidate = HLC(milliseconds: wall)
        return candidate > self ? candidate : HLC(rawValue: rawValue &+ 1)
    }

    public static func < (a: HLC, b: HLC) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        return "\(isoFormatter.string(from: date))+\(counter)"
    }

    public static func nowMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}

package nonisolated(unsafe) let isoFormatter: ISO8601DateFormatter = {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f
}()
