/*
 * token.c - one-time enrollment tokens: an operator creates one for an
 * e-mail address and a list of subscriber profiles; the user presents it
 * as the HTTP Basic password (e-mail as the user) and it buys one
 * certificate of each listed profile.
 *
 * Only the hex SHA-256 of the secret is stored, so a copy of the database
 * does not hand out tokens.  The secret carries 256 random bits: it is
 * found by its hash (a unique index), and nothing about it is compared
 * byte by byte, so no timing of the look-up tells an attacker anything
 * useful.  The secret itself is never logged nor audited.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "enroll/enroll_int.h"

#define TOKEN_B64LEN 43                 /* random base64url characters */
#define TOKEN_LEN (sizeof(ENROLL_TOKEN_PREFIX) - 1 + TOKEN_B64LEN)
#define TOKEN_DEFAULT_TTL (7L * 24 * 3600)
#define TOKEN_MAX_TTL (366L * 24 * 3600)
#define TOKEN_MAX_PROFILES 8
#define TOKEN_NAME_MAX 64               /* bytes of a given name or surname */
#define TOKEN_DEFAULT_PROFILES "smime-sign,smime-enc"

/* Lowercase hex SHA-256 of s into out. */
static int
secret_hash(const char *s, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t i;

	if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		return log_openssl("EVP_Digest");
	for (i = 0; i < sizeof(md); i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[64] = '\0';
	return 0;
}

/* A new secret: the prefix and TOKEN_B64LEN random base64url
 * characters (258 bits). */
static char *
secret_new(lb_err *err)
{
	size_t plen = sizeof(ENROLL_TOKEN_PREFIX) - 1;
	char *s;

	if ((s = malloc(TOKEN_LEN + 1)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	memcpy(s, ENROLL_TOKEN_PREFIX, plen);
	if (core_random_password(s + plen, TOKEN_B64LEN) == -1) {
		core_secret_free(s);
		lb_err_set(err, LB_EINTERNAL, "cannot generate a token: the "
		    "random generator failed");
		return NULL;
	}
	return s;
}

/* Whether s has the shape of a secret (prefix, 43 base64url characters). */
static bool
secret_shape_ok(const char *s)
{
	size_t plen = sizeof(ENROLL_TOKEN_PREFIX) - 1, i;

	if (s == NULL || strnlen(s, TOKEN_LEN + 1) != TOKEN_LEN ||
	    strncmp(s, ENROLL_TOKEN_PREFIX, plen) != 0)
		return false;
	for (i = plen; i < TOKEN_LEN; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

/* A given name or surname: 1..TOKEN_NAME_MAX bytes, no control chars. */
static bool
name_ok(const char *s)
{
	size_t n, i;

	if (s == NULL || (n = strnlen(s, TOKEN_NAME_MAX + 1)) == 0 ||
	    n > TOKEN_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/*
 * Splits a comma-separated profile list into names[] (copied into buf),
 * checking each against the CA: known, subscriber, not listed twice.
 */
static int
profiles_parse(ca_ctx *ca, const char *list, char *buf, size_t buflen,
    const char **names, size_t *n, lb_err *err)
{
	char *p, *tok, *save = NULL, *end;
	const ca_profile *cp;
	size_t i;

	*n = 0;
	if (strlen(list) >= buflen)
		return lb_err_set(err, LB_EINVAL, "the profile list is too "
		    "long");
	memcpy(buf, list, strlen(list) + 1);
	for (p = buf; (tok = strtok_r(p, ",", &save)) != NULL; p = NULL) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		end = tok + strlen(tok);
		while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*tok == '\0')
			continue;
		if ((cp = ca_profile_get(ca, tok)) == NULL)
			return lb_err_set(err, LB_EINVAL, "unknown profile "
			    "'%s': tokens are for the subscriber profiles "
			    "(smime-sign, smime-enc, ...)", tok);
		if (!ca_profile_is_subscriber(cp))
			return lb_err_set(err, LB_EINVAL, "profile '%s' is "
			    "not a subscriber profile: tokens cannot enroll "
			    "it", tok);
		for (i = 0; i < *n; i++)
			if (strcmp(names[i], tok) == 0)
				return lb_err_set(err, LB_EINVAL, "profile "
				    "'%s' is listed twice", tok);
		if (*n == TOKEN_MAX_PROFILES)
			return lb_err_set(err, LB_EINVAL, "a token lists at "
			    "most %d profiles", TOKEN_MAX_PROFILES);
		names[(*n)++] = tok;
	}
	if (*n == 0)
		return lb_err_set(err, LB_EINVAL, "no profile given: list "
		    "them with --profiles smime-sign,smime-enc");
	return 0;
}

int
enroll_token_create(ca_ctx *ca, sqlite3 *db, const enroll_token_opts *o,
    char **secret, int64_t *id, lb_err *err)
{
	const char *names[TOKEN_MAX_PROFILES];
	char buf[512], hash[65], exp[32], detail[700];
	const char *list;
	char *s = NULL;
	sqlite3_stmt *st = NULL;
	size_t n = 0, i, off;
	time_t now = time(NULL);
	long ttl;
	int64_t rowid = 0;
	bool in_tx = false;
	int rc = -1;

	*secret = NULL;
	if (o == NULL || o->email == NULL || !core_email_valid(o->email)) {
		lb_err_set(err, LB_EINVAL, "'%s' is not an e-mail address: "
		    "give one such as alice@example.org",
		    o != NULL && o->email != NULL ? o->email : "");
		goto out;
	}
	if ((o->given_name == NULL) != (o->surname == NULL)) {
		lb_err_set(err, LB_EINVAL, "give both a given name and a "
		    "surname, or neither");
		goto out;
	}
	if (o->given_name != NULL && (!name_ok(o->given_name) ||
	    !name_ok(o->surname))) {
		lb_err_set(err, LB_EINVAL, "names must be 1 to %d bytes "
		    "without control characters", TOKEN_NAME_MAX);
		goto out;
	}
	ttl = o->ttl == 0 ? TOKEN_DEFAULT_TTL : o->ttl;
	if (ttl < 60 || ttl > TOKEN_MAX_TTL) {
		lb_err_set(err, LB_EINVAL, "a token's lifetime must be between "
		    "1 minute and 366 days");
		goto out;
	}
	list = o->profiles != NULL ? o->profiles : TOKEN_DEFAULT_PROFILES;
	if (profiles_parse(ca, list, buf, sizeof(buf), names, &n, err) == -1)
		goto out;
	/* a profile that names individuals needs the names now, not at
	 * the user's enrollment */
	for (i = 0; o->given_name == NULL && i < n; i++)
		if (ca_profile_individual(ca_profile_get(ca, names[i]))) {
			lb_err_set(err, LB_EINVAL, "profile %s names "
			    "individuals (validation = individual): give "
			    "--given-name and --surname", names[i]);
			goto out;
		}
	if ((s = secret_new(err)) == NULL || secret_hash(s, hash) == -1) {
		lb_err_set(err, LB_EINTERNAL, "cannot hash the token");
		goto out;
	}
	if (core_db_begin(db, err) == -1)
		goto out;
	in_tx = true;
	if (core_db_prepare(db, "INSERT INTO enroll_tokens (email, given_name, "
	    "surname, hash, created, expires, created_by) VALUES (?1, ?2, ?3, ?4, "
	    "?5, ?6, ?7)", &st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, o->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, o->given_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, o->surname, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)now);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)now + ttl);
	sqlite3_bind_text(st, 7, o->actor != NULL ? o->actor : "unknown", -1,
	    SQLITE_STATIC);
	if (core_db_exec(db, &st, "insert token", err) == -1)
		goto out;
	rowid = sqlite3_last_insert_rowid(db);
	if (core_db_prepare(db, "INSERT INTO enroll_token_profiles (token_id, "
	    "profile) VALUES (?1, ?2)", &st, err) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, rowid);
		sqlite3_bind_text(st, 2, names[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			core_db_fail(db, "insert token profile", err);
			goto out;
		}
	}
	core_time_fmt(now + ttl, exp, sizeof(exp));
	off = (size_t)snprintf(detail, sizeof(detail), "token %" PRId64
	    ", profiles ", rowid);
	for (i = 0; i < n && off < sizeof(detail); i++)
		off += (size_t)snprintf(detail + off, sizeof(detail) - off,
		    "%s%s", i > 0 ? "," : "", names[i]);
	if (off < sizeof(detail))
		snprintf(detail + off, sizeof(detail) - off, ", expires %s",
		    exp);
	if (core_audit_append(db, o->actor != NULL ? o->actor : "unknown",
	    "token.create", o->email, detail, err) == -1)
		goto out;
	in_tx = false;
	if (core_db_commit(db, err) == -1)
		goto out;
	*secret = s;
	s = NULL;
	if (id != NULL)
		*id = rowid;
	rc = 0;
out:
	sqlite3_finalize(st);
	if (in_tx)
		core_db_rollback(db);
	core_secret_free(s);
	OPENSSL_cleanse(hash, sizeof(hash));
	return rc;
}

/*
 * enroll_token_check with the internal reason of a refusal in why (for
 * the audit log; never for the client, who gets a generic LB_EUNAUTH).
 */
int
enroll_token_verify(sqlite3 *db, const char *email, const char *secret,
    enroll_identity *id, char *why, size_t whylen, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	enroll_identity nid;
	const char *temail;
	char hash[65];
	time_t now = time(NULL);
	int64_t tid;
	int rc = -1;

	memset(&nid, 0, sizeof(nid));
	hash[0] = '\0';
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (email == NULL || secret == NULL || !secret_shape_ok(secret)) {
		snprintf(why, whylen, "malformed token");
		goto refuse;
	}
	if (secret_hash(secret, hash) == -1) {
		lb_err_set(err, LB_EINTERNAL, "cannot hash the token");
		goto out;
	}
	if (core_db_prepare(db, "SELECT t.id, t.email, t.given_name, "
	    "t.surname, t.expires, (SELECT count(*) FROM enroll_token_profiles "
	    "p WHERE p.token_id = t.id AND p.spent IS NULL), t.withdrawn FROM "
	    "enroll_tokens t WHERE t.hash = ?1", &st, err) == -1)
		goto out;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		break;
	case SQLITE_DONE:
		snprintf(why, whylen, "unknown token");
		goto refuse;
	default:
		core_db_fail(db, "token look-up", err);
		goto out;
	}
	tid = sqlite3_column_int64(st, 0);
	temail = (const char *)sqlite3_column_text(st, 1);
	/* the domain is case-insensitive and nobody issues tokens to two
	 * mailboxes differing only in case: compare the whole address so */
	if (temail == NULL || strcasecmp(temail, email) != 0) {
		snprintf(why, whylen, "token %" PRId64 " belongs to another "
		    "e-mail address", tid);
		goto refuse;
	}
	if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
		snprintf(why, whylen, "token %" PRId64 " has been withdrawn",
		    tid);
		goto refuse;
	}
	if ((time_t)sqlite3_column_int64(st, 4) <= now) {
		snprintf(why, whylen, "token %" PRId64 " has expired", tid);
		goto refuse;
	}
	if (sqlite3_column_int64(st, 5) == 0) {
		snprintf(why, whylen, "token %" PRId64 " is spent", tid);
		goto refuse;
	}
	nid.how = ENROLL_AUTH_TOKEN;
	nid.token_id = tid;
	if ((nid.login = strdup(email)) == NULL ||
	    (nid.email = core_db_text_dup(st, 1)) == NULL ||
	    (sqlite3_column_type(st, 2) != SQLITE_NULL &&
	    (nid.given_name = core_db_text_dup(st, 2)) == NULL) ||
	    (sqlite3_column_type(st, 3) != SQLITE_NULL &&
	    (nid.surname = core_db_text_dup(st, 3)) == NULL)) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	*id = nid;
	memset(&nid, 0, sizeof(nid));
	rc = 0;
	goto out;
refuse:
	lb_err_set(err, LB_EUNAUTH, "authentication failed");
out:
	sqlite3_finalize(st);
	enroll_identity_clear(&nid);
	OPENSSL_cleanse(hash, sizeof(hash));
	return rc;
}

int
enroll_token_check(sqlite3 *db, const char *email, const char *secret,
    enroll_identity *id, lb_err *err)
{
	return enroll_token_verify(db, email, secret, id, NULL, 0, err);
}

int
enroll_token_spend(sqlite3 *db, int64_t token_id, const char *profile,
    const char *serial, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char actor[48], detail[256];
	char *email = NULL;
	time_t now = time(NULL);
	int rc = -1;

	if (profile == NULL || serial == NULL) {
		lb_err_set(err, LB_EUNAUTH, "the token does not allow this "
		    "profile");
		goto out;
	}
	if (core_db_prepare(db, "UPDATE enroll_token_profiles SET spent = ?3, "
	    "serial = ?4 WHERE token_id = ?1 AND profile = ?2 AND spent IS "
	    "NULL AND EXISTS (SELECT 1 FROM enroll_tokens t WHERE t.id = ?1 "
	    "AND t.expires > ?3 AND t.withdrawn IS NULL)", &st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, token_id);
	sqlite3_bind_text(st, 2, profile, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
	sqlite3_bind_text(st, 4, serial, -1, SQLITE_STATIC);
	if (core_db_exec(db, &st, "token spend", err) == -1)
		goto out;
	if (sqlite3_changes(db) != 1) {
		lb_err_set(err, LB_EUNAUTH, "the token does not allow profile "
		    "'%s' (spent, expired, withdrawn or not listed)", profile);
		goto out;
	}
	if (core_db_prepare(db, "SELECT email FROM enroll_tokens WHERE id = "
	    "?1", &st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, token_id);
	if (sqlite3_step(st) != SQLITE_ROW || (email = core_db_text_dup(st,
	    0)) ==
	    NULL) {
		core_db_fail(db, "token e-mail", err);
		goto out;
	}
	snprintf(actor, sizeof(actor), "token:%" PRId64, token_id);
	snprintf(detail, sizeof(detail), "token %" PRId64 " spent on profile "
	    "%s, certificate %s", token_id, profile, serial);
	if (core_audit_append(db, actor, "token.spend", email, detail, err) ==
	    -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	free(email);
	return rc;
}

bool
enroll_token_allows(sqlite3 *db, int64_t token_id, const char *profile)
{
	sqlite3_stmt *st = NULL;
	bool ok = false;

	if (profile == NULL)
		return false;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM enroll_token_profiles p "
	    "JOIN enroll_tokens t ON t.id = p.token_id WHERE p.token_id = ?1 "
	    "AND p.profile = ?2 AND p.spent IS NULL AND t.expires > ?3 AND "
	    "t.withdrawn IS NULL", -1,
	    &st, NULL) != SQLITE_OK) {
		log_warnx("token look-up: %s", sqlite3_errmsg(db));
		return false;
	}
	sqlite3_bind_int64(st, 1, token_id);
	sqlite3_bind_text(st, 2, profile, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	ok = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return ok;
}

/*
 * Calls fn for every token, oldest first (strings borrowed for the call).
 * Never the secret, which is not stored.  fn returning non-zero stops the
 * walk.
 */
int
enroll_token_list(sqlite3 *db, int (*fn)(const enroll_token_row *t,
    void *arg), void *arg, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	enroll_token_row t;
	int rc = -1, s;

	if (core_db_prepare(db, "SELECT t.id, t.email, (SELECT "
	    "group_concat(x, ', ') FROM (SELECT p.profile || CASE WHEN p.spent "
	    "IS NULL THEN ' (unspent)' ELSE ' (spent)' END AS x FROM "
	    "enroll_token_profiles p WHERE p.token_id = t.id ORDER BY "
	    "p.profile)), t.created, t.expires, t.created_by, t.withdrawn, "
	    "t.withdrawn_by FROM enroll_tokens t ORDER BY t.id", &st,
	    err) == -1)
		goto out;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 2);

		t.id = sqlite3_column_int64(st, 0);
		t.email = (const char *)sqlite3_column_text(st, 1);
		t.profiles = p != NULL ? p : "";
		t.created = (time_t)sqlite3_column_int64(st, 3);
		t.expires = (time_t)sqlite3_column_int64(st, 4);
		t.created_by = (const char *)sqlite3_column_text(st, 5);
		t.withdrawn = (time_t)sqlite3_column_int64(st, 6);
		t.withdrawn_by = (const char *)sqlite3_column_text(st, 7);
		if (fn(&t, arg) != 0)
			break;
	}
	if (s != SQLITE_ROW && s != SQLITE_DONE) {
		core_db_fail(db, "token list", err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

const char *
enroll_token_status(const enroll_token_row *t, time_t now)
{
	if (t->withdrawn != 0)
		return "withdrawn";
	return t->expires <= now ? "expired" : "expires";
}

/*
 * Withdraws token id: from now on neither a check nor a spend accepts it;
 * its row stays (with what it already bought) for the record, marked
 * withdrawn by actor.  Committed and audited.  LB_ENOTFOUND when there is
 * no such token, LB_ECONFLICT when it is already withdrawn or expired.
 */
int
enroll_token_withdraw(sqlite3 *db, int64_t id, const char *actor,
    lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char *email = NULL;
	char detail[64];
	time_t now = time(NULL);
	bool in_tx = false;
	int rc = -1;

	if (actor == NULL)
		actor = "unknown";
	if (core_db_begin(db, err) == -1)
		goto out;
	in_tx = true;
	if (core_db_prepare(db, "SELECT email, expires, withdrawn FROM "
	    "enroll_tokens WHERE id = ?1", &st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		break;
	case SQLITE_DONE:
		lb_err_set(err, LB_ENOTFOUND, "no token %" PRId64 ": see "
		    "'lockbox token list'", id);
		goto out;
	default:
		core_db_fail(db, "token look-up", err);
		goto out;
	}
	if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		lb_err_set(err, LB_ECONFLICT, "token %" PRId64 " is already "
		    "withdrawn", id);
		goto out;
	}
	if ((time_t)sqlite3_column_int64(st, 1) <= now) {
		lb_err_set(err, LB_ECONFLICT, "token %" PRId64 " has already "
		    "expired", id);
		goto out;
	}
	if ((email = core_db_text_dup(st, 0)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	sqlite3_finalize(st);
	if (core_db_prepare(db, "UPDATE enroll_tokens SET withdrawn = ?2, "
	    "withdrawn_by = ?3 WHERE id = ?1", &st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
	sqlite3_bind_text(st, 3, actor, -1, SQLITE_STATIC);
	if (core_db_exec(db, &st, "token withdraw", err) == -1)
		goto out;
	snprintf(detail, sizeof(detail), "token %" PRId64 " withdrawn", id);
	if (core_audit_append(db, actor, "token.withdraw", email, detail,
	    err) == -1)
		goto out;
	in_tx = false;
	if (core_db_commit(db, err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	if (in_tx)
		core_db_rollback(db);
	free(email);
	return rc;
}
