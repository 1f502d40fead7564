/*
 * enroll.h - enrollment: EST (RFC 7030, RFC 8951) message formats, who the
 * caller is (directory bind, one-time token or the current certificate),
 * entitlement, rate limiting, issuance with approval and renewal, the
 * autoenrollment policy, the queue publishing user certificates to the
 * directory, and a pool of pre-generated keys for serverkeygen.
 *
 *   est.c        EST bodies: base64 CSRs, certs-only CMS, multipart/mixed,
 *                csrattrs, server-generated key parts (build and parse:
 *                the server and the `lockbox enroll` agent share them)
 *   auth.c       directory and token authentication, entitlement, the
 *                per-user and per-address failure backoff
 *   token.c      one-time enrollment tokens (only their hash is stored)
 *   enroll.c     the enrollment context, issuance, renewal, approval,
 *                serverkeygen, the policy document
 *   publish.c    the directory publication queue and its worker thread
 *   keypool.c    pre-generated server-side keys, refilled off the HTTP
 *                threads
 *
 * Configuration (lockbox.conf):
 *
 *   [enroll]
 *   publish_signing = no        also publish smime-sign certificates
 *   keypool = 8                 pre-generated keys per serverkeygen type
 *   fail_limit = 5              failures before the backoff starts
 *
 *   [profile.NAME] (enrollment settings, beside those ca/ reads)
 *   groups = DN; DN             directory groups entitled to NAME (absent:
 *                               every authenticated directory user)
 *   approval = auto | manual    manual: 202 until `lockbox request approve`
 *   renew_percent = 80          renew once this much of the lifetime passed
 *   renew_days = 30             ... or this close to notAfter, if sooner
 *   keygen_type = rsa-3072      serverkeygen's key type (smime-enc)
 *
 * An escrow profile (smime-enc) takes only serverkeygen: simpleenroll
 * would leave the key on the client, where archival cannot reach it (EST
 * has no way to hand a private key in; `lockbox issue --key` does).
 *
 * enroll calls archive, crl, ca, directory and core.
 */
#ifndef LOCKBOX_ENROLL_H
#define LOCKBOX_ENROLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "core/core.h"

/* Largest EST request body accepted (base64 of a CSR). */
#define ENROLL_BODY_MAX ((size_t)64 * 1024)

/* ------------------------------------------------------------------ */
/* EST message formats (est.c)                                         */

/*
 * Decodes a simpleenroll / simplereenroll / serverkeygen body: base64 of
 * a PKCS#10 DER (RFC 7030 section 4.2.1), whitespace (CR, LF, space, tab)
 * anywhere tolerated; also accepts a PEM "CERTIFICATE REQUEST" block.  At
 * most ENROLL_BODY_MAX bytes.  The self-signature is verified
 * (ca_csr_parse).  Returns the request or NULL with err: LB_ETOOBIG,
 * LB_EINVAL naming what is wrong (not base64, not a CSR, bad signature).
 */
X509_REQ *enroll_est_csr_decode(const unsigned char *body, size_t len,
    lb_err *err);

/*
 * Builds a certs-only CMS (degenerate SignedData, RFC 5652 / RFC 7030
 * section 4.1.3) holding certs[0..n-1] and returns it base64-encoded, lines
 * of 64 characters ending in CRLF, in *out (malloc'ed, NUL-terminated;
 * *outlen excludes the NUL).
 */
int enroll_est_certs_only(X509 *const *certs, size_t n, char **out,
    size_t *outlen, lb_err *err);

/*
 * Parses a certs-only response (base64 with whitespace, or DER when the
 * body does not decode as base64) into a new stack of certificates (in
 * the order carried).  At most 1 MiB.  NULL with err (LB_EINVAL) when
 * malformed or empty.
 */
STACK_OF(X509) *enroll_est_certs_parse(const unsigned char *body, size_t len,
    lb_err *err);

/*
 * The csrattrs answer for a profile (RFC 7030 section 4.5.2, RFC 8951):
 * the base64 DER of a CsrAttrs SEQUENCE naming what the profile wants:
 * the key types allowed (rsaEncryption / id-ecPublicKey with the curve
 * OIDs as attribute values), the signature algorithm
 * (ecdsa-with-SHA256 / sha256WithRSAEncryption), and extensionRequest
 * with the e-mail SAN.  key_types: the names of ca_key_type_name.
 */
int enroll_est_csrattrs(const char *const *key_types, size_t n, char **out,
    size_t *outlen, lb_err *err);

/*
 * The AsymmetricDecryptKeyIdentifier attribute of a serverkeygen CSR
 * (id-aa-asymmDecryptKeyID, OID 1.2.840.113549.1.9.16.2.54, RFC 7030 section
 * 4.4.1.2): an OCTET STRING naming the client's key-transport key by
 * subject key identifier.  Returns 1 with *id and *len (OPENSSL_malloc'ed)
 * when present, 0 when absent, -1 with err (LB_EINVAL) when malformed.
 */
int enroll_est_decrypt_key_id(X509_REQ *req, unsigned char **id,
    size_t *len, lb_err *err);

/*
 * The private-key part of a serverkeygen answer: PKCS#8 PrivateKeyInfo DER,
 * base64 with CRLF lines (application/pkcs8).  The DER is cleansed before
 * it is freed; the caller cleanses and frees *out (OPENSSL_clear_free).
 */
int enroll_est_key_pkcs8(EVP_PKEY *key, char **out, size_t *outlen,
    lb_err *err);
/*
 * As enroll_est_key_pkcs8 but the PKCS#8 DER is wrapped in CMS
 * EnvelopedData to the certificate to (RSA key transport, OAEP SHA-256,
 * AES-256) (application/pkcs7-mime; smime-type=server-generated-key).
 */
int enroll_est_key_enveloped(EVP_PKEY *key, X509 *to, char **out,
    size_t *outlen, lb_err *err);

/* One part of a multipart/mixed body. */
typedef struct enroll_part {
	const char *content_type;  /* "application/pkcs8" ... */
	const char *body;          /* already base64 */
	size_t len;
} enroll_part;

/*
 * Builds a multipart/mixed body of n parts, each with Content-Type and
 * "Content-Transfer-Encoding: base64", with a random boundary.  *ctype gets
 * the Content-Type header value ("multipart/mixed; boundary=...").  Both
 * outputs malloc'ed; *out is cleansed by the caller (it may hold a key).
 */
int enroll_est_multipart(const enroll_part *parts, size_t n, char **out,
    size_t *outlen, char **ctype, lb_err *err);

/*
 * Parses a multipart/mixed body given its Content-Type header value
 * (boundary parameter, quoted or not): fills parts[0..max-1] with
 * pointers into body (content_type is malloc'ed per part; free with
 * enroll_parts_clear) and sets *n.  CRLF or bare LF line ends.  -1 with
 * err (LB_EINVAL) when malformed, LB_ETOOBIG with more than max parts.
 */
int enroll_est_multipart_parse(const char *ctype, const char *body,
    size_t len, enroll_part *parts, size_t max, size_t *n, lb_err *err);
void enroll_parts_clear(enroll_part *parts, size_t n);

/*
 * Decodes the base64 of a PKCS#8 part (or, with key_cert and key_holder,
 * an EnvelopedData part decrypted with key_holder) into a private key.
 */
EVP_PKEY *enroll_est_key_parse(const char *b64, size_t len,
    EVP_PKEY *key_holder, X509 *key_cert, lb_err *err);

/* ------------------------------------------------------------------ */
/* Callers and entitlement (auth.c, token.c)                            */

enum enroll_auth {
	ENROLL_AUTH_NONE = 0,
	ENROLL_AUTH_DIRECTORY,   /* HTTP Basic, LDAP bind as the user */
	ENROLL_AUTH_TOKEN,       /* HTTP Basic, e-mail + one-time token */
	ENROLL_AUTH_CERT,        /* TLS client certificate (renewal) */
};

/* Who the caller is.  Strings malloc'ed; free with enroll_identity_clear. */
typedef struct enroll_identity {
	enum enroll_auth how;
	char *login;             /* as presented (Basic user; cert: e-mail) */
	char *email;             /* from the directory entry, token or cert */
	char *given_name;        /* directory / token; NULL when absent */
	char *surname;
	char *user_dn;           /* directory entry, when there is one */
	int64_t token_id;        /* ENROLL_AUTH_TOKEN */
	char *cert_serial;       /* ENROLL_AUTH_CERT: the certificate shown */
	char *cert_profile;      /* ... and its profile */
} enroll_identity;

void enroll_identity_clear(enroll_identity *id);
/* "directory:DN", "token:ID" or "cert:SERIAL", for the audit log. */
void enroll_identity_actor(const enroll_identity *id, char *out, size_t n);

typedef struct enroll_ctx enroll_ctx;

/*
 * HTTP Basic: a password that looks like a token (ENROLL_TOKEN_PREFIX)
 * is checked as a token for e-mail user; anything else by a directory
 * bind as user (when [directory] is configured).  addr is the client's
 * address.  Failures are audited (db) and counted per user and per
 * address: after fail_limit failures every further attempt within an
 * exponentially growing window (1 s doubling, at most 15 min) is refused
 * without checking, with LB_ETHROTTLED and *retry_after set (seconds).
 * Wrong credentials and spent or expired tokens: LB_EUNAUTH with a
 * message that does not say which.  Directory unreachable: LB_EINTERNAL.
 * With profile (NULL: any), a token spent for that profile is refused
 * like a wrong one.  Directory unreachable: LB_EINTERNAL with
 * *retry_after set (answered 503).  Success clears the user's count and
 * fills id.
 */
int enroll_auth_basic(enroll_ctx *e, sqlite3 *db, const char *addr,
    const char *user, const char *password, const char *profile,
    enroll_identity *id, unsigned *retry_after, lb_err *err);

/*
 * A TLS client certificate (already verified to chain to this CA by the
 * caller): it must be in the database, valid (not revoked, superseded or
 * expired) and of a subscriber profile with an e-mail.  Fills id
 * (ENROLL_AUTH_CERT; with a directory, user_dn and names are looked up by
 * e-mail, and a user no longer in the directory is refused).  LB_EUNAUTH
 * otherwise.
 */
int enroll_auth_cert(enroll_ctx *e, sqlite3 *db, X509 *cert,
    enroll_identity *id, lb_err *err);

/*
 * Whether id may enroll profile: a subscriber profile known to the CA;
 * directory: member of one of the profile's groups (none configured:
 * any directory user); token: the token lists the profile and it is not
 * spent; certificate: the profile is smime-sign or smime-enc and the
 * certificate is a signing one (smime-sign).  0, or -1 with err
 * (LB_EFORBIDDEN naming why, LB_ENOTFOUND for an unknown profile).
 */
int enroll_entitled(enroll_ctx *e, sqlite3 *db, const enroll_identity *id,
    const char *profile, lb_err *err);

/* Token secrets start with this, so that Basic auth knows what to check. */
#define ENROLL_TOKEN_PREFIX "lbt-"

typedef struct enroll_token_opts {
	const char *email;
	const char *given_name;  /* NULL unless the profile needs names */
	const char *surname;
	const char *profiles;    /* comma-separated; NULL: smime-sign,smime-enc */
	long ttl;                /* seconds; 0: 7 days */
	const char *actor;
} enroll_token_opts;

/*
 * Creates a token (committed, audited) and returns its secret in *secret
 * (ENROLL_TOKEN_PREFIX + 43 base64url characters of 32 random bytes;
 * core_secret_free).  Profiles are checked against ca.  *id gets the row.
 */
int enroll_token_create(ca_ctx *ca, sqlite3 *db, const enroll_token_opts *o,
    char **secret, int64_t *id, lb_err *err);
/*
 * Checks e-mail + secret: 0 with id filled (how, email, names, token_id)
 * when the token exists, is unexpired, belongs to email and has an unspent
 * profile; -1 with LB_EUNAUTH otherwise.
 */
int enroll_token_check(sqlite3 *db, const char *email, const char *secret,
    enroll_identity *id, lb_err *err);
/*
 * Spends the token for profile inside the caller's transaction, recording
 * serial: -1 with LB_EUNAUTH when it is already spent or not listed.
 */
int enroll_token_spend(sqlite3 *db, int64_t token_id, const char *profile,
    const char *serial, lb_err *err);
/* Whether the token lists profile unspent. */
bool enroll_token_allows(sqlite3 *db, int64_t token_id, const char *profile);
/*
 * Calls fn for every token, oldest first (profiles as "smime-sign (spent),
 * smime-enc (unspent)"); never a secret.  fn != 0 stops.
 */
int enroll_token_list(sqlite3 *db, int (*fn)(int64_t id, const char *email,
    const char *profiles, time_t created, time_t expires,
    const char *creator, void *arg), void *arg, lb_err *err);
/* Expires token id now (audited).  LB_ENOTFOUND, LB_ECONFLICT when it has
 * expired already. */
int enroll_token_revoke(sqlite3 *db, int64_t id, const char *actor,
    lb_err *err);

/* ------------------------------------------------------------------ */
/* Enrollment (enroll.c)                                               */

/*
 * Opens the enrollment side of the daemon: reads [enroll], the profiles'
 * enrollment settings and [directory] (optional: token and certificate
 * auth work without it), starts the publication worker and the key pool.
 * with_threads false (the CLI) starts neither.
 */
enroll_ctx *enroll_new(ca_ctx *ca, bool with_threads, lb_err *err);
void enroll_free(enroll_ctx *e);

/* Whether name is an enrollment profile (an EST label). */
bool enroll_profile_known(const char *name);

/*
 * The certificate a serverkeygen key is to be encrypted to (RFC 7030
 * section 4.4.1.2): a valid certificate of email whose subject key
 * identifier is skid and whose RSA key allows key transport
 * (keyEncipherment).  NULL with err (LB_EINVAL) when there is none.
 */
X509 *enroll_key_transport_cert(sqlite3 *db, const char *email,
    const unsigned char *skid, size_t len, lb_err *err);

/* What an enrollment produced. */
typedef struct enroll_result {
	X509 *cert;              /* the new certificate, durable */
	EVP_PKEY *key;           /* serverkeygen: the generated key */
	char request_id[33];     /* approval pending: the request's id */
	unsigned retry_after;    /* ... and when to ask again, seconds */
} enroll_result;
void enroll_result_clear(enroll_result *res);

enum enroll_op {
	ENROLL_SIMPLE = 1,       /* simpleenroll */
	ENROLL_RENEW,            /* simplereenroll */
	ENROLL_SERVERKEYGEN,     /* serverkeygen */
};

/*
 * Enrolls id for profile with req (whose key is used, except for
 * serverkeygen).  The certificate's identity comes from id, never from
 * the CSR.  ENROLL_RENEW: id is ENROLL_AUTH_CERT; the new certificate
 * carries the renewed one's subject and SAN, a CSR naming another
 * identity is refused (LB_EINVAL), and the old certificate is marked
 * superseded in the same transaction.  Escrow profiles are issued through
 * archive_issue_enc.  With approval = manual the first call stores a
 * request and returns 0 with res->request_id set and no certificate; a
 * later call with the same key finds it and issues once approved (denied:
 * LB_EFORBIDDEN).  Token auth spends the token.  Publication to the
 * directory is queued in the same transaction.
 */
int enroll_do(enroll_ctx *e, sqlite3 *db, const enroll_identity *id,
    enum enroll_op op, const char *profile, X509_REQ *req,
    enroll_result *res, lb_err *err);

/*
 * The policy document of GET /api/v1/policy for id (see the README):
 * {"user": ..., "profiles": [{"name", "enroll", "escrow", "key_types",
 * "validity_days", "renew_percent", "renew_days", "est": {...},
 * "certificates": [{"serial", "not_after", "renew_after", ...}]}]}.
 */
json_t *enroll_policy(enroll_ctx *e, sqlite3 *db, const enroll_identity *id,
    const char *base_url, lb_err *err);

/* Approval queue (`lockbox request`). */
int enroll_request_decide(sqlite3 *db, const char *id, bool approve,
    const char *actor, lb_err *err);
int enroll_request_list(sqlite3 *db, const char *status,
    int (*fn)(const char *id, const char *profile, const char *email,
    const char *status, time_t created, void *arg), void *arg, lb_err *err);

/* ------------------------------------------------------------------ */
/* Publication to the directory (publish.c)                            */

/*
 * Queues cert (serial, e-mail, user_dn or NULL: looked up by e-mail) for
 * adding to the user's entry, inside the caller's transaction.
 */
int enroll_publish_enqueue(sqlite3 *db, const char *serial,
    const char *email, const char *user_dn, lb_err *err);

typedef struct enroll_publisher enroll_publisher;
/*
 * Starts the worker thread: it adds queued certificates to their users'
 * entries (userCertificate;binary), queues and performs the removal of
 * published certificates once revoked, and retries failures with backoff
 * ([directory] retry, retry_max).  It never blocks enrollment.
 */
enroll_publisher *enroll_publisher_start(ca_ctx *ca, const core_conf *conf,
    lb_err *err);
/* Wakes the worker (a certificate was queued or revoked). */
void enroll_publisher_wake(enroll_publisher *p);
/* Wakes e's worker, when it has one (e may be NULL). */
void enroll_wake_publisher(enroll_ctx *e);
void enroll_publisher_stop(enroll_publisher *p);

/* Counts for `lockbox publish status` and /healthz. */
typedef struct enroll_publish_counts {
	int64_t pending, failed, done;
	time_t oldest_pending;   /* 0 when none */
} enroll_publish_counts;
int enroll_publish_counts_get(sqlite3 *db, enroll_publish_counts *c,
    lb_err *err);

/* A pending or failed publication; strings borrowed for the callback. */
typedef struct enroll_publication {
	const char *serial, *email, *action, *state, *last_error;
	int64_t attempts;
	time_t next_try;
} enroll_publication;
/* Calls fn for each pending or failed publication, oldest first; fn != 0
 * stops. */
int enroll_publish_foreach(sqlite3 *db,
    int (*fn)(const enroll_publication *pb, void *arg), void *arg,
    lb_err *err);
/* Failed publications pending again, due now, audited (actor); *n gets
 * how many. */
int enroll_publish_retry(sqlite3 *db, const char *actor, int *n,
    lb_err *err);

/* ------------------------------------------------------------------ */
/* Pre-generated keys (keypool.c)                                      */

typedef struct enroll_keypool enroll_keypool;
/*
 * Keeps up to size keys of type generated in memory by a background thread
 * (size 0: no thread, every take generates inline).
 */
enroll_keypool *enroll_keypool_new(enum ca_key_type type, size_t size,
    lb_err *err);
/* A key from the pool (refilled in the background), or a fresh one when
 * the pool is empty.  The caller owns it. */
EVP_PKEY *enroll_keypool_take(enroll_keypool *p, lb_err *err);
/* Keys ready now. */
size_t enroll_keypool_ready(enroll_keypool *p);
/* Stops the thread and frees the keys. */
void enroll_keypool_free(enroll_keypool *p);

#endif /* LOCKBOX_ENROLL_H */
