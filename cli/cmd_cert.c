/*
 * cmd_cert.c - `lockbox revoke`, `lockbox list` and `lockbox show`: the
 * certificate store from the command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "archive/archive.h"
#include "cli/cli.h"

static const char revoke_help[] =
"usage: lockbox revoke SERIAL [--reason REASON] [--invalidity-date EPOCH]\n"
"                      [--dir DIR]\n"
"\n"
"Revokes the certificate with serial SERIAL (hex, as 'lockbox list' shows\n"
"it).  REASON is keyCompromise, affiliationChanged, superseded,\n"
"cessationOfOperation (default: no longer needed) or privilegeWithdrawn.\n"
"For keyCompromise, --invalidity-date names when the key is known or\n"
"suspected to have been compromised (seconds since the epoch).\n"
"\n"
"A recovery agent's credential is revoked only while every escrow record\n"
"it holds a share of stays recoverable by the active agents left (its\n"
"threshold of shares); keyCompromise always goes through, with a warning\n"
"naming the records to reshare.\n";

/* revoke SERIAL */

struct revoke_state {
	int reason;
	long long inv;
};

static int
revoke_option(void *state, int c, const char *arg)
{
	struct revoke_state *s = state;
	char *end;

	switch (c) {
	case 'r':
		if ((s->reason = ca_reason_parse(arg)) == -1)
			return cli_usage("revoke", "unknown reason '%s'", arg);
		break;
	case 'i':
		s->inv = strtoll(arg, &end, 10);
		if (*end != '\0' || s->inv <= 0)
			return cli_usage("revoke", "--invalidity-date needs "
			    "seconds since the epoch");
		break;
	}
	return -1;
}

static int
revoke_check(void *state, const cli_ctx *c)
{
	const struct revoke_state *s = state;

	(void)c;
	if (s->inv != 0 && s->reason != 1)
		return cli_usage("revoke", "--invalidity-date goes with "
		    "--reason keyCompromise");
	return -1;
}

static int
revoke_run(void *state, cli_ctx *c)
{
	const struct revoke_state *s = state;
	archive_leave_warning w = { "" };
	lb_err err = { 0 };

	if (ca_revoke_guarded(c->db, c->argv[0], s->reason, (time_t)s->inv,
	    cli_actor(), archive_agent_leave, &w, &err) == -1)
		return cli_fail(&err);
	printf("revoked %s (%s)\n", c->argv[0], ca_reason_name(s->reason));
	if (w.text[0] != '\0')
		fprintf(stderr, "lockbox revoke: warning: %s\n", w.text);
	return 0;
}

static const struct option revoke_opts[] = {
	{ "reason", required_argument, NULL, 'r' },
	{ "invalidity-date", required_argument, NULL, 'i' },
	{ NULL, 0, NULL, 0 },
};
static const cli_sub revoke_sub = {
	"revoke", revoke_help, revoke_opts, revoke_option, 1, 1,
	"exactly one SERIAL is required", revoke_check, CLI_DB, revoke_run,
};

int
cmd_revoke(int argc, char **argv)
{
	/* 5: cessationOfOperation, "no longer needed" */
	struct revoke_state s = { 5, 0 };

	return cli_run(&revoke_sub, &s, argc, argv);
}

/* list */

struct list_state {
	ca_cert_filter f;
	bool json;
	json_t *arr;
	int n;
};

static int
list_one(const ca_cert_info *ci, void *arg)
{
	struct list_state *ls = arg;
	char na[32];

	ls->n++;
	if (ls->json)
		return json_array_append_new(ls->arr,
		    ca_cert_info_json(ci, false));
	core_time_fmt(ci->not_after, na, sizeof(na));
	printf("%-34s %-14s %-10s %s  %s\n", ci->serial, ci->profile,
	    ci->status, na, ci->email ? ci->email : ci->subject);
	return 0;
}

static const char list_help[] =
"usage: lockbox list [--email A] [--profile P]\n"
"                    [--status valid|revoked|superseded|expired]\n"
"                    [--limit N] [--json]\n"
"                    [--dir DIR]\n"
"\n"
"Lists stored certificates, newest first: serial, profile, status, expiry\n"
"and e-mail (or subject).  --json prints a JSON array instead.\n";

static int
list_option(void *state, int c, const char *arg)
{
	struct list_state *ls = state;
	char *end;

	switch (c) {
	case 'e':
		ls->f.email = arg;
		break;
	case 'p':
		ls->f.profile = arg;
		break;
	case 's':
		if (!ca_cert_status_known(arg))
			return cli_usage("list", "--status is "
			    CA_CERT_STATUSES);
		ls->f.status = arg;
		break;
	case 'l':
		ls->f.limit = (int)strtol(arg, &end, 10);
		if (*end != '\0' || ls->f.limit <= 0)
			return cli_usage("list", "--limit needs a positive "
			    "number");
		break;
	case 'j':
		ls->json = true;
		break;
	}
	return -1;
}

static int
list_run(void *state, cli_ctx *c)
{
	struct list_state *ls = state;
	lb_err err = { 0 };
	int rc = 1;

	if (ls->json && (ls->arr = json_array()) == NULL)
		goto out;
	if (ca_cert_list(c->db, &ls->f, list_one, ls, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if (ls->json) {
		json_dumpf(ls->arr, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	rc = 0;
out:
	json_decref(ls->arr);
	ls->arr = NULL;
	return rc;
}

static const struct option list_opts[] = {
	{ "email", required_argument, NULL, 'e' },
	{ "profile", required_argument, NULL, 'p' },
	{ "status", required_argument, NULL, 's' },
	{ "limit", required_argument, NULL, 'l' },
	{ "json", no_argument, NULL, 'j' },
	{ NULL, 0, NULL, 0 },
};
static const cli_sub list_sub = {
	"list", list_help, list_opts, list_option, 0, 0, NULL, NULL, CLI_DB,
	list_run,
};

int
cmd_list(int argc, char **argv)
{
	struct list_state ls;

	memset(&ls, 0, sizeof(ls));
	return cli_run(&list_sub, &ls, argc, argv);
}

/* show SERIAL */

static const char show_help[] =
"usage: lockbox show SERIAL [--pem] [--json] [--dir DIR]\n"
"\n"
"Shows one stored certificate: serial, profile, subject, e-mail, validity,\n"
"status (and revocation time and reason).  --pem appends the certificate\n"
"in PEM; --json prints the same fields as JSON (with \"pem\").\n";

struct show_state {
	bool pem, json;
};

static int
show_option(void *state, int c, const char *arg)
{
	struct show_state *s = state;

	(void)arg;
	if (c == 'p')
		s->pem = true;
	else if (c == 'j')
		s->json = true;
	return -1;
}

static int
show_run(void *state, cli_ctx *c)
{
	const struct show_state *s = state;
	lb_err err = { 0 };
	ca_cert_info ci;
	X509 *x = NULL;
	BIO *bio = NULL;
	char nb[32], na[32], ra[32], *data;
	json_t *o = NULL;
	long len;
	int rc = 1;

	memset(&ci, 0, sizeof(ci));
	if (ca_cert_get(c->db, c->argv[0], &ci, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if ((x = ca_cert_parse(ci.der, ci.der_len, &err)) == NULL ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(bio, x) != 1) {
		rc = cli_fail(&err);
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	if (s->json) {
		if ((o = ca_cert_info_json(&ci, true)) == NULL)
			goto out;
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		rc = 0;
		goto out;
	}
	core_time_fmt(ci.not_before, nb, sizeof(nb));
	core_time_fmt(ci.not_after, na, sizeof(na));
	printf("serial:      %s\nprofile:     %s\nsubject:     %s\n"
	    "email:       %s\nnot before:  %s\nnot after:   %s\n"
	    "status:      %s\n", ci.serial, ci.profile, ci.subject,
	    ci.email ? ci.email : "-", nb, na, ci.status);
	if (ci.reason >= 0) {
		core_time_fmt(ci.revoked, ra, sizeof(ra));
		printf("revoked at:  %s\nreason:      %s\n", ra,
		    ca_reason_name(ci.reason));
	}
	if (s->pem)
		fwrite(data, 1, (size_t)len, stdout);
	rc = 0;
out:
	json_decref(o);
	BIO_free(bio);
	X509_free(x);
	ca_cert_info_clear(&ci);
	return rc;
}

static const struct option show_opts[] = {
	{ "pem", no_argument, NULL, 'p' },
	{ "json", no_argument, NULL, 'j' },
	{ NULL, 0, NULL, 0 },
};
static const cli_sub show_sub = {
	"show", show_help, show_opts, show_option, 1, 1,
	"exactly one SERIAL is required", NULL, CLI_DB, show_run,
};

int
cmd_show(int argc, char **argv)
{
	struct show_state s = { false, false };

	return cli_run(&show_sub, &s, argc, argv);
}
