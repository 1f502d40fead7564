/*
 * cmd_agent.c - `lockbox agent request|add|install|list|remove`: the
 * recovery agents.
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
"  remove    withdraws the role and revokes the credential; refused\n"
"            while it would leave an escrow record with fewer shares\n"
"            held by active agents than its threshold ('lockbox revoke\n"
"            --reason keyCompromise' always goes through, and warns)\n"
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
	int rc = 1;

	if (archive_agents_list(c->db, false, &agents, &n, &err) == -1) {
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
		printf("no recovery agents: an escrow policy needs at least 3 "
		    "(see 'lockbox agent --help')\n");
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
