/*
 * test_signer.c - unit tests of the signer process (ca/signer.c): after
 * ca_signer_start the key is gone from this process, and certificates,
 * CRLs (with and without entries) and escrow receipts still come out
 * signed by the CA; a request a profile refuses gets an error and the
 * signer goes on; a malformed frame ends the signer and every later
 * signature fails (fail closed), as does a killed signer.  The decoder
 * (ca_signer_handle) is fed malformed, truncated, oversized and unknown
 * requests and CRL headers it must refuse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <openssl/asn1t.h>
#include <openssl/cms.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"
#include "tests/unit/testutil.h"

struct fixture {
	tu_fixture tu;    /* the CA, with a signer process, fresh per test */
	ca_ctx *local;    /* the key in this process, for ca_signer_handle */
};

/*
 * Under valgrind the signer cannot start (it lowers its RLIMIT_NOFILE hard
 * limit, which valgrind refuses, and fails closed): only the decoder tests
 * run there; all run under ASan.
 */
static bool
under_valgrind(void)
{
	return getenv("LOCKBOX_UNDER_VALGRIND") != NULL;
}

/* For the tests that need the signer processes. */
static void
need_signer(struct fixture *fx)
{
	if (fx->tu.ca->signer == NULL)
		skip();
}

/* The fixture's own part (tu_fixture release). */
static void
release(tu_fixture *tu)
{
	ca_free(((struct fixture *)tu)->local);
}

static int
setup(void **state)
{
	struct fixture *fx = tu_fixture_setup(state, sizeof(*fx), "signer",
	    NULL, NULL, TU_FX_KEY);
	lb_err err = { 0 };

	if (fx == NULL)
		return -1;
	fx->tu.release = release;
	if ((fx->local = ca_open(fx->tu.dir, 0, &err)) == NULL ||
	    (!under_valgrind() && ca_signer_start(fx->tu.ca, NULL, 2,
	    &err) == -1)) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static X509 *
sign_cert(struct fixture *fx, const char *profile, const char *email,
    lb_err *err)
{
	ca_request req;

	memset(&req, 0, sizeof(req));
	req.profile = profile;
	req.email = email;
	req.given_name = "Alice";
	req.surname = "Example";
	req.pubkey = fx->tu.key;
	return ca_sign_cert(fx->tu.ca, &req, err);
}

static void
assert_signed_by_ca(struct fixture *fx, X509 *x)
{
	EVP_PKEY *capub = X509_get0_pubkey(ca_get0_cert(fx->tu.ca));

	assert_non_null(x);
	assert_int_equal(X509_verify(x, capub), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x),
	    X509_get_subject_name(ca_get0_cert(fx->tu.ca))), 0);
	assert_int_equal(X509_check_ca(x), 0);
}

static void
test_key_moved(void **state)
{
	struct fixture *fx = *state;
	pid_t pids[4];
	lb_err err = { 0 };
	int i;

	need_signer(fx);

	assert_int_equal(ca_signer_pids(fx->tu.ca, pids, 4), 2);
	for (i = 0; i < 2; i++) {
		assert_true(pids[i] > 0);
		assert_int_not_equal(pids[i], getpid());
		/* the children are there, and are not us */
		assert_int_equal(kill(pids[i], 0), 0);
	}
	assert_int_not_equal(pids[0], pids[1]);
	assert_null(fx->tu.ca->key);
	assert_true(ca_signer_alive(fx->tu.ca));
	/* a second start, or a start without the key, is refused */
	assert_int_equal(ca_signer_start(fx->tu.ca, NULL, 1, &err), -1);
	memset(&err, 0, sizeof(err));
	assert_int_equal(ca_signer_start(fx->local, NULL, 0, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
}

static void
test_cert(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	X509 *x;
	EVP_PKEY *pub;
	ASN1_OCTET_STRING *ku;

	need_signer(fx);

	x = sign_cert(fx, "smime-sign", "alice@example.com", &err);
	assert_signed_by_ca(fx, x);
	/* the request's key and e-mail, the profile's keyUsage */
	pub = X509_get0_pubkey(x);
	assert_int_equal(EVP_PKEY_eq(pub, fx->tu.key), 1);
	assert_int_equal(X509_check_email(x, "alice@example.com", 0, 0), 1);
	ku = X509_get_ext_d2i(x, NID_key_usage, NULL, NULL);
	assert_non_null(ku);
	ASN1_OCTET_STRING_free(ku);
	X509_free(x);
}

static void
test_refused_goes_on(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	X509 *x;

	need_signer(fx);

	x = sign_cert(fx, "root-ca", "alice@example.com", &err);
	assert_null(x);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "unknown profile 'root-ca'"));
	memset(&err, 0, sizeof(err));
	x = sign_cert(fx, "smime-sign", "not an address", &err);
	assert_null(x);
	assert_int_equal(err.code, LB_EINVAL);
	/* still there */
	memset(&err, 0, sizeof(err));
	assert_true(ca_signer_alive(fx->tu.ca));
	x = sign_cert(fx, "smime-sign", "bob@example.com", &err);
	assert_signed_by_ca(fx, x);
	X509_free(x);
}

static X509_CRL *
make_head(long number, long next_secs)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	ASN1_TIME *t = ASN1_TIME_new();
	time_t now = time(NULL);

	assert_non_null(crl);
	assert_non_null(num);
	assert_non_null(t);
	assert_int_equal(ASN1_INTEGER_set(num, number), 1);
	assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
	assert_non_null(ASN1_TIME_set(t, now));
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, t), 1);
	assert_non_null(ASN1_TIME_set(t, now + next_secs));
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, t), 1);
	assert_int_equal(X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0,
	    0), 1);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(num);
	return crl;
}

/* revokedCertificates: serial 5, revoked 2026-01-01 */
static const unsigned char one_entry[] = {
	0x30, 0x14, 0x30, 0x12, 0x02, 0x01, 0x05, 0x17, 0x0d,
	'2', '6', '0', '1', '0', '1', '0', '0', '0', '0', '0', '0', 'Z',
};

static void
test_crl(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	X509_CRL *head, *crl;
	const unsigned char *p;
	unsigned char *der = NULL;
	size_t len = 0;
	int with;

	need_signer(fx);

	for (with = 0; with < 2; with++) {
		head = make_head(7 + with, 3600);
		assert_int_equal(ca_sign_crl_der(fx->tu.ca, head, with ?
		    one_entry : NULL, with ? sizeof(one_entry) : 0, &der, &len,
		    &err), 0);
		p = der;
		crl = d2i_X509_CRL(NULL, &p, (long)len);
		assert_non_null(crl);
		assert_ptr_equal(p, der + len);
		assert_int_equal(X509_CRL_verify(crl,
		    X509_get0_pubkey(ca_get0_cert(fx->tu.ca))), 1);
		assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl),
		    X509_get_subject_name(ca_get0_cert(fx->tu.ca))), 0);
		assert_int_equal(with ? sk_X509_REVOKED_num(
		    X509_CRL_get_REVOKED(crl)) : 0, with);
		assert_true(with || X509_CRL_get_REVOKED(crl) == NULL ||
		    sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) == 0);
		X509_CRL_free(crl);
		X509_CRL_free(head);
		free(der);
		der = NULL;
	}
	/* the signer's own checks: nextUpdate before thisUpdate */
	head = make_head(9, -3600);
	assert_int_equal(ca_sign_crl_der(fx->tu.ca, head, NULL, 0, &der, &len,
	    &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "nextUpdate"));
	X509_CRL_free(head);
	/* entries that are not one SEQUENCE */
	memset(&err, 0, sizeof(err));
	head = make_head(10, 3600);
	assert_int_equal(ca_sign_crl_der(fx->tu.ca, head, one_entry + 2,
	    sizeof(one_entry) - 3, &der, &len, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	/* the in-place signature needs the key here */
	memset(&err, 0, sizeof(err));
	assert_int_equal(ca_sign_crl(fx->tu.ca, head, &err), -1);
	assert_non_null(strstr(err.msg, "signer process"));
	X509_CRL_free(head);
	assert_true(ca_signer_alive(fx->tu.ca));
}

static void
test_receipt(void **state)
{
	struct fixture *fx = *state;
	static const char text[] = "escrowed: serial 0A, 2 of 3 agents";
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t len = 0;
	CMS_ContentInfo *cms;
	X509_STORE *store = ca_get0_store(fx->tu.ca);
	BIO *out;
	char *data;
	long n;
	lb_err err = { 0 };

	need_signer(fx);
	out = BIO_new(BIO_s_mem());
	assert_non_null(out);

	assert_int_equal(ca_sign_receipt(fx->tu.ca, (const unsigned char *)text,
	    strlen(text), &der, &len, &err), 0);
	p = der;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
	assert_non_null(cms);
	assert_int_equal(CMS_verify(cms, NULL, store, NULL, out,
	    CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY), 1);
	n = BIO_get_mem_data(out, &data);
	assert_int_equal(n, (long)strlen(text));
	assert_memory_equal(data, text, strlen(text));
	CMS_ContentInfo_free(cms);
	BIO_free(out);
	OPENSSL_free(der);
	/* too long: refused before it is sent */
	memset(&err, 0, sizeof(err));
	assert_int_equal(ca_sign_receipt(fx->tu.ca, (const unsigned char *)
	    "x", 4097, &der, &len, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
}

static void
test_malformed_frame_stops(void **state)
{
	struct fixture *fx = *state;
	static const unsigned char bad[8] = { 'L', 'B', 9, 0, 0, 0, 0, 4 };
	unsigned char c;
	lb_err err = { 0 };
	struct ca_signer_proc *p;
	pid_t pid;
	int st;

	need_signer(fx);
	p = &fx->tu.ca->signer->proc[1];
	pid = p->pid;

	/* an unknown type: the child stops without answering */
	assert_int_equal(write(p->fd, bad, sizeof(bad)), (ssize_t)sizeof(bad));
	assert_int_equal(read(p->fd, &c, 1), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 1);
	/* fail closed: the other signer is not used either */
	assert_null(sign_cert(fx, "smime-sign", "alice@example.com", &err));
	assert_int_equal(err.code, LB_EINTERNAL);
	assert_non_null(strstr(err.msg, "signer process has stopped"));
	assert_false(ca_signer_alive(fx->tu.ca));
}

static void
test_killed_fails_closed(void **state)
{
	struct fixture *fx = *state;
	lb_err err = { 0 };
	unsigned char *der = NULL;
	size_t len = 0;

	need_signer(fx);

	pid_t pids[2];
	int i, failed = 0;

	assert_int_equal(ca_signer_pids(fx->tu.ca, pids, 2), 2);
	assert_int_equal(kill(pids[0], SIGKILL), 0);
	/* whichever signer would take them, every request fails (the
	 * hang-up is seen once the kernel has reaped the child's socket) */
	for (i = 0; i < 50 && ca_signer_alive(fx->tu.ca); i++)
		usleep(10000);
	for (i = 0; i < 4; i++) {
		memset(&err, 0, sizeof(err));
		if (ca_sign_receipt(fx->tu.ca, (const unsigned char *)"r", 1,
		    &der, &len, &err) == -1)
			failed++;
	}
	assert_int_equal(failed, 4);
	assert_int_equal(err.code, LB_EINTERNAL);
	assert_false(ca_signer_alive(fx->tu.ca));
	assert_null(der);
}

/* ---- the decoder, without a process ------------------------------ */

static int
handle(struct fixture *fx, int type, const unsigned char *in, size_t len,
    lb_err *err)
{
	unsigned char *out = NULL;
	size_t olen = 0;
	int r;

	memset(err, 0, sizeof(*err));
	r = ca_signer_handle(fx->local, type, in, len, &out, &olen, err);
	if (r == 0) {
		assert_non_null(out);
		assert_true(olen > 0);
	} else {
		assert_null(out);
		assert_int_not_equal(err->code, LB_OK);
	}
	free(out);
	return r;
}

/* A CERT request's DER, as the parent encodes it, from a real call. */
static unsigned char *
cert_request(struct fixture *fx, const char *profile, const char *email,
    const char *cn, size_t *len)
{
	X509_PUBKEY *pk = NULL;
	unsigned char *spki = NULL, *der;
	int slen;
	size_t plen = strlen(profile), elen = strlen(email), n = 0, body;
	size_t clen = cn != NULL ? strlen(cn) : 0;

	assert_int_equal(X509_PUBKEY_set(&pk, fx->tu.key), 1);
	slen = i2d_X509_PUBKEY(pk, &spki);
	assert_true(slen > 0 && slen < 200 && plen < 100 && elen < 100);
	/* SEQUENCE { UTF8String profile, [0] email, [3] cn, spki,
	 * INTEGER 0 } */
	body = 2 + plen + 2 + elen + (cn != NULL ? 2 + clen : 0) +
	    (size_t)slen + 3;
	assert_true(body < 128);
	der = malloc(2 + body);
	assert_non_null(der);
	der[n++] = 0x30;
	der[n++] = (unsigned char)body;
	der[n++] = 0x0c;
	der[n++] = (unsigned char)plen;
	memcpy(der + n, profile, plen);
	n += plen;
	der[n++] = 0x80;
	der[n++] = (unsigned char)elen;
	memcpy(der + n, email, elen);
	n += elen;
	if (cn != NULL) {
		der[n++] = 0x83;
		der[n++] = (unsigned char)clen;
		memcpy(der + n, cn, clen);
		n += clen;
	}
	memcpy(der + n, spki, (size_t)slen);
	n += (size_t)slen;
	der[n++] = 0x02;
	der[n++] = 0x01;
	der[n++] = 0x00;
	*len = n;
	OPENSSL_free(spki);
	X509_PUBKEY_free(pk);
	return der;
}

static void
test_handle_cert(void **state)
{
	struct fixture *fx = *state;
	unsigned char *der, *big;
	size_t len;
	lb_err err;

	/* P-256 is small enough for the one-byte lengths of cert_request */
	der = cert_request(fx, "smime-sign", "c@example.com", NULL,
	    &len);
	assert_int_equal(handle(fx, CA_SIGNER_CERT, der, len, &err), 0);
	free(der);
	/* the operator profile needs a name: refused, not malformed */
	der = cert_request(fx, "operator", "c@example.com", NULL, &len);
	assert_int_equal(handle(fx, CA_SIGNER_CERT, der, len, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	free(der);
	der = cert_request(fx, "nosuch", "c@example.com", NULL,
	    &len);
	assert_int_equal(handle(fx, CA_SIGNER_CERT, der, len, &err), -1);
	assert_non_null(strstr(err.msg, "unknown profile"));
	free(der);
	der = cert_request(fx, "operator", "c@example.com", "Carol",
	    &len);
	assert_int_equal(handle(fx, CA_SIGNER_CERT, der, len, &err), 0);
	assert_int_equal(handle(fx, CA_SIGNER_RECEIPT, der, len, &err), 0);
	/* truncated, one byte more, no bytes, every byte flipped */
	assert_int_equal(handle(fx, CA_SIGNER_CERT, der, len - 1, &err),
	    CA_SIGNER_MALFORMED);
	big = malloc(len + 1);
	assert_non_null(big);
	memcpy(big, der, len);
	big[len] = 0;
	assert_int_equal(handle(fx, CA_SIGNER_CERT, big, len + 1, &err),
	    CA_SIGNER_MALFORMED);
	assert_int_equal(handle(fx, CA_SIGNER_CERT, big, 0, &err),
	    CA_SIGNER_MALFORMED);
	/* an e-mail with a NUL in it */
	memcpy(big, der, len);
	big[4 + strlen("operator") + 2] = '\0';
	assert_int_equal(handle(fx, CA_SIGNER_CERT, big, len, &err),
	    CA_SIGNER_MALFORMED);
	/* unknown type */
	assert_int_equal(handle(fx, 0, der, len, &err), CA_SIGNER_MALFORMED);
	assert_int_equal(handle(fx, 4, der, len, &err), CA_SIGNER_MALFORMED);
	/* a CRL request that is a certificate request */
	assert_int_equal(handle(fx, CA_SIGNER_CRL, der, len, &err),
	    CA_SIGNER_MALFORMED);
	free(big);
	free(der);
	/* oversized: beyond the type's cap before any decoding */
	big = calloc(1, 16 * 1024 + 1);
	assert_non_null(big);
	assert_int_equal(handle(fx, CA_SIGNER_CERT, big, 16 * 1024 + 1, &err),
	    CA_SIGNER_MALFORMED);
	assert_int_equal(handle(fx, CA_SIGNER_RECEIPT, big, 4097, &err),
	    CA_SIGNER_MALFORMED);
	free(big);
}

/* The DER of SignerCrl { head, revoked } for a header signed by any key. */
static unsigned char *
crl_request(X509_CRL *head, const unsigned char *rev, size_t rlen,
    size_t *len)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	unsigned char *h = NULL, *der;
	int hlen;
	size_t body, n = 0;

	assert_non_null(k);
	assert_true(X509_CRL_sign(head, k, EVP_sha256()) > 0);
	hlen = i2d_X509_CRL(head, &h);
	assert_true(hlen > 0 && hlen < 60000 && rlen < 120);
	body = (size_t)hlen + 2 + rlen;
	der = malloc(4 + body);
	assert_non_null(der);
	der[n++] = 0x30;
	der[n++] = 0x82;
	der[n++] = (unsigned char)(body >> 8);
	der[n++] = (unsigned char)body;
	memcpy(der + n, h, (size_t)hlen);
	n += (size_t)hlen;
	der[n++] = 0x04;
	der[n++] = (unsigned char)rlen;
	if (rlen > 0)
		memcpy(der + n, rev, rlen);
	n += rlen;
	*len = n;
	OPENSSL_free(h);
	EVP_PKEY_free(k);
	return der;
}

static void
test_handle_crl(void **state)
{
	struct fixture *fx = *state;
	X509_CRL *head;
	X509_REVOKED *r;
	BASIC_CONSTRAINTS *bc;
	ASN1_INTEGER *serial;
	ASN1_TIME *t;
	unsigned char *der;
	size_t len;
	lb_err err;

	head = make_head(1, 3600);
	der = crl_request(head, one_entry, sizeof(one_entry), &len);
	assert_int_equal(handle(fx, CA_SIGNER_CRL, der, len, &err), 0);
	assert_int_equal(handle(fx, CA_SIGNER_CRL, der, len - 1, &err),
	    CA_SIGNER_MALFORMED);
	free(der);
	/* an extension crl/ never sets */
	bc = BASIC_CONSTRAINTS_new();
	assert_non_null(bc);
	assert_int_equal(X509_CRL_add1_ext_i2d(head, NID_basic_constraints,
	    bc, 0, 0), 1);
	BASIC_CONSTRAINTS_free(bc);
	der = crl_request(head, NULL, 0, &len);
	assert_int_equal(handle(fx, CA_SIGNER_CRL, der, len, &err),
	    CA_SIGNER_MALFORMED);
	assert_non_null(strstr(err.msg, "extension"));
	free(der);
	X509_CRL_free(head);
	/* entries inside the header */
	head = make_head(2, 3600);
	r = X509_REVOKED_new();
	serial = ASN1_INTEGER_new();
	t = ASN1_TIME_set(NULL, time(NULL));
	assert_non_null(r);
	assert_int_equal(ASN1_INTEGER_set(serial, 42), 1);
	assert_int_equal(X509_REVOKED_set_serialNumber(r, serial), 1);
	assert_int_equal(X509_REVOKED_set_revocationDate(r, t), 1);
	assert_int_equal(X509_CRL_add0_revoked(head, r), 1);
	der = crl_request(head, NULL, 0, &len);
	assert_int_equal(handle(fx, CA_SIGNER_CRL, der, len, &err),
	    CA_SIGNER_MALFORMED);
	assert_non_null(strstr(err.msg, "entries"));
	free(der);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(t);
	X509_CRL_free(head);
	/* a version 1 header: the CRL profile refuses it (not malformed) */
	head = make_head(3, 3600);
	assert_int_equal(X509_CRL_set_version(head, 0), 1);
	der = crl_request(head, NULL, 0, &len);
	assert_int_equal(handle(fx, CA_SIGNER_CRL, der, len, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	free(der);
	X509_CRL_free(head);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_key_moved, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_cert, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_refused_goes_on, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_crl, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_receipt, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_frame_stops,
		    setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_killed_fails_closed,
		    setup, tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_handle_cert, setup,
		    tu_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_handle_crl, setup,
		    tu_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
