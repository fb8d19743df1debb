import BundleSyncCore

import Foundation

/// zstd compression of one buffer, begun on a thread of its own so that the caller can go
/// on meanwhile (an import merges a batch while the batch's body is compressed for
/// keeping); ``result()`` waits for it.
///
/// A buffer smaller than ``threadThreshold`` is compressed on the caller's thread when
/// ``result()`` is called: a thread costs more than it saves there.
package final class PendingCompression: @unchecked Sendable {
    /// The smallest input given a thread of its own.
    package static let threadThreshold = 256 << 10

    private let input: [UInt8]
    private let level: Int32
    private let condition = NSCondition()
    /// Set once by the compressing thread, under `condition`.
    private var outcome: Result<[UInt8], any Error>?

    package init(_ input: [UInt8], level: Int32 = 3) {
        self.input = input
        self.level = level
        guard input.count >= Self.threadThreshold else { return }
        let thread = Thread { [self] in
            let done = Result { try ZstdCompressor.compress(input, level: level) }
            condition.lock()
            outcome = done
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "bundlesync compression"
        thread.start()
    }

    /// The compressed bytes (one zstd frame), once they are ready.
    package func result() throws -> [UInt8] {
        guard input.count >= Self.threadThreshold else { return try ZstdCompressor.compress(input, level: level) }
        condition.lock()
        defer { condition.unlock() }
        while outcome == nil { condition.wait() }
        return try outcome!.get()
    }
}
