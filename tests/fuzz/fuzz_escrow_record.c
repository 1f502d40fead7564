/*
 * fuzz_escrow_record.c - libFuzzer harness for what a recovering officer's
 * client decodes from the server: the package of GET
 * /api/v1/recovery/requests/{id}/package, read by archive_package_parse
 * and opened by archive_package_open with the one-time key, as 'lockbox
 * recovery fetch' does; here that is the fixed throwaway key of
 * testkey.h, so that the seeds (lb-*.json, packages made with lockbox's
 * own archive functions for shares encrypted to that key) open and the
 * fuzzer reaches the Shamir combination, AES-GCM and key checks.
 * lb-package-* are whole packages (some with a bad tag, e-mail, share or
 * key); the other seeds are hand edits of lb-package-ec.json, one field
 * each.
 *
 * Contract: the reader's output is all or nothing; the opener yields keys
 * only when every record opened to a key of its own certificate, with no
 * error set; otherwise none and LB_EINVAL with a message naming the
 * failing record's serial (or the package's lack of keys).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "archive/archive.h"
#include "testkey.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One input's work stays small: each share costs an RSA decryption. */
#define MAX_SHARES_TOTAL (2 * ARCHIVE_MAX_AGENTS)

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

/* Whether msg names the serial of one of p's certificates (or says the
 * package holds no key). */
static bool
names_a_record(const archive_package *p, const char *msg)
{
	bool named = strstr(msg, "holds no key") != NULL;
	char *serial;
	size_t i;

	for (i = 0; !named && i < p->nrecords; i++) {
		if ((serial = ca_cert_serial(p->records[i].cert)) == NULL)
			__builtin_trap();
		named = strstr(msg, serial) != NULL;
		free(serial);
	}
	return named;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	archive_package pkg;
	archive_opened keys;
	lb_err err = { 0 };
	size_t i, shares = 0;

	if (archive_package_parse((const char *)data, size, &pkg, &err) ==
	    -1) {
		if (pkg.records != NULL || pkg.chain != NULL ||
		    pkg.nrecords != 0 || err.code == LB_OK)
			__builtin_trap();
		return 0;
	}
	for (i = 0; i < pkg.nrecords; i++) {
		const archive_package_record *r = &pkg.records[i];

		if (r->cert == NULL || r->serial == NULL || r->email == NULL ||
		    r->threshold < 1 || r->threshold > 255 ||
		    r->nshares > ARCHIVE_MAX_AGENTS)
			__builtin_trap();
		shares += r->nshares;
	}
	if (pkg.chain == NULL || sk_X509_num(pkg.chain) < 1)
		__builtin_trap();
	if (shares > MAX_SHARES_TOTAL)
		goto out;
	lb_err_clear(&err);
	if (archive_package_open(&pkg, NULL, otkey, otcert, &keys, &err) ==
	    -1) {
		/* a bad record is bad input, and the message says which */
		if (keys.n != 0 || keys.keys != NULL || err.code != LB_EINVAL ||
		    !names_a_record(&pkg, err.msg))
			__builtin_trap();
		goto out;
	}
	if (err.code != LB_OK || keys.n != pkg.nrecords)
		__builtin_trap();
	for (i = 0; i < keys.n; i++)
		if (archive_key_matches(keys.certs[i], keys.keys[i], &err) != 0)
			__builtin_trap();
	archive_opened_clear(&keys);
out:
	archive_package_clear(&pkg);
	ERR_clear_error();
	return 0;
}
