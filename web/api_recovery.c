/*
 * api_recovery.c - the recovery workflow over HTTPS, under
 * /api/v1/recovery/requests.  This file maps requests to archive/: the
 * rules (who may do what, once, in which state, until when) and their
 * audit rows live in archive/recovery.c, the messages (the request, the
 * package, the approval body) in archive/wire.c, beside the client half
 * that reads or writes each.
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

/* ------------------------------------------------------------------ */
/* Encoding helpers                                                    */

/* ------------------------------------------------------------------ */
/* Responses                                                           */

/* An archive refusal: 410 for an expired request, else by error class. */
static enum MHD_Result
send_refusal(struct web_req *r, const lb_err *err, bool expired)
{
	if (expired)
		return web_send_error(r, 410, err->msg);
	return web_send_lb_err(r, err);
}

/*
 * What every handler but the list starts with: no query parameters, the
 * caller as archive/ knows it, the database.  NULL with err set.
 */
static sqlite3 *
begin(struct web_req *r, archive_caller *who, lb_err *err)
{
	static const char *const none[] = { NULL };

	lb_err_clear(err);
	who->serial = r->op_serial;
	who->email = r->op_email;
	who->roles = r->op_roles;
	if (web_query_check(r, none, err) == -1)
		return NULL;
	return web_db(r->srv, err);
}

/* After an approval or a denial: the request as it now stands. */
static enum MHD_Result
send_request_now(struct web_req *r, sqlite3 *db, const archive_caller *who)
{
	archive_recovery rq;
	json_t *j;
	lb_err err;

	lb_err_clear(&err);
	if (archive_recovery_get(db, who, r->param, &rq, NULL, &err) == -1)
		return web_send_lb_err(r, &err);
	/* without the caller's shares */
	j = archive_request_json(&rq, false);
	if (j != NULL)
		json_object_del(j, "shares");
	archive_recovery_clear(&rq);
	return web_send_json(r, 200, j);
}

/* ------------------------------------------------------------------ */
/* Body parsers                                                        */

/* ------------------------------------------------------------------ */
/* Handlers                                                            */

enum MHD_Result
web_api_recovery_create(struct web_req *r)
{
	archive_opening op;
	archive_caller who;
	archive_recovery rq;
	sqlite3 *db;
	lb_err err;
	enum MHD_Result ret;

	memset(&rq, 0, sizeof(rq));
	memset(&op, 0, sizeof(op));
	if ((db = begin(r, &who, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if (archive_opening_parse(r->body, r->body_len, &op, &err) == -1) {
		archive_recovery_refused(db, &who, "recovery.request_refused",
		    op.email != NULL ? op.email : "", &err);
		ret = web_send_lb_err(r, &err);
		goto out;
	}
	/* missing fields are refused there, after the caller's role */
	if (archive_recovery_open(r->srv->ca, db, &who, op.email, op.serial,
	    op.reason, (const unsigned char *)op.request_cert,
	    op.request_cert != NULL ? strlen(op.request_cert) : 0, &rq,
	    &err) == -1) {
		ret = web_send_lb_err(r, &err);
		goto out;
	}
	/* with the records' certificates: the officer's client signs the
	 * request's statement over their keys */
	ret = web_send_json(r, 201, archive_request_json(&rq, true));
out:
	archive_recovery_clear(&rq);
	archive_opening_clear(&op);
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
	who.serial = r->op_serial;
	who.email = r->op_email;
	who.roles = r->op_roles;
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
		if ((j = archive_request_json(&a[i], false)) == NULL ||
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
	archive_caller who;
	archive_recovery rq;
	bool expired = false;
	sqlite3 *db;
	json_t *j;
	lb_err err;

	if ((db = begin(r, &who, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if (archive_recovery_get(db, &who, r->param, &rq, &expired,
	    &err) == -1)
		return send_refusal(r, &err, false);
	j = archive_request_json(&rq, true);
	archive_recovery_clear(&rq);
	return web_send_json(r, 200, j);
}

enum MHD_Result
web_api_recovery_approve(struct web_req *r)
{
	archive_approval ap;
	archive_caller who;
	bool expired = false;
	sqlite3 *db;
	lb_err err;
	enum MHD_Result ret;

	memset(&ap, 0, sizeof(ap));
	if ((db = begin(r, &who, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if (archive_approval_parse(r->body, r->body_len, &ap,
	    &err) == -1) {
		/* a malformed approval is still an attempt on the request */
		archive_recovery_refused(db, &who, "recovery.approve_refused",
		    r->param, &err);
		return web_send_lb_err(r, &err);
	}
	if (archive_recovery_approve(db, &who, r->param, ap.shares,
	    ap.nshares, &expired, &err) == -1)
		ret = send_refusal(r, &err, expired);
	else
		ret = send_request_now(r, db, &who);
	archive_approval_clear(&ap);
	return ret;
}

enum MHD_Result
web_api_recovery_deny(struct web_req *r)
{
	static const char *const known[] = { "reason", NULL };
	archive_caller who;
	const char *reason;
	bool expired = false;
	json_t *body = NULL;
	sqlite3 *db;
	lb_err err;
	enum MHD_Result ret;

	if ((db = begin(r, &who, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if ((body = ca_json_load_object(r->body, r->body_len, known,
	    "{\"reason\": \"...\"}", &err)) == NULL ||
	    ca_json_get_string(body, "reason", false, ARCHIVE_REASON_MAX,
	    &reason, &err) == -1) {
		archive_recovery_refused(db, &who, "recovery.deny_refused",
		    r->param, &err);
		ret = web_send_lb_err(r, &err);
		goto out;
	}
	if (archive_recovery_deny(db, &who, r->param, reason, &expired,
	    &err) == -1)
		ret = send_refusal(r, &err, expired);
	else
		ret = send_request_now(r, db, &who);
out:
	json_decref(body);
	return ret;
}

enum MHD_Result
web_api_recovery_package(struct web_req *r)
{
	archive_caller who;
	archive_recovery rq;
	bool expired = false;
	json_t *out;
	sqlite3 *db;
	lb_err err;

	if ((db = begin(r, &who, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if (archive_recovery_package(db, &who, r->param, &rq, &expired,
	    &err) == -1)
		return send_refusal(r, &err, expired);
	out = archive_package_json(&rq, ca_get0_chain(r->srv->ca));
	archive_recovery_clear(&rq);
	return web_send_json(r, 200, out);      /* NULL: 500 */
}

/* The requester's client has the keys: the shares go (200, the request). */
enum MHD_Result
web_api_recovery_collected(struct web_req *r)
{
	archive_caller who;
	bool expired = false;
	sqlite3 *db;
	lb_err err;

	if ((db = begin(r, &who, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if (archive_recovery_collect(db, &who, r->param, &expired,
	    &err) == -1)
		return send_refusal(r, &err, expired);
	return send_request_now(r, db, &who);
}

/* The requester's signed statement of the request (200, the request). */
enum MHD_Result
web_api_recovery_statement(struct web_req *r)
{
	archive_caller who;
	sqlite3 *db;
	lb_err err;

	if ((db = begin(r, &who, &err)) == NULL)
		return web_send_lb_err(r, &err);
	if (archive_recovery_statement(db, &who, r->param, r->body,
	    r->body_len, &err) == -1)
		return web_send_lb_err(r, &err);
	return send_request_now(r, db, &who);
}
