/*
 * cmd_operator.c - `lockbox operator add|list|remove`: operator credentials
 * and their roles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"

static const char operator_help[] =
"usage: lockbox operator add --role ROLE --csr FILE --name N --email A\n"
"                            [--out FILE] [--dir DIR]\n"
"       lockbox operator add --role ROLE --keygen --out-p12 FILE\n"
"                            --name N --email A [--key-type T]\n"
"                            [--p12-pass-file F] [--dir DIR]\n"
"       lockbox operator list [--json] [--dir DIR]\n"
"       lockbox operator remove ID|SERIAL [--dir DIR]\n"
"\n"
"Operators authenticate to the daemon with a client certificate of this\n"
"CA; their role is a row in the database.  ROLE is admin, officer,\n"
"recovery-officer, recovery-agent or auditor.  With role separation on\n"
"(the default), one e-mail may not hold both an issuing role (admin,\n"
"officer) and a recovery role (recovery-officer, recovery-agent).\n"
"\n"
"  --csr FILE       certify the key of this PKCS#10 request (recommended:\n"
"                   the key never leaves the operator); PEM to --out or\n"
"                   standard output\n"
"  --keygen         generate the key here (--key-type, default ec-p256;\n"
"                   rsa-3072 for recovery agents) and write key,\n"
"                   certificate and CA chain to the PKCS#12 --out-p12,\n"
"                   its generated password to FILE.pass (0600) unless\n"
"                   --p12-pass-file names one\n"
"  remove           withdraws the role and revokes the credential\n"
"                   (privilegeWithdrawn)\n";

int
cli_operator_add(int argc, char **argv, enum ca_role fixed, const char *help)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "role", required_argument, NULL, 'r' },
		{ "csr", required_argument, NULL, 'c' },
		{ "name", required_argument, NULL, 'n' },
		{ "email", required_argument, NULL, 'e' },
		{ "out", required_argument, NULL, 'o' },
		{ "keygen", no_argument, NULL, 'k' },
		{ "key-type", required_argument, NULL, 't' },
		{ "out-p12", required_argument, NULL, 'P' },
		{ "p12-pass-file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *csr_path = NULL, *name = NULL, *email = NULL,
	    *out = NULL, *p12 = NULL, *pass_file = NULL;
	bool keygen = false;
	const char *cmd = fixed == CA_ROLE_RECOVERY_AGENT ? "agent" :
	    "operator";
	enum ca_role role = fixed;
	enum ca_key_type kt = CA_KEY_NONE;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	X509_REQ *csr = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	char *serial = NULL;
	int c, rc = 1;

	while ((c = cli_getopt(argc, argv, opts, help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		case 'r':
			if (fixed != CA_ROLE_NONE)
				return cli_usage(argv[0], "--role is implied "
				    "here");
			if ((role = ca_role_parse(optarg)) == CA_ROLE_NONE)
				return cli_usage(cmd, "unknown role '%s'",
				    optarg);
			break;
		case 'c':
			csr_path = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'e':
			email = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'k':
			keygen = true;
			break;
		case 't':
			if ((kt = ca_key_type_parse(optarg)) == CA_KEY_NONE)
				return cli_usage(cmd, "unknown key type "
				    "'%s'", optarg);
			break;
		case 'P':
			p12 = optarg;
			break;
		case 'f':
			pass_file = optarg;
			break;
		}
	}
	if (optind != argc)
		return cli_usage(cmd, "unexpected argument '%s'",
		    argv[optind]);
	if (role == CA_ROLE_NONE)
		return cli_usage(cmd, "--role is required");
	if (keygen == (csr_path != NULL))
		return cli_usage(cmd, "give either --csr FILE or "
		    "--keygen --out-p12 FILE");
	if (keygen && p12 == NULL)
		return cli_usage(cmd, "--keygen needs --out-p12 FILE");
	if (email == NULL)
		return cli_usage(cmd, "--email is required");
	if (name == NULL)
		name = email;
	if (cli_open(cli_dir(dir), 0, &ca, &db) != 0)
		goto out;
	if (keygen) {
		if (kt == CA_KEY_NONE)
			kt = role == CA_ROLE_RECOVERY_AGENT ? CA_KEY_RSA3072 :
			    CA_KEY_ECP256;
		if ((key = ca_keygen(kt, &err)) == NULL) {
			rc = cli_fail(&err);
			goto out;
		}
	} else {
		if (cli_read_input(csr_path, (size_t)64 * 1024, &buf, &len,
		    &err) == -1 || (csr = ca_csr_parse(buf, len, &err)) == NULL) {
			rc = cli_fail(&err);
			goto out;
		}
	}
	cert = ca_operator_add(ca, db, role, name, email,
	    keygen ? key : X509_REQ_get0_pubkey(csr), cli_actor(), &err);
	if (cert == NULL) {
		rc = cli_fail(&err);
		goto out;
	}
	if (keygen) {
		if (ca_p12_write(p12, pass_file, key, cert, ca_get0_chain(ca),
		    name, CA_P12_MODERN, &err) == -1) {
			rc = cli_fail(&err);
			goto out;
		}
	} else if (cli_write_cert(out, cert, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if ((serial = ca_cert_serial(cert)) != NULL)
		fprintf(keygen || out != NULL ? stdout : stderr,
		    "%s %s added as %s, credential serial %s\n", cmd, email,
		    ca_role_name(role), serial);
	rc = 0;
out:
	free(serial);
	EVP_PKEY_free(key);
	X509_free(cert);
	X509_REQ_free(csr);
	free(buf);
	core_db_close(db);
	ca_free(ca);
	return rc;
}

static int
list_one(const ca_operator *op, void *arg)
{
	json_t *arr = arg;
	char na[32];

	core_time_fmt(op->not_after, na, sizeof(na));
	if (arr != NULL)
		return json_array_append_new(arr, json_pack(
		    "{s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "id",
		    (json_int_t)op->id, "name", op->name, "email", op->email,
		    "role", op->role, "status", op->status, "serial",
		    op->serial, "not_after", na));
	printf("%-4lld %-16s %-8s %-34s %s  %s <%s>\n", (long long)op->id,
	    op->role, op->status, op->serial, na, op->name, op->email);
	return 0;
}

static int
op_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	json_t *arr = NULL;
	bool json = false;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	int c, rc = 1;

	while ((c = cli_getopt(argc, argv, opts, operator_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		case 'j':
			json = true;
			break;
		}
	}
	if (optind != argc)
		return cli_usage("operator", "unexpected argument '%s'",
		    argv[optind]);
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (json && (arr = json_array()) == NULL)
		goto out;
	if (ca_operator_list(db, list_one, arr, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if (json) {
		json_dumpf(arr, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	rc = 0;
out:
	json_decref(arr);
	core_db_close(db);
	ca_free(ca);
	return rc;
}

int
cli_operator_remove(int argc, char **argv, const char *help)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	int c, rc = 1;

	while ((c = cli_getopt(argc, argv, opts, help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		}
	}
	if (optind + 1 != argc)
		return cli_usage("operator", "remove needs one ID or SERIAL");
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (ca_operator_remove(db, argv[optind], cli_actor(), &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	printf("operator %s removed; its credential is revoked\n",
	    argv[optind]);
	rc = 0;
out:
	core_db_close(db);
	ca_free(ca);
	return rc;
}

int
cmd_operator(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "add") == 0)
		return cli_operator_add(argc - 1, argv + 1, CA_ROLE_NONE,
		    operator_help);
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return op_list(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "remove") == 0)
		return cli_operator_remove(argc - 1, argv + 1, operator_help);
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		fputs(operator_help, stdout);
		return 0;
	}
	return cli_usage("operator", "expected add, list or remove");
}
