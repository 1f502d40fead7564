/*
 * directory.h - the OpenLDAP client: connecting and binding (simple bind,
 * StartTLS or ldaps), and publishing attributes: the CA's entry with its
 * certificate and CRLs; user look-up, password check, group membership
 * and publishing user certificates for enrollment.
 *
 * Configuration is the [directory] section of lockbox.conf:
 *
 *   uri                 ldap://host[:port]/ or ldaps://host[:port]/ (one URI)
 *   bind_dn             DN to bind as (absent: anonymous)
 *   bind_password_file  file holding the bind password, mode 0600 (needed
 *                       with bind_dn; read at each bind, then cleansed)
 *   starttls            yes|no (default no); not with ldaps://
 *   ca_file             PEM CA certificates that verify the server's TLS
 *                       certificate (default: the system's trust store)
 *   base_dn             the directory's base, e.g. dc=example,dc=org
 *   ca_dn               the CA's entry (default cn=<[ca] name>,ou=PKI,<base_dn>)
 *   timeout             seconds an operation may take (default 10s)
 *   network_timeout     seconds a connect may take (default 5s)
 *   plaintext           yes lets the bind password travel without TLS to a
 *                       host other than the loopback (default no)
 *   retry, retry_max    the publishers' wait after a failed publication,
 *                       doubling from retry to retry_max (default 5s, 5m;
 *                       directory_retry_conf)
 *   user_base, user_filter, mail_attribute, group_attribute: see "Users"
 *
 * Failures are either transient (the server is down, unreachable or too
 * slow: retry with backoff) or permanent (bad credentials, schema or access
 * violations, bad configuration: retrying will not help until someone fixes
 * it); directory_err_transient() tells which.  Every message names the URI
 * and, where one is involved, the DN.
 *
 * A directory_ctx holds one connection, opened on first use and reopened
 * after a failure; it belongs to one thread at a time.
 *
 * directory calls only core.
 */
#ifndef LOCKBOX_DIRECTORY_H
#define LOCKBOX_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

typedef struct directory_ctx directory_ctx;

/*
 * Reads and checks the [directory] section of conf (nothing is sent over
 * the network yet).  Relative paths (bind_password_file, ca_file) are
 * resolved against dir when it is not NULL (the state directory holding
 * lockbox.conf), else against the working directory.  The settings are
 * copied: conf may be freed afterwards.  Returns NULL with err set:
 * LB_ENOTFOUND "no directory configured" when the section or its uri is
 * absent, LB_EINVAL for a bad setting (naming it) or a password file
 * readable by others.
 */
directory_ctx *directory_open_at(const core_conf *conf, const char *dir,
    lb_err *err);
/* directory_open_at(conf, NULL, err). */
directory_ctx *directory_open(const core_conf *conf, lb_err *err);
/* Unbinds (if connected) and frees; NULL is a no-op. */
void directory_free(directory_ctx *d);

/* The configured URI and the CA entry's DN.  Borrowed. */
const char *directory_get0_uri(const directory_ctx *d);
const char *directory_get0_ca_dn(const directory_ctx *d);

/*
 * The publishers' retry settings: [directory] retry (default 5s) and
 * retry_max (default 5m, at least retry).  Read by crl/publish.c and
 * enroll/publish.c.
 */
int directory_retry_conf(const core_conf *conf, long *retry, long *retry_max,
    lb_err *err);
/* The wait after one more failure: retry first, then doubling up to
 * retry_max (cur 0: none yet). */
long directory_backoff_next(long cur, long retry, long retry_max);

/*
 * True when err, set by a failed directory_* call, is transient: the
 * directory could not be reached, dropped the connection, was busy or did
 * not answer within the timeouts (or memory ran out).  Retry later with
 * backoff.  False for permanent failures and for LB_OK.
 */
bool directory_err_transient(const lb_err *err);

/*
 * Publishes the CA certificate and its CRLs to the CA's entry (ca_dn):
 * creates the entry when absent (and its parent when that is an absent
 * ou=... directly under an existing entry) with objectClasses
 * cRLDistributionPoint, pkiCA (and deltaCRL when delta_der is given), cn
 * and cACertificate;binary; an existing entry gains pkiCA / deltaCRL when
 * it lacks them.  Then ONE modify (atomic on the server) replaces
 * cACertificate;binary, certificateRevocationList;binary,
 * authorityRevocationList;binary and deltaRevocationList;binary with
 * exactly the bytes given.  ca_der and crl_der are required; an arl_der or
 * delta_der that is NULL removes that attribute, so a switched-off delta
 * CRL does not linger.  The DER is not parsed here: the caller has built
 * and checked it.  Returns 0, or -1 with err set (see
 * directory_err_transient).  A connection reused from an earlier call that
 * turns out to be dead is reopened once before giving up.
 */
int directory_publish_ca(directory_ctx *d, const unsigned char *ca_der,
    size_t ca_len, const unsigned char *crl_der, size_t crl_len,
    const unsigned char *arl_der, size_t arl_len,
    const unsigned char *delta_der, size_t delta_len, lb_err *err);

/* ------------------------------------------------------------------ */
/* Users (enrollment, issue 4)                                         */
/*
 * Settings: user_base (default base_dn), user_filter (default
 * (&(objectClass=inetOrgPerson)(|(uid=%s)(mail=%s))), each %s replaced by
 * the login escaped per RFC 4515), mail_attribute (default mail),
 * group_attribute (default member).
 */

/* A user's entry as enrollment needs it; absent attributes are NULL. */
typedef struct directory_user {
	char *dn;
	char *mail;
	char *given_name;
	char *surname;
} directory_user;

void directory_user_free(directory_user *u);

/*
 * Finds the one entry under user_base that user_filter matches for login
 * (1..256 bytes, no control characters).  Returns a new directory_user
 * (free with directory_user_free), or NULL with err set: LB_ENOTFOUND for
 * no match, LB_ECONFLICT for several, transient/permanent as above.
 */
directory_user *directory_user_lookup(directory_ctx *d, const char *login,
    lb_err *err);

/*
 * Looks the user up and checks password by a simple bind as the user's DN
 * on a connection of its own (the service connection keeps its identity).
 * An empty password is refused before any bind (it would be an
 * unauthenticated bind, which servers accept).  Returns the user, or NULL
 * with err set: LB_EFORBIDDEN for a wrong or empty password, LB_ENOTFOUND
 * for an unknown login.  The messages say which, for the audit log; a
 * caller facing the network must not repeat them to the client.  The
 * password stays the caller's to cleanse.
 */
directory_user *directory_user_authenticate(directory_ctx *d,
    const char *login, const char *password, lb_err *err);

/*
 * Sets *member to whether group_dn's group_attribute holds user_dn.
 * Returns 0, or -1 with err set (LB_ENOTFOUND when the group is absent).
 */
int directory_user_in_group(directory_ctx *d, const char *user_dn,
    const char *group_dn, bool *member, lb_err *err);

/*
 * Adds (publish) or deletes (unpublish) one userCertificate;binary value,
 * the DER given, on the user's entry.  Idempotent: a value already there
 * (or already gone) is success, so a publication queue may retry freely.
 * Returns 0, or -1 with err set (transient or permanent as above).
 * TODO(issue 4): userSMIMECertificate (optional in the issue) once the
 * enrollment code has the signed-attributes blob to publish.
 */
int directory_publish_user_cert(directory_ctx *d, const char *user_dn,
    const unsigned char *der, size_t len, lb_err *err);
int directory_unpublish_user_cert(directory_ctx *d, const char *user_dn,
    const unsigned char *der, size_t len, lb_err *err);

#endif /* LOCKBOX_DIRECTORY_H */
