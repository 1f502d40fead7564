/*
 * cmd_init.c - `lockbox init` and `lockbox ca install`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char init_help[] =
"usage: lockbox init [--dir DIR] [--name \"Example S/MIME CA\"]\n"
"                    [--key-type rsa-3072|rsa-4096|ec-p256|ec-p384] [--days N]\n"
"                    [--base-url URL] [--listen ADDR:PORT]\n"
"                    [--http-listen ADDR:PORT] [--admin-email ADDR]\n"
"                    [--admin-name NAME] [--p12-pass-file F] [--subordinate]\n"
"\n"
"Creates a CA in the state directory DIR (default $LOCKBOX_DIR, else\n"
"./lockbox-data): lockbox.conf, lockbox.db, the CA key (ca.key, encrypted\n"
"PKCS#8, passphrase in ca.key.pass, 0600), a self-signed root (ca.pem), the\n"
"daemon's TLS certificate (tls.pem, tls.key), pub/ca.crt, and the first\n"
"administrator credential admin.p12, protected by the passphrase in\n"
"--p12-pass-file F (or typed on the terminal; it is never written beside\n"
"admin.p12).  Refuses to overwrite an existing CA.\n"
"\n"
"  --key-type T    CA key (default rsa-3072).  ec-p256 and ec-p384 sign\n"
"                  faster, but GnuPG 2.2's dirmngr (gpgsm on Debian 12)\n"
"                  cannot load a CRL signed with an ECDSA key, so such mail\n"
"                  clients silently lose revocation checking; P-384 also\n"
"                  signs about 40x slower than P-256 in OpenSSL 3.0.\n"
"  --days N        validity of the CA certificate (default 3650)\n"
"  --base-url URL  http:// URL under which relying parties reach the plain-\n"
"                  HTTP listener; CRL and AIA URLs are built from it\n"
"                  (default http://127.0.0.1:8080)\n"
"  --subordinate   write ca.csr for a parent CA to sign instead of a root;\n"
"                  then run 'lockbox ca install FILE'\n";

static int
init_option(void *state, int c, const char *arg)
{
	ca_init_opts *o = state;
	char *end;

	switch (c) {
	case 'n':
		o->name = arg;
		break;
	case 'k':
		if ((o->key_type = ca_key_type_parse(arg)) == CA_KEY_NONE)
			return cli_usage("init", "unknown key type '%s'", arg);
		break;
	case 'D':
		o->days = (int)strtol(arg, &end, 10);
		if (*end != '\0' || o->days <= 0)
			return cli_usage("init", "--days needs a positive "
			    "number");
		break;
	case 'u':
		o->base_url = arg;
		break;
	case 'l':
		o->listen = arg;
		break;
	case 'L':
		o->http_listen = arg;
		break;
	case 'e':
		o->admin_email = arg;
		break;
	case 'N':
		o->admin_name = arg;
		break;
	case 'p':
		o->admin_p12_pass_file = arg;
		break;
	case 's':
		o->subordinate = true;
		break;
	}
	return -1;
}

/* CLI_NONE: there is no CA to open yet, ca_init makes it */
static int
init_run(void *state, cli_ctx *c)
{
	const ca_init_opts *o = state;
	const char *dir = c->dir;
	lb_err err = { 0 };

	if (ca_init(dir, o, &err) == -1)
		return cli_fail(&err);
	if (o->subordinate)
		printf("Subordinate CA key created in %s.\n"
		    "Have the parent CA sign %s/ca.csr, then run:\n"
		    "  lockbox ca install --dir %s SIGNED.pem\n", dir, dir,
		    dir);
	else
		printf("CA created in %s\n"
		    "  CA certificate:  %s/ca.pem\n"
		    "  administrator:   %s/admin.p12 (its passphrase: %s)\n"
		    "Start the daemon with: lockbox serve --dir %s\n", dir, dir,
		    dir, o->admin_p12_pass_file ? o->admin_p12_pass_file :
		    "the one you typed", dir);
	return 0;
}

static const struct option init_opts[] = {
	{ "name", required_argument, NULL, 'n' },
	{ "key-type", required_argument, NULL, 'k' },
	{ "days", required_argument, NULL, 'D' },
	{ "base-url", required_argument, NULL, 'u' },
	{ "listen", required_argument, NULL, 'l' },
	{ "http-listen", required_argument, NULL, 'L' },
	{ "admin-email", required_argument, NULL, 'e' },
	{ "admin-name", required_argument, NULL, 'N' },
	{ "p12-pass-file", required_argument, NULL, 'p' },
	{ "subordinate", no_argument, NULL, 's' },
	{ NULL, 0, NULL, 0 },
};
static const cli_sub init_sub = {
	"init", init_help, init_opts, init_option, 0, 0, NULL, NULL, CLI_NONE,
	init_run,
};

int
cmd_init(int argc, char **argv)
{
	ca_init_opts o;

	memset(&o, 0, sizeof(o));
	return cli_run(&init_sub, &o, argc, argv);
}

static const char ca_help[] =
"usage: lockbox ca install [--dir DIR] [--p12-pass-file F] FILE\n"
"\n"
"Installs the certificate (PEM, optionally followed by its chain) that a\n"
"parent CA issued for DIR/ca.csr, made by 'lockbox init --subordinate'.\n"
"Checks that it matches the CA key and is a CA certificate, then issues the\n"
"daemon's TLS certificate and the administrator credential admin.p12,\n"
"protected by the passphrase in --p12-pass-file F (or typed on the\n"
"terminal).\n";

/* CLI_NONE: ca_install opens the CA itself, key and all */
static int
install_run(void *state, cli_ctx *c)
{
	lb_err err = { 0 };

	if (ca_install(c->dir, c->argv[0], *(const char **)state, &err) == -1)
		return cli_fail(&err);
	printf("CA certificate installed in %s; administrator credential in "
	    "%s/admin.p12\n", c->dir, c->dir);
	return 0;
}

/* Named "ca", not "ca install": its usage errors have always said "ca". */
static int
install_option(void *state, int c, const char *arg)
{
	(void)c;
	*(const char **)state = arg;
	return -1;
}

static const struct option install_opts[] = {
	{ "p12-pass-file", required_argument, NULL, 'p' },
	{ NULL, 0, NULL, 0 },
};

static const cli_sub install_sub = {
	"ca", ca_help, install_opts, install_option, 1, 1,
	"install needs exactly one FILE", NULL, CLI_NONE, install_run,
};

/* Not cli_dispatch: "expected 'install'" keeps its quotes. */
int
cmd_ca(int argc, char **argv)
{
	const char *pass_file = NULL;

	if (argc < 2 || strcmp(argv[1], "install") != 0) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
		    strcmp(argv[1], "-h") == 0)) {
			fputs(ca_help, stdout);
			return 0;
		}
		return cli_usage("ca", "expected 'install'");
	}
	return cli_run(&install_sub, &pass_file, argc - 1, argv + 1);
}
