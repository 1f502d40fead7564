/*
 * init.c - creating a CA's state directory (`lockbox init`) and finishing a
 * subordinate CA once its parent signed it (`lockbox ca install`): config,
 * database, encrypted CA key, root certificate or CSR, TLS certificate for
 * the daemon, the first administrator credential, and pub/ca.crt.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"

#define CA_PASS_LEN 43 /* 258 bits of base64url */

/*
 * A value as NCONF reads it back literally: '$' would start a variable
 * reference, '#' a comment, and quotes and backslashes are syntax, so each
 * gets a backslash.  Malloc'ed; NULL on allocation failure.
 */
static char *
conf_escape(const char *v)
{
	char *s, *d;

	if (v == NULL)
		v = "";
	if ((s = d = malloc(strlen(v) * 2 + 1)) == NULL)
		return NULL;
	for (; *v != '\0'; v++) {
		if (strchr("\\\"'$#", *v) != NULL)
			*d++ = '\\';
		*d++ = *v;
	}
	*d = '\0';
	return s;
}

/* lockbox.conf as init writes it: name, base_url, listen, http_listen. */
#define CONF_TEMPLATE \
"# lockbox.conf - configuration of this lockbox CA, in OpenSSL's config\n" \
"# syntax.  Relative paths are relative to this directory.  Every setting\n" \
"# is listed with its default; restart `lockbox serve` after a change.\n" \
"\n" \
"[ca]\n" \
"# Display name; the common name of the CA certificate (set at init).\n" \
"name = %s\n" \
"# The CA certificate chain (PEM, this CA first), the CA key (encrypted\n" \
"# PKCS#8 PEM) and the file holding the key's passphrase (0600).\n" \
"cert = " CA_CERT_FILE "\n" \
"key = " CA_KEY_FILE "\n" \
"key_pass_file = " CA_KEY_PASS_FILE "\n" \
"# Base URL of the plain-HTTP listener as relying parties reach it.  The\n" \
"# CRL distribution point (BASE/ca.crl) and the AIA OCSP (BASE/ocsp) and\n" \
"# caIssuers (BASE/ca.crt) URLs of every certificate are built from it.\n" \
"base_url = %s\n" \
"# Role separation: one person (e-mail) may not hold both an issuing role\n" \
"# (admin, officer) and a recovery role (recovery-officer, recovery-agent).\n" \
"role_separation = yes\n" \
"\n" \
"[server]\n" \
"# HTTPS listener for operators and enrollment, and plain-HTTP listener\n" \
"# for relying parties (CA certificate, CRLs, OCSP).\n" \
"listen = %s\n" \
"http_listen = %s\n" \
"# The daemon's TLS certificate chain and key (issued at init).\n" \
"tls_cert = " CA_TLS_CERT_FILE "\n" \
"tls_key = " CA_TLS_KEY_FILE "\n" \
"# Worker threads per listener.\n" \
"threads = 16\n" \
"# Largest request body accepted, in bytes (larger: 413).\n" \
"body_limit = 65536\n" \
"# Seconds of inactivity after which a connection is closed.\n" \
"connection_timeout = 30\n" \
"# Concurrent connections per listener, and per client address.\n" \
"connection_limit = 256\n" \
"per_ip_connection_limit = 64\n" \
"# Started as root: the account the daemon drops to once its listeners are\n" \
"# open (its signer process, holding the CA key, drops too).  This\n" \
"# directory, lockbox.db and pub/ must then belong to it, and ca.key and\n" \
"# ca.key.pass to root, so that the network process cannot read them.\n" \
"# user = lockbox\n" \
"# Processes holding the CA key, each signing one request at a time\n" \
"# (default: one a core, up to 4).\n" \
"# signers = 2\n" \
"\n" \
"[crl]\n" \
"# thisUpdate backdated by skew; nextUpdate = thisUpdate + validity; a\n" \
"# new CRL every interval and coalesce seconds after revocations.\n" \
"# skew = 10m\n" \
"# validity = 7d\n" \
"# interval = 24h\n" \
"# coalesce = 2s\n" \
"# yes: with every full CRL, also a delta CRL (BASE/delta.crl, LDAP\n" \
"# deltaRevocationList;binary) listing what was revoked since the previous\n" \
"# full CRL, advertised by freshestCRL on the full CRL.\n" \
"# delta = no\n" \
"\n" \
"[ocsp]\n" \
"# How long an OCSP answer stays valid (nextUpdate - thisUpdate; keep it\n" \
"# no longer than the CRL's).  The responder signs with a delegated\n" \
"# certificate (profile ocsp-signing, ocsp.pem/ocsp.key) renewed when half\n" \
"# its validity is gone.\n" \
"validity = 1h\n" \
"\n" \
"# LDAP directory (OpenLDAP or any LDAPv3 server): each CRL, with the CA\n" \
"# certificate, is published to the CA's entry (certificateRevocationList\n" \
"# and authorityRevocationList;binary, cACertificate;binary), created if\n" \
"# absent.  Off while uri is unset: uncomment the section to turn it on.\n" \
"# [directory]\n" \
"# One ldap://, ldaps:// or ldapi:// URI.\n" \
"# uri = ldap://ldap.example.org/\n" \
"# DN to bind as (unset: anonymous), and the file (mode 0600) holding its\n" \
"# password, read at each bind.\n" \
"# bind_dn = cn=lockbox,ou=Services,dc=example,dc=org\n" \
"# bind_password_file = ldap.pass\n" \
"# StartTLS on an ldap:// URI; the server's certificate is verified\n" \
"# against ca_file (PEM; unset: the system's trust store).\n" \
"# starttls = no\n" \
"# ca_file =\n" \
"# yes lets the bind password travel without TLS to a host other than the\n" \
"# loopback.\n" \
"# plaintext = no\n" \
"# The directory's base and the CA's entry (default cn=<[ca] name>,ou=PKI,\n" \
"# <base_dn>; the ou is created if absent).\n" \
"# base_dn = dc=example,dc=org\n" \
"# ca_dn =\n" \
"# Seconds an operation, and a connect, may take.\n" \
"# timeout = 10s\n" \
"# network_timeout = 5s\n" \
"# After a failed publication, wait retry, doubling up to retry_max; the\n" \
"# web CRL is never held up by the directory.\n" \
"# retry = 5s\n" \
"# retry_max = 5m\n" \
"# Enrollment: where and how users are found (%%s: the login, escaped).\n" \
"# user_base = <base_dn>\n" \
"# user_filter = (&(objectClass=inetOrgPerson)(|(uid=%%s)(mail=%%s)))\n" \
"# mail_attribute = mail\n" \
"# group_attribute = member\n" \
"\n" \
"[enroll]\n" \
"# EST enrollment (/.well-known/est/) by directory password, one-time\n" \
"# token or the current signing certificate.  Failed log-ins per user and\n" \
"# per address before the backoff (1 s doubling, at most 15 min) starts.\n" \
"# fail_limit = 5\n" \
"# Keys of each serverkeygen type kept ready in memory (0: generate on\n" \
"# demand).\n" \
"# keypool = 8\n" \
"# yes: also publish smime-sign certificates to the user's directory entry\n" \
"# (smime-enc certificates always are, when [directory] is set).\n" \
"# publish_signing = no\n" \
"\n" \
"# Certificate profiles.  A section may narrow key_types and shorten\n" \
"# validity_days; subscriber profiles (smime-*) follow the CA/Browser\n" \
"# Forum S/MIME Baseline Requirements, strict generation, and never exceed\n" \
"# 825 days.  validation = mailbox (subject CN = the e-mail address) or\n" \
"# individual (subject givenName, surname, CN \"Given Surname\").\n"

/* ... and its profiles, after the rest. */
static const char conf_profiles[] =
"[profile.smime-sign]\n"
"validity_days = 365\n"
"validation = mailbox\n"
"key_types = rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384\n"
"# Add nonRepudiation to digitalSignature in keyUsage.\n"
"non_repudiation = yes\n"
"# cdp_ldap = yes adds ldap:///<CA entry DN>?certificateRevocationList;binary\n"
"# to the CRL distribution point, after the HTTP URI; it needs [directory]\n"
"# base_dn (or ca_dn).  Off by default: the strict S/MIME BR allow only HTTP.\n"
"# cdp_ldap = no\n"
"# Enrollment: directory groups entitled to the profile (DNs separated\n"
"# by ';'; unset: every directory user), approval = manual to hold each\n"
"# enrollment for 'lockbox request approve', and when renewal is due: at\n"
"# renew_percent of the lifetime or renew_days before the end, whichever\n"
"# comes first.  These apply to smime-enc as well, which also has\n"
"# keygen_type, the type of the keys serverkeygen makes.\n"
"# groups = cn=mail-users,ou=Groups,dc=example,dc=org\n"
"# approval = auto\n"
"# renew_percent = 80\n"
"# renew_days = 30\n"
"\n"
"[profile.smime-enc]\n"
"validity_days = 365\n"
"validation = mailbox\n"
"key_types = rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384\n"
"# cdp_ldap = yes adds ldap:///<CA entry DN>?certificateRevocationList;binary\n"
"# to the CRL distribution point, after the HTTP URI; it needs [directory]\n"
"# base_dn (or ca_dn).  Off by default: the strict S/MIME BR allow only HTTP.\n"
"# cdp_ldap = no\n"
"# keygen_type = rsa-3072\n"
"\n"
"[profile.recovery-agent]\n"
"validity_days = 730\n"
"key_types = rsa-3072, rsa-4096\n"
"\n"
"[profile.operator]\n"
"validity_days = 365\n"
"key_types = rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384\n"
"\n"
"[profile.tls-server]\n"
"validity_days = 365\n"
"key_types = rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384\n"
"\n"
"[profile.ocsp-signing]\n"
"validity_days = 7\n"
"key_types = rsa-2048, rsa-3072, rsa-4096, ec-p256, ec-p384\n";

char *
ca_conf_template(const ca_init_opts *o)
{
	char *s = NULL, *name = conf_escape(o->name),
	    *url = conf_escape(o->base_url), *listen = conf_escape(o->listen),
	    *http = conf_escape(o->http_listen);

	if (name == NULL || url == NULL || listen == NULL || http == NULL)
		goto out;
	if (asprintf(&s,
CONF_TEMPLATE "%s",
	    name, url, listen, http, conf_profiles) == -1)
		s = NULL;
out:
	free(name);
	free(url);
	free(listen);
	free(http);
	return s;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int rc = -1;

	if (ext != NULL && X509_add_ext(x, ext, -1) == 1)
		rc = 0;
	X509_EXTENSION_free(ext);
	return rc;
}

X509 *
ca_self_sign(EVP_PKEY *key, const char *name, int days, lb_err *err)
{
	X509 *x = NULL;
	X509_NAME *n = NULL;
	X509V3_CTX ctx;

	if ((x = X509_new()) == NULL || (n = X509_NAME_new()) == NULL ||
	    X509_set_version(x, X509_VERSION_3) != 1 ||
	    ca_random_serial(x) == -1 ||
	    X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)name, -1, -1, 0) != 1 ||
	    X509_set_subject_name(x, n) != 1 ||
	    X509_set_issuer_name(x, n) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -300) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), days, -300, NULL) == NULL ||
	    X509_set_pubkey(x, key) != 1)
		goto fail;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
	    add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
		goto fail;
	if (X509_sign(x, key, ca_sig_md(key)) <= 0)
		goto fail;
	X509_NAME_free(n);
	return x;
fail:
	log_openssl("self-signed CA certificate");
	lb_err_set(err, LB_EINTERNAL, "cannot create the CA certificate");
	X509_NAME_free(n);
	X509_free(x);
	return NULL;
}

static X509_REQ *
make_csr(EVP_PKEY *key, const char *name, lb_err *err)
{
	X509_REQ *req = NULL;
	X509_NAME *n = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *e1 = NULL, *e2 = NULL;

	if ((req = X509_REQ_new()) == NULL || (n = X509_NAME_new()) == NULL ||
	    X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)name, -1, -1, 0) != 1 ||
	    X509_REQ_set_subject_name(req, n) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1 ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL ||
	    (e1 = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
	    "critical,CA:TRUE,pathlen:0")) == NULL ||
	    sk_X509_EXTENSION_push(exts, e1) <= 0)
		goto fail;
	e1 = NULL;
	if ((e2 = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
	    "critical,keyCertSign,cRLSign")) == NULL ||
	    sk_X509_EXTENSION_push(exts, e2) <= 0)
		goto fail;
	e2 = NULL;
	if (X509_REQ_add_extensions(req, exts) != 1 ||
	    X509_REQ_sign(req, key, ca_sig_md(key)) <= 0)
		goto fail;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	return req;
fail:
	log_openssl("subordinate CA request");
	lb_err_set(err, LB_EINTERNAL, "cannot create the CA request");
	X509_EXTENSION_free(e1);
	X509_EXTENSION_free(e2);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(n);
	X509_REQ_free(req);
	return NULL;
}

static int
write_pem_certs(const char *path, STACK_OF(X509) *certs, X509 *first,
    mode_t mode, bool excl, lb_err *err)
{
	char *pem;
	size_t len;
	int rc = -1;

	if ((pem = ca_certs_pem(&first, first != NULL, certs, &len)) != NULL)
		rc = core_file_write(path, pem, len, mode, excl, err);
	if (rc == -1)
		lb_err_set(err, LB_EINTERNAL, "cannot write %s", path);
	free(pem);
	return rc;
}

static int
write_in(const char *dir, const char *name, const void *buf, size_t len,
    mode_t mode, bool excl, lb_err *err)
{
	char *path = core_path(dir, name);
	int rc;

	if (path == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	rc = core_file_write(path, buf, len, mode, excl, err);
	free(path);
	return rc;
}

/* Publishes the CA certificate as DER for the AIA caIssuers URL. */
static int
publish_ca_cert(ca_ctx *ca, lb_err *err)
{
	unsigned char *der = NULL;
	char *pub = core_path(ca_get0_dir(ca), CA_PUB_DIR);
	int len, rc = -1;

	if (pub == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	/* world-readable: the web listener may run as another user */
	if ((mkdir(pub, 0755) == -1 && errno != EEXIST) ||
	    chmod(pub, 0755) == -1) {
		lb_err_set(err, LB_EINTERNAL, "%s: %s", pub, strerror(errno));
		goto out;
	}
	if ((len = i2d_X509(ca_get0_cert(ca), &der)) <= 0) {
		lb_err_set(err, LB_EINTERNAL, "cannot encode the CA certificate");
		goto out;
	}
	rc = write_in(pub, "ca.crt", der, (size_t)len, 0644, false, err);
out:
	OPENSSL_free(der);
	free(pub);
	return rc;
}

/* The TLS host name and address from a listen string "HOST:PORT". */
static void
listen_host(const char *listen, char *host, size_t hostlen)
{
	const char *colon = strrchr(listen, ':');
	size_t n = colon ? (size_t)(colon - listen) : strlen(listen);

	if (n >= hostlen)
		n = hostlen - 1;
	memcpy(host, listen, n);
	host[n] = '\0';
}

/* The steps that need a CA certificate: TLS certificate, admin, pub/. */
static int
finish_setup(const char *dir, const ca_init_opts *o, const char *admin_pass,
    lb_err *err)
{
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	EVP_PKEY *tkey = NULL, *akey = NULL;
	X509 *tcert = NULL, *acert = NULL;
	ca_request req;
	char host[256], *path = NULL;
	ASN1_OCTET_STRING *ip;
	int rc = -1;

	if ((ca = ca_open(dir, 0, err)) == NULL ||
	    (db = ca_db_open(ca, err)) == NULL)
		goto out;
	listen_host(core_conf_get(ca_get0_conf(ca), "server", "listen",
	    "127.0.0.1:8443"), host, sizeof(host));
	if ((tkey = ca_keygen(CA_KEY_ECP256, err)) == NULL)
		goto out;
	memset(&req, 0, sizeof(req));
	req.profile = "tls-server";
	req.common_name = host;
	req.pubkey = tkey;
	/* a numeric host goes in as an IP address, plus localhost; a wildcard
	 * listener gets this machine's name and the loopback address */
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "[::]") == 0 ||
	    strcmp(host, "::") == 0 || host[0] == '\0') {
		if (gethostname(host, sizeof(host) - 1) == -1)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		req.dns_name = host;
		req.ip = "127.0.0.1";
	} else if ((ip = a2i_IPADDRESS(host)) != NULL) {
		ASN1_OCTET_STRING_free(ip);
		req.ip = host;
		req.dns_name = "localhost";
	} else {
		ERR_clear_error();
		req.dns_name = host;
		req.ip = "127.0.0.1";
	}
	if ((tcert = ca_issue(ca, db, &req, "init", err)) == NULL)
		goto out;
	if ((path = core_path(dir, CA_TLS_KEY_FILE)) == NULL ||
	    ca_key_write(path, tkey, NULL, true, err) == -1)
		goto out;
	free(path);
	if ((path = core_path(dir, CA_TLS_CERT_FILE)) == NULL ||
	    write_pem_certs(path, ca_get0_chain(ca), tcert, 0644, true,
	    err) == -1)
		goto out;
	free(path);
	path = NULL;

	if ((akey = ca_keygen(CA_KEY_ECP256, err)) == NULL ||
	    (acert = ca_operator_add(ca, db, CA_ROLE_ADMIN,
	    o->admin_name ? o->admin_name : "Administrator",
	    o->admin_email ? o->admin_email : "admin@localhost", akey, "init",
	    err)) == NULL)
		goto out;
	if ((path = core_path(dir, CA_ADMIN_P12)) == NULL ||
	    ca_p12_write(path, admin_pass, akey, acert,
	    ca_get0_chain(ca), "lockbox administrator", CA_P12_MODERN,
	    err) == -1)
		goto out;
	if (publish_ca_cert(ca, err) == -1)
		goto out;
	rc = 0;
out:
	free(path);
	X509_free(tcert);
	X509_free(acert);
	EVP_PKEY_free(tkey);
	EVP_PKEY_free(akey);
	core_db_close(db);
	ca_free(ca);
	return rc;
}

static bool
exists_in(const char *dir, const char *name)
{
	char *p = core_path(dir, name);
	bool e = p != NULL && access(p, F_OK) == 0;

	free(p);
	return e;
}

static int
record_init(const char *dir, const char *detail, const char *name,
    lb_err *err)
{
	char *path = core_path(dir, CA_DB_FILE);
	sqlite3 *db = NULL;
	int rc = -1;

	if (path == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if ((db = core_db_open(path, true, err)) == NULL)
		goto out;
	if (core_db_begin(db, err) == -1)
		goto out;
	if (core_audit_append(db, "init", "ca.init", name, detail, err) == -1) {
		core_db_rollback(db);
		goto out;
	}
	rc = core_db_commit(db, err);
out:
	core_db_close(db);
	free(path);
	return rc;
}

/* Everything ca_init may write, so that a failed init leaves nothing. */
static const char *const init_files[] = {
	CA_CONF_FILE, CA_KEY_PASS_FILE, CA_KEY_FILE, CA_CSR_FILE, CA_CERT_FILE,
	CA_DB_FILE, CA_DB_FILE "-wal", CA_DB_FILE "-shm", CA_TLS_KEY_FILE,
	CA_TLS_CERT_FILE, CA_ADMIN_P12,
	CA_PUB_DIR "/ca.crt",
};
#define N_INIT_FILES (sizeof(init_files) / sizeof(init_files[0]))

/* Removes what a failed ca_init wrote: the files absent before it ran. */
static void
undo_init(const char *dir, const bool existed[N_INIT_FILES], bool made_dir)
{
	char *p;
	size_t i;

	for (i = 0; i < N_INIT_FILES; i++) {
		if (existed[i] || (p = core_path(dir, init_files[i])) == NULL)
			continue;
		unlink(p);
		free(p);
	}
	if ((p = core_path(dir, CA_PUB_DIR)) != NULL) {
		rmdir(p);
		free(p);
	}
	if (made_dir)
		rmdir(dir);
}

int
ca_init(const char *dir, const ca_init_opts *opts, lb_err *err)
{
	bool existed[N_INIT_FILES], made_dir = false;
	size_t i;
	ca_init_opts o = *opts;
	EVP_PKEY *key = NULL;
	X509 *root = NULL;
	X509_REQ *csr = NULL;
	char pass[CA_PASS_LEN + 2], *conf = NULL, *path = NULL, detail[256];
	char *admin_pass = NULL;
	BIO *bio = NULL;
	int rc = -1;

	if (o.name == NULL)
		o.name = "Example S/MIME CA";
	if (o.key_type == CA_KEY_NONE)
		o.key_type = CA_KEY_RSA3072;
	if (o.days == 0)
		o.days = 3650;
	if (o.base_url == NULL)
		o.base_url = "http://127.0.0.1:8080";
	if (o.listen == NULL)
		o.listen = "127.0.0.1:8443";
	if (o.http_listen == NULL)
		o.http_listen = "127.0.0.1:8080";
	if (o.admin_email == NULL)
		o.admin_email = "admin@localhost";
	if (o.name[0] == '\0' || strlen(o.name) > 64 || strchr(o.name, '\n'))
		return lb_err_set(err, LB_EINVAL, "--name must be 1 to 64 "
		    "characters on one line");
	if (o.days < 1 || o.days > 9125)
		return lb_err_set(err, LB_EINVAL, "--days must be 1 to 9125");
	if (strncmp(o.base_url, "http://", 7) != 0 || strlen(o.base_url) > 256 ||
	    strpbrk(o.base_url, " \n\"\\,") != NULL)
		return lb_err_set(err, LB_EINVAL, "--base-url must be an http:// "
		    "URL: relying parties fetch CRLs over plain HTTP");
	if (!core_email_valid(o.admin_email))
		return lb_err_set(err, LB_EINVAL, "'%s' is not an e-mail address",
		    o.admin_email);
	if (o.key_type == CA_KEY_RSA2048)
		return lb_err_set(err, LB_EINVAL, "a CA key must be rsa-3072, "
		    "rsa-4096, ec-p256 or ec-p384");

	if (exists_in(dir, CA_CONF_FILE) || exists_in(dir, CA_KEY_FILE) ||
	    exists_in(dir, CA_CERT_FILE) || exists_in(dir, CA_DB_FILE))
		return lb_err_set(err, LB_ECONFLICT, "%s already holds a CA: "
		    "refusing to overwrite it", dir);
	/* the administrator's passphrase before anything is written */
	if (!o.subordinate) {
		if ((path = core_path(dir, CA_ADMIN_P12)) == NULL)
			return lb_err_set(err, LB_EINTERNAL, "out of memory");
		admin_pass = ca_pass_new(o.admin_p12_pass_file, path, err);
		free(path);
		path = NULL;
		if (admin_pass == NULL)
			return -1;
	}
	for (i = 0; i < N_INIT_FILES; i++)
		existed[i] = exists_in(dir, init_files[i]);
	if (mkdir(dir, 0700) == 0)
		made_dir = true;
	else if (errno != EEXIST) {
		core_secret_free(admin_pass);
		return lb_err_set(err, LB_EINVAL, "%s: %s", dir, strerror(errno));
	}

	if ((conf = ca_conf_template(&o)) == NULL ||
	    write_in(dir, CA_CONF_FILE, conf, strlen(conf), 0600, true,
	    err) == -1)
		goto out;
	if ((key = ca_keygen(o.key_type, err)) == NULL)
		goto out;
	if (core_random_password(pass, CA_PASS_LEN) == -1) {
		lb_err_set(err, LB_EINTERNAL, "no randomness");
		goto out;
	}
	pass[CA_PASS_LEN] = '\n';
	if (write_in(dir, CA_KEY_PASS_FILE, pass, CA_PASS_LEN + 1, 0600, true,
	    err) == -1)
		goto out;
	pass[CA_PASS_LEN] = '\0';
	if ((path = core_path(dir, CA_KEY_FILE)) == NULL ||
	    ca_key_write(path, key, pass, true, err) == -1)
		goto out;

	if (o.subordinate) {
		char *data;
		long len;

		if ((csr = make_csr(key, o.name, err)) == NULL)
			goto out;
		if ((bio = BIO_new(BIO_s_mem())) == NULL ||
		    PEM_write_bio_X509_REQ(bio, csr) != 1) {
			lb_err_set(err, LB_EINTERNAL, "cannot encode the CSR");
			goto out;
		}
		len = BIO_get_mem_data(bio, &data);
		if (write_in(dir, CA_CSR_FILE, data, (size_t)len, 0644, true,
		    err) == -1)
			goto out;
		snprintf(detail, sizeof(detail), "subordinate key_type=%s "
		    "awaiting 'lockbox ca install'", ca_key_type_name(o.key_type));
		rc = record_init(dir, detail, o.name, err);
		goto out;
	}
	if ((root = ca_self_sign(key, o.name, o.days, err)) == NULL)
		goto out;
	free(path);
	if ((path = core_path(dir, CA_CERT_FILE)) == NULL ||
	    write_pem_certs(path, NULL, root, 0644, true, err) == -1)
		goto out;
	snprintf(detail, sizeof(detail), "root key_type=%s days=%d",
	    ca_key_type_name(o.key_type), o.days);
	if (record_init(dir, detail, o.name, err) == -1)
		goto out;
	rc = finish_setup(dir, &o, admin_pass, err);
out:
	if (rc == -1)
		undo_init(dir, existed, made_dir);
	core_secret_free(admin_pass);
	OPENSSL_cleanse(pass, sizeof(pass));
	BIO_free(bio);
	X509_REQ_free(csr);
	X509_free(root);
	EVP_PKEY_free(key);
	free(conf);
	free(path);
	return rc;
}

int
ca_install(const char *dir, const char *cert_file, const char *pass_file,
    lb_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	STACK_OF(X509) *chain = NULL;
	X509 *x;
	EVP_PKEY *key = NULL;
	char *pass = NULL, *path = NULL, *admin_pass = NULL;
	ca_init_opts o;
	int rc = -1;

	memset(&o, 0, sizeof(o));
	if (!exists_in(dir, CA_CSR_FILE) || !exists_in(dir, CA_KEY_FILE))
		return lb_err_set(err, LB_EINVAL, "%s is not a subordinate CA "
		    "awaiting its certificate (no ca.csr)", dir);
	if (exists_in(dir, CA_CERT_FILE))
		return lb_err_set(err, LB_ECONFLICT, "%s already has its CA "
		    "certificate", dir);
	if ((path = core_path(dir, CA_ADMIN_P12)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if ((admin_pass = ca_pass_new(pass_file, path, err)) == NULL)
		goto out;
	free(path);
	path = NULL;
	if (core_file_read(cert_file, (size_t)1024 * 1024, &buf, &len,
	    err) == -1)
		goto out;
	if ((chain = ca_pem_chain_parse(buf, len, cert_file, err)) == NULL)
		goto out;
	x = sk_X509_value(chain, 0);
	if ((path = core_path(dir, CA_KEY_PASS_FILE)) == NULL ||
	    (pass = core_secret_read(path, err)) == NULL)
		goto out;
	free(path);
	if ((path = core_path(dir, CA_KEY_FILE)) == NULL ||
	    (key = ca_key_read(path, pass, err)) == NULL)
		goto out;
	if (X509_check_private_key(x, key) != 1) {
		ERR_clear_error();
		lb_err_set(err, LB_EINVAL, "%s: the certificate is not for this "
		    "CA's key (was it issued for %s/ca.csr?)", cert_file, dir);
		goto out;
	}
	if (X509_check_ca(x) == 0) {
		lb_err_set(err, LB_EINVAL, "%s: not a CA certificate "
		    "(basicConstraints CA:TRUE and keyCertSign needed)",
		    cert_file);
		goto out;
	}
	free(path);
	if ((path = core_path(dir, CA_CERT_FILE)) == NULL ||
	    write_pem_certs(path, chain, NULL, 0644, true, err) == -1)
		goto out;
	{
		char *db_path = core_path(dir, CA_DB_FILE);
		sqlite3 *db = db_path ? core_db_open(db_path, false, err) :
		    NULL;
		char *serial = ca_cert_serial(x);
		int r = -1;

		if (db != NULL && serial != NULL && core_db_begin(db, err) == 0) {
			r = core_audit_append(db, "init", "ca.install", serial,
			    "subordinate certificate installed", err);
			if (r == 0)
				r = core_db_commit(db, err);
			else
				core_db_rollback(db);
		}
		free(serial);
		free(db_path);
		core_db_close(db);
		if (r == -1)
			goto out;
	}
	rc = finish_setup(dir, &o, admin_pass, err);
out:
	core_secret_free(admin_pass);
	core_secret_free(pass);
	EVP_PKEY_free(key);
	sk_X509_pop_free(chain, X509_free);
	free(buf);
	free(path);
	return rc;
}
