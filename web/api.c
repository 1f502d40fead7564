/*
 * api.c - the operator JSON API under /api/v1/: certificate listings and
 * look-ups, revocation and the audit log.  The router has already checked
 * the operator's certificate and roles; each handler validates its own
 * query parameters and body (unknown names are refused rather than
 * ignored, so a typo never widens a listing or loses a field) and answers
 * with JSON, errors as {"error": ..., "detail": ...}.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/pem.h>

#include "web/web_int.h"

#define LIMIT_DEFAULT 100
#define LIMIT_MAX     1000
/* Clock skew allowed for an invalidity date "now". */
#define SKEW_SECONDS  300

/* ------------------------------------------------------------------ */
/* JSON helpers                                                        */

/* ------------------------------------------------------------------ */
/* Query parameters                                                    */

/* An integer parameter in [min, max]; def when absent. */
static int
query_int(struct web_req *r, const char *name, long long def, long long min,
    long long max, long long *out, lb_err *err)
{
	const char *s = web_query(r, name);
	char *end = NULL;
	long long v;

	if (s == NULL && MHD_lookup_connection_value_n(r->conn,
	    MHD_GET_ARGUMENT_KIND, name, strlen(name), NULL, NULL) != MHD_YES) {
		*out = def;
		return 0;
	}
	errno = 0;
	v = s != NULL && isdigit((unsigned char)s[0]) ?
	    strtoll(s, &end, 10) : 0;
	if (end == NULL || *end != '\0' || errno != 0 || v < min || v > max)
		return lb_err_set(err, LB_EINVAL, "query parameter %s must be "
		    "a whole number from %lld to %lld", name, min, max);
	*out = v;
	return 0;
}

/* A text parameter: NULL when absent, refused when given empty. */
static int
query_text(struct web_req *r, const char *name, const char **out,
    lb_err *err)
{
	const char *s = web_query(r, name);

	*out = NULL;
	if (s == NULL && MHD_lookup_connection_value_n(r->conn,
	    MHD_GET_ARGUMENT_KIND, name, strlen(name), NULL, NULL) != MHD_YES)
		return 0;
	if (s == NULL || s[0] == '\0')
		return lb_err_set(err, LB_EINVAL, "query parameter %s needs a "
		    "value", name);
	*out = s;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Pages: a list walked one more than the limit, to tell there is more  */

struct page {
	json_t *items;
	long long limit, count;
	int64_t last;           /* the audit's last id */
	bool more, oom;
};

/* 1 (stop the walk) when the page is full. */
static int
page_full(struct page *pg)
{
	if (pg->count < pg->limit)
		return 0;
	pg->more = true;
	return 1;
}

/* Adds j (NULL: out of memory); 1 stops the walk. */
static int
page_add(struct page *pg, json_t *j)
{
	if (j == NULL || json_array_append_new(pg->items, j) == -1) {
		pg->oom = true;
		return 1;
	}
	pg->count++;
	return 0;
}

/*
 * Sends {key: items, count, more} (and next_after, the last id, when
 * with_next); the page's items go with it.
 */
static enum MHD_Result
send_page(struct web_req *r, struct page *pg, const char *key,
    bool with_next)
{
	json_t *out = NULL;

	if (pg->oom || (out = json_object()) == NULL ||
	    ca_json_put(out, key, pg->items) == -1) {
		if (out == NULL)
			json_decref(pg->items);
		json_decref(out);
		return web_send_json(r, 500, NULL);
	}
	if (ca_json_put(out, "count", json_integer(pg->count)) == -1 ||
	    ca_json_put(out, "more", json_boolean(pg->more)) == -1 ||
	    (with_next && ca_json_put(out, "next_after",
	    json_integer(pg->last)) == -1)) {
		json_decref(out);
		out = NULL;
	}
	return web_send_json(r, 200, out);
}

/* ------------------------------------------------------------------ */
/* GET /api/v1/certificates                                            */

static int
list_one(const ca_cert_info *ci, void *arg)
{
	struct page *pg = arg;

	return page_full(pg) || page_add(pg, ca_cert_info_json(ci, false));
}

enum MHD_Result
web_api_cert_list(struct web_req *r)
{
	static const char *const params[] = { "email", "profile", "status",
	    "limit", NULL };
	ca_cert_filter f;
	struct page lc;
	sqlite3 *db;
	char names[256];
	long long limit = 0;
	lb_err err;

	lb_err_clear(&err);
	memset(&f, 0, sizeof(f));
	memset(&lc, 0, sizeof(lc));
	if (web_query_check(r, params, &err) == -1 ||
	    query_text(r, "email", &f.email, &err) == -1 ||
	    query_text(r, "profile", &f.profile, &err) == -1 ||
	    query_text(r, "status", &f.status, &err) == -1 ||
	    query_int(r, "limit", LIMIT_DEFAULT, 1, LIMIT_MAX, &limit,
	    &err) == -1)
		return web_send_lb_err(r, &err);
	if (f.profile != NULL && ca_profile_get(r->srv->ca, f.profile) ==
	    NULL) {
		ca_profile_names(r->srv->ca, names, sizeof(names));
		lb_err_set(&err, LB_EINVAL, "unknown profile '%s' (profiles: "
		    "%s)", f.profile, names);
		return web_send_lb_err(r, &err);
	}
	/* one more than asked tells whether there is more */
	f.limit = (int)limit + 1;
	lc.limit = limit;
	if ((lc.items = json_array()) == NULL)
		return web_send_json(r, 500, NULL);
	if ((db = web_db(r->srv, &err)) == NULL ||
	    ca_cert_list(db, &f, list_one, &lc, &err) == -1) {
		json_decref(lc.items);
		return web_send_lb_err(r, &err);
	}
	return send_page(r, &lc, "certificates", false);
}

/* ------------------------------------------------------------------ */
/* GET /api/v1/certificates/{serial}                                   */

/* Answers with the stored record of certificate r->param (with_pem: and
 * the certificate itself). */
static enum MHD_Result
send_cert(struct web_req *r, sqlite3 *db, bool with_pem)
{
	ca_cert_info ci;
	json_t *j;
	lb_err err;

	lb_err_clear(&err);
	memset(&ci, 0, sizeof(ci));
	if (ca_cert_get(db, r->param, &ci, &err) == -1) {
		ca_cert_info_clear(&ci);
		return web_send_lb_err(r, &err);
	}
	j = ca_cert_info_json(&ci, with_pem);
	ca_cert_info_clear(&ci);
	return web_send_json(r, 200, j);
}

enum MHD_Result
web_api_cert_get(struct web_req *r)
{
	static const char *const params[] = { NULL };
	sqlite3 *db;
	lb_err err;

	lb_err_clear(&err);
	if (web_query_check(r, params, &err) == -1 ||
	    (db = web_db(r->srv, &err)) == NULL)
		return web_send_lb_err(r, &err);
	return send_cert(r, db, true);
}

/* ------------------------------------------------------------------ */
/* POST /api/v1/certificates/{serial}/revoke                           */

/* Seconds since the epoch (a number, or digits in a string) or ISO 8601. */
static int
parse_when(const json_t *v, time_t *out, lb_err *err)
{
	const char *s;
	long long t = -1;

	if (json_is_integer(v)) {
		t = json_integer_value(v);
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		if (s[0] != '\0' && strspn(s, "0123456789") == strlen(s)) {
			errno = 0;
			t = strtoll(s, NULL, 10);
			if (errno != 0)
				t = -1;
		} else {
			time_t when;

			/* "...Z", "...+00:00" or a date alone */
			if (core_time_parse(s, CORE_TIME_LENIENT, &when) == 0)
				t = (long long)when;
		}
	}
	if (t <= 0)
		return lb_err_set(err, LB_EINVAL, "invalidity_date must be "
		    "seconds since the epoch or an ISO 8601 UTC time such as "
		    "2025-01-31T12:00:00Z");
	if (t > (long long)time(NULL) + SKEW_SECONDS)
		return lb_err_set(err, LB_EINVAL, "invalidity_date lies in "
		    "the future: give the time the key is known or suspected "
		    "to have been compromised");
	*out = (time_t)t;
	return 0;
}

int
web_revoke_body_parse(const unsigned char *buf, size_t len, int *reason,
    time_t *invalidity, lb_err *err)
{
	json_t *body = NULL, *v;
	json_error_t jerr;
	const char *key;
	int rc = -1;

	*reason = -1;
	*invalidity = 0;
	if (len == 0) {
		lb_err_set(err, LB_EINVAL, "a JSON body such as {\"reason\": "
		    "\"keyCompromise\"} is needed");
		goto out;
	}
	if ((body = json_loadb((const char *)buf, len,
	    JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		lb_err_set(err, LB_EINVAL, "malformed JSON at line %d, column "
		    "%d: %s", jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(body)) {
		lb_err_set(err, LB_EINVAL, "the body must be a JSON object");
		goto out;
	}
	json_object_foreach(body, key, v) {
		if (strcmp(key, "reason") != 0 &&
		    strcmp(key, "invalidity_date") != 0) {
			lb_err_set(err, LB_EINVAL, "unknown field '%s' (known: "
			    "reason, invalidity_date)", key);
			goto out;
		}
	}
	v = json_object_get(body, "reason");
	if (!json_is_string(v) ||
	    (*reason = ca_reason_parse(json_string_value(v))) == -1) {
		lb_err_set(err, LB_EINVAL, "reason must be one of "
		    "keyCompromise, affiliationChanged, superseded, "
		    "cessationOfOperation, privilegeWithdrawn");
		goto out;
	}
	v = json_object_get(body, "invalidity_date");
	if (v != NULL && !json_is_null(v)) {
		if (strcmp(json_string_value(json_object_get(body, "reason")),
		    "keyCompromise") != 0) {
			lb_err_set(err, LB_EINVAL, "invalidity_date goes only "
			    "with reason keyCompromise");
			goto out;
		}
		if (parse_when(v, invalidity, err) == -1)
			goto out;
	}
	rc = 0;
out:
	json_decref(body);
	return rc;
}

enum MHD_Result
web_api_cert_revoke(struct web_req *r)
{
	static const char *const params[] = { NULL };
	archive_leave_warning w = { "" };
	char actor[320];
	time_t invalidity;
	int reason;
	sqlite3 *db;
	lb_err err;

	lb_err_clear(&err);
	if (web_query_check(r, params, &err) == -1 ||
	    web_revoke_body_parse(r->body, r->body_len, &reason, &invalidity,
	    &err) == -1 ||
	    (db = web_db(r->srv, &err)) == NULL)
		return web_send_lb_err(r, &err);
	snprintf(actor, sizeof(actor), "api:%s", r->op_email);
	if (ca_revoke_guarded(db, r->param, reason, invalidity, actor,
	    archive_agent_leave, &w, &err) == -1)
		return web_send_lb_err(r, &err);
	if (w.text[0] != '\0')
		log_warnx("certificate %s: %s", r->param, w.text);
	log_info("certificate %s revoked (%s) by %s", r->param,
	    ca_reason_name(reason), actor);
	crl_publisher_wake(r->srv->crl);
	enroll_wake_publisher(r->srv->enroll);
	/* committed: answer with the record as it now stands */
	return send_cert(r, db, false);
}

/* ------------------------------------------------------------------ */
/* GET /api/v1/audit                                                   */

static int
audit_one(const core_audit_row *row, void *arg)
{
	struct page *ac = arg;

	if (page_full(ac))
		return 1;
	ac->last = row->id;
	return page_add(ac, ca_audit_row_json(row));
}

enum MHD_Result
web_api_audit(struct web_req *r)
{
	static const char *const params[] = { "after", "limit", NULL };
	struct page ac;
	long long after = 0, limit = 0;
	sqlite3 *db;
	lb_err err;

	lb_err_clear(&err);
	memset(&ac, 0, sizeof(ac));
	if (web_query_check(r, params, &err) == -1 ||
	    query_int(r, "after", 0, 0, INT64_MAX, &after, &err) == -1 ||
	    query_int(r, "limit", LIMIT_DEFAULT, 1, LIMIT_MAX, &limit,
	    &err) == -1)
		return web_send_lb_err(r, &err);
	ac.limit = limit;
	ac.last = after;
	if ((ac.items = json_array()) == NULL)
		return web_send_json(r, 500, NULL);
	if ((db = web_db(r->srv, &err)) == NULL ||
	    core_audit_foreach(db, after, (int)limit + 1, audit_one, &ac,
	    &err) == -1) {
		json_decref(ac.items);
		return web_send_lb_err(r, &err);
	}
	return send_page(r, &ac, "entries", true);
}
