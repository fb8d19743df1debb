import BundleSyncCLI

@main
enum Entrypoint {
    static func main() {
        BundleSyncCommand.runMain()
    }
}
