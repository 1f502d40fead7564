/*
 * cred.c - `lockbox agent|operator request` and `... install`: a person's
 * credential made on that person's machine.  request makes the key
 * (encrypted under the holder's passphrase) and a PKCS#10 request for the
 * administrator's `add --csr`; install puts the certificate that add
 * printed together with the key into the PKCS#12 the client commands take
 * as --cred.  Neither opens a CA: the key never reaches the CA's host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "cli/cli.h"

/* The SPKI SHA-256 of key, lower hex, for the holder to compare. */
static int
key_fingerprint(EVP_PKEY *key, char out[65])
{
	unsigned char *der = NULL;
	int len, rc;

	if ((len = i2d_PUBKEY(key, &der)) <= 0)
		return log_openssl("i2d_PUBKEY");
	rc = core_sha256_hex(der, (size_t)len, out);
	OPENSSL_free(der);
	return rc;
}

static int
cred_option(void *state, int c, const char *arg)
{
	cli_cred_state *o = state;

	switch (c) {
	case 'n': o->name = arg; break;
	case 'e': o->email = arg; break;
	case 'K': o->out_key = arg; break;
	case 'C': o->out_csr = arg; break;
	case 'f': o->pass_file = arg; break;
	case 'c': o->cert = arg; break;
	case 'k': o->key = arg; break;
	case 'P': o->out_p12 = arg; break;
	case 'a': o->ca_cert = arg; break;
	case 't':
		if ((o->kt = ca_key_type_parse(arg)) == CA_KEY_NONE)
			return cli_usage(o->usage, "unknown key type '%s'", arg);
		break;
	}
	return -1;
}

/* request */

static int
request_check(void *state, const cli_ctx *c)
{
	cli_cred_state *o = state;

	(void)c;
	if (o->email == NULL || !core_email_valid(o->email))
		return cli_usage(o->usage, "--email ADDRESS is required");
	if (o->out_key == NULL || o->out_csr == NULL)
		return cli_usage(o->usage, "--out-key KEY and --out-csr CSR are "
		    "required");
	if (strcmp(o->out_key, o->out_csr) == 0)
		return cli_usage(o->usage, "--out-key and --out-csr must be two "
		    "files");
	if (o->name == NULL)
		o->name = o->email;
	if (o->kt == CA_KEY_NONE)
		o->kt = o->kt_default;
	return -1;
}

static int
request_run(void *state, cli_ctx *c)
{
	cli_cred_state *o = state;
	lb_err err = { 0 };
	char *pass = NULL, fp[65];
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	BIO *bio = NULL;
	char *pem;
	long len;
	int rc = 1;

	(void)c;
	/* both files new and the passphrase known before the key is made */
	if (ca_out_free(o->out_key, &err) == -1 ||
	    ca_out_free(o->out_csr, &err) == -1 ||
	    (pass = ca_pass_new(o->pass_file, o->out_key, &err)) == NULL ||
	    (key = ca_keygen(o->kt, &err)) == NULL ||
	    (req = ca_csr_make(key, NULL, o->name, o->email, &err)) == NULL)
		goto fail;
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509_REQ(bio, req) != 1 ||
	    key_fingerprint(key, fp) == -1) {
		lb_err_set(&err, LB_EINTERNAL, "cannot encode the request");
		goto fail;
	}
	len = BIO_get_mem_data(bio, &pem);
	if (ca_key_write(o->out_key, key, pass, true, &err) == -1)
		goto fail;
	if (core_file_write(o->out_csr, pem, (size_t)len, 0644, true,
	    &err) == -1) {
		remove(o->out_key);
		goto fail;
	}
	printf("key (%s, encrypted under your passphrase) in %s\n"
	    "request in %s\n"
	    "key fingerprint (SPKI SHA-256): %s\n"
	    "Give %s to the administrator for:\n"
	    "  lockbox %s add --csr %s --name '%s' --email %s%s --out CERT\n"
	    "then, here: lockbox %s install --cert CERT --key %s "
	    "--out-p12 FILE.p12\n", ca_key_type_name(o->kt), o->out_key,
	    o->out_csr, fp, o->out_csr, o->cmd, o->out_csr, o->name, o->email,
	    o->role_hint, o->cmd, o->out_key);
	rc = 0;
	goto out;
fail:
	rc = cli_fail(&err);
out:
	BIO_free(bio);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	core_secret_free(pass);
	return rc;
}

/* install */

static int
install_check(void *state, const cli_ctx *c)
{
	cli_cred_state *o = state;

	(void)c;
	if (o->cert == NULL || o->key == NULL || o->out_p12 == NULL)
		return cli_usage(o->usage, "--cert CERT, --key KEY and "
		    "--out-p12 FILE are required");
	return -1;
}

/* Every PEM certificate of path appended to chain. */
static int
add_certs(const char *path, STACK_OF(X509) **chain, lb_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	STACK_OF(X509) *more;
	int i, rc = -1;

	if (core_file_read(path, (size_t)1024 * 1024, &buf, &len, err) == -1 ||
	    (more = ca_pem_chain_parse(buf, len, path, err)) == NULL)
		goto out;
	if (*chain == NULL) {
		*chain = more;
		rc = 0;
		goto out;
	}
	for (i = 0; i < sk_X509_num(more); i++)
		if (sk_X509_push(*chain, sk_X509_value(more, i)) <= 0)
			break;
	if (i < sk_X509_num(more)) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		sk_X509_pop_free(more, X509_free);
		goto out;
	}
	sk_X509_free(more);
	rc = 0;
out:
	free(buf);
	return rc;
}

static int
install_run(void *state, cli_ctx *c)
{
	cli_cred_state *o = state;
	lb_err err = { 0 };
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert;
	char *pass = NULL, fp[65], cn[256] = "";
	int rc = 1;

	(void)c;
	if (ca_out_free(o->out_p12, &err) == -1 ||
	    add_certs(o->cert, &chain, &err) == -1 ||
	    (o->ca_cert != NULL && add_certs(o->ca_cert, &chain, &err) == -1))
		goto fail;
	cert = sk_X509_shift(chain);
	if ((pass = ca_pass_get(o->pass_file, o->key, &err)) == NULL ||
	    (key = ca_key_read(o->key, pass, &err)) == NULL) {
		X509_free(cert);
		goto fail;
	}
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		X509_free(cert);
		lb_err_set(&err, LB_EINVAL, "%s is not the certificate of the "
		    "key %s: nothing written", o->cert, o->key);
		goto fail;
	}
	X509_NAME_get_text_by_NID(X509_get_subject_name(cert),
	    NID_commonName, cn, sizeof(cn));
	if (ca_spki_sha256(cert, fp) == -1 ||
	    ca_p12_write(o->out_p12, pass, key, cert, chain, cn[0] != '\0' ?
	    cn : NULL, CA_P12_MODERN, &err) == -1) {
		X509_free(cert);
		if (err.code == LB_OK)
			lb_err_set(&err, LB_EINTERNAL, "cannot hash the key");
		goto fail;
	}
	X509_free(cert);
	printf("credential in %s, under the passphrase of %s\n"
	    "key fingerprint (SPKI SHA-256): %s\n"
	    "(%s is no longer needed: keep it as a backup or delete it)\n",
	    o->out_p12, o->key, fp, o->key);
	rc = 0;
	goto out;
fail:
	rc = cli_fail(&err);
out:
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	core_secret_free(pass);
	return rc;
}

static const struct option request_opts[] = {
	{ "name", required_argument, NULL, 'n' },
	{ "email", required_argument, NULL, 'e' },
	{ "out-key", required_argument, NULL, 'K' },
	{ "out-csr", required_argument, NULL, 'C' },
	{ "pass-file", required_argument, NULL, 'f' },
	{ "key-type", required_argument, NULL, 't' },
	{ NULL, 0, NULL, 0 },
};

static const struct option install_opts[] = {
	{ "cert", required_argument, NULL, 'c' },
	{ "key", required_argument, NULL, 'k' },
	{ "out-p12", required_argument, NULL, 'P' },
	{ "pass-file", required_argument, NULL, 'f' },
	{ "ca-cert", required_argument, NULL, 'a' },
	{ NULL, 0, NULL, 0 },
};

cli_sub
cli_cred_request_sub(const char *name, const char *help)
{
	cli_sub s = { name, help, request_opts, cred_option, 0, 0, NULL,
	    request_check, CLI_NONE, request_run };

	return s;
}

cli_sub
cli_cred_install_sub(const char *name, const char *help)
{
	cli_sub s = { name, help, install_opts, cred_option, 0, 0, NULL,
	    install_check, CLI_NONE, install_run };

	return s;
}
