import Foundation

/// The seeds the property tests run, chosen through the environment:
///
/// - `BUNDLESYNC_PROPERTY_SEED=S` runs exactly seed S;
/// - `BUNDLESYNC_PROPERTY_SEEDS=N` runs N seeds from `BUNDLESYNC_PROPERTY_SEED_BASE` (1);
/// - otherwise seeds 1, 2 and 3, or as many as the suite asks for.
///
/// `BUNDLESYNC_PROPERTY_ROUNDS` sets the rounds per seed, and each suite reads it itself.
enum PropertySeeds {
    static let environment = ProcessInfo.processInfo.environment

    /// The seeds to run, and a complaint about a malformed environment variable (reported by
    /// every case rather than crashing the test process or silently running nothing).
    static func plan(defaultCount: UInt64 = 3) -> (seeds: [UInt64], problem: String?) {
        func number(_ name: String) -> (UInt64?, String?) {
            guard let text = environment[name] else { return (nil, nil) }
            guard let v = UInt64(text.trimmingCharacters(in: .whitespaces)) else {
                return (nil, "\(name) must be an unsigned integer, got '\(text)'")
            }
            return (v, nil)
        }
        let (seed, e1) = number("BUNDLESYNC_PROPERTY_SEED")
        let (count, e2) = number("BUNDLESYNC_PROPERTY_SEEDS")
        let (base, e3) = number("BUNDLESYNC_PROPERTY_SEED_BASE")
        let (_, e4) = number("BUNDLESYNC_PROPERTY_ROUNDS")
        let problem = [e1, e2, e3, e4].compactMap { $0 }.first
        if let seed { return ([seed], problem) }
        if let count, count > 0 { return ((0..<count).map { (base ?? 1) &+ $0 }, problem) }
        return ((1...defaultCount).map { $0 }, problem)
    }

    /// How to run one seed of `suite` again, with the same number of rounds.
    static func replayCommand(_ seed: UInt64, suite: String) -> String {
        let rounds = environment["BUNDLESYNC_PROPERTY_ROUNDS"].map { "BUNDLESYNC_PROPERTY_ROUNDS=\($0) " } ?? ""
        return "\(rounds)BUNDLESYNC_PROPERTY_SEED=\(seed) swift test --filter \(suite)"
    }
}
