/*
 * fuzz_share.c - libFuzzer harness for the escrow share decoder: the input
 * is the DER of a CMS EnvelopedData as a recovery agent's client receives
 * it from the server, decrypted with archive_cms_decrypt and re-encrypted
 * by archive_share_rewrap to a request certificate.  The recipient is the
 * fixed throwaway key of testkey.h, so that the seeds (made by mkseeds.sh)
 * decrypt and the checks after decryption are reached.
 *
 * Contract: a failure leaves no output and LB_EINVAL; a decrypted content
 * is readable and never longer than asked; rewrap succeeds exactly when
 * the content is a well-formed share (ARCHIVE_SHARE_LEN bytes, x != 0),
 * and what it produces decrypts to that same share.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "archive/archive.h"
#include "testkey.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *key;
static X509 *cert;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if ((key = fuzz_test_key()) == NULL || (cert = fuzz_test_cert()) == NULL)
		__builtin_trap();
	return 0;
}

/* A failed call: nothing out, and the error says bad input. */
static void
check_failed(const unsigned char *out, size_t out_len, const lb_err *err)
{
	if (out != NULL || out_len != 0 || err->code != LB_EINVAL ||
	    err->msg[0] == '\0')
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *plain = NULL, *wrapped = NULL, *back = NULL;
	size_t plain_len = 0, wrapped_len = 0, back_len = 0, i;
	lb_err err = { 0 };
	volatile unsigned char sink = 0;
	bool share_ok;
	int rc;

	/* the decoder alone, limited to one share's size */
	rc = archive_cms_decrypt(key, cert, data, size, ARCHIVE_SHARE_LEN,
	    &plain, &plain_len, &err);
	if (rc == -1) {
		check_failed(plain, plain_len, &err);
	} else {
		if (rc != 0 || plain == NULL || plain_len > ARCHIVE_SHARE_LEN ||
		    err.code != LB_OK)
			__builtin_trap();
		for (i = 0; i < plain_len; i++)
			sink ^= plain[i];
	}
	share_ok = rc == 0 && plain_len == ARCHIVE_SHARE_LEN && plain[0] != 0;

	/* the agent's rewrap, to the same certificate as request certificate */
	lb_err_clear(&err);
	rc = archive_share_rewrap(key, cert, data, size, cert, &wrapped,
	    &wrapped_len, &err);
	if (rc == -1) {
		check_failed(wrapped, wrapped_len, &err);
		if (share_ok)
			__builtin_trap();
		goto out;
	}
	if (rc != 0 || !share_ok || wrapped == NULL || wrapped_len == 0 ||
	    err.code != LB_OK)
		__builtin_trap();
	/* the officer's side gets the very share back */
	if (archive_cms_decrypt(key, cert, wrapped, wrapped_len,
	    ARCHIVE_SHARE_LEN, &back, &back_len, &err) == -1 ||
	    back_len != plain_len || memcmp(back, plain, plain_len) != 0)
		__builtin_trap();
out:
	(void)sink;
	if (plain != NULL)
		OPENSSL_clear_free(plain, plain_len);
	if (back != NULL)
		OPENSSL_clear_free(back, back_len);
	OPENSSL_free(wrapped);
	ERR_clear_error();
	return 0;
}
