/*
 * cmd_escrow.c - `lockbox escrow policy [propose|sign|withdraw]` and
 * `lockbox escrow audit`: the
 * escrow policy is a document its members sign.  The administrator
 * proposes (locally, on the CA's database); each member signs from the
 * member's own machine with the member's own credential, over HTTPS, or
 * on the CA's host with --dir; the members' clients keep their pins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "archive/archive.h"
#include "cli/cli.h"
#include "cli/http.h"

static const char escrow_help[] =
"usage: lockbox escrow policy [--dir DIR]\n"
"       lockbox escrow policy propose --threshold M [--agents EMAIL,...]\n"
"                                     [--officers EMAIL,...] [--dir DIR]\n"
"       lockbox escrow policy sign HASH --cred FILE.p12 [--cred-pass-file F]\n"
"                                  (--server URL --ca-cert F | --dir DIR)\n"
"                                  [--home DIR] [--trust-policy HASH] [--yes]\n"
"       lockbox escrow policy withdraw HASH [--dir DIR]\n"
"       lockbox escrow audit --cred FILE.p12 [--cred-pass-file F]\n"
"                            (--server URL --ca-cert F | --dir DIR)\n"
"                            [--home DIR] [--trust-policy HASH] [--all]\n"
"       lockbox escrow status [--dir DIR]\n"
"\n"
"The escrow policy says how many recovery agents together (the threshold\n"
"M) can restore an escrowed key, which agents hold the shares and which\n"
"recovery officers may ask.  It is a document its members sign, never a\n"
"setting: 2 <= M, and at least M + 1 agents.  Until a policy is in force,\n"
"no encryption certificate (smime-enc) is issued; every escrow goes to\n"
"exactly the agents of the policy in force and records its hash.\n"
"\n"
"  (none)    shows the policy in force (policy vN: threshold M of N\n"
"            agents), its hash, members and signers, and any proposal\n"
"  propose   (administrator) proposes a policy after the one in force:\n"
"            threshold M, the agents and officers named (default: every\n"
"            active agent and recovery officer).  Prints the document and,\n"
"            alone on the last line, its hash: read it out to the members.\n"
"            'escrow policy --threshold M' proposes too.\n"
"  sign      (each member, on the member's machine) fetches the proposal,\n"
"            refuses it unless its document hashes to HASH, shows it and\n"
"            signs it with --cred.  The first policy needs every member it\n"
"            names; a later one M agents of the policy in force and every\n"
"            member it adds.  The client keeps a pin in --home (default\n"
"            ~/.lockbox): the first policy it signed, the newest it\n"
"            verified; it signs only what follows its pin.  Without a pin\n"
"            it signs only a proposal naming its own key, unless given\n"
"            --trust-policy HASH (from another member, never the server).\n"
"            Asks for confirmation on a terminal (--yes skips it).\n"
"  withdraw  (administrator) withdraws the pending proposal\n"
"  audit     (each member, from time to time) verifies the policies from\n"
"            the pin, then checks every record escrowed since this client's\n"
"            last clean audit (--all: every record): it names a policy the\n"
"            pin verifies, has its threshold, and its shares go to exactly\n"
"            its agents - read from the CMS recipients and the keys of\n"
"            their certificates; a share filed under your own key must\n"
"            decrypt with it.  Each record that does not is printed\n"
"            ('mismatch: ...') and the exit code is 1.\n"
"  status    the escrow records by the policy they were made under, how\n"
"            many of them the active agents can recover (the threshold of\n"
"            shares held by agents whose credentials are valid), and the\n"
"            records they cannot; records made before any signed policy\n"
"            count as exposed.\n"
"\n"
"A policy has one successor: a second proposal after the same policy is\n"
"refused while the first is pending.\n";

struct eopts {
	long threshold;
	const char *agents, *officers;
	const char *server, *ca_cert, *cred, *cred_pass, *home, *trust;
	bool yes, all;
	const char *hash;
};

static int
escrow_option(void *state, int c, const char *arg)
{
	struct eopts *o = state;
	char *end;

	switch (c) {
	case 't':
		o->threshold = strtol(arg, &end, 10);
		if (*end != '\0' || end == arg || o->threshold < 2 ||
		    o->threshold > ARCHIVE_MAX_AGENTS - 1)
			return cli_usage("escrow policy", "--threshold must be "
			    "2 to %d (one agent alone is never enough)",
			    ARCHIVE_MAX_AGENTS - 1);
		break;
	case 'a': o->agents = arg; break;
	case 'o': o->officers = arg; break;
	case 'S': o->server = arg; break;
	case 'C': o->ca_cert = arg; break;
	case 'c': o->cred = arg; break;
	case 'p': o->cred_pass = arg; break;
	case 'H': o->home = arg; break;
	case 'T': o->trust = arg; break;
	case 'y': o->yes = true; break;
	case 'A': o->all = true; break;
	}
	return -1;
}

/* ------------------------------------------------------------------ */
/* Showing                                                             */

static bool
has_signed(const archive_chain_link *l, const char *spki)
{
	size_t i;

	for (i = 0; i < l->nsigs; i++)
		if (strcmp(l->sigs[i].spki, spki) == 0)
			return true;
	return false;
}

static void
print_members(const archive_chain_link *l)
{
	const archive_policy_member *m;
	size_t i;

	for (i = 0; i < l->p.nmembers; i++) {
		m = &l->p.members[i];
		printf("  %-7s %s %s <%s>%s\n", m->role == ARCHIVE_MEMBER_AGENT ?
		    "agent" : "officer", m->spki, m->name, m->email,
		    has_signed(l, m->spki) ? "  (signed)" : "");
	}
}

static void
print_signers(const archive_chain_link *l)
{
	size_t i;

	printf("  signers:");
	for (i = 0; i < l->nsigs; i++)
		printf("%s %s", i == 0 ? "" : ",", l->sigs[i].email);
	printf("%s\n", l->nsigs == 0 ? " none yet" : "");
}

static int
show_run(void *state, cli_ctx *c)
{
	struct eopts *o = state;
	archive_chain ch;
	const archive_chain_link *cur = NULL, *pend = NULL;
	lb_err err = { 0 };
	char **old = NULL;
	size_t i, nold = 0;

	if (o->threshold != 0)
		return -2;      /* cmd_escrow turns it into a proposal */
	if (archive_chain_load(c->db, &ch, &err) == -1)
		return cli_fail(&err);
	for (i = 0; i < ch.n; i++) {
		if (strcmp(ch.links[i].status, "in_force") == 0)
			cur = &ch.links[i];
		else if (strcmp(ch.links[i].status, "proposed") == 0)
			pend = &ch.links[i];
	}
	if (cur != NULL) {
		printf("policy v%d: threshold %d of %zu agents\n  hash: %s\n",
		    cur->p.version, cur->p.threshold, archive_policy_count(
		    &cur->p, ARCHIVE_MEMBER_AGENT), cur->p.hash);
		print_members(cur);
		print_signers(cur);
	} else {
		printf("no escrow policy in force: no encryption certificate "
		    "can be issued until one is (see 'lockbox escrow policy "
		    "propose')\n");
	}
	if (archive_escrow_before_policy(c->db, &old, &nold, &err) == -1) {
		archive_chain_clear(&ch);
		return cli_fail(&err);
	}
	if (nold > 0) {
		printf("exposed: %zu escrow record(s) made before any signed "
		    "policy (an upgrade): their agents never proved their keys "
		    "their own (an older 'agent add --keygen' left them with the "
		    "administrator); count them exposed until re-escrowed:",
		    nold);
		for (i = 0; i < nold; i++) {
			printf(" %s", old[i]);
			free(old[i]);
		}
		putchar('\n');
		free(old);
	}
	if (pend != NULL) {
		printf("pending: proposal v%d: threshold %d of %zu agents\n"
		    "  hash: %s\n", pend->p.version, pend->p.threshold,
		    archive_policy_count(&pend->p, ARCHIVE_MEMBER_AGENT),
		    pend->p.hash);
		print_members(pend);
		print_signers(pend);
	}
	archive_chain_clear(&ch);
	return 0;
}

/* ------------------------------------------------------------------ */
/* status                                                              */

static int
status_run(void *state, cli_ctx *c)
{
	archive_chain ch;
	archive_status st;
	const archive_status_policy *p;
	lb_err err = { 0 };
	long all = 0, ok = 0;
	size_t i, k;
	int version;

	(void)state;
	if (archive_chain_load(c->db, &ch, &err) == -1)
		return cli_fail(&err);
	if (archive_escrow_status(c->db, &st, &err) == -1) {
		archive_chain_clear(&ch);
		return cli_fail(&err);
	}
	for (i = 0; i < st.npolicies; i++) {
		all += st.policies[i].records;
		ok += st.policies[i].recoverable;
	}
	printf("escrow records: %ld, recoverable by the active agents: %ld\n",
	    all, ok);
	for (i = 0; i < st.npolicies; i++) {
		p = &st.policies[i];
		version = 0;
		for (k = 0; k < ch.n; k++)
			if (strcmp(ch.links[k].p.hash, p->hash) == 0)
				version = ch.links[k].p.version;
		if (p->hash[0] == '\0')
			printf("before any signed policy: ");
		else if (version > 0)
			printf("policy v%d (%.16s): ", version, p->hash);
		else
			printf("policy %.16s (not in the chain): ", p->hash);
		printf("%ld record(s), %ld recoverable by the active agents%s\n",
		    p->records, p->recoverable, p->hash[0] == '\0' ? "; all "
		    "exposed until re-escrowed (see 'lockbox escrow policy')" :
		    "");
		if (p->nlost == 0)
			continue;
		printf("  not recoverable (fewer shares held by active agents "
		    "than the threshold):");
		for (k = 0; k < p->nlost; k++)
			printf(" %s", p->lost[k]);
		if (p->records - p->recoverable > (long)p->nlost)
			printf(" and %ld more", p->records - p->recoverable -
			    (long)p->nlost);
		putchar('\n');
	}
	archive_status_clear(&st);
	archive_chain_clear(&ch);
	return 0;
}

/* ------------------------------------------------------------------ */
/* propose, withdraw                                                   */

/* "a,b,c" into a NULL-terminated array of strings (in buf). */
static char **
split_list(const char *s, char **buf, size_t *n)
{
	char **v, *p, *save = NULL;
	size_t cap = 1;

	*n = 0;
	for (p = (char *)s; *p != '\0'; p++)
		cap += *p == ',';
	if ((*buf = strdup(s)) == NULL ||
	    (v = calloc(cap + 1, sizeof(*v))) == NULL)
		return NULL;
	for (p = strtok_r(*buf, ",", &save); p != NULL;
	    p = strtok_r(NULL, ",", &save))
		v[(*n)++] = p;
	return v;
}

static int
propose_check(void *state, const cli_ctx *c)
{
	struct eopts *o = state;

	(void)c;
	if (o->threshold == 0)
		return cli_usage("escrow policy propose", "--threshold M is "
		    "required");
	return -1;
}

static int
propose_run(void *state, cli_ctx *c)
{
	struct eopts *o = state;
	archive_policy p;
	char *abuf = NULL, *obuf = NULL, **av = NULL, **ov = NULL;
	size_t na = 0, no = 0;
	lb_err err = { 0 };
	int rc = 1;

	if ((o->agents != NULL && (av = split_list(o->agents, &abuf,
	    &na)) == NULL) || (o->officers != NULL && (ov = split_list(
	    o->officers, &obuf, &no)) == NULL)) {
		fprintf(stderr, "lockbox: out of memory\n");
		goto out;
	}
	if (archive_policy_propose(c->db, (int)o->threshold,
	    (const char *const *)av, na, (const char *const *)ov, no,
	    cli_actor(), &p, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	fwrite(p.doc, 1, p.doc_len, stdout);
	printf("\nproposal v%d: threshold %d of %zu agents; it comes into "
	    "force once %s signed it with 'lockbox escrow policy sign HASH'.\n"
	    "Read this hash out to them:\n%s\n", p.version, p.threshold,
	    archive_policy_count(&p, ARCHIVE_MEMBER_AGENT), p.version == 1 ?
	    "every member has" : "the threshold of the current agents and "
	    "every new member have", p.hash);
	archive_policy_clear(&p);
	rc = 0;
out:
	free(av);
	free(ov);
	free(abuf);
	free(obuf);
	return rc;
}

static int
hash_check(void *state, const cli_ctx *c)
{
	struct eopts *o = state;

	o->hash = c->argv[0];
	if (!archive_policy_hash_valid(o->hash))
		return cli_usage("escrow policy", "'%s' is not a policy hash "
		    "(64 lowercase hex digits)", o->hash);
	return -1;
}

static int
withdraw_run(void *state, cli_ctx *c)
{
	struct eopts *o = state;
	lb_err err = { 0 };

	if (archive_policy_withdraw(c->db, o->hash, cli_actor(), &err) == -1)
		return cli_fail(&err);
	printf("proposal %s withdrawn\n", o->hash);
	return 0;
}

/* ------------------------------------------------------------------ */
/* sign                                                                */

/* A member's connection: --cred, and --server with --ca-cert or --dir. */
static int
member_check(const char *cmd, struct eopts *o, const cli_ctx *c)
{
	if (o->cred == NULL)
		return cli_usage(cmd, "--cred FILE.p12 is required");
	if ((o->server == NULL) == (c->dir_opt == NULL))
		return cli_usage(cmd, "give --server URL --ca-cert F, or --dir "
		    "DIR on the CA's host");
	if (o->server != NULL && (o->ca_cert == NULL ||
	    strncmp(o->server, "https://", 8) != 0))
		return cli_usage(cmd, "--server must be an https:// URL, with "
		    "--ca-cert");
	if (o->trust != NULL && !archive_policy_hash_valid(o->trust))
		return cli_usage(cmd, "--trust-policy takes a policy hash (64 "
		    "lowercase hex digits)");
	return -1;
}

static int
sign_check(void *state, const cli_ctx *c)
{
	int rc;

	if ((rc = hash_check(state, c)) != -1)
		return rc;
	return member_check("escrow policy sign", state, c);
}

static int
audit_check(void *state, const cli_ctx *c)
{
	return member_check("escrow audit", state, c);
}

static bool
sign_confirm(void *arg, const archive_policy *p, const archive_policy *prev,
    const char *own)
{
	const struct eopts *o = arg;
	const archive_policy_member *m, *was;
	char line[16];
	size_t i;

	printf("Escrow policy proposal v%d\n  hash:      %s\n  threshold: %d "
	    "of %zu agents\n  previous:  %s\n", p->version, p->hash,
	    p->threshold, archive_policy_count(p, ARCHIVE_MEMBER_AGENT),
	    prev != NULL ? prev->hash : "none (the first policy)");
	if (prev != NULL)
		printf("  (replaces v%d: threshold %d of %zu agents)\n",
		    prev->version, prev->threshold, archive_policy_count(prev,
		    ARCHIVE_MEMBER_AGENT));
	for (i = 0; i < p->nmembers; i++) {
		m = &p->members[i];
		was = prev != NULL ? archive_policy_member_find(prev, m->spki) :
		    NULL;
		printf("  %-7s %s %s <%s>%s%s\n", m->role ==
		    ARCHIVE_MEMBER_AGENT ? "agent" : "officer", m->spki, m->name,
		    m->email, strcmp(m->spki, own) == 0 ? "  (you)" : "",
		    prev != NULL && (was == NULL || was->role != m->role) ?
		    "  (added)" : "");
	}
	for (i = 0; prev != NULL && i < prev->nmembers; i++)
		if (archive_policy_member_find(p, prev->members[i].spki) == NULL)
			printf("  removed %s <%s>\n", prev->members[i].name,
			    prev->members[i].email);
	fflush(stdout);
	if (o->yes || !isatty(STDIN_FILENO))
		return true;
	fputs("Sign? [y/N] ", stdout);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return false;
	return strcasecmp(line, "y\n") == 0 || strcasecmp(line, "yes\n") == 0;
}

static int
http_api(void *h, const char *method, const char *path, json_t *body,
    core_http_reply *r, lb_err *err)
{
	return cli_http_api(h, method, path, body, r, err);
}

/* Runs step with the member's transport: over HTTPS, or the CA's own
 * database with --dir; the exit code. */
static int
with_member(struct eopts *o, cli_ctx *c, int (*step)(struct eopts *,
    const archive_transport *, const char *, lb_err *))
{
	archive_policy_local local = { c->db, cli_actor() };
	archive_transport t;
	cli_http *h = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char *home = NULL;
	lb_err err = { 0 };
	int rc = 1;

	if ((home = cli_user_dir(o->home, ".lockbox", "the policy pin",
	    &err)) == NULL)
		return cli_fail(&err);
	if (o->server != NULL) {
		if ((h = cli_http_new(o->server, o->ca_cert, o->cred,
		    o->cred_pass, &err)) == NULL)
			goto fail;
		t = (archive_transport){ h, http_api, cli_http_get0_key(h),
		    cli_http_get0_cert(h) };
	} else {
		if (ca_p12_read(o->cred, o->cred_pass, &key, &cert, NULL,
		    &err) == -1)
			goto fail;
		t = (archive_transport){ &local, archive_policy_local_api, key,
		    cert };
	}
	rc = step(o, &t, home, &err);
	if (rc == -1)
		goto fail;
	goto out;
fail:
	rc = cli_fail(&err);
out:
	cli_http_free(h);
	EVP_PKEY_free(key);
	X509_free(cert);
	free(home);
	return rc;
}

static int
sign_step(struct eopts *o, const archive_transport *t, const char *home,
    lb_err *err)
{
	archive_policy_review rv = { o, sign_confirm };
	bool in_force = false;

	if (archive_client_policy_sign(t, home, o->hash, o->trust, &rv,
	    &in_force, err) == -1)
		return -1;
	printf("signed escrow policy %s%s\n", o->hash, in_force ?
	    ": it is now in force" : "; it comes into force once the others "
	    "have signed");
	/* and what was escrowed meanwhile: reported, not fatal */
	(void)cli_escrow_audit_note(t, home, o->trust);
	return 0;
}

static int
sign_run(void *state, cli_ctx *c)
{
	return with_member(state, c, sign_step);
}

int
cli_escrow_audit_note(const archive_transport *t, const char *home,
    const char *trust)
{
	archive_audit a;
	lb_err err = { 0 };
	size_t i, n;

	if (archive_client_audit(t, home, trust, false, &a, &err) == -1) {
		/* no pin yet, or no policy: nothing this client can audit */
		if (err.code != LB_ENOTFOUND)
			fprintf(stderr, "lockbox: warning: escrow audit: %s\n",
			    err.msg);
		return err.code == LB_ENOTFOUND ? 0 : -1;
	}
	for (i = 0; i < a.nproblems; i++)
		fprintf(stderr, "lockbox: warning: escrow audit: mismatch: %s\n",
		    a.problems[i]);
	n = a.nproblems;
	archive_audit_clear(&a);
	return (int)n;
}

static int
audit_step(struct eopts *o, const archive_transport *t, const char *home,
    lb_err *err)
{
	archive_audit a;
	size_t i;

	if (archive_client_audit(t, home, o->trust, o->all, &a, err) == -1)
		return -1;
	for (i = 0; i < a.nproblems; i++)
		printf("mismatch: %s\n", a.problems[i]);
	printf("escrow audit: %zu record(s) checked, %zu of your own shares "
	    "decrypted, %zu mismatch(es)", a.records, a.own_shares,
	    a.nproblems);
	if (a.unsigned_before > 0)
		printf("; %zu escrowed before any signed policy (an upgrade)",
		    a.unsigned_before);
	if (a.before_pin > 0)
		printf("; %zu under policies older than this client's pin",
		    a.before_pin);
	putchar('\n');
	i = a.nproblems;
	archive_audit_clear(&a);
	return i > 0 ? 1 : 0;
}

static int
audit_run(void *state, cli_ctx *c)
{
	return with_member(state, c, audit_step);
}

/* ------------------------------------------------------------------ */
/* The subcommands                                                     */

#define OPT(name, has_arg, c) { name, has_arg, NULL, c }
static const struct option show_opts[] = {
	OPT("threshold", required_argument, 't'), OPT(NULL, 0, 0) };
static const struct option propose_opts[] = {
	OPT("threshold", required_argument, 't'),
	OPT("agents", required_argument, 'a'),
	OPT("officers", required_argument, 'o'), OPT(NULL, 0, 0) };
/* A member's connection and pin. */
#define MEMBER_OPTS OPT("server", required_argument, 'S'), \
	OPT("ca-cert", required_argument, 'C'), \
	OPT("cred", required_argument, 'c'), \
	OPT("cred-pass-file", required_argument, 'p'), \
	OPT("home", required_argument, 'H'), \
	OPT("trust-policy", required_argument, 'T')
static const struct option sign_opts[] = { MEMBER_OPTS,
	OPT("yes", no_argument, 'y'), OPT(NULL, 0, 0) };
static const struct option audit_opts[] = { MEMBER_OPTS,
	OPT("all", no_argument, 'A'), OPT(NULL, 0, 0) };
static const struct option none_opts[] = { OPT(NULL, 0, 0) };

#define ONE_HASH 1, 1, "needs one policy hash"

/* With --dir a member works on the CA's own database. */
static bool
has_dir(int argc, char **argv, int from)
{
	int k;

	for (k = from; k < argc; k++)
		if (strcmp(argv[k], "--dir") == 0 ||
		    strncmp(argv[k], "--dir=", 6) == 0)
			return true;
	return false;
}

int
cmd_escrow(int argc, char **argv)
{
	static const cli_sub show = { "escrow policy", escrow_help, show_opts,
	    escrow_option, 0, 0, NULL, NULL, CLI_DB, show_run };
	static const cli_sub subs[] = {
		{ "escrow policy propose", escrow_help, propose_opts,
		    escrow_option, 0, 0, NULL, propose_check, CLI_DB,
		    propose_run },
		{ "escrow policy sign", escrow_help, sign_opts, escrow_option,
		    ONE_HASH, sign_check, CLI_NONE, NULL },
		{ "escrow policy withdraw", escrow_help, none_opts,
		    escrow_option, ONE_HASH, hash_check, CLI_DB, withdraw_run },
	};
	cli_sub sign = subs[1];
	struct eopts o;
	size_t i;
	int rc;

	memset(&o, 0, sizeof(o));
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(escrow_help, stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "status") == 0) {
		static const cli_sub status = { "escrow status", escrow_help,
		    none_opts, escrow_option, 0, 0, NULL, NULL, CLI_DB,
		    status_run };

		return cli_run(&status, &o, argc - 1, argv + 1);
	}
	if (argc >= 2 && strcmp(argv[1], "audit") == 0) {
		cli_sub audit = { "escrow audit", escrow_help, audit_opts,
		    escrow_option, 0, 0, NULL, audit_check, CLI_NONE,
		    audit_run };

		audit.open = has_dir(argc, argv, 2) ? CLI_DB : CLI_NONE;
		return cli_run(&audit, &o, argc - 1, argv + 1);
	}
	if (argc < 2 || strcmp(argv[1], "policy") != 0)
		return cli_usage("escrow", "expected policy, status or audit");
	for (i = 0; argc >= 3 && i < sizeof(subs) / sizeof(subs[0]); i++)
		if (strcmp(argv[2], strrchr(subs[i].name, ' ') + 1) == 0) {
			if (i != 1)
				return cli_run(&subs[i], &o, argc - 2, argv + 2);
			if (has_dir(argc, argv, 3))
				sign.open = CLI_DB;
			sign.run = sign_run;
			return cli_run(&sign, &o, argc - 2, argv + 2);
		}
	rc = cli_run(&show, &o, argc - 1, argv + 1);
	if (rc != -2)
		return rc;
	/* `escrow policy --threshold M`: a proposal, never a change */
	return cli_run(&subs[0], &o, argc - 1, argv + 1);
}
