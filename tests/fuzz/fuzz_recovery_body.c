/*
 * fuzz_recovery_body.c - libFuzzer harness for the JSON body of
 * POST /api/v1/recovery/requests/{id}/approve
 * (archive_approval_parse): whatever it accepts must be consistent -
 * positive record ids, each share's bytes present and readable.
 */
#include <stddef.h>
#include <stdint.h>

#include "archive/archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	archive_approval a;
	lb_err err = { 0 };
	volatile unsigned char sink = 0;
	size_t i, j;

	if (archive_approval_parse(data, size, &a, &err) == -1) {
		if (a.shares != NULL || a.bufs != NULL || a.nshares != 0 ||
		    err.code != LB_EINVAL)
			__builtin_trap();
		return 0;
	}
	for (i = 0; i < a.nshares; i++) {
		if (a.shares[i].record_id < 1 || a.shares[i].cms == NULL ||
		    a.shares[i].cms_len == 0)
			__builtin_trap();
		for (j = 0; j < a.shares[i].cms_len; j++)
			sink ^= a.shares[i].cms[j];
	}
	(void)sink;
	archive_approval_clear(&a);
	return 0;
}
