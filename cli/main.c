/*
 * main.c - the lockbox executable: git-style subcommand dispatch.  Admin
 * subcommands act on the local state directory; `serve` runs the daemon.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "cli/cli.h"

#ifndef LOCKBOX_VERSION
#define LOCKBOX_VERSION "0.1.0"
#endif

static const struct {
	const char *name;
	cli_cmd_fn fn;
	const char *summary;
} cmds[] = {
	{ "init", cmd_init, "create a CA in a new state directory" },
	{ "ca", cmd_ca, "CA maintenance (install a subordinate's certificate)" },
	{ "issue", cmd_issue, "issue a certificate from a PKCS#10 request" },
	{ "revoke", cmd_revoke, "revoke a certificate" },
	{ "list", cmd_list, "list certificates" },
	{ "show", cmd_show, "show one certificate" },
	{ "crl", cmd_crl, "issue a CRL now, or show CRL status" },
	{ "operator", cmd_operator, "add, list and remove operators" },
	{ "agent", cmd_agent, "add, list and remove recovery agents" },
	{ "escrow", cmd_escrow, "propose, sign and show the key escrow policy" },
	{ "recovery", cmd_recovery, "M-of-N key recovery (over HTTPS)" },
	{ "audit", cmd_audit, "list and verify the audit log" },
	{ "backup", cmd_backup, "back up the state directory (daemon may run)" },
	{ "restore", cmd_restore, "restore a backup into a new directory" },
	{ "serve", cmd_serve, "run the HTTPS daemon" },
	{ "token", cmd_token, "create and list one-time enrollment tokens" },
	{ "enrollment", cmd_enrollment,
	    "list, approve and deny enrollment requests awaiting approval" },
	{ "request", cmd_enrollment, "the old name of 'enrollment'" },
	{ "publish", cmd_publish, "show the directory publication queue" },
	{ "enroll", cmd_enroll,
	    "enroll or renew this user's certificates over EST (client)" },
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: lockbox [-v] COMMAND [ARGS]\n\n"
	    "lockbox is an S/MIME certificate authority with key escrow.\n\n"
	    "Commands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\nEvery command takes --help.  Admin commands act on the "
	    "state directory\n--dir DIR (default $LOCKBOX_DIR, else "
	    "./lockbox-data).\n"
	    "Exit codes: 0 ok, 1 failure, 2 usage error.\n");
}

int
main(int argc, char **argv)
{
	int verbose = 0, i = 1, rc;
	size_t k;

	core_process_harden();
	log_init("lockbox", false);
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-v") == 0 ||
		    strcmp(argv[i], "--verbose") == 0) {
			verbose++;
		} else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("lockbox %s\n", LOCKBOX_VERSION);
			return 0;
		} else {
			fprintf(stderr, "lockbox: unknown option '%s'\n",
			    argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
		i++;
	}
	log_set_verbosity(verbose);
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 < argc) {
			char *hv[3] = { argv[i + 1], "--help", NULL };

			for (k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++)
				if (strcmp(cmds[k].name, argv[i + 1]) == 0)
					return cmds[k].fn(2, hv);
		}
		usage(stdout);
		return 0;
	}
	for (k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		if (strcmp(cmds[k].name, argv[i]) == 0) {
			rc = cmds[k].fn(argc - i, argv + i);
			ERR_clear_error();
			return rc;
		}
	}
	fprintf(stderr, "lockbox: unknown command '%s'\n", argv[i]);
	usage(stderr);
	return EXIT_USAGE;
}
