/*
 * cmd_crl.c - `lockbox crl`: issue a CRL now (no daemon needed: the CRL
 * number lives in the database, so the daemon and this command never
 * reuse one) and `lockbox crl status`: the last CRL and each publication
 * target's state.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "crl/crl.h"

static const char crl_help[] =
"usage: lockbox crl [--now] [--dir DIR]\n"
"       lockbox crl status [--json] [--dir DIR]\n"
"\n"
"Issues the full CRL of the CA now (--now says so explicitly) and\n"
"publishes it to DIR/pub/ca.crl, which 'lockbox serve' serves at\n"
"BASE_URL/ca.crl; prints its number, thisUpdate, nextUpdate and entries.\n"
"With a [directory] uri in lockbox.conf it then publishes the same CRL to\n"
"the CA's LDAP entry; if that fails, the CRL stays published on the web,\n"
"the error is recorded, and 'lockbox serve' retries until it succeeds.\n"
"The daemon issues CRLs by itself every [crl] interval (24h) and within\n"
"seconds of every revocation.\n"
"\n"
"'status' shows the last CRL and, per publication target (web, ldap),\n"
"the CRL number published there, when, and the last error.\n";

static const char status_help[] =
"usage: lockbox crl status [--json] [--dir DIR]\n"
"\n"
"Shows the last CRL issued (number, thisUpdate, nextUpdate, entries,\n"
"SHA-256) and, per publication target (web, ldap), the CRL number\n"
"published there, when, the last attempt and the last error.  --json\n"
"prints the same as JSON.\n";

static void
print_info(const crl_info *ci)
{
	char tu[32], nu[32];

	core_time_fmt(ci->this_update, tu, sizeof(tu));
	core_time_fmt(ci->next_update, nu, sizeof(nu));
	printf("number:      %" PRId64 "\nthisUpdate:  %s\nnextUpdate:  %s\n"
	    "entries:     %" PRId64 "\n", ci->number, tu, nu, ci->entries);
}

/* --now only says what `lockbox crl` does anyway */
static int
issue_option(void *state, int c, const char *arg)
{
	(void)state;
	(void)c;
	(void)arg;
	return -1;
}

static int
issue_run(void *state, cli_ctx *c)
{
	crl_conf cc;
	crl_info ci;
	lb_err err = { 0 };
	directory_ctx *d = NULL;

	(void)state;
	if (crl_conf_load(ca_get0_conf(c->ca), &cc, &err) == -1 ||
	    crl_issue(c->ca, c->db, &cc, time(NULL), cli_actor(), &ci,
	    &err) == -1)
		return cli_fail(&err);
	print_info(&ci);
	printf("published:   %s/%s/%s (%zu bytes)\n", ca_get0_dir(c->ca),
	    CA_PUB_DIR, CRL_FILE, ci.der_len);
	/* the web CRL is out: LDAP trouble is a warning, not a failure */
	lb_err_clear(&err);
	if ((d = directory_open_at(ca_get0_conf(c->ca), ca_get0_dir(c->ca),
	    &err)) == NULL) {
		if (err.code != LB_ENOTFOUND)
			fprintf(stderr, "lockbox: warning: CRL not published "
			    "to LDAP: %s\n", err.msg);
	} else if (crl_publish_ldap(c->ca, c->db, d, time(NULL), NULL, &err) ==
	    -1) {
		fprintf(stderr, "lockbox: warning: CRL not published to LDAP: "
		    "%s (recorded; 'lockbox serve' retries, or run 'lockbox "
		    "crl' again)\n", err.msg);
	} else {
		printf("ldap:        %s (%s)\n", directory_get0_ca_dn(d),
		    directory_get0_uri(d));
	}
	directory_free(d);
	return 0;
}

static const struct option issue_opts[] = {
	{ "now", no_argument, NULL, 'n' },
	{ NULL, 0, NULL, 0 },
};
static const cli_sub issue_sub = {
	"crl", crl_help, issue_opts, issue_option, 0, 0, NULL, NULL, CLI_KEY,
	issue_run,
};

struct status_state {
	bool json;
	json_t *targets;
	int shown;              /* text lines printed */
};

static int
status_one(const crl_publication *p, void *arg)
{
	struct status_state *s = arg;
	char pa[32] = "-", aa[32] = "-";
	json_t *o;

	if (p->published != 0)
		core_time_fmt(p->published, pa, sizeof(pa));
	if (p->attempted != 0)
		core_time_fmt(p->attempted, aa, sizeof(aa));
	if (!s->json) {
		printf("target %-5s number %" PRId64 ", published %s, last "
		    "attempt %s, %s%s\n", p->target, p->number, pa, aa,
		    p->last_error != NULL ? "last error: " : "ok",
		    p->last_error != NULL ? p->last_error : "");
		s->shown++;
		return 0;
	}
	/* published_at and attempted_at: the names before, kept beside */
	o = json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "target",
	    p->target, "number", (json_int_t)p->number, "published",
	    ca_json_time_or_null(p->published), "published_at",
	    ca_json_time_or_null(p->published), "attempted",
	    ca_json_time(p->attempted), "attempted_at",
	    ca_json_time(p->attempted), "last_error",
	    ca_json_str(p->last_error));
	return o == NULL || json_array_append_new(s->targets, o) == -1;
}

int
cli_crl_targets_print(sqlite3 *db, lb_err *err)
{
	struct status_state s = { false, NULL, 0 };

	if (crl_publication_foreach(db, status_one, &s, err) == -1)
		return -1;
	if (s.shown == 0)
		printf("no CRL published yet\n");
	return 0;
}

static int
status_option(void *state, int c, const char *arg)
{
	struct status_state *s = state;

	(void)arg;
	if (c == 'j')
		s->json = true;
	return -1;
}

static int
status_run(void *state, cli_ctx *c)
{
	struct status_state *s = state;
	crl_info ci;
	json_t *o = NULL;
	lb_err err = { 0 };
	int rc = 1;

	if (crl_current(c->db, &ci, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if (s->json) {
		if ((s->targets = json_array()) == NULL)
			goto out;
	} else if (ci.number == 0) {
		printf("no CRL issued yet: issue one with 'lockbox crl'\n");
	} else {
		print_info(&ci);
		printf("sha256:      %s\n", ci.sha256);
	}
	if (crl_publication_foreach(c->db, status_one, s, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if (s->json) {
		o = ci.number == 0 ? json_pack("{s:n, s:O}", "number",
		    "targets", s->targets) :
		    json_pack("{s:I, s:o, s:o, s:I, s:s, s:O}", "number",
		    (json_int_t)ci.number, "this_update",
		    ca_json_time(ci.this_update), "next_update",
		    ca_json_time(ci.next_update), "entries",
		    (json_int_t)ci.entries, "sha256", ci.sha256, "targets",
		    s->targets);
		if (o == NULL)
			goto out;
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	rc = 0;
out:
	json_decref(o);
	json_decref(s->targets);
	s->targets = NULL;
	return rc;
}

static const struct option status_opts[] = {
	{ "json", no_argument, NULL, 'j' },
	{ NULL, 0, NULL, 0 },
};
static const cli_sub status_sub = {
	"crl status", status_help, status_opts, status_option, 0, 0, NULL,
	NULL, CLI_DB, status_run,
};

/*
 * Not cli_dispatch: plain `lockbox crl` issues, so only "status" is a
 * word of its own and anything else is the issuing command's to judge.
 */
int
cmd_crl(int argc, char **argv)
{
	struct status_state s = { false, NULL, 0 };

	if (argc >= 2 && strcmp(argv[1], "status") == 0)
		return cli_run(&status_sub, &s, argc - 1, argv + 1);
	return cli_run(&issue_sub, NULL, argc, argv);
}
