/*
 * requests.c - recovery requests as recovery.c stores them: reading a
 * request with its records, the requester's credential, an agent's own
 * shares and the material of the package, into archive_recovery; and
 * releasing it (every share and ciphertext freed).  The rules that decide
 * what a caller may read stay in recovery.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive_int.h"

/* ------------------------------------------------------------------ */
/* Reading requests                                                    */

void
archive_shares_free(unsigned char **shares, size_t *lens, size_t n)
{
	size_t i;

	for (i = 0; shares != NULL && i < n; i++)
		free(shares[i]);
	free(shares);
	free(lens);
}

void
archive_record_clear(archive_recovery_record *r)
{
	free(r->serial);
	free(r->email);
	free(r->key_alg);
	free(r->share_alg);
	free(r->share_wrap);
	free(r->share);
	free(r->cert);
	free(r->ciphertext);
	archive_shares_free(r->shares, r->share_lens, r->nshares);
	memset(r, 0, sizeof(*r));
}

void
archive_recovery_clear(archive_recovery *rq)
{
	size_t i;

	if (rq == NULL)
		return;
	free(rq->requester_serial);
	free(rq->requester_email);
	free(rq->email);
	free(rq->serial);
	free(rq->reason);
	free(rq->status);
	free(rq->denied_by);
	free(rq->deny_reason);
	free(rq->request_cert);
	free(rq->requester_cert);
	free(rq->statement);
	free(rq->statement_cms);
	for (i = 0; i < rq->nrecords; i++)
		archive_record_clear(&rq->records[i]);
	free(rq->records);
	memset(rq, 0, sizeof(*rq));
}

void
archive_recovery_list_free(archive_recovery *a, size_t n)
{
	size_t i;

	for (i = 0; a != NULL && i < n; i++)
		archive_recovery_clear(&a[i]);
	free(a);
}

/* Fills rq from a row of ARCHIVE_REQ_COLS. */
int
archive_row_to_request(sqlite3_stmt *st, archive_recovery *rq, lb_err *err)
{
	const char *id = (const char *)sqlite3_column_text(st, 0);

	memset(rq, 0, sizeof(*rq));
	snprintf(rq->id, sizeof(rq->id), "%s", id != NULL ? id : "");
	rq->requester_serial = core_db_text_dup(st, 1);
	rq->requester_email = core_db_text_dup(st, 2);
	rq->email = core_db_text_dup(st, 3);
	rq->serial = core_db_text_dup(st, 4);
	rq->reason = core_db_text_dup(st, 5);
	rq->status = core_db_text_dup(st, 7);
	rq->created = (time_t)sqlite3_column_int64(st, 8);
	rq->expires = (time_t)sqlite3_column_int64(st, 9);
	rq->denied_by = core_db_text_dup(st, 10);
	rq->deny_reason = core_db_text_dup(st, 11);
	rq->statement = core_db_text_dup(st, 12);
	if (rq->requester_serial == NULL || rq->requester_email == NULL ||
	    rq->email == NULL || rq->reason == NULL || rq->status == NULL ||
	    core_db_blob_dup(st, 6, &rq->request_cert, &rq->request_cert_len) == -1 ||
	    core_db_blob_dup(st, 13, &rq->statement_cms,
	    &rq->statement_cms_len) == -1) {
		archive_recovery_clear(rq);
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	}
	return 0;
}

/*
 * The records a request covers, each with its threshold and the number of
 * approvals from agents in its share set; the request's totals.
 */
/* r's certificate, from ca's store (DER, malloc'ed into r). */
static int
record_cert(sqlite3 *db, archive_recovery_record *r, lb_err *err)
{
	ca_cert_info ci;

	if (ca_cert_get(db, r->serial, &ci, err) == -1)
		return -1;
	r->cert = ci.der;
	r->cert_len = ci.der_len;
	ci.der = NULL;
	ca_cert_info_clear(&ci);
	return 0;
}

int
archive_load_records(sqlite3 *db, archive_recovery *rq, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	archive_recovery_record *r;
	size_t cap = 0;
	int rc = -1, s;
	void *p;

	/* with each record: how many other open requests cover it (agents
	 * are shown a second request as such); its certificate comes from
	 * ca's store below */
	if (core_db_prepare(db, "SELECT e.id, e.serial, e.threshold, "
	    "(SELECT count(*) FROM recovery_approvals a JOIN escrow_shares s "
	    "ON s.agent_serial = a.agent_serial AND s.record_id = e.id "
	    "WHERE a.request_id = rr.request_id), "
	    "(SELECT count(*) FROM recovery_request_records o JOIN "
	    "recovery_requests q ON q.id = o.request_id WHERE o.record_id = e.id "
	    "AND q.id <> rr.request_id AND q.status IN ('pending', 'approved', "
	    "'fetched') AND q.collected IS NULL AND q.expires > ?2) "
	    "FROM recovery_request_records rr JOIN escrow_records e "
	    "ON e.id = rr.record_id WHERE rr.request_id = ?1 ORDER BY e.id",
	    &st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, rq->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (rq->nrecords == cap) {
			cap = cap ? cap * 2 : 4;
			if ((p = realloc(rq->records, cap *
			    sizeof(*rq->records))) == NULL) {
				lb_err_set(err, LB_EINTERNAL, "out of memory");
				goto out;
			}
			rq->records = p;
		}
		r = &rq->records[rq->nrecords];
		memset(r, 0, sizeof(*r));
		r->record_id = sqlite3_column_int64(st, 0);
		r->threshold = sqlite3_column_int(st, 2);
		r->approvals = sqlite3_column_int(st, 3);
		r->other_open = sqlite3_column_int(st, 4);
		if ((r->serial = core_db_text_dup(st, 1)) == NULL) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		rq->nrecords++;
		if (record_cert(db, r, err) == -1)
			goto out;
		if (r->threshold > rq->threshold)
			rq->threshold = r->threshold;
	}
	if (s != SQLITE_DONE) {
		core_db_fail(db, "recovery records", err);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (core_db_prepare(db, "SELECT count(*) FROM recovery_approvals WHERE "
	    "request_id = ?", &st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, rq->id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		core_db_fail(db, "recovery approvals", err);
		goto out;
	}
	rq->approvals = sqlite3_column_int(st, 0);
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* The requester's credential (DER), for agents to check the one-time
 * certificate's signature. */
static int
load_requester_cert(sqlite3 *db, archive_recovery *rq, lb_err *err)
{
	ca_cert_info ci;
	int rc = -1;

	if (ca_cert_get(db, rq->requester_serial, &ci, err) == 0) {
		rq->requester_cert = ci.der;
		rq->requester_cert_len = ci.der_len;
		ci.der = NULL;
		rc = 0;
	}
	ca_cert_info_clear(&ci);
	return rc;
}

/* Reads request id with its records; LB_ENOTFOUND when absent. */
int
archive_load_request(sqlite3 *db, const char *id, archive_recovery *rq, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, r;

	memset(rq, 0, sizeof(*rq));
	if (!archive_request_id_valid(id))
		return lb_err_set(err, LB_EINVAL, "'%s' is not a recovery "
		    "request id (%d lowercase hex digits)",
		    id != NULL ? id : "", ARCHIVE_REQUEST_ID_LEN);
	if (core_db_prepare(db, "SELECT " ARCHIVE_REQ_COLS " FROM recovery_requests WHERE "
	    "id = ?", &st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		lb_err_set(err, LB_ENOTFOUND, "no recovery request %s", id);
		goto out;
	}
	if (r != SQLITE_ROW) {
		core_db_fail(db, "read recovery request", err);
		goto out;
	}
	if (archive_row_to_request(st, rq, err) == -1)
		goto out;
	if (archive_load_records(db, rq, err) == -1 ||
	    load_requester_cert(db, rq, err) == -1) {
		archive_recovery_clear(rq);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/*
 * Refuses a request that is no longer live for an action: expired or
 * collected (410 through *expired), denied, fetched, or (for approvals)
 * already approved.  allow lists the statuses the action accepts.
 */
int
archive_check_status(const archive_recovery *rq, const char *const *allow,
    bool *expired, lb_err *err)
{
	char when[32];
	size_t i;

	/*
	 * rq comes from a load_request that returned 0, and row_to_request
	 * fails on a NULL status; the analyzer cannot see that lb_err_set,
	 * in another file, always returns -1.
	 */
	/* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): see above */
	if (strcmp(rq->status, "collected") == 0) {
		if (expired != NULL)
			*expired = true;
		return lb_err_set(err, LB_ECONFLICT, "recovery request %s was "
		    "collected: its keys were fetched and its shares are "
		    "deleted; open a new request", rq->id);
	}
	if (strcmp(rq->status, "expired") == 0 || (strcmp(rq->status,
	    "denied") != 0 && rq->expires <= time(NULL))) {
		if (expired != NULL)
			*expired = true;
		core_time_fmt(rq->expires, when, sizeof(when));
		return lb_err_set(err, LB_ECONFLICT, "recovery request %s "
		    "expired at %s: it releases nothing; open a new request",
		    rq->id, when);
	}
	for (i = 0; allow[i] != NULL; i++)
		if (strcmp(rq->status, allow[i]) == 0)
			return 0;
	if (strcmp(rq->status, "denied") == 0)
		return lb_err_set(err, LB_ECONFLICT, "recovery request %s was "
		    "denied by %s (%s): it releases nothing", rq->id,
		    rq->denied_by != NULL ? rq->denied_by : "?",
		    rq->deny_reason != NULL ? rq->deny_reason : "no reason");
	if (strcmp(rq->status, "fetched") == 0)
		return lb_err_set(err, LB_ECONFLICT, "recovery request %s is "
		    "complete: its keys were fetched", rq->id);
	if (strcmp(rq->status, "approved") == 0)
		return lb_err_set(err, LB_ECONFLICT, "recovery request %s is "
		    "already approved: no more approvals are needed", rq->id);
	return lb_err_set(err, LB_ECONFLICT, "recovery request %s is %s",
	    rq->id, rq->status);
}

/* The index of record_id among rq's records, or -1. */
long
archive_record_index(const archive_recovery *rq, int64_t record_id)
{
	size_t i;

	for (i = 0; i < rq->nrecords; i++)
		if (rq->records[i].record_id == record_id)
			return (long)i;
	return -1;
}

/* The caller's escrow share of each covered record (NULL where none);
 * *held counts them. */
int
archive_load_agent_shares(sqlite3 *db, archive_recovery *rq, const char *agent_serial,
    size_t *held, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	archive_recovery_record *r;
	long i;
	int rc = -1, s;

	*held = 0;
	if (core_db_prepare(db, "SELECT s.record_id, s.cms FROM escrow_shares s JOIN "
	    "recovery_request_records rr ON rr.record_id = s.record_id WHERE "
	    "rr.request_id = ? AND s.agent_serial = ?", &st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, rq->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, agent_serial, -1, SQLITE_STATIC);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if ((i = archive_record_index(rq, sqlite3_column_int64(st, 0))) < 0)
			continue;
		r = &rq->records[i];
		free(r->share);
		if (core_db_blob_dup(st, 1, &r->share, &r->share_len) == -1) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		(*held)++;
	}
	rc = core_db_rows_done(db, s, "escrow shares", err);
out:
	sqlite3_finalize(st);
	return rc;
}

/* The record's ciphertext and certificate, and the rewrapped shares. */
int
archive_load_package_record(sqlite3 *db, const char *id, archive_recovery_record *r,
    lb_err *err)
{
	sqlite3_stmt *st = NULL;
	ca_cert_info ci;
	unsigned char *b = NULL;
	size_t bl = 0, cap = 0;
	void *p;
	int rc = -1, s;

	memset(&ci, 0, sizeof(ci));
	if (core_db_prepare(db, "SELECT email, key_alg, share_alg, share_wrap, iv, "
	    "tag, ciphertext FROM escrow_records WHERE id = ?", &st,
	    err) == -1)
		return -1;
	sqlite3_bind_int64(st, 1, r->record_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		core_db_fail(db, "escrow record", err);
		goto out;
	}
	if (sqlite3_column_bytes(st, 4) != ARCHIVE_IV_LEN ||
	    sqlite3_column_bytes(st, 5) != ARCHIVE_TAG_LEN) {
		lb_err_set(err, LB_EINTERNAL, "escrow record %lld: iv or tag "
		    "has the wrong length", (long long)r->record_id);
		goto out;
	}
	memcpy(r->iv, sqlite3_column_blob(st, 4), ARCHIVE_IV_LEN);
	memcpy(r->tag, sqlite3_column_blob(st, 5), ARCHIVE_TAG_LEN);
	if ((r->email = core_db_text_dup(st, 0)) == NULL ||
	    (r->key_alg = core_db_text_dup(st, 1)) == NULL ||
	    (r->share_alg = core_db_text_dup(st, 2)) == NULL ||
	    (r->share_wrap = core_db_text_dup(st, 3)) == NULL ||
	    core_db_blob_dup(st, 6, &r->ciphertext, &r->ciphertext_len) == -1) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (ca_cert_get(db, r->serial, &ci, err) == -1)
		goto out;
	free(r->cert);
	r->cert = ci.der;
	r->cert_len = ci.der_len;
	ci.der = NULL;
	if (core_db_prepare(db, "SELECT cms FROM recovery_shares WHERE request_id = ? "
	    "AND record_id = ? ORDER BY agent_serial", &st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->record_id);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (r->nshares == cap) {
			cap = cap ? cap * 2 : 4;
			if ((p = realloc(r->shares, cap *
			    sizeof(*r->shares))) == NULL) {
				lb_err_set(err, LB_EINTERNAL, "out of memory");
				goto out;
			}
			r->shares = p;
			if ((p = realloc(r->share_lens, cap *
			    sizeof(*r->share_lens))) == NULL) {
				lb_err_set(err, LB_EINTERNAL, "out of memory");
				goto out;
			}
			r->share_lens = p;
		}
		if (core_db_blob_dup(st, 0, &b, &bl) == -1) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		r->shares[r->nshares] = b;
		r->share_lens[r->nshares++] = bl;
	}
	rc = core_db_rows_done(db, s, "recovery shares", err);
out:
	sqlite3_finalize(st);
	ca_cert_info_clear(&ci);
	return rc;
}
