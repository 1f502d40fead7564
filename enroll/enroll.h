/*
 * enroll.h - enrollment: EST (RFC 7030, RFC 8951) message formats, who the
 * caller is (directory bind, one-time token or the current certificate),
 * entitlement, rate limiting, issuance with approval and renewal, the
 * autoenrollment policy, the queue publishing user certificates to the
 * directory, a pool of pre-generated keys for serverkeygen, and the
 * enrollment client (`lockbox enroll` on the user's machine), beside the
 * server half of each format it speaks.
 *
 *   est.c        EST bodies: base64 CSRs, certs-only CMS, multipart/mixed,
 *                csrattrs, server-generated key parts (build and parse:
 *                the server and the enrollment client share them)
 *   policy.c     the policy document, both ends, and the renewal rule
 *   client.c     the enrollment client: first enrollment and --auto,
 *                over a transport the caller passes
 *   stage.c      the enrollment client's directory: staged key pairs,
 *                state.json
 *   auth.c       directory and token authentication, entitlement, the
 *                per-user and per-address failure backoff
 *   token.c      one-time enrollment tokens (only their hash is stored)
 *   enroll.c     the enrollment context, issuance, renewal,
 *                serverkeygen, the server's policy for a user
 *   approval.c   manual approval: the enrollment requests
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
 *   approval = auto | manual    manual: 202 until `lockbox enrollment approve`
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
/* A token as listed; never its secret, which is not stored. */
typedef struct enroll_token_row {
	int64_t id;
	const char *email;
	const char *profiles;    /* "smime-sign (spent), smime-enc (unspent)" */
	time_t created, expires;
	const char *created_by;  /* the actor who created it */
	time_t withdrawn;        /* 0: not withdrawn */
	const char *withdrawn_by;
} enroll_token_row;

/* Calls fn for every token, oldest first; fn != 0 stops. */
int enroll_token_list(sqlite3 *db, int (*fn)(const enroll_token_row *t,
    void *arg), void *arg, lb_err *err);
/* "withdrawn", "expired" or "expires" (still usable until then). */
const char *enroll_token_status(const enroll_token_row *t, time_t now);
/* Withdraws token id (audited as token.withdraw): no check or spend
 * accepts it any more.  LB_ENOTFOUND; LB_ECONFLICT when it is withdrawn
 * or expired already. */
int enroll_token_withdraw(sqlite3 *db, int64_t id, const char *actor,
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
 * The policy document of GET /api/v1/policy for id (policy.c writes it):
 * the profiles id is entitled to, with their EST URLs under base_url and
 * id's valid certificates of each with their renewal dates.
 */
json_t *enroll_policy(enroll_ctx *e, sqlite3 *db, const enroll_identity *id,
    const char *base_url, lb_err *err);

/* ------------------------------------------------------------------ */
/* The policy document, both ends (policy.c)                           */

/* A policy document the client reads: at most this many bytes, ... */
#define ENROLL_POLICY_MAX          ((size_t)1024 * 1024)
/* ... profiles, certificates per profile, and bytes of a URL. */
#define ENROLL_POLICY_PROFILES_MAX 64
#define ENROLL_POLICY_CERTS_MAX    256
#define ENROLL_URL_MAX             512
/* A profile's name: letters, digits, '-' and '_', 1 to 63 of them. */
#define ENROLL_PROFILE_NAME_MAX    63

/* The EST operations a profile's "est" object names, in its order. */
enum enroll_est_op {
	ENROLL_EST_CACERTS,
	ENROLL_EST_CSRATTRS,
	ENROLL_EST_SIMPLEENROLL,
	ENROLL_EST_SIMPLEREENROLL,
	ENROLL_EST_SERVERKEYGEN,
	ENROLL_EST_NOPS
};
/* "cacerts" ... "serverkeygen"; NULL out of range. */
const char *enroll_est_op_name(enum enroll_est_op op);

/* One of the user's certificates of a profile. */
typedef struct enroll_policy_cert {
	char *serial;            /* uppercase hex */
	char *status;
	time_t not_before, not_after;
	time_t renew_after;      /* read: 0 when absent or malformed */
} enroll_policy_cert;

/* One profile of the policy. */
typedef struct enroll_policy_profile {
	char *name;
	bool enroll, autoenroll; /* the user may enroll it */
	bool escrow;             /* server-generated, escrowed keys */
	bool manual;             /* "approval": "manual" */
	enum ca_key_type key_types[8]; /* allowed, in the document's order */
	size_t nkey_types;
	enum ca_key_type server_key_type; /* escrow: serverkeygen's type */
	long validity_days, renew_percent, renew_days;
	char *est[ENROLL_EST_NOPS]; /* URLs, NULL where not offered */
	enroll_policy_cert *certs;
	size_t ncerts;
	/* read: why this profile cannot be used (code LB_OK: usable) */
	lb_err problem;
} enroll_policy_profile;

/* The document: the user and the profiles. */
typedef struct enroll_policy {
	char *email, *given_name, *surname, *dn;
	enroll_policy_profile *profiles;
	size_t nprofiles;
} enroll_policy_doc;

/*
 * When a certificate valid from not_before to not_after is due for
 * renewal: once percent of its lifetime has passed, or days before its
 * end, whichever comes first.  The one rule of the server's policy and
 * the client's --auto.
 */
time_t enroll_renew_after(time_t not_before, time_t not_after, long percent,
    long days);
/* The key type a client makes for p: P-256 where allowed, else the first
 * type the document names (P-256 when it names none lockbox knows). */
enum ca_key_type enroll_policy_key_type(const enroll_policy_profile *p);
/* Whether s is a profile name as ENROLL_PROFILE_NAME_MAX says. */
bool enroll_policy_name_ok(const char *s);
/* The document as JSON (the server's answer); NULL when out of memory. */
json_t *enroll_policy_json(const enroll_policy_doc *p);
/*
 * Reads a policy document (at most ENROLL_POLICY_MAX bytes: LB_ETOOBIG;
 * JSON with a "profiles" array, no duplicate keys: else LB_EINVAL "not a
 * policy document").  Fields of the wrong type read as absent; a profile
 * badly named, with a renewal window out of range or certificates that
 * are no array of objects gets a problem of its own and the rest are
 * still read.  *out is cleared first; on failure nothing is left in it.
 */
int enroll_policy_parse(const char *buf, size_t len, enroll_policy_doc *out,
    lb_err *err);
void enroll_policy_profile_clear(enroll_policy_profile *p);
void enroll_policy_clear(enroll_policy_doc *p);

/* Approval queue (`lockbox enrollment`). */
int enroll_request_decide(sqlite3 *db, const char *id, bool approve,
    const char *actor, lb_err *err);
int enroll_request_list(sqlite3 *db, const char *status,
    int (*fn)(const char *id, const char *profile, const char *email,
    const char *status, time_t created, void *arg), void *arg, lb_err *err);

/* ------------------------------------------------------------------ */
/* The enrollment client (client.c): `lockbox enroll` on the user's     */
/* machine                                                             */

/*
 * The HTTPS client the enrollment client speaks through (cli/http.c's in
 * the CLI).  open: a client for server ("https://HOST:PORT") trusting
 * only the certificates in ca_file (NULL with err), given ctx; server: that URL as
 * normalised (no trailing slash); set_basic: HTTP Basic for the requests
 * that follow; set_cert_files: the client certificate and key files for
 * the requests that follow, read when the next connection opens (a new
 * one: a certificate renewed in the same files is the one shown);
 * request: sends method path with the extra headers (NULL-terminated
 * "Name: value" lines, or NULL) and body, and fills *r with the answer
 * whatever its status; -1 with err only when no answer came (or one of
 * more than max bytes: "too large").
 */
typedef struct enroll_transport {
	void *ctx;
	void *(*open)(void *ctx, const char *server, const char *ca_file,
	    lb_err *err);
	void (*close)(void *h);
	const char *(*server)(const void *h);
	int (*set_basic)(void *h, const char *login, const char *password,
	    lb_err *err);
	int (*set_cert_files)(void *h, const char *cert_file,
	    const char *key_file, lb_err *err);
	int (*request)(void *h, const char *method, const char *path,
	    const char *const *headers, const void *body, size_t len,
	    size_t max, core_http_reply *r, lb_err *err);
} enroll_transport;

/* What became of one profile in a run. */
enum enroll_outcome {
	ENROLL_OUT_ENROLLED,     /* serial */
	ENROLL_OUT_RENEWED,      /* serial */
	ENROLL_OUT_PENDING,      /* awaits approval; retry_after (seconds,
	                          * or "" when the server named none) */
	ENROLL_OUT_ALREADY,      /* enrolled before, in dir */
	ENROLL_OUT_UP_TO_DATE,   /* nothing due until until */
	ENROLL_OUT_FAILED,       /* err */
};
typedef struct enroll_report {
	const char *profile;
	enum enroll_outcome outcome;
	const char *serial;
	time_t until;
	const char *retry_after;
	const char *dir;
	const lb_err *err;
} enroll_report;
/* Called once per profile of the policy, as the run goes. */
typedef void (*enroll_report_fn)(const enroll_report *r, void *arg);

/* The first enrollment's arguments. */
typedef struct enroll_client_opts {
	const char *dir;         /* an existing directory (0700), absolute */
	const char *server;      /* https://HOST:PORT */
	const char *ca_cert;     /* what the server's certificate chains to */
	const char *login;       /* directory login, or e-mail with a token */
	const char *secret_file; /* the password or the token, one line */
} enroll_client_opts;

/*
 * The first enrollment: copies ca_cert into dir/server-ca.pem, reads the
 * policy with HTTP Basic (login, the secret), writes ca.pem and
 * state.json, and enrolls every profile the policy entitles the user to
 * and dir has no certificate of yet.  0 when every profile enrolled (or
 * awaits approval, or was there), 1 when one failed (reported), -1 with
 * err when nothing could be tried (bad server, refused policy, no
 * profile entitled).
 */
int enroll_client_first(const enroll_transport *t,
    const enroll_client_opts *o, enroll_report_fn fn, void *arg,
    lb_err *err);
/*
 * --auto: with the server and e-mail of dir/state.json, authenticated by
 * dir's signing certificate, renews every profile due (the policy's
 * renew_after, else enroll_renew_after) and enrolls any not yet held;
 * finishes or drops what an interrupted run staged.  Returns as
 * enroll_client_first.
 */
int enroll_client_auto(const enroll_transport *t, const char *dir,
    enroll_report_fn fn, void *arg, lb_err *err);

/* state.json: where the first enrollment was made and for whom. */
typedef struct enroll_state {
	char *server;            /* https://HOST:PORT */
	char *ca_cert;           /* the copy of --ca-cert in the directory */
	char *email;
} enroll_state;
/*
 * Reads state.json (at most 64 KiB; JSON with a "server" starting
 * "https://", a "ca_cert" and the e-mail as "user", the file's name for
 * it since the first version).  *st is cleared first and left empty on
 * failure (LB_EINVAL).
 */
int enroll_state_parse(const char *buf, size_t len, enroll_state *st,
    lb_err *err);
/* The text of a state.json (malloc'ed), NULL when out of memory or not
 * UTF-8. */
char *enroll_state_text(const char *server, const char *ca_cert,
    const char *email);
void enroll_state_clear(enroll_state *st);

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
