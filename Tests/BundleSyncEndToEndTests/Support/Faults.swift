import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

// Helpers for FaultTests: a seeded random source, a killable bundlesync process, file copies
// of replicas, tmpfs mounts and disk filling, immutable files, and a live application writer.

/// SplitMix64: small, fast, and the same sequence for the same seed on every platform.
struct FaultRNG: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Faults {
    static let environment = ProcessInfo.processInfo.environment

    /// `BUNDLESYNC_SOAK=1` (or any value but 0/empty) turns on the long soak.
    static let soak: Bool = {
        guard let v = environment["BUNDLESYNC_SOAK"]?.trimmingCharacters(in: .whitespaces) else { return false }
        return !v.isEmpty && v != "0"
    }()

    /// `normal` by default, `soaking` under BUNDLESYNC_SOAK, or exactly BUNDLESYNC_KILL_POINTS.
    static func killPoints(normal: Int, soaking: Int) -> Int {
        if let text = environment["BUNDLESYNC_KILL_POINTS"], let n = Int(text), n > 0 { return n }
        return soak ? soaking : normal
    }

    /// When to send SIGKILL.
    enum KillPlan: CustomStringConvertible {
        /// This many seconds after the start.
        case at(Double)
        /// This many seconds after a watcher first sees the event (the commit, the output
        /// file): the window around a commit and the process exit is narrow, and points
        /// chosen in advance rarely hit it, the less so on a loaded machine.
        case afterEvent(Double)

        var description: String {
            switch self {
            case .at(let d): String(format: "%.3f s into the run", d)
            case .afterEvent(let d): String(format: "%.3f s after the event", d)
            }
        }
    }

    /// `uniform` kills spread over `[0, duration]`, one uniformly random point in each of
    /// `uniform` equal slices (stratified, so every phase gets its share), then `triggered`
    /// kills at uniformly random delays in `[0, window]` after the event.
    static func killPlans(uniform: Int, triggered: Int, over duration: Double, window: Double, using rng: inout FaultRNG) -> [KillPlan] {
        let slice = duration / Double(max(uniform, 1))
        return (0..<uniform).map { k in .at(slice * (Double(k) + Double.random(in: 0..<1, using: &rng))) }
            + (0..<triggered).map { _ in .afterEvent(Double.random(in: 0...window, using: &rng)) }
    }

    /// The seed for a test's random choices: BUNDLESYNC_FAULT_SEED, or a fresh one. Printed,
    /// so a failing run can be replayed.
    static func seed(for test: String) -> UInt64 {
        let seed = environment["BUNDLESYNC_FAULT_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64(UInt32.max))
        print("[\(test)] seed \(seed) (replay with BUNDLESYNC_FAULT_SEED=\(seed) swift test --filter FaultTests)")
        return seed
    }

    /// The schema every fault test uses.
    static let schema = "CREATE TABLE items(id TEXT PRIMARY KEY, n INTEGER, s TEXT);"

    /// One SQL statement inserting `count` rows `PREFIX000001`… in one transaction.
    static func bulkInsert(_ count: Int, prefix: String = "k", tag: String = "v1") -> String {
        """
        WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < \(count))
        INSERT INTO items(id, n, s) SELECT printf('\(prefix)%06d', i), i, '\(tag) ' || i || ' ' || hex(randomblob(8)) FROM c;
        """
    }

    /// Whether `now` is `after` up to some key and `before` from there on: the state after
    /// the first whole chunks of a snapshot, which are in key order. Rows are [id, …].
    static func isKeyPrefix(_ now: [[SQLValue]], of after: [[SQLValue]], restFrom before: [[SQLValue]]) -> Bool {
        func byKey(_ rows: [[SQLValue]]) -> [String: [SQLValue]] {
            Dictionary(rows.map { row -> (String, [SQLValue]) in
                if case .text(let b) = row[0] { return (String(decoding: b, as: UTF8.self), row) }
                return (String(describing: row[0]), row)
            }) { a, _ in a }
        }
        let (n, a, b) = (byKey(now), byKey(after), byKey(before))
        var keys = Set(n.keys).union(a.keys).union(b.keys).sorted()
        // Rows before and after agree on say nothing about where the import stopped.
        keys.removeAll { a[$0] == b[$0] && n[$0] == a[$0] }
        var inAfterPart = true
        for k in keys {
            if inAfterPart && n[k] == a[k] { continue }
            inAfterPart = false
            guard n[k] == b[k] else { return false }
        }
        return true
    }

    /// Every tracked row, ordered by key.
    static func content(_ db: String) throws -> [[SQLValue]] {
        try App.rows(db, "SELECT id, n, s FROM items ORDER BY id")
    }

    /// `PRAGMA integrity_check` through a fresh connection (which also recovers a hot WAL).
    static func integrity(_ db: String) throws -> String {
        let rows = try App.rows(db, "PRAGMA integrity_check")
        return rows.map { row in row.map { v -> String in
            if case .text(let b) = v { return String(decoding: b, as: UTF8.self) }
            return v.display
        }.joined(separator: " ") }.joined(separator: "; ")
    }

    static func statusJSON(_ db: String) throws -> [String: Any] {
        let out = try CLI.ok(["status", db, "--json"])
        return (try JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any] ?? [:]
    }

    static func pendingChanges(_ db: String) throws -> Int {
        try statusJSON(db)["pending_changes"] as? Int ?? -1
    }

    /// Folds the WAL into the main file so that the file alone is the whole database.
    static func checkpoint(_ db: String) throws {
        _ = try App.rows(db, "PRAGMA wal_checkpoint(TRUNCATE)")
    }

    /// Copies a replica's database file (with its WAL, if any) to `to`, replacing it.
    static func copyDatabase(_ from: String, to: String) throws {
        let fm = FileManager.default
        for suffix in ["", "-wal", "-shm", "-journal"] where fm.fileExists(atPath: to + suffix) {
            try fm.removeItem(atPath: to + suffix)
        }
        try fm.copyItem(atPath: from, toPath: to)
        if fm.fileExists(atPath: from + "-wal") { try fm.copyItem(atPath: from + "-wal", toPath: to + "-wal") }
    }

    /// Names in `dir`, sorted.
    static func list(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    /// Files in `dir` whose names end with `.bsync` (whatever their first character).
    static func bundleFiles(_ dir: String) -> [String] {
        list(dir).filter { $0.hasSuffix(".bsync") }.map { (dir as NSString).appendingPathComponent($0) }
    }

    static func seconds(since start: DispatchTime) -> Double {
        Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    }

    /// Runs a system tool (not bundlesync) and returns its status and combined output.
    @discardableResult
    static func tool(_ args: [String]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return (127, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    // MARK: - Error messages

    /// The `error:` lines of a run's stderr.
    static func errorLines(_ r: CLIResult) -> [String] {
        r.stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("error:") }
    }

    /// One `error:` line, optionally followed by `hint:` lines, and nothing that looks like a
    /// crash.
    static func isOneLineError(_ r: CLIResult) -> Bool {
        let lines = r.stderr.split(separator: "\n").map(String.init)
        return errorLines(r).count == 1 && lines.allSatisfy { $0.hasPrefix("error:") || $0.hasPrefix("hint:") }
    }

    // MARK: - tmpfs and full disks

    /// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN, as in CI).
    static let canMountTmpfs: Bool = {
        let probe = TempDir("bundlesync-mount-probe")
        return withExtendedLifetime(probe) {
            guard tool(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe.path]).status == 0 else {
                print("[FaultTests] cannot mount a tmpfs here; the full-disk tests are skipped")
                return false
            }
            unmount(probe.path)
            return true
        }
    }()

    /// Mounts a tmpfs of `size` (for example "4m") on `dir`.
    static func mountTmpfs(_ dir: String, size: String, readOnly: Bool = false) throws {
        let r = tool(["mount", "-t", "tmpfs", "-o", "size=\(size)\(readOnly ? ",ro" : "")", "tmpfs", dir])
        guard r.status == 0 else { throw TestFailure("mount tmpfs on \(dir) failed: \(r.output)") }
    }

    static func unmount(_ dir: String) {
        if tool(["umount", dir]).status != 0 { tool(["umount", "-l", dir]) }
    }

    /// Bytes free for an unprivileged write in the filesystem holding `path`.
    static func freeBytes(_ path: String) -> Int {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return 0 }
        return Int(s.f_bavail) * Int(s.f_frsize)
    }

    /// Writes a filler file (real zero bytes, so tmpfs allocates them) until at most `leaving`
    /// bytes are free, and returns its path.
    @discardableResult
    static func fill(_ dir: String, leaving: Int) -> String {
        let path = (dir as NSString).appendingPathComponent("filler")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let h = FileHandle(forWritingAtPath: path) else { return path }
        defer { try? h.close() }
        _ = try? h.seekToEnd()
        var chunk = 1 << 20
        while freeBytes(dir) > leaving {
            let want = min(chunk, freeBytes(dir) - leaving)
            if want <= 0 { break }
            do { try h.write(contentsOf: Data(count: want)) } catch {
                if chunk == 4096 { break }
                chunk = max(4096, chunk / 16)
            }
        }
        return path
    }

    // MARK: - Immutable files (root ignores permission bits)

    /// Sets or clears the immutable attribute; false when the filesystem does not support it.
    @discardableResult
    static func immutable(_ path: String, _ on: Bool) -> Bool {
        tool(["chattr", on ? "+i" : "-i", path]).status == 0
    }
}

/// A `bundlesync` process started directly (its pid is bundlesync's own), to be killed.
final class SpawnedCLI {
    let process = Process()
    let started: DispatchTime
    let stderrPath: String

    init(_ args: [String], stderrTo path: String) throws {
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = args
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: path)
        stderrPath = path
        started = DispatchTime.now()
        try process.run()
    }

    /// Sends SIGKILL as planned (`watch` is polled every millisecond for an event plan; if the
    /// process ends before the event, no signal is sent), then waits for the end.
    @discardableResult
    func kill(_ plan: Faults.KillPlan, watch: () -> Bool) -> (killed: Bool, status: Int32) {
        switch plan {
        case .at(let delay):
            let remaining = delay - Faults.seconds(since: started)
            if remaining > 0 { Thread.sleep(forTimeInterval: remaining) }
            _ = kill()
        case .afterEvent(let delay):
            var seen = false
            while process.isRunning {
                if watch() { seen = true; break }
                usleep(1000)
            }
            if seen {
                if delay > 0 { Thread.sleep(forTimeInterval: delay) }
                _ = kill()
            }
        }
        return wait()
    }

    /// Sends SIGKILL if it still runs; returns whether it did.
    func kill() -> Bool {
        guard process.isRunning else { return false }
        return Glibc.kill(process.processIdentifier, SIGKILL) == 0
    }

    /// Waits for the end; true when it was killed by a signal.
    @discardableResult
    func wait() -> (killed: Bool, status: Int32) {
        process.waitUntilExit()
        return (process.terminationReason == .uncaughtSignal, process.terminationStatus)
    }

    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Runs to completion and returns the wall time in seconds, the exit status, and when
    /// (seconds after the start) `watch` first returned true, polled every 2 ms meanwhile.
    static func timed(_ args: [String], stderrTo path: String, watch: (() -> Bool)? = nil) throws
        -> (seconds: Double, status: Int32, event: Double?) {
        let p = try SpawnedCLI(args, stderrTo: path)
        let seen = Locked<Double?>(nil)
        let watching = DispatchSemaphore(value: 0)
        if let watch {
            Thread {
                while p.process.isRunning {
                    if watch() {
                        seen.update { $0 = Faults.seconds(since: p.started) }
                        break
                    }
                    usleep(2000)
                }
                watching.signal()
            }.start()
        } else {
            watching.signal()
        }
        let (_, status) = p.wait()
        let seconds = Faults.seconds(since: p.started)
        watching.wait()
        return (seconds, status, seen.value)
    }
}

/// The application: one thread with its own SQLite connection that keeps inserting
/// uniquely numbered rows and updating rows, timing every write.
final class AppWriter: @unchecked Sendable {
    let db: String
    private let lock = NSLock()
    private var stopFlag = false
    private let done = DispatchSemaphore(value: 0)

    // Results, read after `stop()`.
    private(set) var expected: [String: (n: Int64, s: String)] = [:]
    private(set) var writes = 0
    private(set) var longestWait = 0.0
    private(set) var waitsOverOneSecond = 0
    private(set) var failures: [String] = []
    private(set) var retries = 0

    init(db: String) { self.db = db }

    func start(seed: UInt64) {
        let thread = Thread { [self] in
            run(seed: seed)
            done.signal()
        }
        thread.stackSize = 1 << 22
        thread.start()
    }

    /// Stops the loop and waits for the thread to end.
    func stop() {
        lock.lock(); stopFlag = true; lock.unlock()
        done.wait()
    }

    private var stopped: Bool { lock.lock(); defer { lock.unlock() }; return stopFlag }

    private func run(seed: UInt64) {
        var rng = FaultRNG(seed: seed)
        let conn: Database
        do { conn = try Database(path: db, busyTimeout: 10_000) } catch {
            failures.append("open: \(error)")
            return
        }
        var i: Int64 = 0
        var mine: [String] = []
        while !stopped {
            i += 1
            let key = String(format: "w%06d", i)
            write(conn, "INSERT INTO items(id, n, s) VALUES (?, ?, ?)", [.text(key), .integer(i), .text("ins \(i)")]) {
                expected[key] = (i, "ins \(i)")
                mine.append(key)
            }
            if i % 3 == 0, let other = mine.randomElement(using: &rng) {
                let old = expected[other]!
                let n = old.n + 1_000_000
                write(conn, "UPDATE items SET n = ?, s = ? WHERE id = ?", [.integer(n), .text("upd \(i)"), .text(other)]) {
                    expected[other] = (n, "upd \(i)")
                }
            }
            if i % 7 == 0 {
                // Rows arriving from the other replica are edited by the application too.
                let k = String(format: "k%06d", Int.random(in: 1...50_000, using: &rng))
                write(conn, "UPDATE items SET s = ? WHERE id = ?", [.text("app \(i)"), .text(k)]) {}
            }
            usleep(1000)
        }
    }

    /// One autocommit write, retried on failure (as an application would), timed.
    private func write(_ conn: Database, _ sql: String, _ args: [SQLValue], onSuccess: () -> Void) {
        for attempt in 0..<5 {
            let start = DispatchTime.now()
            do {
                try conn.run(sql, args)
                let waited = Faults.seconds(since: start)
                lock.lock()
                writes += 1
                longestWait = max(longestWait, waited)
                if waited > 1 { waitsOverOneSecond += 1 }
                lock.unlock()
                onSuccess()
                return
            } catch {
                failures.append("attempt \(attempt) of '\(sql)' after \(String(format: "%.2f", Faults.seconds(since: start))) s: \(error)")
                retries += 1
            }
        }
    }
}

/// A value shared between threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ v: Value) { stored = v }
    var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
    func update(_ body: (inout Value) -> Void) { lock.lock(); body(&stored); lock.unlock() }
}
