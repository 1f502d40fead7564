/*
 * ca.h - the certificate authority: the state directory and its CA key,
 * certificate profiles, issuance, revocation, the certificate store,
 * operators and their roles, and key/PKCS#12 helpers.
 *
 * The CA private key is used only through ca_sign_cert(), ca_sign_crl(),
 * ca_sign_crl_der() and ca_sign_receipt(), each of which checks its input
 * against a profile first; after ca_signer_start() the key lives in a
 * separate signer process and those functions send it typed requests.
 * ca calls only core.
 */
#ifndef LOCKBOX_CA_H
#define LOCKBOX_CA_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/core.h"

/* File names inside the state directory. */
#define CA_CONF_FILE     "lockbox.conf"
#define CA_DB_FILE       "lockbox.db"
#define CA_CERT_FILE     "ca.pem"
#define CA_KEY_FILE      "ca.key"
#define CA_KEY_PASS_FILE "ca.key.pass"
#define CA_CSR_FILE      "ca.csr"
#define CA_TLS_CERT_FILE "tls.pem"
#define CA_TLS_KEY_FILE  "tls.key"
#define CA_PUB_DIR       "pub"
#define CA_ADMIN_P12     "admin.p12"

/* ------------------------------------------------------------------ */
/* Keys                                                                */

/* Key types lockbox accepts by name: "rsa-2048" ... "ec-p384". */
enum ca_key_type {
	CA_KEY_NONE = 0,
	CA_KEY_RSA2048,
	CA_KEY_RSA3072,
	CA_KEY_RSA4096,
	CA_KEY_ECP256,
	CA_KEY_ECP384,
};

/* Parses a key type name; CA_KEY_NONE when unknown. */
enum ca_key_type ca_key_type_parse(const char *name);
const char *ca_key_type_name(enum ca_key_type t);
/* The key type of a public or private key; CA_KEY_NONE when not allowed
 * (RSA < 2048, other curves, other algorithms). RSA sizes above 4096 map
 * to CA_KEY_RSA4096. */
enum ca_key_type ca_key_type_of(const EVP_PKEY *key);
/* Generates a key pair; NULL with err set on failure. */
EVP_PKEY *ca_keygen(enum ca_key_type t, lb_err *err);
/* Writes a private key as PKCS#8 PEM, encrypted (AES-256-CBC, PBKDF2) when
 * pass is non-NULL, to path with mode 0600; excl refuses an existing file. */
int ca_key_write(const char *path, EVP_PKEY *key, const char *pass, bool excl,
    lb_err *err);
/*
 * The private key as PKCS#8 PrivateKeyInfo DER into *der
 * (OPENSSL_clear_free by the caller).  0, or -1 (logged) with *der NULL;
 * the caller says what could not be encoded.
 */
int ca_key_pkcs8_der(EVP_PKEY *key, unsigned char **der, size_t *len);
/* Reads a PEM or DER private key, decrypting with pass when given. */
EVP_PKEY *ca_key_read(const char *path, const char *pass, lb_err *err);

/*
 * Parses a PKCS#10 request from PEM or DER (at most 64 KiB) and verifies
 * its self-signature.  NULL with err (LB_EINVAL) on anything malformed.
 */
X509_REQ *ca_csr_parse(const unsigned char *buf, size_t len, lb_err *err);
/*
 * A PKCS#10 request for key, signed with it: subject (copied) or else
 * CN=cn (cn NULL: the e-mail), and the e-mail as subjectAltName.  NULL
 * with err on failure.
 */
X509_REQ *ca_csr_make(EVP_PKEY *key, const X509_NAME *subject, const char *cn,
    const char *email, lb_err *err);

/* Lowercase hex SHA-256 of a certificate's SubjectPublicKeyInfo DER. */
int ca_spki_sha256(X509 *cert, char out[65]);
/*
 * The key's identity however a certificate or CSR encodes it: hex SHA-256
 * over the RSA modulus, or the EC curve and point, or another type's raw
 * public key.  -1 for a key it cannot reduce so (an EC key without a
 * named curve).
 */
int ca_key_id(const EVP_PKEY *key, char out[65]);
/*
 * One key, one purpose: 0 when key may be certified under profile, -1
 * with LB_EINVAL naming the certificate that already certifies it for the
 * other purpose (encryption for smime-enc, signing for every other
 * profile, the CA's own key included).  ca_store_cert records the purpose
 * and refuses the same inside its transaction; this is the early check,
 * before anything is signed.
 */
int ca_key_use_check(sqlite3 *db, const EVP_PKEY *key, const char *profile,
    lb_err *err);

/* Sets a positive random 16-byte serial number on x; 0 or -1. */
int ca_random_serial(X509 *x);
/* A certificate's serial as uppercase hex, malloc'ed; NULL on failure. */
char *ca_cert_serial(const X509 *x);

/* A distinguished name in RFC 2253 form (UTF-8), malloc'ed. */
char *ca_name_string(const X509_NAME *name);

/* Parses the first certificate of a PEM or DER buffer. */
X509 *ca_cert_parse(const unsigned char *buf, size_t len, lb_err *err);
/*
 * certs[0..n-1], then chain's certificates (chain may be NULL), as PEM in
 * a malloc'ed NUL-terminated string of *len bytes (the NUL not counted).
 * NULL (logged) when out of memory; callers say what they could not
 * encode.
 */
char *ca_certs_pem(X509 *const *certs, size_t n, STACK_OF(X509) *chain,
    size_t *len);
/*
 * Every PEM certificate of buf (at most 1 MiB), in order: a new stack,
 * or NULL with err (LB_EINVAL "WHAT: no PEM certificate inside").
 */
STACK_OF(X509) *ca_pem_chain_parse(const void *buf, size_t len,
    const char *what, lb_err *err);

/* ------------------------------------------------------------------ */
/* PKCS#12                                                             */

enum ca_p12_format {
	CA_P12_MODERN = 0, /* PBES2 AES-256-CBC, PBKDF2-SHA256, HMAC-SHA256 MAC */
	CA_P12_LEGACY,     /* PBE-SHA1-3DES, SHA-1 MAC, for older clients */
};

/*
 * Passphrases, never written beside what they protect.  ca_pass_new: a
 * new one, read from pass_file, else typed twice on the terminal (at
 * least 8 characters); ca_pass_get: an existing one, from pass_file, else
 * typed once.  path names the file it is for.  NULL with err when there
 * is neither file nor terminal.  core_secret_free the result.
 */
char *ca_pass_new(const char *pass_file, const char *path, lb_err *err);
char *ca_pass_get(const char *pass_file, const char *path, lb_err *err);
/* 0 when nothing is at path, else -1 with err (LB_ECONFLICT): what the
 * commands check before doing work whose result goes to path. */
int ca_out_free(const char *path, lb_err *err);
/*
 * Writes key + cert (+ chain, may be NULL) as PKCS#12 to path (0600),
 * protected by pass; refuses (LB_ECONFLICT) when path exists.
 */
int ca_p12_write(const char *path, const char *pass, EVP_PKEY *key,
    X509 *cert, STACK_OF(X509) *chain, const char *friendly,
    enum ca_p12_format fmt, lb_err *err);
/*
 * As ca_p12_write for n keys, each with its certificate (keys[i] belongs
 * to certs[i]; friendly may be NULL or hold n names, each may be NULL),
 * plus the chain: one file for every recovered key of a user.  Key and
 * certificate bags are paired by localKeyID (the certificate's SHA-256).
 */
int ca_p12_write_multi(const char *path, const char *pass,
    EVP_PKEY *const *keys, X509 *const *certs, const char *const *friendly,
    size_t n, STACK_OF(X509) *chain, enum ca_p12_format fmt, lb_err *err);
/*
 * Reads a PKCS#12 credential.  The password comes from pass_file when
 * given, else from path.pass when an older version left one, else the
 * terminal.  Out parameters get owned
 * objects; chain may be NULL.
 */
int ca_p12_read(const char *path, const char *pass_file, EVP_PKEY **key,
    X509 **cert, STACK_OF(X509) **chain, lb_err *err);

/* ------------------------------------------------------------------ */
/* The CA                                                              */

typedef struct ca_ctx ca_ctx;
typedef struct ca_profile ca_profile;

/* Options of ca_init; NULL/0 fields take the defaults. */
typedef struct ca_init_opts {
	const char *name;        /* "Example S/MIME CA" */
	enum ca_key_type key_type; /* CA_KEY_RSA3072 */
	int days;                /* CA validity, 3650 */
	const char *base_url;    /* http://127.0.0.1:8080 */
	const char *listen;      /* 127.0.0.1:8443 */
	const char *http_listen; /* 127.0.0.1:8080 */
	const char *admin_email; /* admin@localhost */
	const char *admin_name;  /* Administrator */
	bool subordinate;        /* write ca.csr instead of a self-signed root */
	const char *admin_p12_pass_file; /* NULL: typed on the terminal */
} ca_init_opts;

/*
 * Creates the state directory dir (mode 0700) and everything in it: the
 * config, the database, the encrypted CA key and its passphrase file, the
 * root certificate (or ca.csr with opts->subordinate), the TLS server
 * certificate and the first administrator credential.  Refuses with
 * LB_ECONFLICT when dir already holds a CA.  Subordinate CAs get their TLS
 * certificate and admin credential from ca_install().
 */
int ca_init(const char *dir, const ca_init_opts *opts, lb_err *err);

/*
 * Installs the certificate (PEM, optionally followed by its chain) that a
 * parent CA signed for a subordinate initialised with ca.csr; checks that
 * it matches the CA key and is a CA certificate, then issues the TLS
 * certificate and the administrator credential.
 */
int ca_install(const char *dir, const char *cert_file, const char *pass_file,
    lb_err *err);

/* Flags for ca_open. */
#define CA_OPEN_NO_KEY 0x1 /* do not load the private key */

/*
 * Opens the CA in dir: reads lockbox.conf, the CA certificate chain, the
 * key (unless CA_OPEN_NO_KEY) and builds the profiles.  Thread-safe to use
 * from many threads once opened; each thread needs its own database handle.
 */
ca_ctx *ca_open(const char *dir, unsigned flags, lb_err *err);
/* Frees ca, stopping its signer process first (ca_signer_stop). */
void ca_free(ca_ctx *ca);

/*
 * Moves ca's private key into nproc (1 to CA_SIGNER_MAX) signer processes
 * of its own (signer.c) and frees it here: ca_sign_cert, ca_sign_crl_der
 * and ca_sign_receipt then ask an idle one, which checks each request
 * again against its profiles.
 * Call it before any thread is started, database opened or socket
 * created: the child is forked from this process and keeps nothing but
 * the key and its log.  With user (not NULL) and root privileges the
 * child also drops to that account.  The child runs with core dumps off
 * and no file or socket to open.  ca_sign_crl (an X509_CRL signed in
 * place) is then unavailable; use ca_sign_crl_der.
 */
#define CA_SIGNER_MAX 16
int ca_signer_start(ca_ctx *ca, const char *user, int nproc, lb_err *err);
/* Whether ca can sign: its key here, or signers none of which stopped. */
bool ca_signer_alive(ca_ctx *ca);
/* The signers' process ids, at most max into pids; returns how many. */
int ca_signer_pids(const ca_ctx *ca, pid_t *pids, int max);
/* Ends the signer processes and waits for them; nothing without any. */
void ca_signer_stop(ca_ctx *ca);

const char *ca_get0_dir(const ca_ctx *ca);
const core_conf *ca_get0_conf(const ca_ctx *ca);
X509 *ca_get0_cert(const ca_ctx *ca);
/* The chain above and including the CA certificate. */
STACK_OF(X509) *ca_get0_chain(const ca_ctx *ca);
/* A trust store of this CA for verifying client certificates. */
X509_STORE *ca_get0_store(const ca_ctx *ca);
/* Opens this CA's database on the calling thread. */
sqlite3 *ca_db_open(const ca_ctx *ca, lb_err *err);

/* ------------------------------------------------------------------ */
/* Profiles                                                            */

/* Looks a profile up by name; NULL when unknown. */
const ca_profile *ca_profile_get(const ca_ctx *ca, const char *name);
const char *ca_profile_name(const ca_profile *p);
/* Subscriber profiles (smime-*) follow the S/MIME BR and may be escrowed. */
bool ca_profile_is_subscriber(const ca_profile *p);
/* The encryption profile: only with escrow. */
bool ca_profile_needs_escrow(const ca_profile *p);
/* The key types a profile allows: bit (1 << enum ca_key_type) per type. */
unsigned ca_profile_key_types(const ca_profile *p);
/* Its validity in days, and whether it names individuals (givenName and
 * surname required). */
long ca_profile_days(const ca_profile *p);
bool ca_profile_individual(const ca_profile *p);
/* Writes the names of all profiles, comma-separated, into out. */
void ca_profile_names(const ca_ctx *ca, char *out, size_t outlen);

/* ------------------------------------------------------------------ */
/* Issuance                                                            */

/* What to issue: identity from the caller (never from the CSR). */
typedef struct ca_request {
	const char *profile;
	const char *email;       /* required for subscriber and operator certs */
	const char *given_name;  /* validation = individual */
	const char *surname;
	const char *common_name; /* operator / agent / tls-server: the name */
	const char *dns_name;    /* tls-server SAN (plus ip) */
	const char *ip;
	EVP_PKEY *pubkey;        /* the subject public key (borrowed) */
	/* Optional: pubkey as already encoded, e.g. the CSR's
	 * (X509_REQ_get_X509_PUBKEY), borrowed: sent to the signer process
	 * and put into the certificate as it is, which spares OpenSSL 3.0's
	 * costly encoder twice.  Must be pubkey's own encoding. */
	X509_PUBKEY *spki;
	int days;                /* 0: the profile's validity */
} ca_request;

/*
 * Appends a general name to gens: type GEN_EMAIL, GEN_DNS or GEN_URI with
 * value as an IA5String, GEN_IPADD with value an IPv4 or IPv6 address in
 * text.  0,
 * or -1 (nothing appended, nothing logged) when value is no address or
 * out of memory.
 */
int ca_general_names_add(GENERAL_NAMES *gens, int type, const char *value);

/*
 * Checks req against its profile (known profile, valid e-mail, names when
 * required, key type allowed) and builds and signs the certificate.
 * Nothing is stored.  Returns the certificate or NULL with err.
 */
X509 *ca_sign_cert(ca_ctx *ca, const ca_request *req, lb_err *err);

/*
 * Stores a certificate issued by ca_sign_cert in the database, inside the
 * caller's transaction, with an audit row naming actor.
 */
int ca_store_cert(sqlite3 *db, X509 *cert, const char *profile,
    const char *email, const char *actor, lb_err *err);

/*
 * ca_sign_cert + ca_store_cert in one committed transaction: the
 * certificate is durable when this returns it.  Refuses profiles that need
 * escrow (LB_EINVAL naming the archive path).
 */
X509 *ca_issue(ca_ctx *ca, sqlite3 *db, const ca_request *req,
    const char *actor, lb_err *err);

/*
 * As ca_issue, the certificate stored through the group committer c
 * (core_committer over a handle of this CA's database), so that
 * concurrent issuers share a commit; blocks until it is durable.
 */
X509 *ca_issue_grouped(ca_ctx *ca, core_committer *c, const ca_request *req,
    const char *actor, lb_err *err);

/*
 * Signs data (at most 4 KiB, e.g. an escrow receipt's text) with the CA key
 * as CMS SignedData, content attached, CA certificate included.  *out is
 * DER (OPENSSL_free).
 */
int ca_sign_receipt(ca_ctx *ca, const unsigned char *data, size_t len,
    unsigned char **out, size_t *out_len, lb_err *err);

/*
 * Signs a CRL that crl/ built with the CA key: sets the issuer to the CA's
 * subject and signs with the CA's digest, after checking that it is
 * version 2 and has a nextUpdate after its thisUpdate (LB_EINVAL
 * otherwise).  The only use of the CA key for CRLs.
 */
int ca_sign_crl(ca_ctx *ca, X509_CRL *crl, lb_err *err);

/*
 * As ca_sign_crl for a large CRL: head is the CRL without entries (its
 * extensions set), revoked the DER of its revokedCertificates (SEQUENCE
 * OF, sorted and encoded by the caller; rlen 0: none).  Signs head as
 * ca_sign_crl does (and so checks it), then signs the TBSCertList with
 * revoked spliced in.  *out is the whole CRL's DER (free()), built in one
 * buffer without an OpenSSL object per entry.
 */
int ca_sign_crl_der(ca_ctx *ca, X509_CRL *head, const unsigned char *revoked,
    size_t rlen, unsigned char **out, size_t *out_len, lb_err *err);

/* ------------------------------------------------------------------ */
/* Certificate store                                                   */

/* Revocation reasons accepted by name (RFC 5280 CRLReason). */
int ca_reason_parse(const char *name); /* -1 when unknown */
const char *ca_reason_name(int reason);

/* A stored certificate's record; strings are owned by the record. */
typedef struct ca_cert_info {
	char *serial;   /* uppercase hex */
	char *profile;
	char *email;
	char *subject;
	time_t not_before, not_after, issued, revoked;
	char *status;   /* valid, revoked, expired (computed), superseded */
	int reason;     /* -1 when not revoked */
	unsigned char *der;
	size_t der_len;
} ca_cert_info;

void ca_cert_info_clear(ca_cert_info *ci);

/*
 * A stored certificate as JSON, the one form the CLI and the API share:
 * serial, profile, email, subject, status, not_before, not_after,
 * issued (ISO 8601 UTC), revoked and reason when revoked, and with
 * with_pem the certificate as "pem".  issued_at and revoked_at, the
 * names before, stand beside issued and revoked.  New reference, NULL on failure.
 */
/*
 * An audit row as JSON: id, created (ts, its old name, beside it), actor,
 * action (recorded_action too when the row predates that name), object,
 * detail, prev_hash, hash.  NULL when out of memory.
 */
json_t *ca_audit_row_json(const core_audit_row *r);
json_t *ca_cert_info_json(const ca_cert_info *ci, bool with_pem);
/* json_string that never fails on bad UTF-8 (non-ASCII bytes become '?');
 * JSON null for NULL. */
json_t *ca_json_str(const char *s);
/* An ISO 8601 UTC time string. */
json_t *ca_json_time(time_t t);
/* The same, or JSON null for 0 (a time that has not happened yet). */
json_t *ca_json_time_or_null(time_t t);
/* Sets o[key] = v (v consumed, even on failure); -1 when v is NULL or the
 * set fails, so callers can OR the results of several sets. */
int ca_json_put(json_t *o, const char *key, json_t *v);
/* The end of building o with such sets: o, or NULL (o released) when bad
 * says one failed. */
json_t *ca_json_done(json_t *o, bool bad);
/* buf as a standard base64 JSON string; NULL on failure. */
json_t *ca_json_b64(const unsigned char *buf, size_t len);
/* A DER certificate as a PEM JSON string; NULL on failure or NULL der. */
json_t *ca_json_pem(const unsigned char *der, size_t len);
/* The certificates of chain as one PEM JSON string; NULL on failure. */
json_t *ca_json_chain(STACK_OF(X509) *chain);
/*
 * A JSON object from buf, refusing what is empty (naming example),
 * malformed, not an object, holds a duplicate key or a key not in known
 * (NULL-terminated): new reference, or NULL with err (LB_EINVAL).
 */
json_t *ca_json_load_object(const void *buf, size_t len,
    const char *const *known, const char *example, lb_err *err);
/*
 * The string member name of o in *out (borrowed): required unless
 * optional (absent or null: *out NULL), at most max bytes, no NUL.
 * 0, or -1 with err (LB_EINVAL naming the field).
 */
int ca_json_get_string(const json_t *o, const char *name, bool optional,
    size_t max, const char **out, lb_err *err);
/*
 * A malloc'ed copy of the string member key of o: NULL when absent, no
 * string, over max bytes or holding a NUL, and NULL with *oom set when
 * the copy failed (for readers that gather many fields, then check once).
 */
char *ca_json_dup(const json_t *o, const char *key, size_t max,
    bool *oom);

/*
 * A certificate's status, as every listing shows it and every filter takes
 * it: valid, revoked, superseded (renewed: the newer one replaces it), or
 * expired (valid until its notAfter passed).
 */
#define CA_CERT_STATUSES "valid, revoked, superseded or expired"
bool ca_cert_status_known(const char *status);

/* Filter for ca_cert_list; NULL fields do not filter. */
typedef struct ca_cert_filter {
	const char *email;
	const char *profile;
	const char *status; /* one of CA_CERT_STATUSES */
	int limit;          /* 0 = no limit */
} ca_cert_filter;

/* Normalises a serial given by a user (hex, optional colons, any case)
 * into out (uppercase, no leading zero pairs); -1 when malformed. */
int ca_serial_normalise(const char *in, char *out, size_t outlen);
/* The same for a serial given as an argument: -1 with err (LB_EINVAL). */
int ca_serial_arg(const char *in, char *out, size_t outlen, lb_err *err);

/* Calls fn for each matching certificate, newest first. */
int ca_cert_list(sqlite3 *db, const ca_cert_filter *f,
    int (*fn)(const ca_cert_info *ci, void *arg), void *arg, lb_err *err);
/* Reads one certificate by serial; LB_ENOTFOUND when absent. */
int ca_cert_get(sqlite3 *db, const char *serial, ca_cert_info *out,
    lb_err *err);

/*
 * The revocation state of the stored certificate with this serial (as
 * ca_cert_get takes it), without reading its DER: for OCSP.  *revoked is
 * true for status 'revoked', with *revoked_at, *reason (-1 when none
 * recorded) and *invalidity (0 when none).  LB_ENOTFOUND when never issued.
 */
int ca_cert_status(sqlite3 *db, const char *serial, bool *revoked,
    time_t *revoked_at, int *reason, time_t *invalidity, lb_err *err);

/*
 * Revokes a stored certificate with reason (and, for keyCompromise, an
 * optional invalidity date, 0 for none), appending an audit row, in one
 * committed transaction.  LB_ECONFLICT when already revoked.
 */
/*
 * Inside the caller's transaction: the valid certificate old is
 * superseded by the certificate by (nothing when old is no longer
 * valid); ..._others: every other valid certificate of email and profile
 * is.  A superseded certificate is not revoked: it stays good to OCSP
 * and off the CRL, but no longer authenticates its holder.
 */
int ca_cert_supersede(sqlite3 *db, const char *old, const char *by,
    lb_err *err);
int ca_cert_supersede_others(sqlite3 *db, const char *email,
    const char *profile, const char *by, lb_err *err);

int ca_revoke(sqlite3 *db, const char *serial, int reason,
    time_t invalidity, const char *actor, lb_err *err);
/*
 * A check that a credential may go out of service, called inside the
 * revoking (or removing) transaction after the change, with the roles
 * its holder had before it and the revocation reason: -1 with err rolls
 * the change back.  archive_agent_leave is the one lockbox uses.
 */
typedef int (*ca_leave_guard)(sqlite3 *db, const char *serial,
    unsigned roles_before, int reason, void *arg, lb_err *err);
/* ca_revoke and ca_operator_remove with a guard (NULL: none). */
int ca_revoke_guarded(sqlite3 *db, const char *serial, int reason,
    time_t invalidity, const char *actor, ca_leave_guard guard, void *arg,
    lb_err *err);

/*
 * Calls fn for every revoked certificate whose not_after is at or after
 * now (expired ones drop off CRLs), in no particular order: serial
 * (uppercase hex, borrowed for the call), revocation time, reason code
 * (-1 when none) and invalidity date (0 when none).  Rows are streamed, not
 * collected.  fn returning non-zero stops the walk with -1 (LB_EINTERNAL).
 */
int ca_revoked_foreach(sqlite3 *db, time_t now,
    int (*fn)(const char *serial, time_t revoked_at, int reason,
    time_t invalidity, void *arg), void *arg, lb_err *err);

/*
 * The revocation generation: a counter every revocation bumps in its own
 * transaction (0 before the first).  One indexed read, so a daemon can
 * poll it to notice revocations made by another process.
 */
int ca_revocation_generation(sqlite3 *db, int64_t *gen, lb_err *err);

/* ------------------------------------------------------------------ */
/* Operators and roles                                                 */

enum ca_role {
	CA_ROLE_NONE = 0,
	CA_ROLE_ADMIN = 1 << 0,
	CA_ROLE_OFFICER = 1 << 1,
	CA_ROLE_RECOVERY_OFFICER = 1 << 2,
	CA_ROLE_RECOVERY_AGENT = 1 << 3,
	CA_ROLE_AUDITOR = 1 << 4,
};

enum ca_role ca_role_parse(const char *name);
const char *ca_role_name(enum ca_role r);

/* An operator as stored. */
typedef struct ca_operator {
	int64_t id;
	char *name, *email, *role, *serial, *status;
	time_t created, not_after;
	bool usable;            /* active, its credential valid right now */
	unsigned char *der;     /* the credential */
	size_t der_len;
} ca_operator;

void ca_operator_clear(ca_operator *op);

/*
 * Issues an operator credential for pubkey with the operator profile and
 * records the role, in one transaction.  Refuses (LB_ECONFLICT) when role
 * separation is on and the e-mail already holds a role of the other kind.
 * Returns the certificate.
 */
X509 *ca_operator_add(ca_ctx *ca, sqlite3 *db, enum ca_role role,
    const char *name, const char *email, EVP_PKEY *pubkey,
    const char *actor, lb_err *err);
/* Calls fn for every operator (active and removed). */
int ca_operator_list(sqlite3 *db, int (*fn)(const ca_operator *op, void *arg),
    void *arg, lb_err *err);
/* As ca_operator_list for the operators holding role only (NULL: all),
 * by serial. */
int ca_operator_list_role(sqlite3 *db, const char *role,
    int (*fn)(const ca_operator *op, void *arg), void *arg, lb_err *err);
/* Removes an operator (by id, or by certificate serial) and revokes the
 * credential with privilegeWithdrawn. */
int ca_operator_remove(sqlite3 *db, const char *id_or_serial,
    const char *actor, lb_err *err);
int ca_operator_remove_guarded(sqlite3 *db, const char *id_or_serial,
    const char *actor, ca_leave_guard guard, void *arg, lb_err *err);
/*
 * The roles held by the active operator whose credential has this serial;
 * CA_ROLE_NONE when unknown, removed, revoked or expired.  *email (optional)
 * gets a malloc'ed copy of the operator's e-mail.
 */
unsigned ca_operator_roles(sqlite3 *db, const char *serial, char **email,
    lb_err *err);

#endif /* LOCKBOX_CA_H */
