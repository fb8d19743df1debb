/// An error phrased for the person at the keyboard.
///
/// Every failure that reaches the command line is one of these. The ``Code`` decides the exit
/// status (the command-line layer owns that mapping); the message says what went wrong, in
/// git's style: lowercase, values quoted, no final period. A hint, when present, says what to
/// do next. Row values and secrets never appear in either.
///
/// The file an error concerns is kept as typed context (``bundle``, ``database``) as well as
/// in the message, and the failure underneath (an SQLite result code, an errno, another
/// error) as its ``cause``, so code that handles an error never has to search its text.
public struct BundleSyncError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure, one per exit status of SPEC §2.2.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Kind: Hashable, Sendable {
            case usage, badData, noInput, cannotCreate, io, busy, untrusted, notAddressed, failure
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
        /// An authentic encrypted bundle that is not encrypted to this replica.
        public static let notAddressed = Code(kind: .notAddressed)
        /// Anything else.
        public static let failure = Code(kind: .failure)

        public var description: String { "\(kind)" }
    }

    /// The failure underneath, kept for diagnosis; never shown in place of the message.
    public enum Cause: Sendable, CustomStringConvertible {
        /// An SQLite extended result code and SQLite's own message.
        case sqlite(code: Int32, message: String)
        /// A system call's errno.
        case errno(Int32)
        /// Another error.
        case error(String)

        public var description: String {
            switch self {
            case .sqlite(let code, let message): "SQLite result code \(code): \(message)"
            case .errno(let e): "errno \(e)"
            case .error(let text): text
            }
        }
    }

    public var code: Code
    public var message: String
    public var hint: String?
    public var cause: Cause?
    /// The bundle file the error concerns, when it concerns one; the message names it.
    public var bundle: String?
    /// The database file the error concerns, when it concerns one; the message names it.
    public var database: String?

    public init(_ code: Code, _ message: String, hint: String? = nil, cause: Cause? = nil,
                bundle: String? = nil, database: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
        self.cause = cause
        self.bundle = bundle
        self.database = database
    }

    public var description: String {
        hint.map { "\(message)\nhint: \($0)" } ?? message
    }

    /// The same error with its message prefixed, for saying where in a file it was found.
    public func prefixed(_ prefix: String) -> BundleSyncError {
        var e = self
        e.message = prefix + message
        return e
    }

    /// The error as it concerns the bundle at `path`: named in front of the message, unless
    /// the error already names a file.
    public func about(bundle path: String) -> BundleSyncError {
        guard bundle == nil, database == nil else { return self }
        var e = prefixed("'\(path)': ")
        e.bundle = path
        return e
    }
}

extension BundleSyncError {
    package static func badData(_ message: String, hint: String? = nil) -> BundleSyncError {
        BundleSyncError(.badData, message, hint: hint)
    }
    package static func usage(_ message: String, hint: String? = nil) -> BundleSyncError {
        BundleSyncError(.usage, message, hint: hint)
    }
    package static func failure(_ message: String, hint: String? = nil) -> BundleSyncError {
        BundleSyncError(.failure, message, hint: hint)
    }
}
