/*
 * issue.c - building, signing and storing certificates.  ca_sign_cert is
 * the one place a certificate is made: it checks the request against its
 * profile (identity from the caller, never the CSR; key type allowed),
 * copies the profile's pre-encoded extensions and adds only what depends on
 * the subject (serial, names, SAN, SKI).  ca_store_cert writes it inside the
 * caller's transaction; ca_issue and the group committer commit it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"

#define SERIAL_BYTES 16
/* notBefore is set this far in the past to absorb client clock skew */
#define BACKDATE_SECONDS 300

static int
check_request(const struct ca_profile *p, const ca_request *req,
    enum ca_key_type *kt, lb_err *err)
{
	bool subscriber = ca_profile_is_subscriber(p);
	size_t i;

	if (req->pubkey == NULL)
		return lb_err_set(err, LB_EINVAL, "no public key to certify");
	if (subscriber || p->kind == PROFILE_OPERATOR ||
	    p->kind == PROFILE_RECOVERY_AGENT) {
		if (!core_email_valid(req->email))
			return lb_err_set(err, LB_EINVAL,
			    "'%s' is not an e-mail address of the form "
			    "local@domain", req->email ? req->email : "");
	}
	if (subscriber && p->individual) {
		if (req->given_name == NULL || req->given_name[0] == '\0' ||
		    req->surname == NULL || req->surname[0] == '\0')
			return lb_err_set(err, LB_EINVAL,
			    "profile '%s' is individual-validated: give "
			    "--given-name and --surname", p->name);
	}
	if ((p->kind == PROFILE_OPERATOR || p->kind == PROFILE_RECOVERY_AGENT ||
	    p->kind == PROFILE_TLS_SERVER || p->kind == PROFILE_OCSP_SIGNING) &&
	    (req->common_name == NULL || req->common_name[0] == '\0'))
		return lb_err_set(err, LB_EINVAL, "profile '%s' needs a name",
		    p->name);
	if (req->days < 0 || (req->days > 0 && req->days > p->days))
		return lb_err_set(err, LB_EINVAL,
		    "validity of %d days exceeds the %ld days of profile '%s'",
		    req->days, p->days, p->name);
	*kt = ca_key_type_of(req->pubkey);
	if (*kt == CA_KEY_NONE || (p->key_types & (1u << *kt)) == 0) {
		char allowed[128] = "";
		size_t used = 0;

		for (i = CA_KEY_RSA2048; i <= CA_KEY_ECP384; i++)
			if (p->key_types & (1u << i))
				used += (size_t)snprintf(allowed + used,
				    sizeof(allowed) - used, "%s%s",
				    used ? ", " : "",
				    ca_key_type_name((enum ca_key_type)i));
		return lb_err_set(err, LB_EINVAL,
		    "key is %s: profile '%s' accepts %s",
		    *kt == CA_KEY_NONE ? "of a type or size lockbox refuses" :
		    ca_key_type_name(*kt), p->name, allowed);
	}
	/* names are bounded by X.520 upper bounds */
	if ((req->given_name && strlen(req->given_name) > 64) ||
	    (req->surname && strlen(req->surname) > 64) ||
	    (req->common_name && strlen(req->common_name) > 64))
		return lb_err_set(err, LB_EINVAL,
		    "names are limited to 64 characters");
	return 0;
}

static int
add_name(X509_NAME *n, int nid, const char *v)
{
	return X509_NAME_add_entry_by_NID(n, nid, MBSTRING_UTF8,
	    (const unsigned char *)v, -1, -1, 0) == 1 ? 0 : -1;
}

static X509_NAME *
build_subject(const struct ca_profile *p, const ca_request *req)
{
	X509_NAME *n = X509_NAME_new();
	char cn[160];
	int rc = -1;

	if (n == NULL)
		return NULL;
	if (ca_profile_is_subscriber(p)) {
		if (p->individual) {
			snprintf(cn, sizeof(cn), "%s %s", req->given_name,
			    req->surname);
			rc = add_name(n, NID_givenName, req->given_name) ||
			    add_name(n, NID_surname, req->surname) ||
			    add_name(n, NID_commonName, cn) ? -1 : 0;
		} else {
			rc = add_name(n, NID_commonName, req->email);
		}
	} else {
		rc = add_name(n, NID_commonName, req->common_name);
	}
	if (rc == -1) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

int
ca_general_names_add(GENERAL_NAMES *gens, int type, const char *value)
{
	GENERAL_NAME *g = NULL;
	ASN1_STRING *v = NULL;

	if (type == GEN_IPADD) {
		v = a2i_IPADDRESS(value);
	} else if ((v = ASN1_IA5STRING_new()) != NULL &&
	    ASN1_STRING_set(v, value, -1) != 1) {
		ASN1_STRING_free(v);
		v = NULL;
	}
	if (v == NULL || (g = GENERAL_NAME_new()) == NULL) {
		ASN1_STRING_free(v);
		return -1;
	}
	GENERAL_NAME_set0_value(g, type, v);
	if (sk_GENERAL_NAME_push(gens, g) <= 0) {
		GENERAL_NAME_free(g);
		return -1;
	}
	return 0;
}

static int
add_san(X509 *x, const struct ca_profile *p, const ca_request *req)
{
	GENERAL_NAMES *gens = NULL;
	int rc = -1;

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		goto out;
	if (req->email != NULL && p->kind != PROFILE_TLS_SERVER &&
	    p->kind != PROFILE_OCSP_SIGNING &&
	    ca_general_names_add(gens, GEN_EMAIL, req->email) == -1)
		goto out;
	if (p->kind == PROFILE_TLS_SERVER && ((req->dns_name != NULL &&
	    ca_general_names_add(gens, GEN_DNS, req->dns_name) == -1) ||
	    (req->ip != NULL &&
	    ca_general_names_add(gens, GEN_IPADD, req->ip) == -1)))
		goto out;
	if (sk_GENERAL_NAME_num(gens) == 0) {
		rc = 0;
		goto out;
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) != 1)
		goto out;
	rc = 0;
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

/* SKI method 1 of RFC 5280 4.2.1.2: SHA-1 of the subjectPublicKey bits. */
static int
add_ski(X509 *x)
{
	ASN1_OCTET_STRING *ski = NULL;
	const unsigned char *pk = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int pklen = 0, rc = -1;

	if (X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL,
	    X509_get_X509_PUBKEY(x)) != 1 ||
	    EVP_Digest(pk, (size_t)pklen, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    (ski = ASN1_OCTET_STRING_new()) == NULL ||
	    ASN1_OCTET_STRING_set(ski, md, (int)mdlen) != 1)
		goto out;
	if (X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, 0) == 1)
		rc = 0;
out:
	ASN1_OCTET_STRING_free(ski);
	return rc;
}

/*
 * The subject public key: with copy_spki, copied from req->spki (its
 * algorithm, parameters and key bits), otherwise encoded from req->pubkey.
 * A copied key leaves the certificate without a decoded key
 * (X509_get0_pubkey is NULL in OpenSSL 3.0): only for a certificate that
 * is encoded and sent away, as the signer process does.
 */
static int
set_pubkey(X509 *x, const ca_request *req, bool copy_spki)
{
	ASN1_OBJECT *obj = NULL, *aobj_copy = NULL;
	const ASN1_OBJECT *aobj;
	const unsigned char *pk;
	const void *pval;
	void *pval_copy = NULL;
	unsigned char *pk_copy = NULL;
	X509_ALGOR *alg;
	int pklen, ptype;

	if (!copy_spki || req->spki == NULL)
		return X509_set_pubkey(x, req->pubkey) == 1 ? 0 : -1;
	if (X509_PUBKEY_get0_param(&obj, &pk, &pklen, &alg, req->spki) != 1 ||
	    pklen <= 0)
		return -1;
	X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
	if ((aobj_copy = OBJ_dup(aobj)) == NULL)
		goto fail;
	if (ptype == V_ASN1_OBJECT)
		pval_copy = OBJ_dup(pval);
	else if (ptype == V_ASN1_SEQUENCE || ptype == V_ASN1_OCTET_STRING)
		pval_copy = ASN1_STRING_dup(pval);
	else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
		goto fail;
	if ((pval != NULL && ptype != V_ASN1_NULL && pval_copy == NULL) ||
	    (pk_copy = OPENSSL_memdup(pk, (size_t)pklen)) == NULL ||
	    X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), aobj_copy, ptype,
	    pval_copy, pk_copy, pklen) != 1)
		goto fail;
	return 0;
fail:
	ASN1_OBJECT_free(aobj_copy);
	if (ptype == V_ASN1_OBJECT)
		ASN1_OBJECT_free(pval_copy);
	else
		ASN1_STRING_free(pval_copy);
	OPENSSL_free(pk_copy);
	return -1;
}

int
ca_random_serial(X509 *x)
{
	unsigned char r[SERIAL_BYTES];
	BIGNUM *bn = NULL;
	int rc = -1;

	if (RAND_bytes(r, sizeof(r)) != 1)
		goto out;
	/* positive, and always 16 bytes long in DER */
	r[0] = (unsigned char)((r[0] & 0x7f) | 0x40);
	if ((bn = BN_bin2bn(r, sizeof(r), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto out;
	rc = 0;
out:
	BN_free(bn);
	return rc;
}

X509 *
ca_sign_cert(ca_ctx *ca, const ca_request *req, lb_err *err)
{
	return ca->signer != NULL ? ca_signer_sign_cert(ca, req, err) :
	    ca_build_cert(ca, req, false, err);
}

X509 *
ca_build_cert(ca_ctx *ca, const ca_request *req, bool copy_spki,
    lb_err *err)
{
	const struct ca_profile *p;
	X509 *x = NULL;
	X509_NAME *subj = NULL;
	enum ca_key_type kt = CA_KEY_NONE;
	time_t now = time(NULL);
	long days;
	int i;
	char names[256];

	if (ca->key == NULL) {
		lb_err_set(err, LB_EINTERNAL, "the CA key is not loaded");
		return NULL;
	}
	if ((p = ca_profile_get(ca, req->profile)) == NULL) {
		ca_profile_names(ca, names, sizeof(names));
		lb_err_set(err, LB_EINVAL, "unknown profile '%s' (profiles: %s)",
		    req->profile ? req->profile : "", names);
		return NULL;
	}
	if (check_request(p, req, &kt, err) == -1)
		return NULL;
	days = req->days > 0 ? req->days : p->days;
	if ((x = X509_new()) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 || ca_random_serial(x) == -1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
	    (subj = build_subject(p, req)) == NULL ||
	    X509_set_subject_name(x, subj) != 1 ||
	    X509_time_adj_ex(X509_getm_notBefore(x), 0, -BACKDATE_SECONDS,
	    &now) == NULL ||
	    /* inclusive count: notAfter - notBefore + 1 s == days */
	    X509_time_adj_ex(X509_getm_notAfter(x), (int)days,
	    -BACKDATE_SECONDS - 1, &now) == NULL ||
	    set_pubkey(x, req, copy_spki) == -1)
		goto fail;
	/* keyUsage right after basicConstraints, the profile's first */
	for (i = 0; i < sk_X509_EXTENSION_num(p->exts); i++) {
		if (X509_add_ext(x, sk_X509_EXTENSION_value(p->exts, i), -1) !=
		    1)
			goto fail;
		if (i == 0 && X509_add_ext(x, kt == CA_KEY_ECP256 ||
		    kt == CA_KEY_ECP384 ? p->ku_ec : p->ku_rsa, -1) != 1)
			goto fail;
	}
	if (add_ski(x) == -1 || add_san(x, p, req) == -1)
		goto fail;
	if (X509_sign(x, ca->key, ca_sig_md(ca->key)) <= 0)
		goto fail;
	X509_NAME_free(subj);
	return x;
fail:
	log_openssl("ca_sign_cert");
	lb_err_set(err, LB_EINTERNAL, "cannot build the certificate");
	X509_NAME_free(subj);
	X509_free(x);
	return NULL;
}

static char *
serial_hex(const X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *h = NULL, *s = NULL;

	if (bn != NULL && (h = BN_bn2hex(bn)) != NULL)
		s = strdup(h);
	OPENSSL_free(h);
	BN_free(bn);
	return s;
}

char *
ca_cert_serial(const X509 *x)
{
	return serial_hex(x);
}

char *
ca_name_string(const X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *s = NULL;
	long len;

	if (bio == NULL)
		return NULL;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 &
	    ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
	    (len = BIO_get_mem_data(bio, &data)) >= 0)
		s = strndup(data, (size_t)len);
	BIO_free(bio);
	return s;
}

int
ca_store_cert(sqlite3 *db, X509 *cert, const char *profile, const char *email,
    const char *actor, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char *serial = NULL, *subject = NULL, spki[65], detail[512];
	unsigned char *der = NULL;
	int len, rc = -1;

	if ((serial = serial_hex(cert)) == NULL ||
	    (subject = ca_name_string(X509_get_subject_name(cert))) == NULL ||
	    ca_spki_sha256(cert, spki) == -1 ||
	    (len = i2d_X509(cert, &der)) <= 0) {
		log_openssl("ca_store_cert");
		lb_err_set(err, LB_EINTERNAL, "cannot encode the certificate");
		goto out;
	}
	if (sqlite3_prepare_v2(db,
	    "INSERT INTO certificates (serial, profile, email, subject, "
	    "not_before, not_after, issued, spki_sha256, der) VALUES (?, ?, "
	    "?, ?, ?, ?, ?, ?, ?)", -1, &st, NULL) != SQLITE_OK) {
		core_db_fail(db, "store certificate", err);
		goto out;
	}
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, profile, -1, SQLITE_STATIC);
	if (email != NULL)
		sqlite3_bind_text(st, 3, email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, subject, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, core_asn1_time(X509_get0_notBefore(cert)));
	sqlite3_bind_int64(st, 6, core_asn1_time(X509_get0_notAfter(cert)));
	sqlite3_bind_int64(st, 7, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 8, spki, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 9, der, len, SQLITE_STATIC);
	if (core_db_exec(db, &st, "store certificate", err) == -1 ||
	    ca_key_use_claim(db, X509_get0_pubkey(cert), serial, profile,
	    err) == -1)
		goto out;
	snprintf(detail, sizeof(detail), "profile=%s email=%s subject=%s",
	    profile, email ? email : "-", subject);
	if (core_audit_append(db, actor, "cert.issue", serial, detail, err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	OPENSSL_free(der);
	free(subject);
	free(serial);
	return rc;
}

/* Storing a signed certificate: one transaction job. */
struct store_job {
	X509 *cert;
	const ca_request *req;
	const char *actor;
};

static int
store_job(sqlite3 *db, void *arg, lb_err *err)
{
	struct store_job *j = arg;

	return ca_store_cert(db, j->cert, j->req->profile, j->req->email,
	    j->actor, err);
}

/*
 * Signs req and stores the certificate: in a transaction of its own on db,
 * or with c (not NULL) in one of its group commits.  The certificate, or
 * NULL with err and nothing stored.
 */
static X509 *
sign_and_store(ca_ctx *ca, sqlite3 *db, core_committer *c,
    const ca_request *req, const char *actor, lb_err *err)
{
	struct store_job j;

	if ((j.cert = ca_sign_cert(ca, req, err)) == NULL)
		return NULL;
	j.req = req;
	j.actor = actor;
	if ((c != NULL ? core_committer_run(c, store_job, &j, err) :
	    core_tx_run(db, store_job, &j, err)) == -1) {
		X509_free(j.cert);
		return NULL;
	}
	return j.cert;
}

X509 *
ca_issue(ca_ctx *ca, sqlite3 *db, const ca_request *req, const char *actor,
    lb_err *err)
{
	const ca_profile *p = ca_profile_get(ca, req->profile);

	if (p != NULL && ca_profile_needs_escrow(p)) {
		lb_err_set(err, LB_EINVAL, "profile '%s' requires key escrow: "
		    "an encryption certificate is issued only together with "
		    "its archived private key (lockbox issue --keygen, or "
		    "--csr with --key); nothing was issued", req->profile);
		return NULL;
	}
	if (ca_key_use_check(db, req->pubkey, req->profile, err) == -1)
		return NULL;
	return sign_and_store(ca, db, NULL, req, actor, err);
}

/* ------------------------------------------------------------------ */
/* Issuance through a group committer                                  */

X509 *
ca_issue_grouped(ca_ctx *ca, core_committer *c, const ca_request *req,
    const char *actor, lb_err *err)
{
	const ca_profile *prof = ca_profile_get(ca, req->profile);

	if (prof != NULL && ca_profile_needs_escrow(prof)) {
		lb_err_set(err, LB_EINVAL, "profile '%s' requires key escrow",
		    req->profile);
		return NULL;
	}
	return sign_and_store(ca, NULL, c, req, actor, err);
}
