/*
 * fuzz_csr.c - libFuzzer harness for CSR intake: every byte string is fed
 * to ca_csr_parse (PEM or DER, size cap, self-signature check), and what
 * parses is handed to the code that later looks at a request's key and
 * subject.  Besides the sanitizers, the harness checks the parser's
 * contract: NULL exactly when err is set, with a message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "ca/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lb_err err = { 0 };
	X509_REQ *req;
	enum ca_key_type t;
	char *name;

	req = ca_csr_parse(data, size, &err);
	if (req == NULL) {
		if (err.code == LB_OK || err.msg[0] == '\0')
			abort(); /* a refusal must say why */
		if (size > 64 * 1024 && err.code != LB_ETOOBIG)
			abort();
		ERR_clear_error();
		return 0;
	}
	if (err.code != LB_OK)
		abort(); /* success with an error recorded */
	/* what issuance does with an accepted request */
	t = ca_key_type_of(X509_REQ_get0_pubkey(req));
	if (ca_key_type_parse(ca_key_type_name(t)) != t)
		abort();
	if ((name = ca_name_string(X509_REQ_get_subject_name(req))) != NULL)
		free(name);
	X509_REQ_free(req);
	ERR_clear_error();
	return 0;
}
