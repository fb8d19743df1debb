import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

// Fault injection on the BUILT BINARY (SPEC §2.2 exit codes, §5 "Safety: nothing lost"):
// SIGKILL at random moments of an import and of an export, a live application writing all
// the while, a database held busy past the busy timeout, a full disk (a real tmpfs), and
// unusable places (read-only database and directory, missing files, a directory as DB).
//
// Environment:
//   BUNDLESYNC_SOAK=1             many more kill points and a longer live-writer run
//   BUNDLESYNC_KILL_POINTS=N      exactly N kill points per kill test
//   BUNDLESYNC_FAULT_SEED=S       replay the random kill delays of a printed seed (the
//                                 process timing itself is of course never exactly the same)
//   BUNDLESYNC_KEEP_TEMP=1        keep every database and bundle of the run
//
// Root: the tests run as root here and in CI. Root ignores permission bits, so "read-only"
// is made with the immutable attribute (`chattr +i`), which binds root too; the full-disk
// tests mount a small tmpfs and are skipped where mounting is not permitted.

@Suite struct FaultTests {
    // MARK: - Kills and a live writer (serialized: they time processes)

    @Suite(.serialized) struct Kills {
        /// SIGKILL at random moments of importing a 50,000-row snapshot: the database is always
        /// intact and holds the state before, the state after, or the state after a whole
        /// number of its chunks (an import commits whole batches and chunks, in slices that
        /// let the application write in between), and importing again completes it (§5).
        @Test func sigkillDuringImportLeavesWholeChunksAndARetryCompletes() throws {
            let seed = Faults.seed(for: "import-kill")
            var rng = FaultRNG(seed: seed)
            let tmp = TempDir("bundlesync-fault-import")

            let source = try TestReplica("source", in: tmp, schema: Faults.schema, tables: ["items"])
            try source.sql(Faults.bulkInsert(50_000))
            let bundle = try CLI.ok(["export", source.db, "-o", tmp.dir("big"), "--full"])

            // The pristine target: rows of its own, one of them a key the bundle also writes,
            // all already exported, so that a copy of the file has nothing to seal.
            let target = try TestReplica("target", in: tmp, schema: Faults.schema, tables: ["items"])
            try target.sql("INSERT INTO items VALUES ('own-1', 1, 'mine'), ('own-2', 2, 'mine'), ('k000007', -7, 'the target wrote this after the source')")
            _ = try target.export(to: tmp.dir("target-out"))
            try Faults.checkpoint(target.db)
            #expect(try Faults.pendingChanges(target.db) == 0)
            let before = try Faults.content(target.db)

            // One clean import: the state after, its digest, and how long the process runs.
            let clean = tmp.file("clean.db")
            try Faults.copyDatabase(target.db, to: clean)
            // A reader watches for the moment the merge commits (the row count changes).
            let (duration, cleanStatus, committedAt) = try { () throws -> (Double, Int32, Double?) in
                let watcher = try Database(path: clean)
                return try SpawnedCLI.timed(["import", clean, bundle], stderrTo: tmp.file("clean.err")) {
                    (try? watcher.scalar("SELECT count(*) FROM items")) != .integer(Int64(before.count))
                }
            }()
            #expect(cleanStatus == 0)
            let after = try Faults.content(clean)
            let cleanDigest = try CLI.ok(["digest", clean])
            #expect(after.count == 50_002 && after != before)
            #expect(after.contains([.text("k000007"), .integer(-7), .text("the target wrote this after the source")]))

            let points = Faults.killPoints(normal: 12, soaking: 200)
            var killedBefore = 0, killedAfter = 0, killedBetween = 0, finishedFirst = 0
            let plans = Faults.killPlans(uniform: points, triggered: max(4, points / 3), over: duration, window: 0.015, using: &rng)
            for (k, plan) in plans.enumerated() {
                let label = Comment(rawValue: "kill point \(k): \(plan) (the commit) of the import (seed \(seed))")
                let copy = tmp.file("kill-\(k).db")
                try Faults.copyDatabase(target.db, to: copy)

                // The watcher (a reader, as any application is) is closed before the checks.
                let p = try SpawnedCLI(["import", copy, bundle], stderrTo: tmp.file("kill-\(k).err"))
                let (killed, status) = try { () throws -> (Bool, Int32) in
                    let watcher = try Database(path: copy)
                    return p.kill(plan) { (try? watcher.scalar("SELECT count(*) FROM items")) != .integer(Int64(before.count)) }
                }()

                #expect(try Faults.integrity(copy) == "ok", label)
                let now = try Faults.content(copy)
                if !killed {
                    finishedFirst += 1
                    #expect(status == 0, "\(label): \(p.stderr)")
                    #expect(now == after, label)
                } else if now == before {
                    killedBefore += 1
                } else if now == after {
                    killedAfter += 1
                } else if Faults.isKeyPrefix(now, of: after, restFrom: before) {
                    killedBetween += 1
                } else {
                    Issue.record("\(label): the database holds neither the old nor the new state, nor whole chunks of the import: \(now.count) rows (old \(before.count), new \(after.count))")
                }
                // Applied rows are never captured as local changes, even across a kill.
                #expect(try Faults.pendingChanges(copy) == 0, label)

                let again = try CLI.run(["import", copy, bundle])
                #expect(again.status == 0, "\(label): the retry failed: \(again.stderr)")
                #expect(try Faults.content(copy) == after, label)
                #expect(try CLI.ok(["digest", copy]) == cleanDigest, label)
                #expect(try Faults.pendingChanges(copy) == 0, label)
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: copy + suffix) }
            }
            print("[import-kill] \(plans.count) kill points (\(points) uniform, \(plans.count - points) just after the commit was seen) over a \(String(format: "%.2f", duration)) s import (commit seen at \(committedAt.map { String(format: "%.2f", $0) } ?? "?") s): \(killedBefore) killed before commit, \(killedBetween) between two commits, \(killedAfter) killed after commit, \(finishedFirst) finished before the signal")
        }

        /// SIGKILL at random moments of exporting 50,000 pending changes: no `.bsync` file is
        /// ever partial, no change is lost, the history has no gap and no fork (§5).
        @Test func sigkillDuringExportLeavesNoPartialBundleAndLosesNoChange() throws {
            let seed = Faults.seed(for: "export-kill")
            var rng = FaultRNG(seed: seed)
            let tmp = TempDir("bundlesync-fault-export")

            let exporter = try TestReplica("exporter", in: tmp, schema: Faults.schema, tables: ["items"])
            try exporter.sql("INSERT INTO items VALUES ('early-1', 1, 'a'), ('early-2', 2, 'b'), ('early-3', 3, 'c')")
            let early = try exporter.export(to: tmp.dir("early"))
            try exporter.sql(Faults.bulkInsert(50_000))
            try Faults.checkpoint(exporter.db)
            #expect(try Faults.pendingChanges(exporter.db) == 50_000)
            let expected = try Faults.content(exporter.db)
            let exporterID = try Faults.statusJSON(exporter.db)["id"] as? String ?? "?"

            // A peer with nothing; its copies only ever import, so they never need to seal.
            let peer = try TestReplica("peer", in: tmp, schema: Faults.schema, tables: ["items"])
            try Faults.checkpoint(peer.db)

            // Each kill point works on its own copy of the exporter, settled at its new place
            // with --moved (the template itself never writes history again).
            func workingCopy(_ name: String) throws -> String {
                let copy = tmp.file(name)
                try Faults.copyDatabase(exporter.db, to: copy)
                try CLI.ok(["reidentify", copy, "--moved"])
                return copy
            }
            let probe = try workingCopy("probe.db")
            // The output directory is watched for the first file: the seal has committed then.
            let probeOut = tmp.dir("probe-out")
            let (duration, probeStatus, writingAt) = try SpawnedCLI.timed(["export", probe, "-o", probeOut], stderrTo: tmp.file("probe.err")) {
                !Faults.list(probeOut).isEmpty
            }
            #expect(probeStatus == 0)

            let points = Faults.killPoints(normal: 8, soaking: 150)
            var beforeSeal = 0, sealedNoBundle = 0, bundleWritten = 0, finishedFirst = 0, tempLeftovers = 0
            // Triggered kills: after the first file appears in the output directory, through
            // the writing, the rename and the exit.
            let window = max(0.02, duration - (writingAt ?? duration) + 0.02)
            let plans = Faults.killPlans(uniform: points, triggered: max(4, points / 3), over: duration, window: window, using: &rng)
            for (k, plan) in plans.enumerated() {
                let label = Comment(rawValue: "kill point \(k): \(plan) (a file appears) of the export (seed \(seed))")
                let copy = try workingCopy("kill-\(k).db")
                let out = tmp.dir("killed-\(k)")

                let p = try SpawnedCLI(["export", copy, "-o", out], stderrTo: tmp.file("kill-\(k).err"))
                let (killed, status) = p.kill(plan) { !Faults.list(out).isEmpty }
                if !killed {
                    finishedFirst += 1
                    #expect(status == 0, "\(label): \(p.stderr)")
                }

                // Whatever carries the bundle suffix is whole and authentic; anything partial
                // may only be a hidden temporary file, which import never picks up.
                let bundles = Faults.bundleFiles(out)
                for b in bundles {
                    let v = try CLI.run(["verify", b])
                    #expect(v.status == 0, "\(label): '\(b)' is under a real name but does not verify: \(v.stdout)\(v.stderr)")
                }
                #expect(bundles.count <= 1, label)
                tempLeftovers += Faults.list(out).filter { $0.hasPrefix(".") }.count
                #expect(Faults.list(out).allSatisfy { $0.hasPrefix(".") || $0.hasSuffix(".bsync") }, label)

                #expect(try Faults.integrity(copy) == "ok", label)
                #expect(try Faults.content(copy) == expected, "\(label): export changed the user's rows")
                let pending = try Faults.pendingChanges(copy)
                if !killed { }
                else if !bundles.isEmpty { bundleWritten += 1 }
                else if pending == 50_000 { beforeSeal += 1 }
                else if pending == 0 { sealedNoBundle += 1 }
                else { Issue.record("\(label): \(pending) changes pending, neither all nor none") }

                // A later export carries everything; the history has no gap.
                let later = try CLI.ok(["export", copy, "-o", tmp.dir("later-\(k)")])
                #expect(try Faults.pendingChanges(copy) == 0, label)
                let copyStatus = try Faults.statusJSON(copy)
                let vector = copyStatus["vector"] as? [String: Any] ?? [:]
                let held = (copyStatus["history"] as? [String: Any])?["batches"] as? Int ?? -1
                let own = vector[exporterID] as? Int ?? -1
                #expect(own == held && own >= 3, "\(label): own vector entry \(own) but \(held) batches held")

                // A fresh peer takes the early bundle, the killed export's bundle (if any) and
                // the later one: no fork, every row, the same digest.
                let fresh = tmp.file("fresh-\(k).db")
                try Faults.copyDatabase(peer.db, to: fresh)
                let imported = try CLI.run(["import", fresh, early] + bundles + [later])
                #expect(imported.status == 0, "\(label): \(imported.stderr)")
                #expect(!imported.stderr.contains("fork"), label)
                #expect(try Faults.content(fresh) == expected, label)
                #expect(try CLI.ok(["digest", fresh]) == CLI.ok(["digest", copy]), label)
                let peerStatus = try Faults.statusJSON(fresh)
                #expect((peerStatus["vector"] as? [String: Any])?[exporterID] as? Int == own, label)
                #expect((peerStatus["parked"] as? [Any])?.isEmpty == true, label)
                for f in [copy, fresh] {
                    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: f + suffix) }
                }
            }
            print("[export-kill] \(plans.count) kill points (\(points) uniform, \(plans.count - points) after the output file appeared) over a \(String(format: "%.2f", duration)) s export (writing seen at \(writingAt.map { String(format: "%.2f", $0) } ?? "?") s): killed \(beforeSeal) before the seal committed, \(sealedNoBundle) after the seal but before the bundle was renamed into place, \(bundleWritten) after the rename; \(finishedFirst) finished before the signal; \(tempLeftovers) hidden temporary file(s) left behind")
        }

        /// The application keeps inserting and updating while bundlesync imports large bundles
        /// and exports (§5): nothing it wrote is lost or doubled, and its writes only wait.
        @Test func aLiveApplicationWriterLosesNothingWhileImportsAndExportsRun() throws {
            let seed = Faults.seed(for: "live-writer")
            let tmp = TempDir("bundlesync-fault-live")

            // Three large bundles from another replica: 50,000 inserts, then two rounds of
            // 50,000 updates, each exported as what a holder of the previous vector lacks.
            let source = try TestReplica("source", in: tmp, schema: Faults.schema, tables: ["items"])
            try source.sql(Faults.bulkInsert(50_000))
            let sourceOut = tmp.dir("from-source")
            var sourceBundles = [try CLI.ok(["export", source.db, "-o", sourceOut])]
            let rounds = Faults.soak ? 6 : 2
            for round in 1...rounds {
                let vectorFile = tmp.file("vector-\(round).json")
                try CLI.ok(["status", source.db, "--json"]).write(toFile: vectorFile, atomically: true, encoding: .utf8)
                try source.sql("UPDATE items SET n = n + 1, s = 'round \(round) ' || id")
                sourceBundles.append(try CLI.ok(["export", source.db, "-o", sourceOut, "--since", vectorFile]))
            }

            let live = try TestReplica("live", in: tmp, schema: Faults.schema, tables: ["items"])
            try live.sql("INSERT INTO items VALUES ('own-1', 1, 'before the writer started')")
            let liveOut = tmp.dir("from-live")

            let writer = AppWriter(db: live.db)
            writer.start(seed: seed)
            var longestImport = 0.0
            Thread.sleep(forTimeInterval: 0.3)
            for b in sourceBundles {
                let start = DispatchTime.now()
                try CLI.ok(["import", live.db, b])
                longestImport = max(longestImport, Faults.seconds(since: start))
                Thread.sleep(forTimeInterval: 0.2)
                try CLI.ok(["export", live.db, "-o", liveOut])
                Thread.sleep(forTimeInterval: 0.2)
            }
            writer.stop()
            #expect(writer.failures.isEmpty, "application writes failed: \(writer.failures.prefix(5))")
            #expect(writer.expected.count > 100, "the writer wrote too little to prove anything: \(writer.expected.count) rows")

            try CLI.ok(["export", live.db, "-o", liveOut])
            #expect(try Faults.pendingChanges(live.db) == 0)

            let expectedRows: [[SQLValue]] = writer.expected.keys.sorted().map { k in
                let v = writer.expected[k]!
                return [.text(k), .integer(v.n), .text(v.s)]
            }
            let writerRows = "SELECT id, n, s FROM items WHERE id LIKE 'w%' ORDER BY id"
            #expect(try App.rows(live.db, writerRows) == expectedRows, "the live database lost or changed application writes")

            // A fresh peer that imports every bundle holds each application row once, with its
            // final value, and exactly the live replica's content.
            let peer = try TestReplica("peer", in: tmp, schema: Faults.schema, tables: ["items"])
            let r = try CLI.run(["import", peer.db, sourceOut, liveOut])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try App.rows(peer.db, writerRows) == expectedRows, "the exported bundles lack application writes")
            #expect(try App.rows(peer.db, "SELECT count(*) FROM items") == [[.integer(Int64(50_001 + expectedRows.count))]])
            #expect(try Faults.content(peer.db) == Faults.content(live.db))
            #expect(try peer.digest() == live.digest())

            print("[live-writer] \(writer.writes) application writes (\(writer.expected.count) rows) during \(sourceBundles.count) imports of 50,000 changes (longest \(String(format: "%.2f", longestImport)) s) and \(sourceBundles.count + 1) exports; longest single write wait \(String(format: "%.3f", writer.longestWait)) s; \(writer.waitsOverOneSecond) waits over 1 s; \(writer.retries) retried writes")
        }
    }

    // MARK: - Refusals: busy, full, read-only, missing

    @Suite struct Refusals {
        static let replicaSchema = Faults.schema

        /// Runs blocks on their own threads at once and waits for all of them.
        static func together(_ blocks: [() -> Void]) {
            let group = DispatchGroup()
            for b in blocks {
                group.enter()
                Thread { b(); group.leave() }.start()
            }
            group.wait()
        }

        /// A held write lock outlasts bundlesync's 10 s busy timeout: import and export exit
        /// 75 saying the database is busy, change nothing, and succeed once it is released.
        @Test func aWriteLockHeldPastTheBusyTimeoutGives75AndARetrySucceeds() throws {
            let tmp = TempDir("bundlesync-fault-busy")
            let other = try TestReplica("other", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try other.sql(Faults.bulkInsert(2_000))
            let bundle = try other.export(to: tmp.dir("stick"))

            // One replica with a pending local change (import must seal it first) and one
            // with none (import goes straight to its merge transaction).
            let pending = try TestReplica("pending", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try pending.sql("INSERT INTO items VALUES ('p-1', 1, 'sealed')")
            _ = try pending.export(to: tmp.dir("pending-out"))
            try pending.sql("INSERT INTO items VALUES ('p-2', 2, 'pending'); UPDATE items SET n = 10 WHERE id = 'p-1'")
            let idle = try TestReplica("idle", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try idle.sql("INSERT INTO items VALUES ('i-1', 1, 'sealed')")
            _ = try idle.export(to: tmp.dir("idle-out"))

            let beforePending = try Faults.content(pending.db), beforeIdle = try Faults.content(idle.db)
            let pendingCount = try Faults.pendingChanges(pending.db)
            #expect(pendingCount == 2)

            let holders = [try Database(path: pending.db), try Database(path: idle.db)]
            for h in holders { try h.execute("BEGIN IMMEDIATE") }
            let out = tmp.dir("busy-out")
            let runs: [(String, [String])] = [
                ("import with a pending change", ["import", pending.db, bundle]),
                ("export with a pending change", ["export", pending.db, "-o", out]),
                ("import with nothing pending", ["import", idle.db, bundle]),
            ]
            let results = Locked<[Int: (CLIResult, Double)]>([:])
            Self.together(runs.enumerated().map { i, run in {
                let start = DispatchTime.now()
                let r = (try? CLI.run(run.1)) ?? CLIResult(status: -1, stdout: "", stderr: "could not run")
                results.update { $0[i] = (r, Faults.seconds(since: start)) }
            } })
            for h in holders { try h.execute("ROLLBACK") }

            for (i, run) in runs.enumerated() {
                guard let (r, seconds) = results.value[i] else { Issue.record("\(run.0): no result"); continue }
                #expect(r.status == 75, "\(run.0): exit \(r.status): \(r.stderr)")
                #expect(r.stderr.contains("busy"), "\(run.0): \(r.stderr)")
                #expect(Faults.isOneLineError(r), "\(run.0): \(r.stderr)")
                #expect(seconds >= 9 && seconds < 60, "\(run.0): gave up after \(seconds) s, not after the 10 s busy timeout")
                print("[busy] \(run.0): exit \(r.status) after \(String(format: "%.1f", seconds)) s: \(r.stderr.split(separator: "\n").first ?? "")")
            }
            #expect(Faults.bundleFiles(out).isEmpty)
            #expect(try Faults.integrity(pending.db) == "ok")
            #expect(try Faults.content(pending.db) == beforePending)
            #expect(try Faults.pendingChanges(pending.db) == pendingCount)
            #expect(try Faults.content(idle.db) == beforeIdle)

            // Released: the same commands succeed.
            try CLI.ok(["import", pending.db, bundle])
            try CLI.ok(["import", idle.db, bundle])
            let exported = try CLI.ok(["export", pending.db, "-o", out])
            #expect(try Faults.pendingChanges(pending.db) == 0)
            #expect(try Faults.content(pending.db).count == 2_002)
            #expect(try Faults.content(idle.db).count == 2_001)
            try CLI.ok(["import", idle.db, exported])
            #expect(try App.rows(idle.db, "SELECT n, s FROM items WHERE id IN ('p-1', 'p-2') ORDER BY id")
                    == [[.integer(10), .text("sealed")], [.integer(2), .text("pending")]])
        }

        /// Export into a full (and a nearly full) stick: a clear failure, no `.bsync` file, no
        /// leftover, and a later export elsewhere still carries every change.
        @Test(.enabled(if: Faults.canMountTmpfs))
        func exportOntoAFullDiskFailsCleanlyAndLosesNoChange() throws {
            let tmp = TempDir("bundlesync-fault-fullexport")
            let exporter = try TestReplica("exporter", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try exporter.sql(Faults.bulkInsert(50_000))
            let expected = try Faults.content(exporter.db)

            let stick = tmp.dir("stick")
            try Faults.mountTmpfs(stick, size: "4m")
            defer { Faults.unmount(stick); withExtendedLifetime(tmp) {} }
            for leaving in [0, 256 << 10] {
                let filler = Faults.fill(stick, leaving: leaving)
                let r = try CLI.run(["export", exporter.db, "-o", stick])
                let what = "export onto a stick with \(Faults.freeBytes(stick)) bytes free"
                #expect([74, 73, 1].contains(r.status), "\(what): exit \(r.status): \(r.stderr)")
                #expect(Faults.isOneLineError(r), "\(what): \(r.stderr)")
                #expect(r.stderr.contains(stick), "\(what): the message does not name the place: \(r.stderr)")
                #expect(r.stderr.lowercased().contains("space") || r.stderr.lowercased().contains("full"), "\(what): \(r.stderr)")
                #expect(Faults.list(stick) == ["filler"], "\(what): left \(Faults.list(stick))")
                print("[full-disk export] \(what): exit \(r.status): \(r.stderr.split(separator: "\n").first ?? "")")
                try FileManager.default.removeItem(atPath: filler)
            }
            #expect(try Faults.content(exporter.db) == expected)

            let later = try exporter.export(to: tmp.dir("elsewhere"))
            let peer = try TestReplica("peer", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try peer.importing([later])
            #expect(try Faults.content(peer.db) == expected, "a change was lost")
            #expect(try peer.digest() == exporter.digest())
        }

        /// Import of a large bundle into a replica on a nearly full disk: refused whole, the
        /// database intact and unchanged; with space freed, the retry completes.
        @Test(.enabled(if: Faults.canMountTmpfs))
        func importOntoAFullDiskRollsBackAndARetryCompletes() throws {
            let tmp = TempDir("bundlesync-fault-fullimport")
            let source = try TestReplica("source", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try source.sql(Faults.bulkInsert(50_000))
            let bundle = try CLI.ok(["export", source.db, "-o", tmp.dir("big"), "--full"])

            let disk = tmp.dir("disk")
            try Faults.mountTmpfs(disk, size: "32m")
            defer { Faults.unmount(disk); withExtendedLifetime(tmp) {} }
            let db = (disk as NSString).appendingPathComponent("target.db")
            try App.execute(db, Self.replicaSchema)
            try CLI.ok(["init", db, "--name", "target"])
            try CLI.ok(["track", db, "items"])
            try App.execute(db, "INSERT INTO items VALUES ('own-1', 1, 'mine'), ('own-2', 2, 'mine')")
            try CLI.ok(["export", db, "-o", tmp.dir("target-out")])
            try Faults.checkpoint(db)
            let before = try Faults.content(db)

            // The reference: the same replica on a roomy disk importing the same bundle.
            let reference = tmp.file("reference.db")
            try Faults.copyDatabase(db, to: reference)
            try CLI.ok(["import", reference, bundle])
            let cleanContent = try Faults.content(reference), cleanDigest = try CLI.ok(["digest", reference])

            let filler = Faults.fill(disk, leaving: 512 << 10)
            let r = try CLI.run(["import", db, bundle])
            print("[full-disk import] \(Faults.freeBytes(disk)) bytes free after the attempt: exit \(r.status): \(r.stderr.split(separator: "\n").first ?? "")")
            #expect([74, 1].contains(r.status), "exit \(r.status): \(r.stderr)")
            #expect(Faults.isOneLineError(r), "\(r.stderr)")
            #expect(r.stderr.lowercased().contains("full") || r.stderr.lowercased().contains("space"), "\(r.stderr)")
            #expect(try Faults.integrity(db) == "ok")
            #expect(try Faults.content(db) == before, "a failed import changed the database")
            #expect(try Faults.pendingChanges(db) == 0)

            try FileManager.default.removeItem(atPath: filler)
            try CLI.ok(["import", db, bundle])
            #expect(try Faults.integrity(db) == "ok")
            #expect(try Faults.content(db) == cleanContent)
            #expect(try CLI.ok(["digest", db]) == cleanDigest)
        }

        // MARK: Bad places

        /// A database file nobody may write, not even root (`chattr +i`): import and export
        /// are refused with one line naming the database, and nothing changes.
        @Test func aReadOnlyDatabaseIsRefusedWithoutDamage() throws {
            let tmp = TempDir("bundlesync-fault-rodb")
            let other = try TestReplica("other", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try other.sql("INSERT INTO items VALUES ('o-1', 1, 'theirs')")
            let bundle = try other.export(to: tmp.dir("stick"))
            let a = try TestReplica("a", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try a.sql("INSERT INTO items VALUES ('a-1', 1, 'mine')")
            try Faults.checkpoint(a.db)
            let before = try Faults.content(a.db)

            // Root ignores mode bits; the immutable attribute binds root too. Without it (a
            // filesystem that lacks it), run bundlesync as 'nobody' on a 0444 file instead.
            var wrapper: [String] = []
            if Faults.immutable(a.db, true) {
                print("[read-only db] made read-only with chattr +i")
            } else if getuid() == 0, Faults.tool(["setpriv", "--version"]).status == 0 {
                chmod(tmp.path, 0o777)
                chmod(a.db, 0o444)
                wrapper = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
                print("[read-only db] chattr unavailable: running bundlesync as nobody on a 0444 file")
            } else {
                chmod(a.db, 0o444)
            }
            defer { Faults.immutable(a.db, false); chmod(a.db, 0o644); withExtendedLifetime(tmp) {} }

            let out = tmp.dir("out")
            chmod(out, 0o777)
            for args in [["import", a.db, bundle], ["export", a.db, "-o", out]] {
                let r = try CLI.run(args, wrapper: wrapper)
                print("[read-only db] \(args[0]): exit \(r.status): \(r.stderr.split(separator: "\n").first ?? "")")
                #expect([73, 74, 1].contains(r.status), "\(args[0]): exit \(r.status): \(r.stderr)")
                #expect(Faults.isOneLineError(r), "\(args[0]): \(r.stderr)")
                #expect(r.stderr.contains("read-only") || r.stderr.contains("readonly"), "\(args[0]): \(r.stderr)")
                #expect(r.stderr.contains(a.db), "\(args[0]): the message does not name the database: \(r.stderr)")
            }
            #expect(Faults.bundleFiles(out).isEmpty)
            Faults.immutable(a.db, false)
            chmod(a.db, 0o644)
            #expect(try Faults.integrity(a.db) == "ok")
            #expect(try Faults.content(a.db) == before)
            #expect(try Faults.pendingChanges(a.db) == 1)
            try a.importing([bundle])
            _ = try a.export(to: out)
            #expect(try Faults.content(a.db).count == 2)
        }

        /// An output directory that cannot be written (immutable, or a read-only mount), and
        /// one that does not exist: 73 naming the place, no file, and no change lost.
        @Test func anUnwritableOutputGives73AndLosesNoChange() throws {
            let tmp = TempDir("bundlesync-fault-rodir")
            let a = try TestReplica("a", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try a.sql("INSERT INTO items VALUES ('a-1', 1, 'mine'), ('a-2', 2, 'mine')")
            let expected = try Faults.content(a.db)

            let readOnly = tmp.dir("read-only")
            var cleanup: () -> Void = {}
            var haveReadOnly = true
            if Faults.immutable(readOnly, true) {
                cleanup = { Faults.immutable(readOnly, false) }
            } else if Faults.canMountTmpfs {
                try Faults.mountTmpfs(readOnly, size: "1m", readOnly: true)
                cleanup = { Faults.unmount(readOnly) }
            } else {
                haveReadOnly = false
                print("[unwritable output] neither chattr +i nor a read-only mount works here; only the missing directory is checked")
            }
            defer { cleanup(); withExtendedLifetime(tmp) {} }

            var places: [(String, String)] = [(tmp.file("no/such/dir/out.bsync"), "a missing directory")]
            if haveReadOnly {
                places += [(readOnly, "a read-only directory"), ((readOnly as NSString).appendingPathComponent("named.bsync"), "a file in a read-only directory")]
            }
            for (place, what) in places {
                let r = try CLI.run(["export", a.db, "-o", place])
                print("[unwritable output] \(what): exit \(r.status): \(r.stderr.split(separator: "\n").first ?? "")")
                #expect(r.status == 73, "\(what): exit \(r.status): \(r.stderr)")
                #expect(Faults.isOneLineError(r), "\(what): \(r.stderr)")
                let named = (place as NSString).deletingLastPathComponent
                #expect(r.stderr.contains(place) || r.stderr.contains(named), "\(what): \(r.stderr)")
            }
            cleanup()
            cleanup = {}
            #expect(Faults.list(readOnly).isEmpty)

            // The failed exports sealed the changes; the next export still carries them.
            let later = try a.export(to: tmp.dir("fine"))
            let peer = try TestReplica("peer", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try peer.importing([later])
            #expect(try Faults.content(peer.db) == expected)
        }

        /// Missing inputs exit 66 and a directory given as the database exits 64, each with
        /// one line naming the path.
        @Test func missingFilesAndADirectoryAsDatabase() throws {
            let tmp = TempDir("bundlesync-fault-missing")
            let a = try TestReplica("a", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try a.sql("INSERT INTO items VALUES ('a-1', 1, 'mine')")
            let bundle = try a.export(to: tmp.dir("stick"))
            let missingDB = tmp.file("missing.db"), missingBundle = tmp.file("missing.bsync")
            let directory = tmp.dir("a-directory")
            let cases: [([String], Int32, String)] = [
                (["import", missingDB, bundle], 66, missingDB),
                (["export", missingDB, "-o", tmp.dir("out")], 66, missingDB),
                (["status", missingDB], 66, missingDB),
                (["import", a.db, missingBundle], 66, missingBundle),
                (["verify", missingBundle], 66, missingBundle),
                (["export", a.db, "--since", tmp.file("missing-vector.json")], 66, tmp.file("missing-vector.json")),
                (["import", directory, bundle], 64, directory),
                (["export", directory, "-o", tmp.dir("out")], 64, directory),
                (["status", directory], 64, directory),
            ]
            for (args, code, path) in cases {
                let r = try CLI.run(args)
                #expect(r.status == code, "\(args): exit \(r.status): \(r.stderr)")
                #expect(Faults.isOneLineError(r), "\(args): \(r.stderr)")
                #expect(r.stderr.contains(path), "\(args): the message does not name '\(path)': \(r.stderr)")
            }
            #expect(!FileManager.default.fileExists(atPath: missingDB), "a command created the missing database")
        }

        /// A database whose write lock another program holds: 75 with one line that says it is
        /// busy and names the database.
        @Test func aLockedDatabaseGives75NamingIt() throws {
            let tmp = TempDir("bundlesync-fault-locked")
            let a = try TestReplica("a", in: tmp, schema: Self.replicaSchema, tables: ["items"])
            try a.sql("INSERT INTO items VALUES ('a-1', 1, 'mine')")
            let holder = try Database(path: a.db)
            try holder.execute("BEGIN IMMEDIATE")
            let r = try CLI.run(["export", a.db, "-o", tmp.dir("out")])
            try holder.execute("ROLLBACK")
            print("[locked] export: exit \(r.status): \(r.stderr.split(separator: "\n").first ?? "")")
            #expect(r.status == 75, "exit \(r.status): \(r.stderr)")
            #expect(Faults.isOneLineError(r), "\(r.stderr)")
            #expect(r.stderr.contains("busy") || r.stderr.contains("locked"), "\(r.stderr)")
            #expect(r.stderr.contains(a.db), "the message does not name the database: \(r.stderr)")
            #expect(try Faults.pendingChanges(a.db) == 1)
        }
    }
}
