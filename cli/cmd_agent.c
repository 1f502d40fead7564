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
"usage: lockbox agent request --name N --email A --out-key KEY --out-csr CSR\n"
"                             [--pass-file P] [--key-type rsa-3072|rsa-4096]\n"
"       lockbox agent add --csr FILE --name N --email A [--out FILE]\n"
"       lockbox agent install --cert CERT --key KEY --out-p12 FILE\n"
"                             [--pass-file P] [--ca-cert F]\n"
"       lockbox agent list [--json]\n"
"       lockbox agent remove ID|SERIAL\n"
"       (each takes --dir DIR)\n"
"\n"
"Recovery agents hold the shares of every escrowed key: M of them together\n"
"(see 'lockbox escrow policy') can restore a lost encryption key, none\n"
"alone can, so each agent makes the key on the agent's own machine:\n"
"\n"
"  request   (the agent, no CA needed) makes the key (RSA-3072 unless\n"
"            --key-type), written to KEY encrypted under the agent's\n"
"            passphrase (--pass-file P, else typed), and the request CSR\n"
"  add       (the administrator) issues the recovery-agent certificate\n"
"            (RSA >= 3072, EKU clientAuth + key recovery agent) for the\n"
"            CSR and registers the agent; PEM to --out or standard output\n"
"  install   (the agent) checks that CERT is KEY's certificate and writes\n"
"            both (and --ca-cert's chain) to the PKCS#12 FILE under the\n"
"            same passphrase: the --cred of the recovery commands\n"
"  list      each agent's credential expiry, with a warning 60 days ahead\n"
"  remove    withdraws the role and revokes the credential; existing\n"
"            escrows stay recoverable by the other agents\n"
"\n"
"No file is overwritten.  'add --keygen' is refused for agents: a key made\n"
"on the CA's host could be kept by its administrator.\n";

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
list_run(void *state, cli_ctx *c)
{
	struct list_state ls = { NULL, 0, 0 };
	archive_agent *agents = NULL;
	size_t n = 0, i;
	lb_err err = { 0 };
	int rc = 1, threshold = 0;

	if (archive_agents_list(c->db, false, &agents, &n, &err) == -1 ||
	    archive_threshold_get(c->db, &threshold, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	ls.now = time(NULL);
	if (*(bool *)state && (ls.arr = json_array()) == NULL)
		goto out;
	for (i = 0; i < n; i++)
		list_one(&agents[i], &ls);
	if (ls.arr != NULL) {
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
	return rc;
}

int
cmd_agent(int argc, char **argv)
{
	cli_operator_add_state add = { .fixed = CA_ROLE_RECOVERY_AGENT,
	    .cmd = "agent", .usage = "agent add" };
	cli_cred_state req = { .cmd = "agent", .usage = "agent request",
	    .role_hint = "", .kt_default = CA_KEY_RSA3072 };
	cli_cred_state inst = { .cmd = "agent", .usage = "agent install" };
	bool json = false;
	const cli_sub list = { "agent list", agent_help, cli_json_opts,
	    cli_json_option, 0, 0, NULL, NULL, CLI_DB, list_run };
	const cli_sub adds = cli_operator_add_sub("agent add", agent_help);
	const cli_sub removes = cli_operator_remove_sub("agent remove",
	    agent_help);
	const cli_sub requests = cli_cred_request_sub("agent request",
	    agent_help);
	const cli_sub installs = cli_cred_install_sub("agent install",
	    agent_help);
	const cli_sub *const subs[] = { &requests, &adds, &installs, &list,
	    &removes };
	void *const states[] = { &req, &add, &inst, &json, NULL };

	return cli_dispatch("agent", agent_help, subs, states, 5, argc, argv);
}

static const char escrow_help[] =
"usage: lockbox escrow policy [--threshold M] [--dir DIR]\n"
"\n"
"Shows the key escrow policy, or with --threshold sets M: how many\n"
"recovery agents together must approve a recovery (default 2).  New\n"
"escrows are split into one share per active agent; issuing an encryption\n"
"certificate with fewer active agents than M fails.  Existing escrows keep\n"
"the threshold they were made with.\n";

static int
policy_option(void *state, int c, const char *arg)
{
	long *m = state;
	char *end;

	(void)c;
	*m = strtol(arg, &end, 10);
	if (*end != '\0' || *m < 1 || *m > ARCHIVE_MAX_AGENTS)
		return cli_usage("escrow policy", "--threshold must be 1 to %d",
		    ARCHIVE_MAX_AGENTS);
	return -1;
}

static int
policy_run(void *state, cli_ctx *c)
{
	long m = *(long *)state;
	archive_agent *agents = NULL;
	size_t n = 0;
	int threshold, rc = 1;
	lb_err err = { 0 };

	if ((m > 0 && archive_threshold_set(c->db, (int)m, cli_actor(),
	    &err) == -1) ||
	    archive_threshold_get(c->db, &threshold, &err) == -1 ||
	    archive_agents_list(c->db, true, &agents, &n, &err) == -1) {
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
	return rc;
}

static const struct option policy_opts[] = {
	{ "threshold", required_argument, NULL, 't' },
	{ NULL, 0, NULL, 0 },
};

static const cli_sub policy_sub = { "escrow policy", escrow_help,
	policy_opts, policy_option, 0, 0, NULL, NULL, CLI_DB, policy_run };

int
cmd_escrow(int argc, char **argv)
{
	static const cli_sub *const subs[] = { &policy_sub };
	long m = 0;
	void *const states[] = { &m };

	return cli_dispatch("escrow", escrow_help, subs, states, 1, argc,
	    argv);
}
