import Foundation

/// A hybrid logical clock timestamp.
///
/// The high 48 bits are milliseconds since the Unix epoch; the low 16 bits count events
/// within one millisecond. Ordering is plain integer ordering. A replica's clock never goes
/// backwards: every timestamp it issues exceeds every timestamp it has issued or seen.
public struct HLC: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let counterBits: UInt64 = 16
    public static let zero = HLC(rawValue: 0)
    /// The latest timestamp a bundle may carry, 2^59 (2^43 ms, 2248-09-26T15:10:22Z): far
    /// beyond any honest clock, and far below what SQLite's signed integers hold. A reader
    /// refuses anything later as bad data, and a writer never stamps past it, so no bundle can
    /// carry a replica's clock to a point where its own exports would be refused.
    public static let maximum = HLC(rawValue: UInt64(1) << 59)

    public let rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }

    public init(milliseconds: Int64, counter: UInt16 = 0) {
        rawValue = UInt64(max(0, milliseconds)) << Self.counterBits | UInt64(counter)
    }

    public var milliseconds: Int64 { Int64(rawValue >> Self.counterBits) }
    public var counter: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    /// The next timestamp after `self` for an event that happened at wall time `wall`,
    /// never past ``maximum``.
    public func next(wall: Int64) -> HLC {
        let candidate = HLC(milliseconds: wall)
        return min(Self.maximum, candidate > self ? candidate : HLC(rawValue: rawValue &+ 1))
    }

    /// The timestamp just after `self`, never past ``maximum``.
    public var successor: HLC { min(Self.maximum, HLC(rawValue: rawValue &+ 1)) }

    /// The timestamp for the first counter value of wall time `wall` (milliseconds).
    public static func wall(_ milliseconds: Int64) -> HLC { min(maximum, HLC(milliseconds: milliseconds)) }

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
