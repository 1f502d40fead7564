/*
 * test_ocsp.c - unit tests of the OCSP responder (crl/ocsp.c) against a
 * scratch CA (EC P-256): the delegated responder credential (issued,
 * stored, files 0600, reloaded rather than reissued, renewed when half its
 * lifetime is gone), and answers checked with OpenSSL's own client
 * functions: good, revoked with its reason, unknown, SHA-1 and SHA-256
 * CertIDs, the nonce echoed, unauthorized for another issuer,
 * malformedRequest for junk; RFC 5019 reuse of nonce-less answers
 * (crl_ocsp_respond_db): byte-identical repeats, never for a nonce, never
 * stale after a revocation or a renewal, keyed by the exact request bytes
 * (a byte more or less is decoded and refused; large requests not kept).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crl/crl.h"
#include "tests/unit/testutil.h"

#define ACTOR "unit-test"
#define DAY 86400L

struct fixture {
	tu_fixture tu;          /* the CA */
	crl_ocsp *ocsp;
	X509 *good, *revoked;
	X509_STORE *store;
};

static X509 *
issue(struct fixture *fx, const char *email)
{
	ca_request req;
	EVP_PKEY *key;
	X509 *x;
	lb_err err = { 0 };

	if ((key = ca_keygen(CA_KEY_ECP256, &err)) == NULL)
		return NULL;
	memset(&req, 0, sizeof(req));
	req.profile = "smime-sign";
	req.email = email;
	req.pubkey = key;
	x = ca_issue(fx->tu.ca, fx->tu.db, &req, ACTOR, &err);
	if (x == NULL)
		fprintf(stderr, "ca_issue: %s\n", err.msg);
	EVP_PKEY_free(key);
	return x;
}

/* The fixture's own parts (tu_fixture release). */
static void
release(tu_fixture *tu)
{
	struct fixture *fx = (struct fixture *)tu;

	X509_STORE_free(fx->store);
	X509_free(fx->good);
	X509_free(fx->revoked);
	crl_ocsp_free(fx->ocsp);
}

static int
group_setup(void **state)
{
	ca_init_opts o = {
		.name = "lockbox OCSP Test CA",
		.key_type = CA_KEY_ECP256,
		.admin_email = "admin@ca.test",
	};
	struct fixture *fx = tu_fixture_setup_opts(state, sizeof(*fx), "ocsp",
	    &o, NULL, 0);
	lb_err err = { 0 };
	char *serial;

	if (fx == NULL)
		return -1;
	fx->tu.release = release;
	if ((fx->ocsp = crl_ocsp_new(fx->tu.ca, fx->tu.db, time(NULL),
	    &err)) == NULL) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	if ((fx->good = issue(fx, "good@example.org")) == NULL ||
	    (fx->revoked = issue(fx, "revoked@example.org")) == NULL ||
	    (serial = ca_cert_serial(fx->revoked)) == NULL)
		return -1;
	if (ca_revoke(fx->tu.db, serial, 1, 0, ACTOR, &err) == -1) {
		fprintf(stderr, "revoke: %s\n", err.msg);
		free(serial);
		return -1;
	}
	free(serial);
	if ((fx->store = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(fx->store, ca_get0_cert(fx->tu.ca)) != 1)
		return -1;
	return 0;
}

/* A DER request for the CertIDs ids (consumed), with a nonce or not. */
static unsigned char *
make_req(OCSP_CERTID **ids, int n, bool nonce, OCSP_REQUEST **keep,
    size_t *len)
{
	OCSP_REQUEST *rq = OCSP_REQUEST_new();
	unsigned char *der = NULL;
	int i, l;

	assert_non_null(rq);
	for (i = 0; i < n; i++)
		assert_non_null(OCSP_request_add0_id(rq, ids[i]));
	if (nonce)
		assert_int_equal(OCSP_request_add1_nonce(rq, NULL, -1), 1);
	l = i2d_OCSP_REQUEST(rq, &der);
	assert_true(l > 0);
	*len = (size_t)l;
	if (keep != NULL)
		*keep = rq;
	else
		OCSP_REQUEST_free(rq);
	return der;
}

/* Answers req; returns the response with its status in *status. */
static OCSP_RESPONSE *
respond(struct fixture *fx, const unsigned char *req, size_t len,
    crl_ocsp_result *res)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t dlen = 0;
	OCSP_RESPONSE *resp;

	assert_int_equal(crl_ocsp_respond(fx->ocsp, req, len, time(NULL),
	    crl_ocsp_lookup_db, fx->tu.db, &der, &dlen, res), 0);
	p = der;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)dlen);
	assert_non_null(resp);
	assert_int_equal(OCSP_response_status(resp), res->status);
	OPENSSL_free(der);
	return resp;
}

/* A request for the status of one certificate. */
struct query {
	OCSP_CERTID *find;      /* its CertID, to find in the answer */
	OCSP_REQUEST *rq;
	unsigned char *req;     /* rq as DER */
	size_t len;
	bool nonce;
};

static void
query_new(struct fixture *fx, struct query *q, X509 *cert,
    const EVP_MD *md, bool nonce)
{
	OCSP_CERTID *id = OCSP_cert_to_id(md, cert, ca_get0_cert(fx->tu.ca));

	memset(q, 0, sizeof(*q));
	q->find = OCSP_CERTID_dup(id);
	q->nonce = nonce;
	q->req = make_req(&id, 1, nonce, &q->rq, &q->len);
}

/*
 * The basic response of resp, the answer to q (OCSP_BASICRESP_free): it
 * verifies and echoes q's nonce when q had one.
 */
static OCSP_BASICRESP *
query_basic(struct fixture *fx, const struct query *q, OCSP_RESPONSE *resp)
{
	OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);

	assert_non_null(bs);
	/* the delegated responder verifies against the CA alone */
	assert_int_equal(OCSP_basic_verify(bs, NULL, fx->store, 0), 1);
	assert_int_equal(OCSP_check_nonce(q->rq, bs), q->nonce ? 1 : 2);
	return bs;
}

static void
query_free(struct query *q)
{
	OCSP_REQUEST_free(q->rq);
	OCSP_CERTID_free(q->find);
	OPENSSL_free(q->req);
}

/* The single status of cert in a verified response. */
static int
status_of(struct fixture *fx, X509 *cert, const EVP_MD *md, bool nonce,
    int *reason)
{
	struct query q;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
	crl_ocsp_result res;
	int st = -1;

	query_new(fx, &q, cert, md, nonce);
	resp = respond(fx, q.req, q.len, &res);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(res.nonce, nonce);
	assert_true(res.next_update > res.this_update);
	bs = query_basic(fx, &q, resp);
	assert_int_equal(OCSP_resp_find_status(bs, q.find, &st, reason, &rev,
	    &thisupd, &nextupd), 1);
	assert_int_equal(OCSP_check_validity(thisupd, nextupd, 300, -1), 1);
	if (st == V_OCSP_CERTSTATUS_REVOKED)
		assert_non_null(rev);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	query_free(&q);
	return st;
}

static void
test_good_sha1(void **state)
{
	int reason = -2;

	assert_int_equal(status_of(*state, ((struct fixture *)*state)->good,
	    EVP_sha1(), false, &reason), V_OCSP_CERTSTATUS_GOOD);
}

static void
test_good_sha256_nonce(void **state)
{
	int reason = -2;

	assert_int_equal(status_of(*state, ((struct fixture *)*state)->good,
	    EVP_sha256(), true, &reason), V_OCSP_CERTSTATUS_GOOD);
}

static void
test_revoked_reason(void **state)
{
	struct fixture *fx = *state;
	int reason = -2;

	assert_int_equal(status_of(fx, fx->revoked, EVP_sha1(), true,
	    &reason), V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	reason = -2;
	assert_int_equal(status_of(fx, fx->revoked, EVP_sha256(), false,
	    &reason), V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
}

static void
test_unknown(void **state)
{
	struct fixture *fx = *state;
	X509 *ca = ca_get0_cert(fx->tu.ca);
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	OCSP_CERTID *id, *find;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	crl_ocsp_result res;
	unsigned char *req;
	size_t len = 0;
	int st = -1, reason;

	assert_int_equal(ASN1_INTEGER_set_int64(serial, 0x1234567890LL), 1);
	id = OCSP_cert_id_new(EVP_sha256(), X509_get_subject_name(ca),
	    X509_get0_pubkey_bitstr(ca), serial);
	find = OCSP_CERTID_dup(id);
	req = make_req(&id, 1, false, NULL, &len);
	resp = respond(fx, req, len, &res);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
	bs = OCSP_response_get1_basic(resp);
	assert_int_equal(OCSP_basic_verify(bs, NULL, fx->store, 0), 1);
	assert_int_equal(OCSP_resp_find_status(bs, find, &st, &reason, NULL,
	    NULL, NULL), 1);
	assert_int_equal(st, V_OCSP_CERTSTATUS_UNKNOWN);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_CERTID_free(find);
	ASN1_INTEGER_free(serial);
	OPENSSL_free(req);
}

static void
test_two_requests(void **state)
{
	struct fixture *fx = *state;
	X509 *ca = ca_get0_cert(fx->tu.ca);
	OCSP_CERTID *ids[2];
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	crl_ocsp_result res;
	unsigned char *req;
	size_t len = 0;

	ids[0] = OCSP_cert_to_id(EVP_sha1(), fx->good, ca);
	ids[1] = OCSP_cert_to_id(EVP_sha256(), fx->revoked, ca);
	req = make_req(ids, 2, true, NULL, &len);
	resp = respond(fx, req, len, &res);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
	bs = OCSP_response_get1_basic(resp);
	assert_int_equal(OCSP_resp_count(bs), 2);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OPENSSL_free(req);
}

static void
test_other_issuer(void **state)
{
	struct fixture *fx = *state;
	X509 *ca = ca_get0_cert(fx->tu.ca);
	ASN1_INTEGER *serial = X509_get_serialNumber(fx->good);
	X509_NAME *other = X509_NAME_new();
	OCSP_CERTID *ids[2];
	OCSP_RESPONSE *resp;
	crl_ocsp_result res;
	unsigned char *req;
	size_t len = 0;

	assert_int_equal(X509_NAME_add_entry_by_txt(other, "CN", MBSTRING_ASC,
	    (const unsigned char *)"Other CA", -1, -1, 0), 1);
	/* right key, wrong name */
	ids[0] = OCSP_cert_id_new(EVP_sha1(), other,
	    X509_get0_pubkey_bitstr(ca), serial);
	req = make_req(ids, 1, false, NULL, &len);
	resp = respond(fx, req, len, &res);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	OCSP_RESPONSE_free(resp);
	OPENSSL_free(req);
	/* one of ours and one foreign: unauthorized as a whole */
	ids[0] = OCSP_cert_to_id(EVP_sha1(), fx->good, ca);
	ids[1] = OCSP_cert_id_new(EVP_sha256(), other,
	    X509_get0_pubkey_bitstr(ca), serial);
	req = make_req(ids, 2, false, NULL, &len);
	resp = respond(fx, req, len, &res);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	OCSP_RESPONSE_free(resp);
	OPENSSL_free(req);
	X509_NAME_free(other);
}

static void
test_malformed(void **state)
{
	struct fixture *fx = *state;
	static const unsigned char junk[] = "not an OCSP request";
	OCSP_RESPONSE *resp;
	crl_ocsp_result res;
	unsigned char *req, *big;
	size_t len = 0;

	resp = respond(fx, junk, sizeof(junk) - 1, &res);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(resp);
	resp = respond(fx, NULL, 0, &res);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(resp);
	/* no CertID at all */
	req = make_req(NULL, 0, false, NULL, &len);
	resp = respond(fx, req, len, &res);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(resp);
	/* trailing garbage after a valid request */
	big = calloc(1, CRL_OCSP_REQ_MAX + 1);
	assert_non_null(big);
	memcpy(big, req, len);
	resp = respond(fx, big, len + 1, &res);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(resp);
	/* over the size cap */
	resp = respond(fx, big, CRL_OCSP_REQ_MAX + 1, &res);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(resp);
	free(big);
	OPENSSL_free(req);
}

static void
test_nonce_and_expiry(void **state)
{
	struct fixture *fx = *state;
	X509 *ca = ca_get0_cert(fx->tu.ca);
	OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), fx->good, ca);
	OCSP_REQUEST *rq = OCSP_REQUEST_new();
	unsigned char nonce[33], *req = NULL, *out = NULL;
	const unsigned char *p;
	OCSP_RESPONSE *resp;
	crl_ocsp_result res;
	size_t olen = 0;
	int len;

	/* a 33-octet nonce: refused (RFC 8954) */
	memset(nonce, 0x5a, sizeof(nonce));
	assert_non_null(OCSP_request_add0_id(rq, id));
	assert_int_equal(OCSP_request_add1_nonce(rq, nonce, sizeof(nonce)), 1);
	len = i2d_OCSP_REQUEST(rq, &req);
	assert_true(len > 0);
	resp = respond(fx, req, (size_t)len, &res);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_RESPONSE_free(resp);
	OPENSSL_free(req);
	OCSP_REQUEST_free(rq);
	/* a month from now the responder certificate has expired: tryLater */
	id = OCSP_cert_to_id(EVP_sha1(), fx->good, ca);
	req = make_req(&id, 1, false, NULL, &olen);
	assert_int_equal(crl_ocsp_respond(fx->ocsp, req, olen,
	    time(NULL) + 30 * DAY, crl_ocsp_lookup_db, fx->tu.db, &out, &olen,
	    &res), 0);
	assert_int_equal(res.status, OCSP_RESPONSE_STATUS_TRYLATER);
	p = out;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)olen);
	assert_non_null(resp);
	assert_int_equal(OCSP_response_status(resp),
	    OCSP_RESPONSE_STATUS_TRYLATER);
	OCSP_RESPONSE_free(resp);
	OPENSSL_free(out);
	OPENSSL_free(req);
}

static long long
responder_certs(struct fixture *fx)
{
	return tu_sql_int(fx->tu.db, "SELECT count(*) FROM certificates WHERE "
	    "profile = 'ocsp-signing'");
}

static void
test_credential(void **state)
{
	struct fixture *fx = *state;
	char *kpath = tu_path(fx->tu.dir, CRL_OCSP_KEY_FILE);
	char *cpath = tu_path(fx->tu.dir, CRL_OCSP_CERT_FILE);
	X509 *cert = crl_ocsp_get1_cert(fx->ocsp);
	crl_ocsp *again;
	X509 *cert2;
	lb_err err = { 0 };
	long long n = responder_certs(fx);
	int days;

	assert_non_null(cert);
	assert_int_equal(tu_mode(kpath), 0600);
	assert_true(tu_mode(cpath) >= 0);
	assert_int_equal(n, 1);
	/* EKU OCSPSigning, nocheck, at most 7 days (plus backdating) */
	assert_true((X509_get_extended_key_usage(cert) & XKU_OCSP_SIGN) != 0);
	assert_true(X509_get_ext_by_NID(cert, NID_id_pkix_OCSP_noCheck, -1) >=
	    0);
	assert_int_equal(ASN1_TIME_diff(&days, NULL,
	    X509_get0_notBefore(cert), X509_get0_notAfter(cert)), 1);
	assert_true(days <= 7);
	/* a second responder loads the files instead of issuing again */
	again = crl_ocsp_new(fx->tu.ca, fx->tu.db, time(NULL), &err);
	assert_non_null(again);
	cert2 = crl_ocsp_get1_cert(again);
	assert_int_equal(X509_cmp(cert, cert2), 0);
	assert_int_equal(responder_certs(fx), n);
	X509_free(cert2);
	crl_ocsp_free(again);
	X509_free(cert);
	free(kpath);
	free(cpath);
}

static void
test_renewal(void **state)
{
	struct fixture *fx = *state;
	X509 *before = crl_ocsp_get1_cert(fx->ocsp), *after, *ondisk;
	char *cpath = tu_path(fx->tu.dir, CRL_OCSP_CERT_FILE);
	char *pem;
	size_t len = 0;
	long long n = responder_certs(fx);
	lb_err err = { 0 };
	int reason;

	/* early in its life: nothing to do */
	assert_int_equal(crl_ocsp_renew(fx->ocsp, fx->tu.db, time(NULL), false,
	    &err), 0);
	assert_int_equal(responder_certs(fx), n);
	/* 5 of 7 days gone: renewed, stored, written, swapped in */
	assert_int_equal(crl_ocsp_renew(fx->ocsp, fx->tu.db,
	    time(NULL) + 5 * DAY, false, &err), 1);
	after = crl_ocsp_get1_cert(fx->ocsp);
	assert_non_null(after);
	assert_int_not_equal(X509_cmp(before, after), 0);
	assert_int_equal(responder_certs(fx), n + 1);
	pem = tu_slurp(cpath, &len);
	assert_non_null(pem);
	ondisk = ca_cert_parse((unsigned char *)pem, len, &err);
	assert_non_null(ondisk);
	assert_int_equal(X509_cmp(after, ondisk), 0);
	/* answers are signed by the new responder and still verify */
	assert_int_equal(status_of(fx, fx->good, EVP_sha1(), true, &reason),
	    V_OCSP_CERTSTATUS_GOOD);
	/* a responder started now picks up the renewed credential */
	X509_free(ondisk);
	X509_free(after);
	X509_free(before);
	free(pem);
	free(cpath);
}

/* crl_ocsp_respond_db on a fresh request for cert; *der (OPENSSL_free). */
static int
db_status(struct fixture *fx, X509 *cert, bool nonce, unsigned char **der,
    size_t *dlen, crl_ocsp_result *res)
{
	struct query q;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	const unsigned char *p;
	int st = -1, reason;

	query_new(fx, &q, cert, EVP_sha1(), nonce);
	assert_int_equal(crl_ocsp_respond_db(fx->ocsp, fx->tu.db, q.req, q.len,
	    time(NULL), der, dlen, res), 0);
	p = *der;
	assert_non_null(resp = d2i_OCSP_RESPONSE(NULL, &p, (long)*dlen));
	assert_int_equal(res->status, OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(res->nonce, nonce);
	bs = query_basic(fx, &q, resp);
	assert_int_equal(OCSP_resp_find_status(bs, q.find, &st, &reason, NULL,
	    NULL, NULL), 1);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	query_free(&q);
	return st;
}

static void
test_reuse_identical(void **state)
{
	struct fixture *fx = *state;
	unsigned char *a = NULL, *b = NULL, *c = NULL;
	size_t alen = 0, blen = 0, clen = 0;
	crl_ocsp_result ra, rb, rc;

	assert_int_equal(db_status(fx, fx->good, false, &a, &alen, &ra),
	    V_OCSP_CERTSTATUS_GOOD);
	assert_int_equal(db_status(fx, fx->good, false, &b, &blen, &rb),
	    V_OCSP_CERTSTATUS_GOOD);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	assert_int_equal(ra.this_update, rb.this_update);
	assert_int_equal(ra.next_update, rb.next_update);
	/* a nonce is answered fresh (db_status checks it is echoed) */
	assert_int_equal(db_status(fx, fx->good, true, &c, &clen, &rc),
	    V_OCSP_CERTSTATUS_GOOD);
	assert_true(clen != alen || memcmp(a, c, alen) != 0);
	OPENSSL_free(c);
	c = NULL;
	assert_int_equal(db_status(fx, fx->good, true, &c, &clen, &rc),
	    V_OCSP_CERTSTATUS_GOOD);
	assert_true(clen != alen || memcmp(a, c, alen) != 0);
	OPENSSL_free(a);
	OPENSSL_free(b);
	OPENSSL_free(c);
}

static void
test_reuse_revocation(void **state)
{
	struct fixture *fx = *state;
	X509 *x = issue(fx, "soon-revoked@example.org");
	unsigned char *der = NULL;
	size_t dlen = 0;
	crl_ocsp_result res;
	char *serial;
	lb_err err = { 0 };

	assert_non_null(x);
	assert_int_equal(db_status(fx, x, false, &der, &dlen, &res),
	    V_OCSP_CERTSTATUS_GOOD);
	OPENSSL_free(der);
	assert_non_null(serial = ca_cert_serial(x));
	assert_int_equal(ca_revoke(fx->tu.db, serial, 1, 0, ACTOR, &err), 0);
	/* the cached good answer is not served once revoked */
	assert_int_equal(db_status(fx, x, false, &der, &dlen, &res),
	    V_OCSP_CERTSTATUS_REVOKED);
	OPENSSL_free(der);
	free(serial);
	X509_free(x);
}

static void
test_reuse_renewal(void **state)
{
	struct fixture *fx = *state;
	unsigned char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	crl_ocsp_result ra, rb;
	lb_err err = { 0 };

	assert_int_equal(db_status(fx, fx->good, false, &a, &alen, &ra),
	    V_OCSP_CERTSTATUS_GOOD);
	assert_int_equal(crl_ocsp_renew(fx->ocsp, fx->tu.db, time(NULL), true,
	    &err), 1);
	/* signed again, by the new responder (verified in db_status) */
	assert_int_equal(db_status(fx, fx->good, false, &b, &blen, &rb),
	    V_OCSP_CERTSTATUS_GOOD);
	assert_true(alen != blen || memcmp(a, b, alen) != 0);
	OPENSSL_free(a);
	OPENSSL_free(b);
}

/* crl_ocsp_respond_db on raw bytes; the response status, *der kept. */
static int
db_raw(struct fixture *fx, const unsigned char *req, size_t len,
    unsigned char **der, size_t *dlen)
{
	crl_ocsp_result res;
	const unsigned char *p;
	OCSP_RESPONSE *resp;

	assert_int_equal(crl_ocsp_respond_db(fx->ocsp, fx->tu.db, req, len,
	    time(NULL), der, dlen, &res), 0);
	p = *der;
	assert_non_null(resp = d2i_OCSP_RESPONSE(NULL, &p, (long)*dlen));
	assert_int_equal(OCSP_response_status(resp), res.status);
	OCSP_RESPONSE_free(resp);
	return res.status;
}

/*
 * Reuse is keyed by the request's bytes, matched before any decoding: a
 * cached request with a byte more, or with malformed input or junk, is
 * decoded and refused as ever; one with a different CertID gets its own
 * answer; a request too large to keep is signed afresh every time.
 */
static void
test_reuse_raw_bytes(void **state)
{
	struct fixture *fx = *state;
	X509 *ca = ca_get0_cert(fx->tu.ca);
	OCSP_CERTID *ids[32];
	unsigned char *req, *big, *a = NULL, *b = NULL;
	size_t len = 0, blen = 0, alen = 0, dlen = 0;
	int i;

	ids[0] = OCSP_cert_to_id(EVP_sha1(), fx->good, ca);
	req = make_req(ids, 1, false, NULL, &len);
	assert_int_equal(db_raw(fx, req, len, &a, &alen),
	    OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(db_raw(fx, req, len, &b, &dlen),
	    OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(alen, dlen);
	assert_memory_equal(a, b, alen);
	OPENSSL_free(b);
	b = NULL;
	/* the cached bytes and one more: trailing garbage, malformed */
	assert_non_null(big = calloc(1, len + 1));
	memcpy(big, req, len);
	for (i = 0; i < 2; i++) {
		assert_int_equal(db_raw(fx, big, len + 1, &b, &dlen),
		    OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
		OPENSSL_free(b);
		b = NULL;
	}
	/* one byte short: malformed too */
	assert_int_equal(db_raw(fx, big, len - 1, &b, &dlen),
	    OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OPENSSL_free(b);
	b = NULL;
	free(big);
	OPENSSL_free(req);
	/* the same shape for the revoked certificate: its own answer */
	assert_int_equal(db_status(fx, fx->revoked, false, &b, &dlen,
	    &(crl_ocsp_result){ 0 }), V_OCSP_CERTSTATUS_REVOKED);
	assert_true(dlen != alen || memcmp(a, b, alen) != 0);
	OPENSSL_free(b);
	b = NULL;
	/* 32 SHA-256 CertIDs: too large to keep, answered fresh */
	for (i = 0; i < 32; i++)
		ids[i] = OCSP_cert_to_id(EVP_sha256(), fx->good, ca);
	req = make_req(ids, 32, false, NULL, &len);
	assert_true(len > 1024 && len <= CRL_OCSP_REQ_MAX);
	assert_int_equal(db_raw(fx, req, len, &b, &blen),
	    OCSP_RESPONSE_STATUS_SUCCESSFUL);
	assert_int_equal(db_raw(fx, req, len, &big, &dlen),
	    OCSP_RESPONSE_STATUS_SUCCESSFUL);
	/* ECDSA signatures differ: not the same bytes */
	assert_true(blen != dlen || memcmp(b, big, blen) != 0);
	OPENSSL_free(big);
	OPENSSL_free(b);
	OPENSSL_free(req);
	OPENSSL_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_credential),
		cmocka_unit_test(test_good_sha1),
		cmocka_unit_test(test_good_sha256_nonce),
		cmocka_unit_test(test_revoked_reason),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_two_requests),
		cmocka_unit_test(test_other_issuer),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_nonce_and_expiry),
		cmocka_unit_test(test_renewal),
		cmocka_unit_test(test_reuse_identical),
		cmocka_unit_test(test_reuse_revocation),
		cmocka_unit_test(test_reuse_renewal),
		cmocka_unit_test(test_reuse_raw_bytes),
	};

	log_init("test_ocsp", false);
	return cmocka_run_group_tests(tests, group_setup,
	    tu_fixture_teardown);
}
