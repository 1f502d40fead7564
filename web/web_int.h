/*
 * web_int.h - what the files of web/ share: the server (its listeners,
 * limits and per-thread database handles), one request's state, the route
 * table and the response helpers.
 *
 *   server.c   start-up, configuration, listeners, signals, shutdown and
 *              the per-thread database handles
 *   router.c   the request life cycle: the route table, limits, body
 *              collection, operator checks, responses
 *   auth.c     TLS client certificates (the only file that sees GnuTLS)
 *   api.c      the operator JSON API under /api/v1/
 *   api_recovery.c  the recovery workflow under /api/v1/recovery/
 *   public.c   what relying parties fetch without credentials
 *   guard.c    connection caps answered with 503, and the deadline for
 *              request headers (the watchdog thread)
 */
#ifndef LOCKBOX_WEB_INT_H
#define LOCKBOX_WEB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "archive/archive.h"
#include "ca/ca.h"
#include "crl/crl.h"
#include "enroll/enroll.h"
#include "web/web.h"

/* Which listener a request came in on; routes name the ones they serve. */
#define WEB_HTTPS 0x1
#define WEB_HTTP  0x2

/* A database handle opened by one worker thread, kept for shutdown. */
struct web_dbslot {
	sqlite3 *db;
	struct web_dbslot *next;
};

struct web_server;
struct web_guard;
struct web_watchdog;

/* The closure MHD hands to the callbacks of one listener. */
struct web_listener {
	struct web_server *srv;
	unsigned kind;              /* WEB_HTTPS or WEB_HTTP */
	struct MHD_Daemon *daemon;
	int fd;                     /* bound and listening before MHD runs;
	                             * MHD's once it started, else -1 */
	char url[300];              /* "https://ADDR:PORT", for messages */
	struct web_guard *guard;    /* its connection counts (guard.c) */
};

struct web_server {
	ca_ctx *ca;
	struct web_listener https, http;
	/* [server] settings */
	unsigned threads, timeout, conn_limit, per_ip_limit, signers;
	size_t body_limit;
	/* database handles, one per worker thread, opened lazily */
	pthread_key_t db_key;
	pthread_mutex_t db_lock;
	struct web_dbslot *dbs;
	/* requests between their first callback and completion */
	atomic_int inflight;
	/* set once SIGTERM arrived: answers carry "Connection: close" */
	atomic_bool stopping;
	/* the OCSP responder (crl/ocsp.c), renewed by ocsp_http.c */
	crl_ocsp *ocsp;
	atomic_llong ocsp_checked;  /* last renewal check, epoch seconds */
	/* the CRL publisher (crl/publish.c), woken by API revocations */
	crl_publisher *crl;
	/* pub/ca.crl and pub/ca.crt, served from memory (crl_http.c) */
	struct web_pubfile *crl_file, *delta_file, *ca_crt_file;
	/* enrollment (enroll/) */
	enroll_ctx *enroll;
	/* cuts off connections slow to send their headers (guard.c) */
	struct web_watchdog *watchdog;
};

/*
 * What a connection keeps from MHD's "started" notice to its "closed"
 * one (MHD's socket context): its place in its listener's counts and
 * registry, and auth.c's certificate cache.
 */
struct web_conn {
	struct web_guard *guard;
	struct web_conn *prev, *next;   /* the registry, under guard's lock */
	MHD_socket fd;
	/* monotonic ms since the current request waits for its headers;
	 * 0 once they are in */
	atomic_llong waiting_since;
	bool over_cap;              /* opened beyond a cap: answer 503 */
	bool cut;                   /* shut down by the watchdog */
	bool has_addr;              /* counted under addr */
	unsigned char addr[16];     /* IPv4 as v4-mapped IPv6 */
	void *auth;                 /* auth.c's, HTTPS only */
};

struct web_req;

/* A route: '*' in path matches one non-empty path segment. */
struct web_route {
	const char *path;
	const char *method;         /* GET routes answer HEAD as well */
	unsigned listeners;         /* WEB_HTTPS | WEB_HTTP */
	unsigned roles;             /* operator roles allowed; 0: anyone */
	bool json_body;             /* needs Content-Type: application/json */
	enum MHD_Result (*fn)(struct web_req *r);
};

/* One request, from its first callback to MHD's completion notice. */
struct web_req {
	struct web_server *srv;
	struct web_listener *lst;
	struct MHD_Connection *conn;
	const struct web_route *route;
	char *param;                /* the segment '*' matched, or NULL */
	char method[16];
	char path[256];             /* for the access log, truncated */
	/* the body, at most srv->body_limit bytes, NUL-terminated */
	unsigned char *body;
	size_t body_len;
	bool too_big;               /* over body_limit: drain, then 413 */
	size_t drained;             /* bytes of an oversized body discarded */
	bool answered;
	int status;                 /* the status queued, for the log */
	/* the operator behind the client certificate, once checked */
	char *op_serial;
	char *op_email;
	unsigned op_roles;
	char allow[64];             /* Allow header of a 405 */
};

/* ---- server.c ---------------------------------------------------- */

/*
 * The calling worker thread's database handle, opened on first use and
 * closed at shutdown.  NULL with err set when the database cannot be
 * opened.
 */
sqlite3 *web_db(struct web_server *srv, lb_err *err);

/* ---- router.c ---------------------------------------------------- */

/* The client's address as text ("?" when unknown). */
void web_client_addr(struct MHD_Connection *conn, char *out, size_t outlen);

/* MHD_AccessHandlerCallback of both listeners (cls: web_listener). */
enum MHD_Result web_handle(void *cls, struct MHD_Connection *conn,
    const char *url, const char *method, const char *version,
    const char *upload_data, size_t *upload_data_size, void **con_cls);
/* MHD_OPTION_NOTIFY_COMPLETED: logs and frees the request state. */
void web_request_done(void *cls, struct MHD_Connection *conn,
    void **con_cls, enum MHD_RequestTerminationCode toe);

/* t as an HTTP date (RFC 9110 IMF-fixdate) for Last-Modified and Expires;
 * outlen 30 or more. */
void web_http_date(time_t t, char *out, size_t outlen);

/*
 * Queues a response: a copy of buf with the given status and content type
 * and the headers every answer carries.  cache is the Cache-Control value
 * (NULL: no-store).
 */
enum MHD_Result web_send(struct web_req *r, int status, const char *ctype,
    const char *cache, const void *buf, size_t len);
/*
 * As web_send for a response the caller made (consumed, also on failure):
 * adds the headers every answer carries and queues it.
 */
enum MHD_Result web_queue(struct web_req *r, int status,
    struct MHD_Response *resp, const char *ctype, const char *cache);
/* Queues j (consumed) as compact JSON. */
enum MHD_Result web_send_json(struct web_req *r, int status, json_t *j);
/* Queues {"error": short name of status, "detail": detail}. */
enum MHD_Result web_send_error(struct web_req *r, int status,
    const char *detail);
/*
 * Queues the error err carries with its HTTP status.  Internal errors are
 * logged and answered without their detail, which may name files.
 */
enum MHD_Result web_send_lb_err(struct web_req *r, const lb_err *err);

/*
 * Refuses query parameters other than those in allowed (NULL-terminated):
 * -1 with err (LB_EINVAL) naming the first stranger.
 */
int web_query_check(struct web_req *r, const char *const *allowed,
    lb_err *err);
/* The value of query parameter name, or NULL when absent. */
const char *web_query(struct web_req *r, const char *name);

/* ---- guard.c ----------------------------------------------------- */

/* Seconds a client refused over a cap is asked to wait (Retry-After). */
#define WEB_RETRY_AFTER "5"

/*
 * The counts of one listener (name: "https" or "http", kept): limit and
 * per_ip_limit (0: none) are the caps answered with 503, hard_limit is
 * MHD's connection limit (it sizes the address table), timeout the
 * seconds a request may take to send its headers.  NULL when out of
 * memory.
 */
struct web_guard *web_guard_new(const char *name, unsigned limit,
    unsigned per_ip_limit, unsigned hard_limit, unsigned timeout);
/* Frees g; its listener's daemon has stopped. */
void web_guard_free(struct web_guard *g);
/*
 * A connection of g opened: counts and registers it, waiting for its
 * headers from now.  Returns its state (to be given to web_guard_close),
 * or NULL when out of memory.
 */
struct web_conn *web_guard_open(struct web_guard *g,
    struct MHD_Connection *conn);
/* The connection closed (MHD has not closed its socket yet): uncounts,
 * unregisters and frees c.  NULL is ignored. */
void web_guard_close(struct web_conn *c);
/*
 * The headers of conn's current request are in: it is no longer watched.
 * True when the connection opened beyond a cap and must be answered 503.
 */
bool web_guard_headers_in(struct MHD_Connection *conn);
/* MHD_OPTION_NOTIFY_COMPLETED: the connection waits for its next request
 * from now; then web_request_done. */
void web_guard_request_done(void *cls, struct MHD_Connection *conn,
    void **con_cls, enum MHD_RequestTerminationCode toe);
/*
 * Starts the thread that, once a second, shuts down the connections of
 * a and b (either may be NULL) that have waited longer than their
 * listener's timeout for request headers.  NULL with err on failure.
 */
struct web_watchdog *web_watchdog_start(struct web_guard *a,
    struct web_guard *b, lb_err *err);
/* Stops and frees w (NULL is ignored). */
void web_watchdog_stop(struct web_watchdog *w);

/* ---- auth.c ------------------------------------------------------ */

/*
 * The TLS client certificate of a subscriber (EST renewal): verified to
 * chain to this CA with extended key usage emailProtection.  Returns 1
 * with *cert (owned), 0 when the client sent none, -1 with err
 * (LB_EUNAUTH) when it is not accepted.
 */
int web_auth_subscriber(struct web_req *r, X509 **cert, lb_err *err);

/* MHD_OPTION_NOTIFY_CONNECTION: per-connection client certificate cache. */
/* (and the connection's counts and registry: web_guard_open/close) */
void web_conn_notify(void *cls, struct MHD_Connection *conn,
    void **socket_context, enum MHD_ConnectionNotificationCode toe);

/*
 * Checks the TLS client certificate of r's connection: it must chain to
 * this CA (verified with OpenSSL, purpose clientAuth) and be the
 * credential of an active operator in the database.  Fills r->op_serial,
 * r->op_email and r->op_roles.  -1 with err: LB_EFORBIDDEN when the
 * certificate is missing or not accepted, LB_EINTERNAL when the database
 * fails.
 */
int web_auth_operator(struct web_req *r, sqlite3 *db, lb_err *err);

/*
 * ---- api.c and public.c: route handlers ---------------------------
 * Each runs once the whole body is in, queues exactly one response and
 * returns what MHD_queue_response returned.  The router has checked the
 * route's roles; r->param holds the '*' segment (a serial).
 */

/* GET /api/v1/certificates?email=&profile=&status=&limit= (newest first;
 * "more" tells that the limit cut the list). */
enum MHD_Result web_api_cert_list(struct web_req *r);
/* GET /api/v1/certificates/SERIAL: the record and its "pem". */
enum MHD_Result web_api_cert_get(struct web_req *r);
/* POST /api/v1/certificates/SERIAL/revoke {"reason", "invalidity_date"}:
 * revokes as "api:" + the operator's e-mail, answers the new record. */
enum MHD_Result web_api_cert_revoke(struct web_req *r);

/*
 * Parses a revoke request body, {"reason": NAME, "invalidity_date": WHEN}
 * and nothing else (WHEN: seconds since the epoch or ISO 8601 UTC, only
 * with keyCompromise, never in the future).  -1 with err (LB_EINVAL).
 */
int web_revoke_body_parse(const unsigned char *buf, size_t len, int *reason,
    time_t *invalidity, lb_err *err);
/* GET /api/v1/audit?after=&limit=: audit rows in id order. */
enum MHD_Result web_api_audit(struct web_req *r);

/* GET /healthz: 200 when the database answers (status "ok", or "degraded"
 * when a CRL publication target is failing), else 503. */
enum MHD_Result web_pub_healthz(struct web_req *r);

/*
 * ---- crl_http.c: published files served from memory ----------------
 */

/* A file of pub/ held in memory, reloaded when replaced on disk. */
struct web_pubfile;
/* dir/name, at most max bytes; is_crl: Expires from its nextUpdate. */
struct web_pubfile *web_pubfile_new(const char *dir, const char *name,
    size_t max, bool is_crl);
void web_pubfile_free(struct web_pubfile *f);
/* GET /ca.crl: pub/ca.crl as application/pkix-crl, with Last-Modified,
 * ETag, Expires (nextUpdate), Cache-Control max-age; 304 when current. */
enum MHD_Result web_pub_crl(struct web_req *r);
enum MHD_Result web_pub_delta_crl(struct web_req *r);
/* GET /ca.crt: pub/ca.crt (DER) as application/pkix-cert, likewise
 * (an hour's max-age). */
enum MHD_Result web_pub_ca_cert(struct web_req *r);

/*
 * ---- ocsp_http.c: the OCSP responder over HTTP (RFC 6960 appendix A) --
 */

/* POST /ocsp (application/ocsp-request, at most CRL_OCSP_REQ_MAX). */
enum MHD_Result web_ocsp_post(struct web_req *r);
/* GET /ocsp/BASE64 (URL-encoded or raw): with RFC 5019 caching headers
 * unless the answer echoes a nonce. */
enum MHD_Result web_ocsp_get(struct web_req *r);
/*
 * Decodes the GET form of a request: URL-decoding (%2B, %2F, %3D ...;
 * a space, which '+' may have become, counts as '+'), then base64.
 * -1 when malformed or longer than CRL_OCSP_REQ_MAX.
 */
int web_ocsp_get_decode(const char *s, unsigned char **der, size_t *len);

/*
 * ---- api_recovery.c: /api/v1/recovery/requests --------------------
 * The routes admit recovery officers and agents; archive/recovery.c
 * decides (and audits) what each may do.  r->param is a request id.
 */

/* POST /api/v1/recovery/requests {"email", "serial"?, "reason",
 * "request_cert"}: 201 and the request. */
enum MHD_Result web_api_recovery_create(struct web_req *r);
/* GET /api/v1/recovery/requests?pending=0|1&limit=: {"requests", "count"};
 * pending=1: those awaiting the calling agent. */
enum MHD_Result web_api_recovery_list(struct web_req *r);
/* GET /api/v1/recovery/requests/ID: the request with its certificates
 * and, for an agent, its own escrow shares ("shares"). */
enum MHD_Result web_api_recovery_get(struct web_req *r);
/* POST /api/v1/recovery/requests/ID/approve {"shares": [{"record_id",
 * "cms"}]}: the request as it now stands. */
enum MHD_Result web_api_recovery_approve(struct web_req *r);
/* POST /api/v1/recovery/requests/ID/deny {"reason"}. */
enum MHD_Result web_api_recovery_deny(struct web_req *r);
/* GET /api/v1/recovery/requests/ID/package: records, rewrapped shares and
 * the CA chain, for the requester of an approved request. */
enum MHD_Result web_api_recovery_package(struct web_req *r);
enum MHD_Result web_api_recovery_collected(struct web_req *r);
/* POST /api/v1/recovery/requests/ID/statement {"statement", "cms"}: the
 * requester's signed statement of the request, once. */
enum MHD_Result web_api_recovery_statement(struct web_req *r);

/* GET /api/v1/escrow/policies: every policy not withdrawn, with its
 * signatures (archive_chain_json), for any operator. */
enum MHD_Result web_api_policies(struct web_req *r);
/* POST /api/v1/escrow/policies/HASH/signatures {"cms"}: the caller's own
 * signature over the pending proposal HASH: {"hash", "in_force"}. */
enum MHD_Result web_api_policy_sign(struct web_req *r);
/* GET /api/v1/escrow/records?after=ID&limit=N: the records after ID with
 * their share blobs and agent certificates, for the members' audits. */
enum MHD_Result web_api_escrows(struct web_req *r);


/*
 * ---- est_http.c: EST (RFC 7030) and the autoenrollment policy -------
 */
#define WEB_EST_PREFIX "/.well-known/est/"

/* /.well-known/est/[LABEL/]OP, GET cacerts and csrattrs, POST
 * simpleenroll, simplereenroll and serverkeygen. */
enum MHD_Result web_est(struct web_req *r);
/* GET /api/v1/policy: the caller's autoenrollment policy, with ETag. */
enum MHD_Result web_api_policy(struct web_req *r);
/* A text/plain error answer (401 adds WWW-Authenticate). */
enum MHD_Result web_est_error(struct web_req *r, int status,
    const char *detail);
/*
 * Parses an Authorization header of the Basic scheme: *user and *pass
 * malloc'ed (cleanse pass).  -1 when absent (hdr NULL), of another
 * scheme, malformed, or longer than 4 KiB.
 */
int web_basic_auth_parse(const char *hdr, char **user, char **pass);

/* ------------------------------------------------------------------ */
/* Whom the daemon runs as (privdrop.c)                                */

struct web_user {
	const char *name;         /* [server] user; NULL: stay as started */
	uid_t uid;
	gid_t gid;
	bool drop;                /* started as root with a user: drop */
};
/*
 * Reads [server] user.  Started as root with one, looks the account up
 * and checks that the state directory, its database and pub/ belong to
 * it (the network process must write them after the drop); warns when
 * the CA key does too.  Not root: nothing to drop, noted in the log.
 */
int web_user_prepare(const ca_ctx *ca, struct web_user *u, lb_err *err);
/* Drops to u's account for good when web_user_prepare said so. */
int web_user_drop(const struct web_user *u, lb_err *err);

#endif /* LOCKBOX_WEB_INT_H */
