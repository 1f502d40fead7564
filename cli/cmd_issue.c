/*
 * cmd_issue.c - `lockbox issue`: a subscriber certificate.  For signing
 * profiles, from a PKCS#10 request whose (verified) key is all that is
 * used; for the encryption profile, only together with the escrow of its
 * private key: generated here (--keygen) or handed in (--csr + --key).
 * Subject and SAN always come from the flags.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "archive/archive.h"
#include "cli/cli.h"

static const char issue_help[] =
"usage: lockbox issue --profile smime-sign --csr FILE --email ADDR\n"
"                     [--given-name G --surname S] [--days N] [--out FILE]\n"
"       lockbox issue --profile smime-enc --email ADDR --keygen\n"
"                     [--key-type rsa-3072|rsa-2048|ec-p256] --out-p12 FILE\n"
"                     [--p12-pass-file F] [--format modern|legacy]\n"
"       lockbox issue --profile smime-enc --email ADDR --csr FILE --key FILE\n"
"                     [--key-pass-file F] [--out FILE]\n"
"       (each takes --dir DIR)\n"
"\n"
"Issues a certificate of profile NAME.  The subject and subjectAltName come\n"
"from --email (and --given-name/--surname for individual-validated\n"
"profiles), never from a request.\n"
"\n"
"smime-sign: the key of the PKCS#10 request FILE (PEM or DER, '-' for\n"
"standard input) is certified after its signature verifies; the private key\n"
"never leaves its owner.\n"
"\n"
"smime-enc: the certificate is issued only together with the escrow of its\n"
"private key, in one transaction: --keygen makes the key here (default\n"
"rsa-3072: gpgsm 2.2 cannot decrypt with EC keys) and writes key,\n"
"certificate and CA chain to the PKCS#12 --out-p12 (password in FILE.pass,\n"
"0600, unless --p12-pass-file; --format legacy for older clients);\n"
"--csr FILE --key FILE archives a key made elsewhere.  Needs at least M\n"
"active recovery agents ('lockbox escrow policy').  The CA-signed escrow\n"
"receipt (CMS) is written beside the output as OUT.receipt.\n"
"\n"
"The certificate is stored, then written as PEM to --out (its serial\n"
"printed) or to standard output.\n";

struct issue_args {
	const char *dir, *csr, *out, *p12, *p12_pass, *key, *key_pass;
	bool keygen;
	enum ca_key_type kt;
	enum ca_p12_format fmt;
};

/* Writes the receipt as OUT.receipt (DER) or PEM on stdout. */
static int
write_receipt(const char *out, const unsigned char *der, size_t len,
    lb_err *err)
{
	char *path = NULL;
	int rc;

	if (out == NULL) {
		rc = PEM_write(stdout, "CMS", "", der, (long)len) > 0 ? 0 :
		    lb_err_set(err, LB_EINTERNAL, "cannot write the receipt");
		return rc;
	}
	if (asprintf(&path, "%s.receipt", out) == -1)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	rc = core_file_write(path, der, len, 0644, false, err);
	free(path);
	return rc;
}

/* The encryption profile: key generated or handed in, then escrowed. */
static int
issue_enc(ca_ctx *ca, sqlite3 *db, ca_request *req, struct issue_args *a,
    X509_REQ *csr, lb_err *err)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	unsigned char *receipt = NULL;
	size_t receipt_len = 0;
	char *pass = NULL, *serial = NULL;
	const char *out = a->p12 != NULL ? a->p12 : a->out;
	int rc = -1;

	if (a->keygen) {
		if ((key = ca_keygen(a->kt != CA_KEY_NONE ? a->kt :
		    CA_KEY_RSA3072, err)) == NULL)
			goto out;
	} else {
		if (a->key_pass != NULL &&
		    (pass = core_secret_read(a->key_pass, err)) == NULL)
			goto out;
		if ((key = ca_key_read(a->key, pass, err)) == NULL)
			goto out;
		if (EVP_PKEY_eq(X509_REQ_get0_pubkey(csr), key) != 1) {
			lb_err_set(err, LB_EINVAL, "%s is not the key of the "
			    "request %s", a->key, a->csr);
			goto out;
		}
	}
	if ((cert = archive_issue_enc(ca, db, req, key, cli_actor(), &receipt,
	    &receipt_len, err)) == NULL)
		goto out;
	if (a->p12 != NULL) {
		if (ca_p12_write(a->p12, a->p12_pass, key, cert,
		    ca_get0_chain(ca), req->email, a->fmt, err) == -1)
			goto out;
	} else if (cli_write_cert(a->out, cert, err) == -1) {
		goto out;
	}
	if (write_receipt(out, receipt, receipt_len, err) == -1)
		goto out;
	if (out != NULL && (serial = ca_cert_serial(cert)) != NULL)
		printf("%s\n", serial);
	rc = 0;
out:
	free(serial);
	OPENSSL_free(receipt);
	core_secret_free(pass);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

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
		{ "keygen", no_argument, NULL, 'k' },
		{ "key-type", required_argument, NULL, 't' },
		{ "out-p12", required_argument, NULL, 'P' },
		{ "p12-pass-file", required_argument, NULL, 'f' },
		{ "format", required_argument, NULL, 'F' },
		{ "key", required_argument, NULL, 'K' },
		{ "key-pass-file", required_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct issue_args a;
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
	bool enc;
	int c, rc = 1;

	memset(&req, 0, sizeof(req));
	memset(&a, 0, sizeof(a));
	while ((c = cli_getopt(argc, argv, opts, issue_help)) != -1) {
		switch (c) {
		case -2:
			return 0;
		case -3:
			return EXIT_USAGE;
		case 'd':
			a.dir = optarg;
			break;
		case 'p':
			req.profile = optarg;
			break;
		case 'c':
			a.csr = optarg;
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
			a.out = optarg;
			break;
		case 'k':
			a.keygen = true;
			break;
		case 't':
			if ((a.kt = ca_key_type_parse(optarg)) == CA_KEY_NONE)
				return cli_usage(argv[0], "unknown key type "
				    "'%s'", optarg);
			break;
		case 'P':
			a.p12 = optarg;
			break;
		case 'f':
			a.p12_pass = optarg;
			break;
		case 'F':
			if (strcmp(optarg, "modern") == 0)
				a.fmt = CA_P12_MODERN;
			else if (strcmp(optarg, "legacy") == 0)
				a.fmt = CA_P12_LEGACY;
			else
				return cli_usage(argv[0], "--format is modern "
				    "or legacy");
			break;
		case 'K':
			a.key = optarg;
			break;
		case 'q':
			a.key_pass = optarg;
			break;
		}
	}
	if (optind != argc)
		return cli_usage(argv[0], "unexpected argument '%s'",
		    argv[optind]);
	if (req.profile == NULL || req.email == NULL)
		return cli_usage(argv[0], "--profile and --email are required");
	if (cli_open(cli_dir(a.dir), 0, &ca, &db) != 0)
		goto out;
	if ((prof = ca_profile_get(ca, req.profile)) != NULL &&
	    !ca_profile_is_subscriber(prof)) {
		lb_err_set(&err, LB_EINVAL, "profile '%s' is not issued with "
		    "'lockbox issue' (operators: 'lockbox operator add')",
		    req.profile);
		rc = cli_fail(&err);
		goto out;
	}
	enc = prof != NULL && ca_profile_needs_escrow(prof);
	if (enc && a.keygen == (a.csr != NULL || a.key != NULL)) {
		rc = cli_usage(argv[0], "profile '%s' needs --keygen --out-p12 "
		    "FILE, or --csr FILE --key FILE, so that its key is "
		    "escrowed", req.profile);
		goto out;
	}
	if (enc && a.keygen && a.p12 == NULL) {
		rc = cli_usage(argv[0], "--keygen needs --out-p12 FILE");
		goto out;
	}
	if (enc && !a.keygen && (a.csr == NULL || a.key == NULL)) {
		rc = cli_usage(argv[0], "profile '%s' escrows its key: give "
		    "--csr FILE with --key FILE, or --keygen --out-p12 FILE",
		    req.profile);
		goto out;
	}
	if (!enc && (a.keygen || a.key != NULL || a.p12 != NULL)) {
		rc = cli_usage(argv[0], "the key of a %s certificate is made "
		    "by its owner and never handed over: give --csr",
		    req.profile);
		goto out;
	}
	if (!enc && a.csr == NULL) {
		rc = cli_usage(argv[0], "--csr is required");
		goto out;
	}
	if (a.csr != NULL && (cli_read_input(a.csr, (size_t)64 * 1024, &buf,
	    &len, &err) == -1 ||
	    (csr = ca_csr_parse(buf, len, &err)) == NULL)) {
		rc = cli_fail(&err);
		goto out;
	}
	if (enc) {
		rc = issue_enc(ca, db, &req, &a, csr, &err) == 0 ? 0 :
		    cli_fail(&err);
		goto out;
	}
	req.pubkey = X509_REQ_get0_pubkey(csr);
	req.spki = X509_REQ_get_X509_PUBKEY(csr);
	if ((cert = ca_issue(ca, db, &req, cli_actor(), &err)) == NULL) {
		rc = cli_fail(&err);
		goto out;
	}
	if (cli_write_cert(a.out, cert, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if (a.out != NULL && (serial = ca_cert_serial(cert)) != NULL)
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
