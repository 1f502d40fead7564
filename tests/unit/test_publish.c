/*
 * test_publish.c - unit tests of the directory publication queue
 * (enroll/publish.c): queuing inside the caller's transaction, idempotence
 * on (serial, action), refusal of bad arguments and unknown serials, the
 * counts, no worker without a directory, and the worker itself against a
 * directory that is down (ldap://127.0.0.1:1/: rows stay pending, attempts
 * grow with backoff, last_error names the server), woken by
 * enroll_publisher_wake, queuing the removal of revoked certificates
 * (revoked before it started, or while it runs),
 * skipping an 'add' revoked before publication, and giving up ('failed')
 * after repeated permanent errors.  The success path needs a real slapd:
 * tests/integration/52_publish.sh.
 *
 * One cmocka group: the setup makes an EC P-256 CA once; each test starts
 * from an empty queue.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "enroll/enroll.h"
#include "tests/unit/testutil.h"

#define ACTOR    "unit-test"
#define DOWN_URI "ldap://127.0.0.1:1/"
/* retry 1 s doubling to 2 s: the worker's backoff is seen within seconds */
#define DIR_CONF "\n[directory]\nuri = " DOWN_URI "\nbase_dn = " \
    "dc=example,dc=org\ntimeout = 1\nnetwork_timeout = 1\nretry = 1\n" \
    "retry_max = 2\n"

static int
group_setup(void **state)
{
	return tu_fixture_setup(state, sizeof(tu_fixture), "publish",
	    "lockbox Publish Unit Test CA", DIR_CONF, TU_FX_KEY) == NULL ?
	    -1 : 0;
}

static int
empty_queue(void **state)
{
	tu_fixture *fx = *state;

	return sqlite3_exec(fx->db, "DELETE FROM publish_queue", NULL, NULL,
	    NULL) == SQLITE_OK ? 0 : -1;
}

/* Issues a signing certificate for email; its serial (malloc'ed). */
static char *
issue(tu_fixture *fx, const char *email)
{
	char *serial = tu_issue_serial(fx, email, ACTOR);

	assert_non_null(serial);
	return serial;
}

/* Queues serial in a committed transaction, as enrollment does. */
static void
enqueue(tu_fixture *fx, const char *serial, const char *email,
    const char *dn)
{
	lb_err err = { 0 };

	assert_int_equal(core_db_begin(fx->db, &err), 0);
	if (enroll_publish_enqueue(fx->db, serial, email, dn, &err) == -1)
		fail_msg("enroll_publish_enqueue: %s", err.msg);
	assert_int_equal(core_db_commit(fx->db, &err), 0);
}

/* An integer column of serial's row for action, or -1. */
static long long
row_int(tu_fixture *fx, const char *serial, const char *action,
    const char *col)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT %s FROM publish_queue WHERE serial "
	    "= '%s' AND action = '%s'", col, serial, action);
	return tu_sql_int(fx->db, sql);
}

static char *
row_text(tu_fixture *fx, const char *serial, const char *action,
    const char *col)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "SELECT %s FROM publish_queue WHERE serial "
	    "= '%s' AND action = '%s'", col, serial, action);
	return tu_sql_text(fx->db, sql);
}

static void
exec_sql(tu_fixture *fx, const char *sql)
{
	assert_int_equal(sqlite3_exec(fx->db, sql, NULL, NULL, NULL),
	    SQLITE_OK);
}

/* Waits up to secs seconds for sql to return a value >= want. */
static bool
wait_for(tu_fixture *fx, const char *sql, long long want, int secs)
{
	int i;

	for (i = 0; i < secs * 20; i++) {
		if (tu_sql_int(fx->db, sql) >= want)
			return true;
		usleep(50000);
	}
	return false;
}

static void
test_enqueue(void **state)
{
	tu_fixture *fx = *state;
	char *s1 = issue(fx, "alice@example.org");
	char *s2 = issue(fx, "bob@example.org");
	char *v;
	time_t now = time(NULL);

	enqueue(fx, s1, "alice@example.org", NULL);
	enqueue(fx, s2, "bob@example.org", "uid=bob,ou=People,dc=example,"
	    "dc=org");
	assert_int_equal(tu_sql_int(fx->db, "SELECT COUNT(*) FROM "
	    "publish_queue"), 2);
	v = row_text(fx, s1, "add", "state");
	assert_string_equal(v, "pending");
	free(v);
	assert_int_equal(row_int(fx, s1, "add", "attempts"), 0);
	assert_in_range(row_int(fx, s1, "add", "next_try"), now - 5, now + 5);
	assert_in_range(row_int(fx, s1, "add", "created"), now - 5, now + 5);
	assert_int_equal(row_int(fx, s1, "add", "user_dn IS NULL"), 1);
	assert_int_equal(row_int(fx, s1, "add", "last_error IS NULL"), 1);
	v = row_text(fx, s1, "add", "email");
	assert_string_equal(v, "alice@example.org");
	free(v);
	v = row_text(fx, s2, "add", "user_dn");
	assert_string_equal(v, "uid=bob,ou=People,dc=example,dc=org");
	free(v);
	free(s1);
	free(s2);
}

/* A rolled-back enrollment leaves nothing queued. */
static void
test_enqueue_rollback(void **state)
{
	tu_fixture *fx = *state;
	char *s = issue(fx, "carol@example.org");
	lb_err err = { 0 };

	assert_int_equal(core_db_begin(fx->db, &err), 0);
	assert_int_equal(enroll_publish_enqueue(fx->db, s, "carol@example.org",
	    NULL, &err), 0);
	core_db_rollback(fx->db);
	assert_int_equal(tu_sql_int(fx->db, "SELECT COUNT(*) FROM "
	    "publish_queue"), 0);
	free(s);
}

static void
test_enqueue_idempotent(void **state)
{
	tu_fixture *fx = *state;
	char *s = issue(fx, "dave@example.org");

	enqueue(fx, s, "dave@example.org", NULL);
	exec_sql(fx, "UPDATE publish_queue SET attempts = 3, last_error = "
	    "'x'");
	/* a second enqueue (a retried request) changes nothing */
	enqueue(fx, s, "dave@example.org", "uid=dave,dc=example,dc=org");
	assert_int_equal(tu_sql_int(fx->db, "SELECT COUNT(*) FROM "
	    "publish_queue"), 1);
	assert_int_equal(row_int(fx, s, "add", "attempts"), 3);
	assert_int_equal(row_int(fx, s, "add", "user_dn IS NULL"), 1);
	free(s);
}

static void
test_enqueue_bad(void **state)
{
	tu_fixture *fx = *state;
	char *s = issue(fx, "erin@example.org");
	lb_err err = { 0 };

	assert_int_equal(enroll_publish_enqueue(fx->db, s, NULL, NULL, &err),
	    -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_int_equal(enroll_publish_enqueue(fx->db, s, "", NULL, &err),
	    -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_int_equal(enroll_publish_enqueue(fx->db, "", "erin@example.org",
	    NULL, &err), -1);
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	/* a serial this CA never issued (foreign key) */
	assert_int_equal(enroll_publish_enqueue(fx->db, "0DEADBEEF",
	    "erin@example.org", NULL, &err), -1);
	assert_int_equal(err.code, LB_ENOTFOUND);
	assert_non_null(strstr(err.msg, "0DEADBEEF"));
	assert_int_equal(tu_sql_int(fx->db, "SELECT COUNT(*) FROM "
	    "publish_queue"), 0);
	free(s);
}

static void
test_counts(void **state)
{
	tu_fixture *fx = *state;
	enroll_publish_counts c;
	lb_err err = { 0 };
	char *s[4];
	char sql[256];
	int i;

	assert_int_equal(enroll_publish_counts_get(fx->db, &c, &err), 0);
	assert_int_equal(c.pending + c.failed + c.done, 0);
	assert_int_equal(c.oldest_pending, 0);
	for (i = 0; i < 4; i++) {
		s[i] = issue(fx, "frank@example.org");
		enqueue(fx, s[i], "frank@example.org", NULL);
	}
	snprintf(sql, sizeof(sql), "UPDATE publish_queue SET created = 1000 "
	    "WHERE serial = '%s'", s[1]);
	exec_sql(fx, sql);
	snprintf(sql, sizeof(sql), "UPDATE publish_queue SET state = 'failed', "
	    "created = 10 WHERE serial = '%s'", s[2]);
	exec_sql(fx, sql);
	snprintf(sql, sizeof(sql), "UPDATE publish_queue SET state = 'done', "
	    "done = 2000 WHERE serial = '%s'", s[3]);
	exec_sql(fx, sql);
	assert_int_equal(enroll_publish_counts_get(fx->db, &c, &err), 0);
	assert_int_equal(c.pending, 2);
	assert_int_equal(c.failed, 1);
	assert_int_equal(c.done, 1);
	/* the oldest pending, not the older failed one */
	assert_int_equal(c.oldest_pending, 1000);
	for (i = 0; i < 4; i++)
		free(s[i]);
}

static void
test_no_directory(void **state)
{
	tu_fixture *fx = *state;
	core_conf *conf = core_conf_new_empty();
	lb_err err = { 0 };

	assert_non_null(conf);
	assert_null(enroll_publisher_start(fx->ca, conf, &err));
	assert_int_equal(err.code, LB_ENOTFOUND);
	core_conf_free(conf);
	/* a bad retry is refused, naming it */
	lb_err_clear(&err);
	conf = core_conf_load_mem("[directory]\nuri = " DOWN_URI "\nretry = "
	    "soon\n", strlen("[directory]\nuri = " DOWN_URI "\nretry = "
	    "soon\n"), &err);
	assert_non_null(conf);
	assert_null(enroll_publisher_start(fx->ca, conf, &err));
	assert_int_equal(err.code, LB_EINVAL);
	assert_non_null(strstr(err.msg, "retry"));
	core_conf_free(conf);
	enroll_publisher_stop(NULL);
	enroll_publisher_wake(NULL);
}

/* Directory down: pending, attempts growing with backoff, last_error. */
static void
test_worker_directory_down(void **state)
{
	tu_fixture *fx = *state;
	char *s1 = issue(fx, "grace@example.org");
	char *s2 = issue(fx, "heidi@example.org");
	enroll_publisher *p;
	lb_err err = { 0 };
	char *v;
	time_t t0;

	enqueue(fx, s1, "grace@example.org", NULL);
	enqueue(fx, s2, "heidi@example.org", "uid=heidi,dc=example,dc=org");
	p = enroll_publisher_start(fx->ca, ca_get0_conf(fx->ca), &err);
	if (p == NULL)
		fail_msg("enroll_publisher_start: %s", err.msg);
	/* both rows tried, one of them twice (1 s, then 2 s backoff) */
	assert_true(wait_for(fx, "SELECT SUM(attempts) FROM publish_queue",
	    3, 10));
	t0 = time(NULL);
	enroll_publisher_stop(p);
	assert_true(time(NULL) - t0 <= 2);
	assert_true(row_int(fx, s1, "add", "attempts") >= 1);
	assert_true(row_int(fx, s2, "add", "attempts") >= 1);
	assert_int_equal(tu_sql_int(fx->db, "SELECT COUNT(*) FROM "
	    "publish_queue WHERE state = 'pending' AND next_try > created"), 2);
	v = row_text(fx, s1, "add", "last_error");
	assert_non_null(v);
	assert_non_null(strstr(v, DOWN_URI));
	free(v);
	v = row_text(fx, s2, "add", "last_error");
	assert_non_null(v);
	free(v);
	/* the DN is not invented when the look-up could not run */
	assert_int_equal(row_int(fx, s1, "add", "user_dn IS NULL"), 1);
	assert_int_equal(tu_sql_int(fx->db, "SELECT COUNT(*) FROM "
	    "publish_queue WHERE action = 'delete'"), 0);
	free(s1);
	free(s2);
}

/* A worker asleep (nothing due) acts on a wake-up at once. */
static void
test_worker_wake(void **state)
{
	tu_fixture *fx = *state;
	char *s = issue(fx, "ivan@example.org");
	enroll_publisher *p;
	lb_err err = { 0 };

	p = enroll_publisher_start(fx->ca, ca_get0_conf(fx->ca), &err);
	if (p == NULL)
		fail_msg("enroll_publisher_start: %s", err.msg);
	usleep(300000);         /* its first pass found nothing */
	enqueue(fx, s, "ivan@example.org", NULL);
	enroll_publisher_wake(p);
	assert_true(wait_for(fx, "SELECT SUM(attempts) FROM publish_queue",
	    1, 3));
	enroll_publisher_stop(p);
	free(s);
}

/* Revoked: a 'delete' queued for a published one; an unpublished 'add'
 * is not performed. */
static void
test_worker_revoked(void **state)
{
	tu_fixture *fx = *state;
	char *pub = issue(fx, "judy@example.org");
	char *unpub = issue(fx, "ken@example.org");
	char *valid = issue(fx, "leo@example.org");
	enroll_publisher *p;
	lb_err err = { 0 };
	char sql[256], *v;

	enqueue(fx, pub, "judy@example.org", NULL);
	enqueue(fx, unpub, "ken@example.org", NULL);
	enqueue(fx, valid, "leo@example.org", NULL);
	/* pub and valid were published earlier */
	snprintf(sql, sizeof(sql), "UPDATE publish_queue SET state = 'done', "
	    "done = 1, attempts = 1, user_dn = 'uid=judy,dc=example,dc=org' "
	    "WHERE serial IN ('%s', '%s')", pub, valid);
	exec_sql(fx, sql);
	assert_int_equal(ca_revoke(fx->db, pub, 1, 0, ACTOR, &err), 0);
	assert_int_equal(ca_revoke(fx->db, unpub, 1, 0, ACTOR, &err), 0);
	p = enroll_publisher_start(fx->ca, ca_get0_conf(fx->ca), &err);
	if (p == NULL)
		fail_msg("enroll_publisher_start: %s", err.msg);
	snprintf(sql, sizeof(sql), "SELECT attempts FROM publish_queue WHERE "
	    "serial = '%s' AND action = 'delete'", pub);
	assert_true(wait_for(fx, sql, 1, 5));
	enroll_publisher_stop(p);
	/* the removal: pending (directory down), the DN carried over */
	v = row_text(fx, pub, "delete", "state");
	assert_string_equal(v, "pending");
	free(v);
	v = row_text(fx, pub, "delete", "user_dn");
	assert_string_equal(v, "uid=judy,dc=example,dc=org");
	free(v);
	v = row_text(fx, pub, "delete", "last_error");
	assert_non_null(v);
	assert_non_null(strstr(v, DOWN_URI));
	free(v);
	/* revoked before publication: done without a try, no removal */
	v = row_text(fx, unpub, "add", "state");
	assert_string_equal(v, "done");
	free(v);
	assert_int_equal(row_int(fx, unpub, "add", "attempts"), 0);
	v = row_text(fx, unpub, "add", "last_error");
	assert_non_null(v);
	assert_non_null(strstr(v, "revoked"));
	free(v);
	assert_int_equal(row_int(fx, unpub, "delete", "COUNT(*)"), 0);
	/* still valid: left alone */
	assert_int_equal(row_int(fx, valid, "delete", "COUNT(*)"), 0);
	/* one removal only, however many passes */
	assert_int_equal(row_int(fx, pub, "delete", "COUNT(*)"), 1);
	free(pub);
	free(unpub);
	free(valid);
}

/* A revocation while the worker runs (the generation moves): noticed on
 * the next pass, here forced by a wake-up. */
static void
test_worker_revoked_live(void **state)
{
	tu_fixture *fx = *state;
	char *s = issue(fx, "olivia@example.org");
	enroll_publisher *p;
	lb_err err = { 0 };
	char sql[256];

	enqueue(fx, s, "olivia@example.org", "uid=olivia,dc=example,dc=org");
	exec_sql(fx, "UPDATE publish_queue SET state = 'done', done = 1");
	p = enroll_publisher_start(fx->ca, ca_get0_conf(fx->ca), &err);
	if (p == NULL)
		fail_msg("enroll_publisher_start: %s", err.msg);
	usleep(300000);         /* its first pass: nothing revoked */
	assert_int_equal(row_int(fx, s, "delete", "COUNT(*)"), 0);
	assert_int_equal(ca_revoke(fx->db, s, 4, 0, ACTOR, &err), 0);
	enroll_publisher_wake(p);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM publish_queue WHERE "
	    "serial = '%s' AND action = 'delete'", s);
	assert_true(wait_for(fx, sql, 1, 3));
	enroll_publisher_stop(p);
	free(s);
}

/* Permanent errors: retry_max between tries, 'failed' at the tenth. */
static void
test_worker_permanent(void **state)
{
	tu_fixture *fx = *state;
	/* no base_dn: looking a user up fails without any network */
	static const char text[] = "[directory]\nuri = " DOWN_URI "\n"
	    "retry = 1\nretry_max = 60\n";
	char *s1 = issue(fx, "mallory@example.org");
	char *s2 = issue(fx, "niaj@example.org");
	core_conf *conf;
	enroll_publisher *p;
	lb_err err = { 0 };
	char sql[256], *v;
	time_t now;

	enqueue(fx, s1, "mallory@example.org", NULL);
	enqueue(fx, s2, "niaj@example.org", NULL);
	snprintf(sql, sizeof(sql), "UPDATE publish_queue SET attempts = 9 "
	    "WHERE serial = '%s'", s2);
	exec_sql(fx, sql);
	conf = core_conf_load_mem(text, strlen(text), &err);
	assert_non_null(conf);
	p = enroll_publisher_start(fx->ca, conf, &err);
	if (p == NULL)
		fail_msg("enroll_publisher_start: %s", err.msg);
	assert_true(wait_for(fx, "SELECT SUM(attempts) FROM publish_queue",
	    11, 5));
	now = time(NULL);
	enroll_publisher_stop(p);
	core_conf_free(conf);
	v = row_text(fx, s1, "add", "state");
	assert_string_equal(v, "pending");
	free(v);
	assert_int_equal(row_int(fx, s1, "add", "attempts"), 1);
	/* the maximum backoff at once, not retry */
	assert_in_range(row_int(fx, s1, "add", "next_try"), now + 50,
	    now + 61);
	v = row_text(fx, s1, "add", "last_error");
	assert_non_null(v);
	assert_non_null(strstr(v, "base_dn"));
	free(v);
	v = row_text(fx, s2, "add", "state");
	assert_string_equal(v, "failed");
	free(v);
	assert_int_equal(row_int(fx, s2, "add", "attempts"), 10);
	free(s1);
	free(s2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_enqueue, empty_queue),
		cmocka_unit_test_setup(test_enqueue_rollback, empty_queue),
		cmocka_unit_test_setup(test_enqueue_idempotent, empty_queue),
		cmocka_unit_test_setup(test_enqueue_bad, empty_queue),
		cmocka_unit_test_setup(test_counts, empty_queue),
		cmocka_unit_test_setup(test_no_directory, empty_queue),
		cmocka_unit_test_setup(test_worker_directory_down, empty_queue),
		cmocka_unit_test_setup(test_worker_wake, empty_queue),
		cmocka_unit_test_setup(test_worker_revoked, empty_queue),
		cmocka_unit_test_setup(test_worker_revoked_live, empty_queue),
		cmocka_unit_test_setup(test_worker_permanent, empty_queue),
	};

	log_init("test_publish", false);
	return cmocka_run_group_tests(tests, group_setup,
	    tu_fixture_teardown);
}
