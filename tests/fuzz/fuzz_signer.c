/*
 * fuzz_signer.c - libFuzzer harness for the signer process's decoder
 * (ca_signer_handle, ca/signer.c): the first byte picks the request type
 * (1 CERT, 2 CRL, 3 RECEIPT; others must be refused), the rest is the
 * payload.  The CA is a throwaway P-256 one made at start in a scratch
 * directory, removed at exit.  Seeds (tests/fuzz/corpus/signer/, made by
 * mkseeds.sh) are well-formed SignerCert and SignerCrl requests and
 * receipts, and broken variants.
 *
 * Contract: 0 with output (the signed DER), or -1 / CA_SIGNER_MALFORMED
 * with no output and an error set; a certificate that comes out is never
 * a CA certificate and is signed by the CA.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ca_ctx *ca;
static char scratch[] = "/tmp/lockbox-fuzz-signer.XXXXXX";
static char cadir[sizeof(scratch) + 8];

static void
cleanup(void)
{
	char cmd[sizeof(scratch) + 16];

	ca_free(ca);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", scratch);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	ca_init_opts o;
	lb_err err = { 0 };
	char passfile[sizeof(scratch) + 16];

	(void)argc;
	(void)argv;
	memset(&o, 0, sizeof(o));
	o.key_type = CA_KEY_ECP256;
	o.name = "lockbox Signer Fuzz CA";
	if (mkdtemp(scratch) == NULL)
		__builtin_trap();
	snprintf(cadir, sizeof(cadir), "%s/ca", scratch);
	snprintf(passfile, sizeof(passfile), "%s/pass.pw", scratch);
	if (core_file_write(passfile, "fuzz passphrase\n", 16, 0600, false,
	    &err) == -1)
		__builtin_trap();
	o.admin_p12_pass_file = passfile;
	if (ca_init(cadir, &o, &err) == -1 ||
	    (ca = ca_open(cadir, 0, &err)) == NULL) {
		fprintf(stderr, "throwaway CA: %s\n", err.msg);
		__builtin_trap();
	}
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *out = NULL;
	const unsigned char *p;
	size_t len = 0;
	lb_err err = { 0 };
	X509 *x;
	int r;

	if (size < 1)
		return 0;
	r = ca_signer_handle(ca, data[0], data + 1, size - 1, &out, &len,
	    &err);
	if (r == 0) {
		if (out == NULL || len == 0 || err.code != LB_OK)
			__builtin_trap();
		if (data[0] == CA_SIGNER_CERT) {
			p = out;
			if ((x = d2i_X509(NULL, &p, (long)len)) == NULL ||
			    X509_check_ca(x) != 0 || X509_verify(x,
			    X509_get0_pubkey(ca_get0_cert(ca))) != 1)
				__builtin_trap();
			X509_free(x);
		}
	} else if ((r != -1 && r != CA_SIGNER_MALFORMED) || out != NULL ||
	    err.code == LB_OK)
		__builtin_trap();
	free(out);
	ERR_clear_error();
	return 0;
}
