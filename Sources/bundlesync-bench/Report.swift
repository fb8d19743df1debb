import Foundation

// Timing, logging and the printed table.

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func log(_ message: String) {
    try? FileHandle.standardError.write(contentsOf: Data("[\(fixed(now() - Progress.start, 1).leftPadded(7)) s] \(message)\n".utf8))
}

enum Progress {
    static let start = now()
    nonisolated(unsafe) static var steps: [(String, Double)] = []
}

/// Runs one step of the benchmark, logs it and records its duration.
@discardableResult
func step<T>(_ label: String, _ body: () throws -> T) rethrows -> T {
    log("\(label)…")
    let t0 = now()
    let result = try body()
    let dt = now() - t0
    Progress.steps.append((label, dt))
    log("\(label): \(fixed(dt, 3)) s")
    return result
}

/// The process's CPU time (user and system), in seconds.
#if os(Linux)
private let RUSAGE_SELF_WHO = RUSAGE_SELF.rawValue
#else
private let RUSAGE_SELF_WHO = RUSAGE_SELF
#endif

func cpuTime() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF_WHO, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}

/// Times `body` in wall-clock and CPU seconds, without recording it as a step.
func timedWithCPU(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
    let t0 = now(), c0 = cpuTime()
    try body()
    return (now() - t0, cpuTime() - c0)
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Times `body` without recording it as a step.
func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let t0 = now()
    let r = try body()
    return (r, now() - t0)
}

// MARK: - Formatting

func fixed(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }

func grouped(_ n: Int) -> String {
    let s = String(abs(n))
    var out = ""
    for (i, c) in s.enumerated() {
        if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

func mib(_ bytes: Int) -> String { fixed(Double(bytes) / 1_048_576, 1) + " MiB" }

func bytesText(_ bytes: Int) -> String { "\(grouped(bytes)) B (\(mib(bytes)))" }

func perSecond(_ count: Double, _ seconds: Double, _ unit: String) -> String {
    seconds > 0 ? "\(grouped(Int((count / seconds).rounded()))) \(unit)/s" : "∞ \(unit)/s"
}

func ratioText(_ r: Double) -> String {
    if r.isNaN { return "n/a" }
    if r < 0.01 { return fixed(r, 4) + "×" }
    return fixed(r, r < 1 ? 3 : 2) + "×"
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
    func padded(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}

/// One line of the result table.
struct Figure {
    var number: String
    var name: String
    var bundlesync: String
    var baseline: String
    var ratio: String
    var target: String
    var meets: String
}

func meets(_ ok: Bool) -> String { ok ? "yes" : "NO" }

/// Prints rows as a Markdown table with aligned columns.
func markdownTable(_ header: [String], _ rows: [[String]]) -> String {
    let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max()! }
    func line(_ cells: [String]) -> String {
        "| " + cells.enumerated().map { $1.padded(widths[$0]) }.joined(separator: " | ") + " |"
    }
    return ([line(header), "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"]
        + rows.map(line)).joined(separator: "\n")
}
