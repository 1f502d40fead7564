/*
 * ocsp.c - the OCSP responder (RFC 6960, RFC 5019 profile).  A delegated
 * responder certificate of profile ocsp-signing, kept in the state
 * directory (ocsp.key, ocsp.pem) and renewed when half its lifetime is
 * gone, signs every answer; crl_ocsp_respond is a pure function of the
 * request bytes, the time and a look-up callback, so that the fuzzer and
 * the unit tests drive it without a server.  Revocation data comes from
 * the certificate store through ca_cert_status, the same rows the CRL is
 * built from.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "crl/crl.h"

/* Requests with more CertIDs than this are refused as malformed. */
#define MAX_SINGLE_REQUESTS 32
#define RESPONDER_CN        "OCSP Responder"
#define PEM_MAX             ((size_t)256 * 1024)
/*
 * RFC 5019 response reuse: slots, longest reuse, largest request kept.
 * The key is the request's own DER bytes, so that a repeat is answered
 * without decoding it (d2i_OCSP_REQUEST dominates a hit otherwise).
 */
#define CACHE_SLOTS         4096
#define CACHE_SECONDS       60
#define CACHE_KEY_MAX       1024

/* One signed nonce-less response, reusable while gen and epoch hold. */
struct cache_entry {
	uint64_t hash;              /* cache_hash of key */
	unsigned char *key;         /* the request, DER, as received */
	size_t key_len;
	unsigned char *der;         /* the OCSPResponse */
	size_t der_len;
	int64_t gen;                /* revocation generation when looked up */
	unsigned long epoch;        /* responder credential it was signed by */
	time_t this_update, next_update, expires;
};

struct crl_ocsp {
	ca_ctx *ca;                 /* borrowed */
	long validity;              /* nextUpdate - thisUpdate, seconds */
	OCSP_CERTID *id_sha1;       /* this CA as issuer, serial 0 */
	OCSP_CERTID *id_sha256;
	pthread_mutex_t lock;       /* guards key and cert */
	pthread_mutex_t renew_lock; /* one renewal at a time */
	EVP_PKEY *key;
	X509 *cert;
	pthread_rwlock_t cache_lock; /* guards cache and epoch; never held
	                             * while signing or reading the db */
	unsigned long epoch;        /* bumped on every renewal */
	struct cache_entry *cache;  /* CACHE_SLOTS, direct-mapped */
};

int
crl_ocsp_lookup_db(void *arg, const char *serial, crl_ocsp_cert_status *st)
{
	lb_err err;

	memset(st, 0, sizeof(*st));
	st->reason = -1;
	lb_err_clear(&err);
	if (ca_cert_status(arg, serial, &st->revoked, &st->revoked_at,
	    &st->reason, &st->invalidity, &err) == 0) {
		st->known = true;
		return 0;
	}
	/* never issued (or not a serial we could have issued) */
	if (err.code == LB_ENOTFOUND || err.code == LB_EINVAL)
		return 0;
	log_warnx("OCSP look-up of %s: %s", serial, err.msg);
	return -1;
}

/* ------------------------------------------------------------------ */
/* The responder credential                                            */

/* True when cert was issued by this CA, matches key and is in force. */
static bool
cred_usable(ca_ctx *ca, X509 *cert, EVP_PKEY *key, time_t now)
{
	EVP_PKEY *capub = X509_get0_pubkey(ca_get0_cert(ca));

	return capub != NULL && X509_verify(cert, capub) == 1 &&
	    X509_check_private_key(cert, key) == 1 &&
	    X509_cmp_time(X509_get0_notAfter(cert), &now) > 0 &&
	    X509_cmp_time(X509_get0_notBefore(cert), &now) <= 0;
}

/* Loads ocsp.key + ocsp.pem; NULLs when absent or unreadable. */
static void
cred_load(ca_ctx *ca, EVP_PKEY **key, X509 **cert)
{
	char *kpath = core_path(ca_get0_dir(ca), CRL_OCSP_KEY_FILE);
	char *cpath = core_path(ca_get0_dir(ca), CRL_OCSP_CERT_FILE);
	unsigned char *pem = NULL;
	size_t len = 0;
	lb_err err;

	*key = NULL;
	*cert = NULL;
	lb_err_clear(&err);
	if (kpath == NULL || cpath == NULL)
		goto out;
	if (access(cpath, F_OK) != 0 || access(kpath, F_OK) != 0)
		goto out;
	if (core_file_read(cpath, PEM_MAX, &pem, &len, &err) == -1 ||
	    (*cert = ca_cert_parse(pem, len, &err)) == NULL ||
	    (*key = ca_key_read(kpath, NULL, &err)) == NULL) {
		log_warnx("OCSP responder credential: %s; issuing a new one",
		    err.msg);
		X509_free(*cert);
		*cert = NULL;
	}
out:
	free(pem);
	free(kpath);
	free(cpath);
}

/* Issues, stores and writes a new responder credential. */
static int
cred_issue(ca_ctx *ca, sqlite3 *db, EVP_PKEY **keyp, X509 **certp,
    lb_err *err)
{
	ca_request req;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char *kpath = NULL, *cpath = NULL, *pem = NULL;
	size_t len;
	int rc = -1;

	memset(&req, 0, sizeof(req));
	req.profile = "ocsp-signing";
	req.common_name = RESPONDER_CN;
	if ((kpath = core_path(ca_get0_dir(ca), CRL_OCSP_KEY_FILE)) == NULL ||
	    (cpath = core_path(ca_get0_dir(ca), CRL_OCSP_CERT_FILE)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	/* P-256: the cheapest signature that every OCSP client verifies */
	if ((key = ca_keygen(CA_KEY_ECP256, err)) == NULL)
		goto out;
	req.pubkey = key;
	if ((cert = ca_issue(ca, db, &req, "ocsp-responder", err)) == NULL)
		goto out;
	/* key first: a crash in between leaves a mismatch, reissued later */
	if (ca_key_write(kpath, key, NULL, false, err) == -1)
		goto out;
	if ((pem = ca_certs_pem(&cert, 1, NULL, &len)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "cannot encode the OCSP "
		    "responder certificate");
		goto out;
	}
	if (core_file_write(cpath, pem, len, 0644, false, err) == -1)
		goto out;
	*keyp = key;
	*certp = cert;
	key = NULL;
	cert = NULL;
	rc = 0;
out:
	free(pem);
	EVP_PKEY_free(key);
	X509_free(cert);
	free(kpath);
	free(cpath);
	return rc;
}

/* The moment from which cert is due for renewal: half its lifetime. */
static time_t
renew_at(const X509 *cert)
{
	time_t nb = core_asn1_time(X509_get0_notBefore(cert));
	time_t na = core_asn1_time(X509_get0_notAfter(cert));

	if (nb == 0 || na == 0)
		return 0;
	return nb + (na - nb) / 2;
}

int
crl_ocsp_renew(crl_ocsp *o, sqlite3 *db, time_t now, bool force, lb_err *err)
{
	EVP_PKEY *key = NULL, *oldkey;
	X509 *cert = NULL, *oldcert;
	time_t due;
	int rc = -1;

	if (pthread_mutex_trylock(&o->renew_lock) != 0)
		return 0;
	pthread_mutex_lock(&o->lock);
	due = o->cert != NULL ? renew_at(o->cert) : 0;
	pthread_mutex_unlock(&o->lock);
	if (!force && o->cert != NULL && now < due) {
		rc = 0;
		goto out;
	}
	if (cred_issue(o->ca, db, &key, &cert, err) == -1)
		goto out;
	pthread_mutex_lock(&o->lock);
	oldkey = o->key;
	oldcert = o->cert;
	o->key = key;
	o->cert = cert;
	pthread_mutex_unlock(&o->lock);
	/* responses signed by the old credential are not reused */
	pthread_rwlock_wrlock(&o->cache_lock);
	o->epoch++;
	pthread_rwlock_unlock(&o->cache_lock);
	/* responses in flight hold their own references */
	EVP_PKEY_free(oldkey);
	X509_free(oldcert);
	log_info("OCSP responder certificate issued (renewal due at %ld)",
	    (long)renew_at(cert));
	rc = 1;
out:
	pthread_mutex_unlock(&o->renew_lock);
	return rc;
}

X509 *
crl_ocsp_get1_cert(crl_ocsp *o)
{
	X509 *x;

	pthread_mutex_lock(&o->lock);
	x = o->cert;
	if (x != NULL && X509_up_ref(x) != 1)
		x = NULL;
	pthread_mutex_unlock(&o->lock);
	return x;
}

/* The current credential, both up-ref'ed; -1 when there is none. */
static int
cred_get1(crl_ocsp *o, EVP_PKEY **key, X509 **cert)
{
	int rc = -1;

	*key = NULL;
	*cert = NULL;
	pthread_mutex_lock(&o->lock);
	if (o->key != NULL && o->cert != NULL &&
	    EVP_PKEY_up_ref(o->key) == 1) {
		if (X509_up_ref(o->cert) == 1) {
			*key = o->key;
			*cert = o->cert;
			rc = 0;
		} else
			EVP_PKEY_free(o->key);
	}
	pthread_mutex_unlock(&o->lock);
	return rc;
}

crl_ocsp *
crl_ocsp_new(ca_ctx *ca, sqlite3 *db, time_t now, lb_err *err)
{
	crl_ocsp *o = NULL, *ret = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	lb_err rerr;

	if ((o = calloc(1, sizeof(*o))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	o->ca = ca;
	if (pthread_mutex_init(&o->lock, NULL) != 0) {
		free(o);
		o = NULL;
		lb_err_set(err, LB_EINTERNAL, "cannot set up the OCSP responder");
		goto out;
	}
	if (pthread_mutex_init(&o->renew_lock, NULL) != 0) {
		pthread_mutex_destroy(&o->lock);
		free(o);
		o = NULL;
		lb_err_set(err, LB_EINTERNAL, "cannot set up the OCSP responder");
		goto out;
	}
	if (pthread_rwlock_init(&o->cache_lock, NULL) != 0) {
		pthread_mutex_destroy(&o->lock);
		pthread_mutex_destroy(&o->renew_lock);
		free(o);
		o = NULL;
		lb_err_set(err, LB_EINTERNAL, "cannot set up the OCSP responder");
		goto out;
	}
	if ((o->cache = calloc(CACHE_SLOTS, sizeof(*o->cache))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (core_conf_get_long(ca_get0_conf(ca), "ocsp", "validity", 3600, 60,
	    7L * 86400, &o->validity, err) == -1)
		goto out;
	if ((o->id_sha1 = OCSP_cert_to_id(EVP_sha1(), NULL,
	    ca_get0_cert(ca))) == NULL ||
	    (o->id_sha256 = OCSP_cert_to_id(EVP_sha256(), NULL,
	    ca_get0_cert(ca))) == NULL) {
		log_openssl("OCSP_cert_to_id");
		lb_err_set(err, LB_EINTERNAL, "cannot set up the OCSP responder");
		goto out;
	}
	cred_load(ca, &key, &cert);
	if (key != NULL && cert != NULL && cred_usable(ca, cert, key, now)) {
		o->key = key;
		o->cert = cert;
	} else {
		EVP_PKEY_free(key);
		X509_free(cert);
	}
	lb_err_clear(&rerr);
	if (crl_ocsp_renew(o, db, now, false, &rerr) == -1) {
		if (o->cert == NULL) {
			lb_err_set(err, rerr.code, "cannot issue the OCSP "
			    "responder certificate: %s", rerr.msg);
			goto out;
		}
		log_warnx("OCSP responder certificate not renewed (%s): "
		    "using the current one", rerr.msg);
	}
	ret = o;
	o = NULL;
out:
	crl_ocsp_free(o);
	return ret;
}

void
crl_ocsp_free(crl_ocsp *o)
{
	size_t i;

	if (o == NULL)
		return;
	OCSP_CERTID_free(o->id_sha1);
	OCSP_CERTID_free(o->id_sha256);
	EVP_PKEY_free(o->key);
	X509_free(o->cert);
	if (o->cache != NULL)
		for (i = 0; i < CACHE_SLOTS; i++) {
			free(o->cache[i].key);
			OPENSSL_free(o->cache[i].der);
		}
	free(o->cache);
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->renew_lock);
	pthread_rwlock_destroy(&o->cache_lock);
	free(o);
}

/* ------------------------------------------------------------------ */
/* Answering                                                           */

/* True when cid names this CA as its issuer (any hash OpenSSL knows). */
static bool
our_issuer(const crl_ocsp *o, OCSP_CERTID *cid)
{
	ASN1_OBJECT *md_obj = NULL;
	const EVP_MD *md;
	OCSP_CERTID *mine;
	bool ok;
	int nid;

	if (OCSP_id_get0_info(NULL, &md_obj, NULL, NULL, cid) != 1 ||
	    md_obj == NULL)
		return false;
	nid = OBJ_obj2nid(md_obj);
	if (nid == NID_sha1)
		return OCSP_id_issuer_cmp(o->id_sha1, cid) == 0;
	if (nid == NID_sha256)
		return OCSP_id_issuer_cmp(o->id_sha256, cid) == 0;
	if (nid == NID_undef || (md = EVP_get_digestbynid(nid)) == NULL)
		return false;
	if ((mine = OCSP_cert_to_id(md, NULL, ca_get0_cert(o->ca))) == NULL)
		return false;
	ok = OCSP_id_issuer_cmp(mine, cid) == 0;
	OCSP_CERTID_free(mine);
	return ok;
}

/* The serial of cid as uppercase hex; NULL when negative or absent. */
static char *
cid_serial(OCSP_CERTID *cid)
{
	ASN1_INTEGER *ser = NULL;
	BIGNUM *bn = NULL;
	char *hex = NULL, *out = NULL;

	if (OCSP_id_get0_info(NULL, NULL, NULL, &ser, cid) != 1 ||
	    ser == NULL || (bn = ASN1_INTEGER_to_BN(ser, NULL)) == NULL ||
	    BN_is_negative(bn))
		goto out;
	if ((hex = BN_bn2hex(bn)) != NULL)
		out = strdup(hex);
out:
	OPENSSL_free(hex);
	BN_free(bn);
	return out;
}

/* An OCSPResponse with only a status, DER-encoded. */
static int
status_only(int status, unsigned char **out, size_t *out_len,
    crl_ocsp_result *res)
{
	OCSP_RESPONSE *resp = OCSP_response_create(status, NULL);
	unsigned char *der = NULL;
	int len;

	if (resp == NULL || (len = i2d_OCSP_RESPONSE(resp, &der)) <= 0) {
		OCSP_RESPONSE_free(resp);
		return log_openssl("OCSP_response_create");
	}
	OCSP_RESPONSE_free(resp);
	*out = der;
	*out_len = (size_t)len;
	if (res != NULL)
		res->status = status;
	return 0;
}

/* Adds the status of one CertID to bs; -1 on an internal failure. */
static int
add_single(OCSP_BASICRESP *bs, OCSP_CERTID *cid, crl_ocsp_lookup_fn lookup,
    void *arg, ASN1_TIME *thisupd, ASN1_TIME *nextupd)
{
	crl_ocsp_cert_status st;
	OCSP_SINGLERESP *single;
	ASN1_TIME *rev = NULL;
	ASN1_GENERALIZEDTIME *inv = NULL;
	char *serial;
	int rc = -1, reason;

	memset(&st, 0, sizeof(st));
	st.reason = -1;
	if ((serial = cid_serial(cid)) != NULL &&
	    lookup(arg, serial, &st) == -1)
		goto out;
	if (!st.known) {
		single = OCSP_basic_add1_status(bs, cid,
		    V_OCSP_CERTSTATUS_UNKNOWN, 0, NULL, thisupd, nextupd);
	} else if (!st.revoked) {
		single = OCSP_basic_add1_status(bs, cid,
		    V_OCSP_CERTSTATUS_GOOD, 0, NULL, thisupd, nextupd);
	} else {
		if ((rev = ASN1_TIME_set(NULL, st.revoked_at)) == NULL)
			goto out;
		/* omit the reason rather than claim unspecified (0) */
		reason = st.reason > 0 && st.reason <= 10 && st.reason != 7 ?
		    st.reason : OCSP_REVOKED_STATUS_NOSTATUS;
		single = OCSP_basic_add1_status(bs, cid,
		    V_OCSP_CERTSTATUS_REVOKED, reason, rev, thisupd, nextupd);
		if (single != NULL && st.reason == 1 && st.invalidity > 0) {
			if ((inv = ASN1_GENERALIZEDTIME_set(NULL,
			    st.invalidity)) == NULL ||
			    OCSP_SINGLERESP_add1_ext_i2d(single,
			    NID_invalidity_date, inv, 0, 0) != 1)
				single = NULL;
		}
	}
	if (single == NULL) {
		log_openssl("OCSP_basic_add1_status");
		goto out;
	}
	rc = 0;
out:
	ASN1_TIME_free(rev);
	ASN1_GENERALIZEDTIME_free(inv);
	free(serial);
	return rc;
}

/*
 * RFC 8954: a nonce of 1 to 32 octets.  The extension's value is an OCTET
 * STRING wrapping it (2 octets of header); some clients send it bare.
 */
static bool
nonce_ok(OCSP_REQUEST *rq)
{
	X509_EXTENSION *ext;
	int i = OCSP_REQUEST_get_ext_by_NID(rq, NID_id_pkix_OCSP_Nonce, -1);
	int len;

	if (i < 0)
		return true;
	if (OCSP_REQUEST_get_ext_by_NID(rq, NID_id_pkix_OCSP_Nonce, i) >= 0)
		return false;
	if ((ext = OCSP_REQUEST_get_ext(rq, i)) == NULL)
		return false;
	len = ASN1_STRING_length(X509_EXTENSION_get_data(ext));
	return len >= 1 && len <= 34;
}

int
crl_ocsp_respond(crl_ocsp *o, const unsigned char *req, size_t len,
    time_t now, crl_ocsp_lookup_fn lookup, void *arg, unsigned char **out,
    size_t *out_len, crl_ocsp_result *res)
{
	OCSP_REQUEST *rq = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_RESPONSE *resp = NULL;
	ASN1_TIME *thisupd = NULL, *nextupd = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	const unsigned char *p = req;
	unsigned char *der = NULL;
	int n, i, status = OCSP_RESPONSE_STATUS_INTERNALERROR, dlen, r;
	int rc = -1;
	bool signed_ok = false;

	*out = NULL;
	*out_len = 0;
	if (res != NULL)
		memset(res, 0, sizeof(*res));
	if (req == NULL || len == 0 || len > CRL_OCSP_REQ_MAX ||
	    (rq = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL ||
	    p != req + len) {
		status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
		goto out;
	}
	n = OCSP_request_onereq_count(rq);
	if (n <= 0 || n > MAX_SINGLE_REQUESTS) {
		status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!our_issuer(o, OCSP_onereq_get0_id(
		    OCSP_request_onereq_get0(rq, i)))) {
			status = OCSP_RESPONSE_STATUS_UNAUTHORIZED;
			goto out;
		}
	if (!nonce_ok(rq)) {
		status = OCSP_RESPONSE_STATUS_MALFORMEDREQUEST;
		goto out;
	}
	if (cred_get1(o, &key, &cert) == -1) {
		log_warnx("OCSP: no responder credential");
		goto out;
	}
	/* renewal failed for too long: never sign with an expired cert */
	if (X509_cmp_time(X509_get0_notAfter(cert), &now) <= 0) {
		log_warnx("OCSP: the responder certificate has expired and "
		    "could not be renewed: answering tryLater");
		status = OCSP_RESPONSE_STATUS_TRYLATER;
		goto out;
	}
	if ((bs = OCSP_BASICRESP_new()) == NULL ||
	    (thisupd = ASN1_TIME_set(NULL, now)) == NULL ||
	    (nextupd = ASN1_TIME_set(NULL, now + o->validity)) == NULL)
		goto out;
	for (i = 0; i < n; i++)
		if (add_single(bs, OCSP_onereq_get0_id(
		    OCSP_request_onereq_get0(rq, i)), lookup, arg, thisupd,
		    nextupd) == -1)
			goto out;
	if ((r = OCSP_copy_nonce(bs, rq)) <= 0) {
		log_openssl("OCSP_copy_nonce");
		goto out;
	}
	if (OCSP_basic_sign(bs, cert, key, EVP_sha256(), NULL,
	    OCSP_RESPID_KEY) != 1) {
		log_openssl("OCSP_basic_sign");
		goto out;
	}
	if ((resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL,
	    bs)) == NULL || (dlen = i2d_OCSP_RESPONSE(resp, &der)) <= 0) {
		log_openssl("OCSP_response_create");
		goto out;
	}
	*out = der;
	*out_len = (size_t)dlen;
	if (res != NULL) {
		res->status = OCSP_RESPONSE_STATUS_SUCCESSFUL;
		res->this_update = now;
		res->next_update = now + o->validity;
		res->nonce = r == 1;
	}
	signed_ok = true;
	rc = 0;
out:
	/* anything short of a signed answer: a bare status */
	if (!signed_ok)
		rc = status_only(status, out, out_len, res);
	OCSP_REQUEST_free(rq);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ASN1_TIME_free(thisupd);
	ASN1_TIME_free(nextupd);
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}

/* ------------------------------------------------------------------ */
/* RFC 5019 response reuse                                             */

/* The look-up of crl_ocsp_respond_db: the store, noting unknown serials. */
struct db_lookup {
	sqlite3 *db;
	bool unknown;
};

static int
lookup_noting(void *arg, const char *serial, crl_ocsp_cert_status *st)
{
	struct db_lookup *l = arg;
	int rc = crl_ocsp_lookup_db(l->db, serial, st);

	if (rc == 0 && !st->known)
		l->unknown = true;
	return rc;
}

/*
 * True when a request may have its answer reused: well-formed DER, no
 * extension (so no nonce), 1..MAX_SINGLE_REQUESTS CertIDs, and small
 * enough to be kept as a key.  Decodes; called on a miss only.
 */
static bool
reusable_request(const unsigned char *req, size_t len)
{
	OCSP_REQUEST *rq = NULL;
	const unsigned char *p = req;
	bool ok = false;
	int n;

	if (req == NULL || len == 0 || len > CACHE_KEY_MAX ||
	    (rq = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL ||
	    p != req + len || OCSP_REQUEST_get_ext_count(rq) != 0)
		goto out;
	n = OCSP_request_onereq_count(rq);
	ok = n > 0 && n <= MAX_SINGLE_REQUESTS;
out:
	OCSP_REQUEST_free(rq);
	return ok;
}

/* FNV-1a of the request bytes; equal hashes are confirmed by memcmp. */
static uint64_t
cache_hash(const unsigned char *key, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= key[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/*
 * Copies a live entry for the request bytes key out; false on a miss.
 * Only extension-less requests are ever stored, so bytes that carry a
 * nonce cannot match one.
 */
static bool
cache_get(crl_ocsp *o, const unsigned char *key, size_t key_len,
    uint64_t hash, int64_t gen, time_t now, unsigned char **out,
    size_t *out_len, crl_ocsp_result *res)
{
	struct cache_entry *e = &o->cache[hash % CACHE_SLOTS];
	bool hit = false;

	pthread_rwlock_rdlock(&o->cache_lock);
	if (e->der == NULL || e->hash != hash || e->key_len != key_len ||
	    e->gen != gen || e->epoch != o->epoch || now >= e->expires ||
	    now < e->this_update || memcmp(e->key, key, key_len) != 0)
		goto out;
	if ((*out = OPENSSL_malloc(e->der_len)) == NULL)
		goto out;
	memcpy(*out, e->der, e->der_len);
	*out_len = e->der_len;
	if (res != NULL) {
		res->status = OCSP_RESPONSE_STATUS_SUCCESSFUL;
		res->this_update = e->this_update;
		res->next_update = e->next_update;
		res->nonce = false;
	}
	hit = true;
out:
	pthread_rwlock_unlock(&o->cache_lock);
	return hit;
}

/* Stores a copy of der in key's slot, evicting what was there. */
static void
cache_put(crl_ocsp *o, const unsigned char *key, size_t key_len,
    uint64_t hash, int64_t gen, unsigned long epoch, time_t now,
    const unsigned char *der, size_t der_len, const crl_ocsp_result *res)
{
	struct cache_entry *e = &o->cache[hash % CACHE_SLOTS];
	unsigned char *k = malloc(key_len), *d = OPENSSL_malloc(der_len);
	time_t expires = now + CACHE_SECONDS;

	if (k == NULL || d == NULL || der == NULL)
		goto out;
	memcpy(k, key, key_len);
	memcpy(d, der, der_len);
	if (res->next_update < expires)
		expires = res->next_update;
	pthread_rwlock_wrlock(&o->cache_lock);
	/* renewed while we signed: the old credential's answer is not kept */
	if (epoch == o->epoch) {
		free(e->key);
		OPENSSL_free(e->der);
		e->hash = hash;
		e->key = k;
		e->key_len = key_len;
		e->der = d;
		e->der_len = der_len;
		e->gen = gen;
		e->epoch = epoch;
		e->this_update = res->this_update;
		e->next_update = res->next_update;
		e->expires = expires;
		k = NULL;
		d = NULL;
	}
	pthread_rwlock_unlock(&o->cache_lock);
out:
	free(k);
	OPENSSL_free(d);
}

int
crl_ocsp_respond_db(crl_ocsp *o, sqlite3 *db, const unsigned char *req,
    size_t len, time_t now, unsigned char **out, size_t *out_len,
    crl_ocsp_result *res)
{
	struct db_lookup l = { db, false };
	crl_ocsp_result mine;
	int64_t gen = 0;
	uint64_t hash = 0;
	unsigned long epoch;
	bool cacheable;
	lb_err err;

	*out = NULL;
	*out_len = 0;
	if (res == NULL)
		res = &mine;
	memset(res, 0, sizeof(*res));
	lb_err_clear(&err);
	/* only sizes a stored key can have are worth a look-up */
	cacheable = req != NULL && len > 0 && len <= CACHE_KEY_MAX;
	/* the generation first: a revocation after it only makes a miss */
	if (cacheable && ca_revocation_generation(db, &gen, &err) == -1) {
		log_warnx("OCSP: %s: answering without reuse", err.msg);
		cacheable = false;
	}
	if (cacheable) {
		hash = cache_hash(req, len);
		if (cache_get(o, req, len, hash, gen, now, out, out_len, res))
			return 0;
	}
	pthread_rwlock_rdlock(&o->cache_lock);
	epoch = o->epoch;
	pthread_rwlock_unlock(&o->cache_lock);
	if (crl_ocsp_respond(o, req, len, now, lookup_noting, &l, out, out_len,
	    res) == -1)
		return -1;
	/* unknown may turn good at the next issuance: never reused */
	if (cacheable && !l.unknown && !res->nonce &&
	    res->status == OCSP_RESPONSE_STATUS_SUCCESSFUL &&
	    reusable_request(req, len))
		cache_put(o, req, len, hash, gen, epoch, now, *out, *out_len,
		    res);
	return 0;
}
