/*
 * cmd_recovery.c - `lockbox recovery request|pending|show|approve|deny|
 * fetch`: the M-of-N recovery workflow from the operators' side, over
 * HTTPS (cli/http.c), maps the command line to one call of archive's
 * client (archive/client.c) and prints the result.  The secrets stay on
 * the operators' machines: the officer's client makes the request's
 * one-time key and keeps it (0600) under --dir; an agent's client
 * decrypts its own shares and re-encrypts them to the one-time
 * certificate, after checking that the requesting officer's credential
 * signed it; the officer's client combines the shares, decrypts and
 * checks each key and writes one PKCS#12.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "archive/archive.h"
#include "cli/cli.h"
#include "cli/http.h"

static const char recovery_help[] =
"usage: lockbox recovery request --email A --reason TEXT [--serial S]\n"
"                                [--dir DIR] CONNECTION\n"
"       lockbox recovery pending [--json] CONNECTION\n"
"       lockbox recovery show REQ [--json] CONNECTION\n"
"       lockbox recovery approve REQ [--yes] CONNECTION\n"
"       lockbox recovery deny REQ --reason TEXT CONNECTION\n"
"       lockbox recovery fetch REQ --out-p12 FILE [--format modern|legacy]\n"
"                              [--serial S] [--p12-pass-file F] [--dir DIR]\n"
"                              CONNECTION\n"
"\n"
"CONNECTION: --server URL --ca-cert FILE --cred FILE.p12\n"
"            [--cred-pass-file F] [--home DIR] [--trust-policy HASH]\n"
"\n"
"Recovers escrowed encryption keys when M of the N recovery agents agree.\n"
"\n"
"  request   (recovery officer) opens a request for every escrowed key of\n"
"            --email (or the one --serial).  A one-time RSA-3072 key is made\n"
"            here, its certificate signed by your credential; the key stays\n"
"            in DIR/REQ.key (0600; DIR defaults to ~/.lockbox/recovery).\n"
"            Your credential signs the request's statement (its id, owner,\n"
"            keys, one-time key, expiry), kept as DIR/REQ.statement: the\n"
"            agents release to nothing else, and fetch accepts no other key.\n"
"            Prints the request id alone on the last line.\n"
"  pending   (recovery agent) lists the requests awaiting your approval.\n"
"  show      shows a request and how many approvals it has.\n"
"  approve   (recovery agent) checks the request itself before it\n"
"            releases anything: the escrow policies from your pin (in\n"
"            --home, default ~/.lockbox; see 'lockbox escrow policy'), the\n"
"            officer's signed statement (an officer of the policy in\n"
"            force, this request, its one-time key, its keys), that you\n"
"            are neither the owner nor the officer, that you never\n"
"            released to this one-time key before, and that each share\n"
"            belongs to a key the statement names; shows the statement,\n"
"            asks for confirmation when standard input is a terminal\n"
"            (--yes skips it), then decrypts your shares here and\n"
"            re-encrypts them to the request's one-time key.\n"
"  deny      (recovery agent holding a share, or the requester) ends the\n"
"            request: it releases nothing thereafter.\n"
"  fetch     (the requester, once approved) combines the shares, decrypts\n"
"            and checks every key against its certificate, and writes one\n"
"            PKCS#12 with all keys, their certificates and the CA chain to\n"
"            --out-p12 (a new file), protected by the passphrase in\n"
"            --p12-pass-file or typed on the terminal.  modern (default): PBES2\n"
"            AES-256-CBC, PBKDF2-SHA256, HMAC-SHA256 MAC; legacy:\n"
"            PBE-SHA1-3DES, SHA-1 MAC (gpgsm 2.2).  Nothing is written when\n"
"            any key fails to authenticate.  Once written, the one-time key\n"
"            is deleted and the server deletes the request's shares: a\n"
"            request is fetched once (a second fetch: 410 collected).\n"
"            --serial S writes only that key (gpgsm 2.2 imports just the\n"
"            first key of a PKCS#12 file; request one key at a time).\n"
"            A request that is over (denied, expired, collected) loses its\n"
"            one-time key here too.\n"
"\n"
"  --server URL       the daemon, https://HOST:PORT\n"
"  --ca-cert FILE     the CA chain the server's certificate must verify\n"
"                     against (also checks the officer's signature)\n"
"  --cred FILE.p12    your operator credential; its passphrase comes from\n"
"                     --cred-pass-file, else the terminal (a FILE.p12.pass\n"
"                     an older version left beside it is still read)\n";

struct ropts {
	const char *server, *ca_cert, *cred, *cred_pass;
	const char *email, *reason, *serial, *out_p12, *p12_pass;
	enum ca_p12_format format;
	bool yes, json;
	const char *home, *trust;   /* approve: the policy pin */
	const char *req;            /* REQ, the positional argument */
	const char *dir;            /* --dir: where the one-time keys are */
	char path[128];             /* API/REQ */
};

static int
recovery_option(void *state, int c, const char *arg)
{
	struct ropts *o = state;

	switch (c) {
	case 'S': o->server = arg; break;
	case 'C': o->ca_cert = arg; break;
	case 'c': o->cred = arg; break;
	case 'p': o->cred_pass = arg; break;
	case 'e': o->email = arg; break;
	case 'r': o->reason = arg; break;
	case 's': o->serial = arg; break;
	case 'o': o->out_p12 = arg; break;
	case 'P': o->p12_pass = arg; break;
	case 'y': o->yes = true; break;
	case 'j': o->json = true; break;
	case 'H': o->home = arg; break;
	case 'T': o->trust = arg; break;
	case 'f':
		if (strcmp(arg, "modern") == 0)
			o->format = CA_P12_MODERN;
		else if (strcmp(arg, "legacy") == 0)
			o->format = CA_P12_LEGACY;
		else
			return cli_usage("recovery", "--format is modern or "
			    "legacy");
		break;
	}
	return -1;
}

/* The whole command line: the request id, the connection. */
static int
recovery_check(void *state, const cli_ctx *c)
{
	struct ropts *o = state;

	o->dir = c->dir_opt;
	if (c->argc == 1) {
		o->req = c->argv[0];
		if (!archive_request_id_valid(o->req))
			return cli_usage("recovery", "'%s' is not a request id "
			    "(%d lowercase hex digits)", o->req,
			    ARCHIVE_REQUEST_ID_LEN);
		snprintf(o->path, sizeof(o->path), ARCHIVE_API "/%s", o->req);
	}
	if (o->server == NULL || o->ca_cert == NULL || o->cred == NULL)
		return cli_usage("recovery", "--server, --ca-cert and --cred "
		    "are required");
	if (strncmp(o->server, "https://", 8) != 0)
		return cli_usage("recovery", "--server must be an https:// "
		    "URL");
	return -1;
}

static int
http_api(void *h, const char *method, const char *path, json_t *body,
    core_http_reply *r, lb_err *err)
{
	return cli_http_api(h, method, path, body, r, err);
}

/*
 * Runs step with the daemon reached on the operator's credential: the
 * exit code (1, with the error printed, when step returns -1).
 */
static int
with_server(struct ropts *o, int (*step)(struct ropts *,
    const archive_transport *, lb_err *))
{
	lb_err err = { 0 };
	archive_transport t;
	cli_http *h;
	int rc;

	if ((h = cli_http_new(o->server, o->ca_cert, o->cred, o->cred_pass,
	    &err)) == NULL)
		return cli_fail(&err);
	t = (archive_transport){ h, http_api, cli_http_get0_key(h),
	    cli_http_get0_cert(h) };
	rc = step(o, &t, &err) == -1 ? cli_fail(&err) : 0;
	cli_http_free(h);
	return rc;
}

/* `name_run`, the skeleton's entry, runs name with the server. */
#define WITH_SERVER(name) \
static int \
name##_run(void *state, cli_ctx *c) \
{ \
	(void)c; \
	return with_server(state, name); \
}

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

static long long
jint(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* s, or "" for NULL (for printing). */
static const char *
str(const char *s)
{
	return s != NULL ? s : "";
}

/* DIR: --dir, else ~/.lockbox/recovery; created 0700 when absent. */
static char *
key_dir(const char *opt, lb_err *err)
{
	return cli_user_dir(opt, ".lockbox/recovery", "one-time keys", err);
}

/* What print_request says per key: nothing, its threshold, approvals. */
enum per_key { PER_KEY_NONE, PER_KEY_THRESHOLD, PER_KEY_APPROVALS };

/* A request, for `pending`, `show` and after `request`. */
static void
print_request(json_t *rq, enum per_key per_key)
{
	json_t *recs = json_object_get(rq, "records"), *r;
	size_t i;

	printf("%s  %s\n  requested by %s for the keys of %s (%zu key(s))\n"
	    "  reason: %s\n  created %s, expires %s; %lld of %lld approvals\n",
	    jstr(rq, "id"), jstr(rq, "status"), jstr(rq, "requester_email"),
	    jstr(rq, "email"), json_array_size(recs), jstr(rq, "reason"),
	    jstr(rq, "created"), jstr(rq, "expires"), jint(rq, "approvals"),
	    jint(rq, "threshold"));
	if (json_object_get(rq, "denied_by") != NULL)
		printf("  denied by %s: %s\n", jstr(rq, "denied_by"),
		    jstr(rq, "deny_reason"));
	json_array_foreach(per_key != PER_KEY_NONE ? recs : NULL, i, r) {
		if (per_key == PER_KEY_THRESHOLD)
			printf("  key serial %s (threshold %lld)\n",
			    jstr(r, "serial"), jint(r, "threshold"));
		else
			printf("  key serial %s: %lld of %lld approvals\n",
			    jstr(r, "serial"), jint(r, "approvals"),
			    jint(r, "threshold"));
	}
}

/* ------------------------------------------------------------------ */
/* request                                                             */

static int
request_check(void *state, const cli_ctx *c)
{
	struct ropts *o = state;

	if (o->email == NULL || o->reason == NULL)
		return cli_usage("recovery", "request needs --email and "
		    "--reason");
	if (!core_email_valid(o->email))
		return cli_usage("recovery", "'%s' is not an e-mail address",
		    o->email);
	return recovery_check(state, c);
}

static int
request(struct ropts *o, const archive_transport *t, lb_err *err)
{
	archive_client_opened op;
	char *dir;
	int rc = -1;

	if ((dir = key_dir(o->dir, err)) == NULL)
		return -1;
	if (archive_client_request(t, dir, o->email, o->serial, o->reason,
	    &op, err) == 0) {
		print_request(op.reply, PER_KEY_THRESHOLD);
		printf("one-time key: %s (keep it until the keys are "
		    "fetched)\none-time certificate SHA-256: %s\n%s\n",
		    op.key_path, op.fingerprint, op.id);
		rc = 0;
	} else if (op.id[0] != '\0') {
		fprintf(stderr, "lockbox: request %s is open, but its one-time "
		    "key could not be kept: withdraw it with 'lockbox recovery "
		    "deny %s --reason ...'\n", op.id, op.id);
	}
	archive_client_opened_clear(&op);
	free(dir);
	return rc;
}
WITH_SERVER(request)

/* ------------------------------------------------------------------ */
/* pending, show, deny                                                 */

static int
pending(struct ropts *o, const archive_transport *t, lb_err *err)
{
	json_t *resp = NULL, *list, *rq;
	char *home;
	size_t i;

	/* an agent's look at its queue audits what was escrowed too */
	if ((home = cli_user_dir(o->home, ".lockbox", "the policy pin",
	    err)) == NULL)
		return -1;
	(void)cli_escrow_audit_note(t, home, o->trust);
	free(home);

	if (cli_http_json(t->h, "GET", ARCHIVE_API "?pending=1", NULL, &resp,
	    NULL,
	    err) == -1)
		return -1;
	list = json_object_get(resp, "requests");
	if (o->json) {
		json_dumpf(list, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (json_array_size(list) == 0) {
		printf("no recovery request awaits you\n");
	} else {
		json_array_foreach(list, i, rq) {
			print_request(rq, PER_KEY_NONE);
		}
	}
	json_decref(resp);
	return 0;
}
WITH_SERVER(pending)

static int
show(struct ropts *o, const archive_transport *t, lb_err *err)
{
	json_t *resp = NULL;

	if (cli_http_json(t->h, "GET", o->path, NULL, &resp, NULL, err) == -1)
		return -1;
	json_object_del(resp, "shares");
	if (o->json) {
		json_dumpf(resp, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print_request(resp, PER_KEY_APPROVALS);
	}
	json_decref(resp);
	return 0;
}
WITH_SERVER(show)

static int
deny_check(void *state, const cli_ctx *c)
{
	struct ropts *o = state;

	if (o->reason == NULL || o->reason[0] == '\0')
		return cli_usage("recovery", "deny needs --reason TEXT");
	return recovery_check(state, c);
}

static int
deny(struct ropts *o, const archive_transport *t, lb_err *err)
{
	json_t *body, *resp = NULL;
	int rc;

	if ((body = json_pack("{s:s}", "reason", o->reason)) == NULL) {
		lb_err_set(err, LB_EINVAL, "the reason must be UTF-8 text");
		return -1;
	}
	strncat(o->path, "/deny", sizeof(o->path) - strlen(o->path) - 1);
	rc = cli_http_json(t->h, "POST", o->path, body, &resp, NULL, err);
	if (rc == 0)
		printf("recovery request %s denied: it releases nothing\n",
		    o->req);
	json_decref(body);
	json_decref(resp);
	return rc;
}
WITH_SERVER(deny)

/* ------------------------------------------------------------------ */
/* approve                                                             */

static void
show_view(void *arg, const archive_view *v, const archive_checked *c,
    const archive_policy *p)
{
	size_t i, k;

	(void)arg;
	if (c == NULL) {
		/* nothing of ours to release: the server's word, for the record */
		printf("Recovery request %s (%s): nothing of yours to release "
		    "in it\n", v->id, v->status);
		fflush(stdout);
		return;
	}
	printf("Recovery request %s, as its officer signed it\n"
	    "  who asks:  %s <%s> (recovery officer of escrow policy v%d)\n"
	    "  for whom:  %s (%zu escrowed key(s))\n", v->id, c->officer->name,
	    c->officer->email, p->version, c->s.owner, c->s.nrecords);
	for (i = 0; i < c->s.nrecords; i++) {
		printf("    key serial %s", c->s.records[i].serial);
		for (k = 0; k < v->nrecords; k++)
			if (v->records[k].serial != NULL &&
			    strcmp(v->records[k].serial,
			    c->s.records[i].serial) == 0 &&
			    v->records[k].other_open > 0)
				printf("  NOTE: also in %lld other open "
				    "request(s)", v->records[k].other_open);
		putchar('\n');
	}
	printf("  expires:   %s\n  why:       %s\n  %lld of %lld approvals "
	    "so far\n", c->s.expires, c->s.reason, v->approvals,
	    v->threshold);
	fflush(stdout);
}

static bool
confirm(void *arg, const archive_view *v, const char *fingerprint)
{
	const struct ropts *o = arg;
	char line[16];

	printf("  one-time certificate SHA-256: %s (signed by %s's "
	    "credential)\n", fingerprint, str(v->requester_email));
	fflush(stdout);
	if (o->yes || !isatty(STDIN_FILENO))
		return true;
	fputs("Approve? [y/N] ", stdout);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return false;
	return strcasecmp(line, "y\n") == 0 || strcasecmp(line, "yes\n") == 0;
}

static int
approve(struct ropts *o, const archive_transport *t, lb_err *err)
{
	archive_review rv = { o, show_view, confirm };
	archive_client_approved res;
	char *home;
	int rc;

	if ((home = cli_user_dir(o->home, ".lockbox", "the policy pin",
	    err)) == NULL)
		return -1;
	rc = archive_client_approve(t, o->req, o->ca_cert, home, o->trust,
	    &rv, &res, err);
	if (rc == 0)
		(void)cli_escrow_audit_note(t, home, o->trust);
	free(home);
	if (rc == -1)
		return -1;
	if (res.unbound > 0)
		printf("note: %zu of your shares were escrowed before shares "
		    "named their record: those the statement could not be held "
		    "to\n", res.unbound);
	printf("approved recovery request %s with %zu share(s): %lld of %lld "
	    "approvals, request %s\n", o->req, res.nshares,
	    res.approvals, res.threshold, res.status);
	return 0;
}
WITH_SERVER(approve)

/* ------------------------------------------------------------------ */
/* fetch                                                               */

static int
fetch_check(void *state, const cli_ctx *c)
{
	struct ropts *o = state;

	if (o->out_p12 == NULL)
		return cli_usage("recovery", "fetch needs --out-p12 FILE");
	return recovery_check(state, c);
}

static int
fetch(struct ropts *o, const archive_transport *t, lb_err *err)
{
	archive_package pkg;
	archive_opened keys;
	char *dir, *pass;
	size_t i;
	int rc = -1;

	/* the file and its passphrase before the keys are collected */
	if (ca_out_free(o->out_p12, err) == -1 ||
	    (pass = ca_pass_new(o->p12_pass, o->out_p12, err)) == NULL)
		return -1;
	if ((dir = key_dir(o->dir, err)) == NULL) {
		core_secret_free(pass);
		return -1;
	}
	/* every key must open before anything is written */
	if (archive_client_fetch(t, dir, o->req, o->serial, &pkg, &keys,
	    err) == -1) {
		core_secret_free(pass);
		free(dir);
		return -1;
	}
	if (ca_p12_write_multi(o->out_p12, pass, keys.keys, keys.certs,
	    (const char *const *)keys.names, keys.n, pkg.chain, o->format,
	    err) == 0) {
		printf("recovered %zu key(s) of %s:", keys.n, str(pkg.email));
		for (i = 0; i < keys.n; i++)
			printf(" %s", keys.serials[i]);
		printf("\nwritten to %s (%s PKCS#12)", o->out_p12,
		    o->format == CA_P12_LEGACY ? "legacy" : "modern");
		putchar('\n');
		if (o->format == CA_P12_LEGACY && keys.n > 1)
			printf("note: gpgsm 2.2 imports only the first key of "
			    "a PKCS#12 file; write one file per key with "
			    "--serial\n");
		rc = 0;
		/* the keys are safe: nothing of the request may stay */
		if (archive_client_collected(t, dir, o->req, err) == 0) {
			printf("request %s collected: its one-time key is "
			    "deleted here, its shares on the server\n",
			    o->req);
		} else {
			fprintf(stderr, "lockbox: warning: %s\n", err->msg);
			lb_err_clear(err);
		}
	}
	archive_opened_clear(&keys);
	archive_package_clear(&pkg);
	core_secret_free(pass);
	free(dir);
	return rc;
}
WITH_SERVER(fetch)

/* ------------------------------------------------------------------ */
/* The subcommands                                                     */

#define OPT(name, has_arg, c) { name, has_arg, NULL, c }
/* The options every subcommand takes: how to reach the daemon. */
#define CONNECTION_OPTS OPT("server", required_argument, 'S'), \
	OPT("ca-cert", required_argument, 'C'), \
	OPT("cred", required_argument, 'c'), \
	OPT("cred-pass-file", required_argument, 'p'), \
	OPT("home", required_argument, 'H'), \
	OPT("trust-policy", required_argument, 'T')
#define OPTS_END OPT(NULL, 0, 0)

static const struct option request_opts[] = { CONNECTION_OPTS,
	OPT("email", required_argument, 'e'),
	OPT("reason", required_argument, 'r'),
	OPT("serial", required_argument, 's'), OPTS_END };
static const struct option list_opts[] = { CONNECTION_OPTS,
	OPT("json", no_argument, 'j'), OPTS_END };
static const struct option approve_opts[] = { CONNECTION_OPTS,
	OPT("yes", no_argument, 'y'), OPTS_END };
static const struct option deny_opts[] = { CONNECTION_OPTS,
	OPT("reason", required_argument, 'r'), OPTS_END };
static const struct option fetch_opts[] = { CONNECTION_OPTS,
	OPT("serial", required_argument, 's'),
	OPT("out-p12", required_argument, 'o'),
	OPT("format", required_argument, 'f'),
	OPT("p12-pass-file", required_argument, 'P'), OPTS_END };

#define NO_ARGS     0, 0, NULL
#define ONE_REQUEST 1, 1, "needs one request id"
#define RECOVERY_SUB(word, opts, nargs, check, run) { "recovery " word, \
	recovery_help, opts, recovery_option, nargs, check, CLI_NONE, run }

static const cli_sub subs[] = {
	RECOVERY_SUB("request", request_opts, NO_ARGS, request_check,
	    request_run),
	RECOVERY_SUB("pending", list_opts, NO_ARGS, recovery_check,
	    pending_run),
	RECOVERY_SUB("show", list_opts, ONE_REQUEST, recovery_check,
	    show_run),
	RECOVERY_SUB("approve", approve_opts, ONE_REQUEST, recovery_check,
	    approve_run),
	RECOVERY_SUB("deny", deny_opts, ONE_REQUEST, deny_check, deny_run),
	RECOVERY_SUB("fetch", fetch_opts, ONE_REQUEST, fetch_check,
	    fetch_run),
};

int
cmd_recovery(int argc, char **argv)
{
	struct ropts o;

	memset(&o, 0, sizeof(o));
	return cli_dispatch_shared("recovery", recovery_help, subs,
	    sizeof(subs) / sizeof(subs[0]), &o, argc, argv);
}
