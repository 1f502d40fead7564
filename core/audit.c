/*
 * audit.c - the append-only audit log.  Each row carries the SHA-256 of the
 * previous row and its own hash over (id, created, actor, action, object, detail,
 * prev_hash), so that any change, insertion or deletion inside the chain is
 * found by core_audit_verify.  Rows are written inside the transaction that
 * makes the change they record.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/core.h"

#define ZERO_HASH \
	"0000000000000000000000000000000000000000000000000000000000000000"

/* Feeds one length-prefixed field, so that field boundaries are hashed. */
static int
hash_field(EVP_MD_CTX *md, const char *s)
{
	size_t n = strlen(s);
	unsigned char len[8];
	int i;

	for (i = 0; i < 8; i++)
		len[i] = (unsigned char)(n >> (56 - 8 * i));
	return EVP_DigestUpdate(md, len, sizeof(len)) == 1 &&
	    EVP_DigestUpdate(md, s, n) == 1 ? 0 : -1;
}

static int
row_hash(int64_t id, int64_t ts, const char *actor, const char *action,
    const char *object, const char *detail, const char *prev, char out[65])
{
	EVP_MD_CTX *md = NULL;
	unsigned char h[32];
	char num[64];
	unsigned int hl = 0;
	int rc = -1;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	snprintf(num, sizeof(num), "%lld:%lld", (long long)id, (long long)ts);
	if (hash_field(md, num) || hash_field(md, actor) ||
	    hash_field(md, action) || hash_field(md, object) ||
	    hash_field(md, detail) || hash_field(md, prev))
		goto out;
	if (EVP_DigestFinal_ex(md, h, &hl) != 1 || hl != sizeof(h))
		goto out;
	core_hex_lower(h, sizeof(h), out);
	rc = 0;
out:
	if (rc == -1)
		log_openssl("SHA-256 of an audit row");
	EVP_MD_CTX_free(md);
	return rc;
}

int
core_audit_append(sqlite3 *db, const char *actor, const char *action,
    const char *object, const char *detail, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char prev[65] = ZERO_HASH, hash[65];
	int64_t id = 1, ts = (int64_t)time(NULL);
	int rc = -1;

	/* every change appends a row, an escrowed issuance two: kept
	 * prepared (bench/escrow.c) */
	if ((st = core_db_cached(db, "SELECT id, hash FROM audit ORDER BY id "
	    "DESC LIMIT 1")) == NULL) {
		core_db_fail(db, "audit: last row", err);
		goto out;
	}
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		id = sqlite3_column_int64(st, 0) + 1;
		snprintf(prev, sizeof(prev), "%s",
		    (const char *)sqlite3_column_text(st, 1));
		break;
	case SQLITE_DONE:
		break;
	default:
		core_db_fail(db, "audit: last row", err);
		goto out;
	}
	core_db_cached_done(st);
	st = NULL;
	if (row_hash(id, ts, actor, action, object, detail, prev, hash) == -1) {
		lb_err_set(err, LB_EINTERNAL, "cannot hash the audit row");
		goto out;
	}
	if ((st = core_db_cached(db, "INSERT INTO audit (id, created, actor, "
	    "action, object, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, "
	    "?, ?, ?)")) == NULL) {
		core_db_fail(db, "audit: insert", err);
		goto out;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_text(st, 3, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, object, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, detail, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, prev, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, hash, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		core_db_fail(db, "audit: insert", err);
		goto out;
	}
	rc = 0;
out:
	core_db_cached_done(st);
	return rc;
}

static const char *
col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s != NULL ? s : "";
}

const char *
core_audit_action_name(const char *recorded)
{
	static const struct {
		const char *was, *is;
	} renamed[] = {
		{ "init", "ca.init" },
		{ "ca-install", "ca.install" },
		{ "issue", "cert.issue" },
		{ "revoke", "cert.revoke" },
		{ "crl", "crl.issue" },
		{ "escrow", "escrow.store" },
		{ "escrow-policy", "escrow.policy_set" },
		{ "operator-add", "operator.add" },
		{ "operator-remove", "operator.remove" },
		{ "backup", "backup.create" },
		{ "publish-retry", "publish.retry" },
		{ "recovery-request", "recovery.request" },
		{ "recovery-approve", "recovery.approve" },
		{ "recovery-deny", "recovery.deny" },
		{ "recovery-expire", "recovery.expire" },
		{ "recovery-fetch", "recovery.fetch" },
		{ "recovery-request-refused", "recovery.request_refused" },
		{ "recovery-approve-refused", "recovery.approve_refused" },
		{ "recovery-deny-refused", "recovery.deny_refused" },
		{ "recovery-fetch-refused", "recovery.fetch_refused" },
		{ "token.revoke", "token.withdraw" },
	};
	size_t i;

	for (i = 0; i < sizeof(renamed) / sizeof(renamed[0]); i++)
		if (strcmp(recorded, renamed[i].was) == 0)
			return renamed[i].is;
	return recorded;
}

int
core_audit_foreach(sqlite3 *db, int64_t after_id, int limit,
    int (*fn)(const core_audit_row *row, void *arg), void *arg, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	core_audit_row row;
	const char *recorded;
	int rc = -1, r;

	if (sqlite3_prepare_v2(db,
	    "SELECT id, created, actor, action, object, detail, prev_hash, hash "
	    "FROM audit WHERE id > ? ORDER BY id LIMIT ?", -1, &st,
	    NULL) != SQLITE_OK) {
		core_db_fail(db, "audit: list", err);
		goto out;
	}
	sqlite3_bind_int64(st, 1, after_id);
	sqlite3_bind_int(st, 2, limit > 0 ? limit : -1);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&row, 0, sizeof(row));
		row.id = sqlite3_column_int64(st, 0);
		core_time_fmt((time_t)sqlite3_column_int64(st, 1), row.created,
		    sizeof(row.created));
		row.actor = col(st, 2);
		recorded = col(st, 3);
		row.action = core_audit_action_name(recorded);
		if (row.action != recorded)
			row.recorded_action = recorded;
		row.object = col(st, 4);
		row.detail = col(st, 5);
		row.prev_hash = col(st, 6);
		row.hash = col(st, 7);
		if (fn(&row, arg) != 0)
			break;
	}
	if (r != SQLITE_DONE && r != SQLITE_ROW) {
		core_db_fail(db, "audit: list", err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
core_audit_verify(sqlite3 *db, int64_t *rows, int64_t *bad_id, char *why,
    size_t whylen, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char prev[65] = ZERO_HASH, hash[65];
	int64_t expect = 1, n = 0;
	int rc = -1, r;

	*rows = 0;
	*bad_id = 0;
	if (sqlite3_prepare_v2(db,
	    "SELECT id, created, actor, action, object, detail, prev_hash, hash "
	    "FROM audit ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
		core_db_fail(db, "audit: verify", err);
		goto out;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);

		if (id != expect) {
			*bad_id = id;
			snprintf(why, whylen, "row %lld follows row %lld: "
			    "rows are missing", (long long)id,
			    (long long)(expect - 1));
			rc = 1;
			goto out;
		}
		if (strcmp(col(st, 6), prev) != 0) {
			*bad_id = id;
			snprintf(why, whylen, "row %lld: prev_hash does not "
			    "match the previous row", (long long)id);
			rc = 1;
			goto out;
		}
		if (row_hash(id, sqlite3_column_int64(st, 1), col(st, 2),
		    col(st, 3), col(st, 4), col(st, 5), prev, hash) == -1) {
			lb_err_set(err, LB_EINTERNAL, "cannot hash audit rows");
			goto out;
		}
		if (strcmp(hash, col(st, 7)) != 0) {
			*bad_id = id;
			snprintf(why, whylen, "row %lld: contents do not match "
			    "its hash (row altered)", (long long)id);
			rc = 1;
			goto out;
		}
		memcpy(prev, hash, sizeof(prev));
		expect++;
		n++;
	}
	if (r != SQLITE_DONE) {
		core_db_fail(db, "audit: verify", err);
		goto out;
	}
	*rows = n;
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}
