@testable import BundleSync
import BundleSyncTestSupport
import Foundation
import Testing

/// Which format version an export writes: 3 only for peers that said they read it, so that a
/// fleet upgraded one device at a time goes on reading every bundle.
@Suite struct FormatVersionChoiceTests {
    static func version(of path: String) throws -> UInt16 { try BundleReader(path: path).version }

    static func write(_ app: Database, _ id: String) throws {
        try app.run("INSERT INTO notes(id, title) VALUES (?, ?)", [.text(id), .text("t")])
    }

    @Test func aReplicaWritesVersion3OnlyOnceEveryPeerSaidItReadsIt() throws {
        let (a, appA) = try goldenSchemaReplica("a.db")
        let (b, appB) = try goldenSchemaReplica("b.db")
        try Self.write(appA, "a-1")
        // A knows no peer: its bundle is one that any release since encryption reads.
        let first = try a.export(to: temporaryPath("a-1.bsync"), target: .automatic)
        #expect(try Self.version(of: first.path) == 2)
        #expect(try BundleReader(path: first.path).header.optionalCapabilities.contains(BundleHeader.readsFormat3Capability))
        #expect(try b.importBundle(first.path).status == .applied)
        // B heard from A, which reads version 3.
        try Self.write(appB, "b-1")
        let reply = try b.export(to: temporaryPath("b-1.bsync"), target: .automatic)
        #expect(try Self.version(of: reply.path) == 3)
        #expect(try Self.version(of: try b.export(to: temporaryPath("b-full.bsync"), target: .full).path) == 3)
        #expect(try a.importBundle(reply.path).status == .applied)

        // A peer on an older release (the golden bundle of version 2 says nothing of version
        // 3): B writes version 2 again, for every target that may reach it.
        #expect(try b.importBundle(fixture("bundles/v2-plain.bsync")).status == .applied)
        try Self.write(appB, "b-2")
        #expect(try Self.version(of: try b.export(to: temporaryPath("b-2.bsync"), target: .automatic).path) == 2)
        // Its status says which peer keeps the bundles in version 2.
        let peers = try b.status().peers
        #expect(peers.compactMap(\.name).sorted() == ["golden", "reader"])
        #expect(peers.filter { !$0.readsFormat3 }.map(\.name) == ["golden"])
        #expect(try Self.version(of: try b.export(to: temporaryPath("b-2-golden.bsync"), target: .peers(["golden"])).path) == 2)
        // Named peers that all read version 3 get it.
        #expect(try Self.version(of: try b.export(to: temporaryPath("b-2-a.bsync"), target: .peers([a.id.hex])).path) == 3)
        // Once the older peer is forgotten, the rest read version 3.
        _ = try b.forget(["golden"])
        try Self.write(appB, "b-3")
        let last = try b.export(to: temporaryPath("b-3.bsync"), target: .automatic)
        #expect(try Self.version(of: last.path) == 3)
        // A holds every row B wrote, whichever version carried them.
        #expect(try a.importBundle(last.path).status == .applied)
        #expect(try appA.rows("SELECT id FROM notes WHERE id LIKE 'b-%' ORDER BY id") == [[.text("b-1")], [.text("b-2")], [.text("b-3")]])
    }
}
