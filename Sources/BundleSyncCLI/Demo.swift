import ArgumentParser
import BundleSync
import Foundation

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a narrated round trip between three throw-away replicas.",
        discussion: """
        Creates three replicas in DIR (or a new temporary directory), makes concurrent and \
        conflicting edits with plain SQL, carries bundles between them in a shuffled order, and \
        shows that all three end with the same rows and the same digest. DIR is left behind to \
        explore.

        Example:
          bundlesync demo /tmp/bundlesync-demo
        """
    )

    @Argument(help: "Where to create the demo replicas (default: a new temporary directory).", completion: Completions.folder)
    var dir: String?

    func run() throws {
        let directory = dir ?? PathText.join(NSTemporaryDirectory(), "bundlesync-demo-\(UUID().uuidString.prefix(8).lowercased())")
        let ok = try BundleSync.Demo.run(in: directory) { output($0) }
        if !ok { throw ExitCode(1) }
    }
}
