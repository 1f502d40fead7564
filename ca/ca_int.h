/*
 * ca_int.h - what the files of ca/ share: the CA context and the profile
 * structure with its pre-encoded extensions.
 */
#ifndef LOCKBOX_CA_INT_H
#define LOCKBOX_CA_INT_H

#include <stdatomic.h>

#include "ca/ca.h"

enum ca_profile_kind {
	PROFILE_SMIME_SIGN,
	PROFILE_SMIME_ENC,
	PROFILE_RECOVERY_AGENT,
	PROFILE_OPERATOR,
	PROFILE_TLS_SERVER,
	PROFILE_OCSP_SIGNING,
};

#define CA_MAX_PROFILES 8
/* The S/MIME BR cap on subscriber validity, counted inclusively. */
#define CA_MAX_SUBSCRIBER_DAYS 825

struct ca_profile {
	char name[32];
	enum ca_profile_kind kind;
	long days;
	bool individual;          /* validation = individual */
	unsigned key_types;       /* bit (1 << enum ca_key_type) per allowed type */
	bool non_repudiation;
	bool cdp_ldap;            /* cdp_ldap = yes: an ldap:/// URI in the CDP */
	/* Extensions that do not depend on the subject, DER-encoded once at
	 * ca_open (basicConstraints, EKU, policies, CDP, AIA, AKI, nocheck). */
	STACK_OF(X509_EXTENSION) *exts;
	X509_EXTENSION *ku_rsa;   /* keyUsage for RSA subject keys */
	X509_EXTENSION *ku_ec;    /* keyUsage for EC subject keys */
};

struct ca_ctx {
	char *dir;
	core_conf *conf;
	X509 *cert;
	STACK_OF(X509) *chain;    /* cert first, then its issuers */
	X509_STORE *store;
	EVP_PKEY *key;            /* NULL with CA_OPEN_NO_KEY, or when the
	                           * signer process holds it */
	struct ca_signer *signer; /* that process, or NULL (signer.c) */
	char *base_url;
	bool role_separation;
	struct ca_profile profiles[CA_MAX_PROFILES];
	int nprofiles;
};

/* Builds the profiles of ca from its config; -1 with err. */
int ca_profiles_load(struct ca_ctx *ca, lb_err *err);
void ca_profiles_free(struct ca_ctx *ca);

/* Whether the profile named so certifies escrowed encryption keys. */
bool ca_profile_name_escrowed(const char *name);

/*
 * Records, inside the caller's transaction, that key is certified by
 * serial for profile's purpose; -1 with LB_EINVAL when it already is for
 * the other (ca_key_use_check).  ca_store_cert calls it.
 */
int ca_key_use_claim(sqlite3 *db, const EVP_PKEY *key, const char *serial,
    const char *profile, lb_err *err);
/* Fills key_uses for certificates stored before it existed (once) and
 * records the CA's own key as a signing key; ca_db_open calls it. */
int ca_key_uses_fill(sqlite3 *db, X509 *ca_cert, lb_err *err);

/* The digest to sign with a key: SHA-384 for P-384, SHA-256 otherwise. */
const EVP_MD *ca_sig_md(const EVP_PKEY *key);


/* ca_revoke inside the caller's transaction; serial already normalised. */
int ca_revoke_in_tx(sqlite3 *db, const char *serial, int reason,
    time_t invalidity, const char *actor, lb_err *err);

/* Bumps the revocation generation, inside the caller's transaction. */
int ca_revocation_bump(sqlite3 *db, lb_err *err);


/*
 * The signer process (signer.c).  Request types, and what
 * ca_signer_handle returns besides 0 and -1 for a request that breaks its
 * type's encoding (the child stops after answering it).
 */
struct ca_signer_proc {
	int fd;                   /* our end of its socketpair, or -1 */
	pid_t pid;
	pthread_mutex_t lock;     /* one request at a time */
};
struct ca_signer {
	atomic_bool dead;         /* one stopped: every signature fails */
	atomic_uint next;         /* whose turn it is when all are busy */
	int n;
	struct ca_signer_proc proc[CA_SIGNER_MAX];
};
#define CA_SIGNER_CERT      1
#define CA_SIGNER_CRL       2
#define CA_SIGNER_RECEIPT   3
#define CA_SIGNER_MALFORMED (-2)
/*
 * What the signer does with one request of type: decodes in (len bytes),
 * checks it against its type and the profiles, signs it with ca's key.
 * 0 with *out (free()) the DER; -1 with err when a profile refuses it;
 * CA_SIGNER_MALFORMED with err when it is malformed.  No I/O: the unit
 * and fuzz tests call it directly.
 */
int ca_signer_handle(ca_ctx *ca, int type, const unsigned char *in,
    size_t len, unsigned char **out, size_t *out_len, lb_err *err);
/* The other side of ca_sign_cert, ca_sign_crl_der and ca_sign_receipt
 * when ca->signer is set: the same contracts. */
X509 *ca_signer_sign_cert(ca_ctx *ca, const ca_request *req, lb_err *err);
int ca_signer_sign_crl(ca_ctx *ca, X509_CRL *head,
    const unsigned char *revoked, size_t rlen, unsigned char **out,
    size_t *out_len, lb_err *err);
int ca_signer_sign_receipt(ca_ctx *ca, const unsigned char *data,
    size_t len, unsigned char **out, size_t *out_len, lb_err *err);

/*
 * ca_sign_cert with the key in this process.  copy_spki: the subject key
 * is req->spki copied as it is, not encoded again from req->pubkey, and
 * the certificate has no decoded key: for the signer process, which only
 * encodes it.
 */
X509 *ca_build_cert(ca_ctx *ca, const ca_request *req, bool copy_spki,
    lb_err *err);

/* The config text written by ca_init. */
char *ca_conf_template(const ca_init_opts *o);

/* Signs a certificate for the CA itself (root or TLS) - ca/init.c only. */
X509 *ca_self_sign(EVP_PKEY *key, const char *name, int days, lb_err *err);

#endif
