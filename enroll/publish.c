/*
 * publish.c - the directory publication queue ("publish to the address
 * book") and its worker thread.
 *
 * Enrollment queues a row ('add') in the transaction that stores the
 * certificate, so a directory outage never fails or loses an enrollment.
 * The worker has its own database handle and directory connection, and
 * only ever runs short autocommit statements, never a transaction across
 * an LDAP call: it cannot hold up enrollment.  Each pass
 *
 *   1. queues a 'delete' for every published certificate ('add' done)
 *      that has since been revoked (by this daemon or by `lockbox revoke`
 *      in another process: hence the periodic pass), when the revocation
 *      generation moved since the last scan;
 *   2. performs the due 'pending' rows, oldest due first: resolves the
 *      user's DN (the row's user_dn, else a look-up by e-mail, stored once
 *      found) and adds or removes userCertificate;binary;
 *   3. sleeps until the next row is due, a wake-up or POLL_SECONDS.
 *
 * A transient failure (directory down or slow) backs the row off from
 * [directory] retry doubling to retry_max, and pauses the whole queue for
 * a backoff of its own (retrying every other row against a dead server
 * would only pile up timeouts); the row stays pending however long the
 * outage.  A permanent failure (user not in the directory, schema or
 * access violation) waits retry_max and, after MAX_ATTEMPTS, leaves the
 * row 'failed' until `lockbox publish retry`.  An 'add' whose certificate
 * was revoked before it could be published is not performed: it is marked
 * done with last_error saying so, and pass 1 skips such rows.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "directory/directory.h"
#include "enroll/enroll.h"

#define POLL_SECONDS  30
#define MAX_ATTEMPTS  10
#define SKIPPED_ERROR "not published: the certificate was revoked first"

struct enroll_publisher {
	ca_ctx *ca;
	directory_ctx *dir;
	long retry, retry_max;      /* [directory] retry, retry_max */
	core_worker w;
};

/* One queued row as the worker needs it. */
struct row {
	int64_t id;
	char *serial, *email, *user_dn;
	bool add, revoked;
	int64_t attempts;
	unsigned char *der;
	size_t der_len;
};

static void
row_clear(struct row *r)
{
	free(r->serial);
	free(r->email);
	free(r->user_dn);
	free(r->der);
	memset(r, 0, sizeof(*r));
}

int
enroll_publish_enqueue(sqlite3 *db, const char *serial, const char *email,
    const char *user_dn, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	time_t now = time(NULL);
	int r, rc = -1;

	if (serial == NULL || serial[0] == '\0' || email == NULL ||
	    email[0] == '\0')
		return lb_err_set(err, LB_EINVAL, "publishing a certificate to "
		    "the directory needs its serial and the user's e-mail");
	if (core_db_prepare(db, "INSERT INTO publish_queue (serial, email, "
	    "user_dn, action, state, attempts, next_try, created) VALUES (?1, "
	    "?2, ?3, 'add', 'pending', 0, ?4, ?4) ON CONFLICT (serial, action) "
	    "DO NOTHING", &st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
	if (user_dn != NULL && user_dn[0] != '\0')
		sqlite3_bind_text(st, 3, user_dn, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)now);
	/* the foreign key: extended result codes may be on */
	if (((r = sqlite3_step(st)) & 0xff) == SQLITE_CONSTRAINT) {
		lb_err_set(err, LB_ENOTFOUND, "cannot queue certificate %s for "
		    "the directory: no such certificate", serial);
		goto out;
	}
	rc = core_db_rows_done(db, r, "queue a publication", err);
out:
	sqlite3_finalize(st);
	return rc;
}

int
enroll_publish_counts_get(sqlite3 *db, enroll_publish_counts *c, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	const char *state;
	int r, rc = -1;

	memset(c, 0, sizeof(*c));
	if (core_db_prepare(db, "SELECT state, COUNT(*), MIN(created) FROM "
	    "publish_queue GROUP BY state", &st, err) == -1)
		goto out;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if ((state = (const char *)sqlite3_column_text(st, 0)) == NULL)
			continue;
		if (strcmp(state, "pending") == 0) {
			c->pending = sqlite3_column_int64(st, 1);
			c->oldest_pending = (time_t)sqlite3_column_int64(st, 2);
		} else if (strcmp(state, "failed") == 0) {
			c->failed = sqlite3_column_int64(st, 1);
		} else if (strcmp(state, "done") == 0) {
			c->done = sqlite3_column_int64(st, 1);
		}
	}
	rc = core_db_rows_done(db, r, "count publications", err);
out:
	sqlite3_finalize(st);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The worker                                                          */

/* Queues a 'delete' for the published row id (its certificate revoked). */
static int
queue_removal(sqlite3 *db, int64_t id, time_t now, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (core_db_prepare(db, "INSERT INTO publish_queue (serial, email, "
	    "user_dn, action, state, attempts, next_try, created) SELECT "
	    "serial, email, user_dn, 'delete', 'pending', 0, ?1, ?1 FROM "
	    "publish_queue WHERE id = ?2", &st, err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)id);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return core_db_fail(db, "queue removals of revoked "
		    "certificates",
		    err);
	return 0;
}

/*
 * Pass 1: a 'delete' for each published certificate revoked since.  The
 * certificates' status is ca's to tell (ca_cert_status), row by row:
 * this pass runs only when the revocation generation moved.
 */
static int
queue_removals(sqlite3 *db, time_t now, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int64_t *ids = NULL, *grown;
	char **serials = NULL, **sgrown;
	size_t n = 0, cap = 0, i, queued = 0;
	time_t at, inv;
	bool revoked;
	int reason, r, rc = -1;

	if (core_db_prepare(db, "SELECT q.id, q.serial FROM publish_queue q "
	    "WHERE q.action = 'add' AND q.state = 'done' AND q.last_error IS "
	    "NULL AND NOT EXISTS (SELECT 1 FROM publish_queue d WHERE d.serial "
	    "= q.serial AND d.action = 'delete') ORDER BY q.id", &st,
	    err) == -1)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((grown = realloc(ids, cap * sizeof(*ids))) == NULL)
				goto oom;
			ids = grown;
			if ((sgrown = realloc(serials, cap *
			    sizeof(*serials))) == NULL)
				goto oom;
			serials = sgrown;
		}
		ids[n] = sqlite3_column_int64(st, 0);
		if ((serials[n] = core_db_text_dup(st, 1)) == NULL)
			goto oom;
		n++;
	}
	if (r != SQLITE_DONE) {
		core_db_fail(db, "queue removals of revoked certificates", err);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	for (i = 0; i < n; i++) {
		if (ca_cert_status(db, serials[i], &revoked, &at, &reason, &inv,
		    err) == -1)
			goto out;
		if (revoked) {
			if (queue_removal(db, ids[i], now, err) == -1)
				goto out;
			queued++;
		}
	}
	if (queued > 0)
		log_info("directory publisher: %zu revoked certificate(s) "
		    "queued for removal", queued);
	rc = 0;
	goto out;
oom:
	lb_err_set(err, LB_EINTERNAL, "out of memory");
out:
	sqlite3_finalize(st);
	for (i = 0; i < n; i++)
		free(serials[i]);
	free(serials);
	free(ids);
	return rc;
}

/*
 * The pending row due first at now.  Every row a pass handles leaves
 * that set (done, failed or next_try moved past now), so the pass ends.
 * Returns 1 with *r filled, 0 when none is due, -1 on a database failure.
 */
static int
next_due(sqlite3 *db, time_t now, struct row *r, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	const void *der;
	const char *action, *status;
	int step, rc = -1;

	memset(r, 0, sizeof(*r));
	/* (next_try, id): a row backed off goes behind the others, so that
	 * one row cannot starve the rest while the directory is flaky */
	if (core_db_prepare(db, "SELECT q.id, q.serial, q.email, q.user_dn, "
	    "q.action, q.attempts, c.status, c.der FROM publish_queue q JOIN "
	    "certificates c ON c.serial = q.serial WHERE q.state = 'pending' "
	    "AND q.next_try <= ?1 ORDER BY q.next_try, q.id LIMIT 1", &st,
	    err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	if ((step = sqlite3_step(st)) == SQLITE_DONE) {
		rc = 0;
		goto out;
	}
	if (step != SQLITE_ROW) {
		core_db_fail(db, "read the publication queue", err);
		goto out;
	}
	r->id = sqlite3_column_int64(st, 0);
	r->serial = core_db_text_dup(st, 1);
	r->email = core_db_text_dup(st, 2);
	r->user_dn = core_db_text_dup(st, 3);
	action = (const char *)sqlite3_column_text(st, 4);
	r->add = action != NULL && strcmp(action, "add") == 0;
	r->attempts = sqlite3_column_int64(st, 5);
	status = (const char *)sqlite3_column_text(st, 6);
	r->revoked = status != NULL && strcmp(status, "revoked") == 0;
	der = sqlite3_column_blob(st, 7);
	r->der_len = (size_t)sqlite3_column_bytes(st, 7);
	if (r->serial == NULL || r->email == NULL || der == NULL ||
	    r->der_len == 0 || (r->der = malloc(r->der_len)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory reading the "
		    "publication queue");
		row_clear(r);
		goto out;
	}
	memcpy(r->der, der, r->der_len);
	rc = 1;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Records the outcome of one attempt on row id. */
static int
record(sqlite3 *db, int64_t id, const char *state, int64_t attempts,
    time_t next_try, time_t done, const char *user_dn, const char *error,
    lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (core_db_prepare(db, "UPDATE publish_queue SET state = ?2, attempts "
	    "= ?3, next_try = ?4, done = ?5, user_dn = COALESCE(?6, user_dn), "
	    "last_error = ?7 WHERE id = ?1", &st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, attempts);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)next_try);
	if (done != 0)
		sqlite3_bind_int64(st, 5, (sqlite3_int64)done);
	if (user_dn != NULL)
		sqlite3_bind_text(st, 6, user_dn, -1, SQLITE_STATIC);
	if (error != NULL)
		sqlite3_bind_text(st, 7, error, -1, SQLITE_STATIC);
	if (core_db_exec(db, &st, "update the publication queue", err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* retry doubled per earlier attempt, at most retry_max. */
static long
row_backoff(const struct enroll_publisher *p, int64_t attempts)
{
	long b = p->retry;
	int64_t i;

	for (i = 1; i < attempts && b < p->retry_max; i++)
		b *= 2;
	return b > p->retry_max ? p->retry_max : b;
}

/*
 * Performs one row.  Returns 0 when its outcome was recorded (*transient
 * tells a directory that could not be reached), -1 on a database failure.
 */
static int
perform(struct enroll_publisher *p, sqlite3 *db, struct row *r, time_t now,
    bool *transient, lb_err *err)
{
	directory_user *u = NULL;
	const char *dn = r->user_dn, *state = "pending";
	int64_t attempts = r->attempts + 1;
	time_t next;
	lb_err derr;
	int rc = -1;

	*transient = false;
	lb_err_clear(&derr);
	if (r->add && r->revoked) {
		log_info("directory publisher: certificate %s of %s revoked "
		    "before publication: not published", r->serial, r->email);
		return record(db, r->id, "done", r->attempts, now, now, NULL,
		    SKIPPED_ERROR, err);
	}
	if (dn == NULL) {
		if ((u = directory_user_lookup(p->dir, r->email, &derr)) ==
		    NULL)
			goto failed;
		dn = u->dn;
	}
	if ((r->add ? directory_publish_user_cert(p->dir, dn, r->der,
	    r->der_len, &derr) : directory_unpublish_user_cert(p->dir, dn,
	    r->der, r->der_len, &derr)) == -1)
		goto failed;
	log_info("directory publisher: certificate %s %s %s (%s)", r->serial,
	    r->add ? "published to" : "removed from", dn,
	    directory_get0_uri(p->dir));
	rc = record(db, r->id, "done", attempts, now, now, dn, NULL, err);
	goto out;
failed:
	*transient = directory_err_transient(&derr);
	if (*transient) {
		next = now + row_backoff(p, attempts);
	} else {
		next = now + p->retry_max;
		if (attempts >= MAX_ATTEMPTS)
			state = "failed";
	}
	if (strcmp(state, "failed") == 0)
		log_warnx("directory publisher: giving up on %s of certificate "
		    "%s for %s after %lld attempts: %s (run 'lockbox publish "
		    "retry' once fixed)", r->add ? "publication" : "removal",
		    r->serial, r->email, (long long)attempts, derr.msg);
	else
		log_warnx("directory publisher: %s of certificate %s for %s: "
		    "%s (retrying in %ld s)", r->add ? "publication" :
		    "removal", r->serial, r->email, derr.msg,
		    (long)(next - now));
	rc = record(db, r->id, state, attempts, next, 0,
	    u != NULL ? u->dn : NULL, derr.msg, err);
out:
	directory_user_free(u);
	return rc;
}

/*
 * Pass 2: every due row, until none is left, a transient failure (the
 * directory is down: *down set) or a stop.  -1 on a database failure.
 */
static int
perform_due(struct enroll_publisher *p, sqlite3 *db, time_t now, bool *down,
    bool *answered, lb_err *err)
{
	struct row r;
	bool transient;
	int got;

	*down = false;
	while (!core_worker_stopping(&p->w)) {
		if ((got = next_due(db, now, &r, err)) == -1)
			return -1;
		if (got == 0)
			break;
		if (perform(p, db, &r, now, &transient, err) == -1) {
			row_clear(&r);
			return -1;
		}
		row_clear(&r);
		if (transient) {
			*down = true;
			break;
		}
		*answered = true;   /* done, or a permanent refusal */
	}
	return 0;
}

/* When the next pending row is due; 0 when none. */
static int
earliest_due(sqlite3 *db, time_t *at, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	*at = 0;
	if (sqlite3_prepare_v2(db, "SELECT MIN(next_try) FROM publish_queue "
	    "WHERE state = 'pending'", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		core_db_fail(db, "read the publication queue", err);
		goto out;
	}
	if (sqlite3_column_type(st, 0) != SQLITE_NULL)
		*at = (time_t)sqlite3_column_int64(st, 0);
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/*
 * Pass 1 when the revocation generation moved since the last scan (or on
 * the first pass): a scan of every published row is not free, the read of
 * the generation is.
 */
static int
removals_if_revoked(sqlite3 *db, time_t now, int64_t *gen, bool *scanned,
    lb_err *err)
{
	int64_t g;

	if (ca_revocation_generation(db, &g, err) == -1)
		return -1;
	if (*scanned && g == *gen)
		return 0;
	if (queue_removals(db, now, err) == -1)
		return -1;
	*gen = g;
	*scanned = true;
	return 0;
}

static void *
publisher_main(void *arg)
{
	struct enroll_publisher *p = arg;
	sqlite3 *db = NULL;
	time_t now, next = 0, due, down_until = 0;
	int64_t gen = 0;
	long down_backoff = 0;
	bool down, answered, scanned = false;
	lb_err err;

	while (core_worker_wait(&p->w, next) != -1) {
		now = time(NULL);
		next = now + POLL_SECONDS;
		lb_err_clear(&err);
		down = answered = false;
		if (db == NULL)
			db = ca_db_open(p->ca, &err);
		if (db == NULL || removals_if_revoked(db, now, &gen, &scanned,
		    &err) == -1 || (now >= down_until && perform_due(p, db,
		    now, &down, &answered, &err) == -1) || earliest_due(db,
		    &due, &err) == -1) {
			/* the database will not be better in a tight loop */
			log_warnx("directory publisher: %s", err.msg);
			next = now + p->retry;
			continue;
		}
		if (down) {
			down_backoff = directory_backoff_next(down_backoff,
			    p->retry, p->retry_max);
			down_until = now + down_backoff;
		} else if (answered) {
			down_backoff = 0;
			down_until = 0;
		}
		if (due != 0) {
			if (due < down_until)
				due = down_until;
			if (due < next)
				next = due;
		}
	}
	core_db_close(db);
	return NULL;
}

enroll_publisher *
enroll_publisher_start(ca_ctx *ca, const core_conf *conf, lb_err *err)
{
	struct enroll_publisher *p;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	p->ca = ca;
	/* no directory: LB_ENOTFOUND whatever else the section says */
	if ((p->dir = directory_open_at(conf, ca_get0_dir(ca), err)) == NULL ||
	    directory_retry_conf(conf, &p->retry, &p->retry_max, err) == -1 ||
	    core_worker_start(&p->w, publisher_main, p, "directory publisher",
	    err) == -1) {
		directory_free(p->dir);
		free(p);
		return NULL;
	}
	log_info("directory publisher: publishing user certificates to %s",
	    directory_get0_uri(p->dir));
	return p;
}

void
enroll_publisher_wake(enroll_publisher *p)
{
	if (p != NULL)
		core_worker_wake(&p->w);
}

void
enroll_publisher_stop(enroll_publisher *p)
{
	if (p == NULL)
		return;
	core_worker_stop(&p->w);
	directory_free(p->dir);
	free(p);
}

int
enroll_publish_foreach(sqlite3 *db,
    int (*fn)(const enroll_publication *pb, void *arg), void *arg,
    lb_err *err)
{
	sqlite3_stmt *st = NULL;
	enroll_publication pb;
	int r, rc = -1;

	if (core_db_prepare(db, "SELECT state, action, serial, email, "
	    "attempts, next_try, last_error FROM publish_queue WHERE state IN "
	    "('pending', 'failed') ORDER BY id", &st, err) == -1)
		goto out;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		pb.state = (const char *)sqlite3_column_text(st, 0);
		pb.action = (const char *)sqlite3_column_text(st, 1);
		pb.serial = (const char *)sqlite3_column_text(st, 2);
		pb.email = (const char *)sqlite3_column_text(st, 3);
		pb.attempts = (int64_t)sqlite3_column_int64(st, 4);
		pb.next_try = (time_t)sqlite3_column_int64(st, 5);
		pb.last_error = (const char *)sqlite3_column_text(st, 6);
		if (pb.state == NULL || pb.action == NULL ||
		    pb.serial == NULL || pb.email == NULL) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		if (fn(&pb, arg) != 0)
			break;
	}
	if (r != SQLITE_DONE && r != SQLITE_ROW) {
		core_db_fail(db, "read the publication queue", err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
enroll_publish_retry(sqlite3 *db, const char *actor, int *n, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char detail[64];
	int rc = -1;

	*n = 0;
	if (core_db_begin(db, err) == -1)
		return -1;
	if (core_db_prepare(db, "UPDATE publish_queue SET state = 'pending', "
	    "next_try = ?1 WHERE state = 'failed'", &st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	if (core_db_exec(db, &st, "queue failed publications again", err) == -1)
		goto out;
	*n = sqlite3_changes(db);
	snprintf(detail, sizeof(detail), "%d failed publication(s) queued "
	    "again", *n);
	if (*n > 0 && core_audit_append(db, actor, "publish.retry",
	    "publish_queue", detail, err) == -1)
		goto out;
	if (core_db_commit(db, err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	if (rc == -1)
		core_db_rollback(db);
	return rc;
}

