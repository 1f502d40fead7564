/*
 * cmd_request.c - `lockbox request list|approve|deny`: enrollments of
 * profiles with approval = manual wait here until an operator decides.
 * The client that asked gets 202 until then and its certificate when it
 * asks again after the approval.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "enroll/enroll.h"

static const char request_help[] =
"usage: lockbox request list [--all] [--dir DIR]\n"
"       lockbox request approve ID [--dir DIR]\n"
"       lockbox request deny ID [--dir DIR]\n"
"\n"
"Enrollments of a profile with 'approval = manual' in lockbox.conf are\n"
"held as requests: the EST client gets '202 Accepted' with Retry-After.\n"
"'list' shows the pending ones (--all: every request, with its status);\n"
"'approve' lets the next attempt of the client with the same key get its\n"
"certificate; 'deny' refuses it for good.  Every decision is audited.\n";

static int
print_row(const char *id, const char *profile, const char *email,
    const char *status, time_t created, void *arg)
{
	char when[32];

	(void)arg;
	core_time_fmt(created, when, sizeof(when));
	printf("%-32s  %-10s  %-9s  %s  %s\n", id, profile, status, when,
	    email);
	return 0;
}

static int
request_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	bool all = false;
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	lb_err err = { 0 };
	int c, rc = 1;

	while ((c = cli_getopt(argc, argv, opts, request_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		case 'a':
			all = true;
			break;
		}
	}
	if (optind != argc)
		return cli_usage("request list", "unexpected argument '%s'",
		    argv[optind]);
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		return 1;
	printf("%-32s  %-10s  %-9s  %-20s  %s\n", "ID", "PROFILE", "STATUS",
	    "CREATED", "E-MAIL");
	if (enroll_request_list(db, all ? NULL : "pending", print_row, NULL,
	    &err) == -1) {
		cli_fail(&err);
		goto out;
	}
	rc = 0;
out:
	core_db_close(db);
	ca_free(ca);
	return rc;
}

static int
request_decide(int argc, char **argv, bool approve)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *cmd = approve ? "request approve" :
	    "request deny";
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	lb_err err = { 0 };
	int c, rc = 1;

	while ((c = cli_getopt(argc, argv, opts, request_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		}
	}
	if (optind != argc - 1)
		return cli_usage(cmd, "give exactly one request ID");
	if (strlen(argv[optind]) != 32 || strspn(argv[optind],
	    "0123456789abcdef") != 32)
		return cli_usage(cmd, "'%s' is not a request ID (32 lowercase "
		    "hex digits, as 'lockbox request list' shows)",
		    argv[optind]);
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		return 1;
	if (enroll_request_decide(db, argv[optind], approve, cli_actor(),
	    &err) == -1) {
		cli_fail(&err);
		goto out;
	}
	printf("request %s %s\n", argv[optind], approve ? "approved" :
	    "denied");
	rc = 0;
out:
	core_db_close(db);
	ca_free(ca);
	return rc;
}

int
cmd_request(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return request_list(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "approve") == 0)
		return request_decide(argc - 1, argv + 1, true);
	if (argc >= 2 && strcmp(argv[1], "deny") == 0)
		return request_decide(argc - 1, argv + 1, false);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(request_help, stdout);
		return 0;
	}
	return cli_usage("request", "expected list, approve or deny");
}
