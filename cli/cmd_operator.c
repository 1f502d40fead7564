/*
 * cmd_operator.c - `lockbox operator add|list|remove`: operator credentials
 * and their roles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "archive/archive.h"
#include "cli/cli.h"

static const char operator_help[] =
"usage: lockbox operator request --name N --email A --out-key KEY\n"
"                                --out-csr CSR [--pass-file P] [--key-type T]\n"
"       lockbox operator add --role ROLE --csr FILE --name N --email A\n"
"                            [--out FILE] [--dir DIR]\n"
"       lockbox operator install --cert CERT --key KEY --out-p12 FILE\n"
"                                [--pass-file P] [--ca-cert F]\n"
"       lockbox operator add --role ROLE --keygen --out-p12 FILE\n"
"                            --name N --email A [--key-type T]\n"
"                            [--p12-pass-file F] [--dir DIR]\n"
"       lockbox operator list [--json] [--dir DIR]\n"
"       lockbox operator remove ID|SERIAL [--dir DIR]\n"
"\n"
"Operators authenticate to the daemon with a client certificate of this\n"
"CA; their role is a row in the database.  ROLE is admin, officer,\n"
"recovery-officer, recovery-agent or auditor.  With role separation on\n"
"(the default), one e-mail may not hold both an issuing role (admin,\n"
"officer) and a recovery role (recovery-officer, recovery-agent).\n"
"\n"
"  request          (the operator, no CA needed) makes the key (default\n"
"                   ec-p256) on the operator's machine, encrypted under\n"
"                   the passphrase of --pass-file P (else typed) in KEY,\n"
"                   and the request CSR for 'add --csr'\n"
"  --csr FILE       certify the key of this PKCS#10 request (the key never\n"
"                   leaves the operator); PEM to --out or standard output\n"
"  install          (the operator) CERT and KEY into the PKCS#12 FILE,\n"
"                   under KEY's passphrase\n"
"  --keygen         generate the key here (--key-type, default ec-p256)\n"
"                   and write key, certificate and CA chain to the new\n"
"                   PKCS#12 --out-p12, protected by the passphrase in\n"
"                   --p12-pass-file (or typed).  Refused for the recovery\n"
"                   roles: their keys are made with 'request'\n"
"  remove           withdraws the role and revokes the credential\n"
"                   (privilegeWithdrawn)\n"
"\n"
"No file is overwritten.\n";

/* operator add (agent add: the role fixed) */

static int
add_option(void *state, int c, const char *arg)
{
	cli_operator_add_state *o = state;

	switch (c) {
	case 'r':
		if (o->fixed != CA_ROLE_NONE)
			return cli_usage(o->usage, "--role is implied here");
		if ((o->role = ca_role_parse(arg)) == CA_ROLE_NONE)
			return cli_usage(o->usage, "unknown role '%s'", arg);
		break;
	case 'c': o->csr = arg; break;
	case 'n': o->name = arg; break;
	case 'e': o->email = arg; break;
	case 'o': o->out = arg; break;
	case 'k': o->keygen = true; break;
	case 'P': o->p12 = arg; break;
	case 'f': o->p12_pass = arg; break;
	case 't':
		if ((o->kt = ca_key_type_parse(arg)) == CA_KEY_NONE)
			return cli_usage(o->usage, "unknown key type '%s'", arg);
		break;
	}
	return -1;
}

static int
add_check(void *state, const cli_ctx *c)
{
	cli_operator_add_state *o = state;

	(void)c;
	if (o->fixed != CA_ROLE_NONE)
		o->role = o->fixed;
	if (o->role == CA_ROLE_NONE)
		return cli_usage(o->usage, "--role is required");
	if (o->keygen == (o->csr != NULL))
		return cli_usage(o->usage, "give either --csr FILE or --keygen "
		    "--out-p12 FILE");
	if (o->keygen && o->p12 == NULL)
		return cli_usage(o->usage, "--keygen needs --out-p12 FILE");
	if (o->keygen && (o->role == CA_ROLE_RECOVERY_AGENT ||
	    o->role == CA_ROLE_RECOVERY_OFFICER))
		return cli_usage(o->usage, "--keygen is refused for a %s: the "
		    "key is made on its holder's machine with 'lockbox %s "
		    "request', then added here with --csr", ca_role_name(
		    o->role), o->role == CA_ROLE_RECOVERY_AGENT ? "agent" :
		    "operator");
	if (o->email == NULL)
		return cli_usage(o->usage, "--email is required");
	if (o->name == NULL)
		o->name = o->email;
	if (o->keygen && o->kt == CA_KEY_NONE)
		o->kt = o->role == CA_ROLE_RECOVERY_AGENT ? CA_KEY_RSA3072 :
		    CA_KEY_ECP256;
	return -1;
}

static int
add_run(void *state, cli_ctx *c)
{
	cli_operator_add_state *o = state;
	lb_err err = { 0 };
	unsigned char *buf = NULL;
	size_t len = 0;
	X509_REQ *csr = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	char *serial = NULL, *pass = NULL;
	int rc = 1;

	/* the new file and its passphrase before the key is certified */
	if (o->keygen && (ca_out_free(o->p12, &err) == -1 ||
	    (pass = ca_pass_new(o->p12_pass, o->p12, &err)) == NULL))
		goto fail;
	if (o->keygen ? (key = ca_keygen(o->kt, &err)) == NULL :
	    cli_read_input(o->csr, (size_t)64 * 1024, &buf, &len, &err) ==
	    -1 || (csr = ca_csr_parse(buf, len, &err)) == NULL)
		goto fail;
	if ((cert = ca_operator_add(c->ca, c->db, o->role, o->name, o->email,
	    o->keygen ? key : X509_REQ_get0_pubkey(csr), cli_actor(),
	    &err)) == NULL)
		goto fail;
	if (o->keygen ? ca_p12_write(o->p12, pass, key, cert,
	    ca_get0_chain(c->ca), o->name, CA_P12_MODERN, &err) == -1 :
	    cli_write_cert(o->out, cert, &err) == -1)
		goto fail;
	if ((serial = ca_cert_serial(cert)) != NULL)
		fprintf(o->keygen || o->out != NULL ? stdout : stderr,
		    "%s %s added as %s, credential serial %s\n", o->cmd,
		    o->email, ca_role_name(o->role), serial);
	rc = 0;
	goto out;
fail:
	rc = cli_fail(&err);
out:
	core_secret_free(pass);
	free(serial);
	EVP_PKEY_free(key);
	X509_free(cert);
	X509_REQ_free(csr);
	free(buf);
	return rc;
}

static const struct option add_opts[] = {
	{ "role", required_argument, NULL, 'r' },
	{ "csr", required_argument, NULL, 'c' },
	{ "name", required_argument, NULL, 'n' },
	{ "email", required_argument, NULL, 'e' },
	{ "out", required_argument, NULL, 'o' },
	{ "keygen", no_argument, NULL, 'k' },
	{ "key-type", required_argument, NULL, 't' },
	{ "out-p12", required_argument, NULL, 'P' },
	{ "p12-pass-file", required_argument, NULL, 'f' },
	{ NULL, 0, NULL, 0 },
};

cli_sub
cli_operator_add_sub(const char *name, const char *help)
{
	cli_sub s = { name, help, add_opts, add_option, 0, 0, NULL,
	    add_check, CLI_KEY, add_run };

	return s;
}

/* operator remove, agent remove */

static int
remove_run(void *state, cli_ctx *c)
{
	lb_err err = { 0 };

	(void)state;
	if (ca_operator_remove_guarded(c->db, c->argv[0], cli_actor(),
	    archive_agent_leave, NULL, &err) == -1)
		return cli_fail(&err);
	printf("operator %s removed; its credential is revoked\n",
	    c->argv[0]);
	return 0;
}

cli_sub
cli_operator_remove_sub(const char *name, const char *help)
{
	cli_sub s = { name, help, NULL, NULL, 1, 1, "needs one ID or "
	    "SERIAL", NULL, CLI_DB, remove_run };

	return s;
}

/* operator list */

static int
list_one(const ca_operator *op, void *arg)
{
	json_t *arr = arg;
	char na[32];

	core_time_fmt(op->not_after, na, sizeof(na));
	if (arr != NULL)
		return json_array_append_new(arr, json_pack(
		    "{s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "id",
		    (json_int_t)op->id, "name", op->name, "email", op->email,
		    "role", op->role, "status", op->status, "serial",
		    op->serial, "not_after", na));
	printf("%-4lld %-16s %-8s %-34s %s  %s <%s>\n", (long long)op->id,
	    op->role, op->status, op->serial, na, op->name, op->email);
	return 0;
}

static int
list_run(void *state, cli_ctx *c)
{
	json_t *arr = NULL;
	lb_err err = { 0 };

	if (*(bool *)state && (arr = json_array()) == NULL)
		return 1;
	if (ca_operator_list(c->db, list_one, arr, &err) == -1) {
		json_decref(arr);
		return cli_fail(&err);
	}
	if (arr != NULL) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	json_decref(arr);
	return 0;
}

int
cmd_operator(int argc, char **argv)
{
	cli_operator_add_state add = { .cmd = "operator",
	    .usage = "operator add" };
	cli_cred_state req = { .cmd = "operator", .usage = "operator request",
	    .role_hint = " --role ROLE", .kt_default = CA_KEY_ECP256 };
	cli_cred_state inst = { .cmd = "operator",
	    .usage = "operator install" };
	bool json = false;
	const cli_sub list = { "operator list", operator_help, cli_json_opts,
	    cli_json_option, 0, 0, NULL, NULL, CLI_DB, list_run };
	const cli_sub adds = cli_operator_add_sub("operator add",
	    operator_help);
	const cli_sub removes = cli_operator_remove_sub("operator remove",
	    operator_help);
	const cli_sub requests = cli_cred_request_sub("operator request",
	    operator_help);
	const cli_sub installs = cli_cred_install_sub("operator install",
	    operator_help);
	const cli_sub *const subs[] = { &requests, &adds, &installs, &list,
	    &removes };
	void *const states[] = { &req, &add, &inst, &json, NULL };

	return cli_dispatch("operator", operator_help, subs, states, 5, argc,
	    argv);
}
