/*
 * publish_worker.c - test tool: drives the directory publication queue of
 * enroll/publish.c on a CA's state directory, standing in for the daemon
 * until it runs the publisher, so that tests/integration/52_publish.sh
 * can check the result with ldapsearch against a real slapd.
 *
 *   publish_worker DIR enqueue SERIAL EMAIL [USER_DN]
 *       queues SERIAL for adding to the user's entry (one transaction)
 *   publish_worker DIR run [SECONDS]
 *       runs the worker thread (with the [directory] settings of
 *       DIR/lockbox.conf) until the queue has settled: nothing pending and
 *       no published certificate revoked without its removal queued; at
 *       most SECONDS (default 20)
 *
 * The worker logs at info level to standard error.  Exit status: 0 done
 * (settled), 3 still pending at the time limit, 1 failure, 2 usage.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "enroll/enroll.h"

/* Rows pending, plus revoked published certificates whose removal the
 * worker has yet to queue; -1 on a database failure. */
static long long
unsettled(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	long long n = -1;

	if (sqlite3_prepare_v2(db, "SELECT (SELECT COUNT(*) FROM publish_queue "
	    "WHERE state = 'pending') + (SELECT COUNT(*) FROM publish_queue q "
	    "JOIN certificates c ON c.serial = q.serial WHERE q.action = 'add' "
	    "AND q.state = 'done' AND q.last_error IS NULL AND c.status = "
	    "'revoked' AND NOT EXISTS (SELECT 1 FROM publish_queue d WHERE "
	    "d.serial = q.serial AND d.action = 'delete'))", -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static int
run(ca_ctx *ca, sqlite3 *db, long secs, lb_err *err)
{
	enroll_publisher *p;
	time_t end = time(NULL) + secs;
	long long n;
	int rc = 3;

	if ((p = enroll_publisher_start(ca, ca_get0_conf(ca), err)) == NULL)
		return 1;
	while (time(NULL) < end) {
		if ((n = unsettled(db)) == -1) {
			lb_err_set(err, LB_EINTERNAL, "cannot read the queue");
			rc = 1;
			break;
		}
		if (n == 0) {
			rc = 0;
			break;
		}
		usleep(100000);
	}
	enroll_publisher_stop(p);
	if (rc == 3)
		fprintf(stderr, "publish_worker: %lld publication(s) still "
		    "pending after %ld s\n", unsettled(db), secs);
	return rc;
}

int
main(int argc, char **argv)
{
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	long secs = 20;
	int rc = 1;

	if (argc < 3 || (strcmp(argv[2], "enqueue") == 0 && (argc < 5 ||
	    argc > 6)) || (strcmp(argv[2], "run") == 0 && argc > 4) ||
	    (strcmp(argv[2], "enqueue") != 0 && strcmp(argv[2], "run") != 0)) {
		fprintf(stderr, "usage: publish_worker DIR enqueue SERIAL EMAIL "
		    "[USER_DN]\n       publish_worker DIR run [SECONDS]\n");
		return 2;
	}
	if (strcmp(argv[2], "run") == 0 && argc == 4 &&
	    ((secs = strtol(argv[3], NULL, 10)) <= 0 || secs > 3600)) {
		fprintf(stderr, "publish_worker: SECONDS: 1 to 3600\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	log_init("publish_worker", false);
	log_set_verbosity(1);
	if ((ca = ca_open(argv[1], CA_OPEN_NO_KEY, &err)) == NULL ||
	    (db = ca_db_open(ca, &err)) == NULL)
		goto out;
	if (strcmp(argv[2], "enqueue") == 0) {
		if (core_db_begin(db, &err) == -1)
			goto out;
		if (enroll_publish_enqueue(db, argv[3], argv[4], argc == 6 ?
		    argv[5] : NULL, &err) == -1) {
			core_db_rollback(db);
			goto out;
		}
		if (core_db_commit(db, &err) == -1)
			goto out;
		rc = 0;
	} else {
		rc = run(ca, db, secs, &err);
	}
out:
	if (rc == 1)
		fprintf(stderr, "publish_worker: %s\n", err.msg);
	core_db_close(db);
	ca_free(ca);
	return rc;
}
