/*
 * api_recovery.c - the recovery workflow over HTTPS, under
 * /api/v1/recovery/requests.  This file parses and answers; the rules
 * (who may do what, once, in which state, until when) and their audit rows
 * live in archive/recovery.c.  Binary values travel as base64 (shares,
 * ciphertext, iv, tag), certificates as PEM, times as ISO 8601 UTC.
 * Bodies are parsed strictly: unknown fields, wrong types, oversized
 * values and malformed base64 are refused with 400 before anything is
 * looked up.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "archive/archive.h"
#include "web/web_int.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000
/* Caps on what a body may carry. */
#define REQUEST_CERT_MAX ((size_t)16 * 1024)   /* PEM */
#define SHARE_B64_MAX    ((size_t)24 * 1024)
#define SHARES_MAX       1000

/* ------------------------------------------------------------------ */
/* Encoding helpers                                                    */

static json_t *
pem_json(const char *label, const unsigned char *der, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	json_t *j = NULL;
	char *data;
	long n;

	if (bio != NULL && der != NULL && PEM_write_bio(bio, label, "", der,
	    (long)len) > 0 && (n = BIO_get_mem_data(bio, &data)) > 0)
		j = json_stringn(data, (size_t)n);
	BIO_free(bio);
	return j;
}

static json_t *
chain_json(const ca_ctx *ca)
{
	STACK_OF(X509) *chain = ca_get0_chain(ca);
	BIO *bio = BIO_new(BIO_s_mem());
	json_t *j = NULL;
	char *data;
	long n;
	int i;

	if (bio == NULL)
		return NULL;
	for (i = 0; i < sk_X509_num(chain); i++)
		if (PEM_write_bio_X509(bio, sk_X509_value(chain, i)) != 1)
			goto out;
	if ((n = BIO_get_mem_data(bio, &data)) > 0)
		j = json_stringn(data, (size_t)n);
out:
	BIO_free(bio);
	return j;
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */

/*
 * The JSON form of a request.  with_certs adds the one-time certificate
 * and the requester's credential (PEM); agent shares are added when the
 * records carry them.
 */
static json_t *
request_json(const archive_recovery *rq, bool with_certs)
{
	json_t *j = json_object(), *recs = json_array(), *shares = NULL, *o;
	const archive_recovery_record *r;
	int bad = 0;
	size_t i;

	if (j == NULL || recs == NULL) {
		json_decref(j);
		json_decref(recs);
		return NULL;
	}
	bad |= ca_json_put(j, "id", json_string(rq->id));
	bad |= ca_json_put(j, "status", ca_json_str(rq->status));
	bad |= ca_json_put(j, "requester_email", ca_json_str(rq->requester_email));
	bad |= ca_json_put(j, "requester_serial", ca_json_str(rq->requester_serial));
	bad |= ca_json_put(j, "email", ca_json_str(rq->email));
	bad |= ca_json_put(j, "serial", ca_json_str(rq->serial));
	bad |= ca_json_put(j, "reason", ca_json_str(rq->reason));
	bad |= ca_json_put(j, "created", ca_json_time(rq->created));
	bad |= ca_json_put(j, "expires", ca_json_time(rq->expires));
	bad |= ca_json_put(j, "approvals", json_integer(rq->approvals));
	bad |= ca_json_put(j, "threshold", json_integer(rq->threshold));
	if (rq->denied_by != NULL) {
		bad |= ca_json_put(j, "denied_by", ca_json_str(rq->denied_by));
		bad |= ca_json_put(j, "deny_reason", ca_json_str(rq->deny_reason));
	}
	for (i = 0; i < rq->nrecords && !bad; i++) {
		r = &rq->records[i];
		if ((o = json_pack("{s:I, s:s, s:i, s:i}", "record_id",
		    (json_int_t)r->record_id, "serial", r->serial, "threshold",
		    r->threshold, "approvals", r->approvals)) == NULL ||
		    json_array_append_new(recs, o) == -1) {
			bad = 1;
			break;
		}
		if (r->share == NULL)
			continue;
		if (shares == NULL && (shares = json_array()) == NULL) {
			bad = 1;
			break;
		}
		o = json_object();
		if (o == NULL || json_array_append_new(shares, o) == -1 ||
		    ca_json_put(o, "record_id", json_integer(r->record_id)) == -1 ||
		    ca_json_put(o, "serial", json_string(r->serial)) == -1 ||
		    ca_json_put(o, "cms", ca_json_b64(r->share, r->share_len)) == -1)
			bad = 1;
	}
	bad |= ca_json_put(j, "records", recs);
	if (shares != NULL)
		bad |= ca_json_put(j, "shares", shares);
	if (with_certs) {
		bad |= ca_json_put(j, "request_cert", pem_json("CERTIFICATE",
		    rq->request_cert, rq->request_cert_len));
		bad |= ca_json_put(j, "requester_cert", pem_json("CERTIFICATE",
		    rq->requester_cert, rq->requester_cert_len));
	}
	if (bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static json_t *
package_record_json(const archive_recovery_record *r)
{
	json_t *j = json_object(), *sh = json_array();
	int bad = 0;
	size_t i;

	if (j == NULL || sh == NULL) {
		json_decref(j);
		json_decref(sh);
		return NULL;
	}
	for (i = 0; i < r->nshares; i++)
		bad |= json_array_append_new(sh, ca_json_b64(r->shares[i],
		    r->share_lens[i]));
	bad |= ca_json_put(j, "shares", sh);
	bad |= ca_json_put(j, "record_id", json_integer(r->record_id));
	bad |= ca_json_put(j, "serial", ca_json_str(r->serial));
	bad |= ca_json_put(j, "email", ca_json_str(r->email));
	bad |= ca_json_put(j, "key_alg", ca_json_str(r->key_alg));
	bad |= ca_json_put(j, "share_alg", ca_json_str(r->share_alg));
	bad |= ca_json_put(j, "share_wrap", ca_json_str(r->share_wrap));
	bad |= ca_json_put(j, "threshold", json_integer(r->threshold));
	bad |= ca_json_put(j, "cert", pem_json("CERTIFICATE", r->cert, r->cert_len));
	bad |= ca_json_put(j, "iv", ca_json_b64(r->iv, sizeof(r->iv)));
	bad |= ca_json_put(j, "tag", ca_json_b64(r->tag, sizeof(r->tag)));
	bad |= ca_json_put(j, "ciphertext", ca_json_b64(r->ciphertext,
	    r->ciphertext_len));
	if (bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* An archive refusal: 410 for an expired request, else by error class. */
static enum MHD_Result
send_refusal(struct web_req *r, const lb_err *err, bool expired)
{
	if (expired)
		return web_send_error(r, 410, err->msg);
	return web_send_lb_err(r, err);
}

static void
caller_of(const struct web_req *r, archive_caller *who)
{
	who->serial = r->op_serial;
	who->email = r->op_email;
	who->roles = r->op_roles;
}

/* ------------------------------------------------------------------ */
/* Body parsers                                                        */

/* Loads a JSON object, refusing every key not in known. */
static json_t *
load_object(const unsigned char *buf, size_t len, const char *const *known,
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

/* A string field: required unless optional; NULL when absent or null. */
static int
get_string(json_t *body, const char *name, bool optional, size_t max,
    const char **out, lb_err *err)
{
	json_t *v = json_object_get(body, name);

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

void
web_approval_free(struct web_approval *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->nshares; i++)
		free(a->bufs[i]);
	free(a->bufs);
	free(a->shares);
	memset(a, 0, sizeof(*a));
}

int
web_recovery_approve_parse(const unsigned char *buf, size_t len,
    struct web_approval *out, lb_err *err)
{
	static const char *const known[] = { "shares", NULL };
	static const char *const share_known[] = { "record_id", "cms", NULL };
	json_t *body = NULL, *arr, *o, *v;
	const char *key, *s;
	size_t n = 0, i, j;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((body = load_object(buf, len, known, "{\"shares\": "
	    "[{\"record_id\": 1, \"cms\": \"BASE64\"}]}", err)) == NULL)
		goto out;
	arr = json_object_get(body, "shares");
	/* empty is well-formed: archive/ says why it does not approve */
	if (!json_is_array(arr)) {
		lb_err_set(err, LB_EINVAL, "shares must be an array of "
		    "{\"record_id\", \"cms\"}");
		goto out;
	}
	n = json_array_size(arr);
	if (n > SHARES_MAX) {
		lb_err_set(err, LB_EINVAL, "more than %d shares", SHARES_MAX);
		goto out;
	}
	if ((out->shares = calloc(n + 1, sizeof(*out->shares))) == NULL ||
	    (out->bufs = calloc(n + 1, sizeof(*out->bufs))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	/* every entry of bufs is NULL or owned from here on */
	out->nshares = n;
	json_array_foreach(arr, i, o) {
		if (!json_is_object(o)) {
			lb_err_set(err, LB_EINVAL, "shares[%zu] must be an "
			    "object {\"record_id\", \"cms\"}", i);
			goto out;
		}
		json_object_foreach(o, key, v) {
			for (j = 0; share_known[j] != NULL; j++)
				if (strcmp(key, share_known[j]) == 0)
					break;
			if (share_known[j] == NULL) {
				lb_err_set(err, LB_EINVAL, "shares[%zu]: "
				    "unknown field '%s' (known: record_id, "
				    "cms)", i, key);
				goto out;
			}
		}
		v = json_object_get(o, "record_id");
		if (!json_is_integer(v) || json_integer_value(v) < 1) {
			lb_err_set(err, LB_EINVAL, "shares[%zu].record_id must "
			    "be a positive integer", i);
			goto out;
		}
		out->shares[i].record_id = (int64_t)json_integer_value(v);
		v = json_object_get(o, "cms");
		s = json_is_string(v) ? json_string_value(v) : NULL;
		if (s == NULL || core_b64_decode(s, json_string_length(v),
		    SHARE_B64_MAX, 0, &out->bufs[i], &out->shares[i].cms_len) ==
		    -1) {
			lb_err_set(err, LB_EINVAL, "shares[%zu].cms must be "
			    "base64 of at most %zu characters", i,
			    SHARE_B64_MAX);
			goto out;
		}
		out->shares[i].cms = out->bufs[i];
	}
	rc = 0;
out:
	if (rc == -1)
		web_approval_free(out);
	json_decref(body);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Handlers                                                            */

enum MHD_Result
web_api_recovery_create(struct web_req *r)
{
	static const char *const params[] = { NULL };
	static const char *const known[] = { "email", "serial", "reason",
	    "request_cert", NULL };
	const char *email = NULL, *serial = NULL, *reason = NULL, *pem = NULL;
	archive_caller who;
	archive_recovery rq;
	json_t *body = NULL, *j;
	sqlite3 *db;
	lb_err err;
	enum MHD_Result ret;

	lb_err_clear(&err);
	memset(&rq, 0, sizeof(rq));
	caller_of(r, &who);
	if (web_query_check(r, params, &err) == -1 ||
	    (db = web_db(r->srv, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if ((body = load_object(r->body, r->body_len, known, "{\"email\": "
	    "\"alice@example.org\", \"reason\": \"...\", \"request_cert\": "
	    "\"PEM\"}", &err)) == NULL ||
	    get_string(body, "email", true, 254, &email, &err) == -1 ||
	    get_string(body, "serial", true, 128, &serial, &err) == -1 ||
	    get_string(body, "reason", true, ARCHIVE_REASON_MAX, &reason,
	    &err) == -1 ||
	    get_string(body, "request_cert", true, REQUEST_CERT_MAX, &pem,
	    &err) == -1) {
		archive_recovery_refused(db, &who, "recovery-request-refused",
		    email != NULL ? email : "", &err);
		ret = web_send_lb_err(r, &err);
		goto out;
	}
	/* missing fields are refused there, after the caller's role */
	if (archive_recovery_open(r->srv->ca, db, &who, email, serial, reason,
	    (const unsigned char *)pem, pem != NULL ? strlen(pem) : 0, &rq,
	    &err) == -1) {
		ret = web_send_lb_err(r, &err);
		goto out;
	}
	j = request_json(&rq, false);
	ret = web_send_json(r, 201, j);
out:
	archive_recovery_clear(&rq);
	json_decref(body);
	return ret;
}

enum MHD_Result
web_api_recovery_list(struct web_req *r)
{
	static const char *const params[] = { "pending", "limit", NULL };
	const char *pending = web_query(r, "pending"), *lim = web_query(r,
	    "limit");
	archive_caller who;
	archive_recovery *a = NULL;
	size_t n = 0, i;
	json_t *out = NULL, *items = NULL, *j;
	sqlite3 *db;
	long limit = LIST_DEFAULT;
	char *end = NULL;
	lb_err err;

	lb_err_clear(&err);
	caller_of(r, &who);
	if (web_query_check(r, params, &err) == -1)
		return web_send_lb_err(r, &err);
	if (pending != NULL && strcmp(pending, "0") != 0 &&
	    strcmp(pending, "1") != 0) {
		lb_err_set(&err, LB_EINVAL, "query parameter pending must be 0 "
		    "or 1");
		return web_send_lb_err(r, &err);
	}
	if (lim != NULL) {
		errno = 0;
		limit = isdigit((unsigned char)lim[0]) ? strtol(lim, &end, 10) :
		    0;
		if (end == NULL || *end != '\0' || errno != 0 || limit < 1 ||
		    limit > LIST_MAX) {
			lb_err_set(&err, LB_EINVAL, "query parameter limit "
			    "must be a whole number from 1 to %d", LIST_MAX);
			return web_send_lb_err(r, &err);
		}
	}
	if ((db = web_db(r->srv, &err)) == NULL ||
	    archive_recovery_list(db, &who, pending != NULL &&
	    strcmp(pending, "1") == 0, (int)limit, &a, &n, &err) == -1)
		return web_send_lb_err(r, &err);
	if ((out = json_object()) == NULL || (items = json_array()) == NULL ||
	    ca_json_put(out, "requests", items) == -1) {
		json_decref(items);
		goto oom;
	}
	for (i = 0; i < n; i++)
		if ((j = request_json(&a[i], false)) == NULL ||
		    json_array_append_new(items, j) == -1)
			goto oom;
	if (ca_json_put(out, "count", json_integer((json_int_t)n)) == -1)
		goto oom;
	archive_recovery_list_free(a, n);
	return web_send_json(r, 200, out);
oom:
	archive_recovery_list_free(a, n);
	json_decref(out);
	return web_send_json(r, 500, NULL);
}

enum MHD_Result
web_api_recovery_get(struct web_req *r)
{
	static const char *const params[] = { NULL };
	archive_caller who;
	archive_recovery rq;
	bool expired = false;
	sqlite3 *db;
	json_t *j;
	lb_err err;

	lb_err_clear(&err);
	caller_of(r, &who);
	if (web_query_check(r, params, &err) == -1 ||
	    (db = web_db(r->srv, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if (archive_recovery_get(db, &who, r->param, &rq, &expired,
	    &err) == -1)
		return send_refusal(r, &err, false);
	j = request_json(&rq, true);
	archive_recovery_clear(&rq);
	return web_send_json(r, 200, j);
}

enum MHD_Result
web_api_recovery_approve(struct web_req *r)
{
	static const char *const params[] = { NULL };
	struct web_approval ap;
	archive_caller who;
	archive_recovery rq;
	bool expired = false;
	sqlite3 *db;
	json_t *j;
	lb_err err;
	enum MHD_Result ret;

	lb_err_clear(&err);
	memset(&ap, 0, sizeof(ap));
	caller_of(r, &who);
	if (web_query_check(r, params, &err) == -1 ||
	    (db = web_db(r->srv, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if (web_recovery_approve_parse(r->body, r->body_len, &ap,
	    &err) == -1) {
		/* a malformed approval is still an attempt on the request */
		archive_recovery_refused(db, &who, "recovery-approve-refused",
		    r->param, &err);
		return web_send_lb_err(r, &err);
	}
	if (archive_recovery_approve(db, &who, r->param, ap.shares,
	    ap.nshares, &expired, &err) == -1) {
		ret = send_refusal(r, &err, expired);
		goto out;
	}
	if (archive_recovery_get(db, &who, r->param, &rq, NULL, &err) == -1) {
		ret = web_send_lb_err(r, &err);
		goto out;
	}
	/* the request as it now stands, without the caller's shares */
	j = request_json(&rq, false);
	if (j != NULL)
		json_object_del(j, "shares");
	archive_recovery_clear(&rq);
	ret = web_send_json(r, 200, j);
out:
	web_approval_free(&ap);
	return ret;
}

enum MHD_Result
web_api_recovery_deny(struct web_req *r)
{
	static const char *const params[] = { NULL };
	static const char *const known[] = { "reason", NULL };
	archive_caller who;
	archive_recovery rq;
	const char *reason;
	bool expired = false;
	json_t *body = NULL, *j;
	sqlite3 *db;
	lb_err err;
	enum MHD_Result ret;

	lb_err_clear(&err);
	caller_of(r, &who);
	if (web_query_check(r, params, &err) == -1 ||
	    (db = web_db(r->srv, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if ((body = load_object(r->body, r->body_len, known, "{\"reason\": "
	    "\"...\"}", &err)) == NULL ||
	    get_string(body, "reason", false, ARCHIVE_REASON_MAX, &reason,
	    &err) == -1) {
		archive_recovery_refused(db, &who, "recovery-deny-refused",
		    r->param, &err);
		ret = web_send_lb_err(r, &err);
		goto out;
	}
	if (archive_recovery_deny(db, &who, r->param, reason, &expired,
	    &err) == -1) {
		ret = send_refusal(r, &err, expired);
		goto out;
	}
	if (archive_recovery_get(db, &who, r->param, &rq, NULL, &err) == -1) {
		ret = web_send_lb_err(r, &err);
		goto out;
	}
	/* the request as it now stands, without the caller's shares */
	j = request_json(&rq, false);
	if (j != NULL)
		json_object_del(j, "shares");
	archive_recovery_clear(&rq);
	ret = web_send_json(r, 200, j);
out:
	json_decref(body);
	return ret;
}

enum MHD_Result
web_api_recovery_package(struct web_req *r)
{
	static const char *const params[] = { NULL };
	archive_caller who;
	archive_recovery rq;
	bool expired = false;
	json_t *out = NULL, *recs = NULL, *j;
	sqlite3 *db;
	lb_err err;
	size_t i;
	enum MHD_Result ret;

	lb_err_clear(&err);
	caller_of(r, &who);
	if (web_query_check(r, params, &err) == -1 ||
	    (db = web_db(r->srv, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if (archive_recovery_package(db, &who, r->param, &rq, &expired,
	    &err) == -1)
		return send_refusal(r, &err, expired);
	if ((out = json_object()) == NULL || (recs = json_array()) == NULL ||
	    ca_json_put(out, "records", recs) == -1) {
		json_decref(recs);
		goto oom;
	}
	for (i = 0; i < rq.nrecords; i++)
		if ((j = package_record_json(&rq.records[i])) == NULL ||
		    json_array_append_new(recs, j) == -1)
			goto oom;
	if (ca_json_put(out, "id", json_string(rq.id)) == -1 ||
	    ca_json_put(out, "status", ca_json_str(rq.status)) == -1 ||
	    ca_json_put(out, "email", ca_json_str(rq.email)) == -1 ||
	    ca_json_put(out, "chain", chain_json(r->srv->ca)) == -1)
		goto oom;
	archive_recovery_clear(&rq);
	return web_send_json(r, 200, out);
oom:
	archive_recovery_clear(&rq);
	json_decref(out);
	ret = web_send_json(r, 500, NULL);
	return ret;
}
