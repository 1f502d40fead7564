/*
 * fuzz_conf.c - libFuzzer harness for lockbox.conf: core_conf_load_mem
 * (OpenSSL's NCONF under our size and NUL checks), the typed getters
 * (string, long, size, bool) on the names lockbox reads, and the profile
 * builder that turns the [profile.*] sections into encoded extensions,
 * against a throwaway CA certificate made once at start-up.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "ca/ca_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *ca_cert;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	EVP_PKEY *key;

	(void)argc;
	(void)argv;
	if ((key = ca_keygen(CA_KEY_ECP256, NULL)) == NULL ||
	    (ca_cert = ca_self_sign(key, "fuzz CA", 30, NULL)) == NULL)
		abort();
	EVP_PKEY_free(key);
	return 0;
}

static void
getters(const core_conf *c)
{
	static const char *const sections[] = {
		"ca", "server", "profile.smime-sign", "default", "",
	};
	static const char *const names[] = {
		"name", "base_url", "threads", "body_limit", "role_separation",
		"validity_days", "non_repudiation", "connection_timeout",
	};
	size_t i, j, sz;
	long v;
	bool b;

	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		for (j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
			lb_err err = { 0 };
			const char *s = core_conf_get(c, sections[i], names[j],
			    NULL);

			if (s != NULL && strlen(s) > 1024 * 1024)
				abort();
			v = -7;
			if (core_conf_get_long(c, sections[i], names[j], 5, 1,
			    86400, &v, &err) == 0) {
				if (v < 1 || v > 86400)
					abort(); /* out of range accepted */
			} else if (err.code != LB_EINVAL || v != -7) {
				abort(); /* failed without saying why */
			}
			lb_err_clear(&err);
			sz = 9;
			if (core_conf_get_size(c, sections[i], names[j], 64, 16,
			    65536, &sz, &err) == 0) {
				if (sz < 16 || sz > 65536)
					abort();
			} else if (err.code != LB_EINVAL || sz != 9) {
				abort();
			}
			lb_err_clear(&err);
			if (core_conf_get_bool(c, sections[i], names[j], true,
			    &b, &err) == -1 && err.code != LB_EINVAL)
				abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lb_err err = { 0 };
	core_conf *c;
	struct ca_ctx ca;

	c = core_conf_load_mem((const char *)data, size, &err);
	if (c == NULL) {
		if (err.code == LB_OK || err.msg[0] == '\0')
			abort();
		ERR_clear_error();
		return 0;
	}
	getters(c);
	/* the profiles ca_open would build from this config */
	memset(&ca, 0, sizeof(ca));
	ca.conf = c;
	ca.cert = ca_cert;
	ca.base_url = (char *)"http://127.0.0.1:8080";
	lb_err_clear(&err);
	if (ca_profiles_load(&ca, &err) == -1 && err.code == LB_OK)
		abort();
	ca_profiles_free(&ca);
	core_conf_free(c);
	ERR_clear_error();
	return 0;
}
