/*
 * fetch.c - the requester's end of a recovery on the server: the package
 * of an approved request, fetched by the officer who asked, and its
 * collection once the officer's client holds the keys, which deletes the
 * request's rewrapped shares.  The rules of recovery.c apply: only the
 * requester, only while the request is live, every step audited.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive_int.h"

/* ------------------------------------------------------------------ */
/* The package                                                         */

/* "1 of 2 approvals" (one record) or per record, for the requester. */
static void
progress(const archive_recovery *rq, char *buf, size_t len)
{
	size_t i, n;

	buf[0] = '\0';
	for (i = 0; i < rq->nrecords; i++) {
		n = strlen(buf);
		if (n + 64 >= len)
			break;
		if (rq->nrecords == 1)
			snprintf(buf, len, "%d of %d approvals",
			    rq->records[i].approvals, rq->records[i].threshold);
		else
			snprintf(buf + n, len - n, "%s%d of %d approvals for "
			    "serial %s", i > 0 ? ", " : "",
			    rq->records[i].approvals, rq->records[i].threshold,
			    rq->records[i].serial);
	}
}

static int
package_tx(sqlite3 *db, const archive_caller *who, const char *id,
    archive_recovery *out, bool *expired, lb_err *err)
{
	static const char *const live[] = { "approved", "fetched", NULL };
	sqlite3_stmt *st = NULL;
	char actor[320], detail[1200], serials[1024], prog[512];
	bool in_tx = false;
	size_t i;
	int rc = -1;

	if ((who->roles & CA_ROLE_RECOVERY_OFFICER) == 0) {
		lb_err_set(err, LB_EFORBIDDEN, "fetching recovered keys needs "
		    "the role recovery-officer");
		goto out;
	}
	if (archive_expire_due(db, who, id, err) == -1 || core_db_begin(db, err) == -1)
		goto out;
	in_tx = true;
	if (archive_load_request(db, id, out, err) == -1)
		goto out;
	if (!archive_same_person(who->email, out->requester_email)) {
		lb_err_set(err, LB_EFORBIDDEN, "only the requester (%s) may "
		    "fetch the keys of recovery request %s",
		    out->requester_email, out->id);
		goto out;
	}
	if (strcmp(out->status, "pending") == 0 && out->expires > time(NULL)) {
		progress(out, prog, sizeof(prog));
		lb_err_set(err, LB_ECONFLICT, "recovery request %s is not "
		    "approved yet: %s; nothing is released before then",
		    out->id, prog);
		goto out;
	}
	if (archive_check_status(out, live, expired, err) == -1)
		goto out;
	for (i = 0; i < out->nrecords; i++)
		if (archive_load_package_record(db, out->id, &out->records[i],
		    err) == -1)
			goto out;
	if (strcmp(out->status, "approved") == 0) {
		if (core_db_prepare(db, "UPDATE recovery_requests SET status = "
		    "'fetched' WHERE id = ?", &st, err) == -1)
			goto out;
		sqlite3_bind_text(st, 1, out->id, -1, SQLITE_STATIC);
		if (core_db_exec(db, &st, "recovery", err) == -1)
			goto out;
	}
	archive_serial_list(out, serials, sizeof(serials));
	snprintf(detail, sizeof(detail), "%zu key(s) of %s released to the "
	    "requester (%s)%s", out->nrecords, out->email, serials,
	    strcmp(out->status, "fetched") == 0 ? "; fetched again" : "");
	archive_actor_of(who, actor, sizeof(actor));
	if (core_audit_append(db, actor, "recovery.fetch", out->id, detail,
	    err) == -1)
		goto out;
	in_tx = false;
	if (core_db_commit(db, err) == -1)
		goto out;
	free(out->status);
	out->status = strdup("fetched");
	log_info("recovery request %s: keys fetched by %s", out->id,
	    who->email);
	rc = 0;
out:
	sqlite3_finalize(st);
	if (in_tx)
		core_db_rollback(db);
	return rc;
}

int
archive_recovery_package(sqlite3 *db, const archive_caller *who,
    const char *id, archive_recovery *out, bool *expired, lb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (expired != NULL)
		*expired = false;
	if (package_tx(db, who, id, out, expired, err) == 0)
		return 0;
	archive_recovery_clear(out);
	archive_recovery_refused(db, who, "recovery.fetch_refused", id, err);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Collected                                                           */

static int
collect_tx(sqlite3 *db, const archive_caller *who, const char *id,
    bool *expired, lb_err *err)
{
	static const char *const live[] = { "approved", "fetched", NULL };
	archive_recovery rq;
	sqlite3_stmt *st = NULL;
	char detail[128];
	bool in_tx = false;
	int rc = -1;

	memset(&rq, 0, sizeof(rq));
	if ((who->roles & CA_ROLE_RECOVERY_OFFICER) == 0) {
		lb_err_set(err, LB_EFORBIDDEN, "collecting recovered keys needs "
		    "the role recovery-officer");
		goto out;
	}
	if (archive_expire_due(db, who, id, err) == -1 || core_db_begin(db, err) == -1)
		goto out;
	in_tx = true;
	if (archive_load_request(db, id, &rq, err) == -1)
		goto out;
	if (!archive_same_person(who->email, rq.requester_email)) {
		lb_err_set(err, LB_EFORBIDDEN, "only the requester (%s) may "
		    "collect recovery request %s", rq.requester_email, rq.id);
		goto out;
	}
	if (archive_check_status(&rq, live, expired, err) == -1)
		goto out;
	if (core_db_prepare(db, "UPDATE recovery_requests SET collected = ? "
	    "WHERE id = ?", &st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 2, rq.id, -1, SQLITE_STATIC);
	snprintf(detail, sizeof(detail), "collected (was %s): the requester's "
	    "one-time key is deleted, the rewrapped shares too", rq.status);
	in_tx = false;
	if (archive_end_request(db, who, &st, rq.id, "recovery.collect", detail,
	    err) == -1)
		goto out;
	log_info("recovery request %s collected by %s", rq.id, who->email);
	rc = 0;
out:
	sqlite3_finalize(st);
	if (in_tx)
		core_db_rollback(db);
	archive_recovery_clear(&rq);
	return rc;
}

int
archive_recovery_collect(sqlite3 *db, const archive_caller *who,
    const char *id, bool *expired, lb_err *err)
{
	if (expired != NULL)
		*expired = false;
	if (collect_tx(db, who, id, expired, err) == 0)
		return 0;
	archive_recovery_refused(db, who, "recovery.collect_refused", id, err);
	return -1;
}
