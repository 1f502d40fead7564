/*
 * cmd_enroll.c - `lockbox enroll`: the autoenrollment agent on the user's
 * machine.  The first run (HTTP Basic: directory password or one-time
 * token) reads the server's policy and enrolls every profile the user is
 * entitled to over EST: the signing key is made here and never leaves the
 * machine (simpleenroll); the encryption key is made and escrowed by the
 * server (serverkeygen).  `--auto`, for cron or a systemd timer, reads the
 * policy again authenticated by the current signing certificate and
 * renews what is due (simplereenroll / serverkeygen), keeping every
 * previous encryption key so that old mail stays readable.
 *
 * Everything lives in one directory (default ~/.lockbox, 0700): per
 * profile NAME.key (0600), NAME.crt, NAME.p12 + NAME.p12.pass (0600) for
 * mail clients; ca.pem (the chain from cacerts), server-ca.pem (what the
 * server's TLS certificate must chain to) and state.json.  A new pair is
 * staged as NAME.*.new and renamed into place; a run interrupted between
 * the two is completed by the next one.
 *
 * HTTP goes through cli/http.c (https only, the server verified against
 * the given CA file, no redirects, capped answers): HTTP Basic for the
 * first run, the signing certificate's files for --auto, and the raw
 * answers (status, Content-Type, Retry-After) for EST.  Credentials are
 * only ever sent to the server named at enrollment: the policy's EST URLs
 * are followed by their path on that server.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cli/cli.h"
#include "cli/http.h"
#include "enroll/enroll.h"

#define STATE_FILE     "state.json"
#define SERVER_CA_FILE "server-ca.pem"
#define CHAIN_FILE     "ca.pem"
#define POLICY_PATH    "/api/v1/policy"
#define CACERTS_PATH   "/.well-known/est/cacerts"
#define SIGN_PROFILE   "smime-sign"
/* Answers: a policy, a chain or a key with its certificate. */
#define REPLY_MAX      ((size_t)1024 * 1024)
#define MAX_PARTS      4

static const char enroll_help[] =
"usage: lockbox enroll --server URL --ca-cert FILE --user EMAIL\n"
"                      (--password-file F | --token-file F) [--dir DIR]\n"
"       lockbox enroll --auto [--dir DIR]\n"
"\n"
"Enrolls and renews this user's S/MIME certificates over EST.\n"
"\n"
"The first form enrolls every profile the server's policy entitles you\n"
"to: the signing key is generated here and never leaves this machine;\n"
"the encryption key is generated and escrowed by the server.  It writes\n"
"into DIR (default ~/.lockbox, created 0700), per profile NAME:\n"
"  NAME.key            the private key (PKCS#8 PEM, 0600)\n"
"  NAME.crt            the certificate (PEM)\n"
"  NAME.p12            key, certificate and chain for mail clients, its\n"
"                      password in NAME.p12.pass (0600)\n"
"and ca.pem (the CA chain), server-ca.pem and state.json.  When an\n"
"enrollment awaits an operator's approval it says so and exits 0: run it\n"
"again later (its key is kept in NAME.pending.key meanwhile).\n"
"\n"
"--auto (for cron or a systemd timer) renews what is due, authenticated by\n"
"the current signing certificate, and does nothing otherwise.  Renewed\n"
"encryption keys are kept as NAME-SERIAL.key/.crt/.p12 so that old mail\n"
"stays readable.  Prints one line per profile; exits 1 on any failure.\n"
"\n"
"  --server URL          the lockbox server, https://HOST:PORT\n"
"  --ca-cert FILE        the CA certificate(s) the server's TLS certificate\n"
"                        must chain to (copied into DIR)\n"
"  --user EMAIL          your login (directory user, or your e-mail with a\n"
"                        token)\n"
"  --password-file F     your directory password, on one line\n"
"  --token-file F        a one-time enrollment token (lockbox token create)\n"
"  --dir DIR             where keys and certificates live (~/.lockbox)\n"
"  --auto                renew what is due (needs a previous enrollment)\n";

/* ------------------------------------------------------------------ */
/* HTTPS client                                                        */

/* Where and how to talk to the server. */
struct conn {
	cli_http *http;
	char *ca_cert;           /* what the server must chain to */
	bool cert_auth;          /* authenticated by the signing certificate */
};

/*
 * The server's text/plain reason, first line only, printable characters
 * only and at most 200 of them: it is shown to the user.
 */
static void
reply_reason(const cli_http_reply *r, char *out, size_t outlen)
{
	size_t i, n = 0;
	const char *p = r->body;

	out[0] = '\0';
	if (p == NULL || strncasecmp(r->ctype, "text/plain", 10) != 0)
		return;
	while (*p == ' ' || *p == '\r' || *p == '\n')
		p++;
	for (i = 0; p[i] != '\0' && p[i] != '\n' && p[i] != '\r' &&
	    n + 1 < outlen && n < 200; i++)
		out[n++] = isprint((unsigned char)p[i]) ? p[i] : '?';
	out[n] = '\0';
}

/* An error for a non-2xx answer to what (e.g. "the policy"). */
static int
reply_fail(const struct conn *c, const cli_http_reply *r, const char *what,
    lb_err *err)
{
	const char *server = cli_http_get0_server(c->http);
	char why[256];

	reply_reason(r, why, sizeof(why));
	switch (r->status) {
	case 401:
		return lb_err_set(err, LB_EUNAUTH, "%s refused the credentials "
		    "for %s (HTTP 401)%s%s: %s", server, what,
		    why[0] ? ": " : "", why, c->cert_auth ?
		    "the signing certificate is no longer accepted (revoked, "
		    "superseded or expired): enroll again with a token or "
		    "password" : "check --user and the password, or get a new "
		    "token (a token works once per profile)");
	case 403:
		return lb_err_set(err, LB_EFORBIDDEN, "%s refused %s (HTTP "
		    "403)%s%s", server, what, why[0] ? ": " : "", why);
	case 429:
		return lb_err_set(err, LB_ETHROTTLED, "%s: too many failed "
		    "attempts, try again in %s seconds", server,
		    r->retry_after[0] ? r->retry_after : "a few");
	default:
		return lb_err_set(err, r->status == 400 ? LB_EINVAL :
		    LB_EINTERNAL, "%s answered HTTP %ld to %s%s%s", server,
		    r->status, what, why[0] ? ": " : "", why);
	}
}

/*
 * The path of an EST URL from the policy, to be requested on our own
 * server: an absolute https URL or a path.  NULL when it is neither or
 * holds characters that have no place in a path.
 */
static const char *
url_path(const char *url)
{
	const char *p;

	if (url == NULL)
		return NULL;
	if (strncmp(url, "https://", 8) == 0) {
		if ((p = strchr(url + 8, '/')) == NULL)
			return NULL;
	} else if (url[0] == '/') {
		p = url;
	} else {
		return NULL;
	}
	if (strlen(p) > 512)
		return NULL;
	for (const char *q = p; *q != '\0'; q++)
		if (!isgraph((unsigned char)*q))
			return NULL;
	return p;
}

/* ------------------------------------------------------------------ */
/* Keys, requests and files                                            */

/*
 * A PKCS#10 request for key: subject CN = email (or subject, when
 * renewing: the renewed certificate's), SAN rfc822Name = email, signed
 * with SHA-256.  Returned base64 (one line) in *out, malloc'ed.
 */
static int
make_csr(EVP_PKEY *key, const char *email, const X509_NAME *subject,
    char **out, size_t *outlen, lb_err *err)
{
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gen = NULL;
	ASN1_IA5STRING *ia5 = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	unsigned char *der = NULL;
	int len, rc = -1;

	*out = NULL;
	if ((req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1)
		goto out;
	if (subject != NULL)
		name = X509_NAME_dup(subject);
	else if ((name = X509_NAME_new()) != NULL &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)email, -1, -1, 0) != 1)
		goto out;
	if (name == NULL || X509_REQ_set_subject_name(req, name) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1)
		goto out;
	/* the SAN built by hand: an e-mail is no config string */
	if ((gens = GENERAL_NAMES_new()) == NULL ||
	    (gen = GENERAL_NAME_new()) == NULL ||
	    (ia5 = ASN1_IA5STRING_new()) == NULL ||
	    ASN1_STRING_set(ia5, email, -1) != 1)
		goto out;
	GENERAL_NAME_set0_value(gen, GEN_EMAIL, ia5);
	ia5 = NULL;
	if (sk_GENERAL_NAME_push(gens, gen) <= 0)
		goto out;
	gen = NULL;
	if (X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) != 1 ||
	    X509_REQ_add_extensions(req, exts) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
	    (len = i2d_X509_REQ(req, &der)) <= 0)
		goto out;
	if (core_b64_encode(der, (size_t)len, 0, out, outlen) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1) {
		log_openssl("certificate request");
		lb_err_set(err, LB_EINTERNAL, "cannot build the certificate "
		    "request");
	}
	OPENSSL_free(der);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return rc;
}

/* dir/name+suffix, malloc'ed (NULL on allocation failure). */
static char *
file_in(const char *dir, const char *name, const char *suffix)
{
	char *p;

	if (asprintf(&p, "%s/%s%s", dir, name, suffix) == -1)
		return NULL;
	return p;
}

static bool
file_exists(const char *path)
{
	struct stat st;

	return path != NULL && stat(path, &st) == 0;
}

/* Writes certs as PEM to path (mode). */
static int
write_certs(const char *path, X509 *const *certs, size_t n, mode_t mode,
    lb_err *err)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long len;
	size_t i;
	int rc = -1;

	if (bio == NULL)
		goto fail;
	for (i = 0; i < n; i++)
		if (PEM_write_bio_X509(bio, certs[i]) != 1)
			goto fail;
	if ((len = BIO_get_mem_data(bio, &data)) <= 0)
		goto fail;
	rc = core_file_write(path, data, (size_t)len, mode, false, err);
	BIO_free(bio);
	return rc;
fail:
	BIO_free(bio);
	log_openssl("PEM_write_bio_X509");
	return lb_err_set(err, LB_EINTERNAL, "cannot encode certificates for "
	    "%s", path);
}

static X509 *
read_cert(const char *path, lb_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	X509 *x;

	if (core_file_read(path, (size_t)256 * 1024, &buf, &len, err) == -1)
		return NULL;
	x = ca_cert_parse(buf, len, err);
	free(buf);
	return x;
}

/* DIR: --dir, else ~/.lockbox; created (with its parents) 0700. */
static char *
agent_dir(const char *opt, lb_err *err)
{
	char *dir, *p;

	if ((dir = cli_user_dir(opt, ".lockbox", "keys and certificates",
	    err)) == NULL)
		return NULL;
	/* state.json names files in it: absolute, for timers run elsewhere */
	if ((p = realpath(dir, NULL)) == NULL)
		lb_err_set(err, LB_EINVAL, "%s: %s", dir, strerror(errno));
	free(dir);
	return p;
}

/*
 * The final and staged names of a profile's files (ca_p12_write puts the
 * password beside the file: NAME.p12.new.pass).  The certificate comes
 * last: while NAME.crt.new exists an update is unfinished, and the old
 * NAME.crt still names the serial to keep the old files under.
 */
static const char *const pair_suffix[] = {
	".p12.pass", ".p12", ".key", ".crt",
};
static const char *const staged_suffix[] = {
	".p12.new.pass", ".p12.new", ".key.new", ".crt.new",
};
#define NSUFFIX (sizeof(pair_suffix) / sizeof(pair_suffix[0]))

/*
 * Moves the staged NAME.*.new into place.  With keep_old, the current
 * pair is first renamed NAME-SERIAL.* (its serial from NAME.crt), unless
 * NAME.crt is already the staged certificate.  Used after staging and, at
 * the start of a run, to finish a run that was interrupted in between.
 */
static int
commit_staged(const char *dir, const char *name, bool keep_old, lb_err *err)
{
	char *cur = NULL, *staged = NULL, *old = NULL, *serial = NULL;
	X509 *oldcert = NULL;
	size_t i;
	int rc = -1;

	if (keep_old) {
		if ((cur = file_in(dir, name, ".crt")) == NULL)
			goto oom;
		if (file_exists(cur)) {
			if ((oldcert = read_cert(cur, err)) == NULL ||
			    (serial = ca_cert_serial(oldcert)) == NULL)
				goto out;
		}
		free(cur);
		cur = NULL;
	}
	for (i = 0; serial != NULL && i < NSUFFIX; i++) {
		char tag[160];

		snprintf(tag, sizeof(tag), "-%s%s", serial, pair_suffix[i]);
		if ((cur = file_in(dir, name, pair_suffix[i])) == NULL ||
		    (old = file_in(dir, name, tag)) == NULL)
			goto oom;
		if (file_exists(cur) && rename(cur, old) == -1) {
			lb_err_set(err, LB_EINTERNAL, "cannot keep %s as %s: %s",
			    cur, old, strerror(errno));
			goto out;
		}
		free(cur);
		free(old);
		cur = old = NULL;
	}
	for (i = 0; i < NSUFFIX; i++) {
		if ((cur = file_in(dir, name, pair_suffix[i])) == NULL ||
		    (staged = file_in(dir, name, staged_suffix[i])) == NULL)
			goto oom;
		if (file_exists(staged) && rename(staged, cur) == -1) {
			lb_err_set(err, LB_EINTERNAL, "cannot rename %s to %s: "
			    "%s", staged, cur, strerror(errno));
			goto out;
		}
		free(cur);
		free(staged);
		cur = staged = NULL;
	}
	rc = 0;
	goto out;
oom:
	lb_err_set(err, LB_EINTERNAL, "out of memory");
out:
	X509_free(oldcert);
	free(serial);
	free(cur);
	free(staged);
	free(old);
	return rc;
}

/*
 * Finishes what an interrupted run staged for name: a staged certificate
 * whose key is staged or already in place is moved into place; anything
 * else staged is removed.
 */
static int
recover_staged(const char *dir, const char *name, bool keep_old,
    lb_err *err)
{
	char *kp = file_in(dir, name, ".key.new");
	char *kcur = file_in(dir, name, ".key");
	char *cp = file_in(dir, name, ".crt.new");
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	lb_err e2 = { 0 };
	size_t i;
	int rc = 0;

	if (kp == NULL || kcur == NULL || cp == NULL) {
		rc = lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (file_exists(cp) &&
	    (key = ca_key_read(file_exists(kp) ? kp : kcur, NULL, &e2)) !=
	    NULL &&
	    (cert = read_cert(cp, &e2)) != NULL &&
	    X509_check_private_key(cert, key) == 1) {
		log_warnx("%s: finishing an interrupted update", name);
		rc = commit_staged(dir, name, keep_old, err);
		goto out;
	}
	ERR_clear_error();
	for (i = 0; i < NSUFFIX; i++) {
		char *p;

		if ((p = file_in(dir, name, staged_suffix[i])) != NULL)
			unlink(p);
		free(p);
	}
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	free(kp);
	free(kcur);
	free(cp);
	return rc;
}

/*
 * Installs key + cert for profile name: writes NAME.key/.crt/.p12(.pass)
 * staged, then moves them into place (keep_old: the previous pair is kept
 * under its serial).
 */
static int
install_pair(const char *dir, const char *name, const char *email,
    EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain, bool keep_old,
    lb_err *err)
{
	char *kp = file_in(dir, name, ".key.new");
	char *cp = file_in(dir, name, ".crt.new");
	char *pp = file_in(dir, name, ".p12.new");
	char friendly[320];
	int rc = -1;

	if (kp == NULL || cp == NULL || pp == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		lb_err_set(err, LB_EINVAL, "%s: the server's certificate does "
		    "not match the key: nothing written", name);
		goto out;
	}
	snprintf(friendly, sizeof(friendly), "%s (%s)", email, name);
	/* the certificate last: NAME.crt.new means all is staged */
	if (ca_key_write(kp, key, NULL, false, err) == -1 ||
	    ca_p12_write(pp, NULL, key, cert, chain, friendly, CA_P12_MODERN,
	    err) == -1 ||
	    write_certs(cp, &cert, 1, 0644, err) == -1)
		goto out;
	rc = commit_staged(dir, name, keep_old, err);
out:
	free(kp);
	free(cp);
	free(pp);
	return rc;
}

/* Removes whitespace around a secret in place (the tail is zeroed). */
static void
trim_secret(char *s)
{
	size_t n = strlen(s), start = 0;

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	while (start < n && isspace((unsigned char)s[start]))
		start++;
	if (start > 0) {
		memmove(s, s + start, n - start);
		memset(s + n - start, 0, start);
	}
}

/* ------------------------------------------------------------------ */
/* The policy                                                          */

/* What the agent needs of one profile of the policy. */
struct pprofile {
	const char *name;
	bool escrow;
	enum ca_key_type key_type;
	long renew_percent, renew_days;
	const char *simpleenroll, *simplereenroll, *serverkeygen, *cacerts;
	json_t *certs;           /* borrowed */
};

static bool
name_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || strlen(s) > 63)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

/*
 * Reads one profile of the policy into p.  Returns 1 when the user may
 * enroll it, 0 when not (skipped), -1 with err when malformed.
 */
static int
policy_profile(json_t *jp, struct pprofile *p, lb_err *err)
{
	json_t *est, *kt, *v;
	size_t i;

	memset(p, 0, sizeof(*p));
	p->name = json_string_value(json_object_get(jp, "name"));
	if (!json_is_object(jp) || !name_ok(p->name))
		return lb_err_set(err, LB_EINVAL, "the server's policy names a "
		    "profile badly");
	if (!json_is_true(json_object_get(jp, "enroll")))
		return 0;
	p->escrow = json_is_true(json_object_get(jp, "escrow"));
	kt = json_object_get(jp, "key_types");
	json_array_foreach(kt, i, v) {
		enum ca_key_type t = ca_key_type_parse(json_string_value(v) !=
		    NULL ? json_string_value(v) : "");

		if (t == CA_KEY_ECP256 || (p->key_type == CA_KEY_NONE &&
		    t != CA_KEY_NONE))
			p->key_type = t;
	}
	if (p->key_type == CA_KEY_NONE)
		p->key_type = CA_KEY_ECP256;
	v = json_object_get(jp, "renew_percent");
	p->renew_percent = json_is_integer(v) ? (long)json_integer_value(v) :
	    80;
	v = json_object_get(jp, "renew_days");
	p->renew_days = json_is_integer(v) ? (long)json_integer_value(v) : 30;
	if (p->renew_percent < 1 || p->renew_percent > 99 ||
	    p->renew_days < 0 || p->renew_days > 36500)
		return lb_err_set(err, LB_EINVAL, "the server's policy has a "
		    "bad renewal window for %s", p->name);
	est = json_object_get(jp, "est");
	p->simpleenroll = url_path(json_string_value(json_object_get(est,
	    "simpleenroll")));
	p->simplereenroll = url_path(json_string_value(json_object_get(est,
	    "simplereenroll")));
	p->serverkeygen = url_path(json_string_value(json_object_get(est,
	    "serverkeygen")));
	p->cacerts = url_path(json_string_value(json_object_get(est,
	    "cacerts")));
	if ((p->escrow ? p->serverkeygen : p->simpleenroll) == NULL)
		return lb_err_set(err, LB_EINVAL, "the server's policy has no "
		    "usable EST URL for %s", p->name);
	p->certs = json_object_get(jp, "certificates");
	if (p->certs != NULL && !json_is_array(p->certs))
		return lb_err_set(err, LB_EINVAL, "the server's policy lists "
		    "%s's certificates badly", p->name);
	return 1;
}

/* GET the policy: *policy gets the document, checked to have profiles. */
static int
get_policy(const struct conn *c, json_t **policy, lb_err *err)
{
	cli_http_reply r;
	json_error_t jerr;
	json_t *j = NULL;
	int rc = -1;

	*policy = NULL;
	if (cli_http_request(c->http, "GET", POLICY_PATH, NULL, NULL, 0,
	    REPLY_MAX, &r, err) == -1)
		return -1;
	if (r.status != 200) {
		reply_fail(c, &r, "the policy", err);
		goto out;
	}
	if (r.body == NULL ||
	    (j = json_loadb(r.body, r.len, 0, &jerr)) == NULL ||
	    !json_is_object(j) ||
	    !json_is_array(json_object_get(j, "profiles"))) {
		lb_err_set(err, LB_EINVAL, "%s answered the policy with "
		    "something that is not a policy document",
		    cli_http_get0_server(c->http));
		goto out;
	}
	*policy = j;
	j = NULL;
	rc = 0;
out:
	json_decref(j);
	cli_http_reply_clear(&r);
	return rc;
}

/* GET cacerts: the chain, written to DIR/ca.pem. */
static STACK_OF(X509) *
get_chain(const struct conn *c, const char *path, const char *dir,
    lb_err *err)
{
	STACK_OF(X509) *chain = NULL;
	cli_http_reply r;
	X509 *certs[16];
	char *file = NULL;
	int i, n;

	if (cli_http_request(c->http, "GET", path, NULL, NULL, 0, REPLY_MAX,
	    &r, err) == -1)
		return NULL;
	if (r.status != 200) {
		reply_fail(c, &r, "cacerts", err);
		goto out;
	}
	if ((chain = enroll_est_certs_parse((unsigned char *)r.body, r.len,
	    err)) == NULL)
		goto out;
	n = sk_X509_num(chain);
	for (i = 0; i < n && i < 16; i++)
		certs[i] = sk_X509_value(chain, i);
	if ((file = file_in(dir, CHAIN_FILE, "")) == NULL ||
	    write_certs(file, certs, (size_t)i, 0644, err) == -1) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		sk_X509_pop_free(chain, X509_free);
		chain = NULL;
	}
out:
	free(file);
	cli_http_reply_clear(&r);
	return chain;
}

/* ------------------------------------------------------------------ */
/* One enrollment                                                      */

/* What became of one profile. */
enum outcome { DONE, PENDING, FAILED };

/*
 * The key of an enrollment: NAME.pending.key when a request awaits
 * approval (the server finds it again by its key), else a new one.
 */
static EVP_PKEY *
enroll_key(const char *pending, enum ca_key_type t, lb_err *err)
{
	if (file_exists(pending))
		return ca_key_read(pending, NULL, err);
	return ca_keygen(t, err);
}

/*
 * Parses a serverkeygen answer: the key part (application/pkcs8) and the
 * certificate part (application/pkcs7-mime).
 */
static int
parse_keygen(const cli_http_reply *r, EVP_PKEY **key, X509 **cert,
    lb_err *err)
{
	enroll_part parts[MAX_PARTS];
	STACK_OF(X509) *certs = NULL;
	size_t n = 0, i;
	int rc = -1;

	memset(parts, 0, sizeof(parts));
	if (strncasecmp(r->ctype, "multipart/mixed", 15) != 0) {
		lb_err_set(err, LB_EINVAL, "serverkeygen answered %s instead "
		    "of multipart/mixed", r->ctype[0] ? r->ctype : "nothing");
		return -1;
	}
	if (enroll_est_multipart_parse(r->ctype, r->body, r->len, parts,
	    MAX_PARTS, &n, err) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		const char *ct = parts[i].content_type != NULL ?
		    parts[i].content_type : "";

		if (strncasecmp(ct, "application/pkcs8", 17) == 0 &&
		    *key == NULL) {
			if ((*key = enroll_est_key_parse(parts[i].body,
			    parts[i].len, NULL, NULL, err)) == NULL)
				goto out;
		} else if (strncasecmp(ct, "application/pkcs7-mime", 22) ==
		    0 && certs == NULL) {
			if ((certs = enroll_est_certs_parse(
			    (const unsigned char *)parts[i].body, parts[i].len,
			    err)) == NULL)
				goto out;
		}
	}
	if (*key == NULL || certs == NULL || sk_X509_num(certs) < 1) {
		lb_err_set(err, LB_EINVAL, "serverkeygen answered without a "
		    "key or without a certificate");
		goto out;
	}
	*cert = sk_X509_shift(certs);
	rc = 0;
out:
	if (rc == -1) {
		EVP_PKEY_free(*key);
		*key = NULL;
	}
	sk_X509_pop_free(certs, X509_free);
	enroll_parts_clear(parts, n);
	return rc;
}

/*
 * Enrolls (renew: renews) profile p for email and installs the result.
 * renewing: the certificate being renewed (its subject goes into the CSR),
 * or NULL.  *serial gets the new certificate's serial.
 */
static enum outcome
enroll_one(const struct conn *c, const char *dir, const struct pprofile *p,
    const char *email, X509 *renewing, STACK_OF(X509) *chain,
    char **serial, lb_err *err)
{
	static const char *const pkcs10[] = {
		"Content-Type: application/pkcs10",
		"Content-Transfer-Encoding: base64", NULL,
	};
	cli_http_reply r;
	EVP_PKEY *key = NULL, *srvkey = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *certs = NULL;
	char *csr = NULL, *pending = NULL, why[256];
	const char *path;
	size_t csrlen = 0;
	enum outcome oc = FAILED;

	memset(&r, 0, sizeof(r));
	*serial = NULL;
	if (p->escrow)
		path = p->serverkeygen;
	else
		path = renewing != NULL && p->simplereenroll != NULL ?
		    p->simplereenroll : p->simpleenroll;
	if (path == NULL) {
		lb_err_set(err, LB_EINVAL, "the server's policy has no EST URL "
		    "to renew %s", p->name);
		goto out;
	}
	if ((pending = file_in(dir, p->name, ".pending.key")) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	/* serverkeygen ignores the request's key: any will do */
	if ((key = enroll_key(pending, p->escrow ? CA_KEY_ECP256 :
	    p->key_type, err)) == NULL ||
	    make_csr(key, email, renewing != NULL ?
	    X509_get_subject_name(renewing) : NULL, &csr, &csrlen, err) == -1)
		goto out;
	if (cli_http_request(c->http, "POST", path, pkcs10, csr, csrlen,
	    REPLY_MAX, &r, err) == -1)
		goto out;
	if (r.status == 202) {
		/* the server knows the request again by its key */
		if (!file_exists(pending) &&
		    ca_key_write(pending, key, NULL, false, err) == -1)
			goto out;
		printf("%s: the request awaits an operator's approval; run "
		    "again %s%s%s\n", p->name, r.retry_after[0] ? "after " : "later",
		    r.retry_after, r.retry_after[0] ? " seconds" : "");
		oc = PENDING;
		goto out;
	}
	if (r.status != 200) {
		char what[96];

		snprintf(what, sizeof(what), "the %s request", p->name);
		reply_fail(c, &r, what, err);
		goto out;
	}
	if (p->escrow) {
		if (parse_keygen(&r, &srvkey, &cert, err) == -1)
			goto out;
	} else {
		if ((certs = enroll_est_certs_parse((unsigned char *)r.body,
		    r.len, err)) == NULL)
			goto out;
		if ((cert = sk_X509_shift(certs)) == NULL) {
			lb_err_set(err, LB_EINVAL, "the server answered %s "
			    "without a certificate", p->name);
			goto out;
		}
	}
	if ((*serial = ca_cert_serial(cert)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	/* a renewed signing key replaces the old one; encryption keys stay */
	if (install_pair(dir, p->name, email, p->escrow ? srvkey : key, cert,
	    chain, p->escrow, err) == -1)
		goto out;
	unlink(pending);
	oc = DONE;
out:
	if (oc == FAILED && err->code == LB_OK) {
		reply_reason(&r, why, sizeof(why));
		lb_err_set(err, LB_EINTERNAL, "%s failed%s%s", p->name,
		    why[0] ? ": " : "", why);
	}
	if (oc != DONE) {
		free(*serial);
		*serial = NULL;
	}
	sk_X509_pop_free(certs, X509_free);
	X509_free(cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(srvkey);
	if (csr != NULL)
		OPENSSL_cleanse(csr, csrlen);
	free(csr);
	free(pending);
	cli_http_reply_clear(&r);
	return oc;
}

/* ------------------------------------------------------------------ */
/* State                                                               */

static int
write_state(const char *dir, const char *server, const char *ca_cert,
    const char *user, lb_err *err)
{
	json_t *j = json_object();
	char *text = NULL, *path = NULL;
	int rc = -1;

	if (j == NULL || ca_json_put(j, "server", json_string(server)) == -1 ||
	    ca_json_put(j, "ca_cert", json_string(ca_cert)) == -1 ||
	    ca_json_put(j, "user", json_string(user)) == -1 ||
	    (text = json_dumps(j, JSON_INDENT(2))) == NULL ||
	    (path = file_in(dir, STATE_FILE, "")) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "cannot write %s (the user or "
		    "server is not UTF-8?)", STATE_FILE);
		goto out;
	}
	rc = core_file_write(path, text, strlen(text), 0600, false, err);
out:
	free(path);
	free(text);
	json_decref(j);
	return rc;
}

/* Copies --ca-cert into DIR/server-ca.pem (checked to hold a certificate). */
static char *
copy_server_ca(const char *dir, const char *from, lb_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	X509 *x = NULL;
	char *to = NULL;

	if (core_file_read(from, (size_t)1024 * 1024, &buf, &len, err) == -1)
		return NULL;
	if ((x = ca_cert_parse(buf, len, err)) == NULL)
		goto out;
	if ((to = file_in(dir, SERVER_CA_FILE, "")) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (strcmp(from, to) != 0 &&
	    core_file_write(to, buf, len, 0644, false, err) == -1) {
		free(to);
		to = NULL;
	}
out:
	X509_free(x);
	free(buf);
	return to;
}

/*
 * Opens c's client for server, trusting c->ca_cert; --server takes no path
 * (the policy's EST URLs are followed by theirs).
 */
static int
conn_open(struct conn *c, const char *server, lb_err *err)
{
	if ((c->http = cli_http_new(server, c->ca_cert, NULL, NULL, err)) ==
	    NULL)
		return -1;
	if (strchr(cli_http_get0_server(c->http) + 8, '/') != NULL)
		return lb_err_set(err, LB_EINVAL, "--server takes no path: "
		    "https://HOST:PORT");
	return 0;
}

static void
conn_clear(struct conn *c)
{
	cli_http_free(c->http);
	free(c->ca_cert);
	memset(c, 0, sizeof(*c));
}

/* The cacerts path: the first profile's, else the well-known one. */
static const char *
cacerts_path(json_t *profiles)
{
	json_t *jp;
	size_t i;
	const char *p;

	json_array_foreach(profiles, i, jp) {
		p = url_path(json_string_value(json_object_get(
		    json_object_get(jp, "est"), "cacerts")));
		if (p != NULL)
			return p;
	}
	return CACERTS_PATH;
}

/* The e-mail the policy names, or fallback. */
static const char *
policy_email(json_t *policy, const char *fallback)
{
	const char *s = json_string_value(json_object_get(json_object_get(
	    policy, "user"), "email"));

	return s != NULL && core_email_valid(s) ? s : fallback;
}

/* ------------------------------------------------------------------ */
/* lockbox enroll (first enrollment)                                   */

static int
enroll_first(const char *diropt, const char *server, const char *ca_cert,
    const char *user, const char *password_file, const char *token_file)
{
	struct conn c;
	json_t *policy = NULL, *jp;
	STACK_OF(X509) *chain = NULL;
	struct pprofile p;
	lb_err err = { 0 };
	char *dir = NULL, *serial = NULL, *crt = NULL, *password = NULL;
	const char *email;
	size_t i;
	int rc = 1, failed = 0, entitled = 0, r;

	memset(&c, 0, sizeof(c));
	if ((dir = agent_dir(diropt, &err)) == NULL ||
	    (c.ca_cert = copy_server_ca(dir, ca_cert, &err)) == NULL ||
	    conn_open(&c, server, &err) == -1 ||
	    (password = core_secret_read(password_file != NULL ?
	    password_file : token_file, &err)) == NULL)
		goto out;
	trim_secret(password);
	if (password[0] == '\0') {
		lb_err_set(&err, LB_EINVAL,
		    "the password or token file is empty");
		goto out;
	}
	if (cli_http_set_basic(c.http, user, password, &err) == -1 ||
	    get_policy(&c, &policy, &err) == -1)
		goto out;
	email = policy_email(policy, user);
	if ((chain = get_chain(&c, cacerts_path(json_object_get(policy,
	    "profiles")), dir, &err)) == NULL)
		goto out;
	if (write_state(dir, cli_http_get0_server(c.http), c.ca_cert, email,
	    &err) == -1)
		goto out;
	json_array_foreach(json_object_get(policy, "profiles"), i, jp) {
		lb_err perr = { 0 };

		if ((r = policy_profile(jp, &p, &perr)) == 0)
			continue;
		entitled++;
		if (r == -1) {
			cli_fail(&perr);
			failed++;
			continue;
		}
		if (recover_staged(dir, p.name, p.escrow, &perr) == -1) {
			cli_fail(&perr);
			failed++;
			continue;
		}
		free(crt);
		if ((crt = file_in(dir, p.name, ".crt")) == NULL) {
			failed++;
			continue;
		}
		if (file_exists(crt)) {
			printf("%s: already enrolled in %s (renewals: lockbox "
			    "enroll --auto)\n", p.name, dir);
			continue;
		}
		switch (enroll_one(&c, dir, &p, email, NULL, chain, &serial,
		    &perr)) {
		case DONE:
			printf("%s: enrolled, serial %s\n", p.name, serial);
			break;
		case PENDING:
			break;
		case FAILED:
			cli_fail(&perr);
			failed++;
			/* a refused credential will not work for the next */
			if (perr.code == LB_EUNAUTH)
				goto out;
			break;
		}
		free(serial);
		serial = NULL;
	}
	if (entitled == 0) {
		lb_err_set(&err, LB_EFORBIDDEN, "the server's policy entitles "
		    "%s to no profile: ask the CA's administrators", email);
		goto out;
	}
	rc = failed ? 1 : 0;
out:
	if (err.code != LB_OK)
		cli_fail(&err);
	free(crt);
	free(serial);
	sk_X509_pop_free(chain, X509_free);
	json_decref(policy);
	conn_clear(&c);
	core_secret_free(password);
	free(dir);
	return rc;
}

/* ------------------------------------------------------------------ */
/* lockbox enroll --auto                                               */

/* Reads state.json into c (server, CA) and *user. */
static int
read_state(const char *dir, struct conn *c, char **user, lb_err *err)
{
	json_t *j = NULL;
	json_error_t jerr;
	unsigned char *buf = NULL;
	size_t len = 0;
	char *path = file_in(dir, STATE_FILE, "");
	const char *ca, *u;
	int rc = -1;

	if (path == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (!file_exists(path)) {
		lb_err_set(err, LB_ENOTFOUND, "%s has no %s: enroll first with "
		    "'lockbox enroll --server URL --ca-cert FILE --user EMAIL "
		    "--token-file F'", dir, STATE_FILE);
		goto out;
	}
	if (core_file_read(path, (size_t)64 * 1024, &buf, &len, err) == -1)
		goto out;
	j = json_loadb((char *)buf, len, 0, &jerr);
	ca = json_string_value(json_object_get(j, "ca_cert"));
	u = json_string_value(json_object_get(j, "user"));
	if (!json_is_object(j) || ca == NULL || u == NULL) {
		lb_err_set(err, LB_EINVAL, "%s is damaged: enroll again", path);
		goto out;
	}
	if ((c->ca_cert = strdup(ca)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (conn_open(c, json_string_value(json_object_get(j, "server")),
	    err) == -1) {
		lb_err_set(err, LB_EINVAL, "%s is damaged: enroll again", path);
		goto out;
	}
	if ((*user = strdup(u)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	free(buf);
	free(path);
	return rc;
}

/*
 * When the certificate of profile p that we hold must be renewed: the
 * policy's renew_after for its serial, else computed from the profile's
 * window (renew_percent of the lifetime or renew_days before notAfter,
 * whichever comes first).  -1 when the policy's date is malformed.
 */
static int
renew_after(const struct pprofile *p, X509 *cert, time_t *when,
    lb_err *err)
{
	char *serial = ca_cert_serial(cert);
	json_t *jc;
	size_t i;
	time_t nb = 0, na = 0, t1, t2;
	int day = 0, sec = 0;
	const char *s;
	int rc = -1;

	if (serial == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	json_array_foreach(p->certs, i, jc) {
		s = json_string_value(json_object_get(jc, "serial"));
		if (s == NULL || strcasecmp(s, serial) != 0)
			continue;
		if (core_time_parse(json_string_value(json_object_get(jc,
		    "renew_after")), 0, when) == -1) {
			lb_err_set(err, LB_EINVAL, "the server's policy has a "
			    "malformed renew_after for %s", p->name);
			goto out;
		}
		rc = 0;
		goto out;
	}
	/* not listed: work it out from the certificate */
	if (ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notBefore(cert)) != 1)
		goto bad;
	nb = time(NULL) + (time_t)day * 86400 + sec;
	if (ASN1_TIME_diff(&day, &sec, NULL, X509_get0_notAfter(cert)) != 1)
		goto bad;
	na = time(NULL) + (time_t)day * 86400 + sec;
	t1 = nb + (na - nb) / 100 * p->renew_percent;
	t2 = na - (time_t)p->renew_days * 86400;
	*when = t1 < t2 ? t1 : t2;
	rc = 0;
	goto out;
bad:
	lb_err_set(err, LB_EINVAL, "%s: the certificate's validity is "
	    "unreadable", p->name);
out:
	free(serial);
	return rc;
}

/* Whether cert has expired. */
static bool
expired(X509 *cert)
{
	return X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0;
}

/*
 * Points c's client credential at DIR/smime-sign.{crt,key}: also after a
 * renewal, when the files are the same but hold the new pair (the client
 * then makes a new connection and shows it).
 */
static int
use_sign_cert(const char *dir, struct conn *c, lb_err *err)
{
	char *crt = file_in(dir, SIGN_PROFILE, ".crt");
	char *key = file_in(dir, SIGN_PROFILE, ".key");
	int rc;

	if (crt == NULL || key == NULL)
		rc = lb_err_set(err, LB_EINTERNAL, "out of memory");
	else if (!file_exists(crt) || !file_exists(key))
		rc = lb_err_set(err, LB_ENOTFOUND, "%s has no signing "
		    "certificate (%s.crt and .key) to authenticate with: enroll "
		    "again with a token or password", dir, SIGN_PROFILE);
	else if ((rc = cli_http_set_cert_files(c->http, crt, key, err)) == 0)
		c->cert_auth = true;
	free(crt);
	free(key);
	return rc;
}

/* Renews (or first enrolls) profile p when due; prints one line. */
static int
auto_one(struct conn *c, const char *dir, const struct pprofile *p,
    const char *email, STACK_OF(X509) **chain, json_t *profiles,
    lb_err *err)
{
	char *crt = NULL, *serial = NULL, date[32];
	X509 *cert = NULL;
	time_t when = 0;
	int rc = -1;

	if (recover_staged(dir, p->name, p->escrow, err) == -1)
		goto out;
	if ((crt = file_in(dir, p->name, ".crt")) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (file_exists(crt)) {
		if ((cert = read_cert(crt, err)) == NULL ||
		    renew_after(p, cert, &when, err) == -1)
			goto out;
		if (time(NULL) < when) {
			core_time_fmt(when, date, sizeof(date));
			printf("%s: up to date until %s\n", p->name, date);
			rc = 0;
			goto out;
		}
		if (expired(cert)) {
			lb_err_set(err, LB_ECONFLICT, "%s: the certificate has "
			    "expired and cannot be renewed: enroll again with a "
			    "token or password", p->name);
			goto out;
		}
	}
	if (*chain == NULL && (*chain = get_chain(c, p->cacerts != NULL ?
	    p->cacerts : cacerts_path(profiles), dir, err)) == NULL)
		goto out;
	switch (enroll_one(c, dir, p, email, cert, *chain, &serial, err)) {
	case DONE:
		printf("%s: %s, serial %s\n", p->name, cert != NULL ?
		    "renewed" : "enrolled", serial);
		/* the old signing certificate is superseded: show the new */
		if (strcmp(p->name, SIGN_PROFILE) == 0 &&
		    use_sign_cert(dir, c, err) == -1)
			goto out;
		break;
	case PENDING:
		break;
	case FAILED:
		goto out;
	}
	rc = 0;
out:
	free(serial);
	free(crt);
	X509_free(cert);
	return rc;
}

static int
enroll_auto(const char *diropt)
{
	struct conn c;
	json_t *policy = NULL, *jp, *profiles;
	STACK_OF(X509) *chain = NULL;
	struct pprofile p;
	lb_err err = { 0 };
	char *dir = NULL, *user = NULL;
	const char *email;
	size_t i;
	int rc = 1, failed = 0, r;

	memset(&c, 0, sizeof(c));
	if ((dir = agent_dir(diropt, &err)) == NULL ||
	    read_state(dir, &c, &user, &err) == -1 ||
	    recover_staged(dir, SIGN_PROFILE, false, &err) == -1 ||
	    use_sign_cert(dir, &c, &err) == -1 ||
	    get_policy(&c, &policy, &err) == -1)
		goto out;
	email = policy_email(policy, user);
	profiles = json_object_get(policy, "profiles");
	json_array_foreach(profiles, i, jp) {
		lb_err perr = { 0 };

		if ((r = policy_profile(jp, &p, &perr)) == 0)
			continue;
		if (r == -1 || auto_one(&c, dir, &p, email, &chain, profiles,
		    &perr) == -1) {
			cli_fail(&perr);
			failed++;
		}
	}
	rc = failed ? 1 : 0;
out:
	if (err.code != LB_OK)
		cli_fail(&err);
	sk_X509_pop_free(chain, X509_free);
	json_decref(policy);
	conn_clear(&c);
	free(user);
	free(dir);
	return rc;
}

/* ------------------------------------------------------------------ */

int
cmd_enroll(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 'S' },
		{ "ca-cert", required_argument, NULL, 'C' },
		{ "user", required_argument, NULL, 'u' },
		{ "password-file", required_argument, NULL, 'p' },
		{ "token-file", required_argument, NULL, 't' },
		{ "dir", required_argument, NULL, 'd' },
		{ "auto", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *server = NULL, *ca_cert = NULL, *user = NULL;
	const char *password_file = NULL, *token_file = NULL, *dir = NULL;
	bool autom = false;
	int c;

	while ((c = cli_getopt(argc, argv, opts, enroll_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'S':
			server = optarg;
			break;
		case 'C':
			ca_cert = optarg;
			break;
		case 'u':
			user = optarg;
			break;
		case 'p':
			password_file = optarg;
			break;
		case 't':
			token_file = optarg;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'a':
			autom = true;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc)
		return cli_usage("enroll", "unexpected argument '%s'",
		    argv[optind]);
	if (autom) {
		if (server != NULL || ca_cert != NULL || user != NULL ||
		    password_file != NULL || token_file != NULL)
			return cli_usage("enroll", "--auto takes only --dir: "
			    "the server and credential come from the first "
			    "enrollment");
	} else {
		if (server == NULL || ca_cert == NULL)
			return cli_usage("enroll", "--server and --ca-cert are "
			    "required (or --auto to renew)");
		if (user == NULL)
			return cli_usage("enroll", "--user is required (your "
			    "login, or your e-mail with --token-file)");
		if ((password_file == NULL) == (token_file == NULL))
			return cli_usage("enroll", "give one of "
			    "--password-file and --token-file");
		if (strncmp(server, "https://", 8) != 0)
			return cli_usage("enroll", "--server must be an "
			    "https:// URL");
	}
	return autom ? enroll_auto(dir) : enroll_first(dir, server, ca_cert,
	    user, password_file, token_file);
}
