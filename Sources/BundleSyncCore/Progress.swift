/// What a long operation reports as it goes: how far a phase has come, or a line of detail.
///
/// The library only reports; the command line decides whether to draw a bar (when stderr
/// is a terminal) or to print details (with `--verbose`).
public struct ProgressEvent: Sendable {
    public enum Kind: Sendable {
        /// `done` of `total` units (bytes or rows, as the phase says).
        case step(done: Int, total: Int)
        /// One line about one batch, for `--verbose`.
        case detail(String)
        /// The phase is over.
        case finished
    }

    public var phase: String
    public var unit: String
    public var kind: Kind

    public init(phase: String, unit: String = "", kind: Kind) {
        self.phase = phase
        self.unit = unit
        self.kind = kind
    }
}

public typealias ProgressHandler = (ProgressEvent) -> Void
