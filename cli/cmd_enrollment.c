/*
 * cmd_enrollment.c - `lockbox enrollment list|approve|deny` (its old name
 * `lockbox request` stays an alias): enrollment requests of profiles with
 * approval = manual wait here until an operator decides.
 * The client that asked gets 202 until then and its certificate when it
 * asks again after the approval.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "enroll/enroll.h"

static const char enrollment_help[] =
"usage: lockbox enrollment list [--all] [--dir DIR]\n"
"       lockbox enrollment approve ID [--dir DIR]\n"
"       lockbox enrollment deny ID [--dir DIR]\n"
"\n"
"Enrollments of a profile with 'approval = manual' in lockbox.conf are\n"
"held as enrollment requests: the EST client gets '202 Accepted' with\n"
"Retry-After.  ('lockbox request' is the old name of this command.)\n"
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

/* enrollment list [--all] */

static int
list_option(void *state, int c, const char *arg)
{
	bool *all = state;

	(void)arg;
	if (c == 'a')
		*all = true;
	return -1;
}

static int
list_run(void *state, cli_ctx *c)
{
	const bool *all = state;
	lb_err err = { 0 };

	printf("%-32s  %-10s  %-9s  %-20s  %s\n", "ID", "PROFILE", "STATUS",
	    "CREATED", "E-MAIL");
	if (enroll_request_list(c->db, *all ? NULL : "pending", print_row,
	    NULL, &err) == -1)
		return cli_fail(&err);
	return 0;
}

static const struct option list_opts[] = {
	{ "all", no_argument, NULL, 'a' },
	{ NULL, 0, NULL, 0 },
};
static const cli_sub list_sub = {
	"enrollment list", enrollment_help, list_opts, list_option, 0, 0, NULL,
	NULL, CLI_DB, list_run,
};

/* enrollment approve|deny ID: the state says which (true: approve) */

static int
decide_check(void *state, const cli_ctx *c)
{
	const bool *approve = state;
	const char *id = c->argv[0];

	if (strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32)
		return cli_usage(*approve ? "enrollment approve" :
		    "enrollment deny", "'%s' is not a request ID (32 "
		    "lowercase hex digits, as 'lockbox enrollment list' shows)",
		    id);
	return -1;
}

static int
decide_run(void *state, cli_ctx *c)
{
	const bool *approve = state;
	lb_err err = { 0 };

	if (enroll_request_decide(c->db, c->argv[0], *approve, cli_actor(),
	    &err) == -1)
		return cli_fail(&err);
	printf("request %s %s\n", c->argv[0], *approve ? "approved" :
	    "denied");
	return 0;
}

static const cli_sub approve_sub = {
	"enrollment approve", enrollment_help, NULL, NULL, 1, 1,
	"give exactly one request ID", decide_check, CLI_DB, decide_run,
};
static const cli_sub deny_sub = {
	"enrollment deny", enrollment_help, NULL, NULL, 1, 1,
	"give exactly one request ID", decide_check, CLI_DB, decide_run,
};

int
cmd_enrollment(int argc, char **argv)
{
	static const cli_sub *const subs[] = {
		&list_sub, &approve_sub, &deny_sub,
	};
	bool all = false, approve = true, deny = false;
	void *const states[] = { &all, &approve, &deny };

	return cli_dispatch("enrollment", enrollment_help, subs, states, 3,
	    argc, argv);
}
