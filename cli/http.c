/*
 * http.c - the HTTPS client of the client subcommands (see http.h).
 * libcurl is built on OpenSSL here, so a PKCS#12 credential read with
 * ca_p12_read() is handed over as PEM blobs that stay ours (no copy) and
 * are cleansed when the client is freed; a credential in PEM files is
 * handed over by name.  The server must verify against --ca-cert (peer and
 * host name); nothing switches verification off.  Only https:// is
 * spoken, redirects are not followed, answers are capped.
 *
 * One curl handle serves the requests in a row (one connection); a change
 * of credentials drops it, and with it the connection and the TLS session
 * cache, so that the next request shows the new credentials from the
 * start instead of resuming a session made with the old ones.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/encoder.h>

#include "ca/ca.h"
#include "cli/http.h"

/* The largest JSON answer accepted: a package of many keys is well below. */
#define RESP_MAX ((size_t)32 * 1024 * 1024)

struct cli_http {
	CURL *curl;              /* NULL until the next request */
	bool global;             /* curl_global_init() done */
	char *base;              /* "https://HOST:PORT" without a slash */
	char *ca_cert;
	EVP_PKEY *key;           /* the PKCS#12 credential, or NULL */
	X509 *cert;
	unsigned char *key_pem;  /* cleansed on free */
	size_t key_pem_len;
	char *cert_pem;
	size_t cert_pem_len;
	char *cert_file;         /* or the PEM files, or NULL */
	char *key_file;
	char *user;              /* HTTP Basic, or NULL */
	char *password;          /* cleansed (core_secret_free) */
	char errbuf[CURL_ERROR_SIZE];
};

/* What a request's callbacks fill. */
struct sink {
	core_http_reply *r;
	size_t max;
};

static int
cred_pem(cli_http *h, lb_err *err)
{
	OSSL_ENCODER_CTX *e = NULL;
	int rc = -1;

	e = OSSL_ENCODER_CTX_new_for_pkey(h->key, OSSL_KEYMGMT_SELECT_KEYPAIR,
	    "PEM", "PrivateKeyInfo", NULL);
	if (e == NULL || OSSL_ENCODER_CTX_get_num_encoders(e) == 0 ||
	    OSSL_ENCODER_to_data(e, &h->key_pem, &h->key_pem_len) != 1) {
		log_openssl("credential key as PEM");
		lb_err_set(err, LB_EINTERNAL, "cannot hand the credential's "
		    "key to the TLS client");
		goto out;
	}
	if ((h->cert_pem = ca_certs_pem(&h->cert, 1, NULL,
	    &h->cert_pem_len)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "cannot encode the credential's "
		    "certificate");
		goto out;
	}
	rc = 0;
out:
	OSSL_ENCODER_CTX_free(e);
	return rc;
}

cli_http *
cli_http_new(const char *server, const char *ca_cert, const char *cred,
    const char *pass_file, lb_err *err)
{
	cli_http *h = NULL;
	size_t n;

	if (server == NULL || strncmp(server, "https://", 8) != 0 ||
	    server[8] == '\0') {
		lb_err_set(err, LB_EINVAL, "--server must be an https:// URL, "
		    "e.g. https://ca.example.org:8443");
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		lb_err_set(err, LB_EINTERNAL, "cannot initialise libcurl");
		goto fail;
	}
	h->global = true;
	if ((h->base = strdup(server)) == NULL ||
	    (ca_cert != NULL && (h->ca_cert = strdup(ca_cert)) == NULL)) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	n = strlen(h->base);
	while (n > 8 && h->base[n - 1] == '/')
		h->base[--n] = '\0';
	if (cred != NULL &&
	    (ca_p12_read(cred, pass_file, &h->key, &h->cert, NULL, err) == -1 ||
	    cred_pem(h, err) == -1))
		goto fail;
	return h;
fail:
	cli_http_free(h);
	return NULL;
}

/* Forgets the curl handle: the next request makes a new connection. */
static void
drop_handle(cli_http *h)
{
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	h->curl = NULL;
}

void
cli_http_free(cli_http *h)
{
	if (h == NULL)
		return;
	drop_handle(h);
	if (h->key_pem != NULL)
		OPENSSL_clear_free(h->key_pem, h->key_pem_len);
	free(h->cert_pem);
	EVP_PKEY_free(h->key);
	X509_free(h->cert);
	free(h->cert_file);
	free(h->key_file);
	free(h->user);
	core_secret_free(h->password);
	free(h->ca_cert);
	free(h->base);
	if (h->global)
		curl_global_cleanup();
	free(h);
}

EVP_PKEY *
cli_http_get0_key(const cli_http *h)
{
	return h->key;
}

X509 *
cli_http_get0_cert(const cli_http *h)
{
	return h->cert;
}

const char *
cli_http_get0_server(const cli_http *h)
{
	return h->base;
}

/* *ca and *cb: copies of a and b, or both NULL when a is NULL. */
static int
copy_pair(const char *a, const char *b, char **ca, char **cb, lb_err *err)
{
	*ca = *cb = NULL;
	if (a == NULL)
		return 0;
	if ((*ca = strdup(a)) == NULL || (*cb = strdup(b)) == NULL) {
		free(*ca);
		*ca = NULL;
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	}
	return 0;
}

int
cli_http_set_basic(cli_http *h, const char *user, const char *password,
    lb_err *err)
{
	drop_handle(h);
	free(h->user);
	core_secret_free(h->password);
	return copy_pair(user, password != NULL ? password : "", &h->user,
	    &h->password, err);
}

int
cli_http_set_cert_files(cli_http *h, const char *cert_file,
    const char *key_file, lb_err *err)
{
	if (h->key != NULL)
		return lb_err_set(err, LB_EINVAL, "this client presents a "
		    "PKCS#12 credential already");
	drop_handle(h);
	free(h->cert_file);
	free(h->key_file);
	return copy_pair(cert_file, key_file != NULL ? key_file : cert_file,
	    &h->cert_file, &h->key_file, err);
}

/* The credential options of a new handle. */
static bool
set_credentials(cli_http *h)
{
	struct curl_blob cb, kb;
	CURL *c = h->curl;

	if (h->cert_pem != NULL) {
		cb.data = h->cert_pem;
		cb.len = h->cert_pem_len;
		cb.flags = CURL_BLOB_NOCOPY;
		kb.data = h->key_pem;
		kb.len = h->key_pem_len;
		kb.flags = CURL_BLOB_NOCOPY;
		if (curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM") !=
		    CURLE_OK ||
		    curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cb) != CURLE_OK ||
		    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK ||
		    curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &kb) != CURLE_OK)
			return false;
	} else if (h->cert_file != NULL) {
		if (curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM") !=
		    CURLE_OK ||
		    curl_easy_setopt(c, CURLOPT_SSLCERT, h->cert_file) !=
		    CURLE_OK ||
		    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK ||
		    curl_easy_setopt(c, CURLOPT_SSLKEY, h->key_file) != CURLE_OK)
			return false;
	}
	if (h->user != NULL &&
	    (curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) !=
	    CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_USERNAME, h->user) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PASSWORD, h->password) != CURLE_OK))
		return false;
	return true;
}

/* The curl handle, made and set up when there is none. */
static CURL *
handle(cli_http *h, lb_err *err)
{
	CURL *c;

	if (h->curl != NULL)
		return h->curl;
	if ((c = h->curl = curl_easy_init()) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "cannot initialise libcurl");
		return NULL;
	}
	if (curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_cert) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CAPATH, (char *)NULL) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSLVERSION,
	    (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
	    !set_credentials(h)) {
		drop_handle(h);
		lb_err_set(err, LB_EINTERNAL, "this libcurl lacks an option "
		    "lockbox needs (libcurl >= 7.85 with OpenSSL)");
		return NULL;
	}
	return c;
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	core_http_reply *r = s->r;
	size_t n = size * nmemb, cap;
	char *p;

	if (n > s->max - r->len) {
		r->too_big = true;
		return 0;
	}
	if (r->len + n + 1 > r->cap) {
		/* grow by copying, so that no key bytes stay behind in freed
		 * memory */
		cap = r->cap == 0 ? 8192 : r->cap;
		while (cap < r->len + n + 1)
			cap *= 2;
		if ((p = malloc(cap)) == NULL)
			return 0;
		if (r->body != NULL) {
			memcpy(p, r->body, r->len);
			OPENSSL_clear_free(r->body, r->cap);
		}
		r->body = p;
		r->cap = cap;
	}
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* Copies a header's value (trimmed) into out when the line names it. */
static void
header_value(const char *line, size_t n, const char *name, char *out,
    size_t outlen)
{
	size_t k = strlen(name), i = 0;

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return;
	line += k + 1;
	n -= k + 1;
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		n--;
	for (i = 0; i < n && i + 1 < outlen; i++)
		out[i] = isprint((unsigned char)line[i]) ? line[i] : '?';
	out[i] = '\0';
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *arg)
{
	core_http_reply *r = ((struct sink *)arg)->r;
	size_t n = size * nmemb;

	/* a new status line (after 100 Continue): forget earlier headers */
	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		r->ctype[0] = '\0';
		r->retry_after[0] = '\0';
	}
	header_value(ptr, n, "Content-Type", r->ctype, sizeof(r->ctype));
	header_value(ptr, n, "Retry-After", r->retry_after,
	    sizeof(r->retry_after));
	return n;
}

static int
add_header(struct curl_slist **list, const char *h)
{
	struct curl_slist *t = curl_slist_append(*list, h);

	if (t == NULL)
		return -1;
	*list = t;
	return 0;
}

int
cli_http_request(cli_http *h, const char *method, const char *path,
    const char *const *headers, const void *body, size_t len, size_t max,
    core_http_reply *r, lb_err *err)
{
	struct curl_slist *hdrs = NULL;
	struct sink s = { r, max };
	char *url = NULL;
	CURL *c;
	CURLcode cc;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if ((c = handle(h, err)) == NULL)
		return -1;
	if (asprintf(&url, "%s%s", h->base, path) == -1) {
		url = NULL;
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	/* no "Expect: 100-continue": the bodies are small */
	if (add_header(&hdrs, "Expect:") == -1)
		goto oom;
	for (; headers != NULL && *headers != NULL; headers++)
		if (add_header(&hdrs, *headers) == -1)
			goto oom;
	h->errbuf[0] = '\0';
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) !=
	    CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HEADERDATA, &s) != CURLE_OK ||
	    (body != NULL ?
	    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len) !=
	    CURLE_OK :
	    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) != CURLE_OK) ||
	    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK) {
		lb_err_set(err, LB_EINTERNAL, "cannot set up the request to %s",
		    h->base);
		goto out;
	}
	log_debug("%s %s", method, url);
	if ((cc = curl_easy_perform(c)) != CURLE_OK) {
		lb_err_set(err, LB_EINTERNAL, "%s: %s", h->base,
		    r->too_big ? "the answer is too large" :
		    h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	rc = 0;
	goto out;
oom:
	lb_err_set(err, LB_EINTERNAL, "out of memory");
out:
	/* the handle is reused: forget this request's body and headers */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, (char *)NULL);
	if (rc == -1)
		core_http_reply_clear(r);
	curl_slist_free_all(hdrs);
	free(url);
	return rc;
}

static enum lb_errcode
status_code(long status)
{
	switch (status) {
	case 400:
		return LB_EINVAL;
	case 403:
		return LB_EFORBIDDEN;
	case 404:
		return LB_ENOTFOUND;
	case 409:
	case 410:
		return LB_ECONFLICT;
	case 413:
		return LB_ETOOBIG;
	default:
		return LB_EINTERNAL;
	}
}

int
cli_http_api(cli_http *h, const char *method, const char *path,
    json_t *body, core_http_reply *r, lb_err *err)
{
	static const char *const accept[] = {
		"Accept: application/json", NULL,
	};
	static const char *const post[] = {
		"Accept: application/json", "Content-Type: application/json",
		NULL,
	};
	json_t *j = NULL, *detail;
	json_error_t jerr;
	char *text = NULL;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (cli_http_request(h, method, path, text != NULL ? post : accept,
	    text, text != NULL ? strlen(text) : 0, RESP_MAX, r, err) == -1)
		goto out;
	if (r->status < 200 || r->status > 299) {
		if (r->body != NULL)
			j = json_loadb(r->body, r->len, 0, &jerr);
		detail = json_is_object(j) ? json_object_get(j, "detail") :
		    NULL;
		if (json_is_string(detail))
			lb_err_set(err, status_code(r->status), "%s",
			    json_string_value(detail));
		else
			lb_err_set(err, status_code(r->status), "%s answered "
			    "HTTP %ld to %s %s", h->base, r->status, method,
			    path);
		core_http_reply_clear(r);
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	free(text);
	return rc;
}

int
cli_http_json(cli_http *h, const char *method, const char *path,
    json_t *body, json_t **resp, long *status, lb_err *err)
{
	core_http_reply r;
	json_t *j = NULL;
	json_error_t jerr;
	int rc = -1;

	if (resp != NULL)
		*resp = NULL;
	if (cli_http_api(h, method, path, body, &r, err) == -1)
		return -1;
	if (status != NULL)
		*status = r.status;
	if (r.body == NULL || (j = json_loadb(r.body, r.len, 0, &jerr)) ==
	    NULL) {
		lb_err_set(err, LB_EINTERNAL, "%s answered %s %s with no JSON",
		    h->base, method, path);
		goto out;
	}
	if (resp != NULL) {
		*resp = j;
		j = NULL;
	}
	rc = 0;
out:
	json_decref(j);
	core_http_reply_clear(&r);
	return rc;
}
