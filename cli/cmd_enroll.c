/*
 * cmd_enroll.c - `lockbox enroll`: maps the arguments to one call of the
 * enrollment client (enroll/client.c) through cli/http.c, and prints one
 * line per profile as the client reports it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/http.h"
#include "enroll/enroll.h"

static const char enroll_help[] =
"usage: lockbox enroll --server URL --ca-cert FILE --email EMAIL\n"
"                      (--password-file F | --token-file F) [--dir DIR]\n"
"       lockbox enroll --auto [--dir DIR]\n"
"\n"
"Enrolls and renews this user's S/MIME certificates over EST.\n"
"\n"
"The first form enrolls every profile the server's policy entitles you\n"
"to: the signing key is generated here and never leaves this machine;\n"
"the encryption key is generated and escrowed by the server.  It writes\n"
"into DIR (default ~/.lockbox, created 0700), per profile NAME:\n"
"  NAME.key            the private key (PKCS#8 PEM, 0600)\n"
"  NAME.crt            the certificate (PEM)\n"
"  NAME.p12            key, certificate and chain for mail clients, its\n"
"                      password in NAME.p12.pass (0600)\n"
"and ca.pem (the CA chain), server-ca.pem and state.json.  When an\n"
"enrollment awaits an operator's approval it says so and exits 0: run it\n"
"again later (its key is kept in NAME.pending.key meanwhile).\n"
"\n"
"--auto (for cron or a systemd timer) renews what is due, authenticated by\n"
"the current signing certificate, and does nothing otherwise.  Renewed\n"
"encryption keys are kept as NAME-SERIAL.key/.crt/.p12 so that old mail\n"
"stays readable.  Prints one line per profile; exits 1 on any failure.\n"
"\n"
"  --server URL          the lockbox server, https://HOST:PORT\n"
"  --ca-cert FILE        the CA certificate(s) the server's TLS certificate\n"
"                        must chain to (copied into DIR)\n"
"  --email EMAIL         your login: your e-mail (with a token), or your\n"
"                        directory login (--user is another name for it)\n"
"  --password-file F     your directory password, on one line\n"
"  --token-file F        a one-time enrollment token (lockbox token create)\n"
"  --dir DIR             where keys and certificates live (~/.lockbox)\n"
"  --auto                renew what is due (needs a previous enrollment)\n";

/* cli/http.c as the enrollment client's transport */

static void *
t_open(void *ctx, const char *server, const char *ca_file, lb_err *err)
{
	(void)ctx;
	return cli_http_new(server, ca_file, NULL, NULL, err);
}

static void
t_close(void *h)
{
	cli_http_free(h);
}

static const char *
t_server(const void *h)
{
	return cli_http_get0_server(h);
}

static int
t_basic(void *h, const char *login, const char *password, lb_err *err)
{
	return cli_http_set_basic(h, login, password, err);
}

static int
t_cert_files(void *h, const char *cert, const char *key, lb_err *err)
{
	return cli_http_set_cert_files(h, cert, key, err);
}

static int
t_request(void *h, const char *method, const char *path,
    const char *const *headers, const void *body, size_t len, size_t max,
    core_http_reply *r, lb_err *err)
{
	return cli_http_request(h, method, path, headers, body, len, max, r,
	    err);
}

static const enroll_transport transport = {
	NULL, t_open, t_close, t_server, t_basic, t_cert_files, t_request,
};

/* One line per profile on standard output; failures on standard error. */
static void
print_report(const enroll_report *r, void *arg)
{
	char date[32];

	(void)arg;
	switch (r->outcome) {
	case ENROLL_OUT_ENROLLED:
		printf("%s: enrolled, serial %s\n", r->profile, r->serial);
		break;
	case ENROLL_OUT_RENEWED:
		printf("%s: renewed, serial %s\n", r->profile, r->serial);
		break;
	case ENROLL_OUT_PENDING:
		printf("%s: the request awaits an operator's approval; run "
		    "again %s%s%s\n", r->profile, r->retry_after[0] ? "after " :
		    "later", r->retry_after, r->retry_after[0] ? " "
		    "seconds" : "");
		break;
	case ENROLL_OUT_ALREADY:
		printf("%s: already enrolled in %s (renewals: lockbox enroll "
		    "--auto)\n", r->profile, r->dir);
		break;
	case ENROLL_OUT_UP_TO_DATE:
		core_time_fmt(r->until, date, sizeof(date));
		printf("%s: up to date until %s\n", r->profile, date);
		break;
	case ENROLL_OUT_FAILED:
		fflush(stdout);
		cli_fail(r->err);
		break;
	}
	fflush(stdout);
}

/* DIR: --dir, else ~/.lockbox; created (with its parents) 0700 and made
 * absolute (state.json names files in it, for timers run elsewhere). */
static char *
enroll_dir(const char *opt, lb_err *err)
{
	char *dir, *p;

	if ((dir = cli_user_dir(opt, ".lockbox", "keys and certificates",
	    err)) == NULL)
		return NULL;
	if ((p = realpath(dir, NULL)) == NULL)
		lb_err_set(err, LB_EINVAL, "%s: %s", dir, strerror(errno));
	free(dir);
	return p;
}

struct enroll_args {
	enroll_client_opts o;
	const char *password_file, *token_file;
	bool autom;
};

static int
enroll_option(void *state, int c, const char *arg)
{
	struct enroll_args *a = state;

	switch (c) {
	case 'S': a->o.server = arg; break;
	case 'C': a->o.ca_cert = arg; break;
	case 'u': a->o.login = arg; break;
	case 'p': a->password_file = arg; break;
	case 't': a->token_file = arg; break;
	case 'a': a->autom = true; break;
	}
	return -1;
}

static int
enroll_check(void *state, const cli_ctx *c)
{
	struct enroll_args *a = state;

	(void)c;
	if (a->autom)
		return a->o.server != NULL || a->o.ca_cert != NULL ||
		    a->o.login != NULL || a->password_file != NULL ||
		    a->token_file != NULL ? cli_usage("enroll", "--auto takes "
		    "only --dir: the server and credential come from the first "
		    "enrollment") : -1;
	if (a->o.server == NULL || a->o.ca_cert == NULL)
		return cli_usage("enroll", "--server and --ca-cert are "
		    "required (or --auto to renew)");
	if (a->o.login == NULL)
		return cli_usage("enroll", "--email is required (your e-mail "
		    "with --token-file, or your directory login)");
	if ((a->password_file == NULL) == (a->token_file == NULL))
		return cli_usage("enroll", "give one of --password-file and "
		    "--token-file");
	if (strncmp(a->o.server, "https://", 8) != 0)
		return cli_usage("enroll", "--server must be an https:// URL");
	a->o.secret_file = a->password_file != NULL ? a->password_file :
	    a->token_file;
	return -1;
}

static int
enroll_run(void *state, cli_ctx *c)
{
	struct enroll_args *a = state;
	lb_err err = { 0 };
	char *dir;
	int rc;

	if ((dir = enroll_dir(c->dir_opt, &err)) == NULL)
		return cli_fail(&err);
	a->o.dir = dir;
	rc = a->autom ? enroll_client_auto(&transport, dir, print_report,
	    NULL, &err) : enroll_client_first(&transport, &a->o, print_report,
	    NULL, &err);
	free(dir);
	return rc == -1 ? cli_fail(&err) : rc;
}

static const struct option enroll_opts[] = {
	{ "server", required_argument, NULL, 'S' },
	{ "ca-cert", required_argument, NULL, 'C' },
	{ "email", required_argument, NULL, 'u' },
	{ "user", required_argument, NULL, 'u' },
	{ "password-file", required_argument, NULL, 'p' },
	{ "token-file", required_argument, NULL, 't' },
	{ "auto", no_argument, NULL, 'a' },
	{ NULL, 0, NULL, 0 },
};

static const cli_sub enroll_sub = { "enroll", enroll_help, enroll_opts,
	enroll_option, 0, 0, NULL, enroll_check, CLI_NONE, enroll_run };

int
cmd_enroll(int argc, char **argv)
{
	struct enroll_args a;

	memset(&a, 0, sizeof(a));
	return cli_run(&enroll_sub, &a, argc, argv);
}
