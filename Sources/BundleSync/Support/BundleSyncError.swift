/// An error phrased for the person at the keyboard.
///
/// Every failure that reaches the command line is one of these. The ``Code`` decides the exit
/// status (the command-line layer owns that mapping); the message says what went wrong, in
/// git's style: lowercase, values quoted, no final period. A hint, when present, says what to
/// do next. Row values and secrets never appear in either.
public struct BundleSyncError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure, one per exit status of SPEC §2.2.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Kind: Hashable, Sendable {
            case usage, badData, noInput, cannotCreate, io, busy, untrusted, failure
        }
        let kind: Kind
        /// Wrong arguments or a request that cannot make sense.
        public static let usage = Code(kind: .usage)
        /// Corrupt, truncated, forged, forked or unsupported bundle data.
        public static let badData = Code(kind: .badData)
        /// An input file or database does not exist.
        public static let noInput = Code(kind: .noInput)
        /// The output cannot be created.
        public static let cannotCreate = Code(kind: .cannotCreate)
        /// Reading or writing failed.
        public static let io = Code(kind: .io)
        /// The database is busy or locked; retrying later can work.
        public static let busy = Code(kind: .busy)
        /// Authentic data from a replica this one does not trust.
        public static let untrusted = Code(kind: .untrusted)
        /// Anything else.
        public static let failure = Code(kind: .failure)

        public var description: String { "\(kind)" }
    }

    public var code: Code
    public var message: String
    public var hint: String?

    public init(_ code: Code, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String {
        hint.map { "\(message)\nhint: \($0)" } ?? message
    }

    /// The same error with its message prefixed, for naming the file or table it concerns.
    public func prefixed(_ prefix: String) -> BundleSyncError {
        BundleSyncError(code, "\(prefix)\(message)", hint: hint)
    }
}

extension BundleSyncError {
    static func badData(_ message: String, hint: String? = nil) -> BundleSyncError {
        BundleSyncError(.badData, message, hint: hint)
    }
    static func usage(_ message: String, hint: String? = nil) -> BundleSyncError {
        BundleSyncError(.usage, message, hint: hint)
    }
    static func failure(_ message: String, hint: String? = nil) -> BundleSyncError {
        BundleSyncError(.failure, message, hint: hint)
    }
}
