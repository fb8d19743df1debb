import Foundation
import Testing

/// Golden files re-recorded by `BUNDLESYNC_RECORD=1` (see TestSupport.swift).
package enum Recording {
    /// Whether this run re-records golden files instead of comparing with them.
    package static let isOn = TestEnvironment.isOn(TestEnvironment.recordVariable)

    /// Fails the current test, saying that it re-recorded `what`: a recording run never passes,
    /// so a golden file cannot change without someone reading the diff.
    package static func recorded(_ what: String, changed: Bool? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        let change = changed.map { $0 ? " (changed)" : " (unchanged)" } ?? ""
        Issue.record("re-recorded \(what)\(change) because \(TestEnvironment.recordVariable) is set; review the diff, then run again without it",
                     sourceLocation: sourceLocation)
    }
}

/// Compares `actual` with the golden file `golden` (a path from the checkout's root), the way
/// swift-argument-parser's `assertSnapshot` does: a difference fails with `comment`; under
/// `BUNDLESYNC_RECORD=1` the file is first rewritten with `actual` and the test fails saying so.
package func assertSnapshot(_ actual: String, matches golden: String, _ comment: @autoclosure () -> Comment? = nil,
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
    let path = Checkout.path(golden)
    if Recording.isOn {
        let before = try? String(contentsOfFile: path, encoding: .utf8)
        try actual.write(toFile: path, atomically: true, encoding: .utf8)
        Recording.recorded(golden, changed: before != actual, sourceLocation: sourceLocation)
    }
    let expected = try String(contentsOfFile: path, encoding: .utf8)
    #expect(actual == expected, comment(), sourceLocation: sourceLocation)
}
