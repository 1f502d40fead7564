/*
 * ldap.c - the "ldap" publication target: the CRL in pub/ca.crl, the very
 * bytes the web serves, copied with the CA certificate to the CA's entry in
 * the directory (directory_publish_ca: one atomic modify) and the outcome
 * recorded in crl_publications.  The file is checked against the SHA-256
 * that crl_state holds, so the number recorded is the number published.
 * No transaction is open while the directory is talked to: a slow or dead
 * server must not hold up issuance, which needs the database.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crl/crl.h"

#define TARGET "ldap"

static int
sha256_hex(const unsigned char *buf, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	int i;

	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		return log_openssl("SHA-256 of the CRL");
	for (i = 0; i < 32; i++)
		snprintf(out + (size_t)i * 2, 3, "%02x", md[i]);
	return 0;
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
	unsigned char *der = NULL, *ca_der = NULL;
	size_t len = 0;
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
	if (sha256_hex(der, len, sha) == -1) {
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
	if (directory_publish_ca(d, ca_der, (size_t)ca_len, der, len, der,
	    len, NULL, 0, &perr) == -1)
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
	free(path);
	return rc;
}
