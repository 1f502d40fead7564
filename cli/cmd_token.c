/*
 * cmd_token.c - `lockbox token create|list|withdraw`: one-time enrollment
 * tokens for users without a directory account.  create prints the secret
 * once, alone on the last line of standard output, so that a script can
 * take it with `tail -n 1`; only its hash is stored, so it cannot be shown
 * again.  `token revoke` is the older name of `token withdraw`.
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
"       lockbox token withdraw ID [--dir DIR]   (or: token revoke ID)\n"
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
"Lists the tokens, one a line: id, e-mail, profiles (spent or unspent),\n"
"'expires TIME', 'expired TIME' or 'withdrawn TIME by ACTOR', and who\n"
"created it.  The secrets are not stored and never shown.\n";

static const char withdraw_help[] =
"usage: lockbox token withdraw ID [--dir DIR]\n"
"       lockbox token revoke ID [--dir DIR]   (the older name)\n"
"\n"
"Withdraws token ID (see 'lockbox token list'), so that it can no longer\n"
"be used; the list shows it as withdrawn, and by whom.  What it already\n"
"enrolled stays valid.\n";

/* token create */

static int
create_option(void *state, int c, const char *arg)
{
	enroll_token_opts *o = state;

	switch (c) {
	case 'e':
		o->email = arg;
		break;
	case 'g':
		o->given_name = arg;
		break;
	case 's':
		o->surname = arg;
		break;
	case 'p':
		o->profiles = arg;
		break;
	case 't':
		if (core_parse_duration(arg, &o->ttl) == -1 || o->ttl <= 0)
			return cli_usage("token create", "--ttl needs a "
			    "duration such as 30m, 24h or 7d");
		break;
	}
	return -1;
}

static int
create_check(void *state, const cli_ctx *c)
{
	enroll_token_opts *o = state;

	(void)c;
	if (o->email == NULL)
		return cli_usage("token create", "--email is required");
	if ((o->given_name == NULL) != (o->surname == NULL))
		return cli_usage("token create", "give --given-name and "
		    "--surname together");
	o->actor = cli_actor();
	return -1;
}

static int
create_run(void *state, cli_ctx *c)
{
	enroll_token_opts *o = state;
	lb_err err = { 0 };
	char *secret = NULL, exp[32];
	int64_t id = 0;
	int rc = 1;

	if (enroll_token_create(c->ca, c->db, o, &secret, &id, &err) == -1)
		return cli_fail(&err);
	core_time_fmt(time(NULL) + (o->ttl != 0 ? o->ttl : 7L * 24 * 3600),
	    exp, sizeof(exp));
	printf("token:    %" PRId64 "\n", id);
	printf("email:    %s\n", o->email);
	if (o->given_name != NULL)
		printf("name:     %s %s\n", o->given_name, o->surname);
	printf("profiles: %s\n", o->profiles != NULL ? o->profiles :
	    "smime-sign,smime-enc");
	printf("expires:  %s\n", exp);
	printf("%s\n", secret);
	if (fflush(stdout) != 0)
		fprintf(stderr, "lockbox: cannot write the token to standard "
		    "output: withdraw it with 'lockbox token withdraw %" PRId64
		    "'\n", id);
	else
		rc = 0;
	core_secret_free(secret);
	return rc;
}

static const struct option create_opts[] = {
	{ "email", required_argument, NULL, 'e' },
	{ "given-name", required_argument, NULL, 'g' },
	{ "surname", required_argument, NULL, 's' },
	{ "profiles", required_argument, NULL, 'p' },
	{ "ttl", required_argument, NULL, 't' },
	{ NULL, 0, NULL, 0 },
};
static const cli_sub create_sub = {
	"token create", create_help, create_opts, create_option, 0, 0, NULL,
	create_check, CLI_DB, create_run,
};

/* token list */

static int
list_one(const enroll_token_row *t, void *arg)
{
	char when[32];
	bool withdrawn = t->withdrawn != 0;

	(void)arg;
	core_time_fmt(withdrawn ? t->withdrawn : t->expires, when,
	    sizeof(when));
	printf("%" PRId64 "\t%s\t%s\t%s %s%s%s\t%s\n", t->id, t->email,
	    t->profiles, enroll_token_status(t, time(NULL)), when,
	    withdrawn ? " by " : "", withdrawn && t->withdrawn_by != NULL ?
	    t->withdrawn_by : "", t->created_by != NULL ? t->created_by : "");
	return 0;
}

static int
list_run(void *state, cli_ctx *c)
{
	lb_err err = { 0 };

	(void)state;
	if (enroll_token_list(c->db, list_one, NULL, &err) == -1)
		return cli_fail(&err);
	return 0;
}

static const cli_sub list_sub = {
	"token list", list_help, NULL, NULL, 0, 0, NULL, NULL, CLI_DB,
	list_run,
};

/* token withdraw ID, and its older name token revoke ID */

static int
withdraw_check(void *state, const cli_ctx *c)
{
	long long *id = state;
	char *end = NULL;

	*id = strtoll(c->argv[0], &end, 10);
	if (c->argv[0][0] == '\0' || *end != '\0' || *id <= 0)
		return cli_usage("token withdraw", "'%s' is not a token id",
		    c->argv[0]);
	return -1;
}

static int
withdraw_run(void *state, cli_ctx *c)
{
	long long *id = state;
	lb_err err = { 0 };

	if (enroll_token_withdraw(c->db, (int64_t)*id, cli_actor(),
	    &err) == -1)
		return cli_fail(&err);
	printf("token %lld withdrawn\n", *id);
	return 0;
}

static const cli_sub withdraw_sub = {
	"token withdraw", withdraw_help, NULL, NULL, 1, 1,
	"give one token id (see 'lockbox token list')", withdraw_check, CLI_DB,
	withdraw_run,
};
static const cli_sub revoke_sub = {
	"token revoke", withdraw_help, NULL, NULL, 1, 1,
	"give one token id (see 'lockbox token list')", withdraw_check, CLI_DB,
	withdraw_run,
};

int
cmd_token(int argc, char **argv)
{
	static const cli_sub *const subs[] = {
		&create_sub, &list_sub, &withdraw_sub, &revoke_sub,
	};
	enroll_token_opts create;
	long long id = 0;
	void *const states[] = { &create, NULL, &id, &id };

	memset(&create, 0, sizeof(create));
	return cli_dispatch("token", token_help, subs, states, 4, argc, argv);
}
