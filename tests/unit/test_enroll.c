/*
 * test_enroll.c - unit tests of enroll/enroll.c: the identity comes from
 * the caller and never from the CSR; tokens are spent with the
 * certificate; profiles that escrow take only serverkeygen; renewal keeps
 * the identity, refuses a CSR naming someone else and supersedes the old
 * certificate; manual approval holds a request until an operator decides;
 * the policy document lists entitled profiles and when to renew.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/x509v3.h>

#include "archive/archive.h"
#include "enroll/enroll_int.h"
#include "tests/unit/testutil.h"

#define NAGENTS 3

static int
group_setup(void **state)
{
	return tu_agent_keys_setup(state, NAGENTS);
}

/* A CA (with extra lockbox.conf text appended) and two recovery agents. */
static int
setup_with(void **state, const char *extra_conf)
{
	return tu_fixture_setup(state, sizeof(tu_fixture), "enroll", NULL,
	    extra_conf, TU_FX_AGENTS | TU_FX_ENROLL | TU_FX_KEY) == NULL ?
	    -1 : 0;
}

static int
setup(void **state)
{
	return setup_with(state, NULL);
}

static int
setup_manual(void **state)
{
	return setup_with(state, "\n[profile.smime-sign]\napproval = manual\n"
	    "renew_percent = 50\nrenew_days = 10\n");
}

/* A CSR for key with subject CN=cn and, when san is given, that e-mail. */
static X509_REQ *
make_csr(EVP_PKEY *key, const char *cn, const char *san)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *ext;
	char value[300];

	assert_non_null(req);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	if (cn != NULL)
		assert_int_equal(X509_NAME_add_entry_by_txt(
		    X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
		    (const unsigned char *)cn, -1, -1, 0), 1);
	if (san != NULL) {
		snprintf(value, sizeof(value), "email:%s", san);
		ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
		    value);
		assert_non_null(ext);
		exts = sk_X509_EXTENSION_new_null();
		sk_X509_EXTENSION_push(exts, ext);
		assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	return req;
}

/* A token identity for email (token created with profiles). */
static void
token_identity(tu_fixture *f, const char *email, const char *profiles,
    enroll_identity *id)
{
	enroll_token_opts o;
	lb_err err = { 0 };
	char *secret = NULL;
	int64_t tid = 0;

	memset(&o, 0, sizeof(o));
	o.email = email;
	o.profiles = profiles;
	o.actor = "test";
	assert_int_equal(enroll_token_create(f->ca, f->db, &o, &secret, &tid,
	    &err), 0);
	memset(id, 0, sizeof(*id));
	assert_int_equal(enroll_token_check(f->db, email, secret, id, &err),
	    0);
	assert_int_equal(id->how, ENROLL_AUTH_TOKEN);
	core_secret_free(secret);
}

/* Whether cert carries email as its only SAN. */
static void
assert_san(X509 *cert, const char *email)
{
	GENERAL_NAMES *san = X509_get_ext_d2i(cert, NID_subject_alt_name,
	    NULL, NULL);
	const GENERAL_NAME *g;

	assert_non_null(san);
	assert_int_equal(sk_GENERAL_NAME_num(san), 1);
	g = sk_GENERAL_NAME_value(san, 0);
	assert_int_equal(g->type, GEN_EMAIL);
	assert_string_equal((const char *)ASN1_STRING_get0_data(
	    g->d.rfc822Name), email);
	GENERAL_NAMES_free(san);
}

static char *
sql_text(sqlite3 *db, const char *sql, const char *arg)
{
	sqlite3_stmt *st;
	char *out = NULL;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

static void
test_identity_from_caller_and_token_spent(void **state)
{
	tu_fixture *f = *state;
	enroll_identity id;
	enroll_result res;
	X509_REQ *req = make_csr(f->key, "mallory@evil.example",
	    "mallory@evil.example");
	lb_err err = { 0 };
	char *serial;

	token_identity(f, "alice@example.org", "smime-sign", &id);
	assert_int_equal(enroll_do(f->e, f->db, &id, ENROLL_SIMPLE,
	    "smime-sign", req, &res, &err), 0);
	assert_non_null(res.cert);
	assert_null(res.key);
	assert_san(res.cert, "alice@example.org");
	assert_true(X509_check_email(res.cert, "mallory@evil.example", 0, 0)
	    != 1);
	serial = ca_cert_serial(res.cert);
	/* the token remembers what it bought, and is spent */
	assert_true(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "enroll_token_profiles WHERE spent IS NOT NULL") == 1);
	{
		char *bought = sql_text(f->db, "SELECT serial FROM "
		    "enroll_token_profiles WHERE profile = ?1", "smime-sign");

		assert_non_null(bought);
		assert_string_equal(bought, serial);
		free(bought);
	}
	enroll_result_clear(&res);
	lb_err_clear(&err);
	assert_int_equal(enroll_do(f->e, f->db, &id, ENROLL_SIMPLE,
	    "smime-sign", req, &res, &err), -1);
	assert_null(res.cert);
	assert_true(err.code == LB_EFORBIDDEN || err.code == LB_EUNAUTH);
	/* the audit names the token as the actor */
	assert_true(tu_sql_int(f->db, "SELECT count(*) FROM audit WHERE "
	    "action = 'enroll.issue' AND actor LIKE 'token:%'") == 1);
	free(serial);
	X509_REQ_free(req);
	enroll_identity_clear(&id);
}

static void
test_escrow_profile_needs_serverkeygen(void **state)
{
	tu_fixture *f = *state;
	enroll_identity id;
	enroll_result res;
	X509_REQ *req = make_csr(f->key, NULL, NULL);
	lb_err err = { 0 };
	char *serial;

	token_identity(f, "bob@example.org", "smime-sign,smime-enc", &id);
	assert_int_equal(enroll_do(f->e, f->db, &id, ENROLL_SIMPLE,
	    "smime-enc", req, &res, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "serverkeygen"));
	lb_err_clear(&err);
	assert_int_equal(enroll_do(f->e, f->db, &id, ENROLL_SERVERKEYGEN,
	    "smime-sign", req, &res, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_int_equal(enroll_do(f->e, f->db, &id, ENROLL_SIMPLE,
	    "no-such-profile", req, &res, &err), -1);
	assert_int_equal(err.code, LB_ENOTFOUND);
	/* nothing was spent by the refusals */
	assert_true(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "enroll_token_profiles WHERE spent IS NOT NULL") == 0);

	lb_err_clear(&err);
	assert_int_equal(enroll_do(f->e, f->db, &id, ENROLL_SERVERKEYGEN,
	    "smime-enc", req, &res, &err), 0);
	assert_non_null(res.cert);
	assert_non_null(res.key);
	/* the generated key, not the CSR's, and it is escrowed */
	assert_int_equal(archive_key_matches(res.cert, res.key, &err), 0);
	assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(res.cert), f->key),
	    1);
	assert_int_equal(ca_key_type_of(res.key), CA_KEY_RSA3072);
	serial = ca_cert_serial(res.cert);
	{
		char *rec = sql_text(f->db, "SELECT serial FROM "
		    "escrow_records WHERE serial = ?1", serial);

		assert_non_null(rec);
		free(rec);
	}
	assert_san(res.cert, "bob@example.org");
	free(serial);
	enroll_result_clear(&res);
	X509_REQ_free(req);
	enroll_identity_clear(&id);
}

static void
test_renewal(void **state)
{
	tu_fixture *f = *state;
	enroll_identity tid, cid;
	enroll_result first, second;
	X509_REQ *req = make_csr(f->key, NULL, NULL), *other, *same;
	EVP_PKEY *newkey;
	lb_err err = { 0 };
	char *old_serial, *new_serial, *status, *by;

	token_identity(f, "carol@example.org", "smime-sign", &tid);
	assert_int_equal(enroll_do(f->e, f->db, &tid, ENROLL_SIMPLE,
	    "smime-sign", req, &first, &err), 0);
	old_serial = ca_cert_serial(first.cert);
	memset(&cid, 0, sizeof(cid));
	assert_int_equal(enroll_auth_cert(f->e, f->db, first.cert, &cid,
	    &err), 0);
	assert_int_equal(cid.how, ENROLL_AUTH_CERT);
	assert_string_equal(cid.email, "carol@example.org");

	/* renewal needs the certificate as the caller */
	assert_int_equal(enroll_do(f->e, f->db, &tid, ENROLL_RENEW,
	    "smime-sign", req, &second, &err), -1);
	lb_err_clear(&err);
	/* a CSR naming someone else is refused, in the subject or the SAN */
	other = make_csr(f->key, "dave@example.org", NULL);
	assert_int_equal(enroll_do(f->e, f->db, &cid, ENROLL_RENEW,
	    "smime-sign", other, &second, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	X509_REQ_free(other);
	lb_err_clear(&err);
	other = make_csr(f->key, "carol@example.org", "dave@example.org");
	assert_int_equal(enroll_do(f->e, f->db, &cid, ENROLL_RENEW,
	    "smime-sign", other, &second, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	X509_REQ_free(other);
	/* nothing superseded by the refusals */
	status = sql_text(f->db, "SELECT status FROM certificates WHERE "
	    "serial = ?1", old_serial);
	assert_string_equal(status, "valid");
	free(status);

	/* rekey with a CSR naming the same identity */
	lb_err_clear(&err);
	newkey = ca_keygen(CA_KEY_ECP256, &err);
	same = make_csr(newkey, "carol@example.org", "carol@example.org");
	assert_int_equal(enroll_do(f->e, f->db, &cid, ENROLL_RENEW,
	    "smime-sign", same, &second, &err), 0);
	assert_non_null(second.cert);
	assert_san(second.cert, "carol@example.org");
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(second.cert), newkey),
	    1);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(first.cert),
	    X509_get_subject_name(second.cert)), 0);
	new_serial = ca_cert_serial(second.cert);
	status = sql_text(f->db, "SELECT status FROM certificates WHERE "
	    "serial = ?1", old_serial);
	by = sql_text(f->db, "SELECT superseded_by FROM certificates WHERE "
	    "serial = ?1", old_serial);
	assert_string_equal(status, "superseded");
	assert_string_equal(by, new_serial);
	free(status);
	free(by);
	/* superseded is not revoked */
	assert_true(tu_sql_int(f->db, "SELECT count(*) FROM certificates "
	    "WHERE status = 'revoked'") == 0);
	/* the superseded certificate no longer authenticates */
	enroll_identity_clear(&cid);
	lb_err_clear(&err);
	assert_int_equal(enroll_auth_cert(f->e, f->db, first.cert, &cid,
	    &err), -1);
	free(old_serial);
	free(new_serial);
	enroll_result_clear(&first);
	enroll_result_clear(&second);
	X509_REQ_free(req);
	X509_REQ_free(same);
	EVP_PKEY_free(newkey);
	enroll_identity_clear(&tid);
	enroll_identity_clear(&cid);
}

static void
test_manual_approval(void **state)
{
	tu_fixture *f = *state;
	enroll_identity id, id2;
	enroll_result res;
	X509_REQ *req = make_csr(f->key, NULL, NULL), *req2;
	EVP_PKEY *key2;
	lb_err err = { 0 };
	char rid[33], *serial;

	token_identity(f, "erin@example.org", "smime-sign", &id);
	assert_int_equal(enroll_do(f->e, f->db, &id, ENROLL_SIMPLE,
	    "smime-sign", req, &res, &err), 0);
	assert_null(res.cert);
	assert_int_equal(strlen(res.request_id), 32);
	assert_true(res.retry_after > 0);
	memcpy(rid, res.request_id, sizeof(rid));
	/* asking again finds the same request; nothing issued or spent */
	assert_int_equal(enroll_do(f->e, f->db, &id, ENROLL_SIMPLE,
	    "smime-sign", req, &res, &err), 0);
	assert_null(res.cert);
	assert_string_equal(res.request_id, rid);
	assert_true(tu_sql_int(f->db, "SELECT count(*) FROM certificates "
	    "WHERE profile = 'smime-sign'") == 0);
	assert_true(tu_sql_int(f->db, "SELECT count(*) FROM "
	    "enroll_token_profiles WHERE spent IS NOT NULL") == 0);
	/* approve: the next attempt gets the certificate */
	assert_int_equal(enroll_request_decide(f->db, rid, true, "test",
	    &err), 0);
	assert_int_equal(enroll_request_decide(f->db, rid, true, "test",
	    &err), -1);
	lb_err_clear(&err);
	assert_int_equal(enroll_do(f->e, f->db, &id, ENROLL_SIMPLE,
	    "smime-sign", req, &res, &err), 0);
	assert_non_null(res.cert);
	serial = ca_cert_serial(res.cert);
	{
		char *s = sql_text(f->db, "SELECT serial FROM enroll_requests "
		    "WHERE id = ?1", rid);

		assert_non_null(s);
		assert_string_equal(s, serial);
		free(s);
	}
	enroll_result_clear(&res);
	free(serial);

	/* a denied request stays denied */
	key2 = ca_keygen(CA_KEY_ECP256, &err);
	req2 = make_csr(key2, NULL, NULL);
	token_identity(f, "frank@example.org", "smime-sign", &id2);
	assert_int_equal(enroll_do(f->e, f->db, &id2, ENROLL_SIMPLE,
	    "smime-sign", req2, &res, &err), 0);
	assert_null(res.cert);
	memcpy(rid, res.request_id, sizeof(rid));
	assert_int_equal(enroll_request_decide(f->db, rid, false, "test",
	    &err), 0);
	assert_int_equal(enroll_do(f->e, f->db, &id2, ENROLL_SIMPLE,
	    "smime-sign", req2, &res, &err), -1);
	assert_int_equal(err.code, LB_EFORBIDDEN);
	assert_true(tu_sql_int(f->db, "SELECT count(*) FROM audit WHERE "
	    "action IN ('enroll.request', 'enroll.approve', "
	    "'enroll.deny')") == 4);
	X509_REQ_free(req);
	X509_REQ_free(req2);
	EVP_PKEY_free(key2);
	enroll_identity_clear(&id);
	enroll_identity_clear(&id2);
}

/*
 * Enrolls email for smime-sign with a token and f->key, then signs in with
 * the certificate it got: the enrollment in *res, the certificate
 * holder's identity in *id.
 */
static void
cert_identity(tu_fixture *f, const char *email, enroll_result *res,
    enroll_identity *id)
{
	X509_REQ *req = make_csr(f->key, NULL, NULL);
	lb_err err = { 0 };

	token_identity(f, email, "smime-sign", id);
	assert_int_equal(enroll_do(f->e, f->db, id, ENROLL_SIMPLE,
	    "smime-sign", req, res, &err), 0);
	enroll_identity_clear(id);
	assert_int_equal(enroll_auth_cert(f->e, f->db, res->cert, id, &err),
	    0);
	X509_REQ_free(req);
}

static void
test_policy(void **state)
{
	tu_fixture *f = *state;
	enroll_identity id;
	enroll_result res;
	lb_err err = { 0 };
	json_t *doc, *profs, *p, *certs, *c;
	const char *renew;
	char *want;
	time_t nb, na, by_pct, by_days;
	struct tm tm;
	char buf[32];
	size_t i;
	bool seen_sign = false;

	cert_identity(f, "gina@example.org", &res, &id);
	doc = enroll_policy(f->e, f->db, &id, "https://ca.example:8443",
	    &err);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(doc, "user"), "email")), "gina@example.org");
	profs = json_object_get(doc, "profiles");
	assert_true(json_array_size(profs) >= 1);
	json_array_foreach(profs, i, p) {
		if (strcmp(json_string_value(json_object_get(p, "name")),
		    "smime-sign") != 0)
			continue;
		seen_sign = true;
		assert_false(json_is_true(json_object_get(p, "escrow")));
		assert_string_equal(json_string_value(json_object_get(
		    json_object_get(p, "est"), "simplereenroll")),
		    "https://ca.example:8443/.well-known/est/smime-sign/"
		    "simplereenroll");
		certs = json_object_get(p, "certificates");
		assert_int_equal(json_array_size(certs), 1);
		c = json_array_get(certs, 0);
		want = ca_cert_serial(res.cert);
		assert_string_equal(json_string_value(json_object_get(c,
		    "serial")), want);
		free(want);
		/* renew at 80% of the lifetime or 30 days before the end,
		 * whichever comes first */
		memset(&tm, 0, sizeof(tm));
		assert_int_equal(ASN1_TIME_to_tm(X509_get0_notBefore(res.cert),
		    &tm), 1);
		nb = timegm(&tm);
		assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(res.cert),
		    &tm), 1);
		na = timegm(&tm);
		by_pct = nb + (na - nb) * 80 / 100;
		by_days = na - 30 * 86400;
		core_time_fmt(by_pct < by_days ? by_pct : by_days, buf,
		    sizeof(buf));
		renew = json_string_value(json_object_get(c, "renew_after"));
		assert_non_null(renew);
		assert_string_equal(renew, buf);
	}
	assert_true(seen_sign);
	json_decref(doc);
	enroll_result_clear(&res);
	enroll_identity_clear(&id);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_identity_from_caller_and_token_spent, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_escrow_profile_needs_serverkeygen, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_renewal, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_manual_approval,
		    setup_manual, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_policy, setup,
		    tu_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup,
	    tu_agent_keys_teardown);
}
