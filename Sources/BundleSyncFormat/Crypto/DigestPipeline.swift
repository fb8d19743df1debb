import BundleSyncCore
import BundleSyncMerge

import Foundation

/// SHA-256 digests of byte streams computed on a thread of their own, so that hashing a
/// bundle runs beside decompressing and checking it.
///
/// Blocks are hashed in the order they are handed over, each into the stream it names. A
/// block is borrowed, not copied: its bytes must stay valid and unchanged until
/// ``wait(for:)`` has returned for its ticket, or ``finish()`` has. Small inputs are not
/// worth a thread: a pipeline made with `threaded: false` hashes each block as it is handed
/// over.
package final class DigestPipeline: @unchecked Sendable {
    /// Identifies a handed-over block; ``wait(for:)`` returns once it is hashed.
    package typealias Ticket = Int

    private let condition = NSCondition()
    private var hashers: [Hasher256]
    private var queue: [(stream: Int, bytes: UnsafeRawBufferPointer)] = []
    private var queueHead = 0
    private var submitted: Ticket = 0
    private var completed: Ticket = 0
    private var stopping = false
    private var running: Bool

    /// - Parameter hashers: One per stream, possibly already fed.
    package init(_ hashers: [Hasher256], threaded: Bool) {
        self.hashers = hashers
        running = threaded
        if threaded {
            let thread = Thread { [self] in work() }
            thread.name = "bundlesync digests"
            thread.start()
        }
    }

    /// Hands over a block for `stream`.
    @discardableResult
    package func hash(_ bytes: UnsafeRawBufferPointer, into stream: Int) -> Ticket {
        guard !bytes.isEmpty else { return submitted }
        condition.lock()
        defer { condition.unlock() }
        submitted += 1
        if running {
            queue.append((stream, bytes))
            condition.broadcast()
        } else {
            hashers[stream].update(bytes)
            completed = submitted
        }
        return submitted
    }

    /// Waits until the block of `ticket`, and every block handed over before it, is hashed.
    package func wait(for ticket: Ticket) {
        condition.lock()
        while completed < ticket { condition.wait() }
        condition.unlock()
    }

    /// Waits for every block, stops the thread and returns the digest of each stream.
    package func finish() -> [Digest32] {
        wait(for: submitted)
        cancel()
        return hashers.map { $0.finalize() }
    }

    /// Stops the thread once it has finished the block in hand; blocks not started are
    /// dropped. The owner of the blocks must call this (or ``finish()``) before freeing them;
    /// the thread keeps the pipeline alive until then.
    package func cancel() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }

    private func work() {
        condition.lock()
        while true {
            while queueHead == queue.count && !stopping { condition.wait() }
            if stopping { break }
            let (stream, bytes) = queue[queueHead]
            queueHead += 1
            if queueHead == queue.count {
                queue.removeAll(keepingCapacity: true)
                queueHead = 0
            }
            var hasher = hashers[stream]
            condition.unlock()
            hasher.update(bytes)
            condition.lock()
            hashers[stream] = hasher
            completed += 1
            condition.broadcast()
        }
        running = false
        condition.broadcast()
        condition.unlock()
    }
}
