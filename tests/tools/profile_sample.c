/*
 * profile_sample.c - test tool: issues one certificate of every profile
 * through ca_sign_cert (including smime-enc and ocsp-signing, which the CLI
 * does not issue on its own) and writes each as PEM, so that
 * tests/integration/12_profiles.sh can compare `openssl x509 -text` of each
 * against the reviewed fixtures in tests/data/.
 *
 *   profile_sample CADIR OUTDIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "ca/ca.h"

static int
sample(ca_ctx *ca, const char *outdir, const char *file, const char *profile,
    enum ca_key_type kt)
{
	ca_request req;
	lb_err err = { 0 };
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	FILE *f = NULL;
	char path[4096];
	int rc = -1;

	memset(&req, 0, sizeof(req));
	req.profile = profile;
	req.email = "alice@example.org";
	req.common_name = "Sample Name";
	req.dns_name = "pki.example.org";
	req.ip = "127.0.0.1";
	if ((key = ca_keygen(kt, &err)) == NULL)
		goto out;
	req.pubkey = key;
	if ((x = ca_sign_cert(ca, &req, &err)) == NULL)
		goto out;
	snprintf(path, sizeof(path), "%s/%s.pem", outdir, file);
	if ((f = fopen(path, "w")) == NULL || PEM_write_X509(f, x) != 1)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		fprintf(stderr, "profile_sample: %s: %s\n", file, err.msg);
	if (f != NULL)
		fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int
main(int argc, char **argv)
{
	lb_err err = { 0 };
	ca_ctx *ca;
	int rc = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: profile_sample CADIR OUTDIR\n");
		return 2;
	}
	if ((ca = ca_open(argv[1], 0, &err)) == NULL) {
		fprintf(stderr, "profile_sample: %s\n", err.msg);
		return 1;
	}
	rc |= sample(ca, argv[2], "smime-sign-ec", "smime-sign", CA_KEY_ECP256);
	rc |= sample(ca, argv[2], "smime-sign-rsa", "smime-sign", CA_KEY_RSA2048);
	rc |= sample(ca, argv[2], "smime-enc-ec", "smime-enc", CA_KEY_ECP256);
	rc |= sample(ca, argv[2], "smime-enc-rsa", "smime-enc", CA_KEY_RSA2048);
	rc |= sample(ca, argv[2], "recovery-agent", "recovery-agent",
	    CA_KEY_RSA3072);
	rc |= sample(ca, argv[2], "operator", "operator", CA_KEY_ECP256);
	rc |= sample(ca, argv[2], "tls-server", "tls-server", CA_KEY_ECP256);
	rc |= sample(ca, argv[2], "ocsp-signing", "ocsp-signing",
	    CA_KEY_ECP256);
	ca_free(ca);
	return rc ? 1 : 0;
}
