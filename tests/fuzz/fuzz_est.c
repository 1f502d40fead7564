/*
 * fuzz_est.c - libFuzzer harness for the EST bodies of enroll/est.c.
 * Every input goes, whole, to enroll_est_csr_decode (base64, PEM) and
 * enroll_est_certs_parse (base64 or DER certs-only); and to
 * enroll_est_multipart_parse, where the first byte picks how the
 * Content-Type is made: from a boundary of the next bytes (quoted or
 * not), or, raw, from the input's first line.  What parses is used the
 * way the agent uses it: CSRs are asked for their decrypt key id, certs
 * go back through enroll_est_certs_only, parts through
 * enroll_est_key_parse.  Besides the sanitizers, the harness checks the
 * contracts: NULL or -1 exactly when err is set, with a message; parts
 * pointing inside the body.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "enroll/enroll.h"

#define MAX_PARTS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_refusal(const lb_err *err)
{
	if ((err->code != LB_EINVAL && err->code != LB_ETOOBIG) ||
	    err->msg[0] == '\0')
		abort(); /* a refusal must say why, as bad input */
}

static void
fuzz_csr(const uint8_t *data, size_t size)
{
	lb_err err = { 0 };
	X509_REQ *req;
	unsigned char *id = NULL;
	size_t idlen = 0;
	int rc;

	if ((req = enroll_est_csr_decode(data, size, &err)) == NULL) {
		check_refusal(&err);
		if (size > ENROLL_BODY_MAX && err.code != LB_ETOOBIG)
			abort();
		return;
	}
	if (err.code != LB_OK)
		abort();
	rc = enroll_est_decrypt_key_id(req, &id, &idlen, &err);
	if ((rc == 1) != (id != NULL) || (rc == 1 && idlen == 0) ||
	    (rc == -1 && err.code != LB_EINVAL))
		abort();
	OPENSSL_free(id);
	X509_REQ_free(req);
}

static void
fuzz_certs(const uint8_t *data, size_t size)
{
	lb_err err = { 0 };
	STACK_OF(X509) *sk, *again;
	X509 *certs[8];
	char *b64 = NULL;
	size_t len = 0, i, n;

	if ((sk = enroll_est_certs_parse(data, size, &err)) == NULL) {
		check_refusal(&err);
		return;
	}
	n = (size_t)sk_X509_num(sk);
	if (n == 0 || err.code != LB_OK)
		abort();
	if (n > 8)
		n = 8;
	for (i = 0; i < n; i++)
		certs[i] = sk_X509_value(sk, (int)i);
	/* what parsed encodes again, to the same certificates in order */
	if (enroll_est_certs_only(certs, n, &b64, &len, &err) == 0) {
		if ((again = enroll_est_certs_parse((unsigned char *)b64, len,
		    &err)) == NULL || (size_t)sk_X509_num(again) != n)
			abort();
		for (i = 0; i < n; i++)
			if (X509_cmp(sk_X509_value(again, (int)i), certs[i]) != 0)
				abort();
		sk_X509_pop_free(again, X509_free);
		free(b64);
	}
	sk_X509_pop_free(sk, X509_free);
}

static void
fuzz_multipart(const uint8_t *data, size_t size)
{
	enroll_part parts[MAX_PARTS];
	lb_err err = { 0 };
	char ctype[128], bnd[32];
	const char *body;
	size_t blen, len, n = 99, i;
	EVP_PKEY *key;

	if (size < 1)
		return;
	if (data[0] & 0x80) {
		/* the Content-Type is the first line, raw */
		const uint8_t *nl = memchr(data + 1, '\n', size - 1);

		len = nl != NULL ? (size_t)(nl - data) - 1 : size - 1;
		if (len >= sizeof(ctype))
			len = sizeof(ctype) - 1;
		memcpy(ctype, data + 1, len);
		ctype[len] = '\0';
		body = nl != NULL ? (const char *)nl + 1 : "";
		len = nl != NULL ? size - (size_t)(nl - data) - 1 : 0;
	} else {
		/* a boundary of 1..16 bytes taken from the input */
		blen = (size_t)(data[0] & 0x0f) + 1;
		if (blen > size - 1)
			blen = size - 1;
		for (i = 0; i < blen; i++)
			bnd[i] = (char)data[1 + i];
		bnd[blen] = '\0';
		snprintf(ctype, sizeof(ctype), (data[0] & 0x40) ?
		    "multipart/mixed; boundary=\"%s\"" :
		    "multipart/mixed; boundary=%s", bnd);
		body = (const char *)data + 1 + blen;
		len = size - 1 - blen;
	}
	if (enroll_est_multipart_parse(ctype, body, len, parts, MAX_PARTS, &n,
	    &err) == -1) {
		check_refusal(&err);
		if (n != 0)
			abort();
		return;
	}
	if (n == 0 || n > MAX_PARTS || err.code != LB_OK)
		abort();
	for (i = 0; i < n; i++) {
		if (parts[i].content_type == NULL || parts[i].body < body ||
		    parts[i].body + parts[i].len > body + len)
			abort();
		if ((key = enroll_est_key_parse(parts[i].body, parts[i].len,
		    NULL, NULL, &err)) != NULL)
			EVP_PKEY_free(key);
		lb_err_clear(&err);
	}
	enroll_parts_clear(parts, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_csr(data, size);
	fuzz_certs(data, size);
	fuzz_multipart(data, size);
	ERR_clear_error();
	return 0;
}
