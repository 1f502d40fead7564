/*
 * directory_int.h - what the files of directory/ share: the context, the
 * connection (conn.c) and the classification of LDAP failures into
 * transient and permanent errors.  Not for use outside directory/.
 */
#ifndef LOCKBOX_DIRECTORY_INT_H
#define LOCKBOX_DIRECTORY_INT_H

#include <stdbool.h>

#include <ldap.h>

#include "directory/directory.h"

/*
 * The lb_err class that marks a transient failure.  Permanent failures use
 * LB_EINVAL (configuration, schema, syntax), LB_EFORBIDDEN (credentials,
 * access), LB_ENOTFOUND (no such entry) or LB_ECONFLICT (anything else the
 * server refused).
 */
#define DIRECTORY_TRANSIENT LB_EINTERNAL

struct directory_ctx {
	char *uri;
	char *bind_dn;		/* NULL: anonymous */
	char *pw_path;		/* bind password file, NULL when anonymous */
	char *ca_file;		/* NULL: the system's trust store */
	char *base_dn;		/* may be NULL */
	char *ca_dn;		/* may be NULL when neither ca_dn nor base_dn */
	char *user_base;	/* where users are searched; may be NULL */
	char *user_filter;	/* with %s for the escaped login */
	char *mail_attr;
	char *group_attr;
	bool starttls;
	long timeout;		/* seconds per operation */
	long net_timeout;	/* seconds per connect */
	LDAP *ld;		/* NULL until the first call needs it */
};

/*
 * Connects, sets the protocol version, timeouts and TLS options, runs
 * StartTLS when configured and binds.  A no-op when already connected.
 * Returns 0, or -1 with err set (the connection dropped).
 */
int dir_connect(directory_ctx *d, lb_err *err);

/*
 * Opens a new handle (options, timeouts, TLS, StartTLS) without binding:
 * the service connection and user binds both start here.  Returns 0 with
 * *out set (the caller unbinds it), or -1 with err set.
 */
int dir_handle_open(directory_ctx *d, LDAP **out, lb_err *err);

/* One operation over the service connection; must clean up on failure. */
typedef int (*dir_op)(directory_ctx *d, void *arg, lb_err *err);

/*
 * Connects if needed and runs op.  When a connection reused from an
 * earlier call fails transiently (the server restarted meanwhile), it is
 * reopened and op run once more.  Returns op's result.
 */
int dir_run(directory_ctx *d, dir_op op, void *arg, lb_err *err);

/* Unbinds and forgets the connection, if any. */
void dir_drop(directory_ctx *d);

/*
 * Records the failure of an LDAP call (rc, plus the server's diagnostic
 * message) in err as transient or permanent, naming the URI, what was
 * being done and the DN (which may be NULL); drops the connection when
 * transient.  Returns -1.
 */
int dir_fail(directory_ctx *d, int rc, const char *what, const char *dn,
    lb_err *err);

/* As dir_fail for a failure on handle ld (drops d->ld only if it is ld). */
int dir_fail_on(directory_ctx *d, LDAP *ld, int rc, const char *what,
    const char *dn, lb_err *err);

/* The operation time limit as a struct timeval for *_ext_s calls. */
struct timeval dir_timeout(const directory_ctx *d);

#endif /* LOCKBOX_DIRECTORY_INT_H */
