/*
 * est_http.c - EST over HTTPS (RFC 7030 with RFC 8951's clarifications)
 * and the autoenrollment policy.  Paths are /.well-known/est/[LABEL/]OP;
 * the label is a profile name and no label means smime-sign.  The caller
 * is the HTTP Basic user (directory password or one-time token) or the
 * TLS client certificate: never the CSR.  Errors are text/plain with a
 * human reason; 401 names the Basic realm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "web/web_int.h"

#define EST_REALM      "Basic realm=\"lockbox EST\", charset=\"UTF-8\""
#define AUTH_HDR_MAX   4096
#define CTYPE_CERTS    "application/pkcs7-mime; smime-type=certs-only"
#define CTYPE_CSRATTRS "application/csrattrs"
#define CTYPE_PKCS8    "application/pkcs8"
#define CTYPE_SKEY     "application/pkcs7-mime; smime-type=server-generated-key"

enum est_op { EST_CACERTS, EST_CSRATTRS, EST_SIMPLE, EST_RENEW, EST_KEYGEN };

static const struct {
	const char *name;
	enum est_op op;
	const char *method;
} est_ops[] = {
	{ "cacerts", EST_CACERTS, "GET" },
	{ "csrattrs", EST_CSRATTRS, "GET" },
	{ "simpleenroll", EST_SIMPLE, "POST" },
	{ "simplereenroll", EST_RENEW, "POST" },
	{ "serverkeygen", EST_KEYGEN, "POST" },
};
#define NOPS (sizeof(est_ops) / sizeof(est_ops[0]))

/* ------------------------------------------------------------------ */
/* Answers                                                             */

static enum MHD_Result
est_send(struct web_req *r, int status, const char *ctype, const char *body,
    size_t len, const char *h1, const char *v1)
{
	struct MHD_Response *resp;

	if ((resp = MHD_create_response_from_buffer(len, (void *)body,
	    MHD_RESPMEM_MUST_COPY)) == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, "Content-Transfer-Encoding",
	    "base64") != MHD_YES || (h1 != NULL &&
	    MHD_add_response_header(resp, h1, v1) != MHD_YES)) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	return web_queue(r, status, resp, ctype, NULL);
}

/* A 200 answer with the base64 body b64, which it frees. */
static enum MHD_Result
est_send_ok(struct web_req *r, const char *ctype, char *b64, size_t len)
{
	enum MHD_Result ret = est_send(r, 200, ctype, b64, len, NULL, NULL);

	free(b64);
	return ret;
}

enum MHD_Result
web_est_error(struct web_req *r, int status, const char *detail)
{
	struct MHD_Response *resp;
	char buf[700];
	int n;

	n = snprintf(buf, sizeof(buf), "%s\n", detail != NULL ? detail :
	    "error");
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	if ((resp = MHD_create_response_from_buffer((size_t)n, buf,
	    MHD_RESPMEM_MUST_COPY)) == NULL)
		return MHD_NO;
	if (status == 401 && MHD_add_response_header(resp,
	    MHD_HTTP_HEADER_WWW_AUTHENTICATE, EST_REALM) != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	return web_queue(r, status, resp, "text/plain; charset=utf-8", NULL);
}

/* An lb_err as an EST answer; internal details stay in the log. */
static enum MHD_Result
est_fail(struct web_req *r, const lb_err *err, unsigned retry_after)
{
	int status = lb_err_http_status(err->code);
	char ra[24];
	struct MHD_Response *resp;
	char buf[700];
	int n;

	if ((status >= 500 || status == 200) && retry_after == 0) {
		log_warnx("%s %s: %s", r->method, r->path, err->msg);
		return web_est_error(r, 500, "internal error: see the server "
		    "log");
	}
	if (status != 429 && retry_after == 0)
		return web_est_error(r, status, err->msg);
	/* throttled (429), or a dependency down for now (503) */
	if (status != 429)
		status = 503;
	n = snprintf(buf, sizeof(buf), "%s\n", status == 503 ?
	    "temporarily unavailable (the directory does not answer): try "
	    "again later" : err->msg);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	snprintf(ra, sizeof(ra), "%u", retry_after > 0 ? retry_after : 1);
	if ((resp = MHD_create_response_from_buffer((size_t)n, buf,
	    MHD_RESPMEM_MUST_COPY)) == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra) !=
	    MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	return web_queue(r, status, resp, "text/plain; charset=utf-8", NULL);
}

/* ------------------------------------------------------------------ */
/* Who is asking                                                       */

int
web_basic_auth_parse(const char *hdr, char **user, char **pass)
{
	unsigned char *dec = NULL;
	size_t declen = 0;
	const char *p;
	char *colon;

	*user = *pass = NULL;
	if (hdr == NULL || strlen(hdr) > AUTH_HDR_MAX ||
	    strncasecmp(hdr, "Basic", 5) != 0 || (hdr[5] != ' ' &&
	    hdr[5] != '\t'))
		return -1;
	for (p = hdr + 5; *p == ' ' || *p == '\t'; p++)
		;
	if (core_b64_decode(p, strlen(p), AUTH_HDR_MAX, 0, &dec, &declen) == -1)
		return -1;
	if (memchr(dec, '\0', declen) != NULL ||
	    (colon = memchr(dec, ':', declen)) == NULL ||
	    colon == (char *)dec) {
		OPENSSL_clear_free(dec, declen);
		return -1;
	}
	*user = strndup((char *)dec, (size_t)(colon - (char *)dec));
	*pass = strndup(colon + 1, declen - (size_t)(colon + 1 -
	    (char *)dec));
	OPENSSL_clear_free(dec, declen);
	if (*user == NULL || *pass == NULL) {
		free(*user);
		if (*pass != NULL)
			OPENSSL_clear_free(*pass, strlen(*pass));
		*user = *pass = NULL;
		return -1;
	}
	return 0;
}

/*
 * Authenticates the caller: HTTP Basic when sent (password or token),
 * else the TLS client certificate.  want_cert: the operation needs the
 * certificate (simplereenroll); profile: what the caller wants (NULL:
 * the policy).  0, or -1 with the answer queued (*ret).
 */
static int
est_authenticate(struct web_req *r, sqlite3 *db, bool want_cert,
    const char *profile, enroll_identity *id, enum MHD_Result *ret)
{
	const char *hdr = MHD_lookup_connection_value(r->conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	char addr[64], *user = NULL, *pass = NULL;
	unsigned retry_after = 0;
	X509 *cert = NULL;
	lb_err err;
	int got;

	lb_err_clear(&err);
	memset(id, 0, sizeof(*id));
	if (hdr != NULL && !want_cert) {
		if (web_basic_auth_parse(hdr, &user, &pass) == -1) {
			*ret = web_est_error(r, 401, "malformed Authorization "
			    "header: HTTP Basic expected");
			return -1;
		}
		web_client_addr(r->conn, addr, sizeof(addr));
		got = enroll_auth_basic(r->srv->enroll, db, addr, user, pass,
		    profile, id, &retry_after, &err);
		free(user);
		OPENSSL_clear_free(pass, strlen(pass));
		if (got == -1) {
			*ret = est_fail(r, &err, retry_after);
			return -1;
		}
		return 0;
	}
	if ((got = web_auth_subscriber(r, &cert, &err)) == -1) {
		log_warnx("%s %s: client certificate refused: %s", r->method,
		    r->path, err.msg);
		*ret = est_fail(r, &err, 0);
		return -1;
	}
	if (got == 0) {
		*ret = web_est_error(r, 401, want_cert ? "simplereenroll "
		    "needs the certificate being renewed as the TLS client "
		    "certificate" : "credentials required: HTTP Basic (e-mail "
		    "or user name, and the directory password or a one-time "
		    "enrollment token) or your current S/MIME signing "
		    "certificate over TLS");
		return -1;
	}
	got = enroll_auth_cert(r->srv->enroll, db, cert, id, &err);
	X509_free(cert);
	if (got == -1) {
		*ret = est_fail(r, &err, 0);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */

static enum MHD_Result
est_cacerts(struct web_req *r)
{
	STACK_OF(X509) *chain = ca_get0_chain(r->srv->ca);
	X509 *certs[16];
	size_t n = 0, len = 0;
	char *b64 = NULL;
	lb_err err;
	int i;

	lb_err_clear(&err);
	for (i = 0; i < sk_X509_num(chain) && n < 16; i++)
		certs[n++] = sk_X509_value(chain, i);
	if (enroll_est_certs_only(certs, n, &b64, &len, &err) == -1)
		return est_fail(r, &err, 0);
	return est_send_ok(r, CTYPE_CERTS, b64, len);
}

static enum MHD_Result
est_csrattrs(struct web_req *r, const char *profile)
{
	const ca_profile *p = ca_profile_get(r->srv->ca, profile);
	const char *names[8];
	size_t n = 0, len = 0;
	char *b64 = NULL;
	lb_err err;
	int t;

	lb_err_clear(&err);
	if (p == NULL || !ca_profile_is_subscriber(p))
		return web_est_error(r, 404, "no such EST label (profiles: "
		    "smime-sign, smime-enc)");
	for (t = CA_KEY_RSA2048; t <= CA_KEY_ECP384 && n < 8; t++)
		if (ca_profile_key_types(p) & (1u << t))
			names[n++] = ca_key_type_name((enum ca_key_type)t);
	if (enroll_est_csrattrs(names, n, &b64, &len, &err) == -1)
		return est_fail(r, &err, 0);
	return est_send_ok(r, CTYPE_CSRATTRS, b64, len);
}

static bool
is_pkcs10(const char *ctype)
{
	size_t n = strlen("application/pkcs10");

	return ctype != NULL && strncasecmp(ctype, "application/pkcs10", n) ==
	    0 && (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/*
 * The certificate the CSR's AsymmetricDecryptKeyIdentifier names (*to
 * stays NULL without one).  -1 with err when it names none of the user's.
 */
static int
key_transport(sqlite3 *db, const enroll_identity *id, X509_REQ *req,
    X509 **to, lb_err *err)
{
	unsigned char *kid = NULL;
	size_t kidlen = 0;
	int has;

	*to = NULL;
	if ((has = enroll_est_decrypt_key_id(req, &kid, &kidlen, err)) != 1)
		return has;
	*to = enroll_key_transport_cert(db, id->email, kid, kidlen, err);
	OPENSSL_free(kid);
	return *to != NULL ? 0 : -1;
}

/* The certificate part (and for serverkeygen the key part, encrypted to
 * `to` when the client named a certificate) of an answer. */
static enum MHD_Result
est_answer(struct web_req *r, X509 *to, enroll_result *res)
{
	X509 *certs[1] = { res->cert };
	char *cb64 = NULL, *kb64 = NULL, *body = NULL, *ctype = NULL;
	size_t clen = 0, klen = 0, blen = 0;
	enroll_part parts[2];
	enum MHD_Result ret = MHD_NO;
	lb_err err;

	lb_err_clear(&err);
	if (enroll_est_certs_only(certs, 1, &cb64, &clen, &err) == -1)
		return est_fail(r, &err, 0);
	if (res->key == NULL) {
		return est_send_ok(r, CTYPE_CERTS, cb64, clen);
	}
	if ((to != NULL ? enroll_est_key_enveloped(res->key, to, &kb64, &klen,
	    &err) : enroll_est_key_pkcs8(res->key, &kb64, &klen, &err)) == -1)
		goto fail;
	parts[0].content_type = to != NULL ? CTYPE_SKEY : CTYPE_PKCS8;
	parts[0].body = kb64;
	parts[0].len = klen;
	parts[1].content_type = CTYPE_CERTS;
	parts[1].body = cb64;
	parts[1].len = clen;
	if (enroll_est_multipart(parts, 2, &body, &blen, &ctype, &err) == -1)
		goto fail;
	ret = est_send(r, 200, ctype, body, blen, NULL, NULL);
	goto out;
fail:
	/* the certificate is stored and its key escrowed: a recovery
	 * officer can restore the key */
	log_warnx("%s %s: certificate issued but the key could not be "
	    "returned: %s", r->method, r->path, err.msg);
	ret = est_fail(r, &err, 0);
out:
	free(cb64);
	if (kb64 != NULL)
		OPENSSL_clear_free(kb64, klen);
	if (body != NULL)
		OPENSSL_clear_free(body, blen);
	free(ctype);
	return ret;
}

static enum MHD_Result
est_enroll(struct web_req *r, enum est_op op, const char *profile)
{
	enroll_identity id;
	enroll_result res;
	X509_REQ *req = NULL;
	X509 *to = NULL;
	enum MHD_Result ret;
	char msg[160], ra[24];
	sqlite3 *db;
	lb_err err;

	lb_err_clear(&err);
	memset(&res, 0, sizeof(res));
	memset(&id, 0, sizeof(id));
	if (r->srv->enroll == NULL)
		return web_est_error(r, 503, "enrollment is not available on "
		    "this server");
	if (!is_pkcs10(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE)))
		return web_est_error(r, 415, "the body must be a base64 "
		    "PKCS#10 request (Content-Type: application/pkcs10)");
	if ((db = web_db(r->srv, &err)) == NULL)
		return est_fail(r, &err, 0);
	if (est_authenticate(r, db, op == EST_RENEW, profile, &id, &ret) ==
	    -1)
		return ret;
	if ((req = enroll_est_csr_decode(r->body, r->body_len, &err)) ==
	    NULL) {
		ret = est_fail(r, &err, 0);
		goto out;
	}
	/* RFC 7030 4.4.1.2: the key is to be encrypted to a certificate the
	 * CSR names; find it before anything is issued */
	if (op == EST_KEYGEN && key_transport(db, &id, req, &to, &err) == -1) {
		ret = est_fail(r, &err, 0);
		goto out;
	}
	if (enroll_do(r->srv->enroll, db, &id, op == EST_RENEW ?
	    ENROLL_RENEW : op == EST_KEYGEN ? ENROLL_SERVERKEYGEN :
	    ENROLL_SIMPLE, profile, req, &res, &err) == -1) {
		ret = est_fail(r, &err, 0);
		goto out;
	}
	if (res.cert == NULL) {
		snprintf(msg, sizeof(msg), "enrollment request %s awaits an "
		    "operator's approval; ask again later", res.request_id);
		snprintf(ra, sizeof(ra), "%u", res.retry_after);
		ret = est_send(r, 202, "text/plain; charset=utf-8", msg,
		    strlen(msg), MHD_HTTP_HEADER_RETRY_AFTER, ra);
		goto out;
	}
	ret = est_answer(r, to, &res);
out:
	X509_free(to);
	X509_REQ_free(req);
	enroll_result_clear(&res);
	enroll_identity_clear(&id);
	return ret;
}

enum MHD_Result
web_est(struct web_req *r)
{
	const char *rest = r->path + strlen(WEB_EST_PREFIX), *slash;
	char label[64], opname[32];
	size_t i, n;

	slash = strchr(rest, '/');
	if (slash == NULL) {
		snprintf(label, sizeof(label), "smime-sign");
		n = strlen(rest);
	} else {
		n = (size_t)(slash - rest);
		if (n == 0 || n >= sizeof(label))
			return web_est_error(r, 404, "no such EST label");
		memcpy(label, rest, n);
		label[n] = '\0';
		rest = slash + 1;
		n = strlen(rest);
	}
	if (n == 0 || n >= sizeof(opname))
		return web_est_error(r, 404, "no such EST operation");
	memcpy(opname, rest, n);
	opname[n] = '\0';
	for (i = 0; i < NOPS; i++)
		if (strcmp(est_ops[i].name, opname) == 0)
			break;
	if (i == NOPS)
		return web_est_error(r, 404, "no such EST operation (cacerts, "
		    "csrattrs, simpleenroll, simplereenroll, serverkeygen)");
	if (strcmp(r->method, est_ops[i].method) != 0 &&
	    !(strcmp(est_ops[i].method, "GET") == 0 &&
	    strcmp(r->method, "HEAD") == 0)) {
		snprintf(r->allow, sizeof(r->allow), "%s%s", est_ops[i].method,
		    strcmp(est_ops[i].method, "GET") == 0 ? ", HEAD" : "");
		return web_est_error(r, 405, "method not allowed here (see "
		    "the Allow header)");
	}
	if (enroll_profile_known(label) == false)
		return web_est_error(r, 404, "no such EST label (profiles: "
		    "smime-sign, smime-enc)");
	switch (est_ops[i].op) {
	case EST_CACERTS:
		return est_cacerts(r);
	case EST_CSRATTRS:
		return est_csrattrs(r, label);
	default:
		return est_enroll(r, est_ops[i].op, label);
	}
}

/* ------------------------------------------------------------------ */
/* The policy                                                          */

enum MHD_Result
web_api_policy(struct web_req *r)
{
	static const char *const none[] = { NULL };
	const char *inm, *base;
	char etag[64 + 3], url[300];
	struct MHD_Response *resp;
	enroll_identity id;
	enum MHD_Result ret;
	json_t *doc;
	char *s;
	sqlite3 *db;
	lb_err err;

	lb_err_clear(&err);
	if (r->srv->enroll == NULL)
		return web_send_error(r, 503, "enrollment is not available");
	if (web_query_check(r, none, &err) == -1)
		return web_send_lb_err(r, &err);
	if ((db = web_db(r->srv, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if (est_authenticate(r, db, false, NULL, &id, &ret) == -1)
		return ret;
	base = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_HOST);
	snprintf(url, sizeof(url), "https://%s", base != NULL &&
	    strpbrk(base, "/\\\"<> ") == NULL ? base : r->lst->url + 8);
	doc = enroll_policy(r->srv->enroll, db, &id, url, &err);
	enroll_identity_clear(&id);
	if (doc == NULL)
		return web_send_lb_err(r, &err);
	s = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (s == NULL)
		return MHD_NO;
	etag[0] = '"';
	if (core_sha256_hex(s, strlen(s), etag + 1) == -1) {
		free(s);
		return MHD_NO;
	}
	snprintf(etag + 65, 2, "\"");
	inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm != NULL && (strstr(inm, etag) != NULL ||
	    strcmp(inm, "*") == 0)) {
		free(s);
		resp = MHD_create_response_from_buffer(0, NULL,
		    MHD_RESPMEM_PERSISTENT);
		if (resp == NULL || MHD_add_response_header(resp,
		    MHD_HTTP_HEADER_ETAG, etag) != MHD_YES) {
			if (resp != NULL)
				MHD_destroy_response(resp);
			return MHD_NO;
		}
		return web_queue(r, 304, resp, "application/json",
		    "private, no-cache");
	}
	resp = MHD_create_response_from_buffer(strlen(s), s,
	    MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(s);
		return MHD_NO;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag) !=
	    MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	return web_queue(r, 200, resp, "application/json",
	    "private, no-cache");
}
