/*
 * http.h - the HTTPS client of lockbox's client subcommands (libcurl over
 * OpenSSL): the server is verified against --ca-cert (peer and host name),
 * only https:// is spoken, redirects are not followed and answers are
 * capped.  The client presents a PKCS#12 credential (`lockbox recovery`),
 * a PEM certificate and key from files or nothing, and may send HTTP Basic
 * credentials (`lockbox enroll`).  cli_http_json() speaks JSON and turns
 * server errors {"error", "detail"} into lb_err; cli_http_request() hands
 * back any answer as it came.
 */
#ifndef LOCKBOX_CLI_HTTP_H
#define LOCKBOX_CLI_HTTP_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/core.h"

typedef struct cli_http cli_http;

/*
 * A client for server ("https://HOST:PORT"; trailing slashes dropped) that
 * trusts only the certificates in ca_cert.  With cred it presents the key
 * and certificate of that PKCS#12 file (password from cred.pass, else
 * pass_file, else the terminal); with cred NULL no client certificate
 * (see cli_http_set_cert_files).  NULL with err on failure.
 */
cli_http *cli_http_new(const char *server, const char *ca_cert,
    const char *cred, const char *pass_file, lb_err *err);
/* Cleanses the credential's key material and password and frees h. */
void cli_http_free(cli_http *h);

/* The PKCS#12 credential (borrowed; NULL without): agents decrypt with it. */
EVP_PKEY *cli_http_get0_key(const cli_http *h);
X509 *cli_http_get0_cert(const cli_http *h);
/* The server as normalised: "https://HOST:PORT" without a trailing slash. */
const char *cli_http_get0_server(const cli_http *h);

/*
 * HTTP Basic credentials for the requests that follow (copied; the copy
 * of password is cleansed when replaced or freed); user NULL clears them.
 * The next request opens a new connection.
 */
int cli_http_set_basic(cli_http *h, const char *user, const char *password,
    lb_err *err);
/*
 * The client certificate for the requests that follow: the PEM files
 * cert_file and key_file (an unencrypted key), read when the next
 * connection is made; cert_file NULL presents none.  Always opens a new
 * connection (and TLS session), so that a certificate renewed in the same
 * files is the one presented.  Not for a client made with a PKCS#12
 * credential (LB_EINVAL).
 */
int cli_http_set_cert_files(cli_http *h, const char *cert_file,
    const char *key_file, lb_err *err);


/*
 * Sends method path with the extra request headers (NULL-terminated
 * "Name: value" lines, may be NULL) and body (len bytes, may be NULL: no
 * body) and fills *r with the answer, whatever its status (2xx, 202, 4xx
 * are no error here).  The header values are trimmed and non-printable
 * characters replaced by '?'.  The body may hold a key: the caller
 * releases *r with core_http_reply_clear(), which cleanses it; while it
 * grows the body is copied, not realloc'ed, so no bytes stay behind.
 * -1 with err only when no answer came (connection, TLS, an answer of
 * more than max bytes); *r is then empty.
 */
int cli_http_request(cli_http *h, const char *method, const char *path,
    const char *const *headers, const void *body, size_t len, size_t max,
    core_http_reply *r, lb_err *err);

/*
 * Sends method path (e.g. "GET", "/api/v1/recovery/requests") with body
 * (JSON, may be NULL; not consumed).  On a 2xx answer *resp (may be NULL)
 * gets the parsed JSON and *status the code.  Otherwise -1 with err: the
 * server's detail (LB_EINVAL for 400, LB_EFORBIDDEN 403, LB_ENOTFOUND 404,
 * LB_ECONFLICT 409 and 410, LB_EINTERNAL otherwise).
 */
int cli_http_json(cli_http *h, const char *method, const char *path,
    json_t *body, json_t **resp, long *status, lb_err *err);
/*
 * As cli_http_json, but a 2xx answer is left in *r as it came (for the
 * typed readers of archive/ and enroll/; release it with
 * core_http_reply_clear); any other is -1 with err as above.
 */
int cli_http_api(cli_http *h, const char *method, const char *path,
    json_t *body, core_http_reply *r, lb_err *err);

#endif
