/*
 * test_enroll_auth.c - unit tests of enroll/'s callers and entitlement:
 * one-time tokens (only the hash stored, never the secret audited, checks,
 * spending once per profile, expiry, revocation, malformed and oversized
 * secrets), HTTP Basic in token mode with the failure backoff per user and
 * per address (401 with a generic message, then 429 with a growing
 * Retry-After), the audit rows of failures, certificate authentication
 * (valid, revoked, superseded, expired, unknown, foreign DER, operator
 * credential) and entitlement.
 *
 * Directory mode needs a slapd: the integration tests cover it.
 *
 * One cmocka group: the setup makes an EC P-256 CA and its enrollment
 * context (no directory) once; each test uses its own users and addresses
 * so that the failure counters do not interfere.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "enroll/enroll_int.h"
#include "tests/unit/testutil.h"

#define ACTOR "unit-test"

static int
group_setup(void **state)
{
	return tu_fixture_setup(state, sizeof(tu_fixture), "enroll-auth",
	    "lockbox Enroll Auth Unit Test CA", NULL,
	    TU_FX_ENROLL | TU_FX_KEY) == NULL ? -1 : 0;
}

/* Creates a token; returns its secret (core_secret_free). */
static char *
make_token(tu_fixture *fx, const char *email, const char *profiles,
    int64_t *id)
{
	enroll_token_opts o;
	lb_err err = { 0 };
	char *secret = NULL;

	memset(&o, 0, sizeof(o));
	o.email = email;
	o.profiles = profiles;
	o.actor = ACTOR;
	if (enroll_token_create(fx->ca, fx->db, &o, &secret, id, &err) == -1)
		fail_msg("enroll_token_create: %s", err.msg);
	assert_non_null(secret);
	return secret;
}

/* Lowercase hex SHA-256 of s. */
static void
sha256_hex(const char *s, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	size_t i;

	assert_int_equal(EVP_Digest(s, strlen(s), md, &len, EVP_sha256(),
	    NULL), 1);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Runs a statement with one integer and one text parameter. */
static void
exec2(sqlite3 *db, const char *sql, long long a, const char *b)
{
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_int64(st, 1, a);
	if (b != NULL)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

/* The number of rows of sql with one text parameter. */
static long long
count1(sqlite3 *db, const char *sql, const char *a)
{
	sqlite3_stmt *st = NULL;
	long long n = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* ------------------------------------------------------------------ */
/* Tokens                                                              */

static void
test_token_create(void **state)
{
	tu_fixture *fx = *state;
	enroll_identity id;
	lb_err err = { 0 };
	char hash[65], *s, *detail;
	int64_t tid = 0;
	size_t i;

	memset(&id, 0, sizeof(id));
	s = make_token(fx, "create@example.org", NULL, &tid);
	assert_true(tid > 0);
	/* prefix + 43 base64url characters of 32 bytes */
	assert_int_equal(strlen(s), strlen(ENROLL_TOKEN_PREFIX) + 43);
	assert_memory_equal(s, ENROLL_TOKEN_PREFIX,
	    strlen(ENROLL_TOKEN_PREFIX));
	for (i = strlen(ENROLL_TOKEN_PREFIX); s[i] != '\0'; i++)
		assert_true(isalnum((unsigned char)s[i]) || s[i] == '-' ||
		    s[i] == '_');
	/* only the hash is stored */
	sha256_hex(s, hash);
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM enroll_tokens "
	    "WHERE hash = ?1", hash), 1);
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM enroll_tokens "
	    "WHERE instr(hash || email || created_by, ?1) > 0", s + 4), 0);
	/* the default profiles, unspent */
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM "
	    "enroll_token_profiles p JOIN enroll_tokens t ON t.id = "
	    "p.token_id WHERE t.email = ?1 AND p.spent IS NULL AND "
	    "p.profile IN ('smime-sign', 'smime-enc')",
	    "create@example.org"), 2);
	/* audited, without the secret */
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM audit WHERE "
	    "action = 'token.create' AND object = ?1 AND actor = 'unit-test'",
	    "create@example.org"), 1);
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM audit WHERE "
	    "instr(coalesce(detail, '') || object || actor, ?1) > 0", s + 4),
	    0);
	detail = tu_sql_text(fx->db, "SELECT detail FROM audit WHERE action = "
	    "'token.create' ORDER BY id DESC LIMIT 1");
	assert_non_null(detail);
	assert_non_null(strstr(detail, "smime-sign,smime-enc"));
	assert_non_null(strstr(detail, "expires 20"));
	free(detail);
	/* the expiry is 7 days by default */
	assert_true(tu_sql_int(fx->db, "SELECT expires - created FROM "
	    "enroll_tokens ORDER BY id DESC LIMIT 1") == 7 * 24 * 3600);

	/* the check fills the identity */
	assert_int_equal(enroll_token_check(fx->db, "create@example.org", s,
	    &id, &err), 0);
	assert_int_equal(id.how, ENROLL_AUTH_TOKEN);
	assert_int_equal(id.token_id, tid);
	assert_string_equal(id.email, "create@example.org");
	assert_string_equal(id.login, "create@example.org");
	assert_null(id.given_name);
	assert_null(id.surname);
	assert_null(id.user_dn);
	enroll_identity_clear(&id);
	assert_null(id.email);
	/* two tokens never share a secret */
	{
		char *s2 = make_token(fx, "create@example.org", NULL, NULL);

		assert_string_not_equal(s, s2);
		core_secret_free(s2);
	}
	core_secret_free(s);
}

static void
test_token_names(void **state)
{
	tu_fixture *fx = *state;
	enroll_token_opts o;
	enroll_identity id;
	lb_err err = { 0 };
	char *s = NULL;

	memset(&id, 0, sizeof(id));
	memset(&o, 0, sizeof(o));
	o.email = "named@example.org";
	o.given_name = "Alice";
	o.surname = "Example";
	o.profiles = " smime-sign ";
	o.ttl = 3600;
	o.actor = ACTOR;
	assert_int_equal(enroll_token_create(fx->ca, fx->db, &o, &s, NULL,
	    &err), 0);
	assert_true(tu_sql_int(fx->db, "SELECT expires - created FROM "
	    "enroll_tokens ORDER BY id DESC LIMIT 1") == 3600);
	assert_int_equal(enroll_token_check(fx->db, "named@example.org", s,
	    &id, &err), 0);
	assert_string_equal(id.given_name, "Alice");
	assert_string_equal(id.surname, "Example");
	assert_true(enroll_token_allows(fx->db, id.token_id, "smime-sign"));
	assert_false(enroll_token_allows(fx->db, id.token_id, "smime-enc"));
	enroll_identity_clear(&id);
	core_secret_free(s);
}

/* enroll_token_create refuses o with a message containing want. */
static void
create_refused(tu_fixture *fx, const enroll_token_opts *o,
    const char *want)
{
	lb_err err = { 0 };
	char *s = (char *)0x1;
	long long before = tu_sql_int(fx->db, "SELECT count(*) FROM "
	    "enroll_tokens");

	assert_int_equal(enroll_token_create(fx->ca, fx->db, o, &s, NULL,
	    &err), -1);
	assert_null(s);
	assert_int_equal(err.code, LB_EINVAL);
	if (strstr(err.msg, want) == NULL)
		fail_msg("'%s' does not say '%s'", err.msg, want);
	assert_int_equal(tu_sql_int(fx->db, "SELECT count(*) FROM "
	    "enroll_tokens"), before);
}

static void
test_token_create_invalid(void **state)
{
	tu_fixture *fx = *state;
	enroll_token_opts o;
	char big[2048];

	memset(&o, 0, sizeof(o));
	o.actor = ACTOR;
	o.email = "not-an-address";
	create_refused(fx, &o, "e-mail");
	o.email = NULL;
	create_refused(fx, &o, "e-mail");
	o.email = "bad@example.org";
	o.profiles = "smime-sign,nosuch";
	create_refused(fx, &o, "unknown profile 'nosuch'");
	o.profiles = "operator";
	create_refused(fx, &o, "not a subscriber profile");
	o.profiles = "smime-sign,smime-sign";
	create_refused(fx, &o, "listed twice");
	o.profiles = " , ,";
	create_refused(fx, &o, "no profile");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	o.profiles = big;
	create_refused(fx, &o, "too long");
	o.profiles = NULL;
	o.given_name = "Alice";
	create_refused(fx, &o, "both");
	o.surname = "Line\nBreak";
	create_refused(fx, &o, "control");
	o.surname = big;
	create_refused(fx, &o, "bytes");
	o.given_name = o.surname = NULL;
	o.ttl = -5;
	create_refused(fx, &o, "lifetime");
	o.ttl = 400L * 24 * 3600;
	create_refused(fx, &o, "lifetime");
}

static void
test_token_check_refused(void **state)
{
	tu_fixture *fx = *state;
	enroll_identity id;
	lb_err err = { 0 };
	char *s, *bad, *huge;
	size_t n;

	memset(&id, 0, sizeof(id));
	s = make_token(fx, "check@example.org", NULL, NULL);
	/* wrong e-mail */
	assert_int_equal(enroll_token_check(fx->db, "other@example.org", s,
	    &id, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	assert_string_equal(err.msg, "authentication failed");
	assert_null(id.email);
	/* case of the address does not matter */
	lb_err_clear(&err);
	assert_int_equal(enroll_token_check(fx->db, "Check@Example.ORG", s,
	    &id, &err), 0);
	enroll_identity_clear(&id);
	/* one character changed */
	bad = strdup(s);
	assert_non_null(bad);
	n = strlen(bad);
	bad[n - 1] = bad[n - 1] == 'A' ? 'B' : 'A';
	lb_err_clear(&err);
	assert_int_equal(enroll_token_check(fx->db, "check@example.org", bad,
	    &id, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	/* truncated, extended, bad characters, no prefix, empty, NULL */
	bad[n - 1] = '\0';
	lb_err_clear(&err);
	assert_int_equal(enroll_token_check(fx->db, "check@example.org", bad,
	    &id, &err), -1);
	free(bad);
	assert_int_not_equal(asprintf(&bad, "%sA", s), -1);
	lb_err_clear(&err);
	assert_int_equal(enroll_token_check(fx->db, "check@example.org", bad,
	    &id, &err), -1);
	free(bad);
	bad = strdup(s);
	bad[10] = '+';
	lb_err_clear(&err);
	assert_int_equal(enroll_token_check(fx->db, "check@example.org", bad,
	    &id, &err), -1);
	free(bad);
	lb_err_clear(&err);
	assert_int_equal(enroll_token_check(fx->db, "check@example.org",
	    s + 4, &id, &err), -1);
	lb_err_clear(&err);
	assert_int_equal(enroll_token_check(fx->db, "check@example.org", "",
	    &id, &err), -1);
	lb_err_clear(&err);
	assert_int_equal(enroll_token_check(fx->db, "check@example.org", NULL,
	    &id, &err), -1);
	lb_err_clear(&err);
	assert_int_equal(enroll_token_check(fx->db, NULL, s, &id, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	/* oversized: 1 MiB starting with the prefix */
	huge = malloc(1 << 20);
	assert_non_null(huge);
	memset(huge, 'A', 1 << 20);
	memcpy(huge, ENROLL_TOKEN_PREFIX, strlen(ENROLL_TOKEN_PREFIX));
	huge[(1 << 20) - 1] = '\0';
	lb_err_clear(&err);
	assert_int_equal(enroll_token_check(fx->db, "check@example.org", huge,
	    &id, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	free(huge);
	assert_null(id.email);
	core_secret_free(s);
}

static void
test_token_spend(void **state)
{
	tu_fixture *fx = *state;
	enroll_identity id;
	lb_err err = { 0 };
	int64_t tid = 0;
	char *s;

	memset(&id, 0, sizeof(id));
	s = make_token(fx, "spend@example.org", NULL, &tid);
	assert_true(enroll_token_allows(fx->db, tid, "smime-sign"));
	assert_true(enroll_token_allows(fx->db, tid, "smime-enc"));
	assert_false(enroll_token_allows(fx->db, tid, "operator"));
	assert_false(enroll_token_allows(fx->db, tid + 1000, "smime-sign"));
	assert_int_equal(enroll_token_spend(fx->db, tid, "smime-sign", "01AB",
	    &err), 0);
	assert_false(enroll_token_allows(fx->db, tid, "smime-sign"));
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM audit WHERE "
	    "action = 'token.spend' AND object = ?1 AND instr(detail, "
	    "'01AB') > 0", "spend@example.org"), 1);
	/* recorded */
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM "
	    "enroll_token_profiles WHERE serial = ?1 AND spent IS NOT NULL",
	    "01AB"), 1);
	/* once only, and only what it lists */
	assert_int_equal(enroll_token_spend(fx->db, tid, "smime-sign", "02",
	    &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	lb_err_clear(&err);
	assert_int_equal(enroll_token_spend(fx->db, tid, "operator", "02",
	    &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	/* still good for the other profile */
	lb_err_clear(&err);
	assert_int_equal(enroll_token_check(fx->db, "spend@example.org", s,
	    &id, &err), 0);
	enroll_identity_clear(&id);
	assert_int_equal(enroll_token_spend(fx->db, tid, "smime-enc", "03",
	    &err), 0);
	/* all spent: refused */
	assert_int_equal(enroll_token_check(fx->db, "spend@example.org", s,
	    &id, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	core_secret_free(s);
}

static void
test_token_expired_and_revoked(void **state)
{
	tu_fixture *fx = *state;
	enroll_identity id;
	lb_err err = { 0 };
	int64_t tid = 0, tid2 = 0;
	char *s, *s2;

	memset(&id, 0, sizeof(id));
	s = make_token(fx, "expired@example.org", NULL, &tid);
	exec2(fx->db, "UPDATE enroll_tokens SET expires = strftime('%s', "
	    "'now') - 1 WHERE id = ?1", tid, NULL);
	assert_int_equal(enroll_token_check(fx->db, "expired@example.org", s,
	    &id, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	assert_false(enroll_token_allows(fx->db, tid, "smime-sign"));
	lb_err_clear(&err);
	assert_int_equal(enroll_token_spend(fx->db, tid, "smime-sign", "04",
	    &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	/* revoking an expired token: conflict; an unknown one: not found */
	lb_err_clear(&err);
	assert_int_equal(enroll_token_withdraw(fx->db, tid, ACTOR, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	lb_err_clear(&err);
	assert_int_equal(enroll_token_withdraw(fx->db, 999999, ACTOR, &err), -1);
	assert_int_equal(err.code, LB_ENOTFOUND);
	/* withdrawing a live one makes it unusable, audited; it keeps its
	 * expiry and is recorded as withdrawn, by whom */
	s2 = make_token(fx, "revoked@example.org", NULL, &tid2);
	lb_err_clear(&err);
	assert_int_equal(enroll_token_withdraw(fx->db, tid2, ACTOR, &err), 0);
	assert_int_equal(enroll_token_check(fx->db, "revoked@example.org", s2,
	    &id, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	assert_false(enroll_token_allows(fx->db, tid2, "smime-sign"));
	lb_err_clear(&err);
	assert_int_equal(enroll_token_spend(fx->db, tid2, "smime-sign", "0A",
	    &err), -1);
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM audit WHERE "
	    "action = 'token.withdraw' AND object = ?1",
	    "revoked@example.org"), 1);
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM enroll_tokens "
	    "WHERE withdrawn IS NOT NULL AND expires > withdrawn AND "
	    "withdrawn_by = ?1", ACTOR), 1);
	/* twice: a conflict, and nothing changes */
	lb_err_clear(&err);
	assert_int_equal(enroll_token_withdraw(fx->db, tid2, ACTOR, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM audit WHERE "
	    "action = 'token.withdraw' AND object = ?1",
	    "revoked@example.org"), 1);
	core_secret_free(s);
	core_secret_free(s2);
}

struct list_state {
	int rows;
	bool saw_spent, saw_withdrawn;
};

static int
list_cb(const enroll_token_row *t, void *arg)
{
	struct list_state *ls = arg;

	assert_true(t->id > 0);
	assert_non_null(t->email);
	assert_true(t->expires > t->created || t->expires < time(NULL));
	assert_non_null(t->created_by);
	assert_null(strstr(t->profiles, ENROLL_TOKEN_PREFIX));
	if (strcmp(t->email, "spend@example.org") == 0 &&
	    strstr(t->profiles, "smime-sign (spent)") != NULL)
		ls->saw_spent = true;
	if (strcmp(t->email, "revoked@example.org") == 0) {
		assert_string_equal(enroll_token_status(t, time(NULL)),
		    "withdrawn");
		assert_non_null(t->withdrawn_by);
		ls->saw_withdrawn = true;
	} else {
		assert_string_not_equal(enroll_token_status(t, time(NULL)),
		    "withdrawn");
	}
	ls->rows++;
	return 0;
}

static void
test_token_list(void **state)
{
	tu_fixture *fx = *state;
	struct list_state ls = { 0, false, false };
	lb_err err = { 0 };
	char *s = make_token(fx, "spend@example.org", NULL, NULL);

	/* tests run in order: test_token_spend spent one */
	assert_int_equal(enroll_token_list(fx->db, list_cb, &ls, &err), 0);
	assert_int_equal(ls.rows, tu_sql_int(fx->db, "SELECT count(*) FROM "
	    "enroll_tokens"));
	assert_true(ls.saw_spent);
	assert_true(ls.saw_withdrawn);
	core_secret_free(s);
}

/* ------------------------------------------------------------------ */
/* HTTP Basic in token mode, the failure backoff                       */

static void
test_basic_token(void **state)
{
	tu_fixture *fx = *state;
	enroll_identity id;
	lb_err err = { 0 };
	unsigned ra = 77;
	char actor[64];
	int64_t tid = 0;
	char *s;

	memset(&id, 0, sizeof(id));
	s = make_token(fx, "basic@example.org", "smime-sign", &tid);
	assert_int_equal(enroll_auth_basic(fx->e, fx->db, "192.0.2.1",
	    "basic@example.org", s, NULL, &id, &ra, &err), 0);
	assert_int_equal(ra, 0);
	assert_int_equal(id.how, ENROLL_AUTH_TOKEN);
	assert_int_equal(id.token_id, tid);
	assert_string_equal(id.email, "basic@example.org");
	enroll_identity_actor(&id, actor, sizeof(actor));
	assert_true(strncmp(actor, "token:", 6) == 0);
	assert_int_equal(strtoll(actor + 6, NULL, 10), tid);

	/* asked for a profile the token does not cover: refused like a
	 * wrong secret (401, audited), not as a forbidden profile */
	{
		enroll_identity other;
		int before = tu_sql_int(fx->db, "SELECT count(*) FROM audit "
		    "WHERE action = 'enroll.auth_fail'");

		memset(&other, 0, sizeof(other));
		assert_int_equal(enroll_auth_basic(fx->e, fx->db, "192.0.2.9",
		    "basic@example.org", s, "smime-enc", &other, &ra, &err),
		    -1);
		assert_int_equal(err.code, LB_EUNAUTH);
		assert_null(other.email);
		assert_int_equal(tu_sql_int(fx->db, "SELECT count(*) FROM "
		    "audit WHERE action = 'enroll.auth_fail'"), before + 1);
		lb_err_clear(&err);
		assert_int_equal(enroll_auth_basic(fx->e, fx->db, "192.0.2.9",
		    "basic@example.org", s, "smime-sign", &other, &ra, &err),
		    0);
		enroll_identity_clear(&other);
	}

	/* entitlement */
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "smime-sign",
	    &err), 0);
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "smime-enc",
	    &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	lb_err_clear(&err);
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "nosuch", &err),
	    -1);
	assert_int_equal(err.code, LB_ENOTFOUND);
	lb_err_clear(&err);
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "operator",
	    &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	lb_err_clear(&err);
	assert_int_equal(enroll_token_spend(fx->db, tid, "smime-sign", "05",
	    &err), 0);
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "smime-sign",
	    &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	enroll_identity_clear(&id);

	/* spent: 401 */
	lb_err_clear(&err);
	assert_int_equal(enroll_auth_basic(fx->e, fx->db, "192.0.2.1",
	    "basic@example.org", s, NULL, &id, &ra, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	assert_string_equal(err.msg, "authentication failed");
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM audit WHERE "
	    "action = 'enroll.auth_fail' AND actor = 'est:192.0.2.1' AND "
	    "object = ?1 AND instr(detail, 'spent') > 0",
	    "basic@example.org"), 1);

	/* not a token and no directory: 401, reason only in the audit */
	lb_err_clear(&err);
	assert_int_equal(enroll_auth_basic(fx->e, fx->db, "192.0.2.1",
	    "basic@example.org", "hunter2", NULL, &id, &ra, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	assert_string_equal(err.msg, "authentication failed");
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM audit WHERE "
	    "action = 'enroll.auth_fail' AND object = ?1 AND instr(detail, "
	    "'no directory') > 0", "basic@example.org"), 1);
	/* the audit never holds the secrets tried */
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM audit WHERE "
	    "instr(coalesce(detail, '') || object || actor, ?1) > 0", s + 4),
	    0);
	assert_int_equal(tu_sql_int(fx->db, "SELECT count(*) FROM audit WHERE "
	    "instr(coalesce(detail, '') || object, 'hunter2') > 0"), 0);
	core_secret_free(s);
}

static void
test_basic_malformed(void **state)
{
	tu_fixture *fx = *state;
	enroll_identity id;
	lb_err err = { 0 };
	unsigned ra = 0;
	char *huge, *obj;

	memset(&id, 0, sizeof(id));
	/* empty and missing credentials */
	assert_int_equal(enroll_auth_basic(fx->e, fx->db, "192.0.2.50", "",
	    "x", NULL, &id, &ra, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	lb_err_clear(&err);
	assert_int_equal(enroll_auth_basic(fx->e, fx->db, "192.0.2.51", NULL,
	    NULL, NULL, &id, &ra, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	lb_err_clear(&err);
	assert_int_equal(enroll_auth_basic(fx->e, fx->db, NULL, "u@x.org", "", NULL,
	    &id, &ra, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	/* a 1 MiB user with control characters: refused, audited short */
	huge = malloc(1 << 20);
	assert_non_null(huge);
	memset(huge, 'u', 1 << 20);
	huge[5] = '\n';
	huge[6] = '\x1b';
	huge[(1 << 20) - 1] = '\0';
	lb_err_clear(&err);
	assert_int_equal(enroll_auth_basic(fx->e, fx->db, "192.0.2.52", huge,
	    ENROLL_TOKEN_PREFIX "x", NULL, &id, &ra, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	obj = tu_sql_text(fx->db, "SELECT object FROM audit WHERE action = "
	    "'enroll.auth_fail' ORDER BY id DESC LIMIT 1");
	assert_non_null(obj);
	assert_true(strlen(obj) <= 256);
	assert_memory_equal(obj, "uuuuu??uu", 9);
	free(obj);
	free(huge);
	assert_null(id.email);
}

/* One Basic attempt with a wrong token; returns the error code. */
static enum lb_errcode
attempt(tu_fixture *fx, const char *addr, const char *user,
    const char *password, unsigned *ra)
{
	enroll_identity id;
	lb_err err = { 0 };
	int rc;

	memset(&id, 0, sizeof(id));
	rc = enroll_auth_basic(fx->e, fx->db, addr, user, password, NULL, &id, ra,
	    &err);
	if (rc == 0) {
		enroll_identity_clear(&id);
		return LB_OK;
	}
	assert_int_not_equal(err.code, LB_OK);
	if (err.code == LB_EUNAUTH)
		assert_string_equal(err.msg, "authentication failed");
	return err.code;
}

#define WRONG ENROLL_TOKEN_PREFIX "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static void
test_backoff(void **state)
{
	tu_fixture *fx = *state;
	unsigned ra = 0;
	char *s;
	int i;

	s = make_token(fx, "victim@example.org", NULL, NULL);
	for (i = 0; i < 5; i++) {
		assert_int_equal(attempt(fx, "198.51.100.1",
		    "victim@example.org", WRONG, &ra), LB_EUNAUTH);
		assert_int_equal(ra, 0);
	}
	/* throttled now, even with the right token */
	assert_int_equal(attempt(fx, "198.51.100.1", "victim@example.org",
	    WRONG, &ra), LB_ETHROTTLED);
	assert_int_equal(ra, 1);
	assert_int_equal(attempt(fx, "198.51.100.1", "victim@example.org", s,
	    &ra), LB_ETHROTTLED);
	/* per user: from another address as well */
	assert_int_equal(attempt(fx, "198.51.100.2", "victim@example.org", s,
	    &ra), LB_ETHROTTLED);
	assert_int_equal(ra, 1);
	/* per address: another user from the same address */
	assert_int_equal(attempt(fx, "198.51.100.1", "other@example.org",
	    WRONG, &ra), LB_ETHROTTLED);
	/* other users elsewhere are not affected */
	assert_int_equal(attempt(fx, "198.51.100.3", "bystander@example.org",
	    WRONG, &ra), LB_EUNAUTH);
	/* throttled attempts were neither checked nor audited */
	assert_int_equal(count1(fx->db, "SELECT count(*) FROM audit WHERE "
	    "action = 'enroll.auth_fail' AND object = ?1",
	    "victim@example.org"), 5);
	/* the window doubles with each further failure */
	usleep(1100 * 1000);
	assert_int_equal(attempt(fx, "198.51.100.1", "victim@example.org",
	    WRONG, &ra), LB_EUNAUTH);
	assert_int_equal(attempt(fx, "198.51.100.1", "victim@example.org",
	    WRONG, &ra), LB_ETHROTTLED);
	assert_int_equal(ra, 2);
	usleep(2100 * 1000);
	assert_int_equal(attempt(fx, "198.51.100.1", "victim@example.org",
	    WRONG, &ra), LB_EUNAUTH);
	assert_int_equal(attempt(fx, "198.51.100.1", "victim@example.org",
	    WRONG, &ra), LB_ETHROTTLED);
	assert_int_equal(ra, 4);
	/* once the window has passed, the right token works */
	usleep(4100 * 1000);
	assert_int_equal(attempt(fx, "198.51.100.1", "victim@example.org", s,
	    &ra), LB_OK);
	assert_int_equal(ra, 0);
	core_secret_free(s);
}

static void
test_success_clears_user(void **state)
{
	tu_fixture *fx = *state;
	char addr[32];
	unsigned ra = 0;
	char *s;
	int i;

	s = make_token(fx, "forgetful@example.org", NULL, NULL);
	/* four failures from four addresses: no address reaches the limit */
	for (i = 0; i < 4; i++) {
		snprintf(addr, sizeof(addr), "203.0.113.%d", i + 1);
		assert_int_equal(attempt(fx, addr, "forgetful@example.org",
		    WRONG, &ra), LB_EUNAUTH);
	}
	assert_int_equal(attempt(fx, "203.0.113.10", "forgetful@example.org",
	    s, &ra), LB_OK);
	/* the count started again: four more failures, still 401 */
	for (i = 0; i < 4; i++) {
		snprintf(addr, sizeof(addr), "203.0.113.%d", i + 20);
		assert_int_equal(attempt(fx, addr, "forgetful@example.org",
		    WRONG, &ra), LB_EUNAUTH);
	}
	/* logins are counted without case */
	assert_int_equal(attempt(fx, "203.0.113.30", "FORGETFUL@example.org",
	    WRONG, &ra), LB_EUNAUTH);
	assert_int_equal(attempt(fx, "203.0.113.31", "Forgetful@Example.org",
	    WRONG, &ra), LB_ETHROTTLED);
	core_secret_free(s);
}

/*
 * The counters are bounded: a flood of distinct users and addresses
 * pushes the oldest out instead of growing the table.  A context of its
 * own (fail_limit 2) over a scratch database without fsync keeps this
 * fast.
 */
static void
test_backoff_bounded(void **state)
{
	tu_fixture *fx = *state;
	struct enroll_ctx e;
	lb_err err = { 0 };
	char *path = tu_path(fx->tmp, "flood.db");
	char user[64], addr[64];
	enroll_identity id;
	sqlite3 *db;
	unsigned ra = 0;
	int i;

	memset(&id, 0, sizeof(id));
	memset(&e, 0, sizeof(e));
	e.ca = fx->ca;
	e.fail_limit = 2;
	assert_non_null(e.rl = enroll_rl_new(2));
	assert_int_equal(pthread_mutex_init(&e.dir_lock, NULL), 0);
	db = core_db_open(path, true, &err);
	assert_non_null(db);
	assert_int_equal(sqlite3_exec(db, "PRAGMA synchronous = OFF", NULL,
	    NULL, NULL), SQLITE_OK);
	for (i = 0; i < 2; i++)
		assert_int_equal(enroll_auth_basic(&e, db, "v", "victim", WRONG, NULL,
		    &id, &ra, &err), -1);
	lb_err_clear(&err);
	assert_int_equal(enroll_auth_basic(&e, db, "v", "victim", WRONG, NULL, &id,
	    &ra, &err), -1);
	assert_int_equal(err.code, LB_ETHROTTLED);
	/* 4096 users from 4096 addresses: 8192 counters wanted */
	for (i = 0; i < 4096; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		snprintf(addr, sizeof(addr), "a%d", i);
		lb_err_clear(&err);
		assert_int_equal(enroll_auth_basic(&e, db, addr, user, WRONG, NULL,
		    &id, &ra, &err), -1);
		assert_int_equal(err.code, LB_EUNAUTH);
	}
	/* the victim's counters, the oldest, made room */
	lb_err_clear(&err);
	assert_int_equal(enroll_auth_basic(&e, db, "v", "victim", WRONG, NULL, &id,
	    &ra, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	/* while the newest are still counted: u4095 fails once more, then
	 * is throttled */
	lb_err_clear(&err);
	assert_int_equal(enroll_auth_basic(&e, db, "b", "u4095", WRONG, NULL, &id,
	    &ra, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	lb_err_clear(&err);
	assert_int_equal(enroll_auth_basic(&e, db, "c", "u4095", WRONG, NULL, &id,
	    &ra, &err), -1);
	assert_int_equal(err.code, LB_ETHROTTLED);
	assert_int_equal(ra, 1);
	assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM audit WHERE "
	    "action = 'enroll.auth_fail'"), 2 + 4096 + 2);
	core_db_close(db);
	pthread_mutex_destroy(&e.dir_lock);
	enroll_rl_free(e.rl);
	enroll_rl_free(NULL);
	free(path);
}

/* ------------------------------------------------------------------ */
/* Certificates                                                        */

/* Issues a signing certificate for email. */
static X509 *
issue(tu_fixture *fx, const char *email)
{
	ca_request req;
	lb_err err = { 0 };
	X509 *x;

	memset(&req, 0, sizeof(req));
	req.profile = "smime-sign";
	req.email = email;
	req.pubkey = fx->key;
	if ((x = ca_issue(fx->ca, fx->db, &req, ACTOR, &err)) == NULL)
		fail_msg("ca_issue: %s", err.msg);
	return x;
}

/* enroll_auth_cert refuses x (401) and audits why (containing want). */
static void
cert_refused(tu_fixture *fx, X509 *x, const char *want)
{
	enroll_identity id;
	lb_err err = { 0 };
	long long before = tu_sql_int(fx->db, "SELECT count(*) FROM audit "
	    "WHERE action = 'enroll.auth_fail'");
	char *detail;

	memset(&id, 0, sizeof(id));
	assert_int_equal(enroll_auth_cert(fx->e, fx->db, x, &id, &err), -1);
	assert_int_equal(err.code, LB_EUNAUTH);
	assert_null(id.email);
	assert_null(strstr(err.msg, want));
	assert_int_equal(tu_sql_int(fx->db, "SELECT count(*) FROM audit "
	    "WHERE action = 'enroll.auth_fail'"), before + 1);
	detail = tu_sql_text(fx->db, "SELECT detail FROM audit ORDER BY id "
	    "DESC LIMIT 1");
	assert_non_null(detail);
	if (strstr(detail, want) == NULL)
		fail_msg("audit '%s' does not say '%s'", detail, want);
	free(detail);
}

static void
test_cert_valid(void **state)
{
	tu_fixture *fx = *state;
	enroll_identity id;
	lb_err err = { 0 };
	char actor[128], *serial;
	X509 *x = issue(fx, "renew@example.org");

	memset(&id, 0, sizeof(id));
	serial = ca_cert_serial(x);
	assert_int_equal(enroll_auth_cert(fx->e, fx->db, x, &id, &err), 0);
	assert_int_equal(id.how, ENROLL_AUTH_CERT);
	assert_string_equal(id.email, "renew@example.org");
	assert_string_equal(id.login, "renew@example.org");
	assert_string_equal(id.cert_serial, serial);
	assert_string_equal(id.cert_profile, "smime-sign");
	assert_null(id.user_dn);
	enroll_identity_actor(&id, actor, sizeof(actor));
	assert_true(strncmp(actor, "cert:", 5) == 0);
	assert_string_equal(actor + 5, serial);
	/* entitled to renew both S/MIME profiles, nothing else */
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "smime-sign",
	    &err), 0);
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "smime-enc",
	    &err), 0);
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "operator",
	    &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	/* an encryption certificate does not authenticate renewal */
	free(id.cert_profile);
	id.cert_profile = strdup("smime-enc");
	lb_err_clear(&err);
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "smime-enc",
	    &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	enroll_identity_clear(&id);
	free(serial);
	X509_free(x);
}

static void
test_cert_refused(void **state)
{
	tu_fixture *fx = *state;
	X509 *x, *forged, *op;
	EVP_PKEY *other;
	lb_err err = { 0 };
	char *serial, *opserial;
	unsigned char *der = NULL;
	const unsigned char *p;
	sqlite3_stmt *st = NULL;

	/* revoked */
	x = issue(fx, "revoked@example.org");
	serial = ca_cert_serial(x);
	assert_int_equal(ca_revoke(fx->db, serial, 1, 0, ACTOR, &err), 0);
	cert_refused(fx, x, "revoked");
	free(serial);
	X509_free(x);

	/* superseded */
	x = issue(fx, "superseded@example.org");
	serial = ca_cert_serial(x);
	exec2(fx->db, "UPDATE certificates SET status = 'superseded' WHERE "
	    "serial = ?2 AND ?1 = 1", 1, serial);
	cert_refused(fx, x, "superseded");
	free(serial);
	X509_free(x);

	/* expired (as the database has it) */
	x = issue(fx, "expired@example.org");
	serial = ca_cert_serial(x);
	exec2(fx->db, "UPDATE certificates SET not_after = strftime('%s', "
	    "'now') - ?1 WHERE serial = ?2", 10, serial);
	cert_refused(fx, x, "expired");
	free(serial);
	X509_free(x);

	/* another certificate under a stored serial: the DER differs */
	x = issue(fx, "forged@example.org");
	forged = X509_dup(x);
	assert_non_null(forged);
	other = ca_keygen(CA_KEY_ECP256, &err);
	assert_non_null(other);
	assert_int_equal(X509_set_pubkey(forged, other), 1);
	assert_true(X509_sign(forged, other, EVP_sha256()) > 0);
	cert_refused(fx, forged, "differs");
	/* never issued: the serial is unknown */
	{
		ASN1_INTEGER *sn = ASN1_INTEGER_new();

		assert_int_equal(ASN1_INTEGER_set(sn, 4242), 1);
		assert_int_equal(X509_set_serialNumber(forged, sn), 1);
		ASN1_INTEGER_free(sn);
		assert_true(X509_sign(forged, other, EVP_sha256()) > 0);
		cert_refused(fx, forged, "not issued");
	}
	EVP_PKEY_free(other);
	X509_free(forged);
	X509_free(x);

	/* the administrator's operator credential: not a subscriber */
	opserial = tu_sql_text(fx->db, "SELECT serial FROM operators LIMIT 1");
	assert_non_null(opserial);
	assert_int_equal(sqlite3_prepare_v2(fx->db, "SELECT der FROM "
	    "certificates WHERE serial = ?1", -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, opserial, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	p = sqlite3_column_blob(st, 0);
	op = d2i_X509(NULL, &p, sqlite3_column_bytes(st, 0));
	sqlite3_finalize(st);
	assert_non_null(op);
	cert_refused(fx, op, "not a subscriber");
	X509_free(op);
	free(opserial);
	OPENSSL_free(der);
}

/* ------------------------------------------------------------------ */
/* Identities and entitlement                                          */

static void
test_identity(void **state)
{
	tu_fixture *fx = *state;
	enroll_identity id;
	lb_err err = { 0 };
	char out[64];

	(void)fx;
	memset(&id, 0, sizeof(id));
	enroll_identity_actor(&id, out, sizeof(out));
	assert_string_equal(out, "anonymous");
	id.how = ENROLL_AUTH_DIRECTORY;
	id.user_dn = strdup("uid=alice,ou=People,dc=example,dc=org");
	id.email = strdup("alice@example.org");
	enroll_identity_actor(&id, out, sizeof(out));
	assert_string_equal(out, "directory:uid=alice,ou=People,dc=example,"
	    "dc=org");
	/* truncated, still terminated */
	enroll_identity_actor(&id, out, 12);
	assert_string_equal(out, "directory:u");
	/* a directory user with no group restriction may enroll */
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "smime-sign",
	    &err), 0);
	/* without an e-mail address: forbidden */
	free(id.email);
	id.email = NULL;
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "smime-sign",
	    &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	enroll_identity_clear(&id);
	assert_null(id.user_dn);
	assert_int_equal(id.how, ENROLL_AUTH_NONE);
	lb_err_clear(&err);
	assert_int_equal(enroll_entitled(fx->e, fx->db, &id, "smime-sign",
	    &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	enroll_identity_clear(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_create),
		cmocka_unit_test(test_token_names),
		cmocka_unit_test(test_token_create_invalid),
		cmocka_unit_test(test_token_check_refused),
		cmocka_unit_test(test_token_spend),
		cmocka_unit_test(test_token_expired_and_revoked),
		cmocka_unit_test(test_token_list),
		cmocka_unit_test(test_basic_token),
		cmocka_unit_test(test_basic_malformed),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_success_clears_user),
		cmocka_unit_test(test_backoff_bounded),
		cmocka_unit_test(test_cert_valid),
		cmocka_unit_test(test_cert_refused),
		cmocka_unit_test(test_identity),
	};

	log_init("test_enroll_auth", false);
	return cmocka_run_group_tests(tests, group_setup,
	    tu_fixture_teardown);
}
