import ArgumentParser
import BundleSync

struct Vector: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vector",
        abstract: "Print what this replica holds, as a vector file for 'export --since'.",
        discussion: """
        Prints one JSON object: replica id to the number of its batches held. Carry it to a \
        peer, which can then export exactly what this replica lacks.

        Example:
          bundlesync vector tablet.db > /media/usb/tablet.vector
          bundlesync export laptop.db --since /media/usb/tablet.vector -o /media/usb
        """
    )

    @Argument(help: "The replica's database file.", completion: Completions.database) var db: String
    @Flag(help: "Accepted for symmetry with the other commands: the output is JSON already.") var json = false

    func run() throws {
        output(jsonString(try Opened.replica(db).vector().json))
    }
}
