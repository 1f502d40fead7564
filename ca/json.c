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
ca_json_done(json_t *o, bool bad)
{
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
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
ca_json_time_or_null(time_t t)
{
	return t != 0 ? ca_json_time(t) : json_null();
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

json_t *
ca_json_pem(const unsigned char *der, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	json_t *j = NULL;
	char *data;
	long n;

	if (bio != NULL && der != NULL && PEM_write_bio(bio, "CERTIFICATE", "",
	    der, (long)len) > 0 && (n = BIO_get_mem_data(bio, &data)) > 0)
		j = json_stringn(data, (size_t)n);
	BIO_free(bio);
	return j;
}

json_t *
ca_json_chain(STACK_OF(X509) *chain)
{
	json_t *j = NULL;
	char *pem;
	size_t n;

	if ((pem = ca_certs_pem(NULL, 0, chain, &n)) != NULL && n > 0)
		j = json_stringn(pem, n);
	free(pem);
	return j;
}

json_t *
ca_json_load_object(const void *buf, size_t len, const char *const *known,
    const char *example, lb_err *err)
{
	json_t *body, *v;
	json_error_t jerr;
	const char *key;
	char names[128] = "";
	size_t i;

	if (len == 0) {
		lb_err_set(err, LB_EINVAL, "a JSON body such as %s is needed",
		    example);
		return NULL;
	}
	if ((body = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		lb_err_set(err, LB_EINVAL, "malformed JSON at line %d, column "
		    "%d: %s", jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(body)) {
		json_decref(body);
		lb_err_set(err, LB_EINVAL, "the body must be a JSON object");
		return NULL;
	}
	json_object_foreach(body, key, v) {
		for (i = 0; known[i] != NULL; i++)
			if (strcmp(key, known[i]) == 0)
				break;
		if (known[i] != NULL)
			continue;
		for (i = 0; known[i] != NULL; i++) {
			if (i > 0)
				strncat(names, ", ", sizeof(names) -
				    strlen(names) - 1);
			strncat(names, known[i], sizeof(names) - strlen(names) -
			    1);
		}
		lb_err_set(err, LB_EINVAL, "unknown field '%s' (known: %s)",
		    key, names);
		json_decref(body);
		return NULL;
	}
	return body;
}

char *
ca_json_dup(const json_t *o, const char *key, size_t max, bool *oom)
{
	const json_t *v = json_object_get(o, key);
	char *s;

	if (!json_is_string(v) || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return NULL;
	if ((s = strdup(json_string_value(v))) == NULL)
		*oom = true;
	return s;
}

int
ca_json_get_string(const json_t *o, const char *name, bool optional,
    size_t max, const char **out, lb_err *err)
{
	const json_t *v = json_object_get(o, name);

	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (optional)
			return 0;
		return lb_err_set(err, LB_EINVAL, "field '%s' is required",
		    name);
	}
	if (!json_is_string(v))
		return lb_err_set(err, LB_EINVAL, "field '%s' must be a string",
		    name);
	if (json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return lb_err_set(err, LB_EINVAL, "field '%s' is too long or "
		    "holds a NUL byte", name);
	*out = json_string_value(v);
	return 0;
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
	bad |= ca_json_put(j, "issued", ca_json_time(ci->issued));
	bad |= ca_json_put(j, "issued_at", ca_json_time(ci->issued));
	if (ci->reason >= 0) {
		bad |= ca_json_put(j, "revoked", ca_json_time(ci->revoked));
		bad |= ca_json_put(j, "revoked_at", ca_json_time(ci->revoked));
		bad |= ca_json_put(j, "reason", json_string(ca_reason_name(
		    ci->reason)));
	}
	if (with_pem)
		bad |= ca_json_put(j, "pem", ca_json_pem(ci->der, ci->der_len));
	return ca_json_done(j, bad);
}

json_t *
ca_audit_row_json(const core_audit_row *r)
{
	json_t *j;
	int bad = 0;

	if ((j = json_object()) == NULL)
		return NULL;
	bad |= ca_json_put(j, "id", json_integer(r->id));
	bad |= ca_json_put(j, "created", json_string(r->created));
	bad |= ca_json_put(j, "ts", json_string(r->created));
	bad |= ca_json_put(j, "actor", ca_json_str(r->actor));
	bad |= ca_json_put(j, "action", ca_json_str(r->action));
	if (r->recorded_action != NULL)
		bad |= ca_json_put(j, "recorded_action",
		    ca_json_str(r->recorded_action));
	bad |= ca_json_put(j, "object", ca_json_str(r->object));
	bad |= ca_json_put(j, "detail", ca_json_str(r->detail));
	bad |= ca_json_put(j, "prev_hash", ca_json_str(r->prev_hash));
	bad |= ca_json_put(j, "hash", ca_json_str(r->hash));
	return ca_json_done(j, bad);
}
