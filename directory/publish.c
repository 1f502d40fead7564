/*
 * publish.c - the CA's entry in the directory: created when absent (with
 * its parent ou), given the pkiCA / deltaCRL auxiliary classes it lacks,
 * and then updated in one modify that replaces the CA certificate and the
 * CRLs with the caller's DER, byte for byte.  Relying parties that follow
 * an ldap:/// CRL distribution point, and mail clients that look up CAs in
 * an address book, read them from here.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ldap.h>

#include "directory/directory_int.h"

#define A_CACERT "cACertificate;binary"
#define A_CRL "certificateRevocationList;binary"
#define A_ARL "authorityRevocationList;binary"
#define A_DELTA "deltaRevocationList;binary"

/* The object classes an existing CA entry has (of those we care about). */
struct ca_entry {
	bool exists;
	bool pkica;
	bool delta;
};

static bool
bv_is(const struct berval *bv, const char *s)
{
	return bv->bv_len == strlen(s) &&
	    strncasecmp(bv->bv_val, s, bv->bv_len) == 0;
}

/* Reads the CA entry's objectClass values, if the entry exists. */
static int
lookup(directory_ctx *d, struct ca_entry *ent, lb_err *err)
{
	char *attrs[] = { "objectClass", NULL };
	struct timeval tv = dir_timeout(d);
	LDAPMessage *res = NULL, *e;
	struct berval **vals = NULL;
	int lrc, i, rc = -1;

	memset(ent, 0, sizeof(*ent));
	lrc = ldap_search_ext_s(d->ld, d->ca_dn, LDAP_SCOPE_BASE,
	    "(objectClass=*)", attrs, 0, NULL, NULL, &tv, 1, &res);
	if (lrc == LDAP_NO_SUCH_OBJECT) {
		rc = 0;
		goto out;
	}
	if (lrc != LDAP_SUCCESS) {
		dir_fail(d, lrc, "search", d->ca_dn, err);
		goto out;
	}
	if ((e = ldap_first_entry(d->ld, res)) == NULL) {
		rc = 0;
		goto out;
	}
	ent->exists = true;
	vals = ldap_get_values_len(d->ld, e, "objectClass");
	for (i = 0; vals != NULL && vals[i] != NULL; i++) {
		if (bv_is(vals[i], "pkiCA"))
			ent->pkica = true;
		else if (bv_is(vals[i], "deltaCRL"))
			ent->delta = true;
	}
	rc = 0;
out:
	ldap_value_free_len(vals);
	ldap_msgfree(res);
	return rc;
}

/*
 * Adds the parent of the CA entry when it is an ou=... RDN: the common
 * layout cn=<CA>,ou=PKI,<base>.  An existing parent is fine.
 */
static int
add_parent(directory_ctx *d, LDAPDN ldn, lb_err *err)
{
	LDAPAVA *ava = ldn[1][0];
	char *parent = NULL, *ou = NULL;
	char *oc_vals[] = { "organizationalUnit", NULL };
	char *ou_vals[] = { NULL, NULL };
	LDAPMod oc = { LDAP_MOD_ADD, "objectClass", { oc_vals } };
	LDAPMod oum = { LDAP_MOD_ADD, "ou", { ou_vals } };
	LDAPMod *mods[] = { &oc, &oum, NULL };
	int lrc, rc = -1;

	if (ldap_dn2str(&ldn[1], &parent, LDAP_DN_FORMAT_LDAPV3) !=
	    LDAP_SUCCESS) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (ldn[1][1] != NULL || !bv_is(&ava->la_attr, "ou")) {
		lb_err_set(err, LB_ENOTFOUND, "directory %s: %s does not "
		    "exist: create it (lockbox creates only an ou=... parent)",
		    d->uri, parent);
		goto out;
	}
	if ((ou = strndup(ava->la_value.bv_val, ava->la_value.bv_len)) ==
	    NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	ou_vals[0] = ou;
	lrc = ldap_add_ext_s(d->ld, parent, mods, NULL, NULL);
	if (lrc != LDAP_SUCCESS && lrc != LDAP_ALREADY_EXISTS) {
		dir_fail(d, lrc, "add", parent, err);
		goto out;
	}
	if (lrc == LDAP_SUCCESS)
		log_info("directory %s: created %s", d->uri, parent);
	rc = 0;
out:
	free(ou);
	ldap_memfree(parent);
	return rc;
}

/*
 * Creates the CA entry with cn and the CA certificate.  Returns 0 when
 * created or when someone else created it meanwhile (*raced set).
 */
static int
add_entry(directory_ctx *d, const struct berval *ca, bool delta,
    bool *raced, lb_err *err)
{
	LDAPDN ldn = NULL;
	char *cn = NULL;
	char *oc_vals[] = { "cRLDistributionPoint", "pkiCA", NULL, NULL };
	char *cn_vals[] = { NULL, NULL };
	struct berval *ca_vals[] = { (struct berval *)ca, NULL };
	LDAPMod oc = { LDAP_MOD_ADD, "objectClass", { oc_vals } };
	LDAPMod cnm = { LDAP_MOD_ADD, "cn", { cn_vals } };
	LDAPMod cam = { LDAP_MOD_ADD | LDAP_MOD_BVALUES, A_CACERT, { 0 } };
	LDAPMod *mods[] = { &oc, &cnm, &cam, NULL };
	int lrc, rc = -1;

	*raced = false;
	cam.mod_bvalues = ca_vals;
	if (delta)
		oc_vals[2] = "deltaCRL";
	/* directory_open checked the DN: a parent and a single cn RDN. */
	if (ldap_str2dn(d->ca_dn, &ldn, LDAP_DN_FORMAT_LDAPV3) !=
	    LDAP_SUCCESS || ldn == NULL || ldn[0] == NULL || ldn[1] == NULL) {
		lb_err_set(err, LB_EINVAL, "directory: ca_dn '%s' is not a DN",
		    d->ca_dn);
		goto out;
	}
	if ((cn = strndup(ldn[0][0]->la_value.bv_val,
	    ldn[0][0]->la_value.bv_len)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	cn_vals[0] = cn;
	lrc = ldap_add_ext_s(d->ld, d->ca_dn, mods, NULL, NULL);
	if (lrc == LDAP_NO_SUCH_OBJECT) {
		if (add_parent(d, ldn, err) == -1)
			goto out;
		lrc = ldap_add_ext_s(d->ld, d->ca_dn, mods, NULL, NULL);
	}
	if (lrc == LDAP_ALREADY_EXISTS) {
		*raced = true;
		rc = 0;
		goto out;
	}
	if (lrc != LDAP_SUCCESS) {
		dir_fail(d, lrc, "add", d->ca_dn, err);
		goto out;
	}
	log_info("directory %s: created %s", d->uri, d->ca_dn);
	rc = 0;
out:
	free(cn);
	ldap_dnfree(ldn);
	return rc;
}

/*
 * The one modify: missing auxiliary classes, then every attribute replaced
 * (a replace with no values removes the attribute).
 */
static int
modify_entry(directory_ctx *d, const struct ca_entry *ent,
    struct berval *ca, struct berval *crl, struct berval *arl,
    struct berval *delta, lb_err *err)
{
	char *oc_vals[3] = { NULL, NULL, NULL };
	struct berval *ca_vals[] = { ca, NULL };
	struct berval *crl_vals[] = { crl, NULL };
	struct berval *arl_vals[] = { arl, NULL };
	struct berval *delta_vals[] = { delta, NULL };
	LDAPMod oc = { LDAP_MOD_ADD, "objectClass", { oc_vals } };
	LDAPMod cam = { LDAP_MOD_REPLACE | LDAP_MOD_BVALUES, A_CACERT, { 0 } };
	LDAPMod crlm = { LDAP_MOD_REPLACE | LDAP_MOD_BVALUES, A_CRL, { 0 } };
	LDAPMod arlm = { LDAP_MOD_REPLACE | LDAP_MOD_BVALUES, A_ARL, { 0 } };
	LDAPMod deltam = { LDAP_MOD_REPLACE | LDAP_MOD_BVALUES, A_DELTA,
	    { 0 } };
	LDAPMod *mods[7];
	int n = 0, k = 0, lrc;

	if (!ent->pkica)
		oc_vals[k++] = "pkiCA";
	if (delta != NULL && !ent->delta)
		oc_vals[k++] = "deltaCRL";
	if (k > 0)
		mods[n++] = &oc;
	cam.mod_bvalues = ca_vals;
	crlm.mod_bvalues = crl_vals;
	arlm.mod_bvalues = arl != NULL ? arl_vals : NULL;
	deltam.mod_bvalues = delta != NULL ? delta_vals : NULL;
	mods[n++] = &cam;
	mods[n++] = &crlm;
	mods[n++] = &arlm;
	mods[n++] = &deltam;
	mods[n] = NULL;
	lrc = ldap_modify_ext_s(d->ld, d->ca_dn, mods, NULL, NULL);
	if (lrc != LDAP_SUCCESS)
		return dir_fail(d, lrc, "modify", d->ca_dn, err);
	return 0;
}

struct publish_args {
	struct berval *ca, *crl, *arl, *delta;
};

static int
publish_once(directory_ctx *d, void *arg, lb_err *err)
{
	const struct publish_args *a = arg;
	struct ca_entry ent;
	bool raced = false;

	if (lookup(d, &ent, err) == -1)
		return -1;
	if (!ent.exists) {
		if (add_entry(d, a->ca, a->delta != NULL, &raced, err) == -1)
			return -1;
		if (raced) {
			if (lookup(d, &ent, err) == -1)
				return -1;
		} else {
			ent.exists = ent.pkica = true;
			ent.delta = a->delta != NULL;
		}
	}
	return modify_entry(d, &ent, a->ca, a->crl, a->arl, a->delta, err);
}

int
directory_publish_ca(directory_ctx *d, const unsigned char *ca_der,
    size_t ca_len, const unsigned char *crl_der, size_t crl_len,
    const unsigned char *arl_der, size_t arl_len,
    const unsigned char *delta_der, size_t delta_len, lb_err *err)
{
	struct berval ca = { ca_len, (char *)ca_der };
	struct berval crl = { crl_len, (char *)crl_der };
	struct berval arl = { arl_len, (char *)arl_der };
	struct berval delta = { delta_len, (char *)delta_der };
	struct berval *arlp = arl_der != NULL ? &arl : NULL;
	struct berval *deltap = delta_der != NULL ? &delta : NULL;
	struct publish_args args = { &ca, &crl, arlp, deltap };

	if (d->ca_dn == NULL)
		return lb_err_set(err, LB_EINVAL, "directory %s: no CA entry "
		    "configured: set ca_dn (or base_dn) in [directory]",
		    d->uri);
	if (ca_der == NULL || ca_len == 0 || crl_der == NULL ||
	    crl_len == 0 || (arlp != NULL && arl_len == 0) ||
	    (deltap != NULL && delta_len == 0))
		return lb_err_set(err, LB_EINVAL, "directory %s: nothing to "
		    "publish to %s (empty CA certificate or CRL)", d->uri,
		    d->ca_dn);
	return dir_run(d, publish_once, &args, err);
}
