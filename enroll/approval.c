/*
 * approval.c - manual approval (approval = manual in a profile): the
 * enroll_requests table.  A first enrollment stores a request and answers
 * 202; `lockbox enrollment approve|deny` decides it; the next enrollment
 * with the same key, profile and user finds it and issues, and the
 * enrollment transaction marks it issued.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "enroll/enroll_int.h"

/* Marks the approved request id issued as serial, in the caller's
 * transaction. */
int
enroll_request_issued(sqlite3 *db, const char *id, const char *serial, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (core_db_prepare(db, "UPDATE enroll_requests SET status = 'issued', "
	    "serial = ?1 WHERE id = ?2", &st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return core_db_fail(db, "mark the request issued", err);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Approval                                                            */

/*
 * For a manual profile: finds the request of this key, profile and user,
 * or stores a new one.  ENROLL_APPROVAL_GO with x->request_id pointing at id
 * when approved; ENROLL_APPROVAL_PENDING with id set while it waits; -1 with err
 * (denied: LB_EFORBIDDEN).  An issued request whose certificate exists
 * yields that certificate again in *issued (the client lost the answer).
 */
int
enroll_approval_check(sqlite3 *db, const enroll_identity *id, const char *profile,
    X509_REQ *req, char id_out[33], X509 **issued, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
	unsigned char *spki = NULL, *csr = NULL;
	char hex[65], actor[300];
	int spki_len, csr_len, rc = -1, step;
	ca_cert_info ci;

	memset(&ci, 0, sizeof(ci));
	if (pub == NULL || (spki_len = i2d_PUBKEY(pub, &spki)) <= 0 ||
	    (csr_len = i2d_X509_REQ(req, &csr)) <= 0) {
		ERR_clear_error();
		lb_err_set(err, LB_EINVAL, "the CSR's key cannot be encoded");
		goto out;
	}
	if (core_sha256_hex(spki, (size_t)spki_len, hex) == -1) {
		lb_err_set(err, LB_EINTERNAL, "cannot hash the CSR's key");
		goto out;
	}
	if (core_db_prepare(db, "SELECT id, status, serial FROM "
	    "enroll_requests WHERE spki_sha256 = ?1 AND profile = ?2 AND email "
	    "= ?3 ORDER BY created DESC LIMIT 1", &st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, profile, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, id->email, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const char *status = (const char *)sqlite3_column_text(st, 1);
		const char *serial = (const char *)sqlite3_column_text(st, 2);

		snprintf(id_out, 33, "%s",
		    (const char *)sqlite3_column_text(st, 0));
		if (strcmp(status, "denied") == 0) {
			lb_err_set(err, LB_EFORBIDDEN, "enrollment request %s "
			    "was denied", id_out);
		} else if (strcmp(status, "pending") == 0) {
			rc = ENROLL_APPROVAL_PENDING;
		} else if (strcmp(status, "approved") == 0) {
			rc = ENROLL_APPROVAL_GO;
		} else if (serial != NULL &&
		    ca_cert_get(db, serial, &ci, err) == 0) {
			const unsigned char *p = ci.der;

			if ((*issued = d2i_X509(NULL, &p, (long)ci.der_len))
			    == NULL)
				lb_err_set(err, LB_EINTERNAL, "stored "
				    "certificate %s cannot be parsed", serial);
			else
				rc = ENROLL_APPROVAL_GO;
		}
		goto out;
	}
	if (step != SQLITE_DONE) {
		core_db_fail(db, "sqlite3_step", err);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (core_random_hex(id_out, 16) == -1) {
		lb_err_set(err, LB_EINTERNAL, "no randomness");
		goto out;
	}
	enroll_identity_actor(id, actor, sizeof(actor));
	if (core_db_begin(db, err) == -1)
		goto out;
	if (sqlite3_prepare_v2(db, "INSERT INTO enroll_requests (id, profile, "
	    "email, given_name, surname, auth, spki_sha256, csr, created) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, strftime('%s', 'now'))",
	    -1, &st, NULL) != SQLITE_OK) {
		core_db_fail(db, "sqlite3_prepare_v2", err);
		core_db_rollback(db);
		goto out;
	}
	sqlite3_bind_text(st, 1, id_out, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, profile, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, id->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, id->given_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, id->surname, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, hex, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 8, csr, csr_len, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		core_db_fail(db, "sqlite3_step", err);
		core_db_rollback(db);
		goto out;
	}
	if (core_audit_append(db, actor, "enroll.request", id_out, profile,
	    err) == -1 || core_db_commit(db, err) == -1) {
		core_db_rollback(db);
		goto out;
	}
	rc = ENROLL_APPROVAL_PENDING;
out:
	sqlite3_finalize(st);
	ca_cert_info_clear(&ci);
	OPENSSL_free(spki);
	OPENSSL_free(csr);
	return rc;
}

int
enroll_request_decide(sqlite3 *db, const char *id, bool approve,
    const char *actor, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (core_db_begin(db, err) == -1)
		return -1;
	if (core_db_prepare(db, "UPDATE enroll_requests SET status = ?1, "
	    "decided = strftime('%s', 'now'), decided_by = ?2 WHERE id = ?3 "
	    "AND status = 'pending'", &st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, approve ? "approved" : "denied", -1,
	    SQLITE_STATIC);
	sqlite3_bind_text(st, 2, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
	if (core_db_exec(db, &st, "sqlite3_step", err) == -1)
		goto out;
	if (sqlite3_changes(db) != 1) {
		lb_err_set(err, LB_ENOTFOUND, "no pending enrollment request "
		    "%s", id);
		goto out;
	}
	if (core_audit_append(db, actor, approve ? "enroll.approve" :
	    "enroll.deny", id, "", err) == -1 || core_db_commit(db, err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	if (rc == -1)
		core_db_rollback(db);
	return rc;
}

int
enroll_request_list(sqlite3 *db, const char *status,
    int (*fn)(const char *id, const char *profile, const char *email,
    const char *status, time_t created, void *arg), void *arg, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, step;

	if (sqlite3_prepare_v2(db, "SELECT id, profile, email, status, created "
	    "FROM enroll_requests WHERE ?1 IS NULL OR status = ?1 ORDER BY "
	    "created, id", -1, &st, NULL) != SQLITE_OK)
		return core_db_fail(db, "sqlite3_prepare_v2", err);
	sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (fn((const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1),
		    (const char *)sqlite3_column_text(st, 2),
		    (const char *)sqlite3_column_text(st, 3),
		    (time_t)sqlite3_column_int64(st, 4), arg) != 0)
			break;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		core_db_fail(db, "sqlite3_step", err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}
