/*
 * archive.h - key escrow and M-of-N recovery.
 *
 * An encryption certificate is issued only together with its escrow record,
 * in one SQLite transaction (archive_issue_enc).  The record is the PKCS#8
 * DER of the private key encrypted with AES-256-GCM under a fresh 32-byte
 * data key, with an AAD binding issuer, serial, SPKI hash and owner e-mail
 * (archive_record_aad).  The data key is split with Shamir's scheme
 * (libgfshare, randomness from RAND_bytes) into one share per active
 * recovery agent, threshold M; each share is CMS EnvelopedData to that
 * agent's certificate (RSA-OAEP SHA-256, AES-256-CBC).  The CA signs a
 * receipt over the serial and the record's SHA-256.  The server never again
 * holds anything that decrypts the key.
 *
 * Share plaintext: ARCHIVE_SHARE_BOUND_LEN bytes: x coordinate, the 32 bytes
 * of the share, the SHA-256 of the record's AAD and the policy's hash, so
 * that an agent's client knows which record and policy a share it
 * decrypts belongs to (records escrowed before schema 8 carry
 * ARCHIVE_SHARE_LEN bytes, the share alone).  Formerly: x coordinate then
 * the 32 bytes
 * of the share.  Recovery: each approving agent decrypts its share locally
 * and re-encrypts it to the request's one-time certificate
 * (archive_share_rewrap); the officer's client decrypts M of them, combines
 * and opens the record (archive_record_open).
 *
 * archive calls ca and core.
 */
#ifndef LOCKBOX_ARCHIVE_H
#define LOCKBOX_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/ca.h"
#include "core/core.h"

#define ARCHIVE_DATA_KEY_LEN 32
#define ARCHIVE_SHARE_LEN    (1 + ARCHIVE_DATA_KEY_LEN)
/* A bound share: the share, then the SHA-256 of its record's AAD and the
 * hash of the policy it was escrowed under (raw, 32 bytes each). */
#define ARCHIVE_SHARE_BOUND_LEN (ARCHIVE_SHARE_LEN + 64)
#define ARCHIVE_IV_LEN       12
#define ARCHIVE_TAG_LEN      16
#define ARCHIVE_MAX_AGENTS   255

/* ------------------------------------------------------------------ */
/* The escrow policy: a document its members sign (policy.c)           */

/*
 * The policy names the threshold M, the recovery agents and the recovery
 * officers by key (SPKI SHA-256, with e-mail and name) and the hash of
 * the policy before it; 2 <= M, M + 1 <= N agents; no key and no e-mail
 * (compared case-insensitively) twice.  Its one text form:
 *
 *   lockbox escrow policy v1
 *   version: N
 *   previous: HASH | none
 *   threshold: M
 *   created: ISO-8601
 *   agent: SPKI EMAIL NAME        (one line each, agents first)
 *   officer: SPKI EMAIL NAME
 *
 * Its hash (SHA-256 of that text, lower hex) is its name.  A member signs
 * it with a detached CMS SignedData; the signature counts for the key in
 * its signer certificate, which need not chain anywhere.
 */
#define ARCHIVE_POLICY_MAX     ((size_t)256 * 1024)
#define ARCHIVE_POLICY_SIG_MAX ((size_t)16 * 1024)
#define ARCHIVE_API_POLICIES   "/api/v1/escrow/policies"

enum archive_member_role { ARCHIVE_MEMBER_AGENT, ARCHIVE_MEMBER_OFFICER };

typedef struct archive_policy_member {
	enum archive_member_role role;
	char spki[65];
	char *email, *name;
} archive_policy_member;

typedef struct archive_policy {
	int version;
	char previous[65];          /* "" for the first policy */
	int threshold;
	char created[32];
	archive_policy_member *members;
	size_t nmembers;
	char *doc;                  /* archive_policy_render's text */
	size_t doc_len;
	char hash[65];
} archive_policy;

void archive_policy_clear(archive_policy *p);
/* Checks the fields and renders p->doc and p->hash from them. */
int archive_policy_render(archive_policy *p, lb_err *err);
/* Parses a document, which must be in its one text form (LB_EINVAL). */
int archive_policy_parse(const char *doc, size_t len, archive_policy *p,
    lb_err *err);
size_t archive_policy_count(const archive_policy *p,
    enum archive_member_role role);
/* The member holding the key spki, or NULL. */
const archive_policy_member *archive_policy_member_find(
    const archive_policy *p, const char *spki);
/*
 * A detached CMS SignedData over data with the credential key and cert
 * (DER, OPENSSL_free), and its check: one signer, whose key's SHA-256
 * goes to spki; the certificate need not chain anywhere (the caller
 * decides whether that key counts).
 */
int archive_signed_make(const void *data, size_t len, EVP_PKEY *key,
    X509 *cert, unsigned char **out, size_t *out_len, lb_err *err);
int archive_signed_check(const void *data, size_t len,
    const unsigned char *sig, size_t sig_len, char spki[65], lb_err *err);
/* A member's signature over p (CMS DER, OPENSSL_free). */
int archive_policy_sign(const archive_policy *p, EVP_PKEY *key, X509 *cert,
    unsigned char **out, size_t *out_len, lb_err *err);
/* Verifies a signature over p; spki gets the signing key's hash. */
int archive_policy_sig_check(const archive_policy *p,
    const unsigned char *sig, size_t len, char spki[65], lb_err *err);
/*
 * The rule: whether the keys signers (SPKI hashes of verified signatures
 * over p) put p in force after prev (NULL for the first policy: every
 * member must have signed).  A later policy needs prev's threshold of
 * prev's agents and every member p adds or moves to another role.
 * LB_ECONFLICT naming what is missing.
 */
int archive_policy_accepted(const archive_policy *prev,
    const archive_policy *p, const char (*signers)[65], size_t n,
    lb_err *err);

/* One signature as stored and sent. */
typedef struct archive_policy_sig {
	char spki[65];
	char *email;
	unsigned char *cms;
	size_t len;
} archive_policy_sig;

/* A policy with its status (proposed in_force superseded) and signatures. */
typedef struct archive_chain_link {
	archive_policy p;
	char status[16];
	archive_policy_sig *sigs;
	size_t nsigs;
} archive_chain_link;

/* Every policy not withdrawn, by version: what members' clients verify. */
typedef struct archive_chain {
	archive_chain_link *links;
	size_t n;
} archive_chain;

/* The SPKI hashes of l's signatures that verify over its document
 * (calloc'ed, *n of them; the rest left out): archive_policy_accepted's
 * signers.  -1 only when out of memory. */
int archive_chain_link_signers(const archive_chain_link *l,
    char (**keys)[65], size_t *n, lb_err *err);
void archive_chain_link_clear(archive_chain_link *l);
void archive_chain_clear(archive_chain *c);
/* GET ARCHIVE_API_POLICIES: {"policies": [{hash, version, status,
 * document, signatures: [{spki, email, cms}]}]}; NULL when out of memory. */
json_t *archive_chain_json(const archive_chain *c);
/* Its client half: each document parsed and its hash recomputed. */
int archive_chain_parse(const char *body, size_t len, archive_chain *c,
    lb_err *err);

/* ------------------------------------------------------------------ */
/* The policy on the server (policy_db.c, owner of escrow_policies)    */

/* The policy in force (*found false when none). */
int archive_policy_in_force(sqlite3 *db, archive_policy *p, bool *found,
    lb_err *err);
/* Only the hash of the policy in force (hash "", *found false: none). */
int archive_policy_hash_in_force(sqlite3 *db, char hash[65], bool *found,
    lb_err *err);
/* Every policy not withdrawn, with its signatures. */
int archive_chain_load(sqlite3 *db, archive_chain *c, lb_err *err);
/*
 * A proposal: threshold M, the agents and officers by e-mail (NULL: every
 * active agent, every usable recovery officer), following the policy in
 * force.  Refused (LB_ECONFLICT) while another proposal is pending: one
 * policy has one successor.  Audit "escrow.policy_propose".
 */
int archive_policy_propose(sqlite3 *db, int threshold,
    const char *const *agents, size_t nagents, const char *const *officers,
    size_t nofficers, const char *actor, archive_policy *out, lb_err *err);
/* Withdraws the pending proposal hash (audit "escrow.policy_withdraw"). */
int archive_policy_withdraw(sqlite3 *db, const char *hash, const char *actor,
    lb_err *err);
/*
 * Adds a signature over proposal hash.  The signer must be a member of it
 * or an agent of the policy in force, and (caller_spki, when not NULL)
 * the caller's own key.  Once the rule holds the proposal comes into
 * force and its predecessor is superseded (*in_force true).  Audit
 * "escrow.policy_sign" (and "escrow.policy_in_force").
 */
int archive_policy_signature_add(sqlite3 *db, const char *hash,
    const unsigned char *sig, size_t len, const char *caller_spki,
    const char *actor, bool *in_force, lb_err *err);

/*
 * POST ARCHIVE_API_POLICIES/HASH/signatures, {"cms": BASE64}, strictly
 * parsed: archive_policy_signature_add, then *reply {"hash", "in_force"}.
 */
int archive_policy_sign_body(sqlite3 *db, const char *hash, const void *body,
    size_t len, const char *caller_spki, const char *actor, json_t **reply,
    lb_err *err);

/*
 * An archive_transport's api over the CA's database itself (h: an
 * archive_policy_local), for a member signing on the CA's host (`escrow
 * policy sign --dir`): the two calls of the policy's members, answered as
 * the daemon would, the signature checked by the signing key alone and
 * audited with actor.
 */
typedef struct archive_policy_local {
	sqlite3 *db;
	const char *actor;
} archive_policy_local;
int archive_policy_local_api(void *h, const char *method, const char *path,
    json_t *body, core_http_reply *r, lb_err *err);

/* The threshold of the policy in force (0 when none). */
int archive_threshold_get(sqlite3 *db, int *threshold, lb_err *err);

/* A recovery agent: an operator with role recovery-agent. */
typedef struct archive_agent {
	char *serial;  /* the agent's credential */
	char *name, *email;
	time_t not_after;
	bool active;   /* operator active, certificate valid and unexpired */
	X509 *cert;
	char spki[65]; /* its key's SHA-256, as escrow policies name it */
} archive_agent;

/*
 * Every recovery agent ever registered (active_only: only those that can
 * receive new shares), ordered by credential serial.  Caller frees with
 * archive_agents_free.
 */
int archive_agents_list(sqlite3 *db, bool active_only, archive_agent **out,
    size_t *n, lb_err *err);
void archive_agents_free(archive_agent *a, size_t n);

/* ------------------------------------------------------------------ */
/* Archival                                                            */

/*
 * True when key is the private half of cert's public key: the public keys
 * are derived and compared, then a trial RSA-OAEP encrypt/decrypt (RSA),
 * or the private scalar times the generator giving the public point (EC:
 * what every key agreement with the key rests on), proves it works.
 */
int archive_key_matches(X509 *cert, EVP_PKEY *key, lb_err *err);

/*
 * Issues an encryption certificate (profile smime-enc, identity from req;
 * req->pubkey is ignored) for key and escrows key, in one committed
 * transaction.  Refuses with a clear message when fewer active agents than
 * the threshold exist.  *receipt gets the CA-signed escrow receipt (CMS
 * SignedData DER, OPENSSL_free).  Returns the certificate.
 */
X509 *archive_issue_enc(ca_ctx *ca, sqlite3 *db, const ca_request *req,
    EVP_PKEY *key, const char *actor, unsigned char **receipt,
    size_t *receipt_len, lb_err *err);

/*
 * Escrows key for cert (already stored in certificates) inside the caller's
 * transaction: checks, encrypts, splits, wraps, proves that M shares
 * recombine, stores record and shares, signs the receipt, audits.
 */
int archive_escrow_put(ca_ctx *ca, sqlite3 *db, X509 *cert, EVP_PKEY *key,
    const char *email, const char *actor, unsigned char **receipt,
    size_t *receipt_len, lb_err *err);

/*
 * archive_escrow_put in two steps, so that the cryptography (the key
 * check, encryption, split, share wrapping and the receipt) runs outside
 * the transaction and only the inserts inside it.  seal reads the active
 * agents and the threshold; store (inside the caller's transaction)
 * refuses with LB_ECONFLICT when they changed meanwhile, then stores the
 * record, its shares and the audit row.  The sealed record holds no
 * plaintext.
 */
typedef struct archive_sealed archive_sealed;
archive_sealed *archive_escrow_seal(ca_ctx *ca, sqlite3 *db, X509 *cert,
    EVP_PKEY *key, const char *email, lb_err *err);
int archive_escrow_store(sqlite3 *db, const archive_sealed *s,
    const char *actor, lb_err *err);
void archive_sealed_free(archive_sealed *s);
/*
 * The records escrowed before any signed policy (a state directory made
 * by an older lockbox): their agents were never shown to hold their own
 * keys (an older 'agent add --keygen' left the key with the
 * administrator), so they count as exposed until re-escrowed.  *serials
 * malloc'ed (each too).
 */
int archive_escrow_before_policy(sqlite3 *db, char ***serials, size_t *n,
    lb_err *err);

/* ------------------------------------------------------------------ */
/* The record format (shared by the server and the recovering client)  */

/*
 * The AAD of a record: "lockbox-escrow-v1" then four fields, each a 4-byte
 * big-endian length and its bytes: the issuer name DER, the serial (upper
 * hex), the SPKI SHA-256 (lower hex), the owner e-mail.  malloc'ed.
 */
int archive_record_aad(X509 *cert, const char *email, unsigned char **aad,
    size_t *aad_len, lb_err *err);
/*
 * The record hash the receipt signs, lower hex: SHA-256 over the AAD, iv,
 * tag, ciphertext (each length-prefixed as above) and the threshold as a
 * 4-byte big-endian number.
 */
int archive_record_hash(const unsigned char *aad, size_t aad_len,
    const unsigned char *iv, const unsigned char *tag,
    const unsigned char *ct, size_t ct_len, int threshold, char out[65]);

/* CMS EnvelopedData of data to cert (RSA-OAEP SHA-256 key transport,
 * AES-256-CBC), DER, OPENSSL_free'd by the caller. */
int archive_cms_encrypt(X509 *to, const unsigned char *data, size_t len,
    unsigned char **out, size_t *out_len, lb_err *err);
/* Decrypts CMS EnvelopedData with key/cert into a buffer of at most max
 * bytes (OPENSSL_clear_free by the caller). */
int archive_cms_decrypt(EVP_PKEY *key, X509 *cert, const unsigned char *cms,
    size_t len, size_t max, unsigned char **out, size_t *out_len,
    lb_err *err);

/* ------------------------------------------------------------------ */
/* Recovery, client side                                               */

/*
 * Agent side: decrypts one escrow share (CMS to the agent) with the
 * agent's key and re-encrypts it to the request's one-time certificate.
 * The plaintext share is cleansed before returning.
 */
int archive_share_rewrap(EVP_PKEY *agent_key, X509 *agent_cert,
    const unsigned char *cms, size_t len, X509 *request_cert,
    unsigned char **out, size_t *out_len, lb_err *err);
/* What a decrypted share says of itself. */
typedef struct archive_share_binding {
	bool bound;                     /* false: a share made before schema 8 */
	unsigned char aad_sha256[32];   /* its record's AAD's SHA-256 */
	char policy[65];                /* the policy it was escrowed under */
} archive_share_binding;
/* archive_share_rewrap, also saying what the share is bound to (b). */
int archive_share_rewrap_bound(EVP_PKEY *agent_key, X509 *agent_cert,
    const unsigned char *cms, size_t len, X509 *request_cert,
    archive_share_binding *b, unsigned char **out, size_t *out_len,
    lb_err *err);

/*
 * Officer side: decrypts the shares (CMS to the one-time certificate),
 * combines threshold of them, decrypts the record and checks the key
 * against cert.  A record whose ciphertext, tag, iv or binding was altered
 * fails with LB_EINVAL naming its serial, never yielding garbage.
 */
EVP_PKEY *archive_record_open(X509 *cert, const char *email,
    const unsigned char *iv, const unsigned char *tag,
    const unsigned char *ct, size_t ct_len, int threshold,
    EVP_PKEY *onetime_key, X509 *onetime_cert,
    const unsigned char *const *share_cms, const size_t *share_len,
    size_t nshares, lb_err *err);

/* ------------------------------------------------------------------ */
/* Recovery, server side (archive/recovery.c)                          */

/*
 * A recovery request moves pending -> approved -> fetched, or to denied
 * or expired, which release nothing.  The rules are enforced here, not in
 * the HTTP layer: the requester (a recovery officer) is not the key's
 * owner; an approving agent is neither the requester nor the owner,
 * approves once (per person: per e-mail), and counts only for records
 * whose share set holds its credential; a request past its expiry is
 * marked expired (audit "recovery.expire") whenever it is touched.  Every
 * change and every refusal is an audit row with actor "api:" + the
 * caller's e-mail; a refusal's row is committed in its own transaction.
 *
 * Functions returning int give 0, or -1 with err set: LB_EINVAL (bad
 * input, 400), LB_EFORBIDDEN (403), LB_ENOTFOUND (404), LB_ECONFLICT (409;
 * with *expired set when the request has expired: 410).
 */

#define ARCHIVE_REQUEST_ID_LEN 32           /* lowercase hex digits */
#define ARCHIVE_REQUEST_TTL_DEFAULT (7L * 86400)
#define ARCHIVE_REASON_MAX     1000         /* bytes */

/* The operator making a call, as the web layer authenticated it. */
typedef struct archive_caller {
	const char *serial;   /* credential serial */
	const char *email;
	unsigned roles;       /* enum ca_role bits */
} archive_caller;

/* One escrow record a request covers. */
typedef struct archive_recovery_record {
	int64_t record_id;
	char *serial;         /* the encryption certificate */
	int threshold;
	int approvals;        /* approving agents in this record's share set */
	int other_open;       /* other open requests covering this record */
	/* archive_recovery_get for an agent: the agent's own escrow share */
	unsigned char *share;
	size_t share_len;
	/* archive_recovery_package: everything the officer's client needs */
	char *email;
	char *key_alg, *share_alg, *share_wrap;
	unsigned char *cert;  /* DER */
	size_t cert_len;
	unsigned char iv[ARCHIVE_IV_LEN], tag[ARCHIVE_TAG_LEN];
	unsigned char *ciphertext;
	size_t ciphertext_len;
	unsigned char **shares; /* rewrapped shares (CMS DER) */
	size_t *share_lens;
	size_t nshares;
} archive_recovery_record;

/* A recovery request as stored. */
typedef struct archive_recovery {
	char id[ARCHIVE_REQUEST_ID_LEN + 1];
	char *requester_serial, *requester_email;
	char *email;          /* whose keys */
	char *serial;         /* one key, or NULL for every key of email */
	char *reason;
	char *status;  /* pending approved denied expired fetched collected */
	time_t created, expires;
	char *denied_by, *deny_reason;
	unsigned char *request_cert;    /* the one-time certificate, DER */
	size_t request_cert_len;
	unsigned char *requester_cert;  /* the requester's credential, DER */
	size_t requester_cert_len;
	char *statement;      /* the officer's signed statement, or NULL */
	unsigned char *statement_cms;
	size_t statement_cms_len;
	int approvals;        /* approving agents */
	int threshold;        /* the highest threshold among the records */
	archive_recovery_record *records;
	size_t nrecords;
} archive_recovery;

/*
 * The request statement its officer signs (statement.c): request id, the
 * key owner, the one-time key's SPKI SHA-256, the expiry, and each
 * record's serial and key (SPKI SHA-256), in one text form (text).
 */
typedef struct archive_statement_record {
	char serial[80];
	char spki[65];
} archive_statement_record;
typedef struct archive_statement {
	char id[ARCHIVE_REQUEST_ID_LEN + 1];
	char *owner;
	char *reason;               /* the officer's, as the agents see it */
	char onetime[65];
	char expires[32];
	archive_statement_record *records;
	size_t nrecords;
	char *text;
	size_t text_len;
} archive_statement;
void archive_statement_clear(archive_statement *s);
int archive_statement_render(archive_statement *s, lb_err *err);
/* Parses a statement, which must be in its one text form (LB_EINVAL). */
int archive_statement_parse(const char *text, size_t len,
    archive_statement *s, lb_err *err);
const archive_statement_record *archive_statement_find(
    const archive_statement *s, const char *serial);
/* The officer's statement of request id for owner, with the officer's
 * reason: its one-time certificate, expiry, and the records' n
 * certificates. */
int archive_statement_of(const char *id, const char *owner,
    const char *reason, X509 *onetime, const char *expires,
    X509 *const *certs, size_t n, archive_statement *s, lb_err *err);
/*
 * POST .../{id}/statement {"statement", "cms"}: the requester hands in the
 * request's statement, once, while it is pending; it must say what the
 * stored request is (id, owner, reason, one-time key, every record with
 * its key)
 * and be signed with the requester's credential key.  Audit
 * "recovery.statement" (refusals "recovery.statement_refused").
 */
int archive_recovery_statement(sqlite3 *db, const archive_caller *who,
    const char *id, const void *body, size_t len, lb_err *err);

/*
 * An agent going (coverage.c): the ca_leave_guard for ca_revoke_guarded
 * and ca_operator_remove_guarded.  When the credential was an active
 * recovery agent's, a record it held a share of must stay recoverable by
 * the active agents left: otherwise LB_ECONFLICT, unless the reason is
 * keyCompromise, which always goes through and leaves arg's text (an
 * archive_leave_warning, may be NULL) naming the records to reshare
 * (empty when none).
 */
typedef struct archive_leave_warning {
	char text[512];
} archive_leave_warning;
int archive_agent_leave(sqlite3 *db, const char *serial,
    unsigned roles_before, int reason, void *arg, lb_err *err);

/*
 * lockbox escrow status: the escrow records by the policy they were made
 * under (hash "" for those made before any policy), how many of them the
 * active agents can recover (their threshold of shares held by active
 * agents), and the first ARCHIVE_STATUS_LOST_MAX serials of the rest.
 */
#define ARCHIVE_STATUS_LOST_MAX 20
typedef struct archive_status_policy {
	char hash[65];
	long records, recoverable;
	char lost[ARCHIVE_STATUS_LOST_MAX][80];
	size_t nlost;
} archive_status_policy;
typedef struct archive_status {
	archive_status_policy *policies;  /* in order of first record */
	size_t npolicies;
} archive_status;
int archive_escrow_status(sqlite3 *db, archive_status *out, lb_err *err);
void archive_status_clear(archive_status *st);

/* Frees what an archive_recovery holds (shares cleansed) and zeroes it. */
void archive_recovery_clear(archive_recovery *rq);
/* archive_recovery_clear on each of n, then free(a). */
void archive_recovery_list_free(archive_recovery *a, size_t n);

/*
 * Opens a recovery request (caller: recovery-officer) for every escrow
 * record of email, or for the one record of serial (which must belong to
 * email).  request_cert (PEM or DER) is the one-time certificate made by
 * the officer's client: an RSA key of at least 3072 bits, signed by the
 * caller's own credential key, so that agents can check that the key they
 * re-encrypt their shares to is the requester's.  The request expires after [escrow]
 * request_ttl (default 7d) of ca's lockbox.conf.  Fills out (without
 * shares) on success.
 */
int archive_recovery_open(ca_ctx *ca, sqlite3 *db, const archive_caller *who,
    const char *email, const char *serial, const char *reason,
    const unsigned char *request_cert, size_t request_cert_len,
    archive_recovery *out, lb_err *err);

/*
 * Lists requests newest first, at most limit (0: all).  With
 * awaiting_agent, only pending unexpired requests for which the caller (a
 * recovery agent) holds a share of a covered record and has neither
 * approved nor denied.  Expires due requests first.
 */
int archive_recovery_list(sqlite3 *db, const archive_caller *who,
    bool awaiting_agent, int limit, archive_recovery **out, size_t *n,
    lb_err *err);

/*
 * Reads request id (recovery agents and officers).  For an agent and a
 * pending request, each record carries the agent's own escrow share
 * (share/share_len; NULL where it holds none).
 */
int archive_recovery_get(sqlite3 *db, const archive_caller *who,
    const char *id, archive_recovery *out, bool *expired, lb_err *err);

/* One rewrapped share an agent hands in. */
typedef struct archive_share_in {
	int64_t record_id;
	const unsigned char *cms; /* EnvelopedData to the request's certificate */
	size_t cms_len;
} archive_share_in;

/*
 * An agent approves request id, handing in exactly one share per covered
 * record it holds a share of, each re-encrypted to the request's
 * certificate.  Marks the request approved once every covered record has
 * at least its threshold of approvals from its share set.
 */
int archive_recovery_approve(sqlite3 *db, const archive_caller *who,
    const char *id, const archive_share_in *shares, size_t nshares,
    bool *expired, lb_err *err);

/*
 * Denies request id (pending or approved): by an agent holding a share
 * of a covered record, or by the requester withdrawing it.  Nothing is
 * released afterwards.
 */
int archive_recovery_deny(sqlite3 *db, const archive_caller *who,
    const char *id, const char *reason, bool *expired, lb_err *err);

/*
 * The recovery package for the requester of an approved (or already
 * fetched) unexpired request: every record with its certificate,
 * ciphertext and the rewrapped shares.  Marks the request fetched; the
 * requester may fetch again until the request is collected or expires
 * (then *expired: gone, 410).
 */
int archive_recovery_package(sqlite3 *db, const archive_caller *who,
    const char *id, archive_recovery *out, bool *expired, lb_err *err);

/*
 * The requester's client has the keys and has deleted its one-time key:
 * the request's rewrapped shares are deleted and it is collected (a
 * fetched or approved request; *expired when it is gone already).  The
 * database's WAL is truncated afterwards, so the shares' bytes do not
 * outlive the rows (secure_delete overwrites the pages).
 */
int archive_recovery_collect(sqlite3 *db, const archive_caller *who,
    const char *id, bool *expired, lb_err *err);

/*
 * Leaves the audit row "action" (e.g. "recovery.approve_refused") with
 * why's message for an attempt refused before it reached the rules above
 * (a malformed body), in its own transaction.  Internal errors leave none.
 */
void archive_recovery_refused(sqlite3 *db, const archive_caller *who,
    const char *action, const char *object, const lb_err *why);

/* True for 32 lowercase hex digits. */
bool archive_request_id_valid(const char *id);

/* ------------------------------------------------------------------ */
/* The workflow's messages, both ends (wire.c)                         */

/* The largest request view or package a client reads. */
#define ARCHIVE_MESSAGE_MAX ((size_t)32 * 1024 * 1024)

/*
 * The JSON form of a request (GET /api/v1/recovery/requests/{id}): id,
 * status, who asks and for whom, why, times, approvals, the records with
 * their own counts, the caller's shares when the records carry them, and
 * with with_certs the one-time certificate and the requester's credential
 * (PEM).  NULL when out of memory.
 */
json_t *archive_request_json(const archive_recovery *rq, bool with_certs);

/*
 * Opening a request (POST /api/v1/recovery/requests): whose keys (email,
 * or the one serial), why, and the one-time certificate (PEM).  The body
 * as the officer's client sends it; NULL when out of memory or not UTF-8.
 */
json_t *archive_opening_json(const char *email, const char *serial,
    const char *reason, X509 *onetime);
/* The body as the server reads it; the strings belong to json. */
typedef struct archive_opening {
	const char *email, *serial, *reason, *request_cert;
	json_t *json;
} archive_opening;
/*
 * Reads an opening body: an object with no other field than these, each
 * a string (or absent: archive_recovery_open says what is missing, after
 * the caller's role), within its size.  0, or -1 with err (LB_EINVAL);
 * o->email survives a failure of the other fields, for the audit row of
 * the refusal.  archive_opening_clear releases o either way.
 */
int archive_opening_parse(const void *buf, size_t len, archive_opening *o,
    lb_err *err);
void archive_opening_clear(archive_opening *o);

/* A share of the agent's own, as the request shows it to that agent. */
typedef struct archive_view_share {
	int64_t record_id;
	char *serial;
	unsigned char *cms;      /* EnvelopedData to the agent's key */
	size_t cms_len;
} archive_view_share;

/* A record of a request as an agent's client reads it. */
typedef struct archive_view_record {
	char *serial;
	X509 *cert;              /* the encryption certificate, or NULL */
	long long other_open;    /* other open requests covering it */
} archive_view_record;

/* A request as an approving agent's client reads it. */
typedef struct archive_view {
	char id[ARCHIVE_REQUEST_ID_LEN + 1];
	char *status, *email, *requester_email, *reason;
	char *created, *expires;          /* as the server wrote them */
	long long approvals, threshold;
	size_t nrecords;
	archive_view_share *shares;
	size_t nshares;
	X509 *request_cert;     /* the one-time certificate, or NULL */
	X509 *requester_cert;   /* the requester's credential, or NULL */
	archive_view_record *records;
	char *statement;        /* the officer's statement, or NULL */
	unsigned char *statement_cms;
	size_t statement_cms_len;
} archive_view;

/*
 * Reads a request view (at most ARCHIVE_MESSAGE_MAX bytes, a valid id and
 * a status, shares with a positive record id, a serial and base64 CMS);
 * certificates that do not parse read as NULL, for archive_view_check to
 * refuse.  -1 with err (and *v empty) otherwise.
 */
int archive_view_parse(const char *buf, size_t len, archive_view *v,
    lb_err *err);
void archive_view_clear(archive_view *v);

/* The package of an approved request, GET .../{id}/package. */
json_t *archive_package_json(const archive_recovery *rq,
    STACK_OF(X509) *chain);

/* One escrow record of a package. */
typedef struct archive_package_record {
	int64_t record_id;
	char *serial, *email;
	int threshold;                    /* 1 to 255 */
	X509 *cert;
	unsigned char iv[ARCHIVE_IV_LEN], tag[ARCHIVE_TAG_LEN];
	unsigned char *ciphertext;
	size_t ciphertext_len;
	unsigned char **shares;           /* rewrapped to the one-time key */
	size_t *share_lens;
	size_t nshares;
} archive_package_record;

/* A package as the officer's client reads it. */
typedef struct archive_package {
	char id[ARCHIVE_REQUEST_ID_LEN + 1];
	char *status, *email;
	STACK_OF(X509) *chain;            /* the CA chain, at least one */
	archive_package_record *records;
	size_t nrecords;
} archive_package;

/*
 * Reads a package: a valid id, the CA chain, records with the algorithms
 * this lockbox knows (aes-256-gcm, shamir-gf256,
 * cms-rsaes-oaep-sha256-aes256), a threshold of 1 to 255, the
 * certificate, an iv and tag of the right sizes, the ciphertext and at
 * most ARCHIVE_MAX_AGENTS base64 shares.  -1 with err naming the record's
 * serial where it can (and *p empty) otherwise.
 */
int archive_package_parse(const char *buf, size_t len, archive_package *p,
    lb_err *err);
void archive_package_clear(archive_package *p);

/* An agent's approval: its shares re-encrypted to the one-time key. */
typedef struct archive_approval {
	archive_share_in *shares;
	unsigned char **bufs;             /* owned (malloc'ed) share bytes */
	size_t nshares;
} archive_approval;

/* The approval as the body of POST .../{id}/approve. */
json_t *archive_approval_json(const archive_approval *a);
/*
 * Reads an approval body, {"shares": [{"record_id": N, "cms": BASE64}]}
 * and nothing else: at most 1000 shares (none is well-formed; the rules
 * say why it does not approve), positive record ids, base64 of at most
 * 24 KiB each.  -1 with err (LB_EINVAL) and *out empty otherwise.
 */
int archive_approval_parse(const unsigned char *buf, size_t len,
    archive_approval *out, lb_err *err);
/* Appends a share (cms malloc'ed, owned by a from now on); 0 or -1. */
int archive_approval_add(archive_approval *a, int64_t record_id,
    unsigned char *cms, size_t cms_len);
void archive_approval_clear(archive_approval *a);

/* ------------------------------------------------------------------ */
/* The operators' side of the workflow (recover.c)                     */

#define ARCHIVE_ONETIME_CN   "lockbox recovery request"
#define ARCHIVE_ONETIME_DAYS 30

/*
 * The request's one-time certificate for key: CN "lockbox recovery
 * request", 30 days, key encipherment, issued (signed) by the officer's
 * credential (signer, signer_cert) so that agents can tell it is the
 * requester's and not one the server slipped in.
 */
X509 *archive_onetime_cert(EVP_PKEY *key, EVP_PKEY *signer,
    X509 *signer_cert, lb_err *err);
/*
 * The checks an agent's client makes before releasing anything: the
 * requester's credential chains to the CA certificates of ca_file and
 * names the requester's e-mail, and it signed the one-time certificate,
 * an RSA key of at least 3072 bits.  A server that swapped in a key of
 * its own fails here (LB_EINVAL "refusing to release a share").
 */
int archive_view_check(const archive_view *v, const char *ca_file,
    lb_err *err);
/*
 * Decrypts each of v's shares with the agent's key and re-encrypts it
 * to v's one-time certificate (checked first: archive_view_check), into
 * *out; every plaintext share is cleansed.
 */
int archive_view_rewrap(const archive_view *v, EVP_PKEY *agent_key,
    X509 *agent_cert, archive_approval *out, lb_err *err);

/* The keys a package opened to, with their certificates and names. */
typedef struct archive_opened {
	EVP_PKEY **keys;
	X509 **certs;
	char **names;            /* "EMAIL (SERIAL)" */
	char **serials;          /* the records' serials */
	size_t n;
} archive_opened;

/*
 * Opens every record of p (serial: only that one) with the one-time key:
 * the keys come out only when every one of them opened and belongs to its
 * certificate; otherwise -1 with err naming the record, nothing in *out.
 */
int archive_package_open(const archive_package *p, const char *serial,
    EVP_PKEY *otkey, X509 *otcert, archive_opened *out, lb_err *err);
void archive_opened_clear(archive_opened *o);

/*
 * The officer's one-time key and certificate for request id, kept in dir
 * as ID.key and ID.pem (0600) until the keys are fetched; *key_path
 * (malloc'ed) names the key file.
 */
int archive_onetime_save(const char *dir, const char *id, EVP_PKEY *key,
    X509 *cert, char **key_path, lb_err *err);
/* Reads them back, checked to belong together (LB_EINVAL naming the
 * files; no key for id: fetch where the request was made). */
int archive_onetime_load(const char *dir, const char *id, EVP_PKEY **key,
    X509 **cert, lb_err *err);
/* Overwrites and removes them (0 when they are gone already). */
int archive_onetime_remove(const char *dir, const char *id, lb_err *err);

/* ------------------------------------------------------------------ */
/* The operators' clients (client.c)                                   */

#define ARCHIVE_API "/api/v1/recovery/requests"

/*
 * How a client reaches the server: api sends method path with a JSON
 * body (NULL: none; not consumed) and leaves a 2xx answer in *r, else -1
 * with err (the server's detail); key and cert are the operator's
 * credential, which the TLS client authentication also uses.
 */
typedef struct archive_transport {
	void *h;
	int (*api)(void *h, const char *method, const char *path,
	    json_t *body, core_http_reply *r, lb_err *err);
	EVP_PKEY *key;
	X509 *cert;
} archive_transport;

/*
 * The escrow policy on a member's side (policy_client.c).  The pin, in
 * HOME/escrow-pin.json (0600): the first policy this client signed or was
 * told to trust (--trust-policy, from another member), and the newest it
 * verified since.
 */
typedef struct archive_pin {
	char first[65], newest[65];
} archive_pin;
int archive_pin_load(const char *home, archive_pin *pin, bool *found,
    lb_err *err);
int archive_pin_save(const char *home, const archive_pin *pin, lb_err *err);
bool archive_policy_hash_valid(const char *s);

/* The server's policies as far as a pin verifies them. */
typedef struct archive_verified {
	archive_chain chain;
	long first;       /* where the walk began: the pin's first, or -1 */
	long in_force;    /* the newest policy verified in force, or -1 */
	long pending;     /* the proposal that follows it, or -1 */
} archive_verified;
void archive_verified_clear(archive_verified *v);
/*
 * Walks v->chain from the policy first (trusted as it is): each later
 * policy must follow its predecessor and carry the signatures
 * archive_policy_accepted asks (else LB_EINVAL naming it), no policy may
 * have two successors, and newest (NULL: none) must lie on the way.
 */
int archive_chain_verify(archive_verified *v, const char *first,
    const char *newest, lb_err *err);
/*
 * Fetches the policies and verifies them from the pin in home (or from
 * trust when there is none; LB_ENOTFOUND without either), then moves
 * the pin's newest forward.
 */
int archive_client_policy_verify(const archive_transport *t,
    const char *home, const char *trust, archive_verified *out,
    lb_err *err);

/* What a member's client shows before signing: true to sign. */
typedef struct archive_policy_review {
	void *arg;
	bool (*confirm)(void *arg, const archive_policy *p,
	    const archive_policy *prev, const char *own_spki);
} archive_policy_review;
/*
 * Signs the pending proposal whose document hashes to hash (the hash read
 * out at the ceremony; another document is refused) with the transport's
 * credential and sends the signature.  Refuses a proposal that names the
 * credential's e-mail with another key, one that does not follow the
 * policy the pin (or trust) verifies to, and, without either, one that
 * does not name the credential's own key.  The pin is written: the first
 * policy signed, the newest in force.
 */
int archive_client_policy_sign(const archive_transport *t, const char *home,
    const char *hash, const char *trust, const archive_policy_review *rv,
    bool *in_force, lb_err *err);

/*
 * The escrows audited (audit.c).  Server end: GET ARCHIVE_API_ESCROWS
 * ?after=ID&limit=N lists the records after ID with their share blobs
 * and the agent certificates they name: {"records": [{id, serial, email,
 * created, policy, threshold, cert, shares: [{agent_serial, cms}]}],
 * "certs": {SERIAL: PEM}}.
 */
#define ARCHIVE_API_ESCROWS "/api/v1/escrow/records"
json_t *archive_escrow_list_json(sqlite3 *db, int64_t after, int limit,
    lb_err *err);

/* What an audit found. */
typedef struct archive_audit {
	size_t records;         /* checked */
	size_t own_shares;      /* own shares decrypted */
	size_t unsigned_before; /* escrowed before any policy (an upgrade) */
	size_t before_pin;      /* under policies older than this client's pin */
	char **problems;        /* one line per record that is not right */
	size_t nproblems;
} archive_audit;
void archive_audit_clear(archive_audit *a);
/*
 * Verifies the policies from the pin in home (or trust), then checks the
 * records escrowed since this client's last clean audit (all with
 * from_start): each names a policy this client verified, not one two
 * versions stale; its threshold is that policy's; its shares are one per
 * agent of that policy, each CMS to one recipient, the certificate it is
 * filed under, whose key the policy names; a share filed under the
 * client's own key decrypts with it and (when bound) names this record
 * and policy.  Problems are collected, not fatal;
 * the point reached is kept (HOME/escrow-audit.json) only when there
 * were none.
 */
int archive_client_audit(const archive_transport *t, const char *home,
    const char *trust, bool from_start, archive_audit *out, lb_err *err);
/*
 * One page of the server's list (body, len), checked against the verified
 * chain v into a; records must come after *last, in order (*last moves
 * on); *n gets how many there were.  t (may be NULL) is the member's
 * credential, for its own shares.  LB_EINVAL for a malformed page.
 */
int archive_audit_page(const archive_verified *v, const archive_transport *t,
    const char *body, size_t len, archive_audit *a, int64_t *last,
    size_t *n, lb_err *err);

/*
 * The officer's side of a statement (statement.c): after a request is
 * opened, the statement of what the server says it covers (only keys of
 * owner), signed with the credential, sent and kept as DIR/ID.statement.
 */
int archive_client_statement(const archive_transport *t, const char *dir,
    const char *id, const char *owner, const char *reason, json_t *reply,
    lb_err *err);
int archive_statement_save(const char *dir, const archive_statement *s,
    lb_err *err);
int archive_statement_load(const char *dir, const char *id,
    archive_statement *s, lb_err *err);
void archive_statement_remove(const char *dir, const char *id);

/* An agent's check of a request against its policy (statement.c). */
typedef struct archive_checked {
	archive_statement s;
	const archive_policy_member *officer;  /* in the policy checked */
	unsigned char *aad_sha256;  /* 32 bytes per share of the view */
} archive_checked;
void archive_checked_clear(archive_checked *c);
/*
 * The view's statement: signed by a recovery officer of p, about this
 * request and its one-time key, unexpired, with the reason the server
 * shows (the agent is shown the signed one); own (the agent's credential)
 * is neither the owner nor that officer; each share asked for belongs to
 * a record it names, with the key it names (out->aad_sha256 gets that
 * record's AAD hash, for the share's binding to match).
 */
int archive_view_statement_check(const archive_view *v,
    const archive_policy *p, X509 *own, archive_checked *out, lb_err *err);
/* HOME/released.json: one-time keys (SPKI hashes) released to, once. */
int archive_released_before(const char *home, const char *onetime,
    bool *seen, lb_err *err);
int archive_released_add(const char *home, const char *onetime, lb_err *err);

/* "AB:CD:...": a certificate's SHA-256 fingerprint ("" on failure). */
#define ARCHIVE_FINGERPRINT_LEN 96  /* 32 bytes as "AB:" */
void archive_fingerprint(X509 *x, char out[ARCHIVE_FINGERPRINT_LEN]);

/* A request the officer opened. */
typedef struct archive_client_opened {
	char id[ARCHIVE_REQUEST_ID_LEN + 1];
	char *key_path;          /* where the one-time key is kept */
	char fingerprint[ARCHIVE_FINGERPRINT_LEN];  /* the one-time cert's */
	json_t *reply;           /* the request as the server opened it */
} archive_client_opened;
/*
 * Makes a one-time RSA-3072 key and its certificate signed by the
 * officer's credential, opens a request for email's escrowed keys (or
 * the one serial) and keeps the key and certificate in dir (0600).  -1
 * with err; when the request was opened but its key could not be kept,
 * out->id names it (withdraw it: it can never be fetched).
 */
int archive_client_request(const archive_transport *t, const char *dir,
    const char *email, const char *serial, const char *reason,
    archive_client_opened *out, lb_err *err);
void archive_client_opened_clear(archive_client_opened *o);

/* What an approving agent's client shows and asks. */
typedef struct archive_review {
	void *arg;
	/* the request as checked: c the officer's statement and the policy
	 * p it was checked against (both NULL when the request releases
	 * nothing of ours: not pending, or no share of ours in it) */
	void (*show)(void *arg, const archive_view *v, const archive_checked *c,
	    const archive_policy *p);
	/* after every check: true to re-encrypt our shares */
	bool (*confirm)(void *arg, const archive_view *v,
	    const char *fingerprint);
} archive_review;
typedef struct archive_client_approved {
	size_t nshares;          /* ours, handed in */
	size_t unbound;          /* of them, shares made before schema 8 */
	long long approvals, threshold;
	char status[32];         /* the request's, after */
} archive_client_approved;
/*
 * Reads request id; when it is pending and holds shares of ours, checks
 * it itself: the policies from the pin in home (or trust), the officer's
 * statement against the policy in force (archive_view_statement_check),
 * the requester's credential against ca_file and the one-time key's
 * signature (archive_view_check), that this client never released to
 * that one-time key before; shows it (rv->show) and asks (rv->confirm);
 * re-encrypts our shares to the one-time certificate, each share bound
 * to a record the statement names and a policy of the chain (shares
 * made before schema 8 carry no binding: counted in out->unbound); then
 * hands in the approval (none when nothing was ours: the server says
 * why and audits the attempt) and records the one-time key as released
 * to.  -1 with err.
 */
int archive_client_approve(const archive_transport *t, const char *id,
    const char *ca_file, const char *home, const char *trust,
    const archive_review *rv, archive_client_approved *out, lb_err *err);
/*
 * Fetches the package of approved request id and opens every key (or
 * the one serial) with the one-time key kept in dir: all or nothing.
 * The caller clears *pkg and *keys; -1 with err (both empty).  When the
 * server refuses because the request is over (denied, expired,
 * collected), the one-time key is removed too, and err says so.
 */
int archive_client_fetch(const archive_transport *t, const char *dir,
    const char *id, const char *serial, archive_package *pkg,
    archive_opened *keys, lb_err *err);

/*
 * After the recovered keys are safely written: removes the one-time key
 * of request id from dir, then tells the server, which deletes the
 * request's rewrapped shares.  -1 with err (the key is removed first:
 * whatever the server still holds can then open nothing).
 */
int archive_client_collected(const archive_transport *t, const char *dir,
    const char *id, lb_err *err);

#endif /* LOCKBOX_ARCHIVE_H */
