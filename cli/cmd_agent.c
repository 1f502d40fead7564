/*
 * cmd_agent.c - `lockbox agent add|list|remove` (recovery agents) and
 * `lockbox escrow policy` (the threshold M of the M-of-N rule).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "archive/archive.h"
#include "cli/cli.h"

#define EXPIRY_WARN_DAYS 60

static const char agent_help[] =
"usage: lockbox agent add --csr FILE --name N --email A [--out FILE]\n"
"       lockbox agent add --keygen --out-p12 FILE --name N --email A\n"
"                         [--key-type rsa-3072|rsa-4096] [--p12-pass-file F]\n"
"       lockbox agent list [--json]\n"
"       lockbox agent remove ID|SERIAL\n"
"       (each takes --dir DIR)\n"
"\n"
"Recovery agents hold the shares of every escrowed key: M of them together\n"
"(see 'lockbox escrow policy') can restore a lost encryption key, none\n"
"alone can.  'add' issues a recovery-agent certificate (RSA >= 3072, EKU\n"
"clientAuth + key recovery agent) and registers the agent.  --csr is the\n"
"recommended path: the agent's key never touches the server.  'list' shows\n"
"each agent's credential expiry and warns 60 days ahead.  'remove'\n"
"withdraws the role and revokes the credential; existing escrows stay\n"
"recoverable by the other agents.\n";

struct list_state {
	json_t *arr;
	time_t now;
	int warned;
};

static int
list_one(const archive_agent *a, struct list_state *ls)
{
	char na[32];
	long days = (long)((a->not_after - ls->now) / 86400);

	core_time_fmt(a->not_after, na, sizeof(na));
	if (ls->arr != NULL)
		return json_array_append_new(ls->arr, json_pack(
		    "{s:s, s:s, s:s, s:s, s:b, s:I}", "serial", a->serial,
		    "name", a->name, "email", a->email, "not_after", na,
		    "active", a->active, "days_left", (json_int_t)days));
	printf("%-34s %-8s %s  %s <%s>", a->serial, a->active ? "active" :
	    "inactive", na, a->name, a->email);
	if (a->active && days < EXPIRY_WARN_DAYS) {
		printf("  WARNING: expires in %ld days", days);
		ls->warned++;
	}
	putchar('\n');
	return 0;
}

static int
agent_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	struct list_state ls = { NULL, 0, 0 };
	archive_agent *agents = NULL;
	size_t n = 0, i;
	bool json = false;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	int c, rc = 1, threshold = 0;

	while ((c = cli_getopt(argc, argv, opts, agent_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		case 'j':
			json = true;
			break;
		}
	}
	if (optind != argc)
		return cli_usage("agent", "unexpected argument '%s'",
		    argv[optind]);
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (archive_agents_list(db, false, &agents, &n, &err) == -1 ||
	    archive_threshold_get(db, &threshold, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	ls.now = time(NULL);
	if (json && (ls.arr = json_array()) == NULL)
		goto out;
	for (i = 0; i < n; i++)
		list_one(&agents[i], &ls);
	if (json) {
		json_dumpf(ls.arr, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (n == 0) {
		printf("no recovery agents: add %d with 'lockbox agent add'\n",
		    threshold);
	}
	rc = 0;
out:
	json_decref(ls.arr);
	archive_agents_free(agents, n);
	core_db_close(db);
	ca_free(ca);
	return rc;
}

int
cmd_agent(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "add") == 0)
		return cli_operator_add(argc - 1, argv + 1,
		    CA_ROLE_RECOVERY_AGENT, agent_help);
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return agent_list(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "remove") == 0)
		return cli_operator_remove(argc - 1, argv + 1, agent_help);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(agent_help, stdout);
		return 0;
	}
	return cli_usage("agent", "expected add, list or remove");
}

static const char escrow_help[] =
"usage: lockbox escrow policy [--threshold M] [--dir DIR]\n"
"\n"
"Shows the key escrow policy, or with --threshold sets M: how many\n"
"recovery agents together must approve a recovery (default 2).  New\n"
"escrows are split into one share per active agent; issuing an encryption\n"
"certificate with fewer active agents than M fails.  Existing escrows keep\n"
"the threshold they were made with.\n";

int
cmd_escrow(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "threshold", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	long m = 0;
	char *end;
	archive_agent *agents = NULL;
	size_t n = 0;
	int threshold, c, rc = 1;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(escrow_help, stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "policy") != 0)
		return cli_usage("escrow", "expected 'policy'");
	argc--;
	argv++;
	while ((c = cli_getopt(argc, argv, opts, escrow_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		case 't':
			m = strtol(optarg, &end, 10);
			if (*end != '\0' || m < 1 || m > ARCHIVE_MAX_AGENTS)
				return cli_usage("escrow", "--threshold must be "
				    "1 to %d", ARCHIVE_MAX_AGENTS);
			break;
		}
	}
	if (optind != argc)
		return cli_usage("escrow", "unexpected argument '%s'",
		    argv[optind]);
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (m > 0 && archive_threshold_set(db, (int)m, cli_actor(),
	    &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if (archive_threshold_get(db, &threshold, &err) == -1 ||
	    archive_agents_list(db, true, &agents, &n, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	printf("threshold: %d of %zu active recovery agents\n", threshold, n);
	if (n < (size_t)threshold)
		printf("WARNING: fewer active agents than the threshold: "
		    "encryption certificates cannot be issued until %zu more "
		    "%s added\n", (size_t)threshold - n,
		    (size_t)threshold - n == 1 ? "is" : "are");
	rc = 0;
out:
	archive_agents_free(agents, n);
	core_db_close(db);
	ca_free(ca);
	return rc;
}
