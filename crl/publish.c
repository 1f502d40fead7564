/*
 * publish.c - the daemon's CRL publisher: one thread with its own
 * database handle that issues CRLs on a schedule and soon after every
 * revocation.  Revocations made through this daemon wake it through a
 * condition variable; revocations made by another process (`lockbox
 * revoke`) show as a change of the revocation generation, which it polls
 * every POLL_SECONDS.  The first revocation opens a window of [crl]
 * coalesce seconds, and every revocation inside it lands in the same CRL.
 * A failed issuance is logged, recorded by crl_issue as the web target's
 * last error, and retried with backoff.
 *
 * LDAP publication, when [directory] has a uri, runs in a thread of its
 * own with its own database handle and directory connection: a server
 * that is down or frozen (up to its timeouts) must never hold up the web
 * CRL.  It publishes whenever the last CRL issued is not the one the
 * "ldap" target holds, checked after each CRL issued here and every
 * POLL_SECONDS (CRLs issued by `lockbox crl`, or before a restart), and
 * after a failure waits [directory] retry seconds, doubling up to
 * retry_max, before the next attempt.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crl/crl.h"

#define POLL_SECONDS    2
#define BACKOFF_MIN     5
#define BACKOFF_MAX     300
#define PUBLISHER_ACTOR "daemon:crl-publisher"

struct crl_publisher {
	ca_ctx *ca;
	crl_conf cc;
	core_worker w;          /* woken by a revocation in this daemon */
	/* LDAP: only when dir != NULL */
	directory_ctx *dir;
	long retry, retry_max;      /* [directory] retry, retry_max */
	core_worker ldap;           /* woken when a CRL was issued */
};

static void *
ldap_main(void *arg)
{
	struct crl_publisher *p = arg;
	sqlite3 *db = NULL;
	time_t now, next = 0, retry_at = 0;
	int64_t number;
	long backoff = 0;
	bool kicked, pending;
	lb_err err;
	int r;

	while ((r = core_worker_wait(&p->ldap, next)) != -1) {
		kicked = r == 1;
		now = time(NULL);
		next = now + POLL_SECONDS;
		lb_err_clear(&err);
		pending = false;
		if (db == NULL)
			db = ca_db_open(p->ca, &err);
		if (db != NULL && (kicked || now >= retry_at))
			(void)crl_ldap_pending(db, &pending, &err);
		if (err.code != LB_OK) {
			log_warnx("CRL publisher (LDAP): %s", err.msg);
		} else if (!kicked && now < retry_at) {
			if (retry_at < next)    /* backing off */
				next = retry_at;
		} else if (!pending) {
			backoff = 0;    /* e.g. `lockbox crl` published it */
			retry_at = 0;
		} else if (crl_publish_ldap(p->ca, db, p->dir, now, &number,
		    &err) == 0) {
			log_info("CRL %" PRId64 " published to %s at %s", number,
			    directory_get0_ca_dn(p->dir),
			    directory_get0_uri(p->dir));
			backoff = 0;
			retry_at = 0;
		} else {
			backoff = directory_backoff_next(backoff, p->retry,
			    p->retry_max);
			retry_at = now + backoff;
			if (retry_at < next)
				next = retry_at;
			log_warnx("CRL publisher (LDAP): %s (retrying in %ld s)",
			    err.msg, backoff);
		}
	}
	core_db_close(db);
	return NULL;
}

/*
 * Opens the directory when [directory] has a uri.  A bad [directory]
 * leaves LDAP publishing off (the web CRL matters more), logged and
 * recorded as the ldap target's error for `lockbox crl status`.
 */
static int
ldap_setup(struct crl_publisher *p, lb_err *err)
{
	const core_conf *conf = ca_get0_conf(p->ca);
	sqlite3 *db;
	lb_err derr;

	if (directory_retry_conf(conf, &p->retry, &p->retry_max, err) == -1)
		return -1;
	lb_err_clear(&derr);
	if ((p->dir = directory_open_at(conf, ca_get0_dir(p->ca), &derr)) !=
	    NULL || derr.code == LB_ENOTFOUND)
		return 0;
	log_warnx("CRL publisher: LDAP publishing off: %s", derr.msg);
	if ((db = ca_db_open(p->ca, NULL)) != NULL) {
		crl_publication_record(db, "ldap", 0, time(NULL), derr.msg,
		    NULL);
		core_db_close(db);
	}
	return 0;
}

/* True when no CRL was issued, it is due, or pub/ca.crl is missing. */
static bool
due_at_start(struct crl_publisher *p, const crl_info *cur, time_t now)
{
	char *path = core_path(ca_get0_dir(p->ca), CA_PUB_DIR "/" CRL_FILE);
	struct stat st;
	bool missing = path == NULL || stat(path, &st) == -1;

	free(path);
	return cur->number == 0 || cur->issued + p->cc.interval <= now ||
	    missing;
}

static void *
publisher_main(void *arg)
{
	struct crl_publisher *p = arg;
	sqlite3 *db = NULL;
	crl_info cur;
	int64_t gen = 0, g;
	time_t now, issue_at, next_poll, t;
	long backoff = 0;
	bool woken, issued;
	int r;
	lb_err err;

	lb_err_clear(&err);
	now = time(NULL);
	issue_at = now;
	if ((db = ca_db_open(p->ca, &err)) == NULL ||
	    ca_revocation_generation(db, &gen, &err) == -1 ||
	    crl_current(db, &cur, &err) == -1)
		log_warnx("CRL publisher: %s", err.msg);
	else if (!due_at_start(p, &cur, now))
		issue_at = cur.issued + p->cc.interval;
	next_poll = now + POLL_SECONDS;
	while ((r = core_worker_wait(&p->w, issue_at < next_poll ? issue_at :
	    next_poll)) != -1) {
		woken = r == 1;
		now = time(NULL);
		issued = false;
		lb_err_clear(&err);
		if (db == NULL && (db = ca_db_open(p->ca, &err)) == NULL)
			log_warnx("CRL publisher: %s", err.msg);
		if (db != NULL && now >= next_poll) {
			next_poll = now + POLL_SECONDS;
			if (ca_revocation_generation(db, &g, &err) == 0 &&
			    g != gen) {
				gen = g;
				woken = true;
			}
		}
		t = now + p->cc.coalesce;
		if (woken && t < issue_at)
			issue_at = t;
		if (db != NULL && now >= issue_at) {
			/* read first: a revocation while we build makes
			 * another CRL */
			if (ca_revocation_generation(db, &g, &err) == 0)
				gen = g;
			if (crl_issue(p->ca, db, &p->cc, now, PUBLISHER_ACTOR,
			    &cur, &err) == 0) {
				log_info("CRL %" PRId64 " issued: %" PRId64
				    " entries, %zu bytes", cur.number,
				    cur.entries, cur.der_len);
				backoff = 0;
				issue_at = now + p->cc.interval;
				issued = true;
			} else {
				backoff = directory_backoff_next(backoff,
				    BACKOFF_MIN, BACKOFF_MAX);
				log_warnx("CRL publisher: %s (retrying in %ld "
				    "s)", err.msg, backoff);
				issue_at = now + backoff;
			}
		} else if (db == NULL) {
			issue_at = now + BACKOFF_MIN;
		}
		if (issued && p->dir != NULL)
			core_worker_wake(&p->ldap);
	}
	core_db_close(db);
	return NULL;
}

crl_publisher *
crl_publisher_start(ca_ctx *ca, lb_err *err)
{
	struct crl_publisher *p;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	p->ca = ca;
	if (crl_conf_load(ca_get0_conf(ca), &p->cc, err) == -1 ||
	    ldap_setup(p, err) == -1 ||
	    (p->dir != NULL && core_worker_start(&p->ldap, ldap_main, p,
	    "CRL publisher", err) == -1) ||
	    core_worker_start(&p->w, publisher_main, p, "CRL publisher",
	    err) == -1) {
		core_worker_stop(&p->ldap);
		directory_free(p->dir);
		free(p);
		return NULL;
	}
	return p;
}

void
crl_publisher_wake(crl_publisher *p)
{
	if (p != NULL)
		core_worker_wake(&p->w);
}

void
crl_publisher_stop(crl_publisher *p)
{
	if (p == NULL)
		return;
	/* the publisher first: it wakes the LDAP thread */
	core_worker_stop(&p->w);
	core_worker_stop(&p->ldap);
	directory_free(p->dir);
	free(p);
}
