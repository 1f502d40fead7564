/*
 * cmd_issue.c - `lockbox issue`: a subscriber certificate from a PKCS#10
 * request.  The CSR contributes only its (verified) public key; subject and
 * SAN come from the flags.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char issue_help[] =
"usage: lockbox issue --profile NAME --csr FILE --email ADDR\n"
"                     [--given-name G --surname S] [--days N] [--out FILE]\n"
"                     [--dir DIR]\n"
"\n"
"Issues a certificate of profile NAME (smime-sign; smime-enc needs key\n"
"escrow) for the public key of the PKCS#10 request FILE (PEM or DER, '-'\n"
"for standard input).  The request's signature is verified and its key\n"
"checked against the profile; the subject and subjectAltName come from\n"
"--email (and --given-name/--surname for individual-validated profiles),\n"
"never from the request.  The certificate is stored, then written as PEM\n"
"to --out (and its serial printed) or to standard output.\n";

int
cmd_issue(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "profile", required_argument, NULL, 'p' },
		{ "csr", required_argument, NULL, 'c' },
		{ "email", required_argument, NULL, 'e' },
		{ "given-name", required_argument, NULL, 'g' },
		{ "surname", required_argument, NULL, 's' },
		{ "days", required_argument, NULL, 'D' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *csr_path = NULL, *out = NULL;
	ca_request req;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	X509_REQ *csr = NULL;
	X509 *cert = NULL;
	const ca_profile *prof;
	char *serial = NULL, *end;
	int c, rc = 1;

	memset(&req, 0, sizeof(req));
	while ((c = cli_getopt(argc, argv, opts, issue_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		case 'p':
			req.profile = optarg;
			break;
		case 'c':
			csr_path = optarg;
			break;
		case 'e':
			req.email = optarg;
			break;
		case 'g':
			req.given_name = optarg;
			break;
		case 's':
			req.surname = optarg;
			break;
		case 'D':
			req.days = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || req.days <= 0)
				return cli_usage(argv[0], "--days needs a "
				    "positive number");
			break;
		case 'o':
			out = optarg;
			break;
		}
	}
	if (optind != argc)
		return cli_usage(argv[0], "unexpected argument '%s'",
		    argv[optind]);
	if (req.profile == NULL || csr_path == NULL || req.email == NULL)
		return cli_usage(argv[0], "--profile, --csr and --email are "
		    "required");
	if (cli_open(cli_dir(dir), 0, &ca, &db) != 0)
		goto out;
	if ((prof = ca_profile_get(ca, req.profile)) != NULL &&
	    !ca_profile_is_subscriber(prof)) {
		lb_err_set(&err, LB_EINVAL, "profile '%s' is not issued with "
		    "'lockbox issue' (operators: 'lockbox operator add')",
		    req.profile);
		rc = cli_fail(&err);
		goto out;
	}
	if (cli_read_input(csr_path, 64 * 1024, &buf, &len, &err) == -1 ||
	    (csr = ca_csr_parse(buf, len, &err)) == NULL) {
		rc = cli_fail(&err);
		goto out;
	}
	req.pubkey = X509_REQ_get0_pubkey(csr);
	if ((cert = ca_issue(ca, db, &req, cli_actor(), &err)) == NULL) {
		rc = cli_fail(&err);
		goto out;
	}
	if (cli_write_cert(out, cert, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if (out != NULL && (serial = ca_cert_serial(cert)) != NULL)
		printf("%s\n", serial);
	rc = 0;
out:
	free(serial);
	X509_free(cert);
	X509_REQ_free(csr);
	free(buf);
	core_db_close(db);
	ca_free(ca);
	return rc;
}
