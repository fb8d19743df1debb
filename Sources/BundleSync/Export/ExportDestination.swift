import BundleSyncCore
import BundleSyncFormat
import Foundation

/// Where `export -o PATH` writes, decided before anything is sealed.
///
/// An existing directory receives a file named after the bundle. Anything else must be a
/// bundle file: an existing regular file is replaced, and a path that does not exist is a
/// file only when it ends in `.bsync` and its directory exists. So a stick that is not
/// mounted is an error rather than a file written beside the mount point, and nothing that
/// is not a regular file (a device, a FIFO, a symbolic link) is ever replaced.
package enum ExportDestination {
    case directory(String)
    case file(String)
    /// `-`: the bundle goes to standard output, for a pipe or a redirection (never a terminal).
    case standardOutput

    /// The path that means standard output.
    package static let standardStream = "-"

    package static func resolve(_ path: String) throws -> ExportDestination {
        if path == standardStream {
            guard isatty(STDOUT_FILENO) == 0 else {
                throw BundleSyncError(.usage, "refusing to write a bundle to a terminal",
                                      hint: "redirect standard output to a file or a pipe, or give -o a directory or a file name")
            }
            return .standardOutput
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            switch st.st_mode & S_IFMT {
            case S_IFDIR: return .directory(path)
            case S_IFREG: return .file(path)
            case S_IFLNK:
                var target = stat()
                if stat(path, &target) == 0, target.st_mode & S_IFMT == S_IFDIR { return .directory(path) }
                throw BundleSyncError(.cannotCreate, "'\(path)' is a symbolic link; bundlesync replaces only bundle files",
                                      hint: "give a directory, or the name of a new file ending in .\(BundleFile.fileExtension)")
            default:
                throw BundleSyncError(.cannotCreate, "'\(path)' is not a regular file or a directory; bundlesync replaces only bundle files",
                                      hint: "give a directory, or the name of a new file ending in .\(BundleFile.fileExtension)")
            }
        }
        guard path.hasSuffix(".\(BundleFile.fileExtension)") else {
            throw BundleSyncError(.cannotCreate, "no such directory '\(path)': is the stick mounted?",
                                  hint: "give an existing directory, or a file name ending in .\(BundleFile.fileExtension)")
        }
        let parent = PathText.directory(of: path)
        var dir = stat()
        guard parent.isEmpty || (stat(parent, &dir) == 0 && dir.st_mode & S_IFMT == S_IFDIR) else {
            throw BundleSyncError(.cannotCreate, "no such directory '\(parent)': is the stick mounted?")
        }
        return .file(path)
    }

    /// A shared folder for `sync`: it must be an existing directory.
    package static func requireDirectory(_ path: String) throws {
        if path == standardStream {
            throw BundleSyncError(.usage, "sync needs the shared folder; '-' (standard output) is not one",
                                  hint: "give the directory that holds the bundles, for example the stick's folder")
        }
        guard path != standardStream, case .directory = try resolve(path) else {
            throw BundleSyncError(.usage, "'\(path)' is a file; sync needs the shared folder",
                                  hint: "give the directory that holds the bundles, for example the stick's folder")
        }
    }
}
