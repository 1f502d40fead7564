/*
 * test_ca.c - unit tests of ca/: key types, key files, the CSR and
 * certificate parsers, serial/reason/role helpers, then an end-to-end CA in
 * a scratch directory: init, open, issuance checked extension by extension
 * against the S/MIME BR profile, refusals that must store nothing,
 * revocation, listing, operators and role separation, the group committer
 * under concurrent issuers, PKCS#12 credentials, config faults, and a
 * subordinate CA installed under the root.
 *
 * One cmocka group: the group setup makes the CA once (EC P-256 for speed)
 * and the RSA keys some profiles need; tests that change the CA's config
 * restore it before they return.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"
#include "tests/unit/testutil.h"

#define BASE_URL "http://ca.test:8080"
#define ACTOR "unit-test"
#define DAY 86400L

struct fixture {
	tu_fixture tu;          /* the CA and a P-256 subscriber key */
	char *conf;             /* the original lockbox.conf text */
	EVP_PKEY *rsa2048;
	EVP_PKEY *rsa3072;
};

/* The fixture's own parts (tu_fixture release). */
static void
release(tu_fixture *tu)
{
	struct fixture *fx = (struct fixture *)tu;

	EVP_PKEY_free(fx->rsa2048);
	EVP_PKEY_free(fx->rsa3072);
	free(fx->conf);
}

static int
group_setup(void **state)
{
	ca_init_opts o = {
		.name = "lockbox Unit Test CA",
		.key_type = CA_KEY_ECP256,
		/* a trailing slash, which ca_open must strip from every URL */
		.base_url = BASE_URL "/",
		.admin_email = "admin@ca.test",
	};
	struct fixture *fx = tu_fixture_setup_opts(state, sizeof(*fx), "ca",
	    &o, NULL, TU_FX_KEY);
	lb_err err = { 0 };
	char *path;

	if (fx == NULL)
		return -1;
	fx->tu.release = release;
	path = tu_path(fx->tu.dir, CA_CONF_FILE);
	fx->conf = tu_slurp(path, NULL);
	free(path);
	if (fx->conf == NULL ||
	    (fx->rsa2048 = ca_keygen(CA_KEY_RSA2048, &err)) == NULL ||
	    (fx->rsa3072 = ca_keygen(CA_KEY_RSA3072, &err)) == NULL)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

static long long
count_certs(struct fixture *fx)
{
	return tu_sql_int(fx->tu.db, "SELECT count(*) FROM certificates");
}

static long long
count_audit(struct fixture *fx)
{
	return tu_sql_int(fx->tu.db, "SELECT count(*) FROM audit");
}

/* A signed PKCS#10 request for key, as DER (malloc'ed by OpenSSL). */
static X509_REQ *
make_csr(EVP_PKEY *key, const char *cn)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_REQ_get_subject_name(req);

	assert_non_null(req);
	assert_int_equal(X509_NAME_add_entry_by_NID(n, NID_commonName,
	    MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	return req;
}

static unsigned char *
csr_der(X509_REQ *req, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_X509_REQ(req, &der);

	assert_true(n > 0);
	*len = (size_t)n;
	return der;
}

static char *
csr_pem(X509_REQ *req, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	assert_non_null(bio);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	n = BIO_get_mem_data(bio, &data);
	s = strndup(data, (size_t)n);
	*len = (size_t)n;
	BIO_free(bio);
	return s;
}

static X509 *
issue(struct fixture *fx, ca_ctx *ca, const char *profile, const char *email,
    EVP_PKEY *key, lb_err *err)
{
	ca_request req;

	memset(&req, 0, sizeof(req));
	req.profile = profile;
	req.email = email;
	req.pubkey = key;
	return ca_issue(ca != NULL ? ca : fx->tu.ca, fx->tu.db, &req, ACTOR,
	    err);
}

/* Writes lockbox.conf = the original text + extra, opens the CA and puts
 * the original config back. */
static ca_ctx *
open_with(struct fixture *fx, const char *extra, unsigned flags, lb_err *err)
{
	char *path = tu_path(fx->tu.dir, CA_CONF_FILE), *text = NULL;
	ca_ctx *ca;

	assert_true(asprintf(&text, "%s\n%s", fx->conf, extra) > 0);
	assert_int_equal(tu_write(path, text, strlen(text)), 0);
	ca = ca_open(fx->tu.dir, flags, err);
	assert_int_equal(tu_write(path, fx->conf, strlen(fx->conf)), 0);
	free(text);
	free(path);
	return ca;
}

static int
count_ext(X509 *x, int nid)
{
	int n = 0, pos = -1;

	while ((pos = X509_get_ext_by_NID(x, nid, pos)) >= 0)
		n++;
	return n;
}

static int
ext_critical(X509 *x, int nid)
{
	int pos = X509_get_ext_by_NID(x, nid, -1);

	assert_true(pos >= 0);
	return X509_EXTENSION_get_critical(X509_get_ext(x, pos));
}

static void
assert_uri(const GENERAL_NAME *g, const char *want)
{
	assert_int_equal(g->type, GEN_URI);
	assert_string_equal((const char *)ASN1_STRING_get0_data(
	    g->d.uniformResourceIdentifier), want);
}

/* The single policy OID of x as dotted text. */
static void
assert_policy(X509 *x, const char *oid)
{
	CERTIFICATEPOLICIES *pols;
	POLICYINFO *pi;
	char buf[64];
	int crit = -1;

	pols = X509_get_ext_d2i(x, NID_certificate_policies, &crit, NULL);
	assert_non_null(pols);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_POLICYINFO_num(pols), 1);
	pi = sk_POLICYINFO_value(pols, 0);
	assert_true(OBJ_obj2txt(buf, sizeof(buf), pi->policyid, 1) > 0);
	assert_string_equal(buf, oid);
	assert_null(pi->qualifiers);
	CERTIFICATEPOLICIES_free(pols);
}

/* notAfter - notBefore + 1 second, in seconds. */
static long
validity_seconds(X509 *x)
{
	int days = 0, secs = 0;

	assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
	    X509_get0_notAfter(x)), 1);
	return (long)days * DAY + secs + 1;
}

static void
assert_verifies(X509_STORE *store, X509 *x, STACK_OF(X509) *untrusted,
    int purpose)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	assert_non_null(ctx);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, x, untrusted), 1);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
	ok = X509_verify_cert(ctx);
	if (ok != 1)
		fail_msg("X509_verify_cert: %s", X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */

static void
test_key_types(void **state)
{
	static const char *const names[] = {
		"rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384",
	};
	static const char *const unknown[] = {
		"rsa-1024", "ec-p521", "RSA-2048", "rsa2048", "", "ec-p256 ",
		"ed25519",
	};
	struct fixture *fx = *state;
	EVP_PKEY *k;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		enum ca_key_type t = ca_key_type_parse(names[i]);

		assert_int_not_equal(t, CA_KEY_NONE);
		assert_string_equal(ca_key_type_name(t), names[i]);
	}
	assert_int_equal(ca_key_type_parse("ec-p384"), CA_KEY_ECP384);
	assert_int_equal(ca_key_type_parse("rsa-2048"), CA_KEY_RSA2048);
	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		assert_int_equal(ca_key_type_parse(unknown[i]), CA_KEY_NONE);
	assert_int_equal(ca_key_type_parse(NULL), CA_KEY_NONE);
	assert_string_equal(ca_key_type_name(CA_KEY_NONE), "unsupported");

	assert_int_equal(ca_key_type_of(fx->tu.key), CA_KEY_ECP256);
	assert_int_equal(ca_key_type_of(fx->rsa2048), CA_KEY_RSA2048);
	assert_int_equal(ca_key_type_of(fx->rsa3072), CA_KEY_RSA3072);
	assert_int_equal(ca_key_type_of(NULL), CA_KEY_NONE);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	assert_non_null(k);
	assert_int_equal(ca_key_type_of(k), CA_KEY_ECP384);
	assert_true(ca_sig_md(k) == EVP_sha384());
	EVP_PKEY_free(k);
	assert_true(ca_sig_md(fx->tu.key) == EVP_sha256());
	/* refused: RSA below 2048, other curves, other algorithms */
	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	assert_non_null(k);
	assert_int_equal(ca_key_type_of(k), CA_KEY_NONE);
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	assert_non_null(k);
	assert_int_equal(ca_key_type_of(k), CA_KEY_NONE);
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	assert_non_null(k);
	assert_int_equal(ca_key_type_of(k), CA_KEY_NONE);
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(k);
	assert_int_equal(ca_key_type_of(k), CA_KEY_NONE);
	EVP_PKEY_free(k);
}

static void
test_keygen_none(void **state)
{
	lb_err err = { 0 };

	(void)state;
	assert_null(ca_keygen(CA_KEY_NONE, &err));
	assert_int_equal(err.code, LB_EINTERNAL);
}

static void
test_key_write_read(void **state)
{
	struct fixture *fx = *state;
	char *path = tu_path(fx->tu.tmp, "key.pem"),
	    *plain = tu_path(fx->tu.tmp, "plain.pem"), *text;
	lb_err err = { 0 };
	EVP_PKEY *k = ca_keygen(CA_KEY_ECP256, &err), *back;
	mode_t old;

	assert_non_null(k);
	/* 0600 even with a permissive umask */
	old = umask(0);
	assert_int_equal(ca_key_write(path, k, "correct horse", true, &err), 0);
	umask(old);
	assert_int_equal(tu_mode(path), 0600);
	text = tu_slurp(path, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
	assert_null(strstr(text, "BEGIN PRIVATE KEY"));
	free(text);

	back = ca_key_read(path, "correct horse", &err);
	assert_non_null(back);
	assert_int_equal(EVP_PKEY_eq(back, k), 1);
	EVP_PKEY_free(back);
	/* wrong or missing passphrase */
	assert_null(ca_key_read(path, "wrong horse", &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "wrong passphrase"));
	lb_err_clear(&err);
	assert_null(ca_key_read(path, NULL, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	/* excl refuses to overwrite */
	assert_int_equal(ca_key_write(path, fx->tu.key, "x", true, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	lb_err_clear(&err);
	back = ca_key_read(path, "correct horse", &err);
	assert_int_equal(EVP_PKEY_eq(back, k), 1);
	EVP_PKEY_free(back);

	/* unencrypted, and RSA */
	assert_int_equal(ca_key_write(plain, fx->rsa2048, NULL, false, &err),
	    0);
	assert_int_equal(tu_mode(plain), 0600);
	text = tu_slurp(plain, NULL);
	assert_non_null(strstr(text, "-----BEGIN PRIVATE KEY-----"));
	free(text);
	back = ca_key_read(plain, NULL, &err);
	assert_non_null(back);
	assert_int_equal(EVP_PKEY_eq(back, fx->rsa2048), 1);
	EVP_PKEY_free(back);
	/* not a key at all, and a missing file */
	assert_int_equal(tu_write(plain, "hello\n", 6), 0);
	assert_null(ca_key_read(plain, NULL, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	unlink(plain);
	assert_null(ca_key_read(plain, NULL, &err));
	assert_int_equal(err.code, LB_ENOTFOUND);

	EVP_PKEY_free(k);
	unlink(path);
	free(path);
	free(plain);
}

/* ------------------------------------------------------------------ */
/* CSR and certificate parsing                                         */

static void
expect_csr_error(const unsigned char *buf, size_t len, enum lb_errcode code,
    const char *what)
{
	lb_err err = { 0 };
	X509_REQ *r = ca_csr_parse(buf, len, &err);

	if (r != NULL) {
		X509_REQ_free(r);
		fail_msg("%s: CSR accepted", what);
	}
	if (err.code != code)
		fail_msg("%s: error %d (%s), expected %d", what, err.code,
		    err.msg, code);
	assert_true(err.msg[0] != '\0');
}

static void
test_csr_parse_good(void **state)
{
	struct fixture *fx = *state;
	EVP_PKEY *keys[2] = { fx->tu.key, fx->rsa2048 };
	enum ca_key_type want[2] = { CA_KEY_ECP256, CA_KEY_RSA2048 };
	lb_err err = { 0 };
	int i;

	for (i = 0; i < 2; i++) {
		X509_REQ *req = make_csr(keys[i], "csr test"), *got;
		size_t dlen, plen;
		unsigned char *der = csr_der(req, &dlen);
		char *pem = csr_pem(req, &plen), *ws;

		got = ca_csr_parse(der, dlen, &err);
		assert_non_null(got);
		assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(got),
		    keys[i]), 1);
		assert_int_equal(ca_key_type_of(X509_REQ_get0_pubkey(got)),
		    want[i]);
		X509_REQ_free(got);
		got = ca_csr_parse((unsigned char *)pem, plen, &err);
		assert_non_null(got);
		assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(got),
		    keys[i]), 1);
		X509_REQ_free(got);
		/* PEM after blank lines, as pasted by hand */
		assert_true(asprintf(&ws, "\n \r\n\t\n%s", pem) > 0);
		got = ca_csr_parse((unsigned char *)ws, strlen(ws), &err);
		assert_non_null(got);
		X509_REQ_free(got);
		assert_int_equal(err.code, LB_OK);
		free(ws);
		free(pem);
		OPENSSL_free(der);
		X509_REQ_free(req);
	}
}

static void
test_csr_parse_bad(void **state)
{
	struct fixture *fx = *state;
	X509_REQ *req = make_csr(fx->tu.key, "bad csr");
	size_t dlen, plen, i;
	unsigned char *der = csr_der(req, &dlen), *buf;
	char *pem = csr_pem(req, &plen);
	static const char garbage[] = "this is not a certificate request";
	static const char bad_pem[] = "-----BEGIN CERTIFICATE REQUEST-----\n"
	    "bm90IGEgcmVxdWVzdA==\n-----END CERTIFICATE REQUEST-----\n";

	expect_csr_error((const unsigned char *)garbage, sizeof(garbage) - 1,
	    LB_EINVAL, "garbage");
	expect_csr_error((const unsigned char *)bad_pem, sizeof(bad_pem) - 1,
	    LB_EINVAL, "PEM of garbage");
	expect_csr_error(der, 0, LB_EINVAL, "empty");
	expect_csr_error((const unsigned char *)"", 0, LB_EINVAL, "empty string");
	/* every truncation of the DER */
	for (i = 1; i < dlen; i++)
		expect_csr_error(der, i, LB_EINVAL, "truncated DER");
	/* truncated PEM */
	expect_csr_error((unsigned char *)pem, plen / 2, LB_EINVAL,
	    "truncated PEM");

	/* DER with trailing bytes */
	buf = malloc(dlen + 1);
	assert_non_null(buf);
	memcpy(buf, der, dlen);
	buf[dlen] = 0;
	expect_csr_error(buf, dlen + 1, LB_EINVAL, "DER + 1 byte");
	free(buf);

	/* larger than 64 KiB: LB_ETOOBIG, before any parsing */
	buf = calloc(1, 64 * 1024 + 1);
	assert_non_null(buf);
	memcpy(buf, der, dlen);
	expect_csr_error(buf, 64 * 1024 + 1, LB_ETOOBIG, "65537 bytes");
	/* 64 KiB exactly is parsed (and fails as trailing garbage) */
	expect_csr_error(buf, 64 * 1024, LB_EINVAL, "65536 bytes");
	free(buf);

	/* a flipped bit in the signature: structure intact, signature not */
	buf = malloc(dlen);
	assert_non_null(buf);
	memcpy(buf, der, dlen);
	buf[dlen - 1] ^= 0x01;
	{
		lb_err err = { 0 };

		assert_null(ca_csr_parse(buf, dlen, &err));
		assert_int_equal(err.code, LB_EINVAL);
		assert_non_null(strstr(err.msg, "signature"));
	}
	/* a changed subject under the original signature */
	memcpy(buf, der, dlen);
	{
		unsigned char *hit = memmem(buf, dlen, "bad csr", 7);

		assert_non_null(hit);
		hit[0] = 'B';
		expect_csr_error(buf, dlen, LB_EINVAL, "altered subject");
	}
	free(buf);
	free(pem);
	OPENSSL_free(der);
	X509_REQ_free(req);

	/* an RSA CSR with a flipped signature bit */
	req = make_csr(fx->rsa2048, "rsa");
	der = csr_der(req, &dlen);
	der[dlen - 1] ^= 0x80;
	expect_csr_error(der, dlen, LB_EINVAL, "RSA signature flipped");
	OPENSSL_free(der);
	X509_REQ_free(req);
}

static void
test_csr_of_certificate_refused(void **state)
{
	struct fixture *fx = *state;
	unsigned char *der = NULL;
	int len = i2d_X509(ca_get0_cert(fx->tu.ca), &der);

	assert_true(len > 0);
	expect_csr_error(der, (size_t)len, LB_EINVAL, "a certificate");
	OPENSSL_free(der);
}

static void
test_cert_parse(void **state)
{
	struct fixture *fx = *state;
	X509 *ca = ca_get0_cert(fx->tu.ca), *x;
	unsigned char *der = NULL, *big;
	int len = i2d_X509(ca, &der);
	lb_err err = { 0 };
	char *path = tu_path(fx->tu.dir, CA_CERT_FILE), *pem;
	size_t plen = 0;

	assert_true(len > 0);
	x = ca_cert_parse(der, (size_t)len, &err);
	assert_non_null(x);
	assert_int_equal(X509_cmp(x, ca), 0);
	X509_free(x);
	pem = tu_slurp(path, &plen);
	assert_non_null(pem);
	x = ca_cert_parse((unsigned char *)pem, plen, &err);
	assert_non_null(x);
	assert_int_equal(X509_cmp(x, ca), 0);
	X509_free(x);
	assert_int_equal(err.code, LB_OK);

	assert_null(ca_cert_parse(der, (size_t)len - 1, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_null(ca_cert_parse((const unsigned char *)"", 0, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_null(ca_cert_parse((unsigned char *)pem, 40, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	big = calloc(1, 1024 * 1024 + 1);
	assert_non_null(big);
	assert_null(ca_cert_parse(big, 1024 * 1024 + 1, &err));
	assert_int_equal(err.code, LB_ETOOBIG);
	free(big);
	free(pem);
	free(path);
	OPENSSL_free(der);
}

/* ------------------------------------------------------------------ */
/* Serials, reasons, roles                                             */

static void
expect_serial(const char *in, size_t outlen, const char *want)
{
	char out[256];

	memset(out, '#', sizeof(out));
	if (want == NULL) {
		if (ca_serial_normalise(in, out, outlen) != -1)
			fail_msg("'%s' (outlen %zu) should be refused",
			    in ? in : "(null)", outlen);
		return;
	}
	if (ca_serial_normalise(in, out, outlen) != 0)
		fail_msg("'%s' (outlen %zu) should normalise", in, outlen);
	assert_string_equal(out, want);
}

static void
test_serial_normalise(void **state)
{
	(void)state;
	expect_serial("0a:bc:DE", 64, "0ABCDE");
	expect_serial("4A3F", 64, "4A3F");
	expect_serial("4a3f", 64, "4A3F");
	expect_serial("0x1f", 64, "1F");
	expect_serial("0X1F", 64, "1F");
	expect_serial("abc", 64, "0ABC");
	expect_serial("000001", 64, "01");
	expect_serial("00:01:00", 64, "0100");
	expect_serial("0", 64, "00");
	expect_serial("00", 64, "00");
	expect_serial("7F:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF", 64,
	    "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF");
	expect_serial("", 64, NULL);
	expect_serial(":", 64, NULL);
	expect_serial("0x", 64, NULL);
	expect_serial("xyz", 64, NULL);
	expect_serial("12 34", 64, NULL);
	expect_serial("-12", 64, NULL);
	expect_serial("12g", 64, NULL);
	expect_serial(NULL, 64, NULL);
	/* output space: digits plus NUL, plus the padding digit */
	expect_serial("AB", 3, "AB");
	expect_serial("AB", 2, NULL);
	expect_serial("ABC", 5, "0ABC");
	expect_serial("ABC", 4, NULL);
}

static void
test_reasons(void **state)
{
	static const struct {
		const char *name;
		int code;
	} r[] = {
		{ "keyCompromise", 1 }, { "affiliationChanged", 3 },
		{ "superseded", 4 }, { "cessationOfOperation", 5 },
		{ "privilegeWithdrawn", 9 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		assert_int_equal(ca_reason_parse(r[i].name), r[i].code);
		assert_string_equal(ca_reason_name(r[i].code), r[i].name);
	}
	assert_int_equal(ca_reason_parse("keycompromise"), -1);
	assert_int_equal(ca_reason_parse("unspecified"), -1);
	assert_int_equal(ca_reason_parse("caCompromise"), -1);
	assert_int_equal(ca_reason_parse(""), -1);
	assert_int_equal(ca_reason_parse(NULL), -1);
	assert_string_equal(ca_reason_name(0), "unspecified");
	assert_string_equal(ca_reason_name(2), "unspecified");
	assert_string_equal(ca_reason_name(-1), "unspecified");
}

static void
test_roles(void **state)
{
	static const struct {
		const char *name;
		enum ca_role role;
	} r[] = {
		{ "admin", CA_ROLE_ADMIN }, { "officer", CA_ROLE_OFFICER },
		{ "recovery-officer", CA_ROLE_RECOVERY_OFFICER },
		{ "recovery-agent", CA_ROLE_RECOVERY_AGENT },
		{ "auditor", CA_ROLE_AUDITOR },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		assert_int_equal(ca_role_parse(r[i].name), r[i].role);
		assert_string_equal(ca_role_name(r[i].role), r[i].name);
	}
	assert_int_equal(ca_role_parse("Admin"), CA_ROLE_NONE);
	assert_int_equal(ca_role_parse("root"), CA_ROLE_NONE);
	assert_int_equal(ca_role_parse(""), CA_ROLE_NONE);
	assert_int_equal(ca_role_parse(NULL), CA_ROLE_NONE);
	assert_string_equal(ca_role_name(CA_ROLE_NONE), "none");
	assert_string_equal(ca_role_name(CA_ROLE_ADMIN | CA_ROLE_OFFICER),
	    "none");
}

/* ------------------------------------------------------------------ */
/* The CA: init and open                                               */

static void
test_init_layout(void **state)
{
	struct fixture *fx = *state;
	static const struct {
		const char *name;
		int mode;
	} files[] = {
		{ CA_CONF_FILE, 0600 }, { CA_KEY_FILE, 0600 },
		{ CA_KEY_PASS_FILE, 0600 }, { CA_TLS_KEY_FILE, 0600 },
		{ CA_ADMIN_P12, 0600 },
		{ CA_CERT_FILE, 0644 }, { CA_TLS_CERT_FILE, 0644 },
		{ CA_DB_FILE, -1 }, { CA_PUB_DIR "/ca.crt", 0644 },
	};
	char *p, *text;
	size_t i;
	X509 *ca = ca_get0_cert(fx->tu.ca);

	assert_int_equal(tu_mode(fx->tu.dir), 0700);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		p = tu_path(fx->tu.dir, files[i].name);
		if (files[i].mode == -1)
			assert_int_equal(tu_mode(p) & 077, 0);
		else if (tu_mode(p) != files[i].mode)
			fail_msg("%s: mode %o, expected %o", files[i].name,
			    tu_mode(p), files[i].mode);
		free(p);
	}
	/* the administrator's passphrase is nowhere beside admin.p12 */
	p = tu_path(fx->tu.dir, CA_ADMIN_P12 ".pass");
	assert_int_equal(access(p, F_OK), -1);
	free(p);
	p = tu_path(fx->tu.dir, CA_KEY_FILE);
	text = tu_slurp(p, NULL);
	assert_non_null(strstr(text, "BEGIN ENCRYPTED PRIVATE KEY"));
	free(text);
	free(p);
	/* the root: self-signed CA with keyCertSign, the key type asked for */
	assert_int_equal(X509_check_ca(ca), 1);
	assert_int_equal(X509_check_issued(ca, ca), X509_V_OK);
	assert_int_equal(ca_key_type_of(X509_get0_pubkey(ca)), CA_KEY_ECP256);
	assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_non_null(X509_get0_subject_key_id(ca));
	assert_int_equal(sk_X509_num(ca_get0_chain(fx->tu.ca)), 1);
	assert_string_equal(ca_get0_dir(fx->tu.ca), fx->tu.dir);
	assert_string_equal(core_conf_get(ca_get0_conf(fx->tu.ca), "ca", "name",
	    NULL), "lockbox Unit Test CA");
	/* init wrote an audit trail that verifies */
	{
		int64_t rows = 0, bad = 0;
		char why[128];
		lb_err err = { 0 };

		assert_int_equal(core_audit_verify(fx->tu.db, &rows, &bad, why,
		    sizeof(why), &err), 0);
		assert_true(rows >= 3); /* init, TLS issue, admin issue + add */
	}
}

static void
test_init_refuses_existing(void **state)
{
	struct fixture *fx = *state;
	ca_init_opts o;
	lb_err err = { 0 };
	char *p = tu_path(fx->tu.dir, CA_CONF_FILE), *after;

	memset(&o, 0, sizeof(o));
	o.key_type = CA_KEY_ECP256;
	assert_int_equal(ca_init(fx->tu.dir, &o, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	after = tu_slurp(p, NULL);
	assert_string_equal(after, fx->conf);
	free(after);
	free(p);
}

static void
test_init_bad_options(void **state)
{
	struct fixture *fx = *state;
	char *dir = tu_path(fx->tu.tmp, "never");
	ca_init_opts o;
	lb_err err = { 0 };
	char longname[80];

	memset(&o, 0, sizeof(o));
	o.key_type = CA_KEY_RSA2048;
	assert_int_equal(ca_init(dir, &o, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	memset(&o, 0, sizeof(o));
	o.key_type = CA_KEY_ECP256;
	o.base_url = "https://ca.test";
	assert_int_equal(ca_init(dir, &o, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	o.base_url = NULL;
	o.admin_email = "not an address";
	assert_int_equal(ca_init(dir, &o, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	o.admin_email = NULL;
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	o.name = longname;
	assert_int_equal(ca_init(dir, &o, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	o.name = NULL;
	o.days = 10000;
	assert_int_equal(ca_init(dir, &o, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	/* nothing was created */
	assert_int_equal(access(dir, F_OK), -1);
	free(dir);
}

/*
 * A CA name with characters that are syntax in OpenSSL's config format
 * ('$' starts a variable, '#' a comment) once made ca_init fail half-way
 * with a config "syntax error", leaving a directory that blocked a retry.
 */
static void
test_init_special_name(void **state)
{
	struct fixture *fx = *state;
	static const char name[] = "ACME $Corp #1 \"Q\" 'S' \\ CA";
	char *dir = tu_path(fx->tu.tmp, "special"), buf[128];
	ca_init_opts o;
	lb_err err = { 0 };
	ca_ctx *ca;

	memset(&o, 0, sizeof(o));
	o.name = name;
	o.key_type = CA_KEY_ECP256;
	o.base_url = "http://ca.test/$x#y";
	o.admin_p12_pass_file = tu_pass_file(fx->tu.tmp);
	if (ca_init(dir, &o, &err) == -1)
		fail_msg("ca_init: %s", err.msg);
	ca = ca_open(dir, 0, &err);
	if (ca == NULL)
		fail_msg("ca_open: %s", err.msg);
	assert_string_equal(core_conf_get(ca_get0_conf(ca), "ca", "name", NULL),
	    name);
	assert_string_equal(core_conf_get(ca_get0_conf(ca), "ca", "base_url",
	    NULL), "http://ca.test/$x#y");
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(
	    ca_get0_cert(ca)), NID_commonName, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, name);
	ca_free(ca);
	free(dir);
}

static void
test_open_faults(void **state)
{
	struct fixture *fx = *state;
	char *dir = tu_path(fx->tu.tmp, "broken"), *p, *wrong;
	static const char bad[] = "[ca]\nname = x\n\n[profile.smime-sign\n"
	    "validity_days = 30\n";
	lb_err err = { 0 };
	ca_ctx *ca;

	/* no CA at all */
	assert_null(ca_open(dir, 0, &err));
	assert_int_equal(err.code, LB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "lockbox init"));
	lb_err_clear(&err);

	/* a config with a syntax error: the message names file and line */
	assert_int_equal(mkdir(dir, 0700), 0);
	p = tu_path(dir, CA_CONF_FILE);
	assert_int_equal(tu_write(p, bad, sizeof(bad) - 1), 0);
	assert_null(ca_open(dir, 0, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "lockbox.conf"));
	if (strstr(err.msg, "line 4") == NULL)
		fail_msg("'%s' does not name line 4", err.msg);
	lb_err_clear(&err);
	free(p);

	/* profile settings out of bounds, refused at open */
	assert_null(open_with(fx, "[profile.smime-sign]\nvalidity_days = 826\n",
	    0, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "validity_days"));
	lb_err_clear(&err);
	ca = open_with(fx, "[profile.smime-sign]\nvalidity_days = 825\n", 0,
	    &err);
	assert_non_null(ca);
	ca_free(ca);
	assert_null(open_with(fx, "[profile.recovery-agent]\n"
	    "key_types = rsa-2048\n", 0, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "never allows"));
	lb_err_clear(&err);
	assert_null(open_with(fx, "[profile.smime-sign]\nkey_types = dsa\n", 0,
	    &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_null(open_with(fx, "[profile.smime-sign]\nvalidation = org\n",
	    0, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_null(open_with(fx, "[ca]\nbase_url = https://ca.test\n", 0,
	    &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_null(open_with(fx, "[ca]\nrole_separation = sometimes\n", 0,
	    &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);

	/* a wrong key passphrase */
	wrong = tu_path(fx->tu.tmp, "wrong.pass");
	assert_int_equal(tu_write(wrong, "not the passphrase\n", 19), 0);
	assert_true(asprintf(&p, "[ca]\nkey_pass_file = %s\n", wrong) > 0);
	assert_null(open_with(fx, p, 0, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "passphrase"));
	lb_err_clear(&err);
	/* without the key, the CA still opens but cannot sign */
	ca = open_with(fx, p, CA_OPEN_NO_KEY, &err);
	assert_non_null(ca);
	{
		ca_request req;

		memset(&req, 0, sizeof(req));
		req.profile = "smime-sign";
		req.email = "nokey@ca.test";
		req.pubkey = fx->tu.key;
		assert_null(ca_sign_cert(ca, &req, &err));
		assert_int_equal(err.code, LB_EINTERNAL);
		assert_non_null(strstr(err.msg, "not loaded"));
	}
	ca_free(ca);
	free(p);
	free(wrong);
	free(dir);
}

static void
test_profiles(void **state)
{
	struct fixture *fx = *state;
	static const char *const subscriber[] = { "smime-sign", "smime-enc" };
	static const char *const others[] = {
		"recovery-agent", "operator", "tls-server", "ocsp-signing",
	};
	const ca_profile *p;
	char names[256];
	size_t i;

	for (i = 0; i < 2; i++) {
		assert_non_null(p = ca_profile_get(fx->tu.ca, subscriber[i]));
		assert_string_equal(ca_profile_name(p), subscriber[i]);
		assert_true(ca_profile_is_subscriber(p));
	}
	for (i = 0; i < 4; i++) {
		assert_non_null(p = ca_profile_get(fx->tu.ca, others[i]));
		assert_false(ca_profile_is_subscriber(p));
		assert_false(ca_profile_needs_escrow(p));
	}
	assert_true(ca_profile_needs_escrow(ca_profile_get(fx->tu.ca,
	    "smime-enc")));
	assert_false(ca_profile_needs_escrow(ca_profile_get(fx->tu.ca,
	    "smime-sign")));
	assert_null(ca_profile_get(fx->tu.ca, "smime"));
	assert_null(ca_profile_get(fx->tu.ca, NULL));
	ca_profile_names(fx->tu.ca, names, sizeof(names));
	assert_string_equal(names, "smime-sign, smime-enc, recovery-agent, "
	    "operator, tls-server, ocsp-signing");
	/* a short buffer is truncated, not overrun */
	ca_profile_names(fx->tu.ca, names, 12);
	assert_true(strlen(names) < 12);
}

/* ------------------------------------------------------------------ */
/* Issuance                                                            */

/* The S/MIME BR strict mailbox profile, checked extension by extension. */
static void
check_smime_sign(struct fixture *fx, X509 *x, const char *email,
    EVP_PKEY *key)
{
	X509 *ca = ca_get0_cert(fx->tu.ca);
	const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
	const ASN1_OCTET_STRING *ski, *aki;
	EXTENDED_KEY_USAGE *eku;
	GENERAL_NAMES *san;
	BASIC_CONSTRAINTS *bc;
	CRL_DIST_POINTS *cdp;
	AUTHORITY_INFO_ACCESS *aia;
	DIST_POINT *dp;
	X509_NAME *subj = X509_get_subject_name(x);
	char buf[256], *serial;
	const unsigned char *pk;
	unsigned char md[20];
	int pklen, crit, i, ocsp = 0, issuers = 0;
	time_t now = time(NULL), nb;
	struct tm tm;

	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	/* serial: 16 bytes, positive */
	assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER);
	assert_int_equal(ASN1_STRING_length(sn), 16);
	assert_true((ASN1_STRING_get0_data(sn)[0] & 0x80) == 0);
	assert_true(ASN1_STRING_get0_data(sn)[0] != 0);
	serial = ca_cert_serial(x);
	assert_int_equal(strlen(serial), 32);
	free(serial);

	/* validity: 365 days counted inclusively, backdated a little */
	assert_int_equal(validity_seconds(x), 365 * DAY);
	assert_int_equal(ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm), 1);
	nb = timegm(&tm);
	assert_in_range(nb, now - 400, now);

	/* names */
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x),
	    X509_get_subject_name(ca)), 0);
	assert_int_equal(X509_NAME_entry_count(subj), 1);
	assert_true(X509_NAME_get_text_by_NID(subj, NID_commonName, buf,
	    sizeof(buf)) > 0);
	assert_string_equal(buf, email);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), key), 1);

	/* exactly these nine extensions, each once */
	assert_int_equal(X509_get_ext_count(x), 9);
	assert_int_equal(count_ext(x, NID_basic_constraints), 1);
	assert_int_equal(count_ext(x, NID_key_usage), 1);
	assert_int_equal(count_ext(x, NID_ext_key_usage), 1);
	assert_int_equal(count_ext(x, NID_certificate_policies), 1);
	assert_int_equal(count_ext(x, NID_authority_key_identifier), 1);
	assert_int_equal(count_ext(x, NID_subject_key_identifier), 1);
	assert_int_equal(count_ext(x, NID_subject_alt_name), 1);
	assert_int_equal(count_ext(x, NID_crl_distribution_points), 1);
	assert_int_equal(count_ext(x, NID_info_access), 1);
	assert_int_equal(X509_get_extension_flags(x) & EXFLAG_INVALID, 0);

	/* basicConstraints: critical, not a CA */
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_int_equal(bc->ca, 0);
	BASIC_CONSTRAINTS_free(bc);

	/* keyUsage: critical, digitalSignature + nonRepudiation only */
	assert_int_equal(ext_critical(x, NID_key_usage), 1);
	assert_int_equal(X509_get_key_usage(x),
	    KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION);

	/* extKeyUsage: emailProtection only, not critical */
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
	assert_non_null(eku);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)),
	    NID_email_protect);
	EXTENDED_KEY_USAGE_free(eku);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SMIME);

	/* subjectAltName: exactly the rfc822Name */
	san = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	assert_non_null(san);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_GENERAL_NAME_num(san), 1);
	assert_int_equal(sk_GENERAL_NAME_value(san, 0)->type, GEN_EMAIL);
	assert_string_equal((const char *)ASN1_STRING_get0_data(
	    sk_GENERAL_NAME_value(san, 0)->d.rfc822Name), email);
	GENERAL_NAMES_free(san);
	assert_int_equal(X509_check_email(x, email, 0, 0), 1);

	/* policy: mailbox-validated strict */
	assert_policy(x, "2.23.140.1.5.1.3");

	/* AKI = the CA's SKI; SKI = SHA-1 of the subject key bits */
	aki = X509_get0_authority_key_id(x);
	assert_non_null(aki);
	assert_int_equal(ASN1_OCTET_STRING_cmp(aki,
	    X509_get0_subject_key_id(ca)), 0);
	ski = X509_get0_subject_key_id(x);
	assert_non_null(ski);
	assert_int_equal(ASN1_STRING_length(ski), 20);
	assert_int_equal(X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL,
	    X509_get_X509_PUBKEY(x)), 1);
	assert_int_equal(EVP_Digest(pk, (size_t)pklen, md, NULL, EVP_sha1(),
	    NULL), 1);
	assert_memory_equal(ASN1_STRING_get0_data(ski), md, 20);

	/* CRL distribution point and AIA under base_url (no double slash) */
	cdp = X509_get_ext_d2i(x, NID_crl_distribution_points, &crit, NULL);
	assert_non_null(cdp);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_DIST_POINT_num(cdp), 1);
	dp = sk_DIST_POINT_value(cdp, 0);
	assert_non_null(dp->distpoint);
	assert_int_equal(dp->distpoint->type, 0);
	assert_int_equal(sk_GENERAL_NAME_num(dp->distpoint->name.fullname), 1);
	assert_uri(sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0),
	    BASE_URL "/ca.crl");
	CRL_DIST_POINTS_free(cdp);
	aia = X509_get_ext_d2i(x, NID_info_access, &crit, NULL);
	assert_non_null(aia);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_ACCESS_DESCRIPTION_num(aia), 2);
	for (i = 0; i < 2; i++) {
		ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);

		if (OBJ_obj2nid(ad->method) == NID_ad_OCSP) {
			assert_uri(ad->location, BASE_URL "/ocsp");
			ocsp++;
		} else if (OBJ_obj2nid(ad->method) == NID_ad_ca_issuers) {
			assert_uri(ad->location, BASE_URL "/ca.crt");
			issuers++;
		}
	}
	assert_int_equal(ocsp, 1);
	assert_int_equal(issuers, 1);
	AUTHORITY_INFO_ACCESS_free(aia);

	/* signed by the CA, SHA-256 with a P-256 CA key, and it chains */
	assert_int_equal(X509_verify(x, X509_get0_pubkey(ca)), 1);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	assert_verifies(ca_get0_store(fx->tu.ca), x, NULL,
	    X509_PURPOSE_SMIME_SIGN);
}

static void
test_issue_smime_sign_ec(void **state)
{
	struct fixture *fx = *state;
	const char *email = "alice@example.org";
	lb_err err = { 0 };
	long long certs = count_certs(fx), audits = count_audit(fx);
	X509 *x = issue(fx, NULL, "smime-sign", email, fx->tu.key, &err);
	ca_cert_info ci;
	unsigned char *der = NULL;
	int len;
	char *serial, *last;

	if (x == NULL)
		fail_msg("ca_issue: %s", err.msg);
	check_smime_sign(fx, x, email, fx->tu.key);

	/* stored, durable, audited */
	assert_int_equal(count_certs(fx), certs + 1);
	assert_int_equal(count_audit(fx), audits + 1);
	serial = ca_cert_serial(x);
	assert_int_equal(ca_cert_get(fx->tu.db, serial, &ci, &err), 0);
	assert_string_equal(ci.serial, serial);
	assert_string_equal(ci.profile, "smime-sign");
	assert_string_equal(ci.email, email);
	assert_string_equal(ci.status, "valid");
	assert_string_equal(ci.subject, "CN=alice@example.org");
	assert_int_equal(ci.reason, -1);
	assert_int_equal(ci.not_after - ci.not_before + 1, 365 * DAY);
	len = i2d_X509(x, &der);
	assert_int_equal(ci.der_len, (size_t)len);
	assert_memory_equal(ci.der, der, (size_t)len);
	OPENSSL_free(der);
	ca_cert_info_clear(&ci);
	last = tu_sql_text(fx->tu.db, "SELECT action || ' ' || object || "
	    "' ' || actor FROM audit ORDER BY id DESC LIMIT 1");
	assert_non_null(last);
	assert_non_null(strstr(last, "issue "));
	assert_non_null(strstr(last, serial));
	assert_non_null(strstr(last, ACTOR));
	free(last);
	/* the serial looks up in any spelling */
	{
		char *lower = strdup(serial);

		for (char *c = lower; *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'F' ? *c + 32 : *c);
		assert_int_equal(ca_cert_get(fx->tu.db, lower, &ci, &err), 0);
		assert_string_equal(ci.serial, serial);
		ca_cert_info_clear(&ci);
		free(lower);
	}
	free(serial);
	X509_free(x);
}

static void
test_issue_smime_sign_rsa(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	X509 *x = issue(fx, NULL, "smime-sign", "rsa.user@example.org",
	    fx->rsa2048, &err);

	assert_non_null(x);
	check_smime_sign(fx, x, "rsa.user@example.org", fx->rsa2048);
	X509_free(x);
}

static void
test_issue_serials_distinct(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	X509 *a = issue(fx, NULL, "smime-sign", "twice@example.org", fx->tu.key,
	    &err);
	X509 *b = issue(fx, NULL, "smime-sign", "twice@example.org", fx->tu.key,
	    &err);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a),
	    X509_get0_serialNumber(b)), 0);
	X509_free(a);
	X509_free(b);
}

static void
test_issue_days(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	ca_request req;
	X509 *x;
	long long certs = count_certs(fx);

	memset(&req, 0, sizeof(req));
	req.profile = "smime-sign";
	req.email = "short@example.org";
	req.pubkey = fx->tu.key;
	req.days = 30;
	x = ca_issue(fx->tu.ca, fx->tu.db, &req, ACTOR, &err);
	assert_non_null(x);
	assert_int_equal(validity_seconds(x), 30 * DAY);
	X509_free(x);
	req.days = 366;
	assert_null(ca_issue(fx->tu.ca, fx->tu.db, &req, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "365"));
	lb_err_clear(&err);
	req.days = -1;
	assert_null(ca_issue(fx->tu.ca, fx->tu.db, &req, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_int_equal(count_certs(fx), certs + 1);
}

static void
test_issue_individual(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	ca_ctx *ca = open_with(fx, "[profile.smime-sign]\n"
	    "validation = individual\n", 0, &err);
	ca_request req;
	X509 *x;
	X509_NAME *n;
	char buf[128];
	long long certs = count_certs(fx);

	if (ca == NULL)
		fail_msg("ca_open: %s", err.msg);
	memset(&req, 0, sizeof(req));
	req.profile = "smime-sign";
	req.email = "grace@example.org";
	req.pubkey = fx->tu.key;
	/* given name and surname are both required */
	assert_null(ca_issue(ca, fx->tu.db, &req, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "individual"));
	lb_err_clear(&err);
	req.given_name = "Grace";
	assert_null(ca_issue(ca, fx->tu.db, &req, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	req.surname = "";
	assert_null(ca_issue(ca, fx->tu.db, &req, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_int_equal(count_certs(fx), certs);

	req.surname = "Hopper";
	x = ca_issue(ca, fx->tu.db, &req, ACTOR, &err);
	if (x == NULL)
		fail_msg("ca_issue: %s", err.msg);
	n = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_entry_count(n), 3);
	assert_true(X509_NAME_get_text_by_NID(n, NID_givenName, buf,
	    sizeof(buf)) > 0);
	assert_string_equal(buf, "Grace");
	assert_true(X509_NAME_get_text_by_NID(n, NID_surname, buf,
	    sizeof(buf)) > 0);
	assert_string_equal(buf, "Hopper");
	assert_true(X509_NAME_get_text_by_NID(n, NID_commonName, buf,
	    sizeof(buf)) > 0);
	assert_string_equal(buf, "Grace Hopper");
	assert_policy(x, "2.23.140.1.5.4.3");
	/* the mailbox is still in the SAN */
	assert_int_equal(X509_check_email(x, "grace@example.org", 0, 0), 1);
	assert_verifies(ca_get0_store(ca), x, NULL, X509_PURPOSE_SMIME_SIGN);
	assert_int_equal(count_certs(fx), certs + 1);
	X509_free(x);

	/* names longer than the X.520 bound are refused */
	req.surname = "Hopperhopperhopperhopperhopperhopperhopperhopperhopper"
	    "hopperhopper";
	assert_null(ca_issue(ca, fx->tu.db, &req, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	ca_free(ca);

	/* the CA opened with the unchanged config is still mailbox */
	lb_err_clear(&err);
	req.given_name = req.surname = NULL;
	x = ca_issue(fx->tu.ca, fx->tu.db, &req, ACTOR, &err);
	assert_non_null(x);
	assert_policy(x, "2.23.140.1.5.1.3");
	X509_free(x);
}

static void
test_issue_non_repudiation_off(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	ca_ctx *ca = open_with(fx, "[profile.smime-sign]\n"
	    "non_repudiation = no\n", 0, &err);
	X509 *x;

	assert_non_null(ca);
	x = issue(fx, ca, "smime-sign", "nr@example.org", fx->tu.key, &err);
	assert_non_null(x);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	X509_free(x);
	ca_free(ca);
}

static void
test_issue_smime_enc_refused(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	long long certs = count_certs(fx), audits = count_audit(fx);

	assert_null(issue(fx, NULL, "smime-enc", "enc@example.org", fx->tu.key,
	    &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "escrow"));
	assert_int_equal(count_certs(fx), certs);
	assert_int_equal(count_audit(fx), audits);
	assert_int_equal(tu_sql_int(fx->tu.db, "SELECT count(*) FROM "
	    "certificates WHERE profile = 'smime-enc'"), 0);
}

static void
test_issue_recovery_agent_key_types(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	ca_request req;
	long long certs = count_certs(fx);
	X509 *x;
	EXTENDED_KEY_USAGE *eku;
	char oid[64];
	int i, found = 0;

	memset(&req, 0, sizeof(req));
	req.profile = "recovery-agent";
	req.email = "agent@example.org";
	req.common_name = "Agent Smith";
	req.pubkey = fx->rsa2048;
	assert_null(ca_issue(fx->tu.ca, fx->tu.db, &req, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "rsa-2048"));
	assert_non_null(strstr(err.msg, "rsa-3072, rsa-4096"));
	lb_err_clear(&err);
	req.pubkey = fx->tu.key;
	assert_null(ca_issue(fx->tu.ca, fx->tu.db, &req, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_int_equal(count_certs(fx), certs);

	/* RSA-3072 is accepted, with the key recovery agent EKU */
	req.pubkey = fx->rsa3072;
	x = ca_issue(fx->tu.ca, fx->tu.db, &req, ACTOR, &err);
	if (x == NULL)
		fail_msg("ca_issue: %s", err.msg);
	assert_int_equal(validity_seconds(x), 730 * DAY);
	assert_int_equal(X509_get_key_usage(x),
	    KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	assert_non_null(eku);
	for (i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
		OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, i), 1);
		if (strcmp(oid, "1.3.6.1.4.1.311.21.6") == 0)
			found++;
	}
	assert_int_equal(found, 1);
	EXTENDED_KEY_USAGE_free(eku);
	assert_int_equal(count_ext(x, NID_certificate_policies), 0);
	assert_int_equal(X509_check_email(x, "agent@example.org", 0, 0), 1);
	assert_int_equal(count_certs(fx), certs + 1);
	X509_free(x);
}

static void
test_issue_bad_requests(void **state)
{
	static const char *const bad_emails[] = {
		"not-an-email", "a b@example.org", "@example.org",
		"alice@example.org\nX-Injected: 1", "",
	};
	struct fixture *fx = *state;
	lb_err err = { 0 };
	long long certs = count_certs(fx), audits = count_audit(fx);
	ca_request req;
	size_t i;

	for (i = 0; i < sizeof(bad_emails) / sizeof(bad_emails[0]); i++) {
		lb_err_clear(&err);
		assert_null(issue(fx, NULL, "smime-sign", bad_emails[i],
		    fx->tu.key, &err));
		assert_int_equal(err.code, LB_EINVAL);
		assert_non_null(strstr(err.msg, "e-mail"));
	}
	lb_err_clear(&err);
	assert_null(issue(fx, NULL, "smime-sign", NULL, fx->tu.key, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	/* unknown profile: the message lists the known ones */
	assert_null(issue(fx, NULL, "smime-everything", "a@example.org",
	    fx->tu.key, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "smime-sign"));
	lb_err_clear(&err);
	assert_null(issue(fx, NULL, NULL, "a@example.org", fx->tu.key, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	/* no key */
	assert_null(issue(fx, NULL, "smime-sign", "a@example.org", NULL, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	/* operator and tls-server need a name */
	memset(&req, 0, sizeof(req));
	req.profile = "operator";
	req.email = "op@example.org";
	req.pubkey = fx->tu.key;
	assert_null(ca_issue(fx->tu.ca, fx->tu.db, &req, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "name"));
	/* nothing was stored or audited */
	assert_int_equal(count_certs(fx), certs);
	assert_int_equal(count_audit(fx), audits);
}

static void
test_issue_tls_server(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	ca_request req;
	X509 *x;

	memset(&req, 0, sizeof(req));
	req.profile = "tls-server";
	req.common_name = "ca.test";
	req.dns_name = "ca.test";
	req.ip = "127.0.0.1";
	req.pubkey = fx->tu.key;
	x = ca_issue(fx->tu.ca, fx->tu.db, &req, ACTOR, &err);
	assert_non_null(x);
	assert_int_equal(X509_check_host(x, "ca.test", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_host(x, "other.test", 0, 0, NULL), 0);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_SERVER);
	assert_int_equal(count_ext(x, NID_certificate_policies), 0);
	assert_verifies(ca_get0_store(fx->tu.ca), x, NULL,
	    X509_PURPOSE_SSL_SERVER);
	X509_free(x);
	req.ip = "not-an-ip";
	assert_null(ca_issue(fx->tu.ca, fx->tu.db, &req, ACTOR, &err));
	assert_int_not_equal(err.code, LB_OK);
}

/* ------------------------------------------------------------------ */
/* Revocation and listing                                              */

static void
test_revoke(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	X509 *x = issue(fx, NULL, "smime-sign", "revoke.me@example.org",
	    fx->tu.key, &err);
	char *serial, *colons, *p, *last;
	ca_cert_info ci;
	long long audits;
	size_t i;

	assert_non_null(x);
	serial = ca_cert_serial(x);
	/* the serial as a user types it: lowercase with colons */
	colons = calloc(1, strlen(serial) * 3 / 2 + 1);
	for (i = 0, p = colons; serial[i] != '\0'; i++) {
		if (i > 0 && i % 2 == 0)
			*p++ = ':';
		*p++ = (char)(serial[i] >= 'A' && serial[i] <= 'F' ?
		    serial[i] + 32 : serial[i]);
	}
	audits = count_audit(fx);
	/* bad reasons: unspecified (0) and unknown (2, 42) */
	assert_int_equal(ca_revoke(fx->tu.db, serial, 0, 0, ACTOR, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_int_equal(ca_revoke(fx->tu.db, serial, 42, 0, ACTOR, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_int_equal(count_audit(fx), audits);

	assert_int_equal(ca_revoke(fx->tu.db, colons, 1, time(NULL) - 3600,
	    ACTOR, &err), 0);
	assert_int_equal(ca_cert_get(fx->tu.db, serial, &ci, &err), 0);
	assert_string_equal(ci.status, "revoked");
	assert_int_equal(ci.reason, 1);
	assert_in_range(ci.revoked, time(NULL) - 60, time(NULL));
	ca_cert_info_clear(&ci);
	{
		char sql[256];

		/* the invalidity date is kept for keyCompromise */
		snprintf(sql, sizeof(sql), "SELECT invalidity FROM certificates "
		    "WHERE serial = '%s'", serial);
		assert_in_range(tu_sql_int(fx->tu.db, sql), time(NULL) - 3700,
		    time(NULL) - 3500);
	}
	assert_int_equal(count_audit(fx), audits + 1);
	last = tu_sql_text(fx->tu.db, "SELECT action || ' ' || object || "
	    "' ' || detail FROM audit ORDER BY id DESC LIMIT 1");
	assert_non_null(last);
	assert_non_null(strstr(last, "revoke"));
	assert_non_null(strstr(last, serial));
	assert_non_null(strstr(last, "keyCompromise"));
	free(last);

	/* again: conflict, and nothing more is audited */
	assert_int_equal(ca_revoke(fx->tu.db, serial, 4, 0, ACTOR, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	lb_err_clear(&err);
	assert_int_equal(count_audit(fx), audits + 1);
	assert_int_equal(ca_cert_get(fx->tu.db, serial, &ci, &err), 0);
	assert_int_equal(ci.reason, 1);
	ca_cert_info_clear(&ci);
	/* unknown and malformed serials */
	assert_int_equal(ca_revoke(fx->tu.db, "0123456789ABCDEF", 1, 0, ACTOR,
	    &err), -1);
	assert_int_equal(err.code, LB_ENOTFOUND);
	lb_err_clear(&err);
	assert_int_equal(ca_revoke(fx->tu.db, "not-hex", 1, 0, ACTOR, &err),
	    -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_int_equal(ca_cert_get(fx->tu.db, "0123456789ABCDEF", &ci, &err),
	    -1);
	assert_int_equal(err.code, LB_ENOTFOUND);
	ca_cert_info_clear(&ci);
	/* no transaction is left open */
	assert_int_not_equal(sqlite3_get_autocommit(fx->tu.db), 0);
	free(colons);
	free(serial);
	X509_free(x);
}

struct list_acc {
	int n, stop_at;
	char emails[64][64], status[64][16], profiles[64][32];
};

static int
list_cb(const ca_cert_info *ci, void *arg)
{
	struct list_acc *a = arg;

	if (a->n < 64) {
		snprintf(a->emails[a->n], 64, "%s", ci->email ? ci->email : "");
		snprintf(a->status[a->n], 16, "%s", ci->status);
		snprintf(a->profiles[a->n], 32, "%s", ci->profile);
	}
	a->n++;
	return a->stop_at > 0 && a->n >= a->stop_at;
}

static int
list_count(struct fixture *fx, const char *email, const char *profile,
    const char *status, int limit)
{
	struct list_acc a;
	ca_cert_filter f;
	lb_err err = { 0 };

	memset(&a, 0, sizeof(a));
	memset(&f, 0, sizeof(f));
	f.email = email;
	f.profile = profile;
	f.status = status;
	f.limit = limit;
	assert_int_equal(ca_cert_list(fx->tu.db, &f, list_cb, &a, &err), 0);
	return a.n;
}

static void
test_cert_list(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	X509 *x;
	char *serial;
	struct list_acc a;
	ca_cert_filter f;
	int i;

	for (i = 0; i < 3; i++) {
		x = issue(fx, NULL, "smime-sign", i < 2 ? "list.a@example.org" :
		    "list.b@example.org", fx->tu.key, &err);
		assert_non_null(x);
		if (i == 0) {
			serial = ca_cert_serial(x);
			assert_int_equal(ca_revoke(fx->tu.db, serial, 3, 0,
			    ACTOR, &err), 0);
			free(serial);
		}
		X509_free(x);
	}
	assert_int_equal(list_count(fx, "list.a@example.org", NULL, NULL, 0),
	    2);
	assert_int_equal(list_count(fx, "list.b@example.org", NULL, NULL, 0),
	    1);
	assert_int_equal(list_count(fx, "list.a@example.org", NULL, "revoked",
	    0), 1);
	assert_int_equal(list_count(fx, "list.a@example.org", NULL, "valid",
	    0), 1);
	assert_int_equal(list_count(fx, "list.a@example.org", NULL, "expired",
	    0), 0);
	assert_int_equal(list_count(fx, "list.a@example.org", "smime-sign",
	    NULL, 0), 2);
	assert_int_equal(list_count(fx, "list.a@example.org", "operator", NULL,
	    0), 0);
	assert_int_equal(list_count(fx, "nobody@example.org", NULL, NULL, 0),
	    0);
	assert_int_equal(list_count(fx, "list.a@example.org", NULL, NULL, 1),
	    1);
	/* profile alone: the TLS certificate made at init */
	assert_true(list_count(fx, NULL, "tls-server", NULL, 0) >= 1);
	/* everything, and every row matches what its filter says */
	memset(&a, 0, sizeof(a));
	memset(&f, 0, sizeof(f));
	f.status = "revoked";
	assert_int_equal(ca_cert_list(fx->tu.db, &f, list_cb, &a, &err), 0);
	assert_true(a.n >= 1);
	for (i = 0; i < a.n && i < 64; i++)
		assert_string_equal(a.status[i], "revoked");
	memset(&a, 0, sizeof(a));
	f.status = NULL;
	f.profile = "smime-sign";
	assert_int_equal(ca_cert_list(fx->tu.db, &f, list_cb, &a, &err), 0);
	assert_true(a.n >= 3);
	for (i = 0; i < a.n && i < 64; i++)
		assert_string_equal(a.profiles[i], "smime-sign");
	assert_int_equal(list_count(fx, NULL, NULL, NULL, 0), count_certs(fx));
	/* the callback stops the walk */
	memset(&a, 0, sizeof(a));
	a.stop_at = 1;
	assert_int_equal(ca_cert_list(fx->tu.db, NULL, list_cb, &a, &err), 0);
	assert_int_equal(a.n, 1);
	/* an unknown status is refused */
	memset(&f, 0, sizeof(f));
	f.status = "bogus";
	assert_int_equal(ca_cert_list(fx->tu.db, &f, list_cb, &a, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
}

/* Newest first, and "expired" computed from notAfter, shown by moving a
 * stored certificate's times with raw SQL. */
static void
test_cert_list_order_and_expiry(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	X509 *old_cert, *new_cert;
	char *s_old, *s_new, sql[256];
	struct list_acc a;
	ca_cert_filter f;
	ca_cert_info ci;

	old_cert = issue(fx, NULL, "smime-sign", "order@example.org",
	    fx->tu.key, &err);
	new_cert = issue(fx, NULL, "smime-sign", "order@example.org",
	    fx->tu.key, &err);
	assert_non_null(old_cert);
	assert_non_null(new_cert);
	s_old = ca_cert_serial(old_cert);
	s_new = ca_cert_serial(new_cert);
	snprintf(sql, sizeof(sql), "UPDATE certificates SET issued = "
	    "issued - 1000, not_after = %lld WHERE serial = '%s'",
	    (long long)time(NULL) - 10, s_old);
	assert_int_equal(sqlite3_exec(fx->tu.db, sql, NULL, NULL, NULL),
	    SQLITE_OK);

	memset(&a, 0, sizeof(a));
	memset(&f, 0, sizeof(f));
	f.email = "order@example.org";
	assert_int_equal(ca_cert_list(fx->tu.db, &f, list_cb, &a, &err), 0);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.status[0], "valid");   /* the newer one first */
	assert_string_equal(a.status[1], "expired");
	assert_int_equal(list_count(fx, "order@example.org", NULL, "expired",
	    0), 1);
	assert_int_equal(list_count(fx, "order@example.org", NULL, "valid", 0),
	    1);
	assert_int_equal(ca_cert_get(fx->tu.db, s_old, &ci, &err), 0);
	assert_string_equal(ci.status, "expired");
	ca_cert_info_clear(&ci);
	assert_int_equal(ca_cert_get(fx->tu.db, s_new, &ci, &err), 0);
	assert_string_equal(ci.status, "valid");
	ca_cert_info_clear(&ci);
	/* an expired certificate can still be revoked, and then counts as
	 * revoked, not expired */
	assert_int_equal(ca_revoke(fx->tu.db, s_old, 5, 0, ACTOR, &err), 0);
	assert_int_equal(list_count(fx, "order@example.org", NULL, "expired",
	    0), 0);
	assert_int_equal(list_count(fx, "order@example.org", NULL, "revoked",
	    0), 1);
	free(s_old);
	free(s_new);
	X509_free(old_cert);
	X509_free(new_cert);
}

/* ------------------------------------------------------------------ */
/* Operators and roles                                                 */

struct op_acc {
	int n;
	int64_t ids[32];
	char emails[32][64], roles[32][32], status[32][16], serials[32][80];
};

static int
op_cb(const ca_operator *op, void *arg)
{
	struct op_acc *a = arg;

	if (a->n < 32) {
		a->ids[a->n] = op->id;
		snprintf(a->emails[a->n], 64, "%s", op->email);
		snprintf(a->roles[a->n], 32, "%s", op->role);
		snprintf(a->status[a->n], 16, "%s", op->status);
		snprintf(a->serials[a->n], 80, "%s", op->serial);
	}
	a->n++;
	return 0;
}

static void
test_operators(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	X509 *admin, *aud, *agent;
	char *s_admin, *s_aud, *s_agent, *email = NULL, idbuf[32];
	long long certs;
	ca_cert_info ci;
	struct op_acc a;
	int i, n_xy = 0;

	admin = ca_operator_add(fx->tu.ca, fx->tu.db, CA_ROLE_ADMIN, "X Admin",
	    "x@y", fx->tu.key, ACTOR, &err);
	if (admin == NULL)
		fail_msg("ca_operator_add: %s", err.msg);
	s_admin = ca_cert_serial(admin);
	assert_int_equal(ca_operator_roles(fx->tu.db, s_admin, &email, &err),
	    CA_ROLE_ADMIN);
	assert_string_equal(email, "x@y");
	free(email);
	/* the credential is an operator certificate for client auth */
	assert_int_equal(X509_get_extended_key_usage(admin), XKU_SSL_CLIENT);
	assert_verifies(ca_get0_store(fx->tu.ca), admin, NULL,
	    X509_PURPOSE_SSL_CLIENT);

	/* role separation: no recovery role for an issuing operator; the
	 * refused credential is not stored */
	certs = count_certs(fx);
	assert_null(ca_operator_add(fx->tu.ca, fx->tu.db,
	    CA_ROLE_RECOVERY_AGENT, "X Agent", "x@y", fx->rsa3072, ACTOR,
	    &err));
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_non_null(strstr(err.msg, "admin"));
	lb_err_clear(&err);
	assert_null(ca_operator_add(fx->tu.ca, fx->tu.db,
	    CA_ROLE_RECOVERY_OFFICER, "X Officer", "x@y", fx->tu.key, ACTOR,
	    &err));
	assert_int_equal(err.code, LB_ECONFLICT);
	lb_err_clear(&err);
	assert_int_equal(count_certs(fx), certs);
	assert_int_not_equal(sqlite3_get_autocommit(fx->tu.db), 0);
	/* bad roles */
	assert_null(ca_operator_add(fx->tu.ca, fx->tu.db, CA_ROLE_NONE, "N",
	    "n@y", fx->tu.key, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_null(ca_operator_add(fx->tu.ca, fx->tu.db,
	    CA_ROLE_ADMIN | CA_ROLE_AUDITOR, "N", "n@y", fx->tu.key, ACTOR,
	    &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	/* an auditor role is neither issuing nor recovery */
	aud = ca_operator_add(fx->tu.ca, fx->tu.db, CA_ROLE_AUDITOR,
	    "X Auditor", "x@y", fx->tu.key, ACTOR, &err);
	assert_non_null(aud);
	s_aud = ca_cert_serial(aud);
	assert_int_equal(ca_operator_roles(fx->tu.db, s_aud, NULL, &err),
	    CA_ROLE_AUDITOR);

	/* removal withdraws the role and revokes the credential */
	assert_int_equal(ca_operator_remove(fx->tu.db, s_admin, ACTOR, &err),
	    0);
	assert_int_equal(ca_operator_roles(fx->tu.db, s_admin, &email, &err),
	    CA_ROLE_NONE);
	assert_null(email);
	assert_int_equal(ca_cert_get(fx->tu.db, s_admin, &ci, &err), 0);
	assert_string_equal(ci.status, "revoked");
	assert_int_equal(ci.reason, 9);
	ca_cert_info_clear(&ci);
	assert_int_equal(ca_operator_remove(fx->tu.db, s_admin, ACTOR, &err),
	    -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	lb_err_clear(&err);
	assert_int_equal(ca_operator_remove(fx->tu.db, "987654", ACTOR, &err),
	    -1);
	assert_int_equal(err.code, LB_ENOTFOUND);
	lb_err_clear(&err);
	assert_int_equal(ca_operator_remove(fx->tu.db, "no such operator",
	    ACTOR, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_int_not_equal(sqlite3_get_autocommit(fx->tu.db), 0);

	/* with the issuing role gone, a recovery role is allowed */
	agent = ca_operator_add(fx->tu.ca, fx->tu.db, CA_ROLE_RECOVERY_AGENT,
	    "X Agent", "x@y", fx->rsa3072, ACTOR, &err);
	if (agent == NULL)
		fail_msg("ca_operator_add: %s", err.msg);
	s_agent = ca_cert_serial(agent);
	assert_int_equal(ca_operator_roles(fx->tu.db, s_agent, NULL, &err),
	    CA_ROLE_RECOVERY_AGENT);
	assert_int_equal(ca_cert_get(fx->tu.db, s_agent, &ci, &err), 0);
	assert_string_equal(ci.profile, "recovery-agent");
	ca_cert_info_clear(&ci);
	/* ... and now the issuing role is refused */
	assert_null(ca_operator_add(fx->tu.ca, fx->tu.db, CA_ROLE_OFFICER, "X",
	    "x@y", fx->tu.key, ACTOR, &err));
	assert_int_equal(err.code, LB_ECONFLICT);
	lb_err_clear(&err);

	/* the list shows all three, by id; remove the auditor by id */
	memset(&a, 0, sizeof(a));
	assert_int_equal(ca_operator_list(fx->tu.db, op_cb, &a, &err), 0);
	for (i = 0; i < a.n && i < 32; i++) {
		if (strcmp(a.emails[i], "x@y") != 0)
			continue;
		n_xy++;
		if (strcmp(a.serials[i], s_admin) == 0) {
			assert_string_equal(a.status[i], "removed");
			assert_string_equal(a.roles[i], "admin");
		} else {
			assert_string_equal(a.status[i], "active");
		}
		if (strcmp(a.serials[i], s_aud) == 0)
			snprintf(idbuf, sizeof(idbuf), "%lld",
			    (long long)a.ids[i]);
	}
	assert_int_equal(n_xy, 3);
	assert_int_equal(ca_operator_remove(fx->tu.db, idbuf, ACTOR, &err), 0);
	assert_int_equal(ca_operator_roles(fx->tu.db, s_aud, NULL, &err),
	    CA_ROLE_NONE);
	/* an expired credential holds no role */
	{
		char sql[256];

		assert_int_equal(ca_operator_roles(fx->tu.db, s_agent, NULL,
		    &err), CA_ROLE_RECOVERY_AGENT);
		snprintf(sql, sizeof(sql), "UPDATE certificates SET not_after "
		    "= %lld WHERE serial = '%s'", (long long)time(NULL) - 1,
		    s_agent);
		assert_int_equal(sqlite3_exec(fx->tu.db, sql, NULL, NULL, NULL),
		    SQLITE_OK);
		assert_int_equal(ca_operator_roles(fx->tu.db, s_agent, NULL,
		    &err), CA_ROLE_NONE);
	}
	/* an unknown serial holds no role */
	assert_int_equal(ca_operator_roles(fx->tu.db, "0123", NULL, &err),
	    CA_ROLE_NONE);

	free(s_admin);
	free(s_aud);
	free(s_agent);
	X509_free(admin);
	X509_free(aud);
	X509_free(agent);
}

static void
test_operators_no_separation(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	ca_ctx *ca = open_with(fx, "[ca]\nrole_separation = no\n", 0, &err);
	X509 *a, *b;

	assert_non_null(ca);
	a = ca_operator_add(ca, fx->tu.db, CA_ROLE_ADMIN, "Z", "z@y",
	    fx->tu.key, ACTOR, &err);
	assert_non_null(a);
	b = ca_operator_add(ca, fx->tu.db, CA_ROLE_RECOVERY_OFFICER, "Z", "z@y",
	    fx->tu.key, ACTOR, &err);
	if (b == NULL)
		fail_msg("ca_operator_add: %s", err.msg);
	X509_free(a);
	X509_free(b);
	ca_free(ca);
}

/* ------------------------------------------------------------------ */
/* The group committer                                                 */

#define THREADS 4
#define PER_THREAD 50

struct worker {
	ca_ctx *ca;
	core_committer *c;
	EVP_PKEY *key;
	int id, failures;
	char first_error[512];
	char *serials[PER_THREAD];
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char email[64];
	ca_request req;
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		lb_err err = { 0 };
		X509 *x;

		snprintf(email, sizeof(email), "t%d.n%d@committer.test", w->id,
		    i);
		memset(&req, 0, sizeof(req));
		req.profile = "smime-sign";
		req.email = email;
		req.pubkey = w->key;
		if ((x = ca_issue_grouped(w->ca, w->c, &req, ACTOR, &err)) ==
		    NULL) {
			if (w->failures++ == 0)
				snprintf(w->first_error,
				    sizeof(w->first_error), "%s", err.msg);
			continue;
		}
		w->serials[i] = ca_cert_serial(x);
		X509_free(x);
	}
	return NULL;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_committer(void **state)
{
	struct fixture *fx = *state;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	char *all[THREADS * PER_THREAD];
	lb_err err = { 0 };
	core_committer *c;
	int64_t rows_before = 0, rows = 0, bad = 0;
	char why[128];
	ca_request req;
	int i, j, n = 0;

	assert_int_equal(core_audit_verify(fx->tu.db, &rows_before, &bad, why,
	    sizeof(why), &err), 0);
	c = core_committer_new(ca_db_open(fx->tu.ca, &err), &err);
	if (c == NULL)
		fail_msg("core_committer_new: %s", err.msg);
	/* the escrow profile is refused here too */
	memset(&req, 0, sizeof(req));
	req.profile = "smime-enc";
	req.email = "enc@committer.test";
	req.pubkey = fx->tu.key;
	assert_null(ca_issue_grouped(fx->tu.ca, c, &req, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	req.profile = "smime-sign";
	req.email = "bad address";
	assert_null(ca_issue_grouped(fx->tu.ca, c, &req, ACTOR, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);

	memset(w, 0, sizeof(w));
	for (i = 0; i < THREADS; i++) {
		w[i].c = c;
		w[i].ca = fx->tu.ca;
		w[i].id = i;
		w[i].key = ca_keygen(CA_KEY_ECP256, &err);
		assert_non_null(w[i].key);
	}
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker_main,
		    &w[i]), 0);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	core_committer_free(c);

	for (i = 0; i < THREADS; i++) {
		if (w[i].failures != 0)
			fail_msg("thread %d: %d failures, first: %s", i,
			    w[i].failures, w[i].first_error);
		for (j = 0; j < PER_THREAD; j++) {
			assert_non_null(w[i].serials[j]);
			/* 16 bytes, no leading zero byte, positive */
			assert_int_equal(strlen(w[i].serials[j]), 32);
			assert_true(w[i].serials[j][0] >= '1' &&
			    w[i].serials[j][0] <= '7');
			all[n++] = w[i].serials[j];
		}
	}
	assert_int_equal(n, THREADS * PER_THREAD);
	qsort(all, (size_t)n, sizeof(all[0]), cmp_str);
	for (i = 1; i < n; i++)
		assert_string_not_equal(all[i - 1], all[i]);
	/* all landed, once each, and the audit chain held under the load */
	assert_int_equal(tu_sql_int(fx->tu.db, "SELECT count(*) FROM "
	    "certificates WHERE email LIKE '%@committer.test'"),
	    THREADS * PER_THREAD);
	assert_int_equal(tu_sql_int(fx->tu.db, "SELECT count(DISTINCT serial) "
	    "FROM certificates WHERE email LIKE '%@committer.test'"),
	    THREADS * PER_THREAD);
	assert_int_equal(core_audit_verify(fx->tu.db, &rows, &bad, why,
	    sizeof(why), &err), 0);
	assert_int_equal(rows, rows_before + THREADS * PER_THREAD);
	for (i = 0; i < n; i++)
		free(all[i]);
	for (i = 0; i < THREADS; i++)
		EVP_PKEY_free(w[i].key);
}

/* ------------------------------------------------------------------ */
/* PKCS#12                                                             */

static int
p12_mac_nid(const char *path, long *iter)
{
	char *buf;
	size_t len = 0;
	const unsigned char *p;
	PKCS12 *p12;
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj = NULL;
	const ASN1_INTEGER *it = NULL;
	int nid = NID_undef;

	buf = tu_slurp(path, &len);
	assert_non_null(buf);
	p = (const unsigned char *)buf;
	p12 = d2i_PKCS12(NULL, &p, (long)len);
	assert_non_null(p12);
	PKCS12_get0_mac(NULL, &alg, NULL, &it, p12);
	if (alg != NULL) {
		X509_ALGOR_get0(&obj, NULL, NULL, alg);
		nid = OBJ_obj2nid(obj);
	}
	*iter = it != NULL ? ASN1_INTEGER_get(it) : 1;
	PKCS12_free(p12);
	free(buf);
	return nid;
}

static void
p12_roundtrip(struct fixture *fx, enum ca_p12_format fmt, const char *name,
    int mac_nid, X509 *cert, EVP_PKEY *key)
{
	char *path = tu_path(fx->tu.tmp, name), *side;
	char *passfile = strdup(tu_pass_file(fx->tu.tmp));
	char *wrong = tu_path(fx->tu.tmp, "wrong-p12.pass");
	lb_err err = { 0 };
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	STACK_OF(X509) *chain = NULL;
	long iter = 0;

	assert_non_null(passfile);
	assert_true(asprintf(&side, "%s.pass", path) > 0);
	assert_int_equal(tu_write(wrong, "wrong password\n", 15), 0);
	assert_int_equal(ca_p12_write(path, TU_PASS, key, cert,
	    ca_get0_chain(fx->tu.ca), "unit test", fmt, &err), 0);
	assert_int_equal(tu_mode(path), 0600);
	/* nothing beside it */
	assert_int_equal(access(side, F_OK), -1);
	assert_int_equal(p12_mac_nid(path, &iter), mac_nid);
	assert_int_equal(iter, 10000);

	/* read back with the passphrase file */
	assert_int_equal(ca_p12_read(path, passfile, &k, &x, &chain, &err), 0);
	assert_int_equal(EVP_PKEY_eq(k, key), 1);
	assert_int_equal(X509_cmp(x, cert), 0);
	assert_non_null(chain);
	assert_int_equal(sk_X509_num(chain), 1);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 0),
	    ca_get0_cert(fx->tu.ca)), 0);
	EVP_PKEY_free(k);
	X509_free(x);
	sk_X509_pop_free(chain, X509_free);

	/* a wrong password file fails, leaving the out-parameters NULL */
	k = (EVP_PKEY *)1;
	assert_int_equal(ca_p12_read(path, wrong, &k, &x, &chain, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "wrong password"));
	assert_null(k);
	assert_null(x);
	assert_null(chain);
	lb_err_clear(&err);

	/* the file named wins over a FILE.pass beside (planted, wrong) */
	assert_int_equal(tu_write(side, "wrong password\n", 15), 0);
	assert_int_equal(ca_p12_read(path, passfile, &k, &x, NULL, &err), 0);
	EVP_PKEY_free(k);
	X509_free(x);
	/* with none named, a FILE.pass an older version left is read */
	assert_int_equal(tu_write(side, TU_PASS "\n", sizeof(TU_PASS)), 0);
	assert_int_equal(ca_p12_read(path, NULL, &k, &x, NULL, &err), 0);
	assert_int_equal(X509_cmp(x, cert), 0);
	EVP_PKEY_free(k);
	X509_free(x);
	unlink(side);

	/* an existing file is never overwritten */
	assert_int_equal(ca_p12_write(path, "another passphrase", key, cert,
	    NULL, NULL, fmt, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	lb_err_clear(&err);
	assert_int_equal(ca_p12_read(path, passfile, &k, &x, NULL, &err), 0);
	EVP_PKEY_free(k);
	X509_free(x);

	unlink(wrong);
	unlink(path);
	free(wrong);
	free(side);
	free(passfile);
	free(path);
}

/* A new passphrase with neither a file nor a terminal: refused. */
static void
test_pass_needs_file_or_terminal(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	char *p;
	int saved = dup(STDIN_FILENO), fd = open("/dev/null", O_RDONLY);

	assert_true(saved >= 0 && fd >= 0);
	assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
	assert_null(ca_pass_new(NULL, "x.p12", &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "no passphrase"));
	lb_err_clear(&err);
	assert_null(ca_pass_get(NULL, "x.p12", &err));
	lb_err_clear(&err);
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
	close(fd);
	p = ca_pass_new(tu_pass_file(fx->tu.tmp), "x.p12", &err);
	assert_string_equal(p, TU_PASS);
	core_secret_free(p);
}

static void
test_p12(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	X509 *x = issue(fx, NULL, "smime-sign", "p12@example.org", fx->tu.key,
	    &err);
	char *path, *p;

	assert_non_null(x);
	p12_roundtrip(fx, CA_P12_MODERN, "modern.p12", NID_sha256, x,
	    fx->tu.key);
	p12_roundtrip(fx, CA_P12_LEGACY, "legacy.p12", NID_sha1, x, fx->tu.key);
	X509_free(x);

	/* not a PKCS#12 file; a missing file */
	path = tu_path(fx->tu.tmp, "junk.p12");
	assert_int_equal(tu_write(path, "junk", 4), 0);
	p = tu_path(fx->tu.dir, CA_KEY_PASS_FILE);
	{
		EVP_PKEY *k;
		X509 *c;

		assert_int_equal(ca_p12_read(path, p, &k, &c, NULL, &err), -1);
		assert_int_equal(err.code, LB_EINVAL);
		lb_err_clear(&err);
		unlink(path);
		assert_int_equal(ca_p12_read(path, p, &k, &c, NULL, &err), -1);
		assert_int_equal(err.code, LB_ENOTFOUND);
	}
	free(p);
	free(path);
}

static void
test_admin_credential(void **state)
{
	struct fixture *fx = *state;
	char *path = tu_path(fx->tu.dir, CA_ADMIN_P12), *serial, *email = NULL;
	lb_err err = { 0 };
	EVP_PKEY *k = NULL;
	X509 *x = NULL;

	assert_int_equal(ca_p12_read(path, tu_pass_file(fx->tu.tmp), &k, &x,
	    NULL, &err), 0);
	assert_int_equal(X509_check_private_key(x, k), 1);
	serial = ca_cert_serial(x);
	assert_int_equal(ca_operator_roles(fx->tu.db, serial, &email, &err),
	    CA_ROLE_ADMIN);
	assert_string_equal(email, "admin@ca.test");
	assert_verifies(ca_get0_store(fx->tu.ca), x, NULL,
	    X509_PURPOSE_SSL_CLIENT);
	free(email);
	free(serial);
	EVP_PKEY_free(k);
	X509_free(x);
	free(path);
}

/* ------------------------------------------------------------------ */
/* A subordinate CA, signed by the test root                           */

/* Signs the subordinate's ca.csr as a CA certificate with the root key. */
static X509 *
sign_subordinate(struct fixture *fx, X509_REQ *csr)
{
	X509 *x = X509_new(), *root = ca_get0_cert(fx->tu.ca);
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	static const struct {
		int nid;
		const char *value;
	} exts[] = {
		{ NID_basic_constraints, "critical,CA:TRUE,pathlen:0" },
		{ NID_key_usage, "critical,keyCertSign,cRLSign" },
		{ NID_subject_key_identifier, "hash" },
		{ NID_authority_key_identifier, "keyid:always" },
	};
	size_t i;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ca_random_serial(x), 0);
	assert_int_equal(X509_set_issuer_name(x, X509_get_subject_name(root)),
	    1);
	assert_int_equal(X509_set_subject_name(x, X509_REQ_get_subject_name(
	    csr)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -300));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 1000 * DAY));
	assert_int_equal(X509_set_pubkey(x, X509_REQ_get0_pubkey(csr)), 1);
	X509V3_set_ctx(&ctx, root, x, NULL, NULL, 0);
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		e = X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value);
		assert_non_null(e);
		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, fx->tu.ca->key, EVP_sha256()) > 0);
	return x;
}

static void
test_subordinate(void **state)
{
	struct fixture *fx = *state;
	char *dir = tu_path(fx->tu.tmp, "sub"), *p, *csrtext, *chainpath;
	ca_init_opts o;
	lb_err err = { 0 };
	X509_REQ *csr;
	X509 *subcert, *x, *leaf;
	size_t len = 0;
	ca_ctx *sub;
	sqlite3 *db;
	FILE *f;

	memset(&o, 0, sizeof(o));
	o.name = "lockbox Unit Test Sub CA";
	o.key_type = CA_KEY_ECP384;
	o.subordinate = true;
	o.base_url = "http://sub.test";
	assert_int_equal(ca_init(dir, &o, &err), 0);
	/* no certificate yet: open says what to do */
	assert_null(ca_open(dir, 0, &err));
	assert_non_null(strstr(err.msg, "install"));
	lb_err_clear(&err);

	p = tu_path(dir, CA_CSR_FILE);
	csrtext = tu_slurp(p, &len);
	free(p);
	assert_non_null(csrtext);
	csr = ca_csr_parse((unsigned char *)csrtext, len, &err);
	assert_non_null(csr);
	assert_int_equal(ca_key_type_of(X509_REQ_get0_pubkey(csr)),
	    CA_KEY_ECP384);
	free(csrtext);

	/* a certificate for another key is refused */
	chainpath = tu_path(fx->tu.tmp, "sub-chain.pem");
	f = fopen(chainpath, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, ca_get0_cert(fx->tu.ca)), 1);
	fclose(f);
	assert_int_equal(ca_install(dir, chainpath, tu_pass_file(fx->tu.tmp),
	    &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);

	/* the real one, followed by the root */
	subcert = sign_subordinate(fx, csr);
	f = fopen(chainpath, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, subcert), 1);
	assert_int_equal(PEM_write_X509(f, ca_get0_cert(fx->tu.ca)), 1);
	fclose(f);
	if (ca_install(dir, chainpath, tu_pass_file(fx->tu.tmp), &err) == -1)
		fail_msg("ca_install: %s", err.msg);
	assert_int_equal(ca_install(dir, chainpath, tu_pass_file(fx->tu.tmp),
	    &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	lb_err_clear(&err);

	sub = ca_open(dir, 0, &err);
	if (sub == NULL)
		fail_msg("ca_open: %s", err.msg);
	assert_int_equal(sk_X509_num(ca_get0_chain(sub)), 2);
	db = ca_db_open(sub, &err);
	assert_non_null(db);
	{
		ca_request req;

		memset(&req, 0, sizeof(req));
		req.profile = "smime-sign";
		req.email = "sub.user@example.org";
		req.pubkey = fx->tu.key;
		leaf = ca_issue(sub, db, &req, ACTOR, &err);
	}
	assert_non_null(leaf);
	/* a P-384 CA signs with SHA-384 */
	assert_int_equal(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA384);
	/* verifies against the root alone, with the sub CA as untrusted */
	{
		X509_STORE *root_only = X509_STORE_new();
		STACK_OF(X509) *untrusted = sk_X509_new_null();

		assert_int_equal(X509_STORE_add_cert(root_only,
		    ca_get0_cert(fx->tu.ca)), 1);
		assert_true(sk_X509_push(untrusted, ca_get0_cert(sub)) > 0);
		assert_verifies(root_only, leaf, untrusted,
		    X509_PURPOSE_SMIME_SIGN);
		sk_X509_free(untrusted);
		X509_STORE_free(root_only);
	}
	/* the admin credential was issued at install */
	p = tu_path(dir, CA_ADMIN_P12);
	{
		EVP_PKEY *k = NULL;

		x = NULL;
		assert_int_equal(ca_p12_read(p, tu_pass_file(fx->tu.tmp), &k,
		    &x, NULL, &err), 0);
		EVP_PKEY_free(k);
		X509_free(x);
	}
	free(p);
	X509_free(leaf);
	core_db_close(db);
	ca_free(sub);
	X509_free(subcert);
	X509_REQ_free(csr);
	free(chainpath);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_keygen_none),
		cmocka_unit_test(test_key_write_read),
		cmocka_unit_test(test_csr_parse_good),
		cmocka_unit_test(test_csr_parse_bad),
		cmocka_unit_test(test_csr_of_certificate_refused),
		cmocka_unit_test(test_cert_parse),
		cmocka_unit_test(test_serial_normalise),
		cmocka_unit_test(test_reasons),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_init_layout),
		cmocka_unit_test(test_init_refuses_existing),
		cmocka_unit_test(test_init_bad_options),
		cmocka_unit_test(test_init_special_name),
		cmocka_unit_test(test_open_faults),
		cmocka_unit_test(test_profiles),
		cmocka_unit_test(test_issue_smime_sign_ec),
		cmocka_unit_test(test_issue_smime_sign_rsa),
		cmocka_unit_test(test_issue_serials_distinct),
		cmocka_unit_test(test_issue_days),
		cmocka_unit_test(test_issue_individual),
		cmocka_unit_test(test_issue_non_repudiation_off),
		cmocka_unit_test(test_issue_smime_enc_refused),
		cmocka_unit_test(test_issue_recovery_agent_key_types),
		cmocka_unit_test(test_issue_bad_requests),
		cmocka_unit_test(test_issue_tls_server),
		cmocka_unit_test(test_revoke),
		cmocka_unit_test(test_cert_list),
		cmocka_unit_test(test_cert_list_order_and_expiry),
		cmocka_unit_test(test_operators),
		cmocka_unit_test(test_operators_no_separation),
		cmocka_unit_test(test_committer),
		cmocka_unit_test(test_p12),
		cmocka_unit_test(test_pass_needs_file_or_terminal),
		cmocka_unit_test(test_admin_credential),
		cmocka_unit_test(test_subordinate),
	};

	return cmocka_run_group_tests_name("ca", tests, group_setup,
	    tu_fixture_teardown);
}
