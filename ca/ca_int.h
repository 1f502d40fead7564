/*
 * ca_int.h - what the files of ca/ share: the CA context and the profile
 * structure with its pre-encoded extensions.
 */
#ifndef LOCKBOX_CA_INT_H
#define LOCKBOX_CA_INT_H

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
	EVP_PKEY *key;            /* NULL with CA_OPEN_NO_KEY */
	char *base_url;
	bool role_separation;
	struct ca_profile profiles[CA_MAX_PROFILES];
	int nprofiles;
};

/* Builds the profiles of ca from its config; -1 with err. */
int ca_profiles_load(struct ca_ctx *ca, lb_err *err);
void ca_profiles_free(struct ca_ctx *ca);

/* The digest to sign with a key: SHA-384 for P-384, SHA-256 otherwise. */
const EVP_MD *ca_sig_md(const EVP_PKEY *key);


/* ca_revoke inside the caller's transaction; serial already normalised. */
int ca_revoke_in_tx(sqlite3 *db, const char *serial, int reason,
    time_t invalidity, const char *actor, lb_err *err);

/* Bumps the revocation generation, inside the caller's transaction. */
int ca_revocation_bump(sqlite3 *db, lb_err *err);

/*
 * A prepared statement for sql kept in db's own statement list, found
 * again by its text (NULL when it cannot be prepared: see sqlite3_errmsg).
 * The caller steps it and hands it back with ca_db_cached_done (reset,
 * bindings cleared); core_db_close finalizes it with the handle.
 */
sqlite3_stmt *ca_db_cached_stmt(sqlite3 *db, const char *sql);
void ca_db_cached_done(sqlite3_stmt *st);

/* Sets a positive random 16-byte serial number. */
int ca_random_serial(X509 *x);

/* The config text written by ca_init. */
char *ca_conf_template(const ca_init_opts *o);

/* Signs a certificate for the CA itself (root or TLS) - ca/init.c only. */
X509 *ca_self_sign(EVP_PKEY *key, const char *name, int days, lb_err *err);

#endif
