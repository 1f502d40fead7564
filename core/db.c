/*
 * db.c - the SQLite store: open with the settings durability needs (WAL,
 * synchronous=FULL, foreign keys), apply the migrations embedded from
 * schema/ under PRAGMA user_version, and transaction helpers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"

/* generated from the files in schema/ by scripts/embed.sh */
extern const char *const core_schema_migrations[];

int
core_db_schema_version(void)
{
	int n = 0;

	while (core_schema_migrations[n] != NULL)
		n++;
	return n;
}

int
core_db_fail(sqlite3 *db, const char *what, lb_err *err)
{
	const char *msg = db != NULL ? sqlite3_errmsg(db) : "no database";

	log_warnx("%s: %s", what, msg);
	return lb_err_set(err, LB_EINTERNAL, "database: %s: %s", what, msg);
}

int
core_db_exec(sqlite3 *db, sqlite3_stmt **st, const char *what, lb_err *err)
{
	int rc = 0;

	if (sqlite3_step(*st) != SQLITE_DONE)
		rc = core_db_fail(db, what, err);
	sqlite3_finalize(*st);
	*st = NULL;
	return rc;
}

void
core_db_wal_truncate(sqlite3 *db)
{
	int r = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    NULL, NULL);

	if (r != SQLITE_OK)
		log_warnx("cannot truncate the database's WAL now (%s): the "
		    "next checkpoint overwrites it", sqlite3_errstr(r));
}

int
core_db_rows_done(sqlite3 *db, int r, const char *what, lb_err *err)
{
	return r == SQLITE_DONE ? 0 : core_db_fail(db, what, err);
}

int
core_db_run(sqlite3 *db, const char *sql, const char *const *texts, int n,
    const char *what, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int i;

	if (core_db_prepare(db, sql, &st, err) == -1)
		return -1;
	for (i = 0; i < n; i++)
		sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
	return core_db_exec(db, &st, what, err);
}

static int
exec(sqlite3 *db, const char *sql, lb_err *err)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return core_db_fail(db, sql, err);
	return 0;
}

static int
user_version(sqlite3 *db, int *v, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
	    SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		core_db_fail(db, "PRAGMA user_version", err);
		goto out;
	}
	*v = sqlite3_column_int(st, 0);
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

static int
migrate(sqlite3 *db, lb_err *err)
{
	int have, want = core_db_schema_version(), v;
	char pragma[64];

	if (user_version(db, &have, err) == -1)
		return -1;
	if (have > want)
		return lb_err_set(err, LB_ECONFLICT,
		    "database schema version %d is newer than this lockbox "
		    "(%d): upgrade lockbox", have, want);
	for (v = have; v < want; v++) {
		if (core_db_begin(db, err) == -1)
			return -1;
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
		    v + 1);
		if (exec(db, core_schema_migrations[v], err) == -1 ||
		    exec(db, pragma, err) == -1) {
			core_db_rollback(db);
			return -1;
		}
		if (core_db_commit(db, err) == -1)
			return -1;
		log_info("database migrated to schema version %d", v + 1);
	}
	return 0;
}

sqlite3 *
core_db_open(const char *path, bool create, lb_err *err)
{
	sqlite3 *db = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;

	if (create)
		flags |= SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		lb_err_set(err, create ? LB_EINTERNAL : LB_ENOTFOUND,
		    "%s: %s", path, db ? sqlite3_errmsg(db) : "cannot open");
		goto fail;
	}
	/* the database holds escrow records: owner only (WAL and SHM files
	 * take the database file's mode) */
	if (create && chmod(path, 0600) == -1) {
		lb_err_set(err, LB_EINTERNAL, "%s: cannot make it 0600", path);
		goto fail;
	}
	sqlite3_busy_timeout(db, 10000);
	sqlite3_extended_result_codes(db, 1);
	if (exec(db, "PRAGMA journal_mode = WAL", err) == -1 ||
	    exec(db, "PRAGMA synchronous = FULL", err) == -1 ||
	    exec(db, "PRAGMA foreign_keys = ON", err) == -1 ||
	    /* deleted rows (recovery shares) are overwritten, not left in
	     * free pages */
	    exec(db, "PRAGMA secure_delete = ON", err) == -1 ||
	    migrate(db, err) == -1)
		goto fail;
	return db;
fail:
	sqlite3_close(db);
	return NULL;
}

void
core_db_close(sqlite3 *db)
{
	sqlite3_stmt *st;

	if (db == NULL)
		return;
	/* statements cached on the connection (core_db_cached) */
	while ((st = sqlite3_next_stmt(db, NULL)) != NULL)
		sqlite3_finalize(st);
	if (sqlite3_close(db) != SQLITE_OK)
		log_warnx("sqlite3_close: %s", sqlite3_errmsg(db));
}

int
core_db_begin(sqlite3 *db, lb_err *err)
{
	return exec(db, "BEGIN IMMEDIATE", err);
}

int
core_db_commit(sqlite3 *db, lb_err *err)
{
	if (exec(db, "COMMIT", err) == -1) {
		core_db_rollback(db);
		return -1;
	}
	return 0;
}

void
core_db_rollback(sqlite3 *db)
{
	if (sqlite3_get_autocommit(db))
		return;
	if (sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
		log_warnx("ROLLBACK: %s", sqlite3_errmsg(db));
}

int
core_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, lb_err *err)
{
	*st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		sqlite3_finalize(*st);
		*st = NULL;
		return core_db_fail(db, "prepare", err);
	}
	return 0;
}

sqlite3_stmt *
core_db_cached(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	const char *text;

	/* the connection's own list: no state outlives the handle */
	while ((st = sqlite3_next_stmt(db, st)) != NULL)
		if ((text = sqlite3_sql(st)) != NULL && strcmp(text, sql) == 0 &&
		    !sqlite3_stmt_busy(st))
			return st;
	if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
	    NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

void
core_db_cached_done(sqlite3_stmt *st)
{
	if (st == NULL)
		return;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

char *
core_db_text_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t != NULL ? strdup((const char *)t) : NULL;
}

int
core_db_blob_dup(sqlite3_stmt *st, int i, unsigned char **out, size_t *len)
{
	const void *b = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);

	*out = NULL;
	*len = 0;
	if (b == NULL || n <= 0)
		return 0;
	if ((*out = malloc((size_t)n)) == NULL)
		return -1;
	memcpy(*out, b, (size_t)n);
	*len = (size_t)n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The settings table: small values the modules keep by name           */

int
core_setting_get(sqlite3 *db, const char *name, int64_t def, int64_t *v,
    lb_err *err)
{
	sqlite3_stmt *st;
	int r, rc = -1;

	*v = def;
	/* read on hot paths (the revocation generation, per OCSP request):
	 * prepared once per connection */
	if ((st = core_db_cached(db, "SELECT value FROM settings WHERE name = "
	    "?")) == NULL)
		return core_db_fail(db, "read a setting", err);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		*v = (int64_t)sqlite3_column_int64(st, 0);
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		core_db_fail(db, "read a setting", err);
	else
		rc = 0;
	core_db_cached_done(st);
	return rc;
}

int
core_setting_set(sqlite3 *db, const char *name, int64_t v, lb_err *err)
{
	char text[32];

	snprintf(text, sizeof(text), "%lld", (long long)v);
	/* portable upsert (SQLite >= 3.24, PostgreSQL >= 9.5) */
	return core_db_run(db, "INSERT INTO settings (name, value) VALUES "
	    "(?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	    (const char *[]){ name, text }, 2, "write a setting", err);
}

int
core_setting_bump(sqlite3 *db, const char *name, lb_err *err)
{
	return core_db_run(db, "INSERT INTO settings (name, value) VALUES "
	    "(?1, '1') ON CONFLICT (name) DO UPDATE SET value = "
	    "CAST(CAST(settings.value AS INTEGER) + 1 AS TEXT)",
	    (const char *[]){ name }, 1, "write a setting", err);
}

int
core_db_ping(sqlite3 *db)
{
	/* reads the schema: a database that cannot be read says so */
	return sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL,
	    NULL, NULL) == SQLITE_OK ? 0 : -1;
}
