/*
 * public.c - what anyone may fetch without credentials, on both
 * listeners: the health check and the CA certificate that every issued
 * certificate names in its AIA caIssuers URL (BASE/ca.crt), which
 * crl_http.c serves beside the CRL with the same caching headers.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crl/crl.h"
#include "web/web_int.h"


/* A target still behind the current CRL this long after its issuance is
 * failing, even when its last attempt did not error (e.g. never tried). */
#define HEALTH_PUB_GRACE 60

struct health_state {
	const crl_info *ci;
	time_t now;
	json_t *targets;
	bool degraded;
	bool oom;
};

static int
health_target(const crl_publication *p, void *arg)
{
	struct health_state *s = arg;
	json_t *o;
	bool ok;

	ok = p->last_error == NULL && (p->number >= s->ci->number ||
	    s->now - s->ci->issued <= HEALTH_PUB_GRACE);
	if (!ok)
		s->degraded = true;
	/* published_at: the name before, kept beside published */
	o = json_pack("{s:s, s:I, s:o, s:o, s:o, s:b}", "name", p->target,
	    "published_number", (json_int_t)p->number, "published",
	    ca_json_time_or_null(p->published), "published_at",
	    ca_json_time_or_null(p->published), "last_error",
	    ca_json_str(p->last_error), "ok", ok);
	if (o == NULL || json_array_append_new(s->targets, o) == -1) {
		s->oom = true;
		return 1;
	}
	return 0;
}

/*
 * The "crl" object of /healthz, or NULL with err; *degraded set when a
 * publication target is failing.
 */
static json_t *
health_crl(sqlite3 *db, time_t now, bool *degraded, lb_err *err)
{
	struct health_state s;
	crl_info ci;
	json_t *j = NULL, *ret = NULL;

	memset(&s, 0, sizeof(s));
	if (crl_current(db, &ci, err) == -1)
		goto out;
	s.ci = &ci;
	s.now = now;
	if ((s.targets = json_array()) == NULL)
		goto oom;
	if (crl_publication_foreach(db, health_target, &s, err) == -1)
		goto out;
	if (s.oom)
		goto oom;
	j = json_pack("{s:I, s:o, s:o, s:O}", "number", (json_int_t)ci.number,
	    "this_update", ci.number != 0 ? ca_json_time(ci.this_update) :
	    json_null(), "next_update", ci.number != 0 ?
	    ca_json_time(ci.next_update) : json_null(), "targets", s.targets);
	if (j == NULL)
		goto oom;
	*degraded = s.degraded;
	ret = j;
	goto out;
oom:
	lb_err_set(err, LB_EINTERNAL, "out of memory");
out:
	json_decref(s.targets);
	return ret;
}

/*
 * GET /healthz: 503 when the database does not answer or the signer
 * process has stopped (nothing can be signed); else 200 with
 * status "ok", or "degraded" when a CRL publication target is failing
 * or user certificates wait for the directory (over an hour, or failed)
 * (the daemon still serves, so load balancers should keep it).
 */
enum MHD_Result
web_pub_healthz(struct web_req *r)
{
	char now[32];
	sqlite3 *db;
	json_t *j, *crl;
	lb_err err;
	bool degraded = false;
	enroll_publish_counts pc;
	time_t t;

	lb_err_clear(&err);
	if (!ca_signer_alive(r->srv->ca))
		return web_send_error(r, 503, "the CA's signer process has "
		    "stopped: restart the daemon");
	if ((db = web_db(r->srv, &err)) == NULL ||
	    core_db_ping(db) == -1) {
		log_warnx("health check: the database does not answer%s%s",
		    err.msg[0] ? ": " : "", err.msg);
		return web_send_error(r, 503, "the database does not answer");
	}
	t = time(NULL);
	if ((crl = health_crl(db, t, &degraded, &err)) == NULL) {
		log_warnx("health check: the CRL state does not read: %s",
		    err.msg);
		return web_send_error(r, 503, "the database does not answer");
	}
	if (enroll_publish_counts_get(db, &pc, &err) == -1) {
		json_decref(crl);
		log_warnx("health check: the publication queue does not read: "
		    "%s", err.msg);
		return web_send_error(r, 503, "the database does not answer");
	}
	/* user certificates waiting for the directory over an hour, or
	 * given up on: someone should look */
	if (pc.failed > 0 || (pc.oldest_pending != 0 &&
	    t - pc.oldest_pending > 3600))
		degraded = true;
	core_time_fmt(t, now, sizeof(now));
	j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:{s:I, s:I}}", "status",
	    degraded ? "degraded" : "ok", "database", "ok", "signer", "ok",
	    "time", now,
	    "crl", crl, "publish", "pending", (json_int_t)pc.pending,
	    "failed", (json_int_t)pc.failed);
	return web_send_json(r, 200, j);
}
