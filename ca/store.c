/*
 * store.c - the certificate store: look-ups, listings and revocation,
 * and the purpose each key is certified for (one key, one purpose).  Only
 * ca/ touches the certificates and key_uses tables; other modules call
 * these.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_int.h"

static const struct {
	int code;
	const char *name;
} reasons[] = {
	{ 1, "keyCompromise" },
	{ 3, "affiliationChanged" },
	{ 4, "superseded" },
	{ 5, "cessationOfOperation" },
	{ 9, "privilegeWithdrawn" },
};

int
ca_reason_parse(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < sizeof(reasons) / sizeof(reasons[0]);
	    i++)
		if (strcmp(name, reasons[i].name) == 0)
			return reasons[i].code;
	return -1;
}

const char *
ca_reason_name(int reason)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == reason)
			return reasons[i].name;
	return "unspecified";
}

int
ca_serial_normalise(const char *in, char *out, size_t outlen)
{
	size_t n = 0;
	const char *p;

	if (in == NULL)
		return -1;
	if (strncmp(in, "0x", 2) == 0 || strncmp(in, "0X", 2) == 0)
		in += 2;
	for (p = in; *p != '\0'; p++) {
		if (*p == ':')
			continue;
		if (!isxdigit((unsigned char)*p))
			return -1;
		/* drop leading zeros as BN_bn2hex does, keep one digit pair */
		if (n == 0 && *p == '0' && p[1] != '\0')
			continue;
		if (n + 1 >= outlen)
			return -1;
		out[n++] = (char)toupper((unsigned char)*p);
	}
	if (n == 0)
		return -1;
	out[n] = '\0';
	/* BN_bn2hex prints whole bytes: pad an odd digit count */
	if (n % 2 == 1) {
		if (n + 2 > outlen)
			return -1;
		memmove(out + 1, out, n + 1);
		out[0] = '0';
	}
	return 0;
}

int
ca_serial_arg(const char *in, char *out, size_t outlen, lb_err *err)
{
	if (ca_serial_normalise(in, out, outlen) == -1)
		return lb_err_set(err, LB_EINVAL, "'%s' is not a serial number "
		    "(hexadecimal expected)", in != NULL ? in : "");
	return 0;
}

void
ca_cert_info_clear(ca_cert_info *ci)
{
	if (ci == NULL)
		return;
	free(ci->serial);
	free(ci->profile);
	free(ci->email);
	free(ci->subject);
	free(ci->status);
	free(ci->der);
	memset(ci, 0, sizeof(*ci));
	ci->reason = -1;
}

#define CERT_COLS "serial, profile, email, subject, not_before, not_after, " \
	"issued, status, revoked, reason, der"

static int
row_to_info(sqlite3_stmt *st, ca_cert_info *ci)
{
	const void *der;
	int len;
	time_t now = time(NULL);

	memset(ci, 0, sizeof(*ci));
	ci->serial = core_db_text_dup(st, 0);
	ci->profile = core_db_text_dup(st, 1);
	ci->email = core_db_text_dup(st, 2);
	ci->subject = core_db_text_dup(st, 3);
	ci->not_before = (time_t)sqlite3_column_int64(st, 4);
	ci->not_after = (time_t)sqlite3_column_int64(st, 5);
	ci->issued = (time_t)sqlite3_column_int64(st, 6);
	ci->status = core_db_text_dup(st, 7);
	ci->revoked = (time_t)sqlite3_column_int64(st, 8);
	ci->reason = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 :
	    sqlite3_column_int(st, 9);
	der = sqlite3_column_blob(st, 10);
	len = sqlite3_column_bytes(st, 10);
	if (der != NULL && len > 0 && (ci->der = malloc((size_t)len)) != NULL) {
		memcpy(ci->der, der, (size_t)len);
		ci->der_len = (size_t)len;
	}
	if (ci->status != NULL && strcmp(ci->status, "valid") == 0 &&
	    ci->not_after < now) {
		free(ci->status);
		ci->status = strdup("expired");
	}
	if (ci->serial == NULL || ci->profile == NULL || ci->subject == NULL ||
	    ci->status == NULL || ci->der == NULL) {
		ca_cert_info_clear(ci);
		return -1;
	}
	return 0;
}

bool
ca_cert_status_known(const char *status)
{
	static const char *const known[] = {
		"valid", "revoked", "superseded", "expired",
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(status, known[i]) == 0)
			return true;
	return false;
}

int
ca_cert_list(sqlite3 *db, const ca_cert_filter *f,
    int (*fn)(const ca_cert_info *ci, void *arg), void *arg, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	ca_cert_info ci;
	int rc = -1, r, stop;
	const char *status = f ? f->status : NULL;

	if (status != NULL && !ca_cert_status_known(status))
		return lb_err_set(err, LB_EINVAL, "unknown status '%s': use "
		    CA_CERT_STATUSES, status);
	/* the status as row_to_info shows it */
	if (core_db_prepare(db, "SELECT " CERT_COLS " FROM certificates "
	    "WHERE (?1 IS NULL OR email = ?1) AND (?2 IS NULL OR profile = ?2) "
	    "AND (?3 IS NULL OR ?3 = CASE WHEN status = 'valid' AND not_after "
	    "< ?4 THEN 'expired' ELSE status END) ORDER BY issued DESC, "
	    "serial LIMIT ?5", &st, err) == -1)
		goto out;
	if (f != NULL && f->email != NULL)
		sqlite3_bind_text(st, 1, f->email, -1, SQLITE_STATIC);
	if (f != NULL && f->profile != NULL)
		sqlite3_bind_text(st, 2, f->profile, -1, SQLITE_STATIC);
	if (status != NULL)
		sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	sqlite3_bind_int(st, 5, f != NULL && f->limit > 0 ? f->limit : -1);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (row_to_info(st, &ci) == -1) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		stop = fn(&ci, arg);
		ca_cert_info_clear(&ci);
		if (stop != 0) {
			rc = 0;
			goto out;
		}
	}
	rc = core_db_rows_done(db, r, "list certificates", err);
out:
	sqlite3_finalize(st);
	return rc;
}

/* Binds serial norm to st's first parameter and steps to its row. */
static int
step_cert(sqlite3 *db, sqlite3_stmt *st, const char *norm, const char *what,
    lb_err *err)
{
	int r;

	sqlite3_bind_text(st, 1, norm, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE)
		return lb_err_set(err, LB_ENOTFOUND, "no certificate with serial "
		    "%s", norm);
	if (r != SQLITE_ROW)
		return core_db_fail(db, what, err);
	return 0;
}

int
ca_cert_get(sqlite3 *db, const char *serial, ca_cert_info *out, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char norm[130];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	out->reason = -1;
	if (ca_serial_arg(serial, norm, sizeof(norm), err) == -1)
		return -1;
	if (core_db_prepare(db, "SELECT " CERT_COLS " FROM certificates "
	    "WHERE serial = ?", &st, err) == -1 ||
	    step_cert(db, st, norm, "read certificate", err) == -1)
		goto out;
	if (row_to_info(st, out) == -1) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
ca_cert_status(sqlite3 *db, const char *serial, bool *revoked,
    time_t *revoked_at, int *reason, time_t *invalidity, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char norm[130];
	const char *status;
	int rc = -1;

	*revoked = false;
	*revoked_at = 0;
	*reason = -1;
	*invalidity = 0;
	if (ca_serial_arg(serial, norm, sizeof(norm), err) == -1)
		return -1;
	/* prepared once per connection: a third of the look-up's cost */
	if ((st = core_db_cached(db, "SELECT status, revoked, reason, "
	    "invalidity FROM certificates WHERE serial = ?")) == NULL) {
		core_db_fail(db, "certificate status", err);
		goto out;
	}
	if (step_cert(db, st, norm, "certificate status", err) == -1)
		goto out;
	status = (const char *)sqlite3_column_text(st, 0);
	if (status != NULL && strcmp(status, "revoked") == 0) {
		*revoked = true;
		*revoked_at = (time_t)sqlite3_column_int64(st, 1);
		if (sqlite3_column_type(st, 2) != SQLITE_NULL)
			*reason = sqlite3_column_int(st, 2);
		*invalidity = (time_t)sqlite3_column_int64(st, 3);
	}
	rc = 0;
out:
	core_db_cached_done(st);
	return rc;
}

int
ca_revoke_in_tx(sqlite3 *db, const char *serial, int reason, time_t invalidity,
    const char *actor, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char detail[128];
	int rc = -1, r;

	if (core_db_prepare(db, "SELECT status FROM certificates WHERE serial "
	    "= ?", &st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		lb_err_set(err, LB_ENOTFOUND, "no certificate with serial %s",
		    serial);
		goto out;
	}
	if (r != SQLITE_ROW) {
		core_db_fail(db, "revoke", err);
		goto out;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), "revoked") == 0) {
		lb_err_set(err, LB_ECONFLICT, "certificate %s is already "
		    "revoked", serial);
		goto out;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db, "UPDATE certificates SET status = 'revoked', "
	    "revoked = ?, reason = ?, invalidity = ? WHERE serial = ?", -1,
	    &st, NULL) != SQLITE_OK) {
		st = NULL;
		core_db_fail(db, "revoke", err);
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_int(st, 2, reason);
	if (reason == 1 && invalidity > 0)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)invalidity);
	sqlite3_bind_text(st, 4, serial, -1, SQLITE_STATIC);
	if (core_db_exec(db, &st, "revoke", err) == -1)
		goto out;
	snprintf(detail, sizeof(detail), "reason=%s", ca_reason_name(reason));
	if (core_audit_append(db, actor, "cert.revoke", serial, detail, err) == -1 ||
	    ca_revocation_bump(db, err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
ca_cert_supersede(sqlite3 *db, const char *old, const char *by, lb_err *err)
{
	return core_db_run(db, "UPDATE certificates SET status = "
	    "'superseded', superseded_by = ?1 WHERE serial = ?2 AND status = "
	    "'valid'", (const char *[]){ by, old }, 2, "supersede", err);
}

int
ca_cert_supersede_others(sqlite3 *db, const char *email, const char *profile,
    const char *by, lb_err *err)
{
	return core_db_run(db, "UPDATE certificates SET status = "
	    "'superseded', superseded_by = ?1 WHERE email = ?2 AND profile = "
	    "?3 AND status = 'valid' AND serial <> ?1",
	    (const char *[]){ by, email, profile }, 3, "supersede", err);
}

int
ca_revoke(sqlite3 *db, const char *serial, int reason, time_t invalidity,
    const char *actor, lb_err *err)
{
	return ca_revoke_guarded(db, serial, reason, invalidity, actor, NULL,
	    NULL, err);
}

int
ca_revoke_guarded(sqlite3 *db, const char *serial, int reason,
    time_t invalidity, const char *actor, ca_leave_guard guard, void *arg,
    lb_err *err)
{
	char norm[130];
	unsigned before;

	if (ca_serial_arg(serial, norm, sizeof(norm), err) == -1)
		return -1;
	if (ca_reason_name(reason)[0] == 'u')
		return lb_err_set(err, LB_EINVAL, "revocation reason must be "
		    "keyCompromise, affiliationChanged, superseded, "
		    "cessationOfOperation or privilegeWithdrawn");
	if (core_db_begin(db, err) == -1)
		return -1;
	before = ca_operator_roles(db, norm, NULL, err);
	if (err->code != LB_OK ||
	    ca_revoke_in_tx(db, norm, reason, invalidity, actor, err) == -1 ||
	    (guard != NULL && guard(db, norm, before, reason, arg,
	    err) == -1)) {
		core_db_rollback(db);
		return -1;
	}
	return core_db_commit(db, err);
}

/* ------------------------------------------------------------------ */
/* One key, one purpose                                                */

static const char *
purpose_of(const char *profile)
{
	return ca_profile_name_escrowed(profile) ? "encryption" : "signing";
}

/*
 * The purpose key is certified for and the first certificate for it
 * (into use[16] and serial[80]; use[0] == '\0' when none), from its
 * key_id (id, out) as well.
 */
static int
key_use_get(sqlite3 *db, const EVP_PKEY *key, char id[65], char use[16],
    char serial[80], lb_err *err)
{
	sqlite3_stmt *st;
	int r, rc = -1;

	use[0] = serial[0] = '\0';
	if (ca_key_id(key, id) == -1)
		return lb_err_set(err, LB_EINVAL, "the key cannot be "
		    "identified (an EC key needs a named curve): nothing was "
		    "issued");
	if ((st = core_db_cached(db, "SELECT purpose, serial FROM key_uses "
	    "WHERE key_id = ?1")) == NULL)
		return core_db_fail(db, "key use look-up", err);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		snprintf(use, 16, "%s", (const char *)sqlite3_column_text(st,
		    0));
		snprintf(serial, 80, "%s", (const char *)sqlite3_column_text(st,
		    1));
	}
	if (r != SQLITE_ROW && r != SQLITE_DONE)
		core_db_fail(db, "key use look-up", err);
	else
		rc = 0;
	core_db_cached_done(st);
	return rc;
}

static int
key_use_refuse(const char *profile, const char *use, const char *serial,
    lb_err *err)
{
	return lb_err_set(err, LB_EINVAL, "this key is already certified for "
	    "%s (certificate %s); profile '%s' certifies it for %s: a key "
	    "serves one purpose (an escrowed encryption key is never "
	    "certified for signing, a signing key never escrowed), so "
	    "nothing was issued: use a new key", use, serial, profile,
	    purpose_of(profile));
}

int
ca_key_use_check(sqlite3 *db, const EVP_PKEY *key, const char *profile,
    lb_err *err)
{
	char id[65], use[16], serial[80];

	if (key_use_get(db, key, id, use, serial, err) == -1)
		return -1;
	if (use[0] != '\0' && strcmp(use, purpose_of(profile)) != 0)
		return key_use_refuse(profile, use, serial, err);
	return 0;
}

int
ca_key_use_claim(sqlite3 *db, const EVP_PKEY *key, const char *serial,
    const char *profile, lb_err *err)
{
	char id[65], use[16], first[80];
	sqlite3_stmt *st;

	if (key_use_get(db, key, id, use, first, err) == -1)
		return -1;
	if (use[0] != '\0')
		return strcmp(use, purpose_of(profile)) == 0 ? 0 :
		    key_use_refuse(profile, use, first, err);
	if ((st = core_db_cached(db, "INSERT INTO key_uses (key_id, purpose, "
	    "serial) VALUES (?1, ?2, ?3)")) == NULL)
		return core_db_fail(db, "record the key's use", err);
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, purpose_of(profile), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, serial, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		core_db_fail(db, "record the key's use", err);
		core_db_cached_done(st);
		return -1;
	}
	core_db_cached_done(st);
	return 0;
}

/*
 * Fills key_uses for what was certified before it existed: every stored
 * certificate, oldest first (the first purpose wins; a key certified for
 * both, which lockbox no longer allows, is logged), and the CA's own key.
 * Once per database: the setting key_uses_filled marks it done; the CA's
 * key (which a subordinate gets only at install) is checked every time.
 */
int
ca_key_uses_fill(sqlite3 *db, X509 *ca_cert, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char *serial = NULL;
	int64_t done = 0;
	bool in_tx = false;
	int rc = -1, r, n = 0;

	if (core_setting_get(db, "key_uses_filled", 0, &done, err) == -1)
		return -1;
	if (done)
		goto ca_key;
	if (core_db_begin(db, err) == -1)
		return -1;
	in_tx = true;
	/* another process may have filled it while we waited */
	if (core_setting_get(db, "key_uses_filled", 0, &done, err) == -1)
		goto out;
	if (core_db_prepare(db, done ? "SELECT 1 WHERE 0" : "SELECT serial, "
	    "profile, der FROM certificates ORDER BY issued, rowid", &st,
	    err) == -1)
		goto out;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *der = sqlite3_column_blob(st, 2);
		const char *cs = (const char *)sqlite3_column_text(st, 0);
		X509 *x = d2i_X509(NULL, &der, sqlite3_column_bytes(st, 2));
		lb_err e = { 0 };

		if (x == NULL || ca_key_use_claim(db, X509_get0_pubkey(x), cs,
		    (const char *)sqlite3_column_text(st, 1), &e) == -1)
			log_warnx("certificate %s: %s", cs, x == NULL ?
			    "cannot be decoded" : e.msg);
		X509_free(x);
		n++;
	}
	if (r != SQLITE_DONE) {
		core_db_fail(db, "read the certificates", err);
		goto out;
	}
	if (core_setting_set(db, "key_uses_filled", 1, err) == -1)
		goto out;
	in_tx = false;
	if (core_db_commit(db, err) == -1)
		goto out;
	if (n > 0)
		log_info("recorded the purpose of %d certified keys", n);
ca_key:
	if (ca_cert != NULL) {
		if ((serial = ca_cert_serial(ca_cert)) == NULL) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		if (ca_key_use_claim(db, X509_get0_pubkey(ca_cert), serial,
		    "ca", err) == -1)
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	if (in_tx)
		core_db_rollback(db);
	free(serial);
	return rc;
}
