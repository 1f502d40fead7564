/*
 * api_escrow.c - the escrow policy over HTTPS, under
 * /api/v1/escrow/policies: the members' clients read every policy with
 * its signatures, and each member sends its own signature over a
 * proposal.  The rule (who may sign, when a proposal comes into force)
 * is archive/policy_db.c's; the document and the list are
 * archive/policy.c's, beside the client half that reads them.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive.h"
#include "web/web_int.h"

enum MHD_Result
web_api_policies(struct web_req *r)
{
	static const char *const none[] = { NULL };
	archive_chain c;
	sqlite3 *db;
	json_t *j;
	lb_err err;

	lb_err_clear(&err);
	if (web_query_check(r, none, &err) == -1 ||
	    (db = web_db(r->srv, &err)) == NULL ||
	    archive_chain_load(db, &c, &err) == -1)
		return web_send_lb_err(r, &err);
	j = archive_chain_json(&c);
	archive_chain_clear(&c);
	return web_send_json(r, 200, j);        /* NULL: 500 */
}

/* The key of the caller's own credential. */
static int
caller_spki(sqlite3 *db, const char *serial, char spki[65], lb_err *err)
{
	ca_cert_info ci;
	X509 *x;
	int rc = -1;

	memset(&ci, 0, sizeof(ci));
	if (ca_cert_get(db, serial, &ci, err) == -1)
		return -1;
	if ((x = ca_cert_parse(ci.der, ci.der_len, err)) != NULL) {
		rc = ca_spki_sha256(x, spki);
		X509_free(x);
	}
	ca_cert_info_clear(&ci);
	return rc;
}

enum MHD_Result
web_api_policy_sign(struct web_req *r)
{
	static const char *const none[] = { NULL };
	char spki[65], actor[300];
	json_t *reply = NULL;
	sqlite3 *db;
	lb_err err;

	lb_err_clear(&err);
	snprintf(actor, sizeof(actor), "api:%s", r->op_email);
	if (web_query_check(r, none, &err) == -1 ||
	    (db = web_db(r->srv, &err)) == NULL ||
	    caller_spki(db, r->op_serial, spki, &err) == -1 ||
	    archive_policy_sign_body(db, r->param, r->body, r->body_len, spki,
	    actor, &reply, &err) == -1)
		return web_send_lb_err(r, &err);
	return web_send_json(r, 200, reply);
}

/* A whole number from 0 to max in query parameter name (absent: def). */
static int
query_num(struct web_req *r, const char *name, long long def,
    long long max, long long *out, lb_err *err)
{
	const char *v = web_query(r, name);
	char *end = NULL;

	*out = def;
	if (v == NULL)
		return 0;
	errno = 0;
	*out = isdigit((unsigned char)v[0]) ? strtoll(v, &end, 10) : -1;
	if (end == NULL || *end != '\0' || errno != 0 || *out < 0 ||
	    *out > max)
		return lb_err_set(err, LB_EINVAL, "query parameter %s must be a "
		    "whole number from 0 to %lld", name, max);
	return 0;
}

enum MHD_Result
web_api_escrows(struct web_req *r)
{
	static const char *const params[] = { "after", "limit", NULL };
	long long after, limit;
	sqlite3 *db;
	json_t *j;
	lb_err err;

	lb_err_clear(&err);
	if (web_query_check(r, params, &err) == -1 ||
	    query_num(r, "after", 0, INT64_MAX, &after, &err) == -1 ||
	    query_num(r, "limit", 200, 1000, &limit, &err) == -1 ||
	    (db = web_db(r->srv, &err)) == NULL ||
	    (j = archive_escrow_list_json(db, (int64_t)after, limit == 0 ? 1 :
	    (int)limit, &err)) == NULL)
		return web_send_lb_err(r, &err);
	return web_send_json(r, 200, j);
}
