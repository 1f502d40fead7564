/*
 * public.c - what anyone may fetch without credentials, on both
 * listeners: the health check and the CA certificate that every issued
 * certificate names in its AIA caIssuers URL (BASE/ca.crt), which
 * crl_http.c serves beside the CRL with the same caching headers.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web/web_int.h"


enum MHD_Result
web_pub_healthz(struct web_req *r)
{
	char now[32];
	sqlite3 *db;
	json_t *j;
	lb_err err;

	lb_err_clear(&err);
	if ((db = web_db(r->srv, &err)) == NULL ||
	    sqlite3_exec(db, "SELECT 1 FROM certificates LIMIT 1", NULL, NULL,
	    NULL) != SQLITE_OK) {
		log_warnx("health check: the database does not answer%s%s",
		    err.msg[0] ? ": " : "", err.msg);
		return web_send_error(r, 503, "the database does not answer");
	}
	core_time_fmt(time(NULL), now, sizeof(now));
	j = json_pack("{s:s, s:s, s:s}", "status", "ok", "database", "ok",
	    "time", now);
	return web_send_json(r, 200, j);
}
