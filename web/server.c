/*
 * server.c - `lockbox serve`: reads [server] from lockbox.conf, opens the CA
 * and hands its private key at once to the signer process (ca/signer.c),
 * through which every certificate, CRL and receipt is signed; started as
 * root with [server] user, drops to that account once its listening
 * sockets are open and before anything else (privdrop.c); MHD then serves
 * on those sockets.  Connection caps and the header deadline: guard.c.  Starts the OCSP responder (a delegated responder
 * whose short-lived key and certificate stay here), the HTTPS listener for
 * operators and the plain-HTTP listener for relying parties, and waits for
 * SIGTERM or SIGINT with sigwait in the main thread (no work in signal
 * handlers).  Once the listeners are open it starts the CRL publisher
 * thread (crl/publish.c), and stops it after them.  Shutdown stops accepting, lets in-flight requests finish,
 * stops both daemons and closes every worker's database handle.
 *
 * Each MHD worker thread opens its own SQLite handle on first use
 * (web_db); the handles are registered here so that shutdown closes them
 * after the workers are gone.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "web/web_int.h"

#define DEFAULT_LISTEN      "127.0.0.1:8443"
#define DEFAULT_HTTP_LISTEN "127.0.0.1:8080"
#define PEM_MAX             ((size_t)1024 * 1024)
/*
 * Per-connection memory: request line, headers and MHD's read and write
 * buffers (bodies are copied out into the request's own buffer, up to
 * body_limit).  libmicrohttpd 0.9.75 clears the whole pool for every
 * keep-alive request, so a larger pool costs every request.
 */
#define CONN_MEMORY_LIMIT   ((size_t)32 * 1024)
/* How long shutdown waits for in-flight requests. */
#define DRAIN_SECONDS       10
/*
 * MHD's own connection limits stay a margin above [server]
 * connection_limit and per_ip_connection_limit, so that a connection over
 * those is still accepted and answered 503 (guard.c), while MHD goes on
 * bounding a flood (beyond its limits a client waits in the listen
 * backlog, or is closed unanswered): half as many again, and at least 8
 * a worker thread (MHD divides its limit among them) or 4 an address.
 */
#define HARD_MARGIN_PER_THREAD 8
#define HARD_MARGIN_PER_IP     4
/* TLS 1.2 and 1.3 only, no SHA-1 signatures. */
#define TLS_PRIORITIES      "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1:%SERVER_PRECEDENCE"

/* A listen address "ADDR:PORT" or "[ADDR6]:PORT", resolved. */
struct listen_addr {
	struct sockaddr_storage ss;
	bool v6;
	uint16_t port;
	char host[256];             /* as written, brackets kept for IPv6 */
};

/* TLS material handed to MHD; lives until the daemon is stopped. */
struct tls_files {
	unsigned char *cert, *key;
	size_t cert_len, key_len;
	char *trust;
};

/* MHD's error log, into ours. */
__attribute__((format(printf, 2, 0)))
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warnx("httpd: %s", buf);
}

static int
conf_uint(const core_conf *conf, const char *name, long def, long min,
    long max, unsigned *out, lb_err *err)
{
	long v;

	if (core_conf_get_long(conf, "server", name, def, min, max, &v,
	    err) == -1)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Signer processes by default: one a core, up to 4. */
static unsigned
default_signers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 4 ? 4 : (unsigned)n;
}

static int
read_config(struct web_server *srv, lb_err *err)
{
	const core_conf *conf = ca_get0_conf(srv->ca);

	if (conf_uint(conf, "threads", 16, 1, 256, &srv->threads, err) == -1 ||
	    core_conf_get_size(conf, "server", "body_limit", 65536, 1024,
	    (size_t)64 * 1024 * 1024,
	    &srv->body_limit, err) == -1 ||
	    conf_uint(conf, "connection_timeout", 30, 1, 3600, &srv->timeout,
	    err) == -1 ||
	    conf_uint(conf, "connection_limit", 256, 1, 65536,
	    &srv->conn_limit, err) == -1 ||
	    conf_uint(conf, "per_ip_connection_limit", 64, 0, 65536,
	    &srv->per_ip_limit, err) == -1 ||
	    conf_uint(conf, "signers", default_signers(), 1, CA_SIGNER_MAX,
	    &srv->signers, err) == -1)
		return -1;
	/* MHD shares the connection limit out among the pool's threads */
	if (srv->conn_limit < srv->threads)
		return lb_err_set(err, LB_EINVAL, "lockbox.conf: [server] "
		    "connection_limit (%u) must be at least threads (%u)",
		    srv->conn_limit, srv->threads);
	return 0;
}

/*
 * Splits "ADDR:PORT" or "[ADDR6]:PORT" into host (brackets dropped) and
 * port, and keeps the text before the port in la->host.  False when
 * malformed.
 */
static bool
split_listen(const char *s, struct listen_addr *la, char *host,
    size_t hostlen, char *port, size_t portlen)
{
	const char *colon, *close, *p;
	size_t hlen;

	if (s[0] == '[') {
		if ((close = strchr(s, ']')) == NULL || close[1] != ':')
			return false;
		colon = close + 1;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= hostlen)
			return false;
		memcpy(host, s + 1, hlen);
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return false;
		hlen = (size_t)(colon - s);
		if (hlen == 0 || hlen >= hostlen || memchr(s, ':', hlen))
			return false;
		memcpy(host, s, hlen);
	}
	host[hlen] = '\0';
	if (colon[1] == '\0' || strlen(colon + 1) >= portlen ||
	    (size_t)(colon - s) >= sizeof(la->host))
		return false;
	for (p = colon + 1; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p))
			return false;
	if (atoi(colon + 1) > 65535)
		return false;
	snprintf(port, portlen, "%s", colon + 1);
	la->port = (uint16_t)atoi(port);
	memcpy(la->host, s, (size_t)(colon - s));
	la->host[colon - s] = '\0';
	return true;
}

/* Parses and resolves "ADDR:PORT" (IPv6 as "[ADDR]:PORT"). */
static int
parse_listen(const char *what, const char *s, struct listen_addr *la,
    lb_err *err)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port[8];
	int rc = -1, r;

	memset(la, 0, sizeof(*la));
	if (!split_listen(s, la, host, sizeof(host), port, sizeof(port))) {
		lb_err_set(err, LB_EINVAL, "%s '%s' must be ADDR:PORT (IPv6 "
		    "as [ADDR]:PORT), e.g. 127.0.0.1:8443", what, s);
		goto out;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		lb_err_set(err, LB_EINVAL, "%s %s: %s", what, s,
		    gai_strerror(r));
		goto out;
	}
	if (res->ai_addrlen > sizeof(la->ss)) {
		lb_err_set(err, LB_EINVAL, "%s %s: address too long", what, s);
		goto out;
	}
	memcpy(&la->ss, res->ai_addr, res->ai_addrlen);
	la->v6 = res->ai_family == AF_INET6;
	rc = 0;
out:
	if (res != NULL)
		freeaddrinfo(res);
	return rc;
}

/* A path from [server] (relative to the state directory). */
static char *
server_path(const struct web_server *srv, const char *name, const char *def)
{
	const char *v = core_conf_get(ca_get0_conf(srv->ca), "server", name,
	    def);

	if (v[0] == '/')
		return strdup(v);
	return core_path(ca_get0_dir(srv->ca), v);
}

/* Warns when the daemon's own certificate is about to expire. */
static void
check_tls_expiry(const unsigned char *pem, size_t len, const char *path)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	time_t soon = time(NULL) + 30L * 86400;

	if (x == NULL)
		log_warnx("%s: no PEM certificate inside", path);
	else if (X509_cmp_time(X509_get0_notAfter(x), &soon) < 0)
		log_warnx("%s: the TLS certificate expires within 30 days "
		    "(or has expired): clients will refuse the daemon", path);
	X509_free(x);
	BIO_free(bio);
}

/* The CA chain as PEM: whom client certificates must chain to. */
static char *
chain_pem(const ca_ctx *ca, lb_err *err)
{
	char *out;
	size_t len;

	if ((out = ca_certs_pem(NULL, 0, ca_get0_chain(ca), &len)) == NULL)
		lb_err_set(err, LB_EINTERNAL, "cannot encode the CA chain");
	return out;
}

static int
tls_load(struct web_server *srv, struct tls_files *tf, lb_err *err)
{
	char *cpath = NULL, *kpath = NULL;
	int rc = -1;

	if ((cpath = server_path(srv, "tls_cert", CA_TLS_CERT_FILE)) == NULL ||
	    (kpath = server_path(srv, "tls_key", CA_TLS_KEY_FILE)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (core_file_read(cpath, PEM_MAX, &tf->cert, &tf->cert_len,
	    err) == -1 ||
	    core_file_read(kpath, PEM_MAX, &tf->key, &tf->key_len, err) == -1)
		goto out;
	check_tls_expiry(tf->cert, tf->cert_len, cpath);
	if ((tf->trust = chain_pem(srv->ca, err)) == NULL)
		goto out;
	rc = 0;
out:
	free(cpath);
	free(kpath);
	return rc;
}

static void
tls_free(struct tls_files *tf)
{
	if (tf->key != NULL)
		OPENSSL_cleanse(tf->key, tf->key_len);
	free(tf->key);
	free(tf->cert);
	free(tf->trust);
	memset(tf, 0, sizeof(*tf));
}

/* MHD's connection limit for a listener: see HARD_MARGIN_PER_THREAD. */
static unsigned
hard_limit(const struct web_server *srv)
{
	unsigned margin = srv->conn_limit / 2;

	if (margin < HARD_MARGIN_PER_THREAD * srv->threads)
		margin = HARD_MARGIN_PER_THREAD * srv->threads;
	return srv->conn_limit + margin;
}

/* MHD's per-address limit (0: none). */
static unsigned
hard_per_ip_limit(const struct web_server *srv)
{
	unsigned margin = srv->per_ip_limit / 2;

	if (srv->per_ip_limit == 0)
		return 0;
	if (margin < HARD_MARGIN_PER_IP)
		margin = HARD_MARGIN_PER_IP;
	return srv->per_ip_limit + margin;
}

/*
 * Opens the socket of a listener (ADDR:PORT from addr, what names its
 * setting) and binds it, so that it can be opened as root (ports below
 * 1024) before the drop to [server] user.  start_listener makes it listen
 * once the daemon is ready to serve: the port answers only then.
 */
static int
open_listener(struct web_listener *lst, const char *what, const char *addr,
    bool tls, lb_err *err)
{
	struct listen_addr la;
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		struct sockaddr_storage ss;
	} got;
	socklen_t len = sizeof(got);
	int fd, on = 1;
	unsigned port;

	memset(&got, 0, sizeof(got));
	if (parse_listen(what, addr, &la, err) == -1)
		return -1;
	if ((fd = socket(la.v6 ? AF_INET6 : AF_INET, SOCK_STREAM |
	    SOCK_CLOEXEC, 0)) == -1)
		return lb_err_set(err, LB_EINTERNAL, "socket: %s",
		    strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == -1 ||
	    (la.v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
	    sizeof(on)) == -1) ||
	    bind(fd, (struct sockaddr *)&la.ss, la.v6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) == -1 ||
	    getsockname(fd, &got.sa, &len) == -1) {
		lb_err_set(err, LB_EINVAL, "cannot listen on %s (%s): %s%s",
		    addr, what, strerror(errno), errno == EADDRINUSE ?
		    ": is another daemon running?" : errno == EACCES ?
		    ": ports below 1024 need root" : "");
		close(fd);
		return -1;
	}
	port = ntohs(got.sa.sa_family == AF_INET6 ? got.in6.sin6_port :
	    got.in.sin_port);
	lst->fd = fd;
	snprintf(lst->url, sizeof(lst->url), "%s://%s:%u", tls ? "https" :
	    "http", la.host, port);
	return 0;
}

/* Starts MHD on a listener's socket; with tf, HTTPS asking for client
 * certificates. */
static int
start_listener(struct web_server *srv, struct web_listener *lst,
    const struct tls_files *tf, lb_err *err)
{
	struct MHD_OptionItem extra[8];
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
	    MHD_USE_ITC | MHD_USE_AUTO;
	int n = 0;

	/* MHD: a pool of one is no pool, and it warns when given one */
	if (srv->threads > 1)
		extra[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)srv->threads, NULL };
	if (tf != NULL) {
		flags |= MHD_USE_TLS;
		extra[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_CERT, 0, tf->cert };
		extra[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_KEY, 0, tf->key };
		/* a trust list makes GnuTLS request (not require) a client
		 * certificate; auth.c verifies it with OpenSSL */
		extra[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_MEM_TRUST, 0, tf->trust };
		extra[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES };
	}
	extra[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	lst->srv = srv;
	lst->kind = tf != NULL ? WEB_HTTPS : WEB_HTTP;
	/* our caps, answered 503; freed by guards_stop */
	if ((lst->guard = web_guard_new(tf != NULL ? "https" : "http",
	    srv->conn_limit, srv->per_ip_limit, hard_limit(srv),
	    srv->timeout)) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (listen(lst->fd, SOMAXCONN) == -1)
		return lb_err_set(err, LB_EINTERNAL, "cannot listen on %s: %s",
		    lst->url, strerror(errno));
	lst->daemon = MHD_start_daemon(flags, 0, NULL, NULL, web_handle,
	    lst,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, lst,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)lst->fd,
	    MHD_OPTION_CONNECTION_TIMEOUT, srv->timeout,
	    MHD_OPTION_CONNECTION_LIMIT, hard_limit(srv),
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, hard_per_ip_limit(srv),
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONN_MEMORY_LIMIT,
	    MHD_OPTION_NOTIFY_COMPLETED, web_guard_request_done, lst,
	    MHD_OPTION_NOTIFY_CONNECTION, web_conn_notify, lst,
	    MHD_OPTION_ARRAY, extra,
	    MHD_OPTION_END);
	if (lst->daemon == NULL)
		return lb_err_set(err, LB_EINVAL, "cannot serve %s: is the TLS "
		    "certificate unreadable? See the log above", lst->url);
	/* MHD closes it from now on */
	lst->fd = -1;
	return 0;
}

/*
 * Starts the watchdog that cuts off connections slow to send their
 * request headers; after the listeners.
 */
static int
guards_start(struct web_server *srv, lb_err *err)
{
	srv->watchdog = web_watchdog_start(srv->https.guard, srv->http.guard,
	    err);
	return srv->watchdog != NULL ? 0 : -1;
}

/*
 * Stops the watchdog and frees the listeners' connection counts; after
 * the listeners have stopped, whose "closed" notices use the counts.  (The
 * watchdog may run until then: each connection leaves its registry
 * before MHD closes its socket, and it goes on cutting off slow clients
 * while requests drain.)
 */
static void
guards_stop(struct web_server *srv)
{
	web_watchdog_stop(srv->watchdog);
	srv->watchdog = NULL;
	web_guard_free(srv->https.guard);
	srv->https.guard = NULL;
	web_guard_free(srv->http.guard);
	srv->http.guard = NULL;
}

sqlite3 *
web_db(struct web_server *srv, lb_err *err)
{
	struct web_dbslot *slot = pthread_getspecific(srv->db_key);

	if (slot != NULL)
		return slot->db;
	if ((slot = calloc(1, sizeof(*slot))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	if ((slot->db = ca_db_open(srv->ca, err)) == NULL) {
		free(slot);
		return NULL;
	}
	pthread_mutex_lock(&srv->db_lock);
	slot->next = srv->dbs;
	srv->dbs = slot;
	pthread_mutex_unlock(&srv->db_lock);
	pthread_setspecific(srv->db_key, slot);
	return slot->db;
}

/* Closes every worker's database handle; the workers have stopped. */
static void
close_dbs(struct web_server *srv)
{
	struct web_dbslot *slot, *next;

	for (slot = srv->dbs; slot != NULL; slot = next) {
		next = slot->next;
		core_db_close(slot->db);
		free(slot);
	}
	srv->dbs = NULL;
}

/* Fails early, with the reason, when the database cannot be opened. */
static int
check_db(const struct web_server *srv, lb_err *err)
{
	sqlite3 *db = ca_db_open(srv->ca, err);

	if (db == NULL)
		return -1;
	core_db_close(db);
	return 0;
}

/* The OCSP responder: loads, or issues, its delegated certificate. */
static int
start_ocsp(struct web_server *srv, lb_err *err)
{
	sqlite3 *db = ca_db_open(srv->ca, err);

	if (db == NULL)
		return -1;
	srv->ocsp = crl_ocsp_new(srv->ca, db, time(NULL), err);
	core_db_close(db);
	return srv->ocsp != NULL ? 0 : -1;
}

/*
 * Stops accepting, waits up to DRAIN_SECONDS for in-flight requests (a
 * second signal cuts the wait short), then stops both daemons.
 */
static void
shutdown_listeners(struct web_server *srv, const sigset_t *sigs)
{
	struct web_listener *lst[2] = { &srv->https, &srv->http };
	MHD_socket fds[2] = { MHD_INVALID_SOCKET, MHD_INVALID_SOCKET };
	struct timespec tick = { 0, 50L * 1000 * 1000 };
	int i, waited;

	atomic_store(&srv->stopping, true);
	for (i = 0; i < 2; i++)
		if (lst[i]->daemon != NULL)
			fds[i] = MHD_quiesce_daemon(lst[i]->daemon);
	for (waited = 0; atomic_load(&srv->inflight) > 0 &&
	    waited < DRAIN_SECONDS * 20; waited++)
		if (sigtimedwait(sigs, NULL, &tick) > 0) {
			log_warnx("second signal: not waiting for %d "
			    "request(s) in flight", atomic_load(&srv->inflight));
			break;
		}
	if (atomic_load(&srv->inflight) > 0)
		log_warnx("stopping with %d request(s) still in flight",
		    atomic_load(&srv->inflight));
	for (i = 0; i < 2; i++) {
		if (lst[i]->daemon != NULL)
			MHD_stop_daemon(lst[i]->daemon);
		lst[i]->daemon = NULL;
		/* MHD leaves the quiesced socket to us, after the stop */
		if (fds[i] != MHD_INVALID_SOCKET)
			close(fds[i]);
	}
}

int
web_serve(const web_opts *o, lb_err *err)
{
	struct web_server srv;
	struct tls_files tf;
	struct web_user user;
	const core_conf *conf;
	const char *listen, *http_listen;
	sigset_t sigs, old;
	struct timespec zero = { 0, 0 };
	bool key_ok = false, lock_ok = false, masked = false;
	int rc = -1, sig = 0;

	memset(&srv, 0, sizeof(srv));
	memset(&tf, 0, sizeof(tf));
	memset(&user, 0, sizeof(user));
	srv.https.fd = srv.http.fd = -1;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	atomic_init(&srv.inflight, 0);
	atomic_init(&srv.stopping, false);
	atomic_init(&srv.ocsp_checked, (long long)time(NULL));
	/*
	 * With the key, which goes at once to the signer process, forked
	 * before any thread, database or socket exists; we keep no copy
	 * (and, as every lockbox process, write no core file: main).
	 */
	if ((srv.ca = ca_open(o->dir, 0, err)) == NULL ||
	    read_config(&srv, err) == -1 ||
	    web_user_prepare(srv.ca, &user, err) == -1 ||
	    ca_signer_start(srv.ca, user.drop ? user.name : NULL,
	    (int)srv.signers, err) == -1)
		goto out;
	conf = ca_get0_conf(srv.ca);
	listen = o->listen ? o->listen :
	    core_conf_get(conf, "server", "listen", DEFAULT_LISTEN);
	http_listen = o->http_listen ? o->http_listen :
	    core_conf_get(conf, "server", "http_listen", DEFAULT_HTTP_LISTEN);
	/*
	 * What may need root: the TLS key, and the listening sockets (ports
	 * below 1024).  Then, from here on, [server] user: before any
	 * database is opened, thread started or request read.
	 */
	if (tls_load(&srv, &tf, err) == -1 ||
	    open_listener(&srv.https, "listen", listen, true, err) == -1 ||
	    open_listener(&srv.http, "http_listen", http_listen, false,
	    err) == -1 ||
	    web_user_drop(&user, err) == -1)
		goto out;
	if (check_db(&srv, err) == -1 || start_ocsp(&srv, err) == -1)
		goto out;
	key_ok = pthread_key_create(&srv.db_key, NULL) == 0;
	lock_ok = key_ok && pthread_mutex_init(&srv.db_lock, NULL) == 0;
	if (!lock_ok) {
		lb_err_set(err, LB_EINTERNAL, "cannot set up worker state");
		goto out;
	}
	/* block the signals before MHD's threads inherit our mask, so that
	 * only sigwait below ever sees them */
	if (pthread_sigmask(SIG_BLOCK, &sigs, &old) != 0) {
		lb_err_set(err, LB_EINTERNAL, "cannot block signals");
		goto out;
	}
	masked = true;
	signal(SIGPIPE, SIG_IGN);

	if ((srv.crl_file = web_pubfile_new(ca_get0_dir(srv.ca),
	    CA_PUB_DIR "/" CRL_FILE, CRL_FILE_MAX, true)) == NULL ||
	    (srv.delta_file = web_pubfile_new(ca_get0_dir(srv.ca),
	    CA_PUB_DIR "/" CRL_DELTA_FILE, CRL_FILE_MAX, true)) == NULL ||
	    (srv.ca_crt_file = web_pubfile_new(ca_get0_dir(srv.ca),
	    CA_PUB_DIR "/ca.crt", PEM_MAX, false)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	/* enrollment: its threads (group commit, key pool, publication
	 * queue) start with the signals blocked, like MHD's */
	if ((srv.enroll = enroll_new(srv.ca, true, err)) == NULL)
		goto out;
	if (start_listener(&srv, &srv.https, &tf, err) == -1 ||
	    start_listener(&srv, &srv.http, NULL, err) == -1)
		goto out;
	if (guards_start(&srv, err) == -1)
		goto out;
	/* CRLs on schedule and after revocations, signed via ca_sign_crl_der
	 * by the signer process */
	if ((srv.crl = crl_publisher_start(srv.ca, err)) == NULL)
		goto out;
	fprintf(stderr, "lockbox: serving %s and %s\n", srv.https.url,
	    srv.http.url);
	fflush(stderr);
	log_info("body_limit %zu, threads %u per listener, connection_limit "
	    "%u (%u per address), timeout %u s, %u signer process(es)",
	    srv.body_limit, srv.threads, srv.conn_limit, srv.per_ip_limit,
	    srv.timeout, srv.signers);

	while (sigwait(&sigs, &sig) != 0)
		;
	log_info("%s: shutting down", strsignal(sig));
	rc = 0;
out:
	if (srv.https.daemon != NULL || srv.http.daemon != NULL)
		shutdown_listeners(&srv, &sigs);
	guards_stop(&srv);
	/* opened, but never handed to MHD */
	if (srv.https.fd != -1)
		close(srv.https.fd);
	if (srv.http.fd != -1)
		close(srv.http.fd);
	if (masked) {
		/* a signal that came during shutdown must not kill us once
		 * unblocked: we are already stopping */
		while (sigtimedwait(&sigs, NULL, &zero) > 0)
			;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	/* the listeners are gone: nothing wakes the publisher any more */
	crl_publisher_stop(srv.crl);
	enroll_free(srv.enroll);
	close_dbs(&srv);
	if (key_ok)
		pthread_key_delete(srv.db_key);
	if (lock_ok)
		pthread_mutex_destroy(&srv.db_lock);
	tls_free(&tf);
	web_pubfile_free(srv.crl_file);
	web_pubfile_free(srv.delta_file);
	web_pubfile_free(srv.ca_crt_file);
	crl_ocsp_free(srv.ocsp);
	ca_free(srv.ca);
	if (rc == 0)
		log_info("stopped");
	return rc;
}
