/*
 * router.c - the life of one request.  MHD calls web_handle once when the
 * headers are in, once per piece of body and once more at the end.  The
 * first call decides everything that needs no body: the route (404, 405),
 * the body limit from Content-Length (413), the content type (415) and the
 * operator's certificate and roles (403), so that nothing is read from a
 * client that will be refused.  Later calls collect the body up to
 * body_limit; the last one runs the route's handler.  MHD's completion
 * notice logs the request and frees its state.
 *
 * The route table is the map of the daemon: relying parties' resources
 * (CRLs, OCSP) join /ca.crt on both listeners, enrollment joins the API on
 * HTTPS.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "web/web_int.h"

#define ROLES_READ  (CA_ROLE_ADMIN | CA_ROLE_OFFICER | CA_ROLE_AUDITOR)
#define ROLES_WRITE (CA_ROLE_ADMIN | CA_ROLE_OFFICER)
#define ROLES_AUDIT (CA_ROLE_ADMIN | CA_ROLE_AUDITOR)
/* archive/recovery.c decides which of the two may do what */
#define ROLES_RECOVERY (CA_ROLE_RECOVERY_OFFICER | CA_ROLE_RECOVERY_AGENT)
/* the escrow policy: its members sign it, everyone may read it */
#define ROLES_ANY (ROLES_READ | ROLES_RECOVERY)
/* An oversized body up to this size is read and discarded before the 413,
 * so that the client sees the answer instead of a reset connection. */
#define DRAIN_MAX   ((size_t)4 * 1024 * 1024)

static const struct web_route routes[] = {
	{ "/healthz", "GET", WEB_HTTPS | WEB_HTTP, 0, false,
	    web_pub_healthz },
	{ "/ca.crt", "GET", WEB_HTTPS | WEB_HTTP, 0, false,
	    web_pub_ca_cert },
	{ "/ca.crl", "GET", WEB_HTTPS | WEB_HTTP, 0, false, web_pub_crl },
	{ "/" CRL_DELTA_FILE, "GET", WEB_HTTPS | WEB_HTTP, 0, false,
	    web_pub_delta_crl },
	{ "/ocsp", "POST", WEB_HTTPS | WEB_HTTP, 0, false, web_ocsp_post },
	{ "/ocsp/**", "GET", WEB_HTTPS | WEB_HTTP, 0, false, web_ocsp_get },
	{ "/.well-known/est/*", "GET", WEB_HTTPS, 0, false, web_est },
	{ "/.well-known/est/*", "POST", WEB_HTTPS, 0, false, web_est },
	{ "/.well-known/est/*/*", "GET", WEB_HTTPS, 0, false, web_est },
	{ "/.well-known/est/*/*", "POST", WEB_HTTPS, 0, false, web_est },
	{ "/api/v1/policy", "GET", WEB_HTTPS, 0, false, web_api_policy },
	{ "/api/v1/certificates", "GET", WEB_HTTPS, ROLES_READ, false,
	    web_api_cert_list },
	{ "/api/v1/certificates/*", "GET", WEB_HTTPS, ROLES_READ, false,
	    web_api_cert_get },
	{ "/api/v1/certificates/*/revoke", "POST", WEB_HTTPS, ROLES_WRITE,
	    true, web_api_cert_revoke },
	{ "/api/v1/audit", "GET", WEB_HTTPS, ROLES_AUDIT, false,
	    web_api_audit },
	{ "/api/v1/recovery/requests", "POST", WEB_HTTPS, ROLES_RECOVERY,
	    true, web_api_recovery_create },
	{ "/api/v1/recovery/requests", "GET", WEB_HTTPS, ROLES_RECOVERY,
	    false, web_api_recovery_list },
	{ "/api/v1/recovery/requests/*", "GET", WEB_HTTPS, ROLES_RECOVERY,
	    false, web_api_recovery_get },
	{ "/api/v1/recovery/requests/*/approve", "POST", WEB_HTTPS,
	    ROLES_RECOVERY, true, web_api_recovery_approve },
	{ "/api/v1/recovery/requests/*/deny", "POST", WEB_HTTPS,
	    ROLES_RECOVERY, true, web_api_recovery_deny },
	{ "/api/v1/recovery/requests/*/package", "GET", WEB_HTTPS,
	    ROLES_RECOVERY, false, web_api_recovery_package },
	{ "/api/v1/recovery/requests/*/collected", "POST", WEB_HTTPS,
	    ROLES_RECOVERY, false, web_api_recovery_collected },
	{ "/api/v1/recovery/requests/*/statement", "POST", WEB_HTTPS,
	    ROLES_RECOVERY, true, web_api_recovery_statement },
	{ "/api/v1/escrow/policies", "GET", WEB_HTTPS, ROLES_ANY, false,
	    web_api_policies },
	{ "/api/v1/escrow/records", "GET", WEB_HTTPS, ROLES_ANY, false,
	    web_api_escrows },
	{ "/api/v1/escrow/policies/*/signatures", "POST", WEB_HTTPS,
	    ROLES_ANY, true, web_api_policy_sign },
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* ------------------------------------------------------------------ */
/* Responses                                                           */

static const char *
status_name(int status)
{
	switch (status) {
	case 400:
		return "bad_request";
	case 401:
		return "unauthorized";
	case 403:
		return "forbidden";
	case 404:
		return "not_found";
	case 405:
		return "method_not_allowed";
	case 409:
		return "conflict";
	case 410:
		return "gone";
	case 413:
		return "payload_too_large";
	case 415:
		return "unsupported_media_type";
	case 429:
		return "too_many_requests";
	case 503:
		return "unavailable";
	default:
		return "internal_error";
	}
}

void
web_http_date(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

enum MHD_Result
web_send(struct web_req *r, int status, const char *ctype, const char *cache,
    const void *buf, size_t len)
{
	struct MHD_Response *resp;

	if ((resp = MHD_create_response_from_buffer(len, (void *)buf,
	    MHD_RESPMEM_MUST_COPY)) == NULL)
		return MHD_NO;
	return web_queue(r, status, resp, ctype, cache);
}

enum MHD_Result
web_queue(struct web_req *r, int status, struct MHD_Response *resp,
    const char *ctype, const char *cache)
{
	enum MHD_Result ret = MHD_NO;

	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	    ctype) != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    cache != NULL ? cache : "no-store") != MHD_YES ||
	    MHD_add_response_header(resp, "X-Content-Type-Options",
	    "nosniff") != MHD_YES)
		goto out;
	if (r->allow[0] != '\0' && MHD_add_response_header(resp,
	    MHD_HTTP_HEADER_ALLOW, r->allow) != MHD_YES)
		goto out;
	/* shutting down: no more requests on this connection */
	if (atomic_load(&r->srv->stopping) && MHD_add_response_header(resp,
	    MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES)
		goto out;
	ret = MHD_queue_response(r->conn, (unsigned int)status, resp);
	if (ret == MHD_YES) {
		r->answered = true;
		r->status = status;
	}
out:
	if (resp != NULL)
		MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result
web_send_json(struct web_req *r, int status, json_t *j)
{
	static const char oom[] = "{\"error\": \"internal_error\", "
	    "\"detail\": \"out of memory\"}\n";
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	char *nl;
	size_t len;
	enum MHD_Result ret;

	json_decref(j);
	if (s == NULL)
		return web_send(r, 500, "application/json", NULL, oom,
		    sizeof(oom) - 1);
	len = strlen(s);
	if ((nl = realloc(s, len + 2)) == NULL) {
		free(s);
		return web_send(r, 500, "application/json", NULL, oom,
		    sizeof(oom) - 1);
	}
	nl[len++] = '\n';
	nl[len] = '\0';
	ret = web_send(r, status, "application/json", NULL, nl, len);
	free(nl);
	return ret;
}

enum MHD_Result
web_send_error(struct web_req *r, int status, const char *detail)
{
	json_t *j;

	/* EST clients expect text/plain reasons (RFC 7030 section 4.2.3) */
	if (strncmp(r->path, WEB_EST_PREFIX, strlen(WEB_EST_PREFIX)) == 0)
		return web_est_error(r, status, detail);
	j = json_object();

	if (j != NULL && (json_object_set_new(j, "error",
	    json_string(status_name(status))) == -1 ||
	    json_object_set_new(j, "detail", ca_json_str(detail)) == -1)) {
		json_decref(j);
		j = NULL;
	}
	return web_send_json(r, status, j);
}

enum MHD_Result
web_send_lb_err(struct web_req *r, const lb_err *err)
{
	int status = lb_err_http_status(err->code);

	if (status == 200 || status >= 500) {
		/* the detail may name files and tables: keep it in the log */
		log_warnx("%s %s: %s", r->method, r->path,
		    err->msg[0] != '\0' ? err->msg : "failed");
		return web_send_error(r, 500, "internal error: see the "
		    "server log");
	}
	return web_send_error(r, status, err->msg[0] != '\0' ? err->msg :
	    status_name(status));
}

/* ------------------------------------------------------------------ */
/* Query parameters                                                    */

struct query_check {
	const char *const *allowed;
	char bad[64];
};

static enum MHD_Result
query_each(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct query_check *q = cls;
	size_t i;

	(void)kind;
	(void)value;
	for (i = 0; q->allowed[i] != NULL; i++)
		if (strcmp(key, q->allowed[i]) == 0)
			return MHD_YES;
	snprintf(q->bad, sizeof(q->bad), "%s", key);
	return MHD_NO;
}

int
web_query_check(struct web_req *r, const char *const *allowed, lb_err *err)
{
	struct query_check q;
	char names[256] = "";
	size_t i;

	q.allowed = allowed;
	q.bad[0] = '\0';
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_each,
	    &q);
	if (q.bad[0] == '\0')
		return 0;
	for (i = 0; allowed[i] != NULL; i++) {
		if (i > 0)
			strncat(names, ", ", sizeof(names) - strlen(names) - 1);
		strncat(names, allowed[i], sizeof(names) - strlen(names) - 1);
	}
	if (names[0] == '\0')
		return lb_err_set(err, LB_EINVAL, "unknown query parameter "
		    "'%s': this resource takes none", q.bad);
	return lb_err_set(err, LB_EINVAL, "unknown query parameter '%s' "
	    "(known: %s)", q.bad, names);
}

const char *
web_query(struct web_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

/* ------------------------------------------------------------------ */
/* Routing                                                             */

/*
 * Matches path against pat; '*' takes one non-empty segment, a final "**"
 * the non-empty rest of the path, slashes included (OCSP GET's base64).
 */
static bool
path_match(const char *pat, const char *path, const char **seg,
    size_t *seglen)
{
	size_t n;

	*seg = NULL;
	*seglen = 0;
	while (*pat != '\0') {
		if (pat[0] == '*' && pat[1] == '*' && pat[2] == '\0') {
			if (*path == '\0')
				return false;
			*seg = path;
			*seglen = strlen(path);
			return true;
		}
		if (*pat == '*') {
			n = strcspn(path, "/");
			if (n == 0)
				return false;
			*seg = path;
			*seglen = n;
			path += n;
			pat++;
			continue;
		}
		if (*pat != *path)
			return false;
		pat++;
		path++;
	}
	return *path == '\0';
}

static bool
method_match(const struct web_route *rt, const char *method)
{
	return strcmp(method, rt->method) == 0 ||
	    (strcmp(rt->method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

static void
add_allow(struct web_req *r, const char *m)
{
	size_t n = strlen(r->allow);

	if (strstr(r->allow, m) != NULL)
		return;
	snprintf(r->allow + n, sizeof(r->allow) - n, "%s%s",
	    n > 0 ? ", " : "", m);
}

/* "admin, officer or auditor" */
static void
role_names(unsigned roles, char *out, size_t outlen)
{
	unsigned bit;
	size_t n;
	int count = 0, total = 0;

	for (bit = 1; bit <= CA_ROLE_AUDITOR; bit <<= 1)
		if (roles & bit)
			total++;
	out[0] = '\0';
	for (bit = 1; bit <= CA_ROLE_AUDITOR; bit <<= 1) {
		if ((roles & bit) == 0)
			continue;
		n = strlen(out);
		snprintf(out + n, outlen - n, "%s%s", count == 0 ? "" :
		    count == total - 1 ? " or " : ", ",
		    ca_role_name((enum ca_role)bit));
		count++;
	}
	if (total == 0)
		snprintf(out, outlen, "none");
}

/* Application/json, with or without parameters such as charset. */
/* True when the client sent "Expect: 100-continue" and waits for it. */
static bool
expects_continue(const struct web_req *r)
{
	const char *e = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_EXPECT);

	return e != NULL && strcasecmp(e, "100-continue") == 0;
}

static bool
is_json(const char *ctype)
{
	size_t n = strlen("application/json");

	return ctype != NULL && strncasecmp(ctype, "application/json", n) ==
	    0 && (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/* The operator behind the client certificate, and their roles. */
static enum MHD_Result
check_operator(struct web_req *r)
{
	char need[96], have[96];
	lb_err err;
	sqlite3 *db;

	lb_err_clear(&err);
	if ((db = web_db(r->srv, &err)) == NULL ||
	    web_auth_operator(r, db, &err) == -1)
		return web_send_lb_err(r, &err);
	if ((r->op_roles & r->route->roles) != 0)
		return MHD_YES;
	role_names(r->route->roles, need, sizeof(need));
	role_names(r->op_roles, have, sizeof(have));
	log_warnx("denied %s %s to %s (roles: %s)", r->method, r->path,
	    r->op_email, have);
	snprintf(err.msg, sizeof(err.msg), "%s %s needs the role %s; %s "
	    "holds %s", r->method, r->path, need, r->op_email, have);
	return web_send_error(r, 403, err.msg);
}

/* The first call: everything that needs no body. */
static enum MHD_Result
begin(struct web_req *r, const char *url, const char *method)
{
	const struct web_route *rt;
	const char *seg = NULL, *cl;
	size_t seglen = 0, i;
	bool path_known = false;
	char *end = NULL;
	unsigned long long len;

	for (i = 0; i < NROUTES && r->route == NULL; i++) {
		rt = &routes[i];
		if ((rt->listeners & r->lst->kind) == 0 ||
		    !path_match(rt->path, url, &seg, &seglen))
			continue;
		path_known = true;
		if (method_match(rt, method)) {
			r->route = rt;
			break;
		}
		add_allow(r, rt->method);
		if (strcmp(rt->method, "GET") == 0)
			add_allow(r, "HEAD");
	}
	if (!path_known)
		return web_send_error(r, 404, "no such resource on this "
		    "listener");
	if (r->route == NULL)
		return web_send_error(r, 405, "method not allowed here (see "
		    "the Allow header)");
	r->allow[0] = '\0';
	if (seg != NULL && (r->param = strndup(seg, seglen)) == NULL)
		return MHD_NO;

	cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL) {
		len = strtoull(cl, &end, 10);
		if (end == cl || *end != '\0' || len > r->srv->body_limit) {
			r->too_big = true;
			/*
			 * Answering before the body is read makes the kernel
			 * reset the connection while the client still sends,
			 * and the client sees no 413.  A client that waits
			 * for "100 Continue" gets the 413 at once; a modest
			 * body is read and discarded first; a huge one is
			 * cut off.
			 */
			if (end == cl || *end != '\0' || len > DRAIN_MAX ||
			    expects_continue(r))
				return web_send_error(r, 413, "request body "
				    "larger than the server's body_limit");
			return MHD_YES;
		}
	}
	if (r->route->json_body && !is_json(MHD_lookup_connection_value(
	    r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE)))
		return web_send_error(r, 415, "the body must be JSON "
		    "(Content-Type: application/json)");
	if (r->route->roles != 0)
		return check_operator(r);
	return MHD_YES;
}

/* Collects a piece of the body; over the limit: discarded, then 413. */
static enum MHD_Result
take_body(struct web_req *r, const char *data, size_t *size)
{
	size_t n = *size, need, cap;
	unsigned char *p;

	*size = 0;
	if (r->answered)
		return MHD_YES;
	if (!r->too_big && n > r->srv->body_limit - r->body_len) {
		/* a chunked body without Content-Length grew too big */
		r->too_big = true;
		free(r->body);
		r->body = NULL;
		r->body_len = 0;
	}
	if (r->too_big) {
		/* discard, and answer 413 once the body is in */
		r->drained += n;
		if (r->drained <= DRAIN_MAX)
			return MHD_YES;
		/* MHD cannot answer in the middle of a body: hang up */
		log_info("%s %s: body far over the limit, closing the "
		    "connection", r->method, r->path);
		return MHD_NO;
	}
	need = r->body_len + n + 1;
	cap = r->body_len + 1;
	if (r->body == NULL || need > cap) {
		/* grow by doubling, up to the limit */
		cap = r->body == NULL ? 1024 : r->body_len * 2 + 1;
		if (cap < need)
			cap = need;
		if (cap > r->srv->body_limit + 1)
			cap = r->srv->body_limit + 1;
		if ((p = realloc(r->body, cap)) == NULL)
			return MHD_NO;
		r->body = p;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return MHD_YES;
}

/* The last call: the whole body is in. */
static enum MHD_Result
finish(struct web_req *r)
{
	enum MHD_Result ret;

	if (r->answered)
		return MHD_YES;
	if (r->too_big)
		return web_send_error(r, 413, "request body larger than the "
		    "server's body_limit");
	ret = r->route->fn(r);
	if (ret == MHD_YES && !r->answered) {
		log_warnx("%s %s: handler gave no answer", r->method, r->path);
		ret = web_send_error(r, 500, "no answer");
	}
	return ret;
}

/* Copies s for the log, control characters replaced. */
static void
log_copy(char *dst, size_t dstlen, const char *s)
{
	size_t i;

	for (i = 0; i + 1 < dstlen && s[i] != '\0'; i++)
		dst[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' :
		    s[i];
	dst[i] = '\0';
}

/*
 * A connection opened beyond connection_limit or per_ip_connection_limit
 * (guard.c): one plain answer, then the connection closes.
 */
static enum MHD_Result
refuse_over_cap(struct web_req *r)
{
	static const char msg[] = "503 server busy: too many connections; "
	    "retry later\n";
	struct MHD_Response *resp;

	if ((resp = MHD_create_response_from_buffer(sizeof(msg) - 1,
	    (void *)msg, MHD_RESPMEM_PERSISTENT)) == NULL)
		return MHD_NO;
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER,
	    WEB_RETRY_AFTER) != MHD_YES ||
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
	    "close") != MHD_YES) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	return web_queue(r, 503, resp, "text/plain", NULL);
}

enum MHD_Result
web_handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct web_listener *lst = cls;
	struct web_req *r = *con_cls;

	(void)version;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		r->srv = lst->srv;
		r->lst = lst;
		r->conn = conn;
		log_copy(r->method, sizeof(r->method), method);
		log_copy(r->path, sizeof(r->path), url);
		*con_cls = r;
		atomic_fetch_add(&r->srv->inflight, 1);
		/* before routing, credentials or body */
		if (web_guard_headers_in(conn))
			return refuse_over_cap(r);
		return begin(r, url, method);
	}
	if (*upload_data_size > 0)
		return take_body(r, upload_data, upload_data_size);
	return finish(r);
}

void
web_client_addr(struct MHD_Connection *conn, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci;

	snprintf(out, outlen, "?");
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL &&
	    getnameinfo(ci->client_addr,
	    ci->client_addr->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in),
	    out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(out, outlen, "?");
}

void
web_request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct web_req *r = *con_cls;
	char addr[INET6_ADDRSTRLEN];

	(void)cls;
	if (r == NULL)
		return;
	*con_cls = NULL;
	web_client_addr(conn, addr, sizeof(addr));
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		log_info("%s %s %s %s %d%s%s", r->lst->kind == WEB_HTTPS ?
		    "https" : "http", addr, r->method, r->path, r->status,
		    r->op_email ? " by " : "", r->op_email ? r->op_email : "");
	else
		log_info("%s %s %s %s: connection ended early (%d)",
		    r->lst->kind == WEB_HTTPS ? "https" : "http", addr,
		    r->method, r->path, (int)toe);
	atomic_fetch_sub(&r->srv->inflight, 1);
	free(r->body);
	free(r->param);
	free(r->op_serial);
	free(r->op_email);
	free(r);
}
