/*
 * cmd_publish.c - `lockbox publish status`: the queue that publishes user
 * certificates to the directory (counts, then each row still pending or
 * given up), and `lockbox publish retry`: rows given up queued again.  The
 * daemon's publisher (enroll/publish.c) does the publishing; neither
 * command talks to the directory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "enroll/enroll.h"

static const char publish_help[] =
"usage: lockbox publish status [--dir DIR]\n"
"       lockbox publish retry [--dir DIR]\n"
"\n"
"Issued certificates are published to their users' directory entries\n"
"(userCertificate;binary) and removed once revoked by 'lockbox serve',\n"
"through a queue that survives directory outages.\n"
"\n"
"'status' shows how many publications are pending, failed and done, the\n"
"age of the oldest pending one, then one line per pending or failed\n"
"publication.  'retry' queues the failed ones again.\n";

static const char status_help[] =
"usage: lockbox publish status [--dir DIR]\n"
"\n"
"Shows the directory publication queue: the number of publications\n"
"pending, failed (given up after repeated permanent errors, such as a\n"
"user missing from the directory) and done, and the age of the oldest\n"
"pending one; then, per pending or failed publication, its state,\n"
"action (add, or delete once revoked), certificate serial, e-mail,\n"
"attempts, next try and last error.\n";

static const char retry_help[] =
"usage: lockbox publish retry [--dir DIR]\n"
"\n"
"Queues every failed publication again, due now: once the cause is fixed\n"
"(e.g. the user added to the directory), a running 'lockbox serve' tries\n"
"them within 30 seconds.  Prints how many were queued.\n";

/* Parses [--dir DIR] for a subcommand; -1 to return *rc. */
static int
parse_dir(int argc, char **argv, const char *help, const char *name,
    const char **dir, int *rc)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = cli_getopt(argc, argv, opts, help)) != -1) {
		switch (c) {
		case -2:
			*rc = 0;
			return -1;
		case -3:
			*rc = EXIT_USAGE;
			return -1;
		case 'd':
			*dir = optarg;
			break;
		}
	}
	if (optind != argc) {
		*rc = cli_usage(name, "unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}

static int
print_row(const enroll_publication *pb, void *arg)
{
	char next[32];

	(void)arg;
	if (strcmp(pb->state, "failed") == 0)
		snprintf(next, sizeof(next), "-");
	else
		core_time_fmt(pb->next_try, next, sizeof(next));
	printf("%-7s %-6s %s %s attempts %" PRId64 ", next try %s, %s%s\n",
	    pb->state, pb->action, pb->serial, pb->email, pb->attempts, next,
	    pb->last_error != NULL ? "last error: " : "no error yet",
	    pb->last_error != NULL ? pb->last_error : "");
	return 0;
}

static int
publish_status(int argc, char **argv)
{
	const char *dir = NULL;
	enroll_publish_counts c;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	char ts[32];
	int rc = 1;

	if (parse_dir(argc, argv, status_help, "publish status", &dir, &rc) ==
	    -1)
		return rc;
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (enroll_publish_counts_get(db, &c, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	printf("pending: %" PRId64 "\nfailed:  %" PRId64 "\ndone:    %" PRId64
	    "\n", c.pending, c.failed, c.done);
	if (c.oldest_pending != 0) {
		core_time_fmt(c.oldest_pending, ts, sizeof(ts));
		printf("oldest pending: %s (%lld s ago)\n", ts,
		    (long long)(time(NULL) - c.oldest_pending));
	} else {
		printf("oldest pending: -\n");
	}
	if (enroll_publish_foreach(db, print_row, NULL, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	rc = 0;
out:
	core_db_close(db);
	ca_free(ca);
	return rc;
}

static int
publish_retry(int argc, char **argv)
{
	const char *dir = NULL;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	int n, rc = 1;

	if (parse_dir(argc, argv, retry_help, "publish retry", &dir, &rc) ==
	    -1)
		return rc;
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (enroll_publish_retry(db, cli_actor(), &n, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	printf("%d failed publication%s queued again\n", n, n == 1 ? "" : "s");
	rc = 0;
out:
	core_db_close(db);
	ca_free(ca);
	return rc;
}

int
cmd_publish(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return publish_status(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "retry") == 0)
		return publish_retry(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(publish_help, stdout);
		return 0;
	}
	return cli_usage("publish", "expected status or retry");
}
