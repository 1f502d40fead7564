/*
 * ldap.c - the "ldap" publication target: the CRL in pub/ca.crl, the very
 * bytes the web serves, copied with the CA certificate to the CA's entry in
 * the directory (directory_publish_ca: one atomic modify) and the outcome
 * recorded in crl_publications; pub/delta.crl, when delta CRLs are on, goes
 * with it as deltaRevocationList;binary.  The file is checked against the SHA-256
 * that crl_state holds, so the number recorded is the number published.
 * No transaction is open while the directory is talked to: a slow or dead
 * server must not hold up issuance, which needs the database.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crl/crl.h"

#define TARGET "ldap"

/*
 * pub/delta.crl when delta CRLs are on (crl_issue removes it when they are
 * off): *der NULL when absent.  Checked to carry CRL number, the one
 * issued with the full CRL being published.
 */
static int
read_delta(ca_ctx *ca, int64_t number, unsigned char **der, size_t *len,
    lb_err *err)
{
	X509_CRL *crl = NULL;
	ASN1_INTEGER *num = NULL;
	const unsigned char *p;
	char *path = NULL;
	int64_t n = 0;
	int rc = -1;

	*der = NULL;
	*len = 0;
	if ((path = core_path(ca_get0_dir(ca), CA_PUB_DIR "/"
	    CRL_DELTA_FILE)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (core_file_read(path, CRL_FILE_MAX, der, len, err) == -1) {
		if (err->code == LB_ENOTFOUND) {
			lb_err_clear(err);
			rc = 0;
		}
		goto out;
	}
	p = *der;
	if ((crl = d2i_X509_CRL(NULL, &p, (long)*len)) == NULL ||
	    (num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL,
	    NULL)) == NULL || ASN1_INTEGER_get_int64(&n, num) != 1 ||
	    n != number) {
		/* a CRL being issued right now: the next attempt takes it */
		lb_err_set(err, LB_ECONFLICT, "%s is not the delta CRL %"
		    PRId64 " (a newer CRL is being issued?): retrying", path,
		    number);
		goto out;
	}
	rc = 0;
out:
	if (rc == -1) {
		free(*der);
		*der = NULL;
		*len = 0;
	}
	ASN1_INTEGER_free(num);
	X509_CRL_free(crl);
	free(path);
	return rc;
}

struct ldap_state {
	int64_t number;
	bool found;
};

static int
find_ldap(const crl_publication *p, void *arg)
{
	struct ldap_state *s = arg;

	if (strcmp(p->target, TARGET) != 0)
		return 0;
	s->number = p->number;
	s->found = true;
	return 1;
}

int
crl_ldap_pending(sqlite3 *db, bool *pending, lb_err *err)
{
	struct ldap_state s = { 0, false };
	crl_info ci;

	*pending = false;
	if (crl_current(db, &ci, err) == -1 ||
	    crl_publication_foreach(db, find_ldap, &s, err) == -1)
		return -1;
	*pending = ci.number != 0 && s.number != ci.number;
	return 0;
}

int
crl_publish_ldap(ca_ctx *ca, sqlite3 *db, directory_ctx *d, time_t now,
    int64_t *number, lb_err *err)
{
	crl_info ci;
	unsigned char *der = NULL, *ca_der = NULL, *delta = NULL;
	size_t len = 0, delta_len = 0;
	char *path = NULL, sha[65];
	int ca_len, rc = -1;
	lb_err perr;

	lb_err_clear(&perr);
	if (number != NULL)
		*number = 0;
	if (crl_current(db, &ci, err) == -1)
		goto out;
	if (ci.number == 0) {
		lb_err_set(err, LB_ENOTFOUND, "no CRL issued yet: issue one "
		    "with 'lockbox crl'");
		goto out;
	}
	if ((path = core_path(ca_get0_dir(ca), CA_PUB_DIR "/" CRL_FILE)) ==
	    NULL) {
		lb_err_set(&perr, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	if (core_file_read(path, CRL_FILE_MAX, &der, &len, &perr) == -1)
		goto fail;
	if (core_sha256_hex(der, len, sha) == -1) {
		lb_err_set(&perr, LB_EINTERNAL, "cannot hash %s", path);
		goto fail;
	}
	if (strcmp(sha, ci.sha256) != 0) {
		/* a CRL being issued right now: the next attempt takes it */
		lb_err_set(&perr, LB_ECONFLICT, "%s is not CRL %" PRId64
		    " (a newer CRL is being issued?): retrying", path,
		    ci.number);
		goto fail;
	}
	if ((ca_len = i2d_X509(ca_get0_cert(ca), &ca_der)) <= 0) {
		log_openssl("i2d_X509");
		lb_err_set(&perr, LB_EINTERNAL, "cannot encode the CA "
		    "certificate");
		goto fail;
	}
	if (read_delta(ca, ci.number, &delta, &delta_len, &perr) == -1)
		goto fail;
	if (directory_publish_ca(d, ca_der, (size_t)ca_len, der, len, der,
	    len, delta, delta_len, &perr) == -1)
		goto fail;
	if (crl_publication_record(db, TARGET, ci.number, now, NULL, err) ==
	    -1)
		goto out;
	if (number != NULL)
		*number = ci.number;
	rc = 0;
	goto out;
fail:
	/* the publication's error matters more than failing to record it */
	crl_publication_record(db, TARGET, 0, now, perr.msg, NULL);
	lb_err_set(err, perr.code, "%s", perr.msg);
out:
	OPENSSL_free(ca_der);
	free(der);
	free(delta);
	free(path);
	return rc;
}
