/*
 * fuzz_api_body.c - libFuzzer harness for the JSON body of
 * POST /api/v1/certificates/{serial}/revoke (web_revoke_body_parse).
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "web/web_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lb_err err = { 0 };
	int reason = -1;
	time_t inv = 0;

	if (web_revoke_body_parse(data, size, &reason, &inv, &err) == 0 &&
	    (reason < 0 || inv < 0))
		__builtin_trap();
	return 0;
}
