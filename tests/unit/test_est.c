/*
 * test_est.c - unit tests of enroll/est.c, the EST (RFC 7030, RFC 8951)
 * bodies: base64 and PEM CSRs (whitespace, CRLF, bad base64, truncated
 * DER, bad signature, oversized, empty), certs-only SignedData (round
 * trip in order, read by `openssl pkcs7`, made by `openssl crl2pkcs7`),
 * csrattrs (read by `openssl asn1parse`), the AsymmetricDecryptKeyIdentifier
 * attribute, server-generated keys as PKCS#8 and EnvelopedData (round
 * trips, `openssl pkey` and `openssl cms -decrypt`), and multipart/mixed
 * (round trip, LF-only, quoted boundary, preamble and epilogue, and the
 * malformed and oversized cases).
 *
 * One cmocka group: the setup makes an RSA-2048 key-transport key and
 * certificate, an EC P-256 key and three small certificates once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "enroll/enroll.h"
#include "tests/unit/testutil.h"

#define OID_DECRYPT_KEY_ID "1.2.840.113549.1.9.16.2.54"

struct fixture {
	char *tmp;
	EVP_PKEY *rsa;          /* key-transport key */
	X509 *rsa_cert;
	EVP_PKEY *ec;
	X509 *certs[3];         /* CN=cert0 .. cert2 */
};

static X509 *
self_signed(EVP_PKEY *key, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	if (x == NULL || n == NULL ||
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 7) != 1 ||
	    X509_set_subject_name(x, n) != 1 ||
	    X509_set_issuer_name(x, n) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_set_pubkey(x, key) != 1 ||
	    X509_sign(x, key, EVP_sha256()) <= 0) {
		X509_free(x);
		x = NULL;
	}
	X509_NAME_free(n);
	return x;
}

static int
group_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	lb_err err = { 0 };
	char cn[16];
	int i;

	if (fx == NULL || (fx->tmp = tu_mkdtemp("est")) == NULL)
		return -1;
	*state = fx;
	if ((fx->rsa = ca_keygen(CA_KEY_RSA2048, &err)) == NULL ||
	    (fx->ec = ca_keygen(CA_KEY_ECP256, &err)) == NULL ||
	    (fx->rsa_cert = self_signed(fx->rsa, "Key Transport")) == NULL)
		return -1;
	for (i = 0; i < 3; i++) {
		snprintf(cn, sizeof(cn), "cert%d", i);
		if ((fx->certs[i] = self_signed(fx->ec, cn)) == NULL)
			return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	struct fixture *fx = *state;
	int i;

	if (fx == NULL)
		return 0;
	for (i = 0; i < 3; i++)
		X509_free(fx->certs[i]);
	X509_free(fx->rsa_cert);
	EVP_PKEY_free(fx->rsa);
	EVP_PKEY_free(fx->ec);
	tu_rmtree(fx->tmp);
	free(fx->tmp);
	free(fx);
	return 0;
}

/*
 * Writes input to a scratch file and runs `sh -c "(cmd) <file"`, returning
 * its standard output (malloc'ed, NUL added, length in *outlen when not
 * NULL) and exit status.
 */
static char *
run_cmd(struct fixture *fx, const char *cmd, const void *in, size_t len,
    int *status, size_t *outlen)
{
	char *path = tu_path(fx->tmp, "input");
	char *full = NULL, *buf = NULL;
	size_t cap = 0, n = 0, r;
	FILE *p;

	assert_int_equal(tu_write(path, in, len), 0);
	assert_true(asprintf(&full, "(%s) <'%s' 2>/dev/null", cmd, path) > 0);
	assert_non_null(p = popen(full, "r"));
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			assert_non_null(buf = realloc(buf, cap));
		}
		if ((r = fread(buf + n, 1, 4096, p)) == 0)
			break;
		n += r;
	}
	buf[n] = '\0';
	if (outlen != NULL)
		*outlen = n;
	*status = pclose(p);
	free(full);
	free(path);
	return buf;
}

static char *
run_with_input(struct fixture *fx, const char *cmd, const void *in,
    size_t len, int *status)
{
	return run_cmd(fx, cmd, in, len, status, NULL);
}

/* A CSR for key, with the decrypt key id attribute when id != NULL. */
static X509_REQ *
make_csr(EVP_PKEY *key, int attr_type, const unsigned char *id, int idlen)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_REQ_get_subject_name(req);
	ASN1_OBJECT *obj = NULL;

	assert_non_null(req);
	assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"alice@example.org", -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	if (attr_type != 0) {
		assert_non_null(obj = OBJ_txt2obj(OID_DECRYPT_KEY_ID, 1));
		assert_int_equal(X509_REQ_add1_attr_by_OBJ(req, obj, attr_type,
		    id, idlen), 1);
		ASN1_OBJECT_free(obj);
	}
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	return req;
}

/* The base64 of a CSR's DER (single line, malloc'ed). */
static char *
csr_b64(X509_REQ *req, unsigned char **derp, int *dlenp)
{
	unsigned char *der = NULL;
	int dlen = i2d_X509_REQ(req, &der);
	char *b = malloc((size_t)dlen * 2 + 8);

	assert_true(dlen > 0);
	assert_non_null(b);
	assert_true(EVP_EncodeBlock((unsigned char *)b, der, dlen) > 0);
	if (derp != NULL) {
		*derp = der;
		*dlenp = dlen;
	} else {
		OPENSSL_free(der);
	}
	return b;
}

/* Whether two requests have the same DER. */
static bool
same_csr(X509_REQ *a, X509_REQ *b)
{
	unsigned char *da = NULL, *db = NULL;
	int la = i2d_X509_REQ(a, &da), lb = i2d_X509_REQ(b, &db);
	bool same = la > 0 && la == lb && memcmp(da, db, (size_t)la) == 0;

	OPENSSL_free(da);
	OPENSSL_free(db);
	return same;
}

static void
test_csr_decode_forms(void **state)
{
	struct fixture *fx = *state;
	X509_REQ *req = make_csr(fx->ec, 0, NULL, 0), *got;
	char *b = csr_b64(req, NULL, NULL), *spaced, *pem;
	size_t blen = strlen(b), i, o = 0;
	lb_err err = { 0 };
	BIO *mem;
	long plen;

	/* one line */
	assert_non_null(got = enroll_est_csr_decode((unsigned char *)b, blen,
	    &err));
	assert_int_equal(err.code, LB_OK);
	assert_true(same_csr(got, req));
	X509_REQ_free(got);

	/* CRLF every 64 characters, spaces and tabs, leading blank lines */
	assert_non_null(spaced = malloc(blen * 2 + 16));
	memcpy(spaced, "\r\n \t", 4);
	o = 4;
	for (i = 0; i < blen; i++) {
		spaced[o++] = b[i];
		if (i % 64 == 63) {
			spaced[o++] = '\r';
			spaced[o++] = '\n';
		}
		if (i % 17 == 5)
			spaced[o++] = i % 2 ? ' ' : '\t';
	}
	memcpy(spaced + o, "\r\n\n", 3);
	o += 3;
	assert_non_null(got = enroll_est_csr_decode((unsigned char *)spaced,
	    o, &err));
	assert_true(same_csr(got, req));
	X509_REQ_free(got);

	/* PEM */
	assert_non_null(mem = BIO_new(BIO_s_mem()));
	assert_int_equal(PEM_write_bio_X509_REQ(mem, req), 1);
	plen = BIO_get_mem_data(mem, &pem);
	assert_true(plen > 0);
	assert_non_null(got = enroll_est_csr_decode((unsigned char *)pem,
	    (size_t)plen, &err));
	assert_true(same_csr(got, req));
	X509_REQ_free(got);
	BIO_free(mem);

	free(spaced);
	free(b);
	X509_REQ_free(req);
}

static void
expect_csr_fail(const void *body, size_t len, enum lb_errcode code)
{
	lb_err err = { 0 };

	assert_null(enroll_est_csr_decode(body, len, &err));
	assert_int_equal(err.code, code);
	assert_true(err.msg[0] != '\0');
	ERR_clear_error();
}

static void
test_csr_decode_bad(void **state)
{
	struct fixture *fx = *state;
	X509_REQ *req = make_csr(fx->ec, 0, NULL, 0);
	unsigned char *der = NULL, *big;
	int dlen = 0;
	char *b = csr_b64(req, &der, &dlen), *t;
	char bad[] = "MIIB!!==";
	size_t blen = strlen(b);

	expect_csr_fail("", 0, LB_EINVAL);
	expect_csr_fail(" \r\n\t", 4, LB_EINVAL);
	expect_csr_fail(bad, strlen(bad), LB_EINVAL);
	/* base64 but not a multiple of 4 characters */
	expect_csr_fail(b, blen - 1, LB_EINVAL);
	/* padding in the middle */
	assert_non_null(t = strdup(b));
	t[8] = '=';
	expect_csr_fail(t, blen, LB_EINVAL);
	free(t);
	/* valid base64 of something that is not a CSR */
	expect_csr_fail("aGVsbG8gd29ybGQh", 16, LB_EINVAL);
	/* truncated DER */
	assert_non_null(t = malloc((size_t)dlen * 2));
	assert_true(EVP_EncodeBlock((unsigned char *)t, der,
	    dlen / 2) > 0);
	expect_csr_fail(t, strlen(t), LB_EINVAL);
	/* bad signature: flip the last byte (inside the signature) */
	der[dlen - 1] ^= 1;
	assert_true(EVP_EncodeBlock((unsigned char *)t, der, dlen) > 0);
	{
		lb_err err = { 0 };

		assert_null(enroll_est_csr_decode((unsigned char *)t,
		    strlen(t), &err));
		assert_int_equal(err.code, LB_EINVAL);
		assert_non_null(strstr(err.msg, "signature"));
	}
	free(t);
	/* oversized: valid-looking base64 just above the cap */
	assert_non_null(big = malloc(ENROLL_BODY_MAX + 4));
	memset(big, 'A', ENROLL_BODY_MAX + 4);
	expect_csr_fail(big, ENROLL_BODY_MAX + 4, LB_ETOOBIG);
	expect_csr_fail(big, ENROLL_BODY_MAX, LB_EINVAL);
	free(big);
	OPENSSL_free(der);
	free(b);
	X509_REQ_free(req);
}

/* certs_only -> certs_parse keeps every certificate, in order. */
static void
test_certs_only_roundtrip(void **state)
{
	struct fixture *fx = *state;
	X509 *in[3] = { fx->certs[2], fx->certs[0], fx->certs[1] };
	STACK_OF(X509) *sk;
	lb_err err = { 0 };
	char *out = NULL, *line, *txt;
	size_t outlen = 0;
	int i, status;

	assert_int_equal(enroll_est_certs_only(in, 3, &out, &outlen, &err), 0);
	assert_int_equal(strlen(out), outlen);
	/* lines of at most 64 characters, each ending in CRLF */
	for (line = out; *line != '\0';) {
		char *crlf = strstr(line, "\r\n");

		assert_non_null(crlf);
		assert_true(crlf - line <= 64 && crlf > line);
		assert_null(memchr(line, '\n', (size_t)(crlf - line)));
		line = crlf + 2;
	}
	assert_non_null(sk = enroll_est_certs_parse((unsigned char *)out,
	    outlen, &err));
	assert_int_equal(sk_X509_num(sk), 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(X509_cmp(sk_X509_value(sk, i), in[i]), 0);
	sk_X509_pop_free(sk, X509_free);

	/* what an EST client does with it */
	txt = run_with_input(fx, "openssl base64 -d | openssl pkcs7 -inform "
	    "DER -print_certs -noout", out, outlen, &status);
	assert_int_equal(status, 0);
	assert_non_null(strstr(txt, "cert2"));
	assert_true(strstr(txt, "cert2") < strstr(txt, "cert0"));
	assert_true(strstr(txt, "cert0") < strstr(txt, "cert1"));
	free(txt);
	free(out);

	assert_int_equal(enroll_est_certs_only(in, 0, &out, &outlen, &err), -1);
	assert_null(out);
}

static void
test_certs_parse_openssl_and_bad(void **state)
{
	struct fixture *fx = *state;
	char *pem = tu_path(fx->tmp, "c.pem"), *cmd = NULL, *der, *big;
	size_t dlen = 0;
	STACK_OF(X509) *sk;
	lb_err err = { 0 };
	FILE *f;
	int status;

	assert_non_null(f = fopen(pem, "w"));
	assert_int_equal(PEM_write_X509(f, fx->certs[0]), 1);
	assert_int_equal(PEM_write_X509(f, fx->certs[1]), 1);
	fclose(f);
	/* a degenerate SignedData made by openssl, as DER */
	assert_true(asprintf(&cmd, "openssl crl2pkcs7 -nocrl -certfile '%s' "
	    "-outform DER", pem) > 0);
	der = run_cmd(fx, cmd, "", 0, &status, &dlen);
	assert_int_equal(status, 0);
	free(cmd);
	assert_true(dlen > 100);
	assert_non_null(sk = enroll_est_certs_parse((unsigned char *)der,
	    dlen, &err));
	assert_int_equal(sk_X509_num(sk), 2);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 0), fx->certs[0]), 0);
	sk_X509_pop_free(sk, X509_free);

	/* truncated DER */
	assert_null(enroll_est_certs_parse((unsigned char *)der, dlen - 5,
	    &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	/* trailing garbage */
	der[dlen] = 0x05;
	assert_null(enroll_est_certs_parse((unsigned char *)der, dlen + 1,
	    &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	free(der);

	/* a SignedData without certificates */
	assert_true(asprintf(&cmd, "openssl crl2pkcs7 -nocrl -outform PEM | "
	    "grep -v -- -----") > 0);
	der = run_with_input(fx, cmd, "", 0, &status);
	free(cmd);
	assert_int_equal(status, 0);
	assert_null(enroll_est_certs_parse((unsigned char *)der, strlen(der),
	    &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "no certificate"));
	lb_err_clear(&err);
	free(der);

	/* empty, garbage, oversized */
	assert_null(enroll_est_certs_parse((unsigned char *)"", 0, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_null(enroll_est_certs_parse((unsigned char *)"not cms!", 8,
	    &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_non_null(big = calloc(1, 1024 * 1024 + 1));
	memset(big, 'A', 1024 * 1024 + 1);
	assert_null(enroll_est_certs_parse((unsigned char *)big,
	    1024 * 1024 + 1, &err));
	assert_int_equal(err.code, LB_ETOOBIG);
	free(big);
	free(pem);
}

/* `openssl asn1parse` of the csrattrs for the key types types[0..n-1]. */
static char *
csrattrs_parsed(struct fixture *fx, const char *const *types, size_t n)
{
	char *out = NULL, *txt;
	size_t outlen = 0;
	lb_err err = { 0 };
	int status;

	assert_int_equal(enroll_est_csrattrs(types, n, &out, &outlen, &err), 0);
	txt = run_with_input(fx, "openssl base64 -d | openssl asn1parse "
	    "-inform DER", out, outlen, &status);
	assert_int_equal(status, 0);
	free(out);
	return txt;
}

static void
test_csrattrs(void **state)
{
	struct fixture *fx = *state;
	const char *all[] = { "rsa-3072", "ec-p256", "ec-p384", "rsa-4096" };
	const char *ec[] = { "ec-p256" };
	const char *bad[] = { "ec-p256", "dsa-1024" };
	char *out = NULL, *txt;
	size_t outlen = 0;
	lb_err err = { 0 };

	txt = csrattrs_parsed(fx, all, 4);
	assert_non_null(strstr(txt, "rsaEncryption"));
	assert_non_null(strstr(txt, "id-ecPublicKey"));
	assert_non_null(strstr(txt, "prime256v1"));
	assert_non_null(strstr(txt, "secp384r1"));
	assert_non_null(strstr(txt, "ecdsa-with-SHA256"));
	assert_non_null(strstr(txt, "sha256WithRSAEncryption"));
	assert_non_null(strstr(txt, "Extension Request"));
	assert_non_null(strstr(txt, "X509v3 Subject Alternative Name"));
	/* rsaEncryption once, though two RSA sizes */
	assert_null(strstr(strstr(txt, "rsaEncryption") + 1,
	    ":rsaEncryption"));
	free(txt);

	txt = csrattrs_parsed(fx, ec, 1);
	/* d=0 is the CsrAttrs SEQUENCE */
	assert_non_null(strstr(txt, "d=0"));
	assert_non_null(strstr(txt, "SEQUENCE"));
	assert_null(strstr(txt, "rsaEncryption"));
	assert_null(strstr(txt, "secp384r1"));
	assert_non_null(strstr(txt, "prime256v1"));
	free(txt);

	assert_int_equal(enroll_est_csrattrs(bad, 2, &out, &outlen, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "dsa-1024"));
	assert_null(out);
}

static void
test_decrypt_key_id(void **state)
{
	struct fixture *fx = *state;
	const unsigned char ski[20] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
	    13, 14, 15, 16, 17, 18, 19, 20 };
	unsigned char *id = NULL;
	size_t len = 0;
	lb_err err = { 0 };
	X509_REQ *req;
	X509_ATTRIBUTE *a;
	ASN1_OBJECT *obj;

	/* present */
	req = make_csr(fx->ec, V_ASN1_OCTET_STRING, ski, sizeof(ski));
	assert_int_equal(enroll_est_decrypt_key_id(req, &id, &len, &err), 1);
	assert_int_equal(len, sizeof(ski));
	assert_memory_equal(id, ski, sizeof(ski));
	OPENSSL_free(id);
	X509_REQ_free(req);

	/* two values in the attribute: malformed (OpenSSL refuses to add
	 * the same attribute twice, so a duplicate attribute cannot be
	 * built here) */
	req = make_csr(fx->ec, 0, NULL, 0);
	assert_non_null(obj = OBJ_txt2obj(OID_DECRYPT_KEY_ID, 1));
	assert_non_null(a = X509_ATTRIBUTE_create_by_OBJ(NULL, obj,
	    V_ASN1_OCTET_STRING, ski, 4));
	assert_int_equal(X509_ATTRIBUTE_set1_data(a, V_ASN1_OCTET_STRING,
	    ski, 5), 1);
	assert_int_equal(X509_REQ_add1_attr(req, a), 1);
	assert_true(X509_REQ_sign(req, fx->ec, EVP_sha256()) > 0);
	X509_ATTRIBUTE_free(a);
	ASN1_OBJECT_free(obj);
	assert_int_equal(enroll_est_decrypt_key_id(req, &id, &len, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_null(id);
	lb_err_clear(&err);
	X509_REQ_free(req);

	/* absent */
	req = make_csr(fx->ec, 0, NULL, 0);
	assert_int_equal(enroll_est_decrypt_key_id(req, &id, &len, &err), 0);
	assert_null(id);
	assert_int_equal(err.code, LB_OK);
	X509_REQ_free(req);

	/* an IA5String instead of an OCTET STRING */
	req = make_csr(fx->ec, V_ASN1_IA5STRING, (const unsigned char *)"x",
	    1);
	assert_int_equal(enroll_est_decrypt_key_id(req, &id, &len, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	X509_REQ_free(req);
	/* an empty OCTET STRING */
	req = make_csr(fx->ec, V_ASN1_OCTET_STRING, ski, 0);
	assert_int_equal(enroll_est_decrypt_key_id(req, &id, &len, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	X509_REQ_free(req);
}

/* A serverkeygen CSR with the attribute survives base64 decoding. */
static void
test_decrypt_key_id_through_decode(void **state)
{
	struct fixture *fx = *state;
	const unsigned char ski[3] = { 0xaa, 0xbb, 0xcc };
	X509_REQ *req = make_csr(fx->ec, V_ASN1_OCTET_STRING, ski, 3), *got;
	char *b = csr_b64(req, NULL, NULL);
	unsigned char *id = NULL;
	size_t len = 0;
	lb_err err = { 0 };

	assert_non_null(got = enroll_est_csr_decode((unsigned char *)b,
	    strlen(b), &err));
	assert_int_equal(enroll_est_decrypt_key_id(got, &id, &len, &err), 1);
	assert_int_equal(len, 3);
	assert_memory_equal(id, ski, 3);
	OPENSSL_free(id);
	X509_REQ_free(got);
	X509_REQ_free(req);
	free(b);
}

/* EVP_PKEY_eq compares public keys: compare the private part too. */
static bool
same_private(EVP_PKEY *a, EVP_PKEY *b)
{
	const char *name = EVP_PKEY_is_a(a, "RSA") ? "d" : "priv";
	BIGNUM *x = NULL, *y = NULL;
	bool same;

	same = EVP_PKEY_get_bn_param(a, name, &x) == 1 &&
	    EVP_PKEY_get_bn_param(b, name, &y) == 1 && BN_cmp(x, y) == 0;
	BN_clear_free(x);
	BN_clear_free(y);
	return same;
}

static void
test_key_pkcs8_roundtrip(void **state)
{
	struct fixture *fx = *state;
	EVP_PKEY *keys[2] = { fx->ec, fx->rsa }, *got;
	char *out = NULL, *txt;
	size_t outlen = 0;
	lb_err err = { 0 };
	int i, status;

	for (i = 0; i < 2; i++) {
		assert_int_equal(enroll_est_key_pkcs8(keys[i], &out, &outlen,
		    &err), 0);
		assert_non_null(strstr(out, "\r\n"));
		assert_non_null(got = enroll_est_key_parse(out, outlen, NULL,
		    NULL, &err));
		assert_int_equal(EVP_PKEY_eq(got, keys[i]), 1);
		assert_true(same_private(got, keys[i]));
		EVP_PKEY_free(got);
		/* openssl reads the PKCS#8 DER */
		txt = run_with_input(fx, "openssl base64 -d | openssl pkey "
		    "-inform DER -noout -text", out, outlen, &status);
		assert_int_equal(status, 0);
		assert_non_null(strstr(txt, "Private-Key"));
		free(txt);
		OPENSSL_clear_free(out, outlen);
	}
}

static void
test_key_enveloped_roundtrip(void **state)
{
	struct fixture *fx = *state;
	char *out = NULL, *txt, *cmd = NULL;
	char *kp = tu_path(fx->tmp, "kt.key"), *cp = tu_path(fx->tmp, "kt.pem");
	size_t outlen = 0;
	lb_err err = { 0 };
	EVP_PKEY *got, *other;
	X509 *other_cert;
	FILE *f;
	int status;

	assert_int_equal(enroll_est_key_enveloped(fx->ec, fx->rsa_cert, &out,
	    &outlen, &err), 0);
	assert_non_null(got = enroll_est_key_parse(out, outlen, fx->rsa,
	    fx->rsa_cert, &err));
	assert_int_equal(EVP_PKEY_eq(got, fx->ec), 1);
	assert_true(same_private(got, fx->ec));
	EVP_PKEY_free(got);

	/* without the key-transport key, it is not a PKCS#8 key */
	assert_null(enroll_est_key_parse(out, outlen, NULL, NULL, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);

	/* another RSA key cannot open it */
	assert_non_null(other = ca_keygen(CA_KEY_RSA2048, &err));
	assert_non_null(other_cert = self_signed(other, "Other"));
	assert_null(enroll_est_key_parse(out, outlen, other, other_cert,
	    &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);

	/* OAEP, and openssl cms -decrypt opens it */
	txt = run_with_input(fx, "openssl base64 -d | openssl cms -cmsout "
	    "-print -inform DER", out, outlen, &status);
	assert_int_equal(status, 0);
	assert_non_null(strstr(txt, "rsaesOaep"));
	assert_non_null(strstr(txt, "sha256"));
	assert_non_null(strstr(txt, "aes-256-cbc"));
	free(txt);
	assert_non_null(f = fopen(kp, "w"));
	assert_int_equal(PEM_write_PrivateKey(f, fx->rsa, NULL, NULL, 0, NULL,
	    NULL), 1);
	fclose(f);
	assert_non_null(f = fopen(cp, "w"));
	assert_int_equal(PEM_write_X509(f, fx->rsa_cert), 1);
	fclose(f);
	assert_true(asprintf(&cmd, "openssl base64 -d | openssl cms -decrypt "
	    "-inform DER -binary -inkey '%s' -recip '%s' | openssl pkey "
	    "-inform DER -noout -text", kp, cp) > 0);
	txt = run_with_input(fx, cmd, out, outlen, &status);
	assert_int_equal(status, 0);
	assert_non_null(strstr(txt, "Private-Key"));
	assert_non_null(strstr(txt, "prime256v1"));
	free(txt);
	free(cmd);
	OPENSSL_clear_free(out, outlen);

	/* an EC key-transport certificate is refused */
	assert_int_equal(enroll_est_key_enveloped(fx->ec, fx->certs[0], &out,
	    &outlen, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_null(out);

	EVP_PKEY_free(other);
	X509_free(other_cert);
	unlink(kp);
	free(kp);
	free(cp);
}

static void
test_key_parse_bad(void **state)
{
	struct fixture *fx = *state;
	char *out = NULL, *big;
	size_t outlen = 0;
	lb_err err = { 0 };

	assert_null(enroll_est_key_parse("", 0, NULL, NULL, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_null(enroll_est_key_parse("%%%%", 4, NULL, NULL, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	/* truncated: the first 64 characters of a real key */
	assert_int_equal(enroll_est_key_pkcs8(fx->ec, &out, &outlen, &err), 0);
	assert_null(enroll_est_key_parse(out, 64, NULL, NULL, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	/* truncated EnvelopedData */
	assert_null(enroll_est_key_parse(out, 64, fx->rsa, fx->rsa_cert,
	    &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	OPENSSL_clear_free(out, outlen);
	assert_non_null(big = malloc(ENROLL_BODY_MAX + 4));
	memset(big, 'A', ENROLL_BODY_MAX + 4);
	assert_null(enroll_est_key_parse(big, ENROLL_BODY_MAX + 4, NULL, NULL,
	    &err));
	assert_int_equal(err.code, LB_ETOOBIG);
	free(big);
}

/* multipart -> parse, with a real key and certs-only part. */
static void
test_multipart_roundtrip(void **state)
{
	struct fixture *fx = *state;
	enroll_part in[2], got[4];
	char *key = NULL, *certs = NULL, *body = NULL, *ctype = NULL, *p;
	size_t keylen = 0, certslen = 0, len = 0, n = 0;
	lb_err err = { 0 };
	EVP_PKEY *k;
	STACK_OF(X509) *sk;
	X509 *one[1] = { fx->certs[0] };

	assert_int_equal(enroll_est_key_pkcs8(fx->ec, &key, &keylen, &err), 0);
	assert_int_equal(enroll_est_certs_only(one, 1, &certs, &certslen,
	    &err), 0);
	in[0] = (enroll_part){ "application/pkcs8", key, keylen };
	in[1] = (enroll_part){ "application/pkcs7-mime; smime-type=certs-only",
	    certs, certslen };
	assert_int_equal(enroll_est_multipart(in, 2, &body, &len, &ctype,
	    &err), 0);
	assert_int_equal(strncmp(ctype, "multipart/mixed; boundary=", 26), 0);
	assert_true(strlen(ctype) > 26 + 16);
	assert_int_equal(strlen(body), len);
	/* every line break is CRLF, and the close delimiter is there */
	for (p = body; (p = strchr(p, '\n')) != NULL; p++)
		assert_true(p > body && p[-1] == '\r');
	assert_non_null(strstr(body, "Content-Transfer-Encoding: base64\r\n"));
	assert_non_null(strstr(body, ctype + 26));
	{
		char close[128];

		snprintf(close, sizeof(close), "--%s--\r\n", ctype + 26);
		assert_int_equal(strcmp(body + len - strlen(close), close), 0);
	}

	assert_int_equal(enroll_est_multipart_parse(ctype, body, len, got, 4,
	    &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(got[0].content_type, "application/pkcs8");
	assert_string_equal(got[1].content_type,
	    "application/pkcs7-mime; smime-type=certs-only");
	assert_int_equal(got[0].len, keylen);
	assert_memory_equal(got[0].body, key, keylen);
	assert_int_equal(got[1].len, certslen);
	assert_non_null(k = enroll_est_key_parse(got[0].body, got[0].len,
	    NULL, NULL, &err));
	assert_int_equal(EVP_PKEY_eq(k, fx->ec), 1);
	EVP_PKEY_free(k);
	assert_non_null(sk = enroll_est_certs_parse(
	    (const unsigned char *)got[1].body, got[1].len, &err));
	assert_int_equal(X509_cmp(sk_X509_value(sk, 0), fx->certs[0]), 0);
	sk_X509_pop_free(sk, X509_free);
	enroll_parts_clear(got, n);
	assert_null(got[0].content_type);

	/* two bodies get different boundaries */
	{
		char *body2 = NULL, *ctype2 = NULL;
		size_t len2 = 0;

		assert_int_equal(enroll_est_multipart(in, 1, &body2, &len2,
		    &ctype2, &err), 0);
		assert_string_not_equal(ctype, ctype2);
		OPENSSL_clear_free(body2, len2);
		free(ctype2);
	}
	/* a content type with a line break is refused */
	in[0].content_type = "text/plain\r\nX-Evil: 1";
	{
		char *b3 = NULL, *c3 = NULL;
		size_t l3 = 0;

		assert_int_equal(enroll_est_multipart(in, 1, &b3, &l3, &c3,
		    &err), -1);
		assert_null(b3);
		assert_null(c3);
	}

	OPENSSL_clear_free(body, strlen(body));
	free(ctype);
	OPENSSL_clear_free(key, keylen);
	free(certs);
}

static int
parse(const char *ctype, const char *body, enroll_part *parts, size_t max,
    size_t *n, lb_err *err)
{
	lb_err_clear(err);
	return enroll_est_multipart_parse(ctype, body, strlen(body), parts,
	    max, n, err);
}

static void
test_multipart_parse_tolerant(void **state)
{
	enroll_part got[4];
	size_t n = 0;
	lb_err err = { 0 };
	/* LF only, quoted boundary, preamble, epilogue, no Content-Type in
	 * the second part, transport padding after a delimiter */
	const char *body =
	    "This is the preamble.\n"
	    "--simple boundary\n"
	    "content-type:  application/pkcs8 \n"
	    "Content-Transfer-Encoding: base64\n"
	    "\n"
	    "QUJD\n"
	    "REVG\n"
	    "--simple boundary  \n"
	    "\n"
	    "WFla\n"
	    "--simple boundary--\n"
	    "epilogue, ignored\n";

	(void)state;
	assert_int_equal(parse("Multipart/Mixed; charset=x; "
	    "boundary=\"simple boundary\"", body, got, 4, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(got[0].content_type, "application/pkcs8");
	assert_int_equal(got[0].len, 9);
	assert_memory_equal(got[0].body, "QUJD\nREVG", 9);
	assert_string_equal(got[1].content_type, "text/plain");
	assert_int_equal(got[1].len, 4);
	assert_memory_equal(got[1].body, "WFla", 4);
	enroll_parts_clear(got, n);

	/* an empty part body and a close delimiter without a line break */
	assert_int_equal(parse("multipart/mixed;boundary=b1",
	    "--b1\r\nContent-Type: a/b\r\n\r\n--b1--", got, 4, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].len, 0);
	enroll_parts_clear(got, n);

	/* a line that only starts like the boundary is body text */
	assert_int_equal(parse("multipart/mixed; boundary=b1",
	    "--b1\r\n\r\n--b1x\r\n--b1--\r\n", got, 4, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].len, 5);
	assert_memory_equal(got[0].body, "--b1x", 5);
	enroll_parts_clear(got, n);
}

static void
test_multipart_parse_bad(void **state)
{
	enroll_part got[2];
	size_t n = 7;
	lb_err err = { 0 };
	const char *ok = "--b\r\n\r\nQUJD\r\n--b--\r\n";
	char *big, hdrs[4096];
	size_t o, i;

	(void)state;
	/* missing or malformed boundary parameter, other types */
	assert_int_equal(parse("multipart/mixed", ok, got, 2, &n, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(parse("multipart/mixed; boundary=", ok, got, 2, &n,
	    &err), -1);
	assert_int_equal(parse("multipart/mixed; boundary=\"b", ok, got, 2,
	    &n, &err), -1);
	assert_int_equal(parse("text/plain; boundary=b", ok, got, 2, &n,
	    &err), -1);
	assert_int_equal(parse("multipart/mixed; boundary=b c", ok, got, 2,
	    &n, &err), -1);
	assert_int_equal(parse("multipart/mixed; boundary=aaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    ok, got, 2, &n, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	/* the control case parses */
	assert_int_equal(parse("multipart/mixed; boundary=b", ok, got, 2, &n,
	    &err), 0);
	assert_int_equal(n, 1);
	enroll_parts_clear(got, n);
	/* the boundary never appears */
	assert_int_equal(parse("multipart/mixed; boundary=zz", ok, got, 2, &n,
	    &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	/* no closing delimiter */
	assert_int_equal(parse("multipart/mixed; boundary=b",
	    "--b\r\n\r\nQUJD\r\n--b\r\n\r\nQUJD\r\n", got, 2, &n, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "closing"));
	assert_int_equal(n, 0);
	/* headers never end */
	assert_int_equal(parse("multipart/mixed; boundary=b",
	    "--b\r\nContent-Type: a/b\r\n", got, 2, &n, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	o = 0;
	o += (size_t)snprintf(hdrs, sizeof(hdrs), "--b\r\n");
	for (i = 0; i < 40; i++)
		o += (size_t)snprintf(hdrs + o, sizeof(hdrs) - o, "X-A: b\r\n");
	snprintf(hdrs + o, sizeof(hdrs) - o, "\r\nQUJD\r\n--b--\r\n");
	assert_int_equal(parse("multipart/mixed; boundary=b", hdrs, got, 2,
	    &n, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	/* only the close delimiter */
	assert_int_equal(parse("multipart/mixed; boundary=b", "--b--\r\n", got,
	    2, &n, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	/* too many parts */
	assert_int_equal(parse("multipart/mixed; boundary=b",
	    "--b\r\n\r\nA\r\n--b\r\n\r\nB\r\n--b\r\n\r\nC\r\n--b--\r\n", got,
	    2, &n, &err), -1);
	assert_int_equal(err.code, LB_ETOOBIG);
	assert_int_equal(n, 0);
	/* empty and oversized bodies */
	assert_int_equal(parse("multipart/mixed; boundary=b", "", got, 2, &n,
	    &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(big = malloc(1024 * 1024 + 2));
	memset(big, 'A', 1024 * 1024 + 1);
	big[1024 * 1024 + 1] = '\0';
	assert_int_equal(parse("multipart/mixed; boundary=b", big, got, 2, &n,
	    &err), -1);
	assert_int_equal(err.code, LB_ETOOBIG);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csr_decode_forms),
		cmocka_unit_test(test_csr_decode_bad),
		cmocka_unit_test(test_certs_only_roundtrip),
		cmocka_unit_test(test_certs_parse_openssl_and_bad),
		cmocka_unit_test(test_csrattrs),
		cmocka_unit_test(test_decrypt_key_id),
		cmocka_unit_test(test_decrypt_key_id_through_decode),
		cmocka_unit_test(test_key_pkcs8_roundtrip),
		cmocka_unit_test(test_key_enveloped_roundtrip),
		cmocka_unit_test(test_key_parse_bad),
		cmocka_unit_test(test_multipart_roundtrip),
		cmocka_unit_test(test_multipart_parse_tolerant),
		cmocka_unit_test(test_multipart_parse_bad),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
