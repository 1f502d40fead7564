/*
 * test_crl.c - unit tests of crl/'s CRLs and the CA interface under them:
 * the CRL number grows across calls, expired certificates drop off,
 * reasonCode and invalidityDate are encoded (never unspecified), no
 * Issuing Distribution Point, the AKI names the CA's key, the validity and
 * the skew are applied, the state and the web publication are recorded,
 * ca_sign_crl refuses what is not a v2 CRL, the revocation generation
 * moves with revocations, [crl] settings are checked, and delta CRLs
 * (deltaCRLIndicator, freshestCRL, entries since the base, removeFromCRL
 * for what the base listed and has expired since).
 *
 * One cmocka group: the setup makes an EC P-256 CA once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "crl/crl.h"
#include "tests/unit/testutil.h"

#define ACTOR "unit-test"

struct fixture {
	tu_fixture tu;          /* the CA and a subscriber key */
	crl_conf cc;
};

static int
group_setup(void **state)
{
	struct fixture *fx = tu_fixture_setup(state, sizeof(*fx), "crl",
	    "lockbox CRL Unit Test CA", NULL, TU_FX_KEY);
	lb_err err = { 0 };

	if (fx == NULL)
		return -1;
	if (crl_conf_load(ca_get0_conf(fx->tu.ca), &fx->cc, &err) == -1) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* Issues a signing certificate; returns its serial (malloc'ed). */
static char *
issue(struct fixture *fx, const char *email)
{
	char *serial = tu_issue_serial(&fx->tu, email, ACTOR);

	assert_non_null(serial);
	return serial;
}

/*
 * The CRL in the file name under the CA's directory, its DER length in
 * *lenp (when not NULL), or NULL when there is no such file.
 */
static X509_CRL *
read_crl(struct fixture *fx, const char *name, size_t *lenp)
{
	char *path = tu_path(fx->tu.dir, name);
	unsigned char *buf;
	const unsigned char *p;
	size_t len = 0;
	X509_CRL *crl = NULL;

	if ((buf = (unsigned char *)tu_slurp(path, &len)) != NULL) {
		p = buf;
		crl = d2i_X509_CRL(NULL, &p, (long)len);
		assert_non_null(crl);
		free(buf);
	}
	free(path);
	if (lenp != NULL)
		*lenp = len;
	return crl;
}

/* Issues a CRL at now and reads pub/ca.crl back. */
static X509_CRL *
issue_crl(struct fixture *fx, time_t now, crl_info *ci)
{
	lb_err err = { 0 };
	char *path = tu_path(fx->tu.dir, "pub/ca.crl");
	size_t len = 0;
	X509_CRL *crl;

	if (crl_issue(fx->tu.ca, fx->tu.db, &fx->cc, now, ACTOR, ci,
	    &err) == -1)
		fail_msg("crl_issue: %s", err.msg);
	crl = read_crl(fx, "pub/ca.crl", &len);
	assert_non_null(crl);
	assert_int_equal(tu_mode(path), 0644);
	assert_int_equal(len, ci->der_len);
	free(path);
	return crl;
}

static int64_t
crl_number(X509_CRL *crl)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL,
	    NULL);
	int64_t v = -1;

	assert_non_null(n);
	assert_int_equal(ASN1_INTEGER_get_int64(&v, n), 1);
	ASN1_INTEGER_free(n);
	return v;
}

/* The entry for serial (hex), or NULL. */
static X509_REVOKED *
find_entry(X509_CRL *crl, const char *serial)
{
	STACK_OF(X509_REVOKED) *sk = X509_CRL_get_REVOKED(crl);
	BIGNUM *bn;
	char *hex;
	int i;

	for (i = 0; i < sk_X509_REVOKED_num(sk); i++) {
		X509_REVOKED *r = sk_X509_REVOKED_value(sk, i);

		bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r),
		    NULL);
		hex = BN_bn2hex(bn);
		BN_free(bn);
		if (strcmp(hex, serial) == 0) {
			OPENSSL_free(hex);
			return r;
		}
		OPENSSL_free(hex);
	}
	return NULL;
}

static void
test_number_monotonic(void **state)
{
	struct fixture *fx = *state;
	crl_info a, b, cur;
	X509_CRL *c1, *c2;
	lb_err err = { 0 };

	c1 = issue_crl(fx, time(NULL), &a);
	c2 = issue_crl(fx, time(NULL), &b);
	assert_true(b.number == a.number + 1);
	assert_true(crl_number(c1) == a.number);
	assert_true(crl_number(c2) == b.number);
	assert_int_equal(crl_current(fx->tu.db, &cur, &err), 0);
	assert_true(cur.number == b.number);
	assert_string_equal(cur.sha256, b.sha256);
	assert_int_equal(tu_sql_int(fx->tu.db, "SELECT number FROM "
	    "crl_publications WHERE target = 'web' AND last_error IS NULL"),
	    b.number);
	assert_true(tu_sql_int(fx->tu.db, "SELECT count(*) FROM audit WHERE "
	    "action = 'crl.issue'") >= 2);
	X509_CRL_free(c1);
	X509_CRL_free(c2);
}

/* pub/delta.crl, or NULL when absent. */
static X509_CRL *
read_delta(struct fixture *fx)
{
	return read_crl(fx, "pub/delta.crl", NULL);
}

static int64_t
delta_base(X509_CRL *crl)
{
	int crit = -1;
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_delta_crl, &crit,
	    NULL);
	int64_t v = -1;

	assert_non_null(n);
	assert_int_equal(crit, 1);
	assert_int_equal(ASN1_INTEGER_get_int64(&v, n), 1);
	ASN1_INTEGER_free(n);
	return v;
}

/* Sets column (revoked, not_after) of the certificate serial to t. */
static void
set_time(struct fixture *fx, const char *serial, const char *column,
    time_t t)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "UPDATE certificates SET %s = %lld "
	    "WHERE serial = '%s'", column, (long long)t, serial);
	assert_int_equal(sqlite3_exec(fx->tu.db, sql, NULL, NULL, NULL),
	    SQLITE_OK);
}

static void
test_delta(void **state)
{
	struct fixture *fx = *state;
	char *pre = issue(fx, "pre@example.org");
	char *post = issue(fx, "post@example.org");
	char sql[256];
	lb_err err = { 0 };
	crl_info base, ci;
	X509_CRL *full, *delta;
	STACK_OF(DIST_POINT) *fresh;
	GENERAL_NAME *gn;
	time_t now = time(NULL);

	fx->cc.delta = true;
	/* revoked well before the base CRL */
	assert_int_equal(ca_revoke(fx->tu.db, pre, 4, 0, ACTOR, &err), 0);
	set_time(fx, pre, "revoked", now - 5000);
	full = issue_crl(fx, now, &base);
	/* the full CRL advertises the delta */
	fresh = X509_CRL_get_ext_d2i(full, NID_freshest_crl, NULL, NULL);
	assert_non_null(fresh);
	assert_int_equal(sk_DIST_POINT_num(fresh), 1);
	gn = sk_GENERAL_NAME_value(sk_DIST_POINT_value(fresh, 0)->
	    distpoint->name.fullname, 0);
	assert_int_equal(gn->type, GEN_URI);
	assert_string_equal((const char *)ASN1_STRING_get0_data(
	    gn->d.uniformResourceIdentifier),
	    "http://127.0.0.1:8080/delta.crl");
	sk_DIST_POINT_pop_free(fresh, DIST_POINT_free);
	assert_true(find_entry(full, pre) != NULL);
	X509_CRL_free(full);
	delta = read_delta(fx);
	assert_non_null(delta);
	assert_true(crl_number(delta) == base.number);
	assert_true(delta_base(delta) == base.number - 1);
	assert_int_equal(X509_CRL_get_ext_by_NID(delta, NID_freshest_crl, -1),
	    -1);
	assert_int_equal(X509_CRL_verify(delta, X509_get0_pubkey(
	    ca_get0_cert(fx->tu.ca))), 1);
	X509_CRL_free(delta);

	/* revoked after the base: in the next delta, the earlier one not */
	assert_int_equal(ca_revoke(fx->tu.db, post, 1, now - 60, ACTOR, &err),
	    0);
	full = issue_crl(fx, now + 1, &ci);
	assert_true(ci.number == base.number + 1);
	X509_CRL_free(full);
	delta = read_delta(fx);
	assert_non_null(delta);
	assert_true(crl_number(delta) == ci.number);
	assert_true(delta_base(delta) == base.number);
	/* exactly the unexpired revocations since the base's thisUpdate */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM certificates WHERE "
	    "status = 'revoked' AND not_after >= %lld AND revoked >= %lld",
	    (long long)now + 1, (long long)base.this_update);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(delta)),
	    tu_sql_int(fx->tu.db, sql));
	assert_non_null(find_entry(delta, post));
	assert_null(find_entry(delta, pre));
	X509_CRL_free(delta);

	/* off again: no freshestCRL, no delta CRL */
	fx->cc.delta = false;
	full = issue_crl(fx, now + 2, &ci);
	assert_int_equal(X509_CRL_get_ext_by_NID(full, NID_freshest_crl, -1),
	    -1);
	X509_CRL_free(full);
	assert_null(read_delta(fx));
	free(pre);
	free(post);
}

/* The reasonCode of r, -1 when it has none. */
static long
entry_reason(X509_REVOKED *r)
{
	ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL,
	    NULL);
	long v;

	if (e == NULL)
		return -1;
	v = ASN1_ENUMERATED_get(e);
	ASN1_ENUMERATED_free(e);
	return v;
}

/*
 * A certificate on the base that expires before the next CRL drops off
 * the full CRL; the delta marks it removeFromCRL (RFC 5280 5.3.1) so that
 * base + delta drops it too, and only against a base that listed it.
 */
static void
test_delta_remove(void **state)
{
	struct fixture *fx = *state;
	char *gone = issue(fx, "gone@example.org");
	char *stay = issue(fx, "stay@example.org");
	lb_err err = { 0 };
	crl_info base, ci;
	X509_CRL *full, *delta;
	X509_REVOKED *r;
	time_t t0 = time(NULL) + 100;

	fx->cc.delta = true;
	assert_int_equal(ca_revoke(fx->tu.db, gone, 4, 0, ACTOR, &err), 0);
	assert_int_equal(ca_revoke(fx->tu.db, stay, 3, 0, ACTOR, &err), 0);
	/* both revoked long before the base; gone expires just after it */
	set_time(fx, gone, "revoked", t0 - 5000);
	set_time(fx, stay, "revoked", t0 - 5000);
	set_time(fx, gone, "not_after", t0 + 5);
	full = issue_crl(fx, t0, &base);
	assert_non_null(find_entry(full, gone));
	assert_non_null(find_entry(full, stay));
	X509_CRL_free(full);

	/* gone has expired: off the full CRL, removeFromCRL in the delta */
	full = issue_crl(fx, t0 + 10, &ci);
	assert_null(find_entry(full, gone));
	assert_non_null(find_entry(full, stay));
	X509_CRL_free(full);
	delta = read_delta(fx);
	assert_non_null(delta);
	assert_true(delta_base(delta) == base.number);
	assert_int_equal(X509_CRL_verify(delta, X509_get0_pubkey(
	    ca_get0_cert(fx->tu.ca))), 1);
	assert_non_null(r = find_entry(delta, gone));
	assert_int_equal(entry_reason(r), 8);
	/* still listed on the base and the full CRL: not in the delta */
	assert_null(find_entry(delta, stay));
	X509_CRL_free(delta);

	/* the next base no longer listed gone: nothing to remove */
	full = issue_crl(fx, t0 + 20, &ci);
	X509_CRL_free(full);
	delta = read_delta(fx);
	assert_non_null(delta);
	assert_null(find_entry(delta, gone));
	assert_null(find_entry(delta, stay));
	X509_CRL_free(delta);
	fx->cc.delta = false;
	free(gone);
	free(stay);
}

static void
test_header(void **state)
{
	struct fixture *fx = *state;
	time_t now = time(NULL), t;
	crl_info ci;
	X509_CRL *crl = issue_crl(fx, now, &ci);
	AUTHORITY_KEYID *akid;
	const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(
	    ca_get0_cert(fx->tu.ca));
	int crit = 0;

	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl),
	    X509_get_subject_name(ca_get0_cert(fx->tu.ca))), 0);
	/* AKI: the CA's key id */
	akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, &crit,
	    NULL);
	assert_non_null(akid);
	assert_non_null(akid->keyid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, skid), 0);
	AUTHORITY_KEYID_free(akid);
	/* no IDP (NSS refuses to import CRLs with one) */
	assert_int_equal(X509_CRL_get_ext_by_NID(crl,
	    NID_issuing_distribution_point, -1), -1);
	assert_int_equal(X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1), -1);
	/* thisUpdate = now - skew; nextUpdate = thisUpdate + validity */
	assert_int_equal(fx->cc.skew, 600);
	assert_int_equal(fx->cc.validity, 7 * 86400);
	t = now - 600;
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl),
	    t), 0);
	t = now - 600 + 7 * 86400;
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl),
	    t), 0);
	assert_true(ci.next_update - ci.this_update == fx->cc.validity);
	assert_true(ci.this_update == now - fx->cc.skew);
	/* signed by the CA */
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(
	    ca_get0_cert(fx->tu.ca))), 1);
	X509_CRL_free(crl);
}

static void
test_entries(void **state)
{
	struct fixture *fx = *state;
	char *kc = issue(fx, "kc@example.org");
	char *sup = issue(fx, "sup@example.org");
	char *old = issue(fx, "old@example.org");
	char *valid = issue(fx, "valid@example.org");
	lb_err err = { 0 };
	crl_info ci;
	X509_CRL *crl;
	X509_REVOKED *r;
	ASN1_GENERALIZEDTIME *inv;
	int64_t gen0, gen1;

	assert_int_equal(ca_revocation_generation(fx->tu.db, &gen0, &err), 0);
	assert_int_equal(ca_revoke(fx->tu.db, kc, 1, 1577934245, ACTOR, &err),
	    0);
	assert_int_equal(ca_revoke(fx->tu.db, sup, 4, 0, ACTOR, &err), 0);
	assert_int_equal(ca_revoke(fx->tu.db, old, 5, 0, ACTOR, &err), 0);
	assert_int_equal(ca_revocation_generation(fx->tu.db, &gen1, &err), 0);
	assert_true(gen1 == gen0 + 3);
	/* old has expired: it drops off */
	set_time(fx, old, "not_after", time(NULL) - 10);

	crl = issue_crl(fx, time(NULL), &ci);
	assert_true(ci.entries == 2);
	assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 2);
	assert_null(find_entry(crl, old));
	assert_null(find_entry(crl, valid));

	r = find_entry(crl, kc);
	assert_non_null(r);
	assert_int_equal(entry_reason(r), 1);
	inv = X509_REVOKED_get_ext_d2i(r, NID_invalidity_date, NULL, NULL);
	assert_non_null(inv);
	assert_int_equal(ASN1_TIME_cmp_time_t(inv, 1577934245), 0);
	ASN1_GENERALIZEDTIME_free(inv);

	r = find_entry(crl, sup);
	assert_non_null(r);
	assert_int_equal(entry_reason(r), 4);
	/* invalidityDate only for keyCompromise */
	assert_int_equal(X509_REVOKED_get_ext_by_NID(r, NID_invalidity_date,
	    -1), -1);
	X509_CRL_free(crl);
	free(kc);
	free(sup);
	free(old);
	free(valid);
}

static void
test_sign_refuses(void **state)
{
	struct fixture *fx = *state;
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, time(NULL));
	lb_err err = { 0 };

	assert_non_null(crl);
	/* v1 */
	assert_int_equal(ca_sign_crl(fx->tu.ca, crl, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	/* v2 without nextUpdate */
	lb_err_clear(&err);
	assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	assert_int_equal(ca_sign_crl(fx->tu.ca, crl, &err), -1);
	/* nextUpdate before thisUpdate */
	lb_err_clear(&err);
	assert_non_null(ASN1_TIME_set(t, time(NULL) - 60));
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	assert_int_equal(ca_sign_crl(fx->tu.ca, crl, &err), -1);
	/* and a good one */
	lb_err_clear(&err);
	assert_non_null(ASN1_TIME_set(t, time(NULL) + 60));
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	assert_int_equal(ca_sign_crl(fx->tu.ca, crl, &err), 0);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(
	    ca_get0_cert(fx->tu.ca))), 1);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
}

static void
test_conf(void **state)
{
	static const char bad1[] = "[crl]\ninterval = 8d\n";
	static const char bad2[] = "[crl]\nskew = soon\n";
	static const char good[] = "[crl]\nskew = 5m\nvalidity = 2d\n"
	    "interval = 1h\ncoalesce = 0\n";
	core_conf *c;
	crl_conf cc;
	lb_err err = { 0 };

	(void)state;
	c = core_conf_load_mem(bad1, sizeof(bad1) - 1, &err);
	assert_non_null(c);
	assert_int_equal(crl_conf_load(c, &cc, &err), -1);
	assert_non_null(strstr(err.msg, "interval"));
	core_conf_free(c);
	lb_err_clear(&err);
	c = core_conf_load_mem(bad2, sizeof(bad2) - 1, &err);
	assert_non_null(c);
	assert_int_equal(crl_conf_load(c, &cc, &err), -1);
	core_conf_free(c);
	lb_err_clear(&err);
	c = core_conf_load_mem(good, sizeof(good) - 1, &err);
	assert_non_null(c);
	assert_int_equal(crl_conf_load(c, &cc, &err), 0);
	assert_int_equal(cc.skew, 300);
	assert_int_equal(cc.validity, 2 * 86400);
	assert_int_equal(cc.interval, 3600);
	assert_int_equal(cc.coalesce, 0);
	core_conf_free(c);
}

static void
test_publication_error(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };

	assert_int_equal(crl_publication_record(fx->tu.db, "ldap", 0,
	    time(NULL), "slapd is down", &err), 0);
	assert_int_equal(tu_sql_int(fx->tu.db, "SELECT count(*) FROM "
	    "crl_publications WHERE target = 'ldap' AND number IS NULL AND "
	    "last_error = 'slapd is down'"), 1);
	assert_int_equal(crl_publication_record(fx->tu.db, "ldap", 7,
	    time(NULL), NULL, &err), 0);
	assert_int_equal(tu_sql_int(fx->tu.db, "SELECT number FROM "
	    "crl_publications WHERE target = 'ldap' AND last_error IS NULL"),
	    7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_number_monotonic),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_delta),
		cmocka_unit_test(test_delta_remove),
		cmocka_unit_test(test_sign_refuses),
		cmocka_unit_test(test_conf),
		cmocka_unit_test(test_publication_error),
	};

	return cmocka_run_group_tests(tests, group_setup,
	    tu_fixture_teardown);
}
