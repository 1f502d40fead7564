/*
 * public.c - what anyone may fetch without credentials, on both
 * listeners: the health check and the CA certificate that every issued
 * certificate names in its AIA caIssuers URL (BASE/ca.crt).  CRLs and OCSP
 * answers join here.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web/web_int.h"

#define CA_CRT_MAX   ((size_t)1024 * 1024)
/* Relying parties may cache the CA certificate for an hour. */
#define CA_CRT_CACHE "public, max-age=3600"

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

enum MHD_Result
web_pub_ca_cert(struct web_req *r)
{
	unsigned char *der = NULL;
	size_t len = 0;
	char *path = NULL;
	enum MHD_Result ret;
	lb_err err;

	lb_err_clear(&err);
	/* read per request: pub/ is replaced atomically when it changes */
	if ((path = core_path(ca_get0_dir(r->srv->ca), CA_PUB_DIR
	    "/ca.crt")) == NULL ||
	    core_file_read(path, CA_CRT_MAX, &der, &len, &err) == -1) {
		if (err.code == LB_ENOTFOUND)
			ret = web_send_error(r, 404, "the CA certificate is not "
			    "published (pub/ca.crt is missing)");
		else
			ret = web_send_lb_err(r, &err);
		goto out;
	}
	ret = web_send(r, 200, "application/pkix-cert", CA_CRT_CACHE, der,
	    len);
out:
	free(der);
	free(path);
	return ret;
}
