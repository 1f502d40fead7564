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

int
cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "http-listen", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	web_opts o = { NULL, NULL, NULL };
	lb_err err = { 0 };
	int c;

	while ((c = cli_getopt(argc, argv, opts, serve_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			o.dir = optarg;
			break;
		case 'l':
			o.listen = optarg;
			break;
		case 'L':
			o.http_listen = optarg;
			break;
		}
	}
	if (optind != argc)
		return cli_usage(argv[0], "unexpected argument '%s'",
		    argv[optind]);
	o.dir = cli_dir(o.dir);
	if (web_serve(&o, &err) == -1)
		return cli_fail(&err);
	return 0;
}
