/*
 * cmd_serve.c - `lockbox serve`: runs the daemon in the foreground.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "web/web.h"

static const char serve_help[] =
"usage: lockbox serve [--dir DIR] [--listen ADDR:PORT]\n"
"                     [--http-listen ADDR:PORT]\n"
"\n"
"Serves the CA in DIR: HTTPS (default 127.0.0.1:8443, from lockbox.conf\n"
"[server] listen) for operators, who authenticate with client certificates\n"
"of this CA, and plain HTTP (default 127.0.0.1:8080) for relying parties\n"
"(GET /ca.crt, /ca.crl, /healthz).  The daemon issues a CRL at start when\n"
"due, every [crl] interval and within seconds of every revocation.\n"
"SIGTERM or SIGINT finish in-flight requests and exit 0.\n"
"\n"
"The CA key is held only by signer processes ([server] signers, default\n"
"one a core up to 4), forked before anything else; they check every\n"
"request against its profile and cannot open files or sockets.  Started\n"
"as root with [server] user = NAME, the daemon and its signers drop to\n"
"NAME once the listening sockets are open: DIR, lockbox.db and pub/ must\n"
"belong to NAME, ca.key and ca.key.pass to root.\n"
"\n"
"JSON API (HTTPS, client certificate required):\n"
"  GET  /api/v1/certificates[?email=&profile=&status=&limit=]\n"
"  GET  /api/v1/certificates/SERIAL\n"
"  POST /api/v1/certificates/SERIAL/revoke   {\"reason\": \"keyCompromise\"}\n"
"  GET  /api/v1/audit[?after=&limit=]\n"
"  GET  /healthz (no authentication)\n";

static int
serve_option(void *state, int c, const char *arg)
{
	web_opts *o = state;

	if (c == 'l')
		o->listen = arg;
	else if (c == 'L')
		o->http_listen = arg;
	return -1;
}

/* CLI_NONE: web_serve opens the CA, to hand its key to the signers first */
static int
serve_run(void *state, cli_ctx *c)
{
	web_opts *o = state;
	lb_err err = { 0 };

	o->dir = c->dir;
	if (web_serve(o, &err) == -1)
		return cli_fail(&err);
	return 0;
}

static const struct option serve_opts[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "http-listen", required_argument, NULL, 'L' },
	{ NULL, 0, NULL, 0 },
};
static const cli_sub serve_sub = {
	"serve", serve_help, serve_opts, serve_option, 0, 0, NULL, NULL,
	CLI_NONE, serve_run,
};

int
cmd_serve(int argc, char **argv)
{
	web_opts o = { NULL, NULL, NULL };

	return cli_run(&serve_sub, &o, argc, argv);
}
