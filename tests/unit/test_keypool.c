/*
 * test_keypool.c - unit tests of enroll/keypool.c, the pool of
 * pre-generated serverkeygen keys: a take from an empty pool generates
 * inline, a filled pool hands out its keys at once and refills, every key
 * is a distinct key of the pool's type, freeing aborts a generation in
 * progress instead of waiting for it, size 0 runs no thread, takes from
 * many threads at once, refills wait for a burst of takes to pass and
 * run niced, and bad arguments are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include "enroll/enroll.h"
#include "bench/bench.h"
#include "tests/unit/testutil.h"

/* Polls until the pool holds want keys; false after secs seconds. */
static bool
wait_ready(enroll_keypool *p, size_t want, double secs)
{
	double end = bench_now() + secs;

	while (enroll_keypool_ready(p) != want) {
		if (bench_now() > end)
			return false;
		usleep(10000);
	}
	return true;
}

/* A usable private key of type t: it signs, and the signature verifies. */
static void
assert_key(EVP_PKEY *k, enum ca_key_type t)
{
	static const unsigned char msg[] = "keypool";
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md;

	assert_non_null(k);
	assert_int_equal(ca_key_type_of(k), t);
	assert_non_null(md = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k),
	    1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)),
	    1);
	EVP_MD_CTX_free(md);
	assert_non_null(md = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
	    k), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)),
	    1);
	EVP_MD_CTX_free(md);
}

static void
test_bad_args(void **state)
{
	lb_err err = { 0 };

	(void)state;
	assert_null(enroll_keypool_new(CA_KEY_NONE, 4, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_null(enroll_keypool_new(CA_KEY_ECP256, (size_t)1 << 20, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "keypool"));
	enroll_keypool_free(NULL);
}

/* Size 0: no thread, no keys kept, every take makes a fresh key. */
static void
test_size_zero(void **state)
{
	enroll_keypool *p;
	EVP_PKEY *a, *b;
	lb_err err = { 0 };

	(void)state;
	assert_non_null(p = enroll_keypool_new(CA_KEY_ECP256, 0, &err));
	assert_int_equal(enroll_keypool_ready(p), 0);
	a = enroll_keypool_take(p, &err);
	b = enroll_keypool_take(p, &err);
	assert_key(a, CA_KEY_ECP256);
	assert_key(b, CA_KEY_ECP256);
	assert_int_not_equal(EVP_PKEY_eq(a, b), 1);
	usleep(100000);
	/* nothing fills it in the background */
	assert_int_equal(enroll_keypool_ready(p), 0);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	enroll_keypool_free(p);
}

/*
 * An empty pool (its thread has barely started on an RSA-2048 key) still
 * answers with a fresh key of the type, made inline; the pool then fills
 * with a different key.
 */
static void
test_take_empty(void **state)
{
	enroll_keypool *p;
	EVP_PKEY *a, *b;
	lb_err err = { 0 };

	(void)state;
	assert_non_null(p = enroll_keypool_new(CA_KEY_RSA2048, 1, &err));
	a = enroll_keypool_take(p, &err);
	assert_key(a, CA_KEY_RSA2048);
	assert_true(wait_ready(p, 1, 60));
	b = enroll_keypool_take(p, &err);
	assert_key(b, CA_KEY_RSA2048);
	assert_int_not_equal(EVP_PKEY_eq(a, b), 1);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
	enroll_keypool_free(p);
}

/*
 * A filled pool hands out its keys without generating (an RSA-4096 key
 * takes far more than the 100 ms allowed here), all distinct and of the
 * type, then refills to its size once the takes have paused (P-256 keys
 * take well under a millisecond, so an early refill would show).
 */
static void
test_take_filled(void **state)
{
	enroll_keypool *p;
	EVP_PKEY *k[8], *big;
	lb_err err = { 0 };
	double t0, took;
	size_t i, j;

	(void)state;
	assert_non_null(p = enroll_keypool_new(CA_KEY_ECP256, 8, &err));
	assert_true(wait_ready(p, 8, 30));
	for (i = 0; i < 8; i++) {
		k[i] = enroll_keypool_take(p, &err);
		assert_key(k[i], CA_KEY_ECP256);
		for (j = 0; j < i; j++)
			assert_int_not_equal(EVP_PKEY_eq(k[i], k[j]), 1);
	}
	/* no refill while takes keep coming (within 100 ms of the last) */
	usleep(40000);
	assert_int_equal(enroll_keypool_ready(p), 0);
	assert_true(wait_ready(p, 8, 30));
	for (i = 0; i < 8; i++)
		EVP_PKEY_free(k[i]);
	/* freed with 8 keys in it: ASan's leak check sees them go */
	enroll_keypool_free(p);

	assert_non_null(p = enroll_keypool_new(CA_KEY_RSA4096, 1, &err));
	assert_true(wait_ready(p, 1, 120));
	t0 = bench_now();
	big = enroll_keypool_take(p, &err);
	took = bench_now() - t0;
	assert_non_null(big);
	assert_int_equal(ca_key_type_of(big), CA_KEY_RSA4096);
	assert_true(took < 0.1);
	assert_int_equal(enroll_keypool_ready(p), 0);
	EVP_PKEY_free(big);
	enroll_keypool_free(p);
}

/*
 * Freeing while the thread is in the middle of RSA-4096 generations
 * (a second or more each) returns within half a second: the generation
 * is aborted.
 */
static void
test_free_while_generating(void **state)
{
	enroll_keypool *p;
	lb_err err = { 0 };
	double t0, took;
	int round;

	(void)state;
	for (round = 0; round < 3; round++) {
		assert_non_null(p = enroll_keypool_new(CA_KEY_RSA4096, 4,
		    &err));
		usleep(50000 + 100000 * round);
		t0 = bench_now();
		enroll_keypool_free(p);
		took = bench_now() - t0;
		/* a whole generation takes far longer, also under valgrind */
		assert_true(took < (getenv("LOCKBOX_UNDER_VALGRIND") ? 10.0 :
		    0.5));
	}
}

/* How many of this process's threads run at niceness nice. */
static int
threads_at_nice(long nice)
{
	char path[300], buf[1024], *p;
	FILE *f;
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	long v;
	int n = 0, field;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat",
		    de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		p = fgets(buf, sizeof(buf), f);
		fclose(f);
		/* fields after the command name "(...)": state is field 3,
		 * nice field 19 */
		if (p == NULL || (p = strrchr(buf, ')')) == NULL)
			continue;
		for (field = 2; field < 19 && p != NULL; field++)
			p = strchr(p + 1, ' ');
		if (p != NULL && sscanf(p, " %ld", &v) == 1 && v == nice)
			n++;
	}
	closedir(d);
	return n;
}

/* The refilling thread runs niced, beside the callers at their own
 * priority, and is gone after the free. */
static void
test_thread_niced(void **state)
{
	enroll_keypool *p;
	lb_err err = { 0 };
	double end = bench_now() + 5;

	(void)state;
	if (getpriority(PRIO_PROCESS, 0) != 0)
		skip();         /* already niced: the counts below differ */
	/* the earlier tests' pool threads are joined; their entries go */
	while (threads_at_nice(10) != 0 && bench_now() < end)
		usleep(1000);
	assert_int_equal(threads_at_nice(10), 0);
	end = bench_now() + 5;
	assert_non_null(p = enroll_keypool_new(CA_KEY_RSA4096, 2, &err));
	while (threads_at_nice(10) != 1 && bench_now() < end)
		usleep(1000);
	assert_int_equal(threads_at_nice(10), 1);
	assert_int_equal(threads_at_nice(0), 1);
	enroll_keypool_free(p);
	/* a joined thread's /proc entry may outlive the join a moment */
	end = bench_now() + 5;
	while (threads_at_nice(10) != 0 && bench_now() < end)
		usleep(1000);
	assert_int_equal(threads_at_nice(10), 0);
}

struct taker {
	enroll_keypool *p;
	EVP_PKEY *k[6];
};

static void *
taker_main(void *arg)
{
	struct taker *t = arg;
	lb_err err = { 0 };
	size_t i;

	for (i = 0; i < 6; i++)
		t->k[i] = enroll_keypool_take(t->p, &err);
	return NULL;
}

/* Eight threads taking at once share the pool without losing or
 * duplicating keys. */
static void
test_concurrent(void **state)
{
	struct taker t[8];
	pthread_t th[8];
	enroll_keypool *p;
	lb_err err = { 0 };
	size_t i, j, a, b;

	(void)state;
	assert_non_null(p = enroll_keypool_new(CA_KEY_ECP256, 16, &err));
	assert_true(wait_ready(p, 16, 30));
	memset(t, 0, sizeof(t));
	for (i = 0; i < 8; i++) {
		t[i].p = p;
		assert_int_equal(pthread_create(&th[i], NULL, taker_main, &t[i]),
		    0);
	}
	for (i = 0; i < 8; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (i = 0; i < 8; i++)
		for (a = 0; a < 6; a++) {
			assert_key(t[i].k[a], CA_KEY_ECP256);
			for (j = 0; j <= i; j++)
				for (b = 0; b < (j == i ? a : 6); b++)
					assert_int_not_equal(EVP_PKEY_eq(
					    t[i].k[a], t[j].k[b]), 1);
		}
	enroll_keypool_free(p);
	for (i = 0; i < 8; i++)
		for (a = 0; a < 6; a++)
			EVP_PKEY_free(t[i].k[a]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_size_zero),
		cmocka_unit_test(test_take_empty),
		cmocka_unit_test(test_take_filled),
		cmocka_unit_test(test_free_while_generating),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_thread_niced),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
