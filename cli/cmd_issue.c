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
"certificate and CA chain to the PKCS#12 --out-p12 (a new file, protected\n"
"by the passphrase in --p12-pass-file or typed on the terminal; --format\n"
"legacy for older clients);\n"
"--csr FILE --key FILE archives a key made elsewhere.  Needs at least M\n"
"active recovery agents ('lockbox escrow policy').  The CA-signed escrow\n"
"receipt (CMS) is written beside the output as OUT.receipt.\n"
"\n"
"The certificate is stored, then written as PEM to --out (its serial\n"
"printed) or to standard output.\n";

struct issue_args {
	ca_request req;
	const char *csr, *out, *p12, *p12_pass, *key, *key_pass;
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
issue_enc(ca_ctx *ca, sqlite3 *db, struct issue_args *a, X509_REQ *csr,
    lb_err *err)
{
	ca_request *req = &a->req;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	unsigned char *receipt = NULL;
	size_t receipt_len = 0;
	char *pass = NULL, *serial = NULL, *p12_pass = NULL;
	const char *out = a->p12 != NULL ? a->p12 : a->out;
	int rc = -1;

	/* where the key goes and its passphrase, before anything is issued */
	if (a->p12 != NULL && (ca_out_free(a->p12, err) == -1 ||
	    (p12_pass = ca_pass_new(a->p12_pass, a->p12, err)) == NULL))
		goto out;
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
		if (ca_p12_write(a->p12, p12_pass, key, cert,
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
	core_secret_free(p12_pass);
	X509_free(cert);
	EVP_PKEY_free(key);
	return rc;
}

static int
issue_option(void *state, int c, const char *arg)
{
	struct issue_args *a = state;
	char *end;

	switch (c) {
	case 'p':
		a->req.profile = arg;
		break;
	case 'c':
		a->csr = arg;
		break;
	case 'e':
		a->req.email = arg;
		break;
	case 'g':
		a->req.given_name = arg;
		break;
	case 's':
		a->req.surname = arg;
		break;
	case 'D':
		a->req.days = (int)strtol(arg, &end, 10);
		if (*end != '\0' || a->req.days <= 0)
			return cli_usage("issue", "--days needs a positive "
			    "number");
		break;
	case 'o':
		a->out = arg;
		break;
	case 'k':
		a->keygen = true;
		break;
	case 't':
		if ((a->kt = ca_key_type_parse(arg)) == CA_KEY_NONE)
			return cli_usage("issue", "unknown key type '%s'", arg);
		break;
	case 'P':
		a->p12 = arg;
		break;
	case 'f':
		a->p12_pass = arg;
		break;
	case 'F':
		if (strcmp(arg, "modern") == 0)
			a->fmt = CA_P12_MODERN;
		else if (strcmp(arg, "legacy") == 0)
			a->fmt = CA_P12_LEGACY;
		else
			return cli_usage("issue", "--format is modern or "
			    "legacy");
		break;
	case 'K':
		a->key = arg;
		break;
	case 'q':
		a->key_pass = arg;
		break;
	}
	return -1;
}

static int
issue_check(void *state, const cli_ctx *c)
{
	const struct issue_args *a = state;

	(void)c;
	if (a->req.profile == NULL || a->req.email == NULL)
		return cli_usage("issue", "--profile and --email are required");
	return -1;
}

/*
 * The rest of the command line is checked against the profile, which
 * only the opened CA knows: usage errors from here on come after the
 * open.
 */
static int
issue_run(void *state, cli_ctx *c)
{
	struct issue_args *a = state;
	ca_request *req = &a->req;
	lb_err err = { 0 };
	unsigned char *buf = NULL;
	size_t len = 0;
	X509_REQ *csr = NULL;
	X509 *cert = NULL;
	const ca_profile *prof;
	char *serial = NULL;
	bool enc;
	int rc = 1;

	if ((prof = ca_profile_get(c->ca, req->profile)) != NULL &&
	    !ca_profile_is_subscriber(prof)) {
		lb_err_set(&err, LB_EINVAL, "profile '%s' is not issued with "
		    "'lockbox issue' (operators: 'lockbox operator add')",
		    req->profile);
		rc = cli_fail(&err);
		goto out;
	}
	enc = prof != NULL && ca_profile_needs_escrow(prof);
	if (enc && a->keygen == (a->csr != NULL || a->key != NULL)) {
		rc = cli_usage("issue", "profile '%s' needs --keygen --out-p12 "
		    "FILE, or --csr FILE --key FILE, so that its key is "
		    "escrowed", req->profile);
		goto out;
	}
	if (enc && a->keygen && a->p12 == NULL) {
		rc = cli_usage("issue", "--keygen needs --out-p12 FILE");
		goto out;
	}
	if (enc && !a->keygen && (a->csr == NULL || a->key == NULL)) {
		rc = cli_usage("issue", "profile '%s' escrows its key: give "
		    "--csr FILE with --key FILE, or --keygen --out-p12 FILE",
		    req->profile);
		goto out;
	}
	if (!enc && (a->keygen || a->key != NULL || a->p12 != NULL)) {
		rc = cli_usage("issue", "the key of a %s certificate is made "
		    "by its owner and never handed over: give --csr",
		    req->profile);
		goto out;
	}
	if (!enc && a->csr == NULL) {
		rc = cli_usage("issue", "--csr is required");
		goto out;
	}
	if (a->csr != NULL && (cli_read_input(a->csr, (size_t)64 * 1024, &buf,
	    &len, &err) == -1 ||
	    (csr = ca_csr_parse(buf, len, &err)) == NULL)) {
		rc = cli_fail(&err);
		goto out;
	}
	if (enc) {
		rc = issue_enc(c->ca, c->db, a, csr, &err) == 0 ? 0 :
		    cli_fail(&err);
		goto out;
	}
	req->pubkey = X509_REQ_get0_pubkey(csr);
	req->spki = X509_REQ_get_X509_PUBKEY(csr);
	if ((cert = ca_issue(c->ca, c->db, req, cli_actor(), &err)) == NULL) {
		rc = cli_fail(&err);
		goto out;
	}
	if (cli_write_cert(a->out, cert, &err) == -1) {
		rc = cli_fail(&err);
		goto out;
	}
	if (a->out != NULL && (serial = ca_cert_serial(cert)) != NULL)
		printf("%s\n", serial);
	rc = 0;
out:
	free(serial);
	X509_free(cert);
	X509_REQ_free(csr);
	free(buf);
	return rc;
}

static const struct option issue_opts[] = {
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
	{ NULL, 0, NULL, 0 },
};
static const cli_sub issue_sub = {
	"issue", issue_help, issue_opts, issue_option, 0, 0, NULL,
	issue_check, CLI_KEY, issue_run,
};

int
cmd_issue(int argc, char **argv)
{
	struct issue_args a;

	memset(&a, 0, sizeof(a));
	return cli_run(&issue_sub, &a, argc, argv);
}
