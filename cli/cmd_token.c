/*
 * cmd_token.c - `lockbox token create|list|revoke`: one-time enrollment
 * tokens for users without a directory account.  create prints the secret
 * once, alone on the last line of standard output, so that a script can
 * take it with `tail -n 1`; only its hash is stored, so it cannot be shown
 * again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "enroll/enroll.h"

static const char token_help[] =
"usage: lockbox token create --email ADDR [--given-name G --surname S]\n"
"                            [--profiles P,P] [--ttl 7d] [--dir DIR]\n"
"       lockbox token list [--dir DIR]\n"
"       lockbox token revoke ID [--dir DIR]\n"
"\n"
"One-time enrollment tokens let a user without a directory account enroll\n"
"over EST: HTTP Basic with the e-mail address as the user and the token\n"
"as the password.  A token buys one certificate of each profile it lists\n"
"and then is spent.  Only a hash of it is stored.\n";

static const char create_help[] =
"usage: lockbox token create --email ADDR [--given-name G --surname S]\n"
"                            [--profiles P,P] [--ttl DURATION] [--dir DIR]\n"
"\n"
"Creates a one-time enrollment token for ADDR and prints the e-mail, the\n"
"profiles and the expiry, then the secret alone on the last line of\n"
"standard output.  It is shown only now: hand it to the user over a\n"
"trusted channel.\n"
"\n"
"  --email ADDR        the e-mail address certified (required)\n"
"  --given-name G      given name and surname, for profiles with\n"
"  --surname S         validation = individual (both or neither)\n"
"  --profiles P,P      subscriber profiles the token enrolls, once each\n"
"                      (default smime-sign,smime-enc)\n"
"  --ttl DURATION      lifetime: 30m, 24h, 7d ... (default 7d, at most\n"
"                      366d)\n";

static const char list_help[] =
"usage: lockbox token list [--dir DIR]\n"
"\n"
"Lists the tokens: id, e-mail, profiles (spent or unspent), expiry and\n"
"creator.  The secrets are not stored and never shown.\n";

static const char revoke_help[] =
"usage: lockbox token revoke ID [--dir DIR]\n"
"\n"
"Makes token ID (see 'lockbox token list') expire now, so that it can no\n"
"longer be used.  What it already enrolled stays valid.\n";

static int
token_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "email", required_argument, NULL, 'e' },
		{ "given-name", required_argument, NULL, 'g' },
		{ "surname", required_argument, NULL, 's' },
		{ "profiles", required_argument, NULL, 'p' },
		{ "ttl", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	enroll_token_opts o;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	char *secret = NULL;
	char exp[32];
	int64_t id = 0;
	int c, rc = 1;

	memset(&o, 0, sizeof(o));
	while ((c = cli_getopt(argc, argv, opts, create_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		case 'e':
			o.email = optarg;
			break;
		case 'g':
			o.given_name = optarg;
			break;
		case 's':
			o.surname = optarg;
			break;
		case 'p':
			o.profiles = optarg;
			break;
		case 't':
			if (core_parse_duration(optarg, &o.ttl) == -1 ||
			    o.ttl <= 0)
				return cli_usage("token create", "--ttl needs "
				    "a duration such as 30m, 24h or 7d");
			break;
		}
	}
	if (optind != argc)
		return cli_usage("token create", "unexpected argument '%s'",
		    argv[optind]);
	if (o.email == NULL)
		return cli_usage("token create", "--email is required");
	if ((o.given_name == NULL) != (o.surname == NULL))
		return cli_usage("token create", "give --given-name and "
		    "--surname together");
	o.actor = cli_actor();
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (enroll_token_create(ca, db, &o, &secret, &id, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	core_time_fmt(time(NULL) + (o.ttl != 0 ? o.ttl : 7L * 24 * 3600), exp,
	    sizeof(exp));
	printf("token:    %" PRId64 "\n", id);
	printf("email:    %s\n", o.email);
	if (o.given_name != NULL)
		printf("name:     %s %s\n", o.given_name, o.surname);
	printf("profiles: %s\n", o.profiles != NULL ? o.profiles :
	    "smime-sign,smime-enc");
	printf("expires:  %s\n", exp);
	printf("%s\n", secret);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "lockbox: cannot write the token to standard "
		    "output: revoke it with 'lockbox token revoke %" PRId64
		    "'\n", id);
		goto out;
	}
	rc = 0;
out:
	core_secret_free(secret);
	core_db_close(db);
	ca_free(ca);
	return rc;
}

static int
list_one(int64_t id, const char *email, const char *profiles, time_t created,
    time_t expires, const char *creator, void *arg)
{
	char exp[32];

	(void)created;
	(void)arg;
	core_time_fmt(expires, exp, sizeof(exp));
	printf("%" PRId64 "\t%s\t%s\t%s %s\t%s\n", id, email, profiles,
	    expires <= time(NULL) ? "expired" : "expires", exp,
	    creator != NULL ? creator : "");
	return 0;
}

static int
token_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	int c, rc = 1;

	while ((c = cli_getopt(argc, argv, opts, list_help)) != -1) {
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
	if (optind != argc)
		return cli_usage("token list", "unexpected argument '%s'",
		    argv[optind]);
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (enroll_token_list(db, list_one, NULL, &err) == -1) {
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
token_revoke(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	char *end = NULL;
	long long id;
	int c, rc = 1;

	while ((c = cli_getopt(argc, argv, opts, revoke_help)) != -1) {
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
	if (optind + 1 != argc)
		return cli_usage("token revoke", "give one token id (see "
		    "'lockbox token list')");
	id = strtoll(argv[optind], &end, 10);
	if (argv[optind][0] == '\0' || *end != '\0' || id <= 0)
		return cli_usage("token revoke", "'%s' is not a token id",
		    argv[optind]);
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (enroll_token_revoke(db, (int64_t)id, cli_actor(), &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	printf("token %lld revoked\n", id);
	rc = 0;
out:
	core_db_close(db);
	ca_free(ca);
	return rc;
}

int
cmd_token(int argc, char **argv)
{
	/* getopt's messages and cli_getopt's hint name argv[0] */
	static char n_create[] = "token create", n_list[] = "token list",
	    n_revoke[] = "token revoke";

	if (argc >= 2 && strcmp(argv[1], "create") == 0) {
		argv[1] = n_create;
		return token_create(argc - 1, argv + 1);
	}
	if (argc >= 2 && strcmp(argv[1], "list") == 0) {
		argv[1] = n_list;
		return token_list(argc - 1, argv + 1);
	}
	if (argc >= 2 && strcmp(argv[1], "revoke") == 0) {
		argv[1] = n_revoke;
		return token_revoke(argc - 1, argv + 1);
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(token_help, stdout);
		return 0;
	}
	return cli_usage("token", "expected create, list or revoke");
}
