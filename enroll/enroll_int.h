/*
 * enroll_int.h - what the files of enroll/ share: the enrollment context
 * and the per-profile enrollment settings.
 */
#ifndef LOCKBOX_ENROLL_INT_H
#define LOCKBOX_ENROLL_INT_H

#include <pthread.h>

#include "directory/directory.h"
#include "enroll/enroll.h"

#define ENROLL_MAX_GROUPS 8

/* A profile's enrollment settings ([profile.NAME], see enroll.h). */
struct enroll_profile {
	char name[64];
	const ca_profile *ca;       /* the CA's side of the profile */
	char *groups[ENROLL_MAX_GROUPS]; /* entitled group DNs */
	size_t ngroups;
	bool manual;                /* approval = manual */
	long renew_percent;         /* 1..99 */
	long renew_days;
	enum ca_key_type keygen_type;
	bool escrow;                /* ca_profile_needs_escrow */
	bool publish;               /* queued for the directory */
	enroll_keypool *pool;       /* serverkeygen keys (escrow profiles) */
};

/* The failure counters of auth.c (opaque outside it). */
struct enroll_ratelimit;
struct enroll_ratelimit *enroll_rl_new(long fail_limit);
void enroll_rl_free(struct enroll_ratelimit *rl);

struct enroll_ctx {
	ca_ctx *ca;
	/* [directory], or NULL; one thread at a time under dir_lock */
	directory_ctx *dir;
	pthread_mutex_t dir_lock;
	struct enroll_ratelimit *rl;
	long fail_limit;
	struct enroll_profile *profiles;
	size_t nprofiles;
	enroll_publisher *pub;      /* NULL without threads or directory */
	core_committer *committer;  /* group commit; NULL without threads */
};

/*
 * enroll_token_check with the internal reason of a refusal in why (for
 * the audit log only; the client hears "authentication failed").
 */
int enroll_token_verify(sqlite3 *db, const char *email, const char *secret,
    enroll_identity *id, char *why, size_t whylen, lb_err *err);

/* The enrollment settings of a subscriber profile, or NULL. */
const struct enroll_profile *enroll_profile_find(const enroll_ctx *e,
    const char *name);

/* ------------------------------------------------------------------ */
/* Manual approval (approval.c, for enroll.c)                          */

enum enroll_approval {
	ENROLL_APPROVAL_NONE, ENROLL_APPROVAL_PENDING, ENROLL_APPROVAL_GO
};
/*
 * For a manual profile: finds the request of this key, profile and user,
 * or stores a new one.  ENROLL_APPROVAL_GO when approved (id_out names
 * it); ENROLL_APPROVAL_PENDING with id_out set while it waits; -1 with
 * err (denied: LB_EFORBIDDEN).  An issued request whose certificate
 * exists yields that certificate again in *issued (the client lost the
 * answer).
 */
int enroll_approval_check(sqlite3 *db, const enroll_identity *id,
    const char *profile, X509_REQ *req, char id_out[33], X509 **issued,
    lb_err *err);
/* Marks the approved request id issued as serial, in the caller's
 * transaction. */
int enroll_request_issued(sqlite3 *db, const char *id, const char *serial,
    lb_err *err);

/* ------------------------------------------------------------------ */
/* The enrollment client's directory (stage.c, for client.c)           */

/* state.json: at most this many bytes */
#define ENROLL_STATE_MAX ((size_t)64 * 1024)

/* dir/name+suffix, malloc'ed (NULL when out of memory). */
char *enroll_file_in(const char *dir, const char *name, const char *suffix);
bool enroll_file_exists(const char *path);
/* certs[0..n-1] as PEM into path (mode), atomically. */
int enroll_write_certs(const char *path, X509 *const *certs, size_t n,
    mode_t mode, lb_err *err);
/* The certificate in path (PEM or DER). */
X509 *enroll_read_cert(const char *path, lb_err *err);
/*
 * Finishes what an interrupted run staged for profile name in dir: a
 * staged certificate whose key is staged or already in place is moved
 * into place (keep_old: the pair it replaces is kept as NAME-SERIAL.*);
 * anything else staged is removed.
 */
int enroll_stage_recover(const char *dir, const char *name, bool keep_old,
    lb_err *err);
/*
 * Installs key and cert (checked to match) for profile name: NAME.key
 * (0600), NAME.crt and NAME.p12 with NAME.p12.pass (0600, chain
 * included, friendly name "EMAIL (NAME)"), written staged and then moved
 * into place, the certificate last; keep_old as enroll_stage_recover.
 */
int enroll_stage_install(const char *dir, const char *name,
    const char *email, EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain,
    bool keep_old, lb_err *err);
/* state.json into or from dir (see enroll_state_parse); reading, a
 * missing file is LB_ENOTFOUND saying how to enroll first. */
int enroll_state_write(const char *dir, const char *server,
    const char *ca_cert, const char *email, lb_err *err);
int enroll_state_read(const char *dir, enroll_state *st, lb_err *err);

#endif
