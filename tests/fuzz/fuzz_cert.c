/*
 * fuzz_cert.c - libFuzzer harness for ca_cert_parse, the parser of the
 * certificates users and parent CAs hand in (PEM or DER), followed by the
 * helpers applied to a parsed certificate: serial, names, key type and the
 * SPKI hash the store keys on.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "ca/ca_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lb_err err = { 0 };
	X509 *x;
	char *s, spki[65];

	x = ca_cert_parse(data, size, &err);
	if (x == NULL) {
		if (err.code == LB_OK || err.msg[0] == '\0')
			abort(); /* a refusal must say why */
		ERR_clear_error();
		return 0;
	}
	if (err.code != LB_OK)
		abort();
	if ((s = ca_cert_serial(x)) != NULL) {
		char norm[256];

		/* a serial we print must read back as itself */
		if (s[0] != '-' && strlen(s) < sizeof(norm) &&
		    (ca_serial_normalise(s, norm, sizeof(norm)) != 0 ||
		    strcmp(norm, s) != 0))
			abort();
		free(s);
	}
	free(ca_name_string(X509_get_subject_name(x)));
	free(ca_name_string(X509_get_issuer_name(x)));
	(void)ca_key_type_of(X509_get0_pubkey(x));
	if (X509_get0_pubkey(x) != NULL && ca_spki_sha256(x, spki) == 0 &&
	    strlen(spki) != 64)
		abort();
	X509_free(x);
	ERR_clear_error();
	return 0;
}
