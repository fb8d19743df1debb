import BundleSyncTestSupport
import Foundation
import Testing

/// The manual stays true: every subcommand and long option the CLI has appears in
/// `man/bundlesync.1`, and both pages pass groff's lint.
@Suite struct ManualTests {
    static func page(_ name: String) throws -> String {
        try String(contentsOfFile: Checkout.path("man/\(name)"), encoding: .utf8)
    }

    @Test func everySubcommandAndLongOptionIsInTheManual() throws {
        let dump = try CLI.ok(["--experimental-dump-help"])
        let json = try JSONSerialization.jsonObject(with: Data(dump.utf8)) as! [String: Any]
        let command = json["command"] as! [String: Any]
        // roff writes '-' as '\-'; compare on the plain text.
        let manual = try Self.page("bundlesync.1").replacingOccurrences(of: "\\-", with: "-")
        var missing: [String] = []
        for sub in command["subcommands"] as? [[String: Any]] ?? [] {
            let name = sub["commandName"] as! String
            if name == "help" { continue }
            // Listed in the SYNOPSIS (".B name") and described under COMMANDS (".BR name ...").
            let lines = manual.split(separator: "\n").map(String.init)
            if !lines.contains(".B \(name)") { missing.append("\(name) (SYNOPSIS)") }
            if !lines.contains(where: { $0.hasPrefix(".BR \(name) ") || $0 == ".B \(name)" && false }) { missing.append("\(name) (COMMANDS)") }
            for arg in sub["arguments"] as? [[String: Any]] ?? [] {
                for n in arg["names"] as? [[String: Any]] ?? [] where n["kind"] as? String == "long" {
                    let option = "--\(n["name"] as! String)"
                    if ["--help", "--version"].contains(option) { continue }
                    if !manual.contains(option) { missing.append("\(name) \(option)") }
                }
            }
        }
        #expect(missing.isEmpty, "missing from man/bundlesync.1: \(missing)")
    }

    @Test func manualPagesPassGroffLint() throws {
        let groff = ["/usr/bin/groff", "/bin/groff"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try #require(groff != nil, "groff is not installed (apt-get install groff); .ci/run installs it")
        for name in ["bundlesync.1", "bundlesync-format.5"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: groff!)
            p.arguments = ["-t", "-mandoc", "-ww", "-z", Checkout.path("man/\(name)")]
            let err = Pipe()
            p.standardError = err
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(text.isEmpty && p.terminationStatus == 0, "groff warns on \(name): \(text)")
        }
    }
}
