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
	ca_committer *committer;    /* group commit; NULL without threads */
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

#endif
