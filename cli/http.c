/*
 * http.c - the HTTPS client of the client subcommands (see http.h).
 * libcurl is built on OpenSSL here, so the credential read with
 * ca_p12_read() is handed over as PEM blobs that stay ours (no copy) and
 * are cleansed when the client is freed.  The server must verify against
 * --ca-cert (peer and host name); nothing switches verification off.
 * Only https:// is spoken, redirects are not followed, answers are capped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/encoder.h>
#include <openssl/pem.h>

#include "ca/ca.h"
#include "cli/http.h"

/* The largest answer accepted: a package of many keys is well below. */
#define RESP_MAX ((size_t)32 * 1024 * 1024)

struct cli_http {
	CURL *curl;
	char *base;              /* "https://HOST:PORT" without a slash */
	EVP_PKEY *key;
	X509 *cert;
	unsigned char *key_pem;  /* cleansed on free */
	size_t key_pem_len;
	char *cert_pem;
	size_t cert_pem_len;
	char errbuf[CURL_ERROR_SIZE];
};

struct resp_buf {
	char *data;
	size_t len;
	bool too_big;
};

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct resp_buf *b = arg;
	size_t n = size * nmemb;
	char *p;

	if (n > RESP_MAX - b->len) {
		b->too_big = true;
		return 0;
	}
	if ((p = realloc(b->data, b->len + n + 1)) == NULL)
		return 0;
	b->data = p;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static int
cred_pem(cli_http *h, lb_err *err)
{
	OSSL_ENCODER_CTX *e = NULL;
	BIO *bio = NULL;
	char *data;
	long n;
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
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(bio, h->cert) != 1 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0 ||
	    (h->cert_pem = malloc((size_t)n + 1)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "cannot encode the credential's "
		    "certificate");
		goto out;
	}
	memcpy(h->cert_pem, data, (size_t)n);
	h->cert_pem[n] = '\0';
	h->cert_pem_len = (size_t)n;
	rc = 0;
out:
	BIO_free(bio);
	OSSL_ENCODER_CTX_free(e);
	return rc;
}

cli_http *
cli_http_new(const char *server, const char *ca_cert, const char *cred,
    const char *pass_file, lb_err *err)
{
	cli_http *h = NULL;
	struct curl_blob cb, kb;
	size_t n;

	if (server == NULL || strncmp(server, "https://", 8) != 0 ||
	    server[8] == '\0') {
		lb_err_set(err, LB_EINVAL, "--server must be an https:// URL, "
		    "e.g. https://ca.example.org:8443");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		lb_err_set(err, LB_EINTERNAL, "cannot initialise libcurl");
		return NULL;
	}
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->base = strdup(server)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	n = strlen(h->base);
	while (n > 8 && h->base[n - 1] == '/')
		h->base[--n] = '\0';
	if (ca_p12_read(cred, pass_file, &h->key, &h->cert, NULL, err) == -1 ||
	    cred_pem(h, err) == -1)
		goto fail;
	if ((h->curl = curl_easy_init()) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "cannot initialise libcurl");
		goto fail;
	}
	cb.data = h->cert_pem;
	cb.len = h->cert_pem_len;
	cb.flags = CURL_BLOB_NOCOPY;
	kb.data = h->key_pem;
	kb.len = h->key_pem_len;
	kb.flags = CURL_BLOB_NOCOPY;
	if (curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf) !=
	    CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "https") !=
	    CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, 15L) !=
	    CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_TIMEOUT, 300L) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYPEER, 1L) !=
	    CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_SSL_VERIFYHOST, 2L) !=
	    CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_CAINFO, ca_cert) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_CAPATH, (char *)NULL) !=
	    CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_SSLVERSION,
	    (long)CURL_SSLVERSION_TLSv1_2) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_SSLCERTTYPE, "PEM") !=
	    CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_SSLCERT_BLOB, &cb) != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_SSLKEYTYPE, "PEM") != CURLE_OK ||
	    curl_easy_setopt(h->curl, CURLOPT_SSLKEY_BLOB, &kb) != CURLE_OK) {
		lb_err_set(err, LB_EINTERNAL, "this libcurl lacks an option "
		    "lockbox needs (libcurl >= 7.85 with OpenSSL)");
		goto fail;
	}
	return h;
fail:
	cli_http_free(h);
	return NULL;
}

void
cli_http_free(cli_http *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	if (h->key_pem != NULL)
		OPENSSL_clear_free(h->key_pem, h->key_pem_len);
	free(h->cert_pem);
	EVP_PKEY_free(h->key);
	X509_free(h->cert);
	free(h->base);
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
cli_http_json(cli_http *h, const char *method, const char *path,
    json_t *body, json_t **resp, long *status, lb_err *err)
{
	struct curl_slist *hdrs = NULL;
	struct resp_buf rb = { NULL, 0, false };
	json_t *j = NULL, *detail;
	json_error_t jerr;
	char *url = NULL, *text = NULL;
	long code = 0;
	CURLcode cc;
	int rc = -1;

	if (resp != NULL)
		*resp = NULL;
	if (asprintf(&url, "%s%s", h->base, path) == -1) {
		url = NULL;
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	/* no "Expect: 100-continue": the bodies are small */
	if (add_header(&hdrs, "Accept: application/json") == -1 ||
	    add_header(&hdrs, "Expect:") == -1 ||
	    (body != NULL && add_header(&hdrs, "Content-Type: "
	    "application/json") == -1)) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	h->errbuf[0] = '\0';
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &rb);
	if (text != NULL) {
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE,
		    (long)strlen(text));
	} else {
		curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
	if ((cc = curl_easy_perform(h->curl)) != CURLE_OK) {
		lb_err_set(err, LB_EINTERNAL, "%s: %s", h->base,
		    rb.too_big ? "the answer is too large" :
		    h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &code);
	if (status != NULL)
		*status = code;
	if (rb.data != NULL)
		j = json_loadb(rb.data, rb.len, 0, &jerr);
	if (code < 200 || code > 299) {
		detail = json_is_object(j) ? json_object_get(j, "detail") :
		    NULL;
		if (json_is_string(detail))
			lb_err_set(err, status_code(code), "%s",
			    json_string_value(detail));
		else
			lb_err_set(err, status_code(code), "%s answered HTTP "
			    "%ld to %s %s", h->base, code, method, path);
		goto out;
	}
	if (j == NULL) {
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
	/* the handle is reused: forget this request's body and headers */
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER,
	    (struct curl_slist *)NULL);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, (char *)NULL);
	json_decref(j);
	curl_slist_free_all(hdrs);
	free(rb.data);
	free(text);
	free(url);
	return rc;
}
