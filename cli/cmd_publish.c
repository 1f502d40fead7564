/*
 * cmd_publish.c - `lockbox publish status`: all that the daemon publishes,
 * in one place: the queue that publishes user certificates to the
 * directory (counts, then each row still pending or given up; its
 * publisher is enroll/publish.c), then the CRL's targets, the web and the
 * CA's directory entry with the CA certificate (crl/publish.c).  `lockbox
 * publish retry`: queue rows given up queued again.  Neither command talks
 * to the directory.
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
"publication; then where the CRL (and, in the directory, the CA\n"
"certificate beside it) stands on each target.  'retry' queues the failed\n"
"certificate publications again.\n";

static const char status_help[] =
"usage: lockbox publish status [--dir DIR]\n"
"\n"
"Shows the directory publication queue: the number of publications\n"
"pending, failed (given up after repeated permanent errors, such as a\n"
"user missing from the directory) and done, and the age of the oldest\n"
"pending one; then, per pending or failed publication, its state,\n"
"action (add, or delete once revoked), certificate serial, e-mail,\n"
"attempts, next try and last error.  Then the CRL's publication targets\n"
"as 'lockbox crl status' shows them: 'web' (the files the daemon serves)\n"
"and 'ldap' (the CA's directory entry: CRLs and CA certificate), each\n"
"with the CRL number it holds, when, and its last error.\n";

static const char retry_help[] =
"usage: lockbox publish retry [--dir DIR]\n"
"\n"
"Queues every failed publication again, due now: once the cause is fixed\n"
"(e.g. the user added to the directory), a running 'lockbox serve' tries\n"
"them within 30 seconds.  Prints how many were queued.\n";

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
status_run(void *state, cli_ctx *c)
{
	enroll_publish_counts n;
	lb_err err = { 0 };
	char ts[32];

	(void)state;
	if (enroll_publish_counts_get(c->db, &n, &err) == -1)
		return cli_fail(&err);
	printf("pending: %" PRId64 "\nfailed:  %" PRId64 "\ndone:    %" PRId64
	    "\n", n.pending, n.failed, n.done);
	if (n.oldest_pending != 0) {
		core_time_fmt(n.oldest_pending, ts, sizeof(ts));
		printf("oldest pending: %s (%lld s ago)\n", ts,
		    (long long)(time(NULL) - n.oldest_pending));
	} else {
		printf("oldest pending: -\n");
	}
	if (enroll_publish_foreach(c->db, print_row, NULL, &err) == -1)
		return cli_fail(&err);
	printf("CRL publication (see 'lockbox crl status'):\n");
	if (cli_crl_targets_print(c->db, &err) == -1)
		return cli_fail(&err);
	return 0;
}

static const cli_sub status_sub = {
	"publish status", status_help, NULL, NULL, 0, 0, NULL, NULL, CLI_DB,
	status_run,
};

static int
retry_run(void *state, cli_ctx *c)
{
	lb_err err = { 0 };
	int n;

	(void)state;
	if (enroll_publish_retry(c->db, cli_actor(), &n, &err) == -1)
		return cli_fail(&err);
	printf("%d failed publication%s queued again\n", n, n == 1 ? "" : "s");
	return 0;
}

static const cli_sub retry_sub = {
	"publish retry", retry_help, NULL, NULL, 0, 0, NULL, NULL, CLI_DB,
	retry_run,
};

int
cmd_publish(int argc, char **argv)
{
	static const cli_sub *const subs[] = { &status_sub, &retry_sub };
	void *const states[] = { NULL, NULL };

	return cli_dispatch("publish", publish_help, subs, states, 2, argc,
	    argv);
}
