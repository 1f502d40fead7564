/*
 * wire.c - the recovery workflow's messages, both ends of each: the
 * request as the server shows it (archive_request_json) and as an
 * approving agent's client reads it (archive_view_parse); the package of
 * an approved request as the server writes it (archive_package_json) and
 * the officer's client reads it (archive_package_parse); the approval an
 * agent's client writes (archive_approval_json) and the server reads
 * (archive_approval_parse).  Binary values travel as base64, certificates
 * as PEM, times as ISO 8601 UTC.  Every reader is capped, typed and
 * refuses what it does not expect; a reader's output on failure is empty.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "archive/archive_int.h"

/* Caps on what a message may carry. */
#define SHARE_B64_MAX   ((size_t)24 * 1024)
#define SHARES_MAX      1000
#define RECORDS_MAX     1000
#define CIPHER_B64_MAX  ((size_t)64 * 1024)
#define CERT_PEM_MAX    ((size_t)64 * 1024)

/* ------------------------------------------------------------------ */
/* Small readers                                                       */

/* The base64 string member key of o, decoded; -1 when absent or bad. */
static int
b64_member(const json_t *o, const char *key, size_t max, unsigned char **out,
    size_t *len)
{
	const json_t *v = json_object_get(o, key);

	*out = NULL;
	*len = 0;
	if (!json_is_string(v))
		return -1;
	return core_b64_decode(json_string_value(v), json_string_length(v),
	    max, 0, out, len);
}

/* The PEM certificate in string member key of o, or NULL. */
static X509 *
cert_member(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	lb_err err = { 0 };

	if (!json_is_string(v) || json_string_length(v) > CERT_PEM_MAX)
		return NULL;
	return ca_cert_parse((const unsigned char *)json_string_value(v),
	    json_string_length(v), &err);
}

static long long
int_member(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* ------------------------------------------------------------------ */
/* Opening a request: the officer's body                               */

/* The largest one-time certificate a request body carries (PEM). */
#define REQUEST_CERT_MAX ((size_t)16 * 1024)

json_t *
archive_opening_json(const char *email, const char *serial,
    const char *reason, X509 *onetime)
{
	unsigned char *der = NULL;
	json_t *j = json_object();
	int len = i2d_X509(onetime, &der);

	if (j == NULL || len <= 0 ||
	    (ca_json_put(j, "email", json_string(email)) |
	    ca_json_put(j, "reason", json_string(reason)) |
	    ca_json_put(j, "request_cert", ca_json_pem(der, (size_t)len)) |
	    (serial != NULL && ca_json_put(j, "serial",
	    json_string(serial))))) {
		json_decref(j);
		j = NULL;
	}
	OPENSSL_free(der);
	return j;
}

int
archive_opening_parse(const void *buf, size_t len, archive_opening *o,
    lb_err *err)
{
	static const char *const known[] = { "email", "serial", "reason",
	    "request_cert", NULL };

	memset(o, 0, sizeof(*o));
	if ((o->json = ca_json_load_object(buf, len, known, "{\"email\": "
	    "\"alice@example.org\", \"reason\": \"...\", "
	    "\"request_cert\": \"PEM\"}", err)) == NULL)
		return -1;
	/* the email stays when another field fails: the audit row of the
	 * refusal names it */
	if (ca_json_get_string(o->json, "email", true, 254, &o->email, err) ==
	    -1 ||
	    ca_json_get_string(o->json, "serial", true, 128, &o->serial,
	    err) == -1 ||
	    ca_json_get_string(o->json, "reason", true, ARCHIVE_REASON_MAX,
	    &o->reason, err) == -1 ||
	    ca_json_get_string(o->json, "request_cert", true,
	    REQUEST_CERT_MAX, &o->request_cert, err) == -1) {
		o->serial = o->reason = o->request_cert = NULL;
		return -1;
	}
	return 0;
}

void
archive_opening_clear(archive_opening *o)
{
	json_decref(o->json);
	memset(o, 0, sizeof(*o));
}

/* ------------------------------------------------------------------ */
/* The request                                                         */

json_t *
archive_request_json(const archive_recovery *rq, bool with_certs)
{
	json_t *j = json_object(), *recs = json_array(), *shares = NULL, *o;
	const archive_recovery_record *r;
	int bad = j == NULL || recs == NULL;
	size_t i;

	if (!bad)
		bad = ca_json_put(j, "id", json_string(rq->id)) |
		    ca_json_put(j, "status", ca_json_str(rq->status)) |
		    ca_json_put(j, "requester_email",
		    ca_json_str(rq->requester_email)) |
		    ca_json_put(j, "requester_serial",
		    ca_json_str(rq->requester_serial)) |
		    ca_json_put(j, "email", ca_json_str(rq->email)) |
		    ca_json_put(j, "serial", ca_json_str(rq->serial)) |
		    ca_json_put(j, "reason", ca_json_str(rq->reason)) |
		    ca_json_put(j, "created", ca_json_time(rq->created)) |
		    ca_json_put(j, "expires", ca_json_time(rq->expires)) |
		    ca_json_put(j, "approvals", json_integer(rq->approvals)) |
		    ca_json_put(j, "threshold", json_integer(rq->threshold));
	if (!bad && rq->denied_by != NULL)
		bad = ca_json_put(j, "denied_by", ca_json_str(rq->denied_by)) |
		    ca_json_put(j, "deny_reason", ca_json_str(rq->deny_reason));
	for (i = 0; i < rq->nrecords && !bad; i++) {
		r = &rq->records[i];
		if ((o = json_object()) == NULL ||
		    json_array_append_new(recs, o) == -1 ||
		    (ca_json_put(o, "record_id", json_integer(r->record_id)) |
		    ca_json_put(o, "serial", ca_json_str(r->serial)) |
		    ca_json_put(o, "threshold", json_integer(r->threshold)) |
		    ca_json_put(o, "approvals", json_integer(r->approvals)) |
		    ca_json_put(o, "other_open", json_integer(r->other_open))))
			bad = 1;
		if (!bad && with_certs && r->cert != NULL)
			bad = ca_json_put(o, "cert", ca_json_pem(r->cert,
			    r->cert_len));
		if (bad || r->share == NULL)
			continue;
		/* the caller's own share of this record (an agent's view) */
		if ((shares == NULL && (shares = json_array()) == NULL) ||
		    (o = json_object()) == NULL ||
		    json_array_append_new(shares, o) == -1 ||
		    (ca_json_put(o, "record_id", json_integer(r->record_id)) |
		    ca_json_put(o, "serial", ca_json_str(r->serial)) |
		    ca_json_put(o, "cms", ca_json_b64(r->share, r->share_len))))
			bad = 1;
	}
	if (!bad) {
		bad = json_object_set(j, "records", recs) == -1 ||
		    (shares != NULL && json_object_set(j, "shares", shares) ==
		    -1);
		if (!bad && with_certs)
			bad = ca_json_put(j, "request_cert", ca_json_pem(
			    rq->request_cert, rq->request_cert_len)) |
			    ca_json_put(j, "requester_cert", ca_json_pem(
			    rq->requester_cert, rq->requester_cert_len));
		if (!bad && with_certs && rq->statement != NULL)
			bad = ca_json_put(j, "statement",
			    json_string(rq->statement)) |
			    ca_json_put(j, "statement_cms", ca_json_b64(
			    rq->statement_cms, rq->statement_cms_len));
	}
	json_decref(recs);
	json_decref(shares);
	return ca_json_done(j, bad);
}

void
archive_view_clear(archive_view *v)
{
	size_t i;

	if (v == NULL)
		return;
	free(v->status);
	free(v->email);
	free(v->requester_email);
	free(v->reason);
	free(v->created);
	free(v->expires);
	for (i = 0; i < v->nshares; i++) {
		free(v->shares[i].serial);
		free(v->shares[i].cms);
	}
	free(v->shares);
	for (i = 0; v->records != NULL && i < v->nrecords; i++) {
		free(v->records[i].serial);
		X509_free(v->records[i].cert);
	}
	free(v->records);
	free(v->statement);
	free(v->statement_cms);
	X509_free(v->request_cert);
	X509_free(v->requester_cert);
	memset(v, 0, sizeof(*v));
}

int
archive_view_parse(const char *buf, size_t len, archive_view *v,
    lb_err *err)
{
	json_t *j, *arr, *e;
	json_error_t jerr;
	const char *id;
	bool oom = false;
	size_t i, n;
	int rc = -1;

	memset(v, 0, sizeof(*v));
	if (len > ARCHIVE_MESSAGE_MAX)
		return lb_err_set(err, LB_ETOOBIG, "a recovery request of %zu "
		    "bytes is too large", len);
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	id = json_string_value(json_object_get(j, "id"));
	if (!json_is_object(j) || !archive_request_id_valid(id)) {
		lb_err_set(err, LB_EINVAL, "not a recovery request");
		goto out;
	}
	memcpy(v->id, id, ARCHIVE_REQUEST_ID_LEN + 1);
	v->status = ca_json_dup(j, "status", 32, &oom);
	v->email = ca_json_dup(j, "email", 254, &oom);
	v->requester_email = ca_json_dup(j, "requester_email", 254, &oom);
	v->reason = ca_json_dup(j, "reason", ARCHIVE_REASON_MAX, &oom);
	v->created = ca_json_dup(j, "created", 32, &oom);
	v->expires = ca_json_dup(j, "expires", 32, &oom);
	v->approvals = int_member(j, "approvals");
	v->threshold = int_member(j, "threshold");
	v->nrecords = json_array_size(json_object_get(j, "records"));
	v->request_cert = cert_member(j, "request_cert");
	v->requester_cert = cert_member(j, "requester_cert");
	v->statement = ca_json_dup(j, "statement", (size_t)64 * 1024, &oom);
	if (json_object_get(j, "statement_cms") != NULL &&
	    b64_member(j, "statement_cms", SHARE_B64_MAX, &v->statement_cms,
	    &v->statement_cms_len) == -1) {
		lb_err_set(err, LB_EINVAL, "the request's statement signature is "
		    "malformed");
		goto out;
	}
	arr = json_object_get(j, "records");
	if (v->nrecords > SHARES_MAX || (arr != NULL && !json_is_array(arr))) {
		lb_err_set(err, LB_EINVAL, "the request's records are malformed");
		goto out;
	}
	if (v->nrecords > 0 && (v->records = calloc(v->nrecords,
	    sizeof(*v->records))) == NULL)
		oom = true;
	for (i = 0; !oom && i < v->nrecords; i++) {
		e = json_array_get(arr, i);
		v->records[i].serial = ca_json_dup(e, "serial", 128, &oom);
		v->records[i].cert = cert_member(e, "cert");
		v->records[i].other_open = int_member(e, "other_open");
	}
	arr = json_object_get(j, "shares");
	if ((n = json_array_size(arr)) > SHARES_MAX ||
	    (arr != NULL && !json_is_array(arr))) {
		lb_err_set(err, LB_EINVAL, "the request's shares are malformed");
		goto out;
	}
	if (n > 0 && (v->shares = calloc(n, sizeof(*v->shares))) == NULL)
		oom = true;
	for (i = 0; !oom && i < n; i++) {
		archive_view_share *s = &v->shares[v->nshares++];

		e = json_array_get(arr, i);
		s->record_id = int_member(e, "record_id");
		s->serial = ca_json_dup(e, "serial", 128, &oom);
		if (s->record_id < 1 || s->serial == NULL ||
		    b64_member(e, "cms", SHARE_B64_MAX, &s->cms,
		    &s->cms_len) == -1) {
			if (!oom)
				lb_err_set(err, LB_EINVAL, "the server sent a "
				    "share that is malformed (shares[%zu])", i);
			goto out;
		}
	}
	if (oom || v->status == NULL) {
		lb_err_set(err, oom ? LB_EINTERNAL : LB_EINVAL, oom ?
		    "out of memory" : "the recovery request has no status");
		goto out;
	}
	rc = 0;
out:
	json_decref(j);
	if (rc == -1)
		archive_view_clear(v);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The package                                                         */

static json_t *
package_record_json(const archive_recovery_record *r)
{
	json_t *j = json_object(), *sh = json_array();
	int bad = j == NULL || sh == NULL;
	size_t i;

	for (i = 0; !bad && i < r->nshares; i++)
		bad = json_array_append_new(sh, ca_json_b64(r->shares[i],
		    r->share_lens[i])) == -1;
	if (!bad)
		bad = json_object_set(j, "shares", sh) |
		    ca_json_put(j, "record_id", json_integer(r->record_id)) |
		    ca_json_put(j, "serial", ca_json_str(r->serial)) |
		    ca_json_put(j, "email", ca_json_str(r->email)) |
		    ca_json_put(j, "key_alg", ca_json_str(r->key_alg)) |
		    ca_json_put(j, "share_alg", ca_json_str(r->share_alg)) |
		    ca_json_put(j, "share_wrap", ca_json_str(r->share_wrap)) |
		    ca_json_put(j, "threshold", json_integer(r->threshold)) |
		    ca_json_put(j, "cert", ca_json_pem(r->cert, r->cert_len)) |
		    ca_json_put(j, "iv", ca_json_b64(r->iv, sizeof(r->iv))) |
		    ca_json_put(j, "tag", ca_json_b64(r->tag, sizeof(r->tag))) |
		    ca_json_put(j, "ciphertext", ca_json_b64(r->ciphertext,
		    r->ciphertext_len));
	json_decref(sh);
	return ca_json_done(j, bad);
}

json_t *
archive_package_json(const archive_recovery *rq, STACK_OF(X509) *chain)
{
	json_t *out = json_object(), *recs = json_array(), *j;
	int bad = out == NULL || recs == NULL;
	size_t i;

	for (i = 0; !bad && i < rq->nrecords; i++)
		bad = (j = package_record_json(&rq->records[i])) == NULL ||
		    json_array_append_new(recs, j) == -1;
	if (!bad)
		bad = json_object_set(out, "records", recs) |
		    ca_json_put(out, "id", json_string(rq->id)) |
		    ca_json_put(out, "status", ca_json_str(rq->status)) |
		    ca_json_put(out, "email", ca_json_str(rq->email)) |
		    ca_json_put(out, "chain", ca_json_chain(chain));
	json_decref(recs);
	return ca_json_done(out, bad);
}

static void
package_record_clear(archive_package_record *r)
{
	free(r->serial);
	free(r->email);
	X509_free(r->cert);
	free(r->ciphertext);
	archive_shares_free(r->shares, r->share_lens, r->nshares);
	memset(r, 0, sizeof(*r));
}

void
archive_package_clear(archive_package *p)
{
	size_t i;

	if (p == NULL)
		return;
	free(p->email);
	free(p->status);
	sk_X509_pop_free(p->chain, X509_free);
	for (i = 0; i < p->nrecords; i++)
		package_record_clear(&p->records[i]);
	free(p->records);
	memset(p, 0, sizeof(*p));
}

/* One record of the package; err names its serial when it can. */
static int
parse_package_record(const json_t *jr, archive_package_record *r,
    lb_err *err)
{
	static const char *const algs[][2] = {
		{ "key_alg", "aes-256-gcm" },
		{ "share_alg", "shamir-gf256" },
		{ "share_wrap", "cms-rsaes-oaep-sha256-aes256" },
	};
	unsigned char *iv = NULL, *tag = NULL;
	const json_t *shares, *s;
	const char *a, *serial;
	size_t ivl = 0, tagl = 0, i, n;
	bool oom = false;
	int rc = -1;

	serial = json_string_value(json_object_get(jr, "serial"));
	if (!json_is_object(jr) || serial == NULL)
		return lb_err_set(err, LB_EINVAL, "the package holds a record "
		    "without a serial");
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		a = json_string_value(json_object_get(jr, algs[i][0]));
		if (a == NULL || strcmp(a, algs[i][1]) != 0)
			return lb_err_set(err, LB_EINVAL, "escrow record for "
			    "serial %s uses algorithms this lockbox does not "
			    "know (%s %s)", serial, algs[i][0], a != NULL ? a :
			    "missing");
	}
	r->record_id = int_member(jr, "record_id");
	r->threshold = (int)int_member(jr, "threshold");
	if (int_member(jr, "threshold") < 1 || int_member(jr, "threshold") >
	    255)
		return lb_err_set(err, LB_EINVAL, "escrow record for serial %s "
		    "has a threshold of %lld: not 1 to 255", serial,
		    int_member(jr, "threshold"));
	r->serial = ca_json_dup(jr, "serial", 128, &oom);
	r->email = ca_json_dup(jr, "email", 254, &oom);
	shares = json_object_get(jr, "shares");
	if (oom || r->serial == NULL || r->email == NULL ||
	    (r->cert = cert_member(jr, "cert")) == NULL ||
	    b64_member(jr, "iv", 64, &iv, &ivl) == -1 ||
	    ivl != ARCHIVE_IV_LEN ||
	    b64_member(jr, "tag", 64, &tag, &tagl) == -1 ||
	    tagl != ARCHIVE_TAG_LEN ||
	    b64_member(jr, "ciphertext", CIPHER_B64_MAX, &r->ciphertext,
	    &r->ciphertext_len) == -1 ||
	    !json_is_array(shares) || (n = json_array_size(shares)) >
	    ARCHIVE_MAX_AGENTS) {
		lb_err_set(err, oom ? LB_EINTERNAL : LB_EINVAL, oom ?
		    "out of memory" : "escrow record for serial %s is "
		    "malformed in the package", serial);
		goto out;
	}
	memcpy(r->iv, iv, ARCHIVE_IV_LEN);
	memcpy(r->tag, tag, ARCHIVE_TAG_LEN);
	if (n > 0 && ((r->shares = calloc(n, sizeof(*r->shares))) == NULL ||
	    (r->share_lens = calloc(n, sizeof(*r->share_lens))) == NULL)) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	json_array_foreach(shares, i, s) {
		if (!json_is_string(s) || core_b64_decode(json_string_value(s),
		    json_string_length(s), SHARE_B64_MAX, 0,
		    &r->shares[r->nshares], &r->share_lens[r->nshares]) ==
		    -1) {
			lb_err_set(err, LB_EINVAL, "a share of serial %s is not "
			    "base64", serial);
			goto out;
		}
		r->nshares++;
	}
	rc = 0;
out:
	free(iv);
	free(tag);
	return rc;
}

int
archive_package_parse(const char *buf, size_t len, archive_package *p,
    lb_err *err)
{
	json_t *j, *recs, *jr;
	json_error_t jerr;
	const char *id, *chain;
	bool oom = false;
	size_t i, n;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	if (len > ARCHIVE_MESSAGE_MAX)
		return lb_err_set(err, LB_ETOOBIG, "a recovery package of %zu "
		    "bytes is too large", len);
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	id = json_string_value(json_object_get(j, "id"));
	recs = json_object_get(j, "records");
	if (!json_is_object(j) || !archive_request_id_valid(id) ||
	    !json_is_array(recs)) {
		lb_err_set(err, LB_EINVAL, "not a recovery package");
		goto out;
	}
	memcpy(p->id, id, ARCHIVE_REQUEST_ID_LEN + 1);
	p->status = ca_json_dup(j, "status", 32, &oom);
	p->email = ca_json_dup(j, "email", 254, &oom);
	chain = json_string_value(json_object_get(j, "chain"));
	if (oom) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (chain == NULL || (p->chain = ca_pem_chain_parse(chain,
	    strlen(chain), "the package's CA chain", err)) == NULL) {
		lb_err_set(err, LB_EINVAL, "the package holds no CA chain");
		goto out;
	}
	if ((n = json_array_size(recs)) > RECORDS_MAX) {
		lb_err_set(err, LB_ETOOBIG, "a package of %zu records is too "
		    "large", n);
		goto out;
	}
	if (n > 0 && (p->records = calloc(n, sizeof(*p->records))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	json_array_foreach(recs, i, jr) {
		if (parse_package_record(jr, &p->records[p->nrecords++],
		    err) == -1)
			goto out;
	}
	rc = 0;
out:
	json_decref(j);
	if (rc == -1)
		archive_package_clear(p);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The approval                                                        */

void
archive_approval_clear(archive_approval *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; a->bufs != NULL && i < a->nshares; i++)
		free(a->bufs[i]);
	free(a->bufs);
	free(a->shares);
	memset(a, 0, sizeof(*a));
}

int
archive_approval_add(archive_approval *a, int64_t record_id,
    unsigned char *cms, size_t cms_len)
{
	archive_share_in *s;
	unsigned char **b;

	if ((s = realloc(a->shares, (a->nshares + 1) * sizeof(*s))) == NULL)
		return -1;
	a->shares = s;
	if ((b = realloc(a->bufs, (a->nshares + 1) * sizeof(*b))) == NULL)
		return -1;
	a->bufs = b;
	a->bufs[a->nshares] = cms;
	a->shares[a->nshares].record_id = record_id;
	a->shares[a->nshares].cms = cms;
	a->shares[a->nshares].cms_len = cms_len;
	a->nshares++;
	return 0;
}

json_t *
archive_approval_json(const archive_approval *a)
{
	json_t *body = json_object(), *arr = json_array(), *o;
	int bad = body == NULL || arr == NULL;
	size_t i;

	for (i = 0; !bad && i < a->nshares; i++)
		bad = (o = json_object()) == NULL ||
		    json_array_append_new(arr, o) == -1 ||
		    (ca_json_put(o, "record_id", json_integer(
		    a->shares[i].record_id)) | ca_json_put(o, "cms",
		    ca_json_b64(a->shares[i].cms, a->shares[i].cms_len)));
	if (!bad)
		bad = json_object_set(body, "shares", arr) == -1;
	json_decref(arr);
	return ca_json_done(body, bad);
}

int
archive_approval_parse(const unsigned char *buf, size_t len,
    archive_approval *out, lb_err *err)
{
	static const char *const known[] = { "shares", NULL };
	static const char *const share_known[] = { "record_id", "cms", NULL };
	json_t *body = NULL, *arr, *o, *v;
	const char *key, *s;
	size_t n = 0, i, j;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((body = ca_json_load_object(buf, len, known, "{\"shares\": "
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
		archive_approval_clear(out);
	json_decref(body);
	return rc;
}
