// Debian's sqlite3.h declares the session and pre-update APIs only when these are defined.
// The shared library is built with both, so declaring them here is enough.
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

// Swift cannot call C's variadic functions: this names the one process-wide setting the
// command-line tool makes before SQLite starts.
static inline int bundlesync_sqlite3_config_memstatus(int on) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, on);
}
