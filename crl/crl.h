/*
 * crl.h - revocation published where clients look: full (and delta) CRLs
 * built from the certificate store, written atomically to pub/ and served
 * over plain HTTP, and an OCSP responder (RFC 6960, RFC 5019 profile)
 * answering from the same revocation data.
 *
 * crl calls ca, directory and core.
 */
#ifndef LOCKBOX_CRL_H
#define LOCKBOX_CRL_H

#include "ca/ca.h"
#include "core/core.h"
#include "directory/directory.h"

/* ------------------------------------------------------------------ */
/* CRLs                                                                */

/* The full CRL's file name inside pub/ (served at base_url + "/ca.crl"). */
#define CRL_FILE "ca.crl"
/* The delta CRL's file name inside pub/ (base_url + "/delta.crl"), present
 * only while [crl] delta = yes. */
#define CRL_DELTA_FILE "delta.crl"
/* The largest CRL file the web handler loads (a 1,000,000-entry CRL is
 * about 49 MB). */
#define CRL_FILE_MAX ((size_t)512 * 1024 * 1024)

/* lockbox.conf [crl], with the defaults in brackets. */
typedef struct crl_conf {
	long skew;      /* skew: thisUpdate backdated by this many seconds [10m] */
	long validity;  /* validity: nextUpdate - thisUpdate [7d] */
	long interval;  /* interval: a new CRL at least this often [24h] */
	long coalesce;  /* coalesce: revocations within this window make one
	                 * CRL [2s] */
	bool delta;     /* delta: a delta CRL beside every full CRL [no] */
} crl_conf;

/* Reads [crl] from conf; -1 with err (naming the setting) when malformed
 * or when interval is not shorter than validity. */
int crl_conf_load(const core_conf *conf, crl_conf *out, lb_err *err);

/* A CRL as issued (crl_issue) or as recorded (crl_current). */
typedef struct crl_info {
	int64_t number;          /* 0: none issued yet */
	time_t this_update, next_update, issued;
	int64_t entries;
	char sha256[65];         /* lowercase hex SHA-256 of the DER */
	size_t der_len;          /* crl_issue only */
} crl_info;

/*
 * Issues the full CRL of ca's key at time now: v2, AKI (the CA's key id),
 * CRL number = the last one + 1, thisUpdate = now - skew, nextUpdate =
 * thisUpdate + validity, no Issuing Distribution Point; one entry per
 * revoked, unexpired certificate with its reasonCode and, for
 * keyCompromise, its invalidityDate.  Signed through ca_sign_crl, written
 * atomically to pub/ca.crl (0644), recorded (crl_state, publication
 * target "web") and audited ("crl", object = the number) in one
 * transaction on db.  With cc->delta, the full CRL carries freshestCRL
 * (base_url + "/delta.crl") and a delta CRL is issued with it to
 * pub/delta.crl: the same CRL number and times (RFC 5280 5.2.3: issued
 * together, they share the number), a critical deltaCRLIndicator naming
 * the previous full CRL (the first CRL is its own base), and the
 * certificates revoked since that CRL's thisUpdate.  Every issuance
 * (schedule and revocations alike) makes both; without cc->delta
 * pub/delta.crl is removed.  out (may be NULL) describes it.  -1 with err; a
 * failure to write the file is recorded as the web target's last error.
 */
int crl_issue(ca_ctx *ca, sqlite3 *db, const crl_conf *cc, time_t now,
    const char *actor, crl_info *out, lb_err *err);

/* The last CRL issued (out->number == 0 when none). */
int crl_current(sqlite3 *db, crl_info *out, lb_err *err);

/* A publication target's state. */
typedef struct crl_publication {
	const char *target;      /* "web", "ldap" */
	int64_t number;          /* published CRL number, 0 before the first */
	time_t published;     /* 0 before the first */
	time_t attempted;
	const char *last_error;  /* NULL after a success */
} crl_publication;

/*
 * Records the outcome of publishing CRL number to target at time now:
 * error NULL for a success, else the reason (the number published stays
 * what it was).  Outside any transaction of the caller's.
 */
int crl_publication_record(sqlite3 *db, const char *target, int64_t number,
    time_t now, const char *error, lb_err *err);

/* Calls fn for every target's state, in target order; strings borrowed. */
int crl_publication_foreach(sqlite3 *db,
    int (*fn)(const crl_publication *p, void *arg), void *arg, lb_err *err);

/*
 * Publishes the last CRL issued to the directory: pub/ca.crl (checked
 * against the SHA-256 in crl_state, so the bytes are those of that CRL
 * number and those the web serves) replaces certificateRevocationList;binary
 * and authorityRevocationList;binary on the CA's entry, with the CA
 * certificate, through directory_publish_ca (the entry created if absent),
 * with pub/delta.crl (when present, checked to carry the same CRL number)
 * as deltaRevocationList;binary, removed when absent.
 * The outcome is recorded as target "ldap" at time now; no transaction is
 * held while the directory is talked to.  *number (may be NULL) is the CRL
 * number published.  -1 with err (directory_err_transient tells a server
 * that is down from a permanent failure); LB_ENOTFOUND when no CRL was
 * issued yet (nothing recorded then).
 */
int crl_publish_ldap(ca_ctx *ca, sqlite3 *db, directory_ctx *d, time_t now,
    int64_t *number, lb_err *err);

/* Sets *pending when a CRL was issued that target "ldap" does not hold. */
int crl_ldap_pending(sqlite3 *db, bool *pending, lb_err *err);

/*
 * The daemon's CRL publisher: a thread with its own database handle that
 * issues a CRL at start when none exists or the last is older than
 * interval (or pub/ca.crl is missing), then every interval, and after
 * revocations: crl_publisher_wake (revocations in this process) or a
 * change of the revocation generation, polled every 2 s (revocations by
 * other processes).  Revocations within coalesce seconds make one CRL.
 * A failed issuance is retried with backoff.  With a [directory] uri in
 * lockbox.conf, a second thread (its own database handle and directory
 * connection) publishes each CRL to LDAP after the web (crl_publish_ldap),
 * also catching up with CRLs issued by `lockbox crl` or before a restart;
 * a failure is retried after [directory] retry seconds (5s), doubling up
 * to retry_max (5m), and never delays the web CRL.
 */
typedef struct crl_publisher crl_publisher;

/* Starts the thread; ca must stay open (and hold its key) until stop. */
crl_publisher *crl_publisher_start(ca_ctx *ca, lb_err *err);
/* Tells the publisher that a revocation was committed.  NULL: no-op. */
void crl_publisher_wake(crl_publisher *p);
/* Stops the thread (finishing a CRL in progress), closes its database
 * handle and frees p.  NULL: no-op. */
void crl_publisher_stop(crl_publisher *p);

/* ------------------------------------------------------------------ */
/* OCSP                                                                */

/* File names of the delegated responder's credential in the state dir. */
#define CRL_OCSP_KEY_FILE  "ocsp.key"
#define CRL_OCSP_CERT_FILE "ocsp.pem"
/* Largest OCSP request accepted (DER), over POST or GET. */
#define CRL_OCSP_REQ_MAX   ((size_t)16 * 1024)

/*
 * The responder: this CA's CertID hashes (SHA-1 and SHA-256, computed once)
 * and the current delegated responder credential (profile ocsp-signing),
 * swapped under a lock on renewal so that concurrent responses each keep
 * the credential they started with.  Thread-safe once made.
 */
typedef struct crl_ocsp crl_ocsp;

/* What a look-up tells about one serial. */
typedef struct crl_ocsp_cert_status {
	bool known;         /* false: never issued -> unknown */
	bool revoked;
	time_t revoked_at;
	int reason;         /* CRLReason, -1 when none recorded */
	time_t invalidity;  /* keyCompromise invalidityDate, 0 when none */
} crl_ocsp_cert_status;

/*
 * Looks up serial (uppercase hex, as BN_bn2hex prints it) and fills *st.
 * Returns 0, or -1 on an internal failure (answered internalError).
 */
typedef int (*crl_ocsp_lookup_fn)(void *arg, const char *serial,
    crl_ocsp_cert_status *st);

/* The look-up against the certificate store: arg is a sqlite3 handle. */
int crl_ocsp_lookup_db(void *arg, const char *serial,
    crl_ocsp_cert_status *st);

/*
 * Makes the responder for ca: reads [ocsp] validity (the nextUpdate window,
 * default 1h), loads ocsp.key/ocsp.pem from the state directory, and issues
 * a new responder certificate through ca_sign_cert/ca_store_cert (stored in
 * db like any other) when they are absent, do not match or have less than
 * half their lifetime left.  Needs the CA key to issue; without it an
 * existing, still valid credential is used with a warning.  NULL with err.
 */
crl_ocsp *crl_ocsp_new(ca_ctx *ca, sqlite3 *db, time_t now, lb_err *err);
void crl_ocsp_free(crl_ocsp *o);

/*
 * Renews the responder credential when less than half its lifetime remains
 * at now (or always with force): a new key and certificate, stored and
 * written 0600 to the state directory, then swapped in.  Only one renewal
 * runs at a time; a concurrent caller returns 0 at once.  Returns 1 when
 * renewed, 0 when nothing was due, -1 with err.
 */
int crl_ocsp_renew(crl_ocsp *o, sqlite3 *db, time_t now, bool force,
    lb_err *err);

/* The current responder certificate, up-ref'ed (X509_free it). */
X509 *crl_ocsp_get1_cert(crl_ocsp *o);

/* What crl_ocsp_respond tells about the response it made. */
typedef struct crl_ocsp_result {
	int status;         /* OCSP_RESPONSE_STATUS_* */
	time_t this_update, next_update;  /* for a successful response */
	bool nonce;         /* the response echoes a nonce */
} crl_ocsp_result;

/*
 * Answers one DER OCSPRequest (at most CRL_OCSP_REQ_MAX bytes) at time now:
 * malformedRequest for junk (and nonces over 32 octets, RFC 8954),
 * unauthorized when a CertID names another issuer, tryLater when the
 * responder certificate has expired unrenewed, else a BasicOCSPResponse with good/revoked/unknown per request
 * from lookup, thisUpdate = now, nextUpdate = now + [ocsp] validity, the
 * nonce echoed, responder ID by key hash, signed (SHA-256) by the
 * delegated responder with its certificate included.  *out is the DER
 * response (OPENSSL_free); res (may be NULL) describes it.  Returns -1 only
 * when no response at all could be encoded.
 */
int crl_ocsp_respond(crl_ocsp *o, const unsigned char *req, size_t len,
    time_t now, crl_ocsp_lookup_fn lookup, void *arg, unsigned char **out,
    size_t *out_len, crl_ocsp_result *res);

/*
 * crl_ocsp_respond with crl_ocsp_lookup_db on db, reusing signed answers
 * (RFC 5019): a request of at most 1024 bytes, byte-identical to an
 * earlier one without extensions (so without a nonce) that was answered
 * good or revoked within the last 60 s (and before that answer's
 * nextUpdate), matched on its bytes before decoding, gets the same bytes
 * again, as long as the revocation generation (read from db on every
 * call) and the responder credential are unchanged.  Answers with a nonce
 * or an unknown status are never reused.  4096 direct-mapped slots
 * (read/write lock); thread-safe, no lock held while signing.  Returns as
 * crl_ocsp_respond.
 */
int crl_ocsp_respond_db(crl_ocsp *o, sqlite3 *db, const unsigned char *req,
    size_t len, time_t now, unsigned char **out, size_t *out_len,
    crl_ocsp_result *res);

#endif /* LOCKBOX_CRL_H */
