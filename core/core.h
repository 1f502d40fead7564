/*
 * core.h - the bottom layer every lockbox module stands on: logging, the
 * error type that carries a user-facing message, configuration (OpenSSL
 * NCONF), the SQLite store (open, migrate, transactions), the hash-chained
 * audit log and small file and string helpers.
 *
 * core calls nothing above it.  Everything here is thread-safe except where
 * a contract says otherwise; a sqlite3 handle belongs to one thread at a time.
 */
#ifndef LOCKBOX_CORE_H
#define LOCKBOX_CORE_H

#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/types.h>
#include <sqlite3.h>

/* ------------------------------------------------------------------ */
/* Errors                                                              */

/*
 * The class of a failure: decides the CLI exit code and the HTTP status.
 * LB_EINVAL is bad input (exit 1, 400), LB_ENOTFOUND 404, LB_ECONFLICT 409
 * (state forbids it: already revoked, CA exists), LB_EFORBIDDEN 403,
 * LB_ETOOBIG 413, LB_EINTERNAL everything else (500).
 */
enum lb_errcode {
	LB_OK = 0,
	LB_EINVAL,
	LB_ENOTFOUND,
	LB_ECONFLICT,
	LB_EFORBIDDEN,
	LB_ETOOBIG,
	LB_EINTERNAL,
	LB_EUNAUTH,     /* credentials missing or wrong: 401 */
	LB_ETHROTTLED,  /* too many failures, try later: 429 */
};

/* A failure's class and its one-line message for the user. */
typedef struct lb_err {
	enum lb_errcode code;
	char msg[512];
} lb_err;

/*
 * Records a failure in err (which may be NULL) unless one is already
 * recorded: the first, most specific message wins.  Always returns -1 so
 * that callers can write `return lb_err_set(err, ...)`.
 */
int lb_err_set(lb_err *err, enum lb_errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to LB_OK with an empty message. */
void lb_err_clear(lb_err *err);

/* The HTTP status matching an error class (400, 401, 403, 404, 409, 413,
 * 429, 500). */
int lb_err_http_status(enum lb_errcode code);

/* ------------------------------------------------------------------ */
/* Logging (stderr in the foreground, syslog for the daemon)           */

/* Sets the program name and the sink; call once at start-up. */
void log_init(const char *progname, bool use_syslog);
/* 0 = warnings and errors, 1 = info, 2 = debug. */
void log_set_verbosity(int level);
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As log_warnx, appending strerror(errno); errno is preserved. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Logs a line naming the failed call and drains OpenSSL's error queue into
 * the log, both at debug level (`lockbox -v -v`): the caller reports the
 * failure to the user through lb_err.  Returns -1.
 */
int log_openssl(const char *what);
/*
 * A child process's own name in the log ("lockbox-signer"); with syslog
 * the connection is reopened now, so that it exists before the child
 * gives up opening files.
 */
void log_rename(const char *progname);

/* ------------------------------------------------------------------ */
/* Configuration: lockbox.conf in OpenSSL config syntax (NCONF)        */

typedef struct core_conf core_conf;

/*
 * Loads a config file with OpenSSL's NCONF parser.  Refuses files larger
 * than 1 MiB, NUL bytes and the .include/.pragma directives (the whole
 * configuration is one file).  Returns NULL with err set (naming the line)
 * on failure.
 */
core_conf *core_conf_load(const char *path, lb_err *err);
/* Parses config text from memory (used by tests and the fuzzer). */
core_conf *core_conf_load_mem(const char *text, size_t len, lb_err *err);
/* An empty configuration: every getter returns its default. */
core_conf *core_conf_new_empty(void);
void core_conf_free(core_conf *conf);

/* The value of name in section, or def when absent.  Borrowed. */
const char *core_conf_get(const core_conf *conf, const char *section,
    const char *name, const char *def);
/*
 * A whole number in [min, max], optionally a duration with a unit suffix
 * (s, m, h, d; the result in seconds); def when absent.  Returns -1 with err
 * set when present but malformed or out of range.
 */
int core_conf_get_long(const core_conf *conf, const char *section,
    const char *name, long def, long min, long max, long *out, lb_err *err);
/* A byte count in [min, max] with an optional k (KiB) or m (MiB) suffix;
 * def when absent; -1 with err when malformed or out of range. */
int core_conf_get_size(const core_conf *conf, const char *section,
    const char *name, size_t def, size_t min, size_t max, size_t *out,
    lb_err *err);
/* yes/no/true/false/on/off/1/0; def when absent; -1 with err if neither. */
int core_conf_get_bool(const core_conf *conf, const char *section,
    const char *name, bool def, bool *out, lb_err *err);
/*
 * Parses a duration such as "30", "90s", "15m", "24h", "7d" into seconds.
 * Returns -1 on malformed input.
 */
int core_parse_duration(const char *s, long *out);

/* ------------------------------------------------------------------ */
/* Files and paths                                                     */

/* dir + "/" + name, malloc'ed; NULL on allocation failure. */
char *core_path(const char *dir, const char *name);
/*
 * Opens path read-only (close-on-exec) and fstat()s it into *st; refuses a
 * directory.  The descriptor, or -1 with err (LB_ENOTFOUND when missing).
 */
int core_file_open(const char *path, struct stat *st, lb_err *err);
/*
 * Reads a whole file of at most max bytes into a malloc'ed buffer with a
 * trailing NUL not counted in *len.  -1 with err set on failure or when the
 * file is larger than max (LB_ETOOBIG).
 */
int core_file_read(const char *path, size_t max, unsigned char **out,
    size_t *len, lb_err *err);
/*
 * Overwrites the regular file at path with zeros (fsync'ed), then removes
 * it: for secrets the file held.  0 when it is gone (or never was), -1 with
 * err.
 */
int core_file_shred(const char *path, lb_err *err);
/*
 * Writes buf to path atomically: a temporary file in the same folder with
 * the given mode, fsync'ed, renamed over path.  With excl, fails with
 * LB_ECONFLICT when path already exists.
 */
int core_file_write(const char *path, const void *buf, size_t len,
    mode_t mode, bool excl, lb_err *err);
/*
 * Writes all of buf to fd, again after EINTR and short writes.  -1 with
 * err naming path (what fd is, for the message) on a failed write.
 */
int core_fd_write_all(int fd, const void *buf, size_t len, const char *path,
    lb_err *err);
/* Reads a one-line secret (passphrase) file, stripping the newline. */
char *core_secret_read(const char *path, lb_err *err);
/* Frees a NUL-terminated secret after cleansing it. */
void core_secret_free(char *s);

/* ------------------------------------------------------------------ */
/* Privileges (priv.c)                                                 */

/* The uid and primary gid of account name; refuses root. */
int core_user_lookup(const char *name, uid_t *uid, gid_t *gid, lb_err *err);
/*
 * Drops to uid/gid for good (supplementary groups, real, effective and
 * saved ids), checks that root cannot be regained, and turns core dumps
 * off again (a credential change resets that flag).  0 or -1 with err.
 */
int core_drop_privileges(uid_t uid, gid_t gid, lb_err *err);
/*
 * PR_SET_DUMPABLE 0 and RLIMIT_CORE 0: no core file, and no ptrace or
 * /proc/PID/mem access by processes of the same uid.  For every process
 * that holds a secret (core_process_harden, at every start).
 */
int core_no_dumps(lb_err *err);

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

/* True for a plausible `local@domain` address (no spaces, one @, a dot-free
 * or dotted domain of letters, digits, '-', '.'; at most 254 bytes). */
bool core_email_valid(const char *addr);
/* Fills out with len random base64url characters and a NUL (len+1 bytes). */
int core_random_password(char *out, size_t len);
/* Installs SIGPIPE ignore, umask 077 and disables core dumps. */
void core_process_harden(void);

/* Initialises a condition variable that times out on CLOCK_MONOTONIC
 * (immune to wall-clock steps); 0 or -1. */
int core_cond_init_monotonic(pthread_cond_t *cond);
/*
 * Waits on cond (initialised by core_cond_init_monotonic, mutex held)
 * until the wall-clock time until, or until *flag or *stop is true; a
 * wake-up that sets neither waits on.
 */
void core_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mutex,
    const bool *flag, const bool *stop, time_t until);

/* ------------------------------------------------------------------ */
/* Background threads (worker.c)                                       */

/*
 * A background thread and what it is woken and stopped with.  The thread
 * may use lock and cond for state of its own (a queue, a pool) beside the
 * flags; woken and stop are read and written under lock.
 */
typedef struct core_worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* CLOCK_MONOTONIC */
	bool woken, stop;
	bool started;            /* core_worker_stop has a thread to join */
} core_worker;

/*
 * Initialises w (zeroed first) and runs fn(arg) on a new thread with
 * every signal blocked.  -1 with err ("cannot start the WHAT"), nothing
 * left to clean up.
 */
int core_worker_start(core_worker *w, void *(*fn)(void *), void *arg,
    const char *what, lb_err *err);
/* Sets w's wake flag and signals its condition. */
void core_worker_wake(core_worker *w);
/*
 * For the thread: waits until the wall-clock time until (0 or earlier:
 * not at all), a wake or the stop; takes and releases the lock.  1 when
 * woken (the flag is cleared), 0 on the timeout, -1 when stopping.
 */
int core_worker_wait(core_worker *w, time_t until);
/* Whether core_worker_stop has been called (for long loops). */
bool core_worker_stopping(core_worker *w);
/*
 * Sets the stop flag, wakes every waiter on cond, joins the thread and
 * destroys lock and cond.  Nothing when the thread never started.
 */
void core_worker_stop(core_worker *w);

/* ------------------------------------------------------------------ */
/* An HTTP answer, as the client halves of lockbox's formats see it     */

/*
 * One answer to a request, whatever its status.  The body may hold a key:
 * core_http_reply_clear cleanses it.
 */
typedef struct core_http_reply {
	long status;
	char *body;              /* NUL-terminated, NULL when empty */
	size_t len;
	size_t cap;              /* allocated size of body */
	bool too_big;
	char ctype[256];         /* Content-Type, "" when absent */
	char retry_after[64];    /* Retry-After, "" when absent */
} core_http_reply;
/* Cleanses and frees r's body and empties r. */
void core_http_reply_clear(core_http_reply *r);

/* ------------------------------------------------------------------ */
/* Encodings (codec.c)                                                 */

/* Uppercase hex of buf, malloc'ed (NULL when out of memory). */
char *core_hex(const unsigned char *buf, size_t len);
/* Lowercase hex of buf into out (2 * len + 1 bytes, NUL-terminated). */
void core_hex_lower(const unsigned char *buf, size_t len, char *out);
/* The SHA-256 of buf as 64 lowercase hex digits and a NUL; 0 or -1. */
int core_sha256_hex(const void *buf, size_t len, char out[65]);
/*
 * nbytes (1 to 64) random bytes as 2 * nbytes lowercase hex digits and a
 * NUL into out: identifiers nobody can guess.  0, or -1 (logged) when the
 * random generator fails.
 */
int core_random_hex(char *out, size_t nbytes);

/* core_b64_decode: whitespace (space, tab, CR, LF) anywhere is skipped */
#define CORE_B64_WS     0x1u
/*
 * Decodes standard base64 of at most max characters into a malloc'ed
 * buffer: padding required, '=' only as the final padding, no character
 * outside the alphabet (with CORE_B64_WS, whitespace aside).  Every
 * scratch copy is cleansed; the caller cleanses *out when it holds a
 * secret.  -1 on anything malformed, empty or too long (nothing is
 * recorded: callers say what they expected).
 */
int core_b64_decode(const char *s, size_t slen, size_t max, unsigned flags,
    unsigned char **out, size_t *len);
/* core_b64_encode: lines of 64 characters, each ending in CRLF */
#define CORE_B64_LINES  0x1u
/*
 * Base64 of buf (len may be 0) into a malloc'ed NUL-terminated *out, one
 * line or (CORE_B64_LINES) lines of 64; *outlen (may be NULL) excludes
 * the NUL.  The scratch copy is cleansed (buf may be a key).  0, or -1
 * when out of memory or over 1 GiB.
 */
int core_b64_encode(const void *buf, size_t len, unsigned flags, char **out,
    size_t *outlen);

/*
 * v escaped (RFC 4514) for an attribute value in a DN string: ',', '+',
 * '"', '\\', '<', '>', ';', '=', a leading space or '#' and a trailing
 * space after a backslash, control characters as \XX.  Malloc'ed; NULL
 * when v is over 1024 bytes or out of memory.
 */
char *core_dn_escape(const char *v);

/* "2026-11-28T20:34:40Z" into out (at least 21 bytes). */
void core_time_fmt(time_t t, char *out, size_t outlen);
/* core_time_parse: also "...+00:00" and a date alone ("2026-11-28") */
#define CORE_TIME_LENIENT 0x1u
/*
 * Reads the form core_time_fmt writes, "YYYY-MM-DDTHH:MM:SSZ" exactly
 * (UTC, from 1970; no such date as 31 February), into *t; with
 * CORE_TIME_LENIENT also the "+00:00" suffix and a date alone (its
 * midnight UTC).  0, or -1 when malformed (*t untouched).
 */
int core_time_parse(const char *s, unsigned flags, time_t *t);
/* An ASN.1 time (UTCTime or GeneralizedTime) in seconds since the
 * epoch; 0 when unreadable. */
time_t core_asn1_time(const ASN1_TIME *a);

/* ------------------------------------------------------------------ */
/* Database                                                            */

/*
 * Opens (or, with create, creates) the SQLite database at path: WAL mode,
 * foreign keys on, synchronous=FULL, a busy timeout, and every migration
 * from schema/ applied in one transaction each, tracked by
 * PRAGMA user_version.  A database from a newer lockbox is refused.
 */
sqlite3 *core_db_open(const char *path, bool create, lb_err *err);
/* Closes db, finalizing any statement still prepared on it. */
void core_db_close(sqlite3 *db);
/* The schema version this build creates. */
int core_db_schema_version(void);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK; log on failure. */
int core_db_begin(sqlite3 *db, lb_err *err);
int core_db_commit(sqlite3 *db, lb_err *err);
void core_db_rollback(sqlite3 *db);
/* Logs sqlite3_errmsg under the name of the failed call, sets err, -1. */
int core_db_fail(sqlite3 *db, const char *what, lb_err *err);
/* Whether db answers a read (0) or not (-1), for health checks. */
int core_db_ping(sqlite3 *db);
/*
 * The end of a loop stepping through rows, r its last sqlite3_step: 0 when
 * it was SQLITE_DONE, else -1 with err (core_db_fail, naming what).
 */
int core_db_rows_done(sqlite3 *db, int r, const char *what, lb_err *err);
/*
 * Checkpoints the WAL into the database and truncates it to nothing, so
 * that deleted secrets do not outlive their rows there (the database runs
 * with secure_delete); outside a transaction.  Logs when readers keep it
 * from completing.
 */
void core_db_wal_truncate(sqlite3 *db);
/*
 * Steps *st, a statement that returns no rows, and finalizes it (*st =
 * NULL); -1 with err (core_db_fail, naming what) unless it was done.
 */
int core_db_exec(sqlite3 *db, sqlite3_stmt **st, const char *what,
    lb_err *err);
/*
 * Runs sql, a statement that returns no rows, with its parameters 1 to n
 * bound to the texts (a NULL text binds NULL); -1 with err naming what.
 */
int core_db_run(sqlite3 *db, const char *sql, const char *const *texts,
    int n, const char *what, lb_err *err);
/* Prepares sql into *st (NULL on failure: logged, err set, -1). */
int core_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st,
    lb_err *err);
/*
 * A statement for sql (a string constant), prepared once per connection
 * and kept on it (SQLITE_PREPARE_PERSISTENT; core_db_close finalizes it),
 * for the look-ups a hot path repeats.  The caller binds and steps it and
 * hands it back with core_db_cached_done (reset, bindings cleared); NULL
 * when it cannot be prepared (sqlite3_errmsg says why).
 */
sqlite3_stmt *core_db_cached(sqlite3 *db, const char *sql);
void core_db_cached_done(sqlite3_stmt *st);
/*
 * The settings table (owned here): integers the modules keep by name.
 * core_setting_get reads name into *v (def when absent); _set writes it;
 * _bump adds one (1 when absent), in the caller's transaction if any.
 */
int core_setting_get(sqlite3 *db, const char *name, int64_t def,
    int64_t *v, lb_err *err);
int core_setting_set(sqlite3 *db, const char *name, int64_t v, lb_err *err);
int core_setting_bump(sqlite3 *db, const char *name, lb_err *err);
/* A malloc'ed copy of column i's text (NULL for NULL or out of memory). */
char *core_db_text_dup(sqlite3_stmt *st, int i);
/* A malloc'ed copy of column i's bytes: *out NULL and *len 0 for NULL or
 * empty; -1 when out of memory. */
int core_db_blob_dup(sqlite3_stmt *st, int i, unsigned char **out,
    size_t *len);

/*
 * A transaction job: the changes one owning module makes as one unit
 * (with what others contribute through their own functions), run inside
 * the caller's transaction.  0, or -1 with err to roll it back.
 */
typedef int (*core_tx_job)(sqlite3 *db, void *arg, lb_err *err);
/* BEGIN IMMEDIATE, job, COMMIT on db; rolled back when either fails. */
int core_tx_run(sqlite3 *db, core_tx_job job, void *arg, lb_err *err);

/*
 * Group commit (committer.c): a thread with its own handle db (owned,
 * closed by core_committer_free, also when core_committer_new fails)
 * runs the jobs many threads hand it in one transaction, each in a
 * savepoint of its own, so that N jobs cost one fsync.
 * core_committer_run blocks until its job is committed: 0, or -1 with
 * err when the job (or the batch's commit) failed.  The job runs on the
 * committer's thread and handle.
 */
typedef struct core_committer core_committer;
core_committer *core_committer_new(sqlite3 *db, lb_err *err);
int core_committer_run(core_committer *c, core_tx_job job, void *arg,
    lb_err *err);
void core_committer_free(core_committer *c);

/* ------------------------------------------------------------------ */
/* Audit log: an append-only, hash-chained table                        */

/*
 * Appends an audit row: who (actor), what (action), on what (object) and a
 * free-text detail, chained to the previous row by SHA-256.  Call inside the
 * transaction that makes the change so both land or neither does.
 */
int core_audit_append(sqlite3 *db, const char *actor, const char *action,
    const char *object, const char *detail, lb_err *err);

/* One audit row as read back. */
typedef struct core_audit_row {
	int64_t id;
	char created[32];       /* ISO 8601, UTC */
	const char *actor, *action, *object, *detail;
	const char *prev_hash, *hash;
	/* the action as written, when the row predates its name (action is
	 * then today's name, core_audit_action_name); NULL otherwise */
	const char *recorded_action;
} core_audit_row;

/*
 * Today's name of an audit action (docs/GLOSSARY.md): rows written before
 * the actions were renamed keep the names they were written with, which their hashes
 * cover; this maps such a name to its successor, any other to itself.
 */
const char *core_audit_action_name(const char *recorded);

/*
 * Calls fn for every audit row with id > after_id in order, at most limit
 * rows (0 = all); strings are borrowed for the call only.  Stops early
 * (still returning 0) when fn returns non-zero; -1 on a database failure.
 */
int core_audit_foreach(sqlite3 *db, int64_t after_id, int limit,
    int (*fn)(const core_audit_row *row, void *arg), void *arg, lb_err *err);

/*
 * Recomputes the chain.  Returns 0 when intact (*rows = count), 1 when a row
 * is wrong (*bad_id names the first), -1 on a database failure.
 */
int core_audit_verify(sqlite3 *db, int64_t *rows, int64_t *bad_id,
    char *why, size_t whylen, lb_err *err);

#endif /* LOCKBOX_CORE_H */
