/*
 * fuzz_escrow_record.c - libFuzzer harness for what a recovering officer's
 * client decodes from the server: the JSON of GET
 * /api/v1/recovery/requests/{id}/package.  Each record's certificate
 * (ca_cert_parse), base64 fields (core_b64_decode) and shares go, as
 * 'lockbox recovery fetch' passes them, to archive_record_open with the
 * one-time key; here that is the fixed throwaway key of testkey.h, so that
 * the seeds (lb-*.json, packages made with lockbox's own archive
 * functions for shares encrypted to that key) open and the fuzzer
 * reaches the Shamir combination, AES-GCM and key checks.  lb-package-*
 * are whole packages (some with a bad tag, e-mail, share or key); the
 * other seeds are hand edits of lb-package-ec.json, one field each.
 *
 * Contract: archive_record_open yields a key only when it belongs to the
 * record's certificate, with no error set; otherwise NULL and LB_EINVAL
 * with a message naming the certificate's serial.  The decoders it is fed
 * by give output exactly on success.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/err.h>

#include "archive/archive.h"
#include "testkey.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bounds that keep one input's work small (each share costs an RSA
 * decryption); archive_record_open itself refuses more than 255 shares. */
#define MAX_RECORDS 4
#define MAX_SHARES  (ARCHIVE_MAX_AGENTS + 2)
#define B64_MAX     ((size_t)1024 * 1024)

static EVP_PKEY *otkey;
static X509 *otcert;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if ((otkey = fuzz_test_key()) == NULL ||
	    (otcert = fuzz_test_cert()) == NULL)
		__builtin_trap();
	return 0;
}

/* core_b64_decode of a JSON string (NULL: not a string) with its
 * contract: output exactly on success, and non-empty. */
static int
b64(json_t *j, unsigned char **out, size_t *len)
{
	const char *s = json_string_value(j);
	int rc;

	*out = NULL;
	*len = 0;
	if (s == NULL)
		return -1;
	rc = core_b64_decode(s, json_string_length(j), B64_MAX, 0, out, len);
	if (rc == 0 ? *out == NULL || *len == 0 || *len > B64_MAX :
	    rc != -1 || *out != NULL)
		__builtin_trap();
	return rc;
}

static void
one_record(json_t *r)
{
	unsigned char *iv = NULL, *tag = NULL, *ct = NULL;
	unsigned char *cms[MAX_SHARES] = { NULL };
	size_t ivl = 0, tagl = 0, ctl = 0, lens[MAX_SHARES] = { 0 }, n = 0, i;
	json_t *shares = json_object_get(r, "shares"), *j;
	const char *email = json_string_value(json_object_get(r, "email"));
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	char *serial = NULL;
	lb_err err = { 0 };

	j = json_object_get(r, "cert");
	if (!json_is_string(j))
		return;
	cert = ca_cert_parse((const unsigned char *)json_string_value(j),
	    json_string_length(j), &err);
	if (cert == NULL) {
		if (err.code != LB_EINVAL)
			__builtin_trap();
		return;
	}
	if (email == NULL || !json_is_array(shares) ||
	    b64(json_object_get(r, "iv"), &iv, &ivl) == -1 ||
	    ivl != ARCHIVE_IV_LEN ||
	    b64(json_object_get(r, "tag"), &tag, &tagl) == -1 ||
	    tagl != ARCHIVE_TAG_LEN ||
	    b64(json_object_get(r, "ciphertext"), &ct, &ctl) == -1)
		goto out;
	for (n = 0; n < json_array_size(shares) && n < MAX_SHARES; n++)
		if (b64(json_array_get(shares, n), &cms[n], &lens[n]) == -1)
			goto out;
	if ((serial = ca_cert_serial(cert)) == NULL)
		__builtin_trap();
	key = archive_record_open(cert, email, iv, tag, ct, ctl,
	    (int)json_integer_value(json_object_get(r, "threshold")), otkey,
	    otcert, (const unsigned char *const *)cms, lens, n, &err);
	if (key == NULL) {
		/* a bad record is bad input, and the message names it */
		if (err.code != LB_EINVAL || strstr(err.msg, serial) == NULL)
			__builtin_trap();
		goto out;
	}
	if (err.code != LB_OK || archive_key_matches(cert, key, &err) != 0)
		__builtin_trap();
out:
	for (i = 0; i < n; i++)
		free(cms[i]);
	free(iv);
	free(tag);
	free(ct);
	free(serial);
	EVP_PKEY_free(key);
	X509_free(cert);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *pkg, *recs;
	json_error_t jerr;
	size_t i;

	pkg = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (pkg == NULL)
		return 0;
	recs = json_object_get(pkg, "records");
	for (i = 0; i < json_array_size(recs) && i < MAX_RECORDS; i++)
		one_record(json_array_get(recs, i));
	json_decref(pkg);
	ERR_clear_error();
	return 0;
}
