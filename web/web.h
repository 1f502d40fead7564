/*
 * web.h - the daemon: libmicrohttpd with TLS for operators (and, later,
 * enrollment) and a plain-HTTP listener for relying parties.  Client
 * certificates are verified here with OpenSSL against the CA and the
 * database; nothing of GnuTLS leaks out of web/.
 */
#ifndef LOCKBOX_WEB_H
#define LOCKBOX_WEB_H

#include "core/core.h"

/* Options of web_serve; NULL fields take lockbox.conf's [server] values. */
typedef struct web_opts {
	const char *dir;         /* the state directory */
	const char *listen;      /* HTTPS "ADDR:PORT" */
	const char *http_listen; /* plain HTTP "ADDR:PORT" */
} web_opts;

/*
 * Opens the CA in o->dir, starts both listeners and serves until SIGTERM or
 * SIGINT, then finishes in-flight requests, closes the database and
 * returns 0.  Returns -1 with err when it cannot start (bad config, port
 * in use).  Prints "lockbox: serving https://ADDR:PORT and http://ADDR:PORT"
 * on stderr once both listeners are open.
 */
int web_serve(const web_opts *o, lb_err *err);

#endif
