/*
 * profile.c - certificate profiles: the built-in defaults (S/MIME BR
 * strict for subscribers), overridden per profile by a [profile.NAME]
 * section of lockbox.conf.  Every extension that does not depend on the
 * subject is DER-encoded once here, at ca_open, so that issuing a
 * certificate only copies them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"

/* CA/Browser Forum S/MIME BR reserved policy identifiers, strict. */
#define POLICY_MAILBOX_STRICT    "2.23.140.1.5.1.3"
#define POLICY_INDIVIDUAL_STRICT "2.23.140.1.5.4.3"
/* Microsoft's key recovery agent EKU. */
#define EKU_KEY_RECOVERY_AGENT   "1.3.6.1.4.1.311.21.6"

#define KT(t) (1u << (t))
#define KT_ALL (KT(CA_KEY_RSA2048) | KT(CA_KEY_RSA3072) | KT(CA_KEY_RSA4096) | \
    KT(CA_KEY_ECP256) | KT(CA_KEY_ECP384))
#define KT_RSA3072UP (KT(CA_KEY_RSA3072) | KT(CA_KEY_RSA4096))

static const struct {
	const char *name;
	enum ca_profile_kind kind;
	unsigned key_types;
	long days;
} builtin[] = {
	{ "smime-sign", PROFILE_SMIME_SIGN, KT_ALL, 365 },
	{ "smime-enc", PROFILE_SMIME_ENC, KT_ALL, 365 },
	{ "recovery-agent", PROFILE_RECOVERY_AGENT, KT_RSA3072UP, 730 },
	{ "operator", PROFILE_OPERATOR, KT_ALL, 365 },
	{ "tls-server", PROFILE_TLS_SERVER, KT_ALL, 365 },
	{ "ocsp-signing", PROFILE_OCSP_SIGNING, KT_ALL, 7 },
};

static int
add_ext(STACK_OF(X509_EXTENSION) *sk, X509V3_CTX *ctx, int nid,
    const char *value, lb_err *err)
{
	X509_EXTENSION *ext;

	if ((ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value)) == NULL) {
		log_openssl("X509V3_EXT_conf_nid");
		return lb_err_set(err, LB_EINVAL,
		    "cannot encode extension %s = %s", OBJ_nid2sn(nid), value);
	}
	if (sk_X509_EXTENSION_push(sk, ext) <= 0) {
		X509_EXTENSION_free(ext);
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	}
	return 0;
}

/* certificatePolicies with one bare policy OID (no qualifiers). */
static int
add_policy(STACK_OF(X509_EXTENSION) *sk, const char *oid, lb_err *err)
{
	CERTIFICATEPOLICIES *pols = NULL;
	POLICYINFO *pi = NULL;
	X509_EXTENSION *ext = NULL;
	int rc = -1;

	if ((pols = sk_POLICYINFO_new_null()) == NULL ||
	    (pi = POLICYINFO_new()) == NULL)
		goto out;
	ASN1_OBJECT_free(pi->policyid);
	if ((pi->policyid = OBJ_txt2obj(oid, 1)) == NULL ||
	    sk_POLICYINFO_push(pols, pi) <= 0)
		goto out;
	pi = NULL;
	if ((ext = X509V3_EXT_i2d(NID_certificate_policies, 0, pols)) == NULL ||
	    sk_X509_EXTENSION_push(sk, ext) <= 0)
		goto out;
	ext = NULL;
	rc = 0;
out:
	if (rc == -1) {
		log_openssl("certificatePolicies");
		lb_err_set(err, LB_EINTERNAL, "cannot encode policy %s", oid);
	}
	X509_EXTENSION_free(ext);
	POLICYINFO_free(pi);
	CERTIFICATEPOLICIES_free(pols);
	return rc;
}

static X509_EXTENSION *
ku(const char *value, lb_err *err)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
	    value);

	if (ext == NULL) {
		log_openssl("X509V3_EXT_conf_nid keyUsage");
		lb_err_set(err, LB_EINTERNAL, "cannot encode keyUsage %s",
		    value);
	}
	return ext;
}

static int
parse_key_types(const char *list, unsigned *out, const char *section,
    lb_err *err)
{
	char buf[256], *tok, *save = NULL;
	unsigned m = 0;
	enum ca_key_type t;

	if (strlen(list) >= sizeof(buf))
		return lb_err_set(err, LB_EINVAL,
		    "lockbox.conf: [%s] key_types is too long", section);
	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ", ", &save); tok != NULL;
	    tok = strtok_r(NULL, ", ", &save)) {
		if ((t = ca_key_type_parse(tok)) == CA_KEY_NONE)
			return lb_err_set(err, LB_EINVAL,
			    "lockbox.conf: [%s] key_types: unknown key type "
			    "'%s' (rsa-2048, rsa-3072, rsa-4096, ec-p256, "
			    "ec-p384)", section, tok);
		m |= KT(t);
	}
	if (m == 0)
		return lb_err_set(err, LB_EINVAL,
		    "lockbox.conf: [%s] key_types is empty", section);
	*out = m;
	return 0;
}

/* Reads the [profile.NAME] overrides into p. */
static int
profile_conf(struct ca_ctx *ca, struct ca_profile *p, lb_err *err)
{
	char section[64];
	const char *v;
	long max = p->kind == PROFILE_SMIME_SIGN || p->kind == PROFILE_SMIME_ENC ?
	    CA_MAX_SUBSCRIBER_DAYS : 3650;

	snprintf(section, sizeof(section), "profile.%s", p->name);
	if (core_conf_get_long(ca->conf, section, "validity_days", p->days, 1,
	    max, &p->days, err) == -1)
		return -1;
	if (core_conf_get_bool(ca->conf, section, "non_repudiation", true,
	    &p->non_repudiation, err) == -1)
		return -1;
	v = core_conf_get(ca->conf, section, "validation", "mailbox");
	if (strcmp(v, "individual") == 0)
		p->individual = true;
	else if (strcmp(v, "mailbox") != 0)
		return lb_err_set(err, LB_EINVAL,
		    "lockbox.conf: [%s] validation = '%s': use mailbox or "
		    "individual", section, v);
	if (core_conf_get_bool(ca->conf, section, "cdp_ldap", false,
	    &p->cdp_ldap, err) == -1)
		return -1;
	if ((v = core_conf_get(ca->conf, section, "key_types", NULL)) != NULL) {
		unsigned m = 0;

		if (parse_key_types(v, &m, section, err) == -1)
			return -1;
		/* a config may narrow a profile's key types, never widen */
		if ((m & ~p->key_types) != 0)
			return lb_err_set(err, LB_EINVAL,
			    "lockbox.conf: [%s] key_types names a type this "
			    "profile never allows", section);
		p->key_types = m;
	}
	return 0;
}

/*
 * The CA entry's DN as the directory module computes it: [directory]
 * ca_dn, else cn=<[ca] name, RFC 4514-escaped>,ou=PKI,<[directory] base_dn>.
 * ca may not call directory/, so the rule is repeated here, with the one
 * escaping both use (core_dn_escape).  Caller frees;
 * NULL with err when neither is configured.
 */
static char *
ca_entry_dn(const struct ca_ctx *ca, const char *section, lb_err *err)
{
	const char *dn, *base, *name;
	char *out = NULL, *cn;
	size_t cap;

	dn = core_conf_get(ca->conf, "directory", "ca_dn", NULL);
	if (dn != NULL && dn[0] != '\0') {
		if ((out = strdup(dn)) == NULL)
			lb_err_set(err, LB_EINTERNAL, "out of memory");
		return out;
	}
	base = core_conf_get(ca->conf, "directory", "base_dn", NULL);
	name = core_conf_get(ca->conf, "ca", "name", NULL);
	if (base == NULL || base[0] == '\0' || name == NULL ||
	    name[0] == '\0') {
		lb_err_set(err, LB_EINVAL, "lockbox.conf: [%s] cdp_ldap = yes "
		    "needs the CA's directory entry: set base_dn (or ca_dn) in "
		    "[directory], or turn cdp_ldap off", section);
		return NULL;
	}
	if (strlen(name) > 1024 || strlen(base) > 4096) {
		lb_err_set(err, LB_EINVAL, "lockbox.conf: [ca] name or "
		    "[directory] base_dn is too long for a DN");
		return NULL;
	}
	if ((cn = core_dn_escape(name)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	cap = strlen(cn) + strlen(base) + 16;
	if ((out = malloc(cap)) == NULL)
		lb_err_set(err, LB_EINTERNAL, "out of memory");
	else
		snprintf(out, cap, "cn=%s,ou=PKI,%s", cn, base);
	free(cn);
	return out;
}

/*
 * The RFC 4516 URL of the CA entry's CRL: ldap:///<dn>?certificate
 * RevocationList;binary, the DN percent-encoded except for unreserved
 * characters, '=' and ','.  Caller frees; NULL with err.
 */
static char *
ldap_crl_url(const struct ca_ctx *ca, const char *section, lb_err *err)
{
	static const char pre[] = "ldap:///", post[] =
	    "?certificateRevocationList;binary";
	char *dn, *url = NULL;
	size_t i, o, cap;

	if ((dn = ca_entry_dn(ca, section, err)) == NULL)
		return NULL;
	cap = sizeof(pre) + strlen(dn) * 3 + sizeof(post);
	if ((url = malloc(cap)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	o = (size_t)snprintf(url, cap, "%s", pre);
	for (i = 0; dn[i] != '\0'; i++) {
		unsigned char c = (unsigned char)dn[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~=,", c) != NULL)
			url[o++] = (char)c;
		else
			o += (size_t)snprintf(url + o, cap - o, "%%%02X", c);
	}
	snprintf(url + o, cap - o, "%s", post);
out:
	free(dn);
	return url;
}

/*
 * crlDistributionPoints with one DistributionPoint whose fullName holds
 * the HTTP URI and then the LDAP URL (cdp_ldap = yes).
 */
static int
add_cdp_ldap(struct ca_ctx *ca, STACK_OF(X509_EXTENSION) *sk,
    const char *section, lb_err *err)
{
	CRL_DIST_POINTS *cdps = NULL;
	DIST_POINT *dp = NULL;
	X509_EXTENSION *ext = NULL;
	char *http = NULL, *ldap = NULL;
	size_t n;
	int rc = -1;

	if ((ldap = ldap_crl_url(ca, section, err)) == NULL)
		goto out;
	n = strlen(ca->base_url) + sizeof("/ca.crl");
	if ((http = malloc(n)) == NULL)
		goto oom;
	snprintf(http, n, "%s/ca.crl", ca->base_url);
	if ((cdps = sk_DIST_POINT_new_null()) == NULL ||
	    (dp = DIST_POINT_new()) == NULL ||
	    (dp->distpoint = DIST_POINT_NAME_new()) == NULL)
		goto oom;
	dp->distpoint->type = 0;    /* fullName */
	if ((dp->distpoint->name.fullname = GENERAL_NAMES_new()) == NULL ||
	    ca_general_names_add(dp->distpoint->name.fullname, GEN_URI,
	    http) == -1 ||
	    ca_general_names_add(dp->distpoint->name.fullname, GEN_URI,
	    ldap) == -1)
		goto oom;
	if (sk_DIST_POINT_push(cdps, dp) <= 0)
		goto oom;
	dp = NULL;
	if ((ext = X509V3_EXT_i2d(NID_crl_distribution_points, 0, cdps)) ==
	    NULL) {
		log_openssl("X509V3_EXT_i2d");
		lb_err_set(err, LB_EINVAL, "cannot encode crlDistributionPoints "
		    "with %s", ldap);
		goto out;
	}
	if (sk_X509_EXTENSION_push(sk, ext) <= 0)
		goto oom;
	ext = NULL;
	rc = 0;
	goto out;
oom:
	lb_err_set(err, LB_EINTERNAL, "out of memory");
out:
	X509_EXTENSION_free(ext);
	DIST_POINT_free(dp);
	CRL_DIST_POINTS_free(cdps);
	free(http);
	free(ldap);
	return rc;
}

static int
profile_build(struct ca_ctx *ca, struct ca_profile *p, lb_err *err)
{
	X509V3_CTX ctx;
	STACK_OF(X509_EXTENSION) *sk;
	char cdp[1024], aia[2048], section[64];
	bool subscriber = p->kind == PROFILE_SMIME_SIGN ||
	    p->kind == PROFILE_SMIME_ENC;

	if ((p->exts = sk = sk_X509_EXTENSION_new_null()) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, NULL, 0);
	snprintf(cdp, sizeof(cdp), "URI:%s/ca.crl", ca->base_url);
	snprintf(aia, sizeof(aia), "OCSP;URI:%s/ocsp,caIssuers;URI:%s/ca.crt",
	    ca->base_url, ca->base_url);

	if (add_ext(sk, NULL, NID_basic_constraints, "critical,CA:FALSE",
	    err) == -1)
		return -1;
	switch (p->kind) {
	case PROFILE_SMIME_SIGN:
		p->ku_rsa = ku(p->non_repudiation ?
		    "critical,digitalSignature,nonRepudiation" :
		    "critical,digitalSignature", err);
		p->ku_ec = p->ku_rsa != NULL ? X509_EXTENSION_dup(p->ku_rsa) :
		    NULL;
		if (add_ext(sk, NULL, NID_ext_key_usage, "emailProtection",
		    err) == -1)
			return -1;
		break;
	case PROFILE_SMIME_ENC:
		p->ku_rsa = ku("critical,keyEncipherment", err);
		p->ku_ec = ku("critical,keyAgreement", err);
		if (add_ext(sk, NULL, NID_ext_key_usage, "emailProtection",
		    err) == -1)
			return -1;
		break;
	case PROFILE_RECOVERY_AGENT:
		p->ku_rsa = ku("critical,digitalSignature,keyEncipherment", err);
		p->ku_ec = X509_EXTENSION_dup(p->ku_rsa);
		if (add_ext(sk, NULL, NID_ext_key_usage,
		    "clientAuth," EKU_KEY_RECOVERY_AGENT, err) == -1)
			return -1;
		break;
	case PROFILE_OPERATOR:
		p->ku_rsa = ku("critical,digitalSignature", err);
		p->ku_ec = X509_EXTENSION_dup(p->ku_rsa);
		if (add_ext(sk, NULL, NID_ext_key_usage, "clientAuth",
		    err) == -1)
			return -1;
		break;
	case PROFILE_TLS_SERVER:
		p->ku_rsa = ku("critical,digitalSignature,keyEncipherment", err);
		p->ku_ec = ku("critical,digitalSignature", err);
		if (add_ext(sk, NULL, NID_ext_key_usage, "serverAuth",
		    err) == -1)
			return -1;
		break;
	case PROFILE_OCSP_SIGNING:
		p->ku_rsa = ku("critical,digitalSignature", err);
		p->ku_ec = X509_EXTENSION_dup(p->ku_rsa);
		if (add_ext(sk, NULL, NID_ext_key_usage, "OCSPSigning",
		    err) == -1 ||
		    add_ext(sk, NULL, NID_id_pkix_OCSP_noCheck, "yes",
		    err) == -1)
			return -1;
		break;
	}
	if (p->ku_rsa == NULL || p->ku_ec == NULL)
		return lb_err_set(err, LB_EINTERNAL, "cannot encode keyUsage");
	if (subscriber && add_policy(sk, p->individual ?
	    POLICY_INDIVIDUAL_STRICT : POLICY_MAILBOX_STRICT, err) == -1)
		return -1;
	if (add_ext(sk, &ctx, NID_authority_key_identifier, "keyid:always",
	    err) == -1)
		return -1;
	/* an OCSP responder's own certificate is not checked for revocation */
	if (p->kind != PROFILE_OCSP_SIGNING) {
		snprintf(section, sizeof(section), "profile.%s", p->name);
		if ((p->cdp_ldap ? add_cdp_ldap(ca, sk, section, err) :
		    add_ext(sk, NULL, NID_crl_distribution_points, cdp,
		    err)) == -1 ||
		    add_ext(sk, NULL, NID_info_access, aia, err) == -1)
			return -1;
	}
	return 0;
}

int
ca_profiles_load(struct ca_ctx *ca, lb_err *err)
{
	size_t i;
	struct ca_profile *p;

	for (i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
		p = &ca->profiles[ca->nprofiles++];
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", builtin[i].name);
		p->kind = builtin[i].kind;
		p->days = builtin[i].days;
		p->key_types = builtin[i].key_types;
		p->non_repudiation = true;
		if (profile_conf(ca, p, err) == -1 ||
		    profile_build(ca, p, err) == -1)
			return -1;
	}
	ERR_clear_error();
	return 0;
}

void
ca_profiles_free(struct ca_ctx *ca)
{
	int i;

	for (i = 0; i < ca->nprofiles; i++) {
		sk_X509_EXTENSION_pop_free(ca->profiles[i].exts,
		    X509_EXTENSION_free);
		X509_EXTENSION_free(ca->profiles[i].ku_rsa);
		X509_EXTENSION_free(ca->profiles[i].ku_ec);
	}
	ca->nprofiles = 0;
}

const ca_profile *
ca_profile_get(const ca_ctx *ca, const char *name)
{
	int i;

	for (i = 0; name != NULL && i < ca->nprofiles; i++)
		if (strcmp(ca->profiles[i].name, name) == 0)
			return &ca->profiles[i];
	return NULL;
}

const char *
ca_profile_name(const ca_profile *p)
{
	return p->name;
}

bool
ca_profile_is_subscriber(const ca_profile *p)
{
	return p->kind == PROFILE_SMIME_SIGN || p->kind == PROFILE_SMIME_ENC;
}

bool
ca_profile_needs_escrow(const ca_profile *p)
{
	return p->kind == PROFILE_SMIME_ENC;
}

bool
ca_profile_name_escrowed(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < sizeof(builtin) / sizeof(builtin[0]);
	    i++)
		if (strcmp(builtin[i].name, name) == 0)
			return builtin[i].kind == PROFILE_SMIME_ENC;
	return false;
}

unsigned
ca_profile_key_types(const ca_profile *p)
{
	return p->key_types;
}

long
ca_profile_days(const ca_profile *p)
{
	return p->days;
}

bool
ca_profile_individual(const ca_profile *p)
{
	return p->individual;
}

void
ca_profile_names(const ca_ctx *ca, char *out, size_t outlen)
{
	size_t used = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < ca->nprofiles && used < outlen; i++)
		used += (size_t)snprintf(out + used, outlen - used, "%s%s",
		    i ? ", " : "", ca->profiles[i].name);
}
