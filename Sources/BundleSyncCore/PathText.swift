/// Paths as plain strings, split and joined in plain string code, not by Foundation's path methods,
/// which trap on some inputs in corelibs Foundation.
package enum PathText {
    /// The last component of `path` ("b.bsync" of "a/b.bsync"; the path itself without a
    /// slash).
    package static func fileName(of path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/"), trimmed != "/" else { return trimmed }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// The directory part of `path`: "" for a bare name, "/" for a file at the root.
    package static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `name` inside `directory`.
    package static func join(_ directory: String, _ name: String) -> String {
        if directory.isEmpty { return name }
        return directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
