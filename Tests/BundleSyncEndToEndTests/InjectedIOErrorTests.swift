import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Failing system calls, injected for real with `strace -e inject`: every I/O error is exit
/// status 74 with a message naming the file, and nothing is left behind.
@Suite(.enabled(if: Strace.available, "strace is not installed; the injected I/O error tests are skipped"))
struct InjectedIOErrorTests {
    func replica(_ tmp: TempDir, _ name: String = "a") throws -> TestReplica {
        let r = try TestReplica(name, in: tmp, schema: "CREATE TABLE t(id TEXT PRIMARY KEY, v);", tables: ["t"])
        try r.sql("INSERT INTO t VALUES ('\(name)', 1)")
        return r
    }

    /// Everything in `dir`, hidden files included.
    func listing(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    @Test func openingABundleThatFailsIsAnIOError() throws {
        let tmp = TempDir()
        let a = try replica(tmp), b = try replica(tmp, "b")
        let bundle = try a.export(to: tmp.dir("stick"))
        for args in [["import", b.db, bundle], ["verify", bundle], ["inspect", bundle]] {
            let r = try CLI.run(args, wrapper: Strace.failing("openat", with: "EIO", on: bundle))
            #expect(r.status == 74, "\(args[0]): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("cannot read '\(bundle)': input/output error"), "\(args[0]): \(r.stderr)")
        }
        #expect((try b.status()["vector"] as? [String: Any])?.count == 1, "nothing of the bundle was imported")
    }

    @Test func openingOrReadingTheDatabaseThatFailsIsAnIOError() throws {
        let tmp = TempDir()
        let a = try replica(tmp)
        let opened = try CLI.run(["status", a.db], wrapper: Strace.failing("openat", with: "EIO", on: a.db))
        #expect(opened.status == 74, "\(opened.stderr)")
        #expect(opened.stderr.contains("'\(a.db)'"), "\(opened.stderr)")
        let read = try CLI.run(["export", a.db, "-o", tmp.dir("stick")], wrapper: Strace.failing("pread64", with: "EIO", on: a.db))
        #expect(read.status == 74, "\(read.stderr)")
        #expect(read.stderr.contains("'\(a.db)'") && read.stderr.contains("I/O error"), "\(read.stderr)")
        #expect(!read.stderr.contains("malformed"))
        #expect(listing(tmp.file("stick")).isEmpty)
    }

    @Test func aRenameThatFailsIsAnIOErrorAndLeavesNothing() throws {
        let tmp = TempDir()
        let a = try replica(tmp)
        let stick = tmp.dir("stick")
        let r = try CLI.run(["export", a.db, "-o", stick], wrapper: Strace.failing("rename,renameat,renameat2", with: "EIO"))
        #expect(r.status == 74, "\(r.stderr)")
        #expect(r.stderr.contains("cannot move the finished bundle to '\(stick)/a-1-"), "\(r.stderr)")
        #expect(listing(stick).isEmpty, "\(listing(stick))")
    }

    @Test func aDirectoryFlushThatFailsIsReported() throws {
        let tmp = TempDir()
        let a = try replica(tmp)
        let stick = tmp.dir("stick")
        let r = try CLI.run(["export", a.db, "-o", stick], wrapper: Strace.failing("fsync", with: "EIO", on: stick))
        #expect(r.status == 74, "\(r.stderr)")
        #expect(r.stderr.contains("could not be flushed") && r.stderr.contains("'\(stick)/a-1-"), "\(r.stderr)")
        #expect(!listing(stick).contains { $0.hasSuffix(".tmp") })
    }

    @Test func aTemporaryFileThatCannotBeOpenedLeavesNothingAndSaysWhy() throws {
        let tmp = TempDir()
        let a = try replica(tmp)
        let stick = tmp.dir("stick")
        for (errno, code, reason) in [("EIO", Int32(74), "input/output error"), ("EROFS", 73, "read-only file system"),
                                      ("EACCES", 73, "permission denied")] {
            let r = try CLI.run(["export", a.db, "-o", stick], wrapper: Strace.failingTemporaryFile(of: "a", in: stick, with: errno))
            #expect(r.status == code, "\(errno): \(r.stderr)")
            #expect(r.stderr.contains("cannot create a bundle in '\(stick)': \(reason)"), "\(errno): \(r.stderr)")
            #expect(!r.stderr.contains("check that the directory exists, is writable and has space"))
            #expect(listing(stick).isEmpty, "\(errno): \(listing(stick))")
        }
    }

    @Test func unreadableArgumentsAreRefusedNotTakenForNone() throws {
        let tmp = TempDir()
        let a = try replica(tmp)
        let stick = tmp.dir("stick")
        let wrapper = ["strace", "-f", "-o", "/dev/null", "-e", "trace=openat,open", "-e", "inject=openat,open:error=EACCES",
                       "-P", "/proc/self/cmdline", "-P", "/proc/self/maps"]
        for args in [["export", a.db, "-o", stick], ["import", a.db, stick]] {
            let r = try CLI.run(args, wrapper: wrapper)
            #expect(r.status != 0, "\(args[0]): \(r.stdout)")
            #expect(!r.stdout.contains("USAGE") && !r.stdout.contains("SUBCOMMANDS"), "no help is printed")
            #expect(r.stderr.contains("cannot read this command's arguments"), "\(r.stderr)")
        }
        #expect(listing(stick).isEmpty)
        #expect(try a.status()["pending_changes"] as? Int == 1, "nothing was done")
    }
}

/// Runs the binary under `strace` with one system call made to fail.
enum Strace {
    static let available: Bool = ["/usr/bin/strace", "/bin/strace"].contains { FileManager.default.isExecutableFile(atPath: $0) }

    /// `calls` fail with `errno`, only where they name `path` when one is given.
    static func failing(_ calls: String, with errno: String, on path: String? = nil) -> [String] {
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=\(calls)", "-e", "inject=\(calls):error=\(errno)"]
            + (path.map { ["-P", $0] } ?? [])
    }

    /// Opening the temporary file an export into `folder` writes first fails with `errno`.
    /// Its name holds the process id, so strace runs detached (`-D`) and the traced command
    /// keeps the shell's pid, which names the file.
    static func failingTemporaryFile(of replica: String, in folder: String, with errno: String) -> [String] {
        ["sh", "-c", "exec strace -D -qq -o /dev/null -e trace=openat -e inject=openat:error=\(errno) -P \"$D/.export-\(replica).$$.tmp\" \"$0\" \"$@\"".replacingOccurrences(of: "$D", with: folder)]
    }
}
