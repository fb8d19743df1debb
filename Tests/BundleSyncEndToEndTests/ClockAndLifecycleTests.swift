import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Wrong clocks, restored backups, big honest values and peers that leave, through the CLI:
/// each either syncs, or is refused loudly, naming what is wrong.
@Suite struct ClockAndLifecycleTests {
    static let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v);"
    static let tenYearsAhead = ["faketime", "-f", "+3650d"]

    /// Runs plain SQL through the sqlite3 shell, as an application on a device whose clock
    /// is set by `wrapper` would.
    static func shell(_ db: String, _ sql: String, wrapper: [String] = []) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = wrapper + ["sqlite3", db, sql]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "sqlite3 \(sql) failed")
    }

    /// The years of the row and cell timestamps in a bundle, from `inspect --json --rows`.
    static func stampYears(_ bundle: String) throws -> [Int] {
        let out = try CLI.ok(["inspect", bundle, "--json", "--rows"])
        var years: [Int] = []
        func visit(_ any: Any, key: String?) {
            if let d = any as? [String: Any] {
                for (k, v) in d { visit(v, key: k) }
            } else if let a = any as? [Any] {
                for v in a { visit(v, key: key) }
            } else if key == "hlc" || key == "row_hlc" {
                let raw = (any as? NSNumber)?.uint64Value ?? UInt64(any as? String ?? "") ?? 0
                let date = Date(timeIntervalSince1970: Double(raw >> 16) / 1000)
                years.append(Calendar(identifier: .gregorian).component(.year, from: date))
            }
        }
        visit(try JSONSerialization.jsonObject(with: Data(out.utf8)), key: nil)
        return years
    }

    static var thisYear: Int { Calendar(identifier: .gregorian).component(.year, from: Date()) }

    // MARK: - Clocks

    /// A device whose clock ran ten years ahead, then was set right: its later writes, and
    /// those of a replica that imported its future writes, are stamped with the real time
    /// again; a strict peer refuses the future writes by name until told to accept them once,
    /// and takes everything after; an overwrite of a future-stamped cell still wins.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/faketime")))
    func aClockThatWasWrongAndIsFixedSyncsAgain() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        let c = try TestReplica("c", in: tmp, schema: Self.schema, tables: ["t"])
        try Self.shell(a.db, "INSERT INTO t VALUES ('x', 'from the future')", wrapper: Self.tenYearsAhead)
        let future = try CLI.ok(["export", a.db, "-o", tmp.dir("a1")], wrapper: Self.tenYearsAhead)
        #expect(try Self.stampYears(future).allSatisfy { $0 >= Self.thisYear + 9 })

        // The default warns and applies; a strict peer refuses, naming the writer.
        let warned = try CLI.run(["import", c.db, future])
        #expect(warned.status == 0, "\(warned.stderr)")
        #expect(warned.stderr.contains("writes of replica 'a'") && warned.stderr.contains("days ahead"), "\(warned.stderr)")
        let strict = try CLI.run(["import", b.db, future, "--max-clock-skew", "3600"])
        #expect(strict.status == 65, "\(strict.stderr)")
        #expect(strict.stderr.contains("'a'") && strict.stderr.contains("without --max-clock-skew"), "\(strict.stderr)")

        // The clock is set right. A's next write, and C's, carry this year.
        try a.sql("INSERT INTO t VALUES ('y', 'now')")
        let aNow = try a.export(to: tmp.dir("a2"))
        #expect(try Self.stampYears(aNow).contains(Self.thisYear))
        try c.sql("INSERT INTO t VALUES ('z', 'c now')")
        // C overwrites the future-stamped cell: the overwrite is stamped after it, and wins.
        try c.sql("UPDATE t SET v = 'fixed by c' WHERE id = 'x'")
        let cNow = try c.export(to: tmp.dir("c1"))
        let cYears = try Self.stampYears(cNow)
        #expect(cYears.contains(Self.thisYear), "C's own new row is stamped with the real time: \(cYears)")
        #expect(cYears.contains { $0 >= Self.thisYear + 9 }, "the overwrite of the future cell is stamped after it")

        // B accepts the future writes once, knowingly; after that it stays strict and takes
        // everything, because the later writes are explained by what it has accepted.
        try b.importing([future])
        for bundle in [aNow, cNow] {
            let r = try CLI.run(["import", b.db, bundle, "--max-clock-skew", "3600"])
            #expect(r.status == 0, "\(bundle): \(r.stderr)")
        }
        try a.importing([cNow])
        try c.importing([aNow])
        #expect(try b.rows("SELECT v FROM t WHERE id = 'x'") == [[.text("fixed by c")]])
        #expect(try a.digest() == b.digest())
        #expect(try b.digest() == c.digest())
    }

    /// One bundle refused inside an import command leaves nothing behind that the next
    /// bundle of the same command could be credited with.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/faketime")))
    func aRefusedBundleDoesNotLendItsPeerToTheNext() throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let c = try TestReplica("c", in: tmp, schema: Self.schema, tables: ["t"])
        let d = try TestReplica("d", in: tmp, schema: Self.schema, tables: ["t"])
        try Self.shell(c.db, "INSERT INTO t VALUES ('c', 1)", wrapper: ["faketime", "-f", "+2d"])
        let refused = try CLI.ok(["export", c.db, "-o", tmp.dir("c")], wrapper: ["faketime", "-f", "+2d"])
        try d.sql("INSERT INTO t VALUES ('d', 1)")
        let good = try d.export(to: tmp.dir("d"))
        let r = try CLI.run(["import", a.db, refused, good, "--max-clock-skew", "3600"])
        #expect(r.status == 65, "\(r.stderr)")
        let peers = (try a.status()["peers"] as? [[String: Any]]) ?? []
        #expect(peers.map { $0["name"] as? String } == ["d"], "\(peers)")
        let vector = peers.first?["vector"] as? [String: Any] ?? [:]
        #expect(vector.count == 1, "d is credited with its own vector only: \(vector)")
        try a.sql("INSERT INTO t VALUES ('a', 1)")
        let toD = try CLI.run(["export", a.db, "--to", "d", "-o", tmp.dir("a")])
        #expect(toD.status == 0 && !toD.stderr.contains("nothing to send"), "\(toD.stderr)")
    }

    // MARK: - Big honest values

    /// Values that compress by any factor, and a value larger than any batch used to be,
    /// export, verify and import everywhere; the replica's later changes flow too.
    @Test func bigHonestValuesSyncEndToEnd() throws {
        let tmp = TempDir()
        let schema = "CREATE TABLE t(id TEXT PRIMARY KEY, v BLOB, note TEXT);"
        let a = try TestReplica(name: "a", db: tmp.file("a.db"))
        let b = try TestReplica(name: "b", db: tmp.file("b.db"))
        for r in [a, b] {
            try App.execute(r.db, schema)
            try CLI.ok(["init", r.db, "--name", r.name])
            try CLI.ok(["track", r.db, "t", "--text", "note"])
        }
        let megabytes = ProcessInfo.processInfo.environment["BUNDLESYNC_BIG_CELL_MB"].flatMap(Int.init) ?? 300
        try a.sql("""
            INSERT INTO t VALUES ('zeros', zeroblob(10000000), NULL);
            INSERT INTO t VALUES ('repeated', NULL, printf('%.*c', 50000000, 'x'));
            INSERT INTO t VALUES ('big', randomblob(\(megabytes) * 1000000), NULL);
            """)
        let first = try a.export(to: tmp.dir("s1"))
        #expect(try CLI.run(["verify", first]).status == 0)
        try b.importing([first])
        try a.sql("INSERT INTO t VALUES ('after', x'01', 'and later changes flow')")
        try b.importing([try a.export(to: tmp.dir("s2"))])
        #expect(try b.rows("SELECT id, length(v), length(note) FROM t ORDER BY id") == [
            [.text("after"), .integer(1), .integer(22)],
            [.text("big"), .integer(Int64(megabytes) * 1_000_000), .null],
            [.text("repeated"), .null, .integer(50_000_000)],
            [.text("zeros"), .integer(10_000_000), .null],
        ])
        #expect(try a.digest() == b.digest())
    }

    // MARK: - Restored backups

    /// A file put back from a backup takes a new identity before it writes anything: its
    /// writes since the restore are kept, the batch it lost comes back from a peer, and no
    /// peer sees a fork.
    @Test(arguments: [true, false])
    func aRestoredBackupRecovers(keepingNote: Bool) throws {
        let tmp = TempDir()
        let a = try TestReplica("a", in: tmp, schema: Self.schema, tables: ["t"])
        let b = try TestReplica("b", in: tmp, schema: Self.schema, tables: ["t"])
        let backup = tmp.file("a-backup.db")
        try FileManager.default.copyItem(atPath: a.db, toPath: backup)
        try a.sql("INSERT INTO t VALUES ('before', 1)")
        try b.importing([try a.export(to: tmp.dir("s1"))])
        try b.sql("INSERT INTO t VALUES ('b', 1)")
        let fromB = try b.export(to: tmp.dir("s2"))
        // The backup goes back over the file; without the note beside it, a peer's bundle
        // shows the loss instead.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: a.db + suffix) }
        try FileManager.default.copyItem(atPath: backup, toPath: a.db)
        if !keepingNote { try FileManager.default.removeItem(atPath: a.db + "-bundlesync") }
        try a.sql("INSERT INTO t VALUES ('after restore', 2)")
        let r: CLIResult
        if keepingNote {
            r = try CLI.run(["export", a.db, "-o", tmp.dir("s3")])
        } else {
            r = try CLI.run(["import", a.db, fromB])
        }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("is an older copy of replica 'a'") && r.stderr.contains("now writes as a new replica"), "\(r.stderr)")
        let status = try a.status()
        #expect((status["name"] as? String)?.hasPrefix("a-") == true)
        // Both ways until nothing is left: no fork anywhere, every write everywhere.
        for round in 0..<2 {
            let out = try CLI.run(["import", b.db, try a.export(to: tmp.dir("a-\(round)"))])
            #expect(out.status == 0, "\(out.stderr)")
            let back = try CLI.run(["import", a.db, try b.export(to: tmp.dir("b-\(round)"))])
            #expect(back.status == 0, "\(back.stderr)")
        }
        let expected: [[SQLValue]] = [[.text("after restore")], [.text("b")], [.text("before")]]
        #expect(try a.rows("SELECT id FROM t ORDER BY id") == expected)
        #expect(try b.rows("SELECT id FROM t ORDER BY id") == expected)
        #expect(try a.digest() == b.digest())
    }

    // MARK: - Peers that leave

    /// Four replicas on one folder, one silent after the first round: its needs pin history
    /// and every bundle grows; after `forget`, bundles shrink to one round's changes and
    /// history stops growing. Rounds: BUNDLESYNC_LONG_RUN_ROUNDS (default 24).
    @Test func aPeerThatLeftIsForgotten() throws {
        let tmp = TempDir()
        let names = ["p0", "p1", "p2", "gone"]
        let replicas = try names.map { try TestReplica($0, in: tmp, schema: Self.schema, tables: ["t"]) }
        // A pruning window of 2 batches per replica instead of 32, so that history reaches
        // its flat size within the rounds below.
        for r in replicas { try CLI.ok(["config", r.db, "keep-batches", "2"]) }
        let mailbox = tmp.dir("mailbox")
        let rounds = ProcessInfo.processInfo.environment["BUNDLESYNC_LONG_RUN_ROUNDS"].flatMap(Int.init) ?? 24
        func bundleBytes(of r: TestReplica) -> Int {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: mailbox)) ?? []
            return files.filter { $0.hasPrefix(r.name + "-") && $0.hasSuffix(".bsync") }.reduce(0) {
                $0 + ((try? FileManager.default.attributesOfItem(atPath: "\(mailbox)/\($1)")[.size] as? Int) ?? 0)
            }
        }
        func round(_ n: Int, _ active: [TestReplica]) throws {
            for r in active {
                try r.sql("INSERT INTO t VALUES ('\(r.name)-\(n)-a', \(n)), ('\(r.name)-\(n)-b', \(n)), ('\(r.name)-\(n)-c', \(n));")
                if n > 0 { try r.sql("UPDATE t SET v = v + 1 WHERE id IN ('\(r.name)-\(n - 1)-a', '\(r.name)-\(n - 1)-b', '\(r.name)-\(n - 1)-c')") }
                try CLI.ok(["sync", r.db, mailbox])
            }
        }
        try round(0, replicas)
        try round(1, replicas)
        let active = Array(replicas.prefix(3))
        var pinned: [Int] = []
        for n in 2..<(2 + rounds) {
            try round(n, active)
            pinned.append(bundleBytes(of: active[0]))
        }
        let history = { (r: TestReplica) -> Int in ((try r.status()["history"] as? [String: Any])?["bytes"] as? Int) ?? -1 }
        let pinnedHistory = try history(active[0])
        #expect(pinned.last! > 4 * pinned.first!, "a silent peer pins every round: \(pinned)")

        let status = try active[0].status()
        let gone = (status["peers"] as? [[String: Any]])?.first { $0["name"] as? String == "gone" }
        #expect((gone?["lacks_batches"] as? Int ?? 0) > rounds, "status shows what the silent peer keeps: \(gone ?? [:])")

        for r in active { try CLI.ok(["forget", r.db, "gone"]) }
        var freed: [Int] = []
        var histories: [Int] = []
        for n in (2 + rounds)..<(2 + rounds + 6) {
            try round(n, active)
            freed.append(bundleBytes(of: active[0]))
            histories.append(try history(active[0]))
        }
        #expect(freed.last! * 4 < pinned.last!, "after forget a bundle carries about one round: \(freed) vs \(pinned.last!)")
        // Keys and values grow by a digit now and then; beyond that, history stays flat.
        #expect(histories.last! <= histories[0] + histories[0] / 10, "history stops growing: \(histories)")
        #expect(histories.last! < pinnedHistory, "\(histories) vs \(pinnedHistory)")
        let forgotten = (try active[0].status()["forgotten"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(forgotten == ["gone"])
        // The stale bundle of the forgotten peer still in the folder brings it back to nothing.
        #expect((try active[0].status()["peers"] as? [[String: Any]])?.contains { $0["name"] as? String == "gone" } == false)
        print("forget: \(rounds) rounds with a silent peer, bundle bytes \(pinned.first!) → \(pinned.last!), history \(pinnedHistory) B; after forget: bundle bytes \(freed), history \(histories)")
    }
}
