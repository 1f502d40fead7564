/*
 * client.c - the enrollment client, the other end of est.c and policy.c:
 * what `lockbox enroll` does on the user's machine.  The first run (HTTP
 * Basic: directory password or one-time token) reads the server's policy
 * and enrolls every profile the user is entitled to over EST: the signing
 * key is made here and never leaves the machine (simpleenroll); the
 * encryption key is made and escrowed by the server (serverkeygen).  The
 * --auto run, for cron or a systemd timer, reads the policy again
 * authenticated by the current signing certificate and renews what is due
 * (simplereenroll / serverkeygen), keeping every previous encryption key
 * so that old mail stays readable.
 *
 * Everything lives in one directory (0700): per profile NAME.key (0600),
 * NAME.crt, NAME.p12 + NAME.p12.pass (0600) for mail clients; ca.pem (the
 * chain from cacerts), server-ca.pem (what the server's TLS certificate
 * must chain to) and state.json.  A new pair is staged as NAME.*.new and
 * renamed into place; a run interrupted between the two is completed by
 * the next one.
 *
 * HTTP goes through the transport the caller passes (cli/http.c in the
 * CLI, an in-process fake in the unit tests).  Credentials are only ever
 * sent to the server named at enrollment: the policy's EST URLs are
 * followed by their path on that server.  What becomes of each profile
 * goes to the caller's report function, which prints it.
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

#include "enroll/enroll_int.h"

#define SERVER_CA_FILE "server-ca.pem"
#define CHAIN_FILE     "ca.pem"
#define POLICY_PATH    "/api/v1/policy"
#define CACERTS_PATH   "/.well-known/est/cacerts"
#define SIGN_PROFILE   "smime-sign"
/* Answers: a policy, a chain or a key with its certificate. */
#define REPLY_MAX      ((size_t)1024 * 1024)
#define MAX_PARTS      4

/* One run: where, through what, and to whom it reports. */
struct run {
	const enroll_transport *t;
	void *h;                 /* the transport's client, or NULL */
	char *ca_cert;           /* what the server must chain to */
	bool cert_auth;          /* authenticated by the signing certificate */
	const char *dir;
	enroll_report_fn report;
	void *arg;
};

static void
report(const struct run *r, const char *profile, enum enroll_outcome oc,
    const char *serial, time_t until, const char *retry_after,
    const lb_err *err)
{
	enroll_report rep;

	memset(&rep, 0, sizeof(rep));
	rep.profile = profile;
	rep.outcome = oc;
	rep.serial = serial;
	rep.until = until;
	rep.retry_after = retry_after != NULL ? retry_after : "";
	rep.dir = r->dir;
	rep.err = err;
	r->report(&rep, r->arg);
}

static const char *
server_of(const struct run *r)
{
	return r->h != NULL ? r->t->server(r->h) : "the server";
}

/* ------------------------------------------------------------------ */
/* Answers                                                             */

/*
 * The server's text/plain reason, first line only, printable characters
 * only and at most 200 of them: it is shown to the user.
 */
static void
reply_reason(const core_http_reply *rp, char *out, size_t outlen)
{
	size_t i, n = 0;
	const char *p = rp->body;

	out[0] = '\0';
	if (p == NULL || strncasecmp(rp->ctype, "text/plain", 10) != 0)
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
reply_fail(const struct run *r, const core_http_reply *rp, const char *what,
    lb_err *err)
{
	const char *server = server_of(r);
	char why[256];

	reply_reason(rp, why, sizeof(why));
	switch (rp->status) {
	case 401:
		return lb_err_set(err, LB_EUNAUTH, "%s refused the credentials "
		    "for %s (HTTP 401)%s%s: %s", server, what,
		    why[0] ? ": " : "", why, r->cert_auth ?
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
		    rp->retry_after[0] ? rp->retry_after : "a few");
	default:
		return lb_err_set(err, rp->status == 400 ? LB_EINVAL :
		    LB_EINTERNAL, "%s answered HTTP %ld to %s%s%s", server,
		    rp->status, what, why[0] ? ": " : "", why);
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
	if (strlen(p) > ENROLL_URL_MAX)
		return NULL;
	for (const char *q = p; *q != '\0'; q++)
		if (!isgraph((unsigned char)*q))
			return NULL;
	return p;
}

/* The path to request for op of p on our server, or NULL. */
static const char *
est_path(const enroll_policy_profile *p, enum enroll_est_op op)
{
	return url_path(p->est[op]);
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
	X509_REQ *req;
	unsigned char *der = NULL;
	int len, rc = -1;

	*out = NULL;
	if ((req = ca_csr_make(key, subject, NULL, email, err)) == NULL)
		return -1;
	if ((len = i2d_X509_REQ(req, &der)) <= 0) {
		log_openssl("i2d_X509_REQ");
		lb_err_set(err, LB_EINTERNAL, "cannot encode the certificate "
		    "request");
	} else if (core_b64_encode(der, (size_t)len, 0, out, outlen) == 0) {
		rc = 0;
	} else {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
	}
	OPENSSL_free(der);
	X509_REQ_free(req);
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
/* The policy and the chain                                            */

/*
 * Whether p can be used: what the codec found wrong with it, and whether
 * it names an EST URL for how it enrolls.
 */
static int
profile_usable(const enroll_policy_profile *p, lb_err *err)
{
	if (p->problem.code != LB_OK)
		return lb_err_set(err, p->problem.code, "%s", p->problem.msg);
	if (est_path(p, p->escrow ? ENROLL_EST_SERVERKEYGEN :
	    ENROLL_EST_SIMPLEENROLL) == NULL)
		return lb_err_set(err, LB_EINVAL, "the server's policy has no "
		    "usable EST URL for %s", p->name);
	return 0;
}

/* GET the policy into *doc. */
static int
get_policy(const struct run *r, enroll_policy_doc *doc, lb_err *err)
{
	core_http_reply rp;
	lb_err perr = { 0 };
	int rc = -1;

	if (r->t->request(r->h, "GET", POLICY_PATH, NULL, NULL, 0, REPLY_MAX,
	    &rp, err) == -1)
		return -1;
	if (rp.status != 200) {
		reply_fail(r, &rp, "the policy", err);
		goto out;
	}
	if (enroll_policy_parse(rp.body, rp.len, doc, &perr) == -1) {
		lb_err_set(err, perr.code == LB_EINTERNAL ? LB_EINTERNAL :
		    LB_EINVAL, "%s answered the policy with something that is "
		    "not a policy document (%s)", server_of(r), perr.msg);
		goto out;
	}
	rc = 0;
out:
	core_http_reply_clear(&rp);
	return rc;
}

/* GET cacerts: the chain, written to DIR/ca.pem. */
static STACK_OF(X509) *
get_chain(const struct run *r, const char *path, lb_err *err)
{
	STACK_OF(X509) *chain = NULL;
	core_http_reply rp;
	X509 *certs[16];
	char *file = NULL;
	int i, n;

	if (r->t->request(r->h, "GET", path, NULL, NULL, 0, REPLY_MAX, &rp,
	    err) == -1)
		return NULL;
	if (rp.status != 200) {
		reply_fail(r, &rp, "cacerts", err);
		goto out;
	}
	if ((chain = enroll_est_certs_parse((unsigned char *)rp.body, rp.len,
	    err)) == NULL)
		goto out;
	n = sk_X509_num(chain);
	for (i = 0; i < n && i < 16; i++)
		certs[i] = sk_X509_value(chain, i);
	if ((file = enroll_file_in(r->dir, CHAIN_FILE, "")) == NULL ||
	    enroll_write_certs(file, certs, (size_t)i, 0644, err) == -1) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		sk_X509_pop_free(chain, X509_free);
		chain = NULL;
	}
out:
	free(file);
	core_http_reply_clear(&rp);
	return chain;
}

/* The cacerts path: the first profile's, else the well-known one. */
static const char *
cacerts_path(const enroll_policy_doc *doc)
{
	const char *p;
	size_t i;

	for (i = 0; i < doc->nprofiles; i++)
		if ((p = est_path(&doc->profiles[i], ENROLL_EST_CACERTS)) !=
		    NULL)
			return p;
	return CACERTS_PATH;
}

/* The e-mail the policy names, or fallback. */
static const char *
policy_email(const enroll_policy_doc *doc, const char *fallback)
{
	return doc->email != NULL && core_email_valid(doc->email) ?
	    doc->email : fallback;
}

/* ------------------------------------------------------------------ */
/* One enrollment                                                      */

/*
 * The key of an enrollment: NAME.pending.key when a request awaits
 * approval (the server finds it again by its key), else a new one.
 */
static EVP_PKEY *
enroll_key(const char *pending, enum ca_key_type t, lb_err *err)
{
	if (enroll_file_exists(pending))
		return ca_key_read(pending, NULL, err);
	return ca_keygen(t, err);
}

/*
 * Parses a serverkeygen answer: the key part (application/pkcs8) and the
 * certificate part (application/pkcs7-mime).
 */
static int
parse_keygen(const core_http_reply *rp, EVP_PKEY **key, X509 **cert,
    lb_err *err)
{
	enroll_part parts[MAX_PARTS];
	STACK_OF(X509) *certs = NULL;
	size_t n = 0, i;
	int rc = -1;

	memset(parts, 0, sizeof(parts));
	if (strncasecmp(rp->ctype, "multipart/mixed", 15) != 0) {
		lb_err_set(err, LB_EINVAL, "serverkeygen answered %s instead "
		    "of multipart/mixed", rp->ctype[0] ? rp->ctype : "nothing");
		return -1;
	}
	if (enroll_est_multipart_parse(rp->ctype, rp->body, rp->len, parts,
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

/* The certificate of a 200 answer to simpleenroll or serverkeygen, and
 * for serverkeygen the key. */
static X509 *
answer_cert(const enroll_policy_profile *p, const core_http_reply *rp,
    EVP_PKEY **srvkey, lb_err *err)
{
	STACK_OF(X509) *certs;
	X509 *cert = NULL;

	if (p->escrow)
		return parse_keygen(rp, srvkey, &cert, err) == 0 ? cert : NULL;
	if ((certs = enroll_est_certs_parse((unsigned char *)rp->body,
	    rp->len, err)) == NULL)
		return NULL;
	if ((cert = sk_X509_shift(certs)) == NULL)
		lb_err_set(err, LB_EINVAL, "the server answered %s without a "
		    "certificate", p->name);
	sk_X509_pop_free(certs, X509_free);
	return cert;
}

/*
 * Enrolls (renewing: renews) profile p for email and installs the
 * result.  renewing: the certificate being renewed (its subject goes into
 * the CSR), or NULL.  Reports what became of it; -1 when it failed.
 */
static int
enroll_one(const struct run *r, const enroll_policy_profile *p,
    const char *email, X509 *renewing, STACK_OF(X509) *chain, lb_err *err)
{
	static const char *const pkcs10[] = {
		"Content-Type: application/pkcs10",
		"Content-Transfer-Encoding: base64", NULL,
	};
	core_http_reply rp;
	EVP_PKEY *key = NULL, *srvkey = NULL;
	X509 *cert = NULL;
	char *csr = NULL, *pending = NULL, *serial = NULL, why[256];
	const char *path;
	size_t csrlen = 0;
	int rc = -1;

	memset(&rp, 0, sizeof(rp));
	path = p->escrow ? est_path(p, ENROLL_EST_SERVERKEYGEN) :
	    renewing != NULL && est_path(p, ENROLL_EST_SIMPLEREENROLL) !=
	    NULL ? est_path(p, ENROLL_EST_SIMPLEREENROLL) :
	    est_path(p, ENROLL_EST_SIMPLEENROLL);
	if (path == NULL) {
		lb_err_set(err, LB_EINVAL, "the server's policy has no EST URL "
		    "to renew %s", p->name);
		goto out;
	}
	if ((pending = enroll_file_in(r->dir, p->name, ".pending.key")) ==
	    NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	/* serverkeygen ignores the request's key: any will do */
	if ((key = enroll_key(pending, p->escrow ? CA_KEY_ECP256 :
	    enroll_policy_key_type(p), err)) == NULL ||
	    make_csr(key, email, renewing != NULL ?
	    X509_get_subject_name(renewing) : NULL, &csr, &csrlen, err) == -1)
		goto out;
	if (r->t->request(r->h, "POST", path, pkcs10, csr, csrlen, REPLY_MAX,
	    &rp, err) == -1)
		goto out;
	if (rp.status == 202) {
		/* the server knows the request again by its key */
		if (!enroll_file_exists(pending) &&
		    ca_key_write(pending, key, NULL, false, err) == -1)
			goto out;
		report(r, p->name, ENROLL_OUT_PENDING, NULL, 0, rp.retry_after,
		    NULL);
		rc = 0;
		goto out;
	}
	if (rp.status != 200) {
		char what[96];

		snprintf(what, sizeof(what), "the %s request", p->name);
		reply_fail(r, &rp, what, err);
		goto out;
	}
	if ((cert = answer_cert(p, &rp, &srvkey, err)) == NULL)
		goto out;
	if ((serial = ca_cert_serial(cert)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	/* a renewed signing key replaces the old one; encryption keys stay */
	if (enroll_stage_install(r->dir, p->name, email, p->escrow ? srvkey :
	    key, cert, chain, p->escrow, err) == -1)
		goto out;
	unlink(pending);
	report(r, p->name, renewing != NULL ? ENROLL_OUT_RENEWED :
	    ENROLL_OUT_ENROLLED, serial, 0, NULL, NULL);
	rc = 0;
out:
	if (rc == -1 && err->code == LB_OK) {
		reply_reason(&rp, why, sizeof(why));
		lb_err_set(err, LB_EINTERNAL, "%s failed%s%s", p->name,
		    why[0] ? ": " : "", why);
	}
	free(serial);
	X509_free(cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(srvkey);
	if (csr != NULL)
		OPENSSL_cleanse(csr, csrlen);
	free(csr);
	free(pending);
	core_http_reply_clear(&rp);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The connection                                                      */

/* Copies ca_file into DIR/server-ca.pem (checked to hold a certificate);
 * r->ca_cert names the copy. */
static int
copy_server_ca(struct run *r, const char *from, lb_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	X509 *x = NULL;
	char *to = NULL;
	int rc = -1;

	if (core_file_read(from, (size_t)1024 * 1024, &buf, &len, err) == -1)
		return -1;
	if ((x = ca_cert_parse(buf, len, err)) == NULL)
		goto out;
	if ((to = enroll_file_in(r->dir, SERVER_CA_FILE, "")) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (strcmp(from, to) != 0 &&
	    core_file_write(to, buf, len, 0644, false, err) == -1)
		goto out;
	r->ca_cert = to;
	to = NULL;
	rc = 0;
out:
	X509_free(x);
	free(to);
	free(buf);
	return rc;
}

/*
 * Opens the transport for server, trusting r->ca_cert; a server URL takes
 * no path (the policy's EST URLs are followed by theirs).
 */
static int
conn_open(struct run *r, const char *server, lb_err *err)
{
	if ((r->h = r->t->open(r->t->ctx, server, r->ca_cert, err)) == NULL)
		return -1;
	if (strchr(r->t->server(r->h) + 8, '/') != NULL)
		return lb_err_set(err, LB_EINVAL, "--server takes no path: "
		    "https://HOST:PORT");
	return 0;
}

static void
run_clear(struct run *r)
{
	if (r->h != NULL)
		r->t->close(r->h);
	free(r->ca_cert);
	r->h = NULL;
	r->ca_cert = NULL;
}

/*
 * Points the client credential at DIR/smime-sign.{crt,key}: also after a
 * renewal, when the files are the same but hold the new pair (the
 * transport then makes a new connection and shows it).
 */
static int
use_sign_cert(struct run *r, lb_err *err)
{
	char *crt = enroll_file_in(r->dir, SIGN_PROFILE, ".crt");
	char *key = enroll_file_in(r->dir, SIGN_PROFILE, ".key");
	int rc;

	if (crt == NULL || key == NULL)
		rc = lb_err_set(err, LB_EINTERNAL, "out of memory");
	else if (!enroll_file_exists(crt) || !enroll_file_exists(key))
		rc = lb_err_set(err, LB_ENOTFOUND, "%s has no signing "
		    "certificate (%s.crt and .key) to authenticate with: enroll "
		    "again with a token or password", r->dir, SIGN_PROFILE);
	else if ((rc = r->t->set_cert_files(r->h, crt, key, err)) == 0)
		r->cert_auth = true;
	free(crt);
	free(key);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The first enrollment                                                */

/* Enrolls p when not yet enrolled; reports what became of it. */
static int
first_one(const struct run *r, const enroll_policy_profile *p,
    const char *email, STACK_OF(X509) *chain, lb_err *err)
{
	char *crt;
	int rc;

	if (profile_usable(p, err) == -1 ||
	    enroll_stage_recover(r->dir, p->name, p->escrow, err) == -1)
		return -1;
	if ((crt = enroll_file_in(r->dir, p->name, ".crt")) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (enroll_file_exists(crt)) {
		report(r, p->name, ENROLL_OUT_ALREADY, NULL, 0, NULL, NULL);
		rc = 0;
	} else {
		rc = enroll_one(r, p, email, NULL, chain, err);
	}
	free(crt);
	return rc;
}

int
enroll_client_first(const enroll_transport *t, const enroll_client_opts *o,
    enroll_report_fn fn, void *arg, lb_err *err)
{
	struct run r;
	enroll_policy_doc doc;
	STACK_OF(X509) *chain = NULL;
	char *secret = NULL;
	const char *email;
	size_t i;
	int rc = -1, failed = 0, entitled = 0;

	memset(&r, 0, sizeof(r));
	memset(&doc, 0, sizeof(doc));
	r.t = t;
	r.dir = o->dir;
	r.report = fn;
	r.arg = arg;
	if (copy_server_ca(&r, o->ca_cert, err) == -1 ||
	    conn_open(&r, o->server, err) == -1 ||
	    (secret = core_secret_read(o->secret_file, err)) == NULL)
		goto out;
	trim_secret(secret);
	if (secret[0] == '\0') {
		lb_err_set(err, LB_EINVAL, "the password or token file is "
		    "empty");
		goto out;
	}
	if (t->set_basic(r.h, o->login, secret, err) == -1 ||
	    get_policy(&r, &doc, err) == -1)
		goto out;
	email = policy_email(&doc, o->login);
	if ((chain = get_chain(&r, cacerts_path(&doc), err)) == NULL ||
	    enroll_state_write(r.dir, t->server(r.h), r.ca_cert, email,
	    err) == -1)
		goto out;
	for (i = 0; i < doc.nprofiles; i++) {
		const enroll_policy_profile *p = &doc.profiles[i];
		lb_err perr = { 0 };

		/* a profile named badly counts: it may be meant for us */
		if (!p->enroll && enroll_policy_name_ok(p->name))
			continue;
		entitled++;
		if (first_one(&r, p, email, chain, &perr) == 0)
			continue;
		report(&r, p->name, ENROLL_OUT_FAILED, NULL, 0, NULL, &perr);
		failed++;
		/* a refused credential will not work for the next */
		if (perr.code == LB_EUNAUTH)
			break;
	}
	if (entitled == 0) {
		lb_err_set(err, LB_EFORBIDDEN, "the server's policy entitles "
		    "%s to no profile: ask the CA's administrators", email);
		goto out;
	}
	rc = failed ? 1 : 0;
out:
	sk_X509_pop_free(chain, X509_free);
	enroll_policy_clear(&doc);
	run_clear(&r);
	core_secret_free(secret);
	return rc;
}

/* ------------------------------------------------------------------ */
/* --auto                                                              */

/*
 * When the certificate of profile p that we hold must be renewed: the
 * policy's renew_after for its serial, else worked out from the profile's
 * window with the server's own rule.
 */
static int
renew_after(const enroll_policy_profile *p, X509 *cert, time_t *when,
    lb_err *err)
{
	char *serial = ca_cert_serial(cert);
	time_t nb, na;
	size_t i;
	int rc = -1;

	if (serial == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	for (i = 0; i < p->ncerts; i++) {
		const enroll_policy_cert *c = &p->certs[i];

		if (c->serial == NULL || strcasecmp(c->serial, serial) != 0)
			continue;
		if (c->renew_after == 0) {
			lb_err_set(err, LB_EINVAL, "the server's policy has a "
			    "malformed renew_after for %s", p->name);
			goto out;
		}
		*when = c->renew_after;
		rc = 0;
		goto out;
	}
	/* not listed: work it out from the certificate */
	nb = core_asn1_time(X509_get0_notBefore(cert));
	na = core_asn1_time(X509_get0_notAfter(cert));
	if (nb == 0 || na == 0) {
		lb_err_set(err, LB_EINVAL, "%s: the certificate's validity is "
		    "unreadable", p->name);
		goto out;
	}
	*when = enroll_renew_after(nb, na, p->renew_percent, p->renew_days);
	rc = 0;
out:
	free(serial);
	return rc;
}

/* Renews (or first enrolls) profile p when due; reports it. */
static int
auto_one(struct run *r, const enroll_policy_profile *p, const char *email,
    STACK_OF(X509) **chain, const enroll_policy_doc *doc, lb_err *err)
{
	char *crt = NULL;
	const char *cacerts;
	X509 *cert = NULL;
	time_t when = 0;
	int rc = -1;

	if (profile_usable(p, err) == -1 ||
	    enroll_stage_recover(r->dir, p->name, p->escrow, err) == -1)
		goto out;
	if ((crt = enroll_file_in(r->dir, p->name, ".crt")) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (enroll_file_exists(crt)) {
		if ((cert = enroll_read_cert(crt, err)) == NULL ||
		    renew_after(p, cert, &when, err) == -1)
			goto out;
		if (time(NULL) < when) {
			report(r, p->name, ENROLL_OUT_UP_TO_DATE, NULL, when,
			    NULL, NULL);
			rc = 0;
			goto out;
		}
		if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
			lb_err_set(err, LB_ECONFLICT, "%s: the certificate has "
			    "expired and cannot be renewed: enroll again with a "
			    "token or password", p->name);
			goto out;
		}
	}
	cacerts = est_path(p, ENROLL_EST_CACERTS);
	if (*chain == NULL && (*chain = get_chain(r, cacerts != NULL ?
	    cacerts : cacerts_path(doc), err)) == NULL)
		goto out;
	if (enroll_one(r, p, email, cert, *chain, err) == -1)
		goto out;
	/* the old signing certificate is superseded: show the new one */
	if (strcmp(p->name, SIGN_PROFILE) == 0 && use_sign_cert(r, err) == -1)
		goto out;
	rc = 0;
out:
	free(crt);
	X509_free(cert);
	return rc;
}

int
enroll_client_auto(const enroll_transport *t, const char *dir,
    enroll_report_fn fn, void *arg, lb_err *err)
{
	struct run r;
	enroll_policy_doc doc;
	enroll_state st;
	STACK_OF(X509) *chain = NULL;
	const char *email;
	size_t i;
	int rc = -1, failed = 0;

	memset(&r, 0, sizeof(r));
	memset(&doc, 0, sizeof(doc));
	memset(&st, 0, sizeof(st));
	r.t = t;
	r.dir = dir;
	r.report = fn;
	r.arg = arg;
	if (enroll_state_read(dir, &st, err) == -1)
		goto out;
	r.ca_cert = st.ca_cert;
	st.ca_cert = NULL;
	if (conn_open(&r, st.server, err) == -1 ||
	    enroll_stage_recover(dir, SIGN_PROFILE, false, err) == -1 ||
	    use_sign_cert(&r, err) == -1 ||
	    get_policy(&r, &doc, err) == -1)
		goto out;
	email = policy_email(&doc, st.email);
	for (i = 0; i < doc.nprofiles; i++) {
		const enroll_policy_profile *p = &doc.profiles[i];
		lb_err perr = { 0 };

		if (!p->enroll && enroll_policy_name_ok(p->name))
			continue;
		if (auto_one(&r, p, email, &chain, &doc, &perr) == -1) {
			report(&r, p->name, ENROLL_OUT_FAILED, NULL, 0, NULL,
			    &perr);
			failed++;
		}
	}
	rc = failed ? 1 : 0;
out:
	sk_X509_pop_free(chain, X509_free);
	enroll_policy_clear(&doc);
	enroll_state_clear(&st);
	run_clear(&r);
	return rc;
}
