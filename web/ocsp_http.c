/*
 * ocsp_http.c - the OCSP responder over HTTP (RFC 6960 appendix A, RFC
 * 5019) at the AIA OCSP URL every certificate carries, BASE/ocsp, on both
 * listeners: POST of application/ocsp-request, and GET of the URL-encoded
 * base64 request under /ocsp/.  crl/ocsp.c makes the answers; this file
 * decodes, adds the caching headers a GET answer may carry (none when it
 * echoes a nonce: it is then good for one client only) and, at most once an
 * hour, lets a request thread renew the responder certificate when half its
 * lifetime is gone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>

#include "web/web_int.h"

#define OCSP_RESP_TYPE  "application/ocsp-response"
#define OCSP_REQ_TYPE   "application/ocsp-request"
/* How often a request may check whether the responder is due renewal. */
#define RENEW_CHECK_SECONDS 3600

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
web_ocsp_get_decode(const char *s, unsigned char **der, size_t *len)
{
	/* base64 of CRL_OCSP_REQ_MAX bytes, padded */
	size_t max = (CRL_OCSP_REQ_MAX + 2) / 3 * 4, n = 0, i;
	char *b64 = NULL;
	int hi, lo, rc = -1;

	*der = NULL;
	*len = 0;
	if (s == NULL || strlen(s) > max * 3 + 4 ||
	    (b64 = malloc(strlen(s) + 4)) == NULL)
		goto out;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '%') {
			if ((hi = hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)s[i + 2])) < 0)
				goto out;
			b64[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == ' ')
			b64[n++] = '+';
		else
			b64[n++] = s[i];
	}
	/* some clients drop the padding */
	while (n % 4 != 0 && n < max + 4)
		b64[n++] = '=';
	b64[n] = '\0';
	for (i = 0; i < n; i++)
		if (b64[i] == ' ')
			b64[i] = '+';
	if (core_b64_decode(b64, n, max, 0, der, len) == -1)
		goto out;
	if (*len > CRL_OCSP_REQ_MAX) {
		free(*der);
		*der = NULL;
		*len = 0;
		goto out;
	}
	rc = 0;
out:
	free(b64);
	return rc;
}

/* At most once an hour: renew the responder when half its life is gone. */
static void
maybe_renew(struct web_req *r, sqlite3 *db, time_t now)
{
	long long last = atomic_load(&r->srv->ocsp_checked);
	lb_err err;

	if (now - last < RENEW_CHECK_SECONDS ||
	    !atomic_compare_exchange_strong(&r->srv->ocsp_checked, &last,
	    (long long)now))
		return;
	lb_err_clear(&err);
	if (crl_ocsp_renew(r->srv->ocsp, db, now, false, &err) == -1)
		log_warnx("OCSP responder certificate not renewed: %s",
		    err.msg);
}

/* MHD's free callback for a DER answer from crl/ocsp.c. */
static void
der_free(void *p)
{
	OPENSSL_free(p);
}

/*
 * Queues the DER answer (consumed: MHD frees it with the response, no
 * copy), with RFC 5019 caching headers when cacheable.
 */
static enum MHD_Result
send_ocsp(struct web_req *r, unsigned char *der, size_t len,
    const crl_ocsp_result *res, bool cacheable, time_t now)
{
	struct MHD_Response *resp;
	enum MHD_Result ret = MHD_NO;
	char lm[64], ex[64], cc[128], etag[64 + 3];
	bool cache = cacheable && res->status ==
	    OCSP_RESPONSE_STATUS_SUCCESSFUL && !res->nonce &&
	    res->next_update > now;

	if ((resp = MHD_create_response_from_buffer_with_free_callback(len,
	    der, der_free)) == NULL) {
		OPENSSL_free(der);
		goto out;
	}
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    OCSP_RESP_TYPE) != MHD_YES ||
	    MHD_add_response_header(resp, "X-Content-Type-Options",
	    "nosniff") != MHD_YES)
		goto out;
	if (cache) {
		etag[0] = '"';
		if (core_sha256_hex(der, len, etag + 1) == -1)
			goto out;
		snprintf(etag + 65, 2, "\"");
		web_http_date(res->this_update, lm, sizeof(lm));
		web_http_date(res->next_update, ex, sizeof(ex));
		snprintf(cc, sizeof(cc), "max-age=%lld, public, no-transform, "
		    "must-revalidate", (long long)(res->next_update - now));
		if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
		    cc) != MHD_YES ||
		    MHD_add_response_header(resp,
		    MHD_HTTP_HEADER_LAST_MODIFIED, lm) != MHD_YES ||
		    MHD_add_response_header(resp, MHD_HTTP_HEADER_EXPIRES,
		    ex) != MHD_YES ||
		    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG,
		    etag) != MHD_YES)
			goto out;
	} else if (MHD_add_response_header(resp,
	    MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES)
		goto out;
	if (atomic_load(&r->srv->stopping) && MHD_add_response_header(resp,
	    MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)
		goto out;
	ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	if (ret == MHD_YES) {
		r->answered = true;
		r->status = MHD_HTTP_OK;
	}
out:
	if (resp != NULL)
		MHD_destroy_response(resp);
	return ret;
}

/* Answers one DER request (or junk: malformedRequest). */
static enum MHD_Result
answer(struct web_req *r, const unsigned char *req, size_t len,
    bool cacheable)
{
	unsigned char *der = NULL;
	size_t dlen = 0;
	crl_ocsp_result res;
	sqlite3 *db;
	time_t now = time(NULL);
	lb_err err;

	lb_err_clear(&err);
	if (r->srv->ocsp == NULL)
		return web_send_error(r, 503, "the OCSP responder is not "
		    "running");
	if ((db = web_db(r->srv, &err)) == NULL)
		return web_send_lb_err(r, &err);
	maybe_renew(r, db, now);
	if (crl_ocsp_respond_db(r->srv->ocsp, db, req, len, now, &der, &dlen,
	    &res) == -1)
		return web_send_error(r, 500, "cannot encode an OCSP response");
	return send_ocsp(r, der, dlen, &res, cacheable, now);
}

/* application/ocsp-request, parameters allowed. */
static bool
is_ocsp_request(const char *ctype)
{
	size_t n = strlen(OCSP_REQ_TYPE);

	return ctype != NULL && strncasecmp(ctype, OCSP_REQ_TYPE, n) == 0 &&
	    (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

enum MHD_Result
web_ocsp_post(struct web_req *r)
{
	if (!is_ocsp_request(MHD_lookup_connection_value(r->conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
		return web_send_error(r, 415, "an OCSP request must be sent "
		    "as Content-Type: application/ocsp-request");
	if (r->body_len > CRL_OCSP_REQ_MAX)
		return web_send_error(r, 413, "OCSP request larger than 16 "
		    "KiB");
	return answer(r, r->body, r->body_len, false);
}

enum MHD_Result
web_ocsp_get(struct web_req *r)
{
	unsigned char *der = NULL;
	size_t len = 0;
	enum MHD_Result ret;

	/* undecodable: still an OCSP answer, as a client expects */
	if (web_ocsp_get_decode(r->param, &der, &len) == -1)
		return answer(r, NULL, 0, false);
	ret = answer(r, der, len, true);
	free(der);
	return ret;
}
