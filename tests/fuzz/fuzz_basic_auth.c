/*
 * fuzz_basic_auth.c - libFuzzer harness for the Authorization header of
 * EST requests (web_basic_auth_parse): whatever it accepts has a
 * non-empty user without ':' and both parts within the header's size.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "web/web_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *hdr, *user = NULL, *pass = NULL;

	/* a header value is a C string: MHD hands it over NUL-terminated */
	if ((hdr = malloc(size + 1)) == NULL)
		return 0;
	memcpy(hdr, data, size);
	hdr[size] = '\0';
	if (web_basic_auth_parse(hdr, &user, &pass) == 0) {
		if (user == NULL || pass == NULL || user[0] == '\0' ||
		    strchr(user, ':') != NULL ||
		    strlen(user) + strlen(pass) >= size)
			__builtin_trap();
		free(user);
		OPENSSL_clear_free(pass, strlen(pass));
	} else if (user != NULL || pass != NULL) {
		__builtin_trap();
	}
	free(hdr);
	return 0;
}
