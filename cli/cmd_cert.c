/*
 * cmd_cert.c - `lockbox revoke`, `lockbox list` and `lockbox show`: the
 * certificate store from the command line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>

#include "cli/cli.h"

static const char revoke_help[] =
"usage: lockbox revoke SERIAL [--reason REASON] [--invalidity-date EPOCH]\n"
"                      [--dir DIR]\n"
"\n"
"Revokes the certificate with serial SERIAL (hex, as 'lockbox list' shows\n"
"it).  REASON is keyCompromise, affiliationChanged, superseded,\n"
"cessationOfOperation (default: no longer needed) or privilegeWithdrawn.\n"
"For keyCompromise, --invalidity-date names when the key is known or\n"
"suspected to have been compromised (seconds since the epoch).\n";

int
cmd_revoke(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "reason", required_argument, NULL, 'r' },
		{ "invalidity-date", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	int reason = 5, c, rc = 1;
	long long inv = 0;
	char *end;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;

	while ((c = cli_getopt(argc, argv, opts, revoke_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		case 'r':
			if ((reason = ca_reason_parse(optarg)) == -1)
				return cli_usage(argv[0], "unknown reason "
				    "'%s'", optarg);
			break;
		case 'i':
			inv = strtoll(optarg, &end, 10);
			if (*end != '\0' || inv <= 0)
				return cli_usage(argv[0], "--invalidity-date "
				    "needs seconds since the epoch");
			break;
		}
	}
	if (optind + 1 != argc)
		return cli_usage(argv[0], "exactly one SERIAL is required");
	if (inv != 0 && reason != 1)
		return cli_usage(argv[0], "--invalidity-date goes with "
		    "--reason keyCompromise");
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (ca_revoke(db, argv[optind], reason, (time_t)inv, cli_actor(),
	    &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	printf("revoked %s (%s)\n", argv[optind], ca_reason_name(reason));
	rc = 0;
out:
	core_db_close(db);
	ca_free(ca);
	return rc;
}

struct list_state {
	bool json;
	json_t *arr;
	int n;
};

static int
list_one(const ca_cert_info *ci, void *arg)
{
	struct list_state *ls = arg;
	char na[32];

	ls->n++;
	if (ls->json)
		return json_array_append_new(ls->arr, ca_cert_info_json(ci, false));
	core_time_fmt(ci->not_after, na, sizeof(na));
	printf("%-34s %-14s %-10s %s  %s\n", ci->serial, ci->profile,
	    ci->status, na, ci->email ? ci->email : ci->subject);
	return 0;
}

static const char list_help[] =
"usage: lockbox list [--email A] [--profile P]\n"
"                    [--status valid|revoked|expired] [--limit N] [--json]\n"
"                    [--dir DIR]\n"
"\n"
"Lists stored certificates, newest first: serial, profile, status, expiry\n"
"and e-mail (or subject).  --json prints a JSON array instead.\n";

int
cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "email", required_argument, NULL, 'e' },
		{ "profile", required_argument, NULL, 'p' },
		{ "status", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	ca_cert_filter f;
	struct list_state ls = { false, NULL, 0 };
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	char *end;
	int c, rc = 1;

	memset(&f, 0, sizeof(f));
	while ((c = cli_getopt(argc, argv, opts, list_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		case 'e':
			f.email = optarg;
			break;
		case 'p':
			f.profile = optarg;
			break;
		case 's':
			if (strcmp(optarg, "valid") != 0 &&
			    strcmp(optarg, "revoked") != 0 &&
			    strcmp(optarg, "expired") != 0)
				return cli_usage(argv[0], "--status is valid, "
				    "revoked or expired");
			f.status = optarg;
			break;
		case 'l':
			f.limit = (int)strtol(optarg, &end, 10);
			if (*end != '\0' || f.limit <= 0)
				return cli_usage(argv[0], "--limit needs a "
				    "positive number");
			break;
		case 'j':
			ls.json = true;
			break;
		}
	}
	if (optind != argc)
		return cli_usage(argv[0], "unexpected argument '%s'",
		    argv[optind]);
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (ls.json && (ls.arr = json_array()) == NULL)
		goto out;
	if (ca_cert_list(db, &f, list_one, &ls, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if (ls.json) {
		json_dumpf(ls.arr, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	rc = 0;
out:
	json_decref(ls.arr);
	core_db_close(db);
	ca_free(ca);
	return rc;
}

static const char show_help[] =
"usage: lockbox show SERIAL [--pem] [--json] [--dir DIR]\n"
"\n"
"Shows one stored certificate: serial, profile, subject, e-mail, validity,\n"
"status (and revocation time and reason).  --pem appends the certificate\n"
"in PEM; --json prints the same fields as JSON (with \"pem\").\n";

int
cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "pem", no_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	bool pem = false, json = false;
	lb_err err = { 0 };
	ca_ctx *ca = NULL;
	sqlite3 *db = NULL;
	ca_cert_info ci;
	X509 *x = NULL;
	BIO *bio = NULL;
	char nb[32], na[32], ra[32], *data;
	json_t *o = NULL;
	long len;
	int c, rc = 1;

	memset(&ci, 0, sizeof(ci));
	while ((c = cli_getopt(argc, argv, opts, show_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			dir = optarg;
			break;
		case 'p':
			pem = true;
			break;
		case 'j':
			json = true;
			break;
		}
	}
	if (optind + 1 != argc)
		return cli_usage(argv[0], "exactly one SERIAL is required");
	if (cli_open(cli_dir(dir), CA_OPEN_NO_KEY, &ca, &db) != 0)
		goto out;
	if (ca_cert_get(db, argv[optind], &ci, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if ((x = ca_cert_parse(ci.der, ci.der_len, &err)) == NULL ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(bio, x) != 1) {
		rc = cli_fail(&err);
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	if (json) {
		if ((o = ca_cert_info_json(&ci, true)) == NULL)
			goto out;
		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		rc = 0;
		goto out;
	}
	core_time_fmt(ci.not_before, nb, sizeof(nb));
	core_time_fmt(ci.not_after, na, sizeof(na));
	printf("serial:      %s\nprofile:     %s\nsubject:     %s\n"
	    "email:       %s\nnot before:  %s\nnot after:   %s\n"
	    "status:      %s\n", ci.serial, ci.profile, ci.subject,
	    ci.email ? ci.email : "-", nb, na, ci.status);
	if (ci.reason >= 0) {
		core_time_fmt(ci.revoked_at, ra, sizeof(ra));
		printf("revoked at:  %s\nreason:      %s\n", ra,
		    ca_reason_name(ci.reason));
	}
	if (pem)
		fwrite(data, 1, (size_t)len, stdout);
	rc = 0;
out:
	json_decref(o);
	BIO_free(bio);
	X509_free(x);
	ca_cert_info_clear(&ci);
	core_db_close(db);
	ca_free(ca);
	return rc;
}
