/*
 * json.c - the JSON form of a stored certificate, shared by the CLI
 * (`list --json`, `show --json`) and the HTTP API so both speak the same
 * field names.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "ca/ca_int.h"

int
ca_json_put(json_t *o, const char *key, json_t *v)
{
	if (v == NULL)
		return -1;
	return json_object_set_new(o, key, v);
}

json_t *
ca_json_str(const char *s)
{
	json_t *j;
	char *copy;
	size_t i;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) != NULL)
		return j;
	/* not UTF-8: keep the ASCII, mark the rest */
	if ((copy = strdup(s)) == NULL)
		return NULL;
	for (i = 0; copy[i] != '\0'; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

json_t *
ca_json_time(time_t t)
{
	char buf[32];

	core_time_fmt(t, buf, sizeof(buf));
	return json_string(buf);
}

json_t *
ca_json_b64(const unsigned char *buf, size_t len)
{
	char *out;
	size_t n;
	json_t *j;

	if (core_b64_encode(buf, len, 0, &out, &n) == -1)
		return NULL;
	j = json_stringn(out, n);
	/* the bytes may be a share or a wrapped key */
	OPENSSL_clear_free(out, n + 1);
	return j;
}

static json_t *
der_pem(const unsigned char *der, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	json_t *j = NULL;
	char *data;
	long n;

	if (bio != NULL && PEM_write_bio(bio, "CERTIFICATE", "", der,
	    (long)len) > 0 && (n = BIO_get_mem_data(bio, &data)) > 0)
		j = json_stringn(data, (size_t)n);
	BIO_free(bio);
	return j;
}

json_t *
ca_cert_info_json(const ca_cert_info *ci, bool with_pem)
{
	json_t *j = json_object();
	int bad = 0;

	if (j == NULL)
		return NULL;
	bad |= ca_json_put(j, "serial", ca_json_str(ci->serial));
	bad |= ca_json_put(j, "profile", ca_json_str(ci->profile));
	bad |= ca_json_put(j, "email", ca_json_str(ci->email));
	bad |= ca_json_put(j, "subject", ca_json_str(ci->subject));
	bad |= ca_json_put(j, "status", ca_json_str(ci->status));
	bad |= ca_json_put(j, "not_before", ca_json_time(ci->not_before));
	bad |= ca_json_put(j, "not_after", ca_json_time(ci->not_after));
	bad |= ca_json_put(j, "issued_at", ca_json_time(ci->issued_at));
	if (ci->reason >= 0) {
		bad |= ca_json_put(j, "revoked_at", ca_json_time(ci->revoked_at));
		bad |= ca_json_put(j, "reason", json_string(ca_reason_name(
		    ci->reason)));
	}
	if (with_pem)
		bad |= ca_json_put(j, "pem", der_pem(ci->der, ci->der_len));
	if (bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}
