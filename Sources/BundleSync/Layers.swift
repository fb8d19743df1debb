// The sync layer stands on every layer below it; importing BundleSync brings them all, so
// the command line and the tests see one library.
@_exported import BundleSyncCore
@_exported import BundleSyncFormat
@_exported import BundleSyncMerge
@_exported import BundleSyncStore
