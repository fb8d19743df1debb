import ArgumentParser
import BundleSync
import Foundation

/// The `bundlesync` command: SQLite replicas synced through bundle files.
public struct BundleSyncCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bundlesync",
        abstract: "Sync SQLite databases between devices that only share a USB stick.",
        discussion: """
        Each copy of the database becomes a replica. 'export' writes the changes a peer lacks \
        into one signed bundle file; 'import' merges bundles from any replica, in any order, \
        any number of times. Every replica that has seen the same changes holds the same data.

        Example:
          bundlesync init clinic.db --name tablet-1
          bundlesync track clinic.db patients
          bundlesync export clinic.db -o /media/usb
        """,
        version: "0.1.0",
        subcommands: [Init.self, Track.self, Export.self, Import.self, Verify.self, Inspect.self,
                      Status.self, Digest.self, Sync.self, Untrack.self, Vector.self, Prune.self, Forget.self, Trust.self, Config.self, Reidentify.self, Demo.self]
    )

    public init() {}

    /// Runs the command line, mapping every failure to its exit status (SPEC §2.2).
    public static func runMain(_ arguments: [String]? = nil) -> Never {
        // The Swift runtime reads the arguments through /proc/self; when it cannot, the list
        // is empty, not even the program's name. Running on as if none were given would print
        // the help and succeed having done nothing.
        if arguments == nil && CommandLine.arguments.isEmpty {
            Diagnostics.report(BundleSyncError(.failure, "cannot read this command's arguments: the system refused access to /proc/self",
                                               hint: "run bundlesync where /proc is mounted and readable"))
            Foundation.exit(1)
        }
        let args = arguments ?? Array(CommandLine.arguments.dropFirst())
        Replica.configureProcess()
        if args.first == "help", args.count > 1,
           !configuration.subcommands.contains(where: { $0._commandName == args[1] }) {
            Diagnostics.report(BundleSyncError(.usage, "no command is called '\(shown(args[1]))'", hint: "run 'bundlesync --help' for the list"))
            Foundation.exit(64)
        }
        // With --json, a failure is one JSON document on stdout too, unless the command
        // already printed its own. (`track --json COL` names a column instead.)
        JSONFailure.requested = args.first != "track" && args.contains("--json")
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            Opened.reportNotices()
            if let e = Terminal.outputFailed {
                Diagnostics.report(BundleSyncError(.io, "cannot write the result to standard output: \(String(cString: strerror(e)))"))
                Foundation.exit(74)
            }
            Foundation.exit(0)
        } catch let error as BundleSyncError {
            Opened.reportNotices()
            Diagnostics.report(error)
            JSONFailure.print(error)
            Foundation.exit(ExitStatus.code(for: error.code))
        } catch let code as ExitCode {
            Opened.reportNotices()
            Foundation.exit(code.rawValue)
        } catch {
            Opened.reportNotices()
            let status = exitCode(for: error).rawValue
            if status != 0 {
                JSONFailure.print(BundleSyncError(status == 64 ? .usage : .failure, message(for: error).trimmingCharacters(in: .whitespacesAndNewlines)),
                                  status: status)
            }
            exit(withError: error)
        }
    }
}

/// The mapping from errors to exit statuses: the one place it is made.
public enum ExitStatus {
    public static func code(for code: BundleSyncError.Code) -> Int32 {
        switch code {
        case .usage: 64
        case .badData: 65
        case .noInput: 66
        case .cannotCreate: 73
        case .io: 74
        case .busy: 75
        case .untrusted, .notAddressed: 77
        default: 1
        }
    }
}

/// The replicas a command opened, so that the warnings gathered while it worked are printed
/// however it ends.
enum Opened {
    nonisolated(unsafe) static var replicas: [Replica] = []

    static func replica(_ path: String) throws -> Replica {
        let r = try Replica.open(path: path)
        replicas.append(r)
        return r
    }

    static func initialize(_ path: String, name: String?) throws -> (Replica, created: Bool) {
        let r = try Replica.initialize(path: path, name: name)
        replicas.append(r.0)
        return r
    }

    static func reportNotices() {
        for r in replicas { r.takeNotices().forEach(Diagnostics.warn) }
        replicas = []
    }
}

/// The JSON document a `--json` command prints when it fails.
enum JSONFailure {
    nonisolated(unsafe) static var requested = false

    /// The snake_case name of an error's code.
    static func name(_ code: BundleSyncError.Code) -> String {
        switch code {
        case .usage: "usage"
        case .badData: "bad_data"
        case .noInput: "no_input"
        case .cannotCreate: "cannot_create"
        case .io: "io"
        case .busy: "busy"
        case .untrusted: "untrusted"
        default: "failure"
        }
    }

    static func document(_ error: BundleSyncError, status: Int32? = nil) -> [String: Any] {
        ["code": name(error.code), "message": error.message, "hint": BundleHints.hint(for: error) ?? NSNull(),
         "exit_status": Int(status ?? ExitStatus.code(for: error.code))]
    }

    static func print(_ error: BundleSyncError, status: Int32? = nil) {
        guard requested, !Terminal.wroteOutput else { return }
        output(jsonString(["error": document(error, status: status)]))
    }
}

/// Writing to stderr: diagnostics, warnings and narration for people.
enum Diagnostics {
    /// With `--quiet`, notes are not printed; errors and warnings always are.
    nonisolated(unsafe) static var quiet = false

    static func report(_ error: BundleSyncError) {
        var text = "error: \(error.message)\n"
        if let hint = BundleHints.hint(for: error) { text += "hint: \(hint)\n" }
        write(text)
    }

    static func warn(_ message: String) {
        write("warning: \(message)\n")
    }

    static func note(_ message: String) {
        if quiet { return }
        write(message + "\n")
    }

    static func write(_ text: String) {
        _ = Terminal.write(text, to: STDERR_FILENO)
    }
}

/// Prints to stdout. A result that cannot be written (a full disk, a closed pipe) makes the
/// command end with exit status 74.
func output(_ text: String) {
    if !Terminal.write(text + "\n", to: STDOUT_FILENO) { Terminal.outputFailed = errno }
}

/// Writes to the standard streams with write(2), so that an unwritable stream is an error
/// the command handles rather than a trap.
enum Terminal {
    /// The errno of the first result that could not be written.
    nonisolated(unsafe) static var outputFailed: Int32?
    /// Whether anything was written to stdout.
    nonisolated(unsafe) static var wroteOutput = false

    static func write(_ text: String, to fd: Int32) -> Bool {
        if fd == STDOUT_FILENO { wroteOutput = true }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            bytes = bytes.dropFirst(n)
        }
        return true
    }
}
