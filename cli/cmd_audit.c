/*
 * cmd_audit.c - `lockbox audit list|verify`: read the hash-chained audit
 * log and recompute the chain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"

static const char audit_help[] =
"usage: lockbox audit list [--after ID] [--limit N] [--json] [--dir DIR]\n"
"       lockbox audit verify [--dir DIR]\n"
"\n"
"Every state change (init, issue, revoke, operator change) appends an audit\n"
"row carrying the SHA-256 of the previous row.  'list' prints the rows;\n"
"'verify' recomputes the chain and names the first bad row.\n"
"Exit codes: 0 ok, 1 failure (chain broken), 2 usage.\n";

static int
print_row(const core_audit_row *r, void *arg)
{
	json_t *arr = arg;

	if (arr != NULL)
		return json_array_append_new(arr, json_pack(
		    "{s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "id",
		    (json_int_t)r->id, "ts", r->ts, "actor", r->actor, "action",
		    r->action, "object", r->object, "detail", r->detail, "hash",
		    r->hash));
	printf("%-6lld %s %-18s %-16s %s %s\n", (long long)r->id, r->ts,
	    r->actor, r->action, r->object, r->detail);
	return 0;
}

int
cmd_audit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "after", required_argument, NULL, 'a' },
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *sub;
	bool json = false, verify;
	long long after = 0;
	int limit = 0, c, rc = 1, r;
	int64_t rows = 0, bad = 0;
	char why[256], *end;
	json_t *arr = NULL;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(audit_help, stdout);
		return 0;
	}
	if (argc < 2 || (strcmp(argv[1], "list") != 0 &&
	    strcmp(argv[1], "verify") != 0))
		return cli_usage("audit", "expected list or verify");
	sub = argv[1];
	verify = strcmp(sub, "verify") == 0;
	argc--;
	argv++;
	while ((c = cli_getopt(argc, argv, opts, audit_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		case 'a':
			after = strtoll(optarg, &end, 10);
			if (*end != '\0' || after < 0)
				return cli_usage("audit", "--after needs a row id");
			break;
		case 'l':
			limit = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || limit <= 0)
				return cli_usage("audit", "--limit needs a "
				    "positive number");
			break;
		case 'j':
			json = true;
			break;
		}
	}
	if (optind != argc)
		return cli_usage("audit", "unexpected argument '%s'",
		    argv[optind]);
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (verify) {
		r = core_audit_verify(db, &rows, &bad, why, sizeof(why), &err);
		if (r == -1) {
			rc = cli_fail(&err);
		} else if (r == 1) {
			printf("audit log BROKEN at row %lld: %s\n",
			    (long long)bad, why);
			rc = 1;
		} else {
			printf("audit log intact: %lld rows\n",
			    (long long)rows);
			rc = 0;
		}
		goto out;
	}
	if (json && (arr = json_array()) == NULL)
		goto out;
	if (core_audit_foreach(db, after, limit, print_row, arr, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	rc = 0;
out:
	json_decref(arr);
	core_db_close(db);
	ca_free(ca);
	return rc;
}
