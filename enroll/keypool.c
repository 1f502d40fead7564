/*
 * keypool.c - pre-generated key pairs for serverkeygen.  An RSA key takes
 * hundreds of milliseconds to generate (seconds for RSA-4096), too long to
 * make on an HTTP worker thread for every request of a burst, so one
 * background thread per pool keeps up to size keys of one type ready in
 * memory.  enroll_keypool_take pops one and wakes the thread to refill;
 * an empty pool makes the key inline on the caller's thread.
 *
 * The keys only ever live in this process's memory: nothing here writes
 * or logs them.  EVP_PKEY_free clears their private parts (BN_clear_free),
 * so dropping the pool's keys at enroll_keypool_free leaves nothing behind.
 * A generation in progress at shutdown is aborted through OpenSSL's key
 * generation callback, so that stopping never waits for an RSA-4096 prime
 * search to finish.  Refills do not compete with the requests being
 * served: they start only once takes have paused for KEYPOOL_QUIET_MS
 * (the rest of a burst gets the remaining keys at full speed), and the
 * thread runs niced.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "enroll/enroll.h"

/* Largest pool: a bound on memory, far above any useful setting. */
#define KEYPOOL_MAX 1024
/* The thread's niceness: refills yield the CPU to the HTTP threads. */
#define KEYPOOL_NICE 10
/* Refills start this long after the last take, not during a burst. */
#define KEYPOOL_QUIET_MS 100
/* Wait after a failed background generation before trying again. */
#define KEYPOOL_RETRY_SECONDS 5

struct enroll_keypool {
	enum ca_key_type type;
	size_t size;
	/* w.cond: a key was taken, or stop; the rest under w.lock */
	core_worker w;
	EVP_PKEY **keys;            /* keys[0..n-1] ready */
	size_t n;
	struct timespec quiet;      /* refill from then on (monotonic) */
	atomic_bool aborting;       /* read by the keygen callback */
};

/* OpenSSL's key generation progress callback: 0 aborts. */
static int
keygen_progress(EVP_PKEY_CTX *ctx)
{
	enroll_keypool *p = EVP_PKEY_CTX_get_app_data(ctx);

	return atomic_load(&p->aborting) ? 0 : 1;
}

/*
 * One key for the background thread.  RSA goes through a context of our
 * own so that enroll_keypool_free can abort it half-way; EC keys take
 * well under a millisecond, so ca_keygen makes them.
 */
static EVP_PKEY *
pool_keygen(enroll_keypool *p, lb_err *err)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *k = NULL;
	unsigned int bits;

	switch (p->type) {
	case CA_KEY_RSA2048:
		bits = 2048;
		break;
	case CA_KEY_RSA3072:
		bits = 3072;
		break;
	case CA_KEY_RSA4096:
		bits = 4096;
		break;
	default:
		return ca_keygen(p->type, err);
	}
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_keygen_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) <= 0) {
		log_openssl("EVP_PKEY_keygen_init");
		lb_err_set(err, LB_EINTERNAL, "cannot generate a %s key",
		    ca_key_type_name(p->type));
		goto out;
	}
	EVP_PKEY_CTX_set_app_data(ctx, p);
	EVP_PKEY_CTX_set_cb(ctx, keygen_progress);
	if (EVP_PKEY_generate(ctx, &k) <= 0) {
		EVP_PKEY_free(k);
		k = NULL;
		if (atomic_load(&p->aborting)) {
			/* expected: the abort leaves errors on the queue */
			log_openssl("EVP_PKEY_generate (aborted)");
			lb_err_set(err, LB_EINTERNAL, "key pool stopping");
		} else {
			log_openssl("EVP_PKEY_generate");
			lb_err_set(err, LB_EINTERNAL,
			    "cannot generate a %s key",
			    ca_key_type_name(p->type));
		}
	}
out:
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* Sleeps up to secs on want (woken early by stop); lock held. */
static void
pool_backoff(enroll_keypool *p, long secs)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += secs;
	while (!p->w.stop && pthread_cond_timedwait(&p->w.cond, &p->w.lock,
	    &until) != ETIMEDOUT)
		;
}

static void *
pool_main(void *arg)
{
	enroll_keypool *p = arg;
	EVP_PKEY *k;
	struct timespec now;
	lb_err err = { 0 };

	/* Linux: nice applies to this thread alone */
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), KEYPOOL_NICE) == -1)
		log_debug("key pool: setpriority: %s", strerror(errno));
	pthread_mutex_lock(&p->w.lock);
	while (!p->w.stop) {
		if (p->n >= p->size) {
			pthread_cond_wait(&p->w.cond, &p->w.lock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec < p->quiet.tv_sec ||
		    (now.tv_sec == p->quiet.tv_sec &&
		    now.tv_nsec < p->quiet.tv_nsec)) {
			/* a take moves quiet on and wakes us: look again */
			pthread_cond_timedwait(&p->w.cond, &p->w.lock,
			    &p->quiet);
			continue;
		}
		pthread_mutex_unlock(&p->w.lock);
		lb_err_clear(&err);
		k = pool_keygen(p, &err);
		pthread_mutex_lock(&p->w.lock);
		if (k == NULL) {
			if (p->w.stop)
				break;
			log_warnx("key pool (%s): %s; retrying in %d s",
			    ca_key_type_name(p->type), err.msg,
			    KEYPOOL_RETRY_SECONDS);
			pool_backoff(p, KEYPOOL_RETRY_SECONDS);
			continue;
		}
		if (p->w.stop || p->n >= p->size)
			EVP_PKEY_free(k);
		else
			p->keys[p->n++] = k;
	}
	pthread_mutex_unlock(&p->w.lock);
	return NULL;
}

enroll_keypool *
enroll_keypool_new(enum ca_key_type type, size_t size, lb_err *err)
{
	enroll_keypool *p = NULL;

	if (type == CA_KEY_NONE || ca_key_type_name(type) == NULL) {
		lb_err_set(err, LB_EINVAL, "key pool: no key type given");
		return NULL;
	}
	if (size > KEYPOOL_MAX) {
		lb_err_set(err, LB_EINVAL,
		    "[enroll] keypool = %zu is too large: at most %d", size,
		    KEYPOOL_MAX);
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    /* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers wanted */
	    (size > 0 && (p->keys = calloc(size, sizeof(*p->keys))) == NULL)) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	p->type = type;
	p->size = size;
	atomic_init(&p->aborting, false);
	/* size 0: no pool, no thread; every take generates its key */
	if (size == 0 || core_worker_start(&p->w, pool_main, p, "key pool",
	    err) == 0)
		return p;
fail:
	if (p != NULL)
		free(p->keys);
	free(p);
	return NULL;
}

EVP_PKEY *
enroll_keypool_take(enroll_keypool *p, lb_err *err)
{
	EVP_PKEY *k = NULL;

	if (p->size > 0) {
		pthread_mutex_lock(&p->w.lock);
		if (p->n > 0) {
			k = p->keys[--p->n];
			p->keys[p->n] = NULL;
			/* the refill waits for the burst to pass: key
			 * generation would take the CPU from the requests
			 * still coming */
			clock_gettime(CLOCK_MONOTONIC, &p->quiet);
			p->quiet.tv_nsec += KEYPOOL_QUIET_MS * 1000000L;
			if (p->quiet.tv_nsec >= 1000000000L) {
				p->quiet.tv_sec++;
				p->quiet.tv_nsec -= 1000000000L;
			}
			pthread_cond_signal(&p->w.cond);
		}
		pthread_mutex_unlock(&p->w.lock);
	}
	if (k != NULL)
		return k;
	/* empty (or size 0): the thread, if any, is already refilling */
	return ca_keygen(p->type, err);
}

size_t
enroll_keypool_ready(enroll_keypool *p)
{
	size_t n;

	if (p->size == 0)
		return 0;
	pthread_mutex_lock(&p->w.lock);
	n = p->n;
	pthread_mutex_unlock(&p->w.lock);
	return n;
}

void
enroll_keypool_free(enroll_keypool *p)
{
	size_t i;

	if (p == NULL)
		return;
	/* a key generation under way gives up at its next callback */
	atomic_store(&p->aborting, true);
	core_worker_stop(&p->w);
	/* EVP_PKEY_free clears the private parts before freeing them */
	for (i = 0; i < p->n; i++)
		EVP_PKEY_free(p->keys[i]);
	free(p->keys);
	free(p);
}
