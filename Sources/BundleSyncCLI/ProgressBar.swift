import ArgumentParser
import BundleSync
import Foundation

/// `--quiet` and `--verbose`, shared by the commands that do long work.
struct OutputOptions: ParsableArguments {
    @Flag(name: [.short, .long], help: "Print nothing but errors, warnings and the command's result.")
    var quiet = false
    @Flag(name: [.short, .long], help: "Also print a line for every batch sealed, written or applied.")
    var verbose = false

    func validate() throws {
        if quiet && verbose { throw ValidationError("choose --quiet or --verbose, not both") }
    }

    /// Applies the choice: notes off with --quiet, and a progress handler that draws a bar
    /// when stderr is a terminal and prints batch details with --verbose.
    func apply() -> ProgressHandler? {
        Diagnostics.quiet = quiet
        let bar = ProgressBar(draw: !quiet && isatty(STDERR_FILENO) == 1, verbose: verbose)
        return bar.draw || verbose ? bar.handle : nil
    }
}

/// Draws a one-line progress bar with rate and time left on stderr.
final class ProgressBar {
    let draw: Bool
    let verbose: Bool
    private var started: [String: Date] = [:]
    private var lastDraw = Date.distantPast
    private var visible = false

    init(draw: Bool, verbose: Bool) {
        self.draw = draw
        self.verbose = verbose
    }

    func handle(_ event: ProgressEvent) {
        switch event.kind {
        case .detail(let line):
            guard verbose else { return }
            clear()
            Diagnostics.write(line + "\n")
        case .finished:
            clear()
            started[event.phase] = nil
        case .step(let done, let total):
            guard draw, total > 0 else { return }
            let now = Date()
            let start = started[event.phase] ?? now
            started[event.phase] = start
            guard now.timeIntervalSince(lastDraw) >= 0.1 || done >= total else { return }
            lastDraw = now
            Diagnostics.write("\r\u{1B}[2K" + Self.line(event.phase, event.unit, done, total, now.timeIntervalSince(start)))
            visible = true
        }
    }

    private func clear() {
        if visible {
            Diagnostics.write("\r\u{1B}[2K")
            visible = false
        }
    }

    static func line(_ phase: String, _ unit: String, _ done: Int, _ total: Int, _ elapsed: Double) -> String {
        let fraction = min(1, Double(done) / Double(total))
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        // The first moments give no useful rate.
        let rate = elapsed >= 0.2 ? Double(done) / elapsed : 0
        let rateText = rate == 0 ? "" : unit == "bytes" ? String(format: "%.1f MB/s", rate / 1_000_000) : String(format: "%.0f %@/s", rate, unit)
        var eta = "--:--"
        if rate > 0 {
            let left = Int((Double(total - done) / rate).rounded())
            eta = String(format: "%d:%02d", left / 60, left % 60)
        }
        return String(format: "%@ [%@] %3d%%  %@  ETA %@", phase, bar, Int(fraction * 100), rateText, eta)
    }
}
