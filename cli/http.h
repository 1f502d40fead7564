/*
 * http.h - the HTTPS client of lockbox's client subcommands (libcurl over
 * OpenSSL): the server is verified against --ca-cert, the operator
 * presents the credential from a PKCS#12 file, and JSON goes both ways.
 * Server errors {"error", "detail"} come back as lb_err with the detail.
 */
#ifndef LOCKBOX_CLI_HTTP_H
#define LOCKBOX_CLI_HTTP_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/core.h"

typedef struct cli_http cli_http;

/*
 * A client for server ("https://HOST:PORT", no path) that trusts only the
 * certificates in ca_cert and presents the key and certificate of the
 * PKCS#12 file cred (password from cred.pass, else pass_file, else the
 * terminal).  NULL with err on failure.
 */
cli_http *cli_http_new(const char *server, const char *ca_cert,
    const char *cred, const char *pass_file, lb_err *err);
/* Cleanses the credential's key material and frees h. */
void cli_http_free(cli_http *h);

/* The credential (borrowed): agents decrypt their shares with it. */
EVP_PKEY *cli_http_get0_key(const cli_http *h);
X509 *cli_http_get0_cert(const cli_http *h);

/*
 * Sends method path (e.g. "GET", "/api/v1/recovery/requests") with body
 * (JSON, may be NULL; not consumed).  On a 2xx answer *resp (may be NULL)
 * gets the parsed JSON and *status the code.  Otherwise -1 with err: the
 * server's detail (LB_EINVAL for 400, LB_EFORBIDDEN 403, LB_ENOTFOUND 404,
 * LB_ECONFLICT 409 and 410, LB_EINTERNAL otherwise).
 */
int cli_http_json(cli_http *h, const char *method, const char *path,
    json_t *body, json_t **resp, long *status, lb_err *err);

#endif
