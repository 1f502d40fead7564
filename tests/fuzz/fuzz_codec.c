/*
 * fuzz_codec.c - libFuzzer harness for core/codec.c's parsers of outside
 * input: core_b64_decode (strict and whitespace-tolerant: whatever the
 * strict decoder accepts the tolerant one accepts the same; what either
 * decodes, core_b64_encode writes back so that it decodes to the same
 * bytes) and core_time_parse (what it reads without CORE_TIME_LENIENT,
 * core_time_fmt writes back exactly).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* decode(encode(buf)) must be buf, in both decoding modes */
static void
round_trip(const unsigned char *buf, size_t len, unsigned eflags)
{
	unsigned char *back = NULL;
	size_t blen = 0;
	char *s = NULL;
	size_t n = 0;

	if (core_b64_encode(buf, len, eflags, &s, &n) == -1)
		__builtin_trap();
	if (strlen(s) != n)
		__builtin_trap();
	if (len == 0) {
		if (n != 0)
			__builtin_trap();
		free(s);
		return;
	}
	if (core_b64_decode(s, n, n, CORE_B64_WS, &back, &blen) == -1 ||
	    blen != len || memcmp(back, buf, len) != 0)
		__builtin_trap();
	free(back);
	if (!(eflags & CORE_B64_LINES) &&
	    (core_b64_decode(s, n, n, 0, &back, &blen) == -1 || blen != len ||
	    memcmp(back, buf, len) != 0))
		__builtin_trap();
	if (!(eflags & CORE_B64_LINES))
		free(back);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *out = NULL, *ws = NULL;
	size_t len = 0, wlen = 0;
	char *str, back[32];
	time_t t;
	int strict;

	strict = core_b64_decode((const char *)data, size, 1 << 20, 0, &out,
	    &len);
	if (core_b64_decode((const char *)data, size, 1 << 20, CORE_B64_WS,
	    &ws, &wlen) == 0) {
		round_trip(ws, wlen, 0);
		round_trip(ws, wlen, CORE_B64_LINES);
	} else if (strict == 0) {
		__builtin_trap();       /* tolerant refused what strict took */
	}
	if (strict == 0 && (wlen != len || memcmp(out, ws, len) != 0))
		__builtin_trap();
	free(out);
	free(ws);
	round_trip(data, size, 0);

	if ((str = malloc(size + 1)) == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	if (core_time_parse(str, 0, &t) == 0) {
		core_time_fmt(t, back, sizeof(back));
		if (strcmp(back, str) != 0 && strstr(str, ":60Z") == NULL)
			__builtin_trap();
	}
	(void)core_time_parse(str, CORE_TIME_LENIENT, &t);
	free(str);
	return 0;
}
