/*
 * recovery.c - the server side of M-of-N recovery: requests, approvals,
 * denials and expiry, stored in the recovery_* tables of
 * schema/002_escrow.sql (the package the requester fetches and its
 * collection: fetch.c).  The server only relays:
 * agents hand in their shares already re-encrypted to the request's
 * one-time certificate, so nothing stored here decrypts a key.
 *
 * Every rule of the workflow is enforced here (the HTTP layer only parses
 * and authenticates): who may request, approve, deny and fetch, once, for
 * which records, in which state, before which time.  Each change is
 * committed with its audit row; each refusal leaves an audit row of its
 * own ("recovery-*-refused"), committed after the refused change was
 * rolled back.  A request past its expiry is marked expired, with an
 * audit row, by the first call that touches it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "archive/archive_int.h"

/* A request covers at most this many escrow records. */
#define MAX_RECORDS 1000
/* A rewrapped share (CMS EnvelopedData to an RSA key) is far smaller. */
#define SHARE_CMS_MAX ((size_t)16 * 1024)
/* The one-time key: shares protect keys for years. */
#define REQUEST_KEY_BITS 3072
#define TTL_MAX (366L * 86400)
/* Clock skew allowed for the one-time certificate's notBefore. */
#define SKEW_SECONDS 300


/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

bool
archive_request_id_valid(const char *id)
{
	size_t i;

	if (id == NULL || strlen(id) != ARCHIVE_REQUEST_ID_LEN)
		return false;
	for (i = 0; i < ARCHIVE_REQUEST_ID_LEN; i++)
		if (!isdigit((unsigned char)id[i]) &&
		    (id[i] < 'a' || id[i] > 'f'))
			return false;
	return true;
}

void
archive_actor_of(const archive_caller *who, char *buf, size_t len)
{
	snprintf(buf, len, "api:%s", who->email != NULL ? who->email : "?");
}

bool
archive_same_person(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

/* A reason given by a person: 1..ARCHIVE_REASON_MAX bytes, no control
 * characters (it lands in the audit log and on other people's screens). */
int
archive_reason_check(const char *reason, lb_err *err)
{
	size_t i, n = reason != NULL ? strlen(reason) : 0;

	if (n == 0)
		return lb_err_set(err, LB_EINVAL, "a reason is required: say "
		    "why (it is shown to the agents and audited)");
	if (n > ARCHIVE_REASON_MAX)
		return lb_err_set(err, LB_EINVAL, "the reason is longer than "
		    "%d bytes", ARCHIVE_REASON_MAX);
	for (i = 0; i < n; i++)
		if ((unsigned char)reason[i] < 0x20 || reason[i] == 0x7f)
			return lb_err_set(err, LB_EINVAL, "the reason holds a "
			    "control character");
	return 0;
}

/* Leaves the audit row of a refused call in its own transaction. */
void
archive_recovery_refused(sqlite3 *db, const archive_caller *who,
    const char *action, const char *object, const lb_err *why)
{
	char actor[320];
	lb_err err;

	if (why == NULL || why->code == LB_EINTERNAL)
		return;
	lb_err_clear(&err);
	archive_actor_of(who, actor, sizeof(actor));
	if (core_db_begin(db, &err) == -1 ||
	    core_audit_append(db, actor, action, object != NULL ? object : "",
	    why->msg, &err) == -1 || core_db_commit(db, &err) == -1) {
		core_db_rollback(db);
		log_warnx("cannot audit %s by %s: %s", action, actor, err.msg);
	}
}

/* Deletes the rewrapped shares of request id (inside a transaction). */
static int
drop_shares(sqlite3 *db, const char *id, lb_err *err)
{
	const char *const args[] = { id };

	return core_db_run(db, "DELETE FROM recovery_shares WHERE "
	    "request_id = ?", args, 1, "delete the request's shares", err);
}

/*
 * Ends request id inside the open transaction: runs st (the update of its
 * state, finalized), deletes its shares, audits action with detail,
 * commits and truncates the WAL.  Rolls back on failure.
 */
int
archive_end_request(sqlite3 *db, const archive_caller *who, sqlite3_stmt **st,
    const char *id, const char *action, const char *detail, lb_err *err)
{
	char actor[320];

	archive_actor_of(who, actor, sizeof(actor));
	if (core_db_exec(db, st, "recovery", err) == -1 ||
	    drop_shares(db, id, err) == -1 ||
	    core_audit_append(db, actor, action, id, detail, err) == -1) {
		core_db_rollback(db);
		return -1;
	}
	if (core_db_commit(db, err) == -1)
		return -1;
	core_db_wal_truncate(db);
	return 0;
}

/*
 * Marks live requests past their expiry as expired (one of them: id; all:
 * NULL), each with an audit row and without its rewrapped shares, in one
 * committed transaction.
 */
int
archive_expire_due(sqlite3 *db, const archive_caller *who, const char *id,
    lb_err *err)
{
	sqlite3_stmt *st = NULL, *up = NULL;
	char actor[320], detail[128], when[32];
	time_t now = time(NULL);
	int rc = -1, r, n = 0;

	archive_actor_of(who, actor, sizeof(actor));
	if (core_db_begin(db, err) == -1)
		return -1;
	if (core_db_prepare(db, "SELECT id, status, expires FROM "
	    "recovery_requests WHERE status IN ('pending', 'approved', "
	    "'fetched') AND collected IS NULL AND expires <= ? AND (? IS "
	    "NULL OR id = ?)", &st, err) == -1 ||
	    core_db_prepare(db, "UPDATE recovery_requests SET status = "
	    "'expired' WHERE id = ?", &up, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const char *rid = (const char *)sqlite3_column_text(st, 0);

		core_time_fmt((time_t)sqlite3_column_int64(st, 2), when,
		    sizeof(when));
		snprintf(detail, sizeof(detail), "expired at %s (was %s): "
		    "releases nothing", when,
		    (const char *)sqlite3_column_text(st, 1));
		sqlite3_reset(up);
		sqlite3_bind_text(up, 1, rid, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(up) != SQLITE_DONE) {
			core_db_fail(db, "expire recovery request", err);
			goto out;
		}
		if (drop_shares(db, rid, err) == -1 ||
		    core_audit_append(db, actor, "recovery.expire", rid, detail,
		    err) == -1)
			goto out;
		log_info("recovery request %s expired", rid);
		n++;
	}
	if (r != SQLITE_DONE) {
		core_db_fail(db, "expire recovery requests", err);
		goto out;
	}
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	st = up = NULL;
	if (core_db_commit(db, err) == -1)
		return -1;
	if (n > 0)
		core_db_wal_truncate(db);
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(up);
	if (rc == -1)
		core_db_rollback(db);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Opening a request                                                   */

/* The one-time certificate: RSA >= 3072, valid now, signed by the
 * requester's own credential key. */
static int
check_request_cert(sqlite3 *db, const archive_caller *who, X509 *req,
    lb_err *err)
{
	EVP_PKEY *pub = X509_get0_pubkey(req);
	ca_cert_info ci;
	X509 *cred = NULL;
	time_t soon = time(NULL) + SKEW_SECONDS, now = time(NULL);
	int rc = -1;

	memset(&ci, 0, sizeof(ci));
	if (pub == NULL || !EVP_PKEY_is_a(pub, "RSA") ||
	    EVP_PKEY_get_bits(pub) < REQUEST_KEY_BITS) {
		lb_err_set(err, LB_EINVAL, "the request's one-time key must be "
		    "RSA of at least %d bits", REQUEST_KEY_BITS);
		goto out;
	}
	if (X509_cmp_time(X509_get0_notBefore(req), &soon) > 0 ||
	    X509_cmp_time(X509_get0_notAfter(req), &now) < 0) {
		lb_err_set(err, LB_EINVAL, "the request's one-time certificate "
		    "is not valid now");
		goto out;
	}
	if (ca_cert_get(db, who->serial, &ci, err) == -1 ||
	    (cred = ca_cert_parse(ci.der, ci.der_len, err)) == NULL)
		goto out;
	if (X509_verify(req, X509_get0_pubkey(cred)) != 1) {
		lb_err_set(err, LB_EINVAL, "the request's one-time certificate "
		    "is not signed by your credential (serial %s): agents "
		    "would refuse it", who->serial);
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	X509_free(cred);
	ca_cert_info_clear(&ci);
	return rc;
}

static int
request_ttl(ca_ctx *ca, long *ttl, lb_err *err)
{
	lb_err cerr;

	lb_err_clear(&cerr);
	if (core_conf_get_long(ca_get0_conf(ca), "escrow", "request_ttl",
	    ARCHIVE_REQUEST_TTL_DEFAULT, 1, TTL_MAX, ttl, &cerr) == -1) {
		/* the operator's config, not the caller's input */
		log_warnx("%s", cerr.msg);
		return lb_err_set(err, LB_EINTERNAL, "%s", cerr.msg);
	}
	return 0;
}

/* The covered records' serials, comma-separated, for audit details. */
void
archive_serial_list(const archive_recovery *rq, char *buf, size_t len)
{
	size_t i, n;

	buf[0] = '\0';
	for (i = 0; i < rq->nrecords; i++) {
		n = strlen(buf);
		if (n + strlen(rq->records[i].serial) + 8 >= len) {
			snprintf(buf + n, len - n, "%s...", i > 0 ? ", " : "");
			return;
		}
		snprintf(buf + n, len - n, "%s%s", i > 0 ? ", " : "",
		    rq->records[i].serial);
	}
}

/*
 * The checks before a request is opened: the caller's role, the owner's
 * address, the reason, the serial (normalised into norm, 130 bytes), not
 * one's own keys, a one-time certificate given.
 */
static int
open_allowed(const archive_caller *who, const char *email, const char *serial,
    const char *reason, size_t cert_len, char *norm, lb_err *err)
{
	if ((who->roles & CA_ROLE_RECOVERY_OFFICER) == 0)
		return lb_err_set(err, LB_EFORBIDDEN, "opening a recovery "
		    "request needs the role recovery-officer");
	if (email == NULL || !core_email_valid(email))
		return lb_err_set(err, LB_EINVAL, "email must be the key "
		    "owner's address");
	if (archive_reason_check(reason, err) == -1)
		return -1;
	if (serial != NULL && ca_serial_arg(serial, norm, 130, err) == -1)
		return -1;
	if (archive_same_person(who->email, email))
		return lb_err_set(err, LB_EFORBIDDEN, "%s may not request "
		    "recovery of his own keys: another recovery officer must",
		    email);
	if (cert_len == 0)
		return lb_err_set(err, LB_EINVAL, "the request needs its "
		    "one-time certificate");
	return 0;
}

/* The escrow records of email (the one serial when not NULL): ids. */
static int
matching_records(sqlite3 *db, const char *email, const char *serial,
    int64_t ids[MAX_RECORDS], size_t *n, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int s;

	*n = 0;
	if (core_db_prepare(db, "SELECT id FROM escrow_records WHERE "
	    "lower(email) = lower(?) AND (? IS NULL OR serial = ?) ORDER BY "
	    "id", &st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, serial, -1, SQLITE_STATIC);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == MAX_RECORDS) {
			sqlite3_finalize(st);
			return lb_err_set(err, LB_EINVAL, "%s has more than %d "
			    "escrowed keys: request them one by one "
			    "(--serial)", email, MAX_RECORDS);
		}
		ids[(*n)++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (s != SQLITE_DONE)
		return core_db_fail(db, "escrow records", err);
	if (*n == 0 && serial != NULL)
		return lb_err_set(err, LB_ENOTFOUND, "no escrowed key of %s "
		    "with serial %s", email, serial);
	if (*n == 0)
		return lb_err_set(err, LB_ENOTFOUND, "no escrowed key of %s: "
		    "nothing to recover", email);
	return 0;
}

static int
open_tx(ca_ctx *ca, sqlite3 *db, const archive_caller *who, const char *email,
    const char *serial, const char *reason, const unsigned char *cert_buf,
    size_t cert_len, archive_recovery *out, lb_err *err)
{
	X509 *request_cert = NULL;
	sqlite3_stmt *ins = NULL;
	unsigned char *der = NULL;
	char norm[130], actor[320], detail[2048 + ARCHIVE_REASON_MAX];
	char serials[1024], when[32];
	time_t now = time(NULL);
	long ttl = 0;
	int64_t ids[MAX_RECORDS];
	size_t n = 0, i;
	int dlen = 0, rc = -1;
	bool in_tx = false;

	if (open_allowed(who, email, serial, reason, cert_buf != NULL ?
	    cert_len : 0, norm, err) == -1)
		goto out;
	if ((request_cert = ca_cert_parse(cert_buf, cert_len, err)) == NULL)
		goto out;
	if ((dlen = i2d_X509(request_cert, &der)) <= 0) {
		lb_err_set(err, LB_EINTERNAL, "cannot encode the one-time "
		    "certificate");
		goto out;
	}
	if (request_ttl(ca, &ttl, err) == -1 ||
	    check_request_cert(db, who, request_cert, err) == -1)
		goto out;
	if (core_db_begin(db, err) == -1)
		goto out;
	in_tx = true;
	if (matching_records(db, email, serial != NULL ? norm : NULL, ids, &n,
	    err) == -1)
		goto out;
	if (core_random_hex(out->id, ARCHIVE_REQUEST_ID_LEN / 2) == -1) {
		lb_err_set(err, LB_EINTERNAL, "no randomness");
		goto out;
	}
	if (core_db_prepare(db, "INSERT INTO recovery_requests (id, "
	    "requester_serial, requested_by, email, serial, reason, "
	    "request_cert, status, created, expires) VALUES (?, ?, ?, ?, ?, ?, "
	    "?, 'pending', ?, ?)",
	    &ins, err) == -1)
		goto out;
	sqlite3_bind_text(ins, 1, out->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 2, who->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 3, who->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 4, email, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 5, serial != NULL ? norm : NULL, -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(ins, 6, reason, -1, SQLITE_STATIC);
	sqlite3_bind_blob(ins, 7, der, dlen, SQLITE_STATIC);
	sqlite3_bind_int64(ins, 8, (sqlite3_int64)now);
	sqlite3_bind_int64(ins, 9, (sqlite3_int64)now + ttl);
	if (core_db_exec(db, &ins, "recovery", err) == -1 ||
	    core_db_prepare(db, "INSERT INTO recovery_request_records "
	    "(request_id, record_id) VALUES (?, ?)", &ins, err) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, out->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 2, ids[i]);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			core_db_fail(db, "recovery request records", err);
			goto out;
		}
	}
	sqlite3_finalize(ins);
	ins = NULL;
	{
		char id[ARCHIVE_REQUEST_ID_LEN + 1];

		memcpy(id, out->id, sizeof(id));
		if (archive_load_request(db, id, out, err) == -1)
			goto out;
	}
	archive_serial_list(out, serials, sizeof(serials));
	core_time_fmt(out->expires, when, sizeof(when));
	snprintf(detail, sizeof(detail), "keys of %s (%zu: %s); reason: %s; "
	    "expires %s", email, out->nrecords, serials, reason, when);
	archive_actor_of(who, actor, sizeof(actor));
	if (core_audit_append(db, actor, "recovery.request", out->id, detail,
	    err) == -1)
		goto out;
	in_tx = false;
	if (core_db_commit(db, err) == -1)
		goto out;
	log_info("recovery request %s opened by %s for %s (%zu keys)",
	    out->id, who->email, email, out->nrecords);
	rc = 0;
out:
	sqlite3_finalize(ins);
	if (in_tx)
		core_db_rollback(db);
	OPENSSL_free(der);
	X509_free(request_cert);
	return rc;
}

int
archive_recovery_open(ca_ctx *ca, sqlite3 *db, const archive_caller *who,
    const char *email, const char *serial, const char *reason,
    const unsigned char *request_cert, size_t request_cert_len,
    archive_recovery *out, lb_err *err)
{
	memset(out, 0, sizeof(*out));
	if (open_tx(ca, db, who, email, serial, reason, request_cert,
	    request_cert_len, out, err) == 0)
		return 0;
	archive_recovery_clear(out);
	archive_recovery_refused(db, who, "recovery.request_refused",
	    email != NULL ? email : "", err);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Listing and reading                                                 */

int
archive_recovery_list(sqlite3 *db, const archive_caller *who,
    bool awaiting_agent, int limit, archive_recovery **out, size_t *n,
    lb_err *err)
{
	sqlite3_stmt *st = NULL;
	archive_recovery *a = NULL;
	size_t cap = 0, cnt = 0;
	void *p;
	int rc = -1, s;

	*out = NULL;
	*n = 0;
	if (awaiting_agent && (who->roles & CA_ROLE_RECOVERY_AGENT) == 0)
		return lb_err_set(err, LB_EFORBIDDEN, "requests awaiting an "
		    "agent are listed for recovery agents only");
	if ((who->roles & (CA_ROLE_RECOVERY_AGENT |
	    CA_ROLE_RECOVERY_OFFICER)) == 0)
		return lb_err_set(err, LB_EFORBIDDEN, "recovery requests are "
		    "listed for recovery officers and agents only");
	if (archive_expire_due(db, who, NULL, err) == -1)
		return -1;
	if (core_db_prepare(db, "SELECT " ARCHIVE_REQ_COLS " FROM "
	    "recovery_requests q WHERE ? = 0 OR (status = 'pending' AND "
	    "expires > ? AND lower(email) <> lower(?3) AND "
	    "lower(requested_by) <> lower(?3) AND EXISTS (SELECT 1 FROM "
	    "recovery_request_records rr JOIN escrow_shares s ON s.record_id = "
	    "rr.record_id WHERE rr.request_id = q.id AND s.agent_serial = ?4) "
	    "AND NOT EXISTS (SELECT 1 FROM recovery_approvals a WHERE "
	    "a.request_id = q.id AND (a.agent_serial = ?4 OR "
	    "lower(a.approved_by) = lower(?3)))) ORDER BY created DESC, id "
	    "LIMIT ?5", &st, err) == -1)
		return -1;
	sqlite3_bind_int(st, 1, awaiting_agent ? 1 : 0);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 3, who->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, who->serial, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 5, limit > 0 ? limit : -1);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 8;
			if ((p = realloc(a, cap * sizeof(*a))) == NULL) {
				lb_err_set(err, LB_EINTERNAL, "out of memory");
				goto out;
			}
			a = p;
		}
		if (archive_row_to_request(st, &a[cnt], err) == -1)
			goto out;
		cnt++;
		if (archive_load_records(db, &a[cnt - 1], err) == -1)
			goto out;
	}
	if (s != SQLITE_DONE) {
		core_db_fail(db, "recovery requests", err);
		goto out;
	}
	*out = a;
	*n = cnt;
	a = NULL;
	rc = 0;
out:
	sqlite3_finalize(st);
	if (a != NULL)
		archive_recovery_list_free(a, cnt);
	return rc;
}

int
archive_recovery_get(sqlite3 *db, const archive_caller *who, const char *id,
    archive_recovery *out, bool *expired, lb_err *err)
{
	size_t held = 0;

	memset(out, 0, sizeof(*out));
	if (expired != NULL)
		*expired = false;
	if ((who->roles & (CA_ROLE_RECOVERY_AGENT |
	    CA_ROLE_RECOVERY_OFFICER)) == 0)
		return lb_err_set(err, LB_EFORBIDDEN, "recovery requests are "
		    "shown to recovery officers and agents only");
	if (!archive_request_id_valid(id))
		return archive_load_request(db, id, out, err);
	if (archive_expire_due(db, who, id, err) == -1 ||
	    archive_load_request(db, id, out, err) == -1)
		return -1;
	if (strcmp(out->status, "expired") == 0 && expired != NULL)
		*expired = true;
	if ((who->roles & CA_ROLE_RECOVERY_AGENT) != 0 &&
	    strcmp(out->status, "pending") == 0 &&
	    archive_load_agent_shares(db, out, who->serial, &held, err) == -1) {
		archive_recovery_clear(out);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Approving                                                           */

/* A share handed in must be EnvelopedData to the one-time certificate. */
static int
check_share_cms(const archive_share_in *in, X509 *req_cert, lb_err *err)
{
	CMS_ContentInfo *cms = NULL;
	STACK_OF(CMS_RecipientInfo) *ris;
	CMS_RecipientInfo *ri;
	const unsigned char *p = in->cms;
	int rc = -1;

	if (in->cms_len == 0 || in->cms_len > SHARE_CMS_MAX ||
	    (cms = d2i_CMS_ContentInfo(NULL, &p, (long)in->cms_len)) == NULL ||
	    p != in->cms + in->cms_len ||
	    OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped ||
	    (ris = CMS_get0_RecipientInfos(cms)) == NULL ||
	    sk_CMS_RecipientInfo_num(ris) != 1 ||
	    (ri = sk_CMS_RecipientInfo_value(ris, 0)) == NULL ||
	    CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_TRANS ||
	    CMS_RecipientInfo_ktri_cert_cmp(ri, req_cert) != 0) {
		lb_err_set(err, LB_EINVAL, "the share for record %lld is not "
		    "CMS EnvelopedData to this request's one-time certificate",
		    (long long)in->record_id);
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	CMS_ContentInfo_free(cms);
	return rc;
}

/* Refuses an approval that the rules forbid before any share is read. */
static int
check_approver(sqlite3 *db, const archive_caller *who,
    const archive_recovery *rq, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char when[32];
	int rc = -1, s;

	if (archive_same_person(who->email, rq->requester_email))
		return lb_err_set(err, LB_EFORBIDDEN, "%s requested this "
		    "recovery and may not also approve it", who->email);
	if (archive_same_person(who->email, rq->email))
		return lb_err_set(err, LB_EFORBIDDEN, "%s owns the keys of "
		    "this request and may not approve their recovery",
		    who->email);
	if (core_db_prepare(db, "SELECT created FROM recovery_approvals WHERE "
	    "request_id = ? AND (agent_serial = ? OR lower(approved_by) = "
	    "lower(?))", &st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, rq->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, who->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, who->email, -1, SQLITE_STATIC);
	s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		core_time_fmt((time_t)sqlite3_column_int64(st, 0), when,
		    sizeof(when));
		lb_err_set(err, LB_ECONFLICT, "%s approved recovery request "
		    "%s already (at %s): an agent approves once", who->email,
		    rq->id, when);
		goto out;
	}
	rc = core_db_rows_done(db, s, "recovery approvals", err);
out:
	sqlite3_finalize(st);
	return rc;
}

/* Exactly one share per covered record the agent holds a share of. */
static int
check_share_set(const archive_recovery *rq, const archive_share_in *shares,
    size_t nshares, size_t held, lb_err *err)
{
	unsigned char *seen = NULL;
	long k;
	size_t i;
	int rc = -1;

	if ((seen = calloc(rq->nrecords + 1, 1)) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	for (i = 0; i < nshares; i++) {
		k = archive_record_index(rq, shares[i].record_id);
		if (k < 0 || rq->records[k].share == NULL) {
			lb_err_set(err, LB_EINVAL, "record %lld is not one "
			    "this request covers with a share of yours",
			    (long long)shares[i].record_id);
			goto out;
		}
		if (seen[k]) {
			lb_err_set(err, LB_EINVAL, "two shares for record %lld",
			    (long long)shares[i].record_id);
			goto out;
		}
		seen[k] = 1;
	}
	if (nshares != held) {
		for (i = 0; i < rq->nrecords; i++)
			if (rq->records[i].share != NULL && !seen[i])
				break;
		lb_err_set(err, LB_EINVAL, "an approval hands in one share per "
		    "covered record you hold a share of: %zu expected, %zu "
		    "given (missing: record %lld, serial %s)", held, nshares,
		    i < rq->nrecords ?
		    (long long)rq->records[i].record_id : 0LL,
		    i < rq->nrecords ? rq->records[i].serial : "?");
		goto out;
	}
	rc = 0;
out:
	free(seen);
	return rc;
}

/* True when every covered record has its threshold of approvals. */
static bool
all_met(const archive_recovery *rq)
{
	size_t i;

	for (i = 0; i < rq->nrecords; i++)
		if (rq->records[i].approvals < rq->records[i].threshold)
			return false;
	return rq->nrecords > 0;
}

static int
approve_tx(sqlite3 *db, const archive_caller *who, const char *id,
    const archive_share_in *shares, size_t nshares, bool *expired,
    lb_err *err)
{
	static const char *const live[] = { "pending", NULL };
	archive_recovery rq;
	sqlite3_stmt *st = NULL;
	X509 *req_cert = NULL;
	const unsigned char *p;
	char actor[320], detail[256];
	size_t held = 0, i;
	bool in_tx = false, done;
	int rc = -1;

	memset(&rq, 0, sizeof(rq));
	if ((who->roles & CA_ROLE_RECOVERY_AGENT) == 0) {
		lb_err_set(err, LB_EFORBIDDEN, "approving a recovery request "
		    "needs the role recovery-agent; %s holds none", who->email);
		goto out;
	}
	if (archive_expire_due(db, who, id, err) == -1 || core_db_begin(db, err) == -1)
		goto out;
	in_tx = true;
	if (archive_load_request(db, id, &rq, err) == -1 ||
	    archive_check_status(&rq, live, expired, err) == -1 ||
	    check_approver(db, who, &rq, err) == -1 ||
	    archive_load_agent_shares(db, &rq, who->serial, &held, err) == -1)
		goto out;
	/* agents' clients check the statement themselves; the server
	 * refuses too, so that nothing is stored without one */
	if (rq.statement == NULL) {
		lb_err_set(err, LB_ECONFLICT, "the requesting officer has not "
		    "signed request %s's statement: nothing can be approved",
		    rq.id);
		goto out;
	}
	if (held == 0) {
		lb_err_set(err, LB_EFORBIDDEN, "your credential (serial %s) "
		    "holds no escrow share of the keys this request covers",
		    who->serial);
		goto out;
	}
	if (check_share_set(&rq, shares, nshares, held, err) == -1)
		goto out;
	p = rq.request_cert;
	if ((req_cert = d2i_X509(NULL, &p, (long)rq.request_cert_len)) ==
	    NULL) {
		lb_err_set(err, LB_EINTERNAL, "stored request certificate of "
		    "%s unreadable", rq.id);
		goto out;
	}
	for (i = 0; i < nshares; i++)
		if (check_share_cms(&shares[i], req_cert, err) == -1)
			goto out;
	if (core_db_prepare(db, "INSERT INTO recovery_approvals (request_id, "
	    "agent_serial, approved_by, created) VALUES (?, ?, ?, ?)", &st,
	    err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, rq.id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, who->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, who->email, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	if (core_db_exec(db, &st, "recovery", err) == -1 ||
	    core_db_prepare(db, "INSERT INTO recovery_shares (request_id, "
	    "record_id, agent_serial, cms) VALUES (?, ?, ?, "
	    "?)", &st, err) == -1)
		goto out;
	for (i = 0; i < nshares; i++) {
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, rq.id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, shares[i].record_id);
		sqlite3_bind_text(st, 3, who->serial, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, shares[i].cms, (int)shares[i].cms_len,
		    SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			core_db_fail(db, "recovery shares", err);
			goto out;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	/* recount: this approval counts for the records it holds shares of */
	for (i = 0; i < rq.nrecords; i++)
		archive_record_clear(&rq.records[i]);
	free(rq.records);
	rq.records = NULL;
	rq.nrecords = 0;
	rq.threshold = 0;
	if (archive_load_records(db, &rq, err) == -1)
		goto out;
	done = all_met(&rq);
	if (done) {
		if (core_db_prepare(db, "UPDATE recovery_requests SET status = "
		    "'approved' WHERE id = ?", &st, err) == -1)
			goto out;
		sqlite3_bind_text(st, 1, rq.id, -1, SQLITE_STATIC);
		if (core_db_exec(db, &st, "recovery", err) == -1)
			goto out;
	}
	snprintf(detail, sizeof(detail), "approval %d with shares of %zu "
	    "key(s); request %s", rq.approvals, nshares, done ? "approved: "
	    "the requester may fetch the keys" : "still pending");
	archive_actor_of(who, actor, sizeof(actor));
	if (core_audit_append(db, actor, "recovery.approve", rq.id, detail,
	    err) == -1)
		goto out;
	in_tx = false;
	if (core_db_commit(db, err) == -1)
		goto out;
	log_info("recovery request %s approved by %s%s", rq.id, who->email,
	    done ? " (threshold reached)" : "");
	rc = 0;
out:
	sqlite3_finalize(st);
	if (in_tx)
		core_db_rollback(db);
	X509_free(req_cert);
	archive_recovery_clear(&rq);
	return rc;
}

int
archive_recovery_approve(sqlite3 *db, const archive_caller *who,
    const char *id, const archive_share_in *shares, size_t nshares,
    bool *expired, lb_err *err)
{
	if (expired != NULL)
		*expired = false;
	if (approve_tx(db, who, id, shares, nshares, expired, err) == 0)
		return 0;
	archive_recovery_refused(db, who, "recovery.approve_refused", id, err);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Denying                                                             */

static int
deny_tx(sqlite3 *db, const archive_caller *who, const char *id,
    const char *reason, bool *expired, lb_err *err)
{
	static const char *const live[] = { "pending", "approved", NULL };
	archive_recovery rq;
	sqlite3_stmt *st = NULL;
	char detail[64 + ARCHIVE_REASON_MAX];
	size_t held = 0;
	bool in_tx = false;
	int rc = -1;

	memset(&rq, 0, sizeof(rq));
	if (archive_reason_check(reason, err) == -1)
		goto out;
	if (archive_expire_due(db, who, id, err) == -1 || core_db_begin(db, err) == -1)
		goto out;
	in_tx = true;
	if (archive_load_request(db, id, &rq, err) == -1 ||
	    archive_check_status(&rq, live, expired, err) == -1)
		goto out;
	if (archive_same_person(who->email, rq.email)) {
		lb_err_set(err, LB_EFORBIDDEN, "%s owns the keys of this "
		    "request and may not decide on their recovery", who->email);
		goto out;
	}
	if ((who->roles & CA_ROLE_RECOVERY_AGENT) != 0) {
		if (archive_load_agent_shares(db, &rq, who->serial, &held,
		    err) == -1)
			goto out;
	}
	if (held == 0 && !((who->roles & CA_ROLE_RECOVERY_OFFICER) != 0 &&
	    archive_same_person(who->email, rq.requester_email))) {
		lb_err_set(err, LB_EFORBIDDEN, "only a recovery agent holding "
		    "a share of these keys, or the requester withdrawing it, "
		    "may deny recovery request %s", rq.id);
		goto out;
	}
	if (core_db_prepare(db, "UPDATE recovery_requests SET status = "
	    "'denied', denied_by = ?, deny_reason = ? WHERE id = "
	    "?", &st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, who->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, rq.id, -1, SQLITE_STATIC);
	snprintf(detail, sizeof(detail), "denied (was %s): %s", rq.status,
	    reason);
	in_tx = false;
	if (archive_end_request(db, who, &st, rq.id, "recovery.deny", detail,
	    err) == -1)
		goto out;
	log_info("recovery request %s denied by %s", rq.id, who->email);
	rc = 0;
out:
	sqlite3_finalize(st);
	if (in_tx)
		core_db_rollback(db);
	archive_recovery_clear(&rq);
	return rc;
}

int
archive_recovery_deny(sqlite3 *db, const archive_caller *who, const char *id,
    const char *reason, bool *expired, lb_err *err)
{
	if (expired != NULL)
		*expired = false;
	if ((who->roles & (CA_ROLE_RECOVERY_AGENT |
	    CA_ROLE_RECOVERY_OFFICER)) == 0) {
		lb_err_set(err, LB_EFORBIDDEN, "denying a recovery request "
		    "needs the role recovery-agent or recovery-officer");
	} else if (deny_tx(db, who, id, reason, expired, err) == 0) {
		return 0;
	}
	archive_recovery_refused(db, who, "recovery.deny_refused", id, err);
	return -1;
}
