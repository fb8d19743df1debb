import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// The command line never crashes, never clobbers what is not a bundle, and never writes a
/// file where a directory was meant.
@Suite struct CommandLineSafetyTests {
    func replica(_ tmp: TempDir) throws -> TestReplica {
        let a = try TestReplica("a", in: tmp, schema: "CREATE TABLE t(id TEXT PRIMARY KEY, v);", tables: ["t"])
        try a.sql("INSERT INTO t VALUES ('x', 1)")
        return a
    }

    @Test func anOutputThatIsNeitherADirectoryNorABundleFileIsRefusedBeforeSealing() throws {
        let tmp = TempDir()
        let a = try replica(tmp)
        let fifo = tmp.file("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let link = tmp.file("link.bsync")
        #expect(symlink(tmp.file("elsewhere.bsync"), link) == 0)
        let cwd = FileManager.default.currentDirectoryPath
        for (output, fragment) in [(tmp.file("a"), "is the stick mounted?"),
                                   (tmp.file("missing/x.bsync"), "is the stick mounted?"),
                                   (fifo, "not a regular file"), (link, "symbolic link")] {
            let r = try CLI.run(["export", a.db, "-o", output])
            #expect(r.status == 73, "-o \(output): \(r.stderr)")
            #expect(r.stderr.contains(fragment), "-o \(output): \(r.stderr)")
            #expect(!r.stderr.contains("Fatal error"))
        }
        #expect(!FileManager.default.fileExists(atPath: tmp.file("a")))
        #expect(!FileManager.default.fileExists(atPath: cwd + "/-"))
        #expect(!FileManager.default.fileExists(atPath: tmp.file("elsewhere.bsync")))
        var st = stat()
        #expect(lstat(fifo, &st) == 0 && st.st_mode & S_IFMT == S_IFIFO, "the FIFO is still a FIFO")
        // Nothing was sealed by the refused exports: the change is still pending.
        #expect(try a.status()["pending_changes"] as? Int == 1)
        // A new file name ending in .bsync, and an existing directory, are fine.
        #expect(try CLI.ok(["export", a.db, "-o", tmp.file("new.bsync")]) == tmp.file("new.bsync"))
        #expect(try a.export(to: tmp.dir("stick")).hasPrefix(tmp.file("stick")))
    }

    @Test func syncNeedsAnExistingFolder() throws {
        let tmp = TempDir()
        let a = try replica(tmp)
        let bundle = try a.export(to: tmp.dir("stick"))
        let before = try Data(contentsOf: URL(fileURLWithPath: bundle))
        let onFile = try CLI.run(["sync", a.db, bundle])
        #expect(onFile.status == 64, "\(onFile.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: bundle)) == before, "sync left the bundle it was given alone")
        let missing = try CLI.run(["sync", a.db, tmp.file("not-mounted")])
        #expect(missing.status == 73, "\(missing.stderr)")
        #expect(missing.stderr.contains("is the stick mounted?"))
        #expect(!FileManager.default.fileExists(atPath: tmp.file("not-mounted")))
    }

    @Test func anUnwritableStandardOutputIsAnIOErrorNotACrash() throws {
        let tmp = TempDir()
        let a = try replica(tmp)
        let r = try CLI.run(["status", a.db], wrapper: ["sh", "-c", "exec \"$0\" \"$@\" >/dev/full"])
        #expect(r.status == 74, "\(r.stderr)")
        #expect(r.stderr.contains("cannot write the result to standard output"), "\(r.stderr)")
        let quiet = try CLI.run(["digest", a.db], wrapper: ["sh", "-c", "exec \"$0\" \"$@\" 2>/dev/full"])
        #expect(quiet.status == 0)
    }

    @Test func aFIFOIsRefusedNotWaitedOn() throws {
        let tmp = TempDir()
        let a = try replica(tmp)
        let folder = tmp.dir("stick")
        _ = try a.export(to: folder)
        let fifo = PathText.join(folder, "b-1-00000000.bsync")
        #expect(mkfifo(fifo, 0o600) == 0)
        for args in [["verify", fifo], ["inspect", fifo], ["import", a.db, fifo]] {
            let r = try CLI.run(args, wrapper: ["timeout", "20"])
            #expect(r.status == 64, "\(args[0]): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("is not a regular file"), "\(args[0]): \(r.stderr)")
        }
        // In a folder, it is not taken for a bundle at all.
        let sync = try CLI.run(["sync", a.db, folder], wrapper: ["timeout", "20"])
        #expect(sync.status == 0, "\(sync.stderr)")
    }

    @Test func aFolderWithoutBundlesIsSaidToBeEmpty() throws {
        let tmp = TempDir()
        let a = try replica(tmp)
        let empty = tmp.dir("empty")
        let v = try CLI.run(["verify", empty])
        #expect(v.status == 66, "\(v.stderr)")
        #expect(v.stderr.contains("no *.bsync file"), "\(v.stderr)")
        let i = try CLI.run(["import", a.db, empty])
        #expect(i.status == 0, "\(i.stderr)")
        #expect(i.stderr.contains("holds no *.bsync file"), "\(i.stderr)")
    }

    @Test func demoRefusesAFolderThatIsNotEmptyAndTrackEscapesNames() throws {
        let tmp = TempDir()
        let busy = tmp.dir("busy")
        try "mine".write(toFile: tmp.file("busy/notes.txt"), atomically: true, encoding: .utf8)
        let d = try CLI.run(["demo", busy])
        #expect(d.status == 73, "\(d.stderr)")
        #expect(d.stderr.contains("is not empty"))
        let db = tmp.file("n.db")
        try App.execute(db, "CREATE TABLE \"two\nlines\"(id TEXT PRIMARY KEY, v)")
        try CLI.ok(["init", db])
        let t = try CLI.run(["track", db, "two\nlines"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stderr.contains("'two\\u{a}lines'"), "\(t.stderr)")
    }

    @Test func helpForACommandThatDoesNotExistIsAUsageError() throws {
        let r = try CLI.run(["help", "nosuch"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("no command is called 'nosuch'"))
        #expect(try CLI.run(["help", "track"]).status == 0)
    }
}
