/*
 * guard.c - connection caps that answer, and a deadline for request
 * headers.  libmicrohttpd's own limits fail silently: beyond
 * connection_limit its workers stop accepting (the client waits in the
 * listen backlog), beyond per_ip_connection_limit it closes the
 * connection unanswered; and its connection_timeout only measures
 * inactivity, so a header dribbled a byte a second holds a connection for
 * hours.
 *
 * So each listener keeps its own counts of open connections, in total and
 * per client address (a fixed-size table, sized at start-up from MHD's
 * hard limit, which stays a margin above ours: server.c), kept by the
 * connection notices (auth.c's web_conn_notify calls web_guard_open and
 * web_guard_close).  A connection that opens beyond our caps is served
 * one answer, 503 with Retry-After (router.c), and closed.
 *
 * Every open connection is registered with the time its current request
 * started waiting for its headers: when the connection opened, or when
 * its previous request completed.  The watchdog thread, once a second,
 * shuts down the sockets of those still waiting after connection_timeout
 * seconds; MHD then sees the end of the stream and closes the connection.
 * A connection is unregistered, under the same lock the watchdog holds,
 * by MHD's "closed" notice, which comes before MHD closes the socket: the
 * watchdog never touches a descriptor that was reused.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/rand.h>

#include "web/web_int.h"

/* A client address (IPv4 as v4-mapped IPv6) and its open connections. */
struct ip_slot {
	unsigned char addr[16];
	unsigned count;             /* 0: a free slot */
};

struct web_guard {
	pthread_mutex_t lock;
	const char *name;           /* "https" or "http", for the log */
	unsigned limit, per_ip_limit, timeout;
	unsigned open;              /* connections open now */
	/* per-address counts: open addressing, linear probing; at most
	 * hard-limit addresses in twice as many slots, so never full */
	struct ip_slot *slots;
	size_t nslots;              /* a power of two, or 0 */
	uint64_t seed;
	struct web_conn *conns;     /* the registry the watchdog walks */
	/* refusals since the last warning, for at most one a second */
	atomic_uint refused;
	atomic_llong refused_logged;
};

struct web_watchdog {
	core_worker w;
	struct web_guard *guards[2];
};

/* Seconds on the monotonic clock, in milliseconds. */
static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The client address as the table's key; false when not IP. */
static bool
addr_key(struct MHD_Connection *conn, unsigned char key[16])
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return false;
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)(const void *)sa)
		    ->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)
		    ->sin6_addr, 16);
		return true;
	}
	return false;
}

/*
 * FNV-1a from a secret start (clients choose their addresses), then
 * MurmurHash3's finaliser, so that the low bits, the slot, depend on every
 * byte.  Even a collision costs only probes in a table that is never more
 * than half full.
 */
static size_t
slot_of(const struct web_guard *g, const unsigned char key[16])
{
	uint64_t h = g->seed ^ 0xcbf29ce484222325ULL;
	int i;

	for (i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (size_t)h & (g->nslots - 1);
}

/*
 * Counts one more connection from key; returns its count, or 0 when the
 * table is full (it cannot be: see nslots).  Lock held.
 */
static unsigned
ip_add(struct web_guard *g, const unsigned char key[16])
{
	size_t i = slot_of(g, key), n;

	for (n = 0; n < g->nslots; n++, i = (i + 1) & (g->nslots - 1)) {
		if (g->slots[i].count == 0) {
			memcpy(g->slots[i].addr, key, 16);
			return g->slots[i].count = 1;
		}
		if (memcmp(g->slots[i].addr, key, 16) == 0)
			return ++g->slots[i].count;
	}
	return 0;
}

/* Counts one connection from key less; frees its slot at 0.  Lock held. */
static void
ip_del(struct web_guard *g, const unsigned char key[16])
{
	size_t mask = g->nslots - 1, i = slot_of(g, key), j, home, n;

	for (n = 0; n < g->nslots; n++, i = (i + 1) & mask) {
		if (g->slots[i].count == 0)
			return;
		if (memcmp(g->slots[i].addr, key, 16) == 0)
			break;
	}
	if (n == g->nslots || --g->slots[i].count > 0)
		return;
	/* backward-shift deletion: no tombstones, probes stay short */
	for (j = (i + 1) & mask; g->slots[j].count != 0; j = (j + 1) & mask) {
		home = slot_of(g, g->slots[j].addr);
		/* move j into the hole at i unless its home lies in (i, j] */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			g->slots[i] = g->slots[j];
			g->slots[j].count = 0;
			i = j;
		}
	}
	g->slots[i].count = 0;
}

struct web_guard *
web_guard_new(const char *name, unsigned limit, unsigned per_ip_limit,
    unsigned hard_limit, unsigned timeout)
{
	struct web_guard *g;
	size_t n = 16;

	if ((g = calloc(1, sizeof(*g))) == NULL)
		return NULL;
	g->name = name;
	g->limit = limit;
	g->per_ip_limit = per_ip_limit;
	g->timeout = timeout;
	atomic_init(&g->refused, 0);
	atomic_init(&g->refused_logged, 0);
	if (per_ip_limit > 0) {
		while (n < (size_t)hard_limit * 2)
			n *= 2;
		if ((g->slots = calloc(n, sizeof(*g->slots))) == NULL ||
		    RAND_bytes((unsigned char *)&g->seed,
		    sizeof(g->seed)) != 1)
			goto fail;
		g->nslots = n;
	}
	if (pthread_mutex_init(&g->lock, NULL) == 0)
		return g;
fail:
	free(g->slots);
	free(g);
	return NULL;
}

void
web_guard_free(struct web_guard *g)
{
	if (g == NULL)
		return;
	pthread_mutex_destroy(&g->lock);
	free(g->slots);
	free(g);
}

/* At most one warning a second about refusals, with how many there were. */
static void
note_refusal(struct web_guard *g)
{
	long long now = now_ms() / 1000, last;
	unsigned n;

	atomic_fetch_add(&g->refused, 1);
	last = atomic_load(&g->refused_logged);
	if (now == last || !atomic_compare_exchange_strong(
	    &g->refused_logged, &last, now))
		return;
	n = atomic_exchange(&g->refused, 0);
	log_warnx("%s: %u connection(s) over the cap refused with 503 since "
	    "the last such message (connection_limit %u, "
	    "per_ip_connection_limit %u)", g->name, n, g->limit,
	    g->per_ip_limit);
}

struct web_conn *
web_guard_open(struct web_guard *g, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;
	struct web_conn *c;
	bool over_ip = false;
	unsigned n;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->guard = g;
	c->fd = MHD_INVALID_SOCKET;
	if ((ci = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD)) != NULL)
		c->fd = ci->connect_fd;
	atomic_init(&c->waiting_since, now_ms());
	c->has_addr = g->nslots > 0 && addr_key(conn, c->addr);

	pthread_mutex_lock(&g->lock);
	c->over_cap = ++g->open > g->limit;
	if (c->has_addr) {
		if ((n = ip_add(g, c->addr)) == 0) {
			c->has_addr = false;
			over_ip = true;
		} else
			over_ip = n > g->per_ip_limit;
	}
	c->next = g->conns;
	if (g->conns != NULL)
		g->conns->prev = c;
	g->conns = c;
	pthread_mutex_unlock(&g->lock);

	if (over_ip)
		c->over_cap = true;
	if (c->over_cap)
		note_refusal(g);
	return c;
}

void
web_guard_close(struct web_conn *c)
{
	struct web_guard *g;

	if (c == NULL)
		return;
	g = c->guard;
	pthread_mutex_lock(&g->lock);
	g->open--;
	if (c->has_addr)
		ip_del(g, c->addr);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		g->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&g->lock);
	free(c);
}

/* The registered state of conn, or NULL. */
static struct web_conn *
conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

bool
web_guard_headers_in(struct MHD_Connection *conn)
{
	struct web_conn *c = conn_of(conn);

	if (c == NULL)
		return false;
	atomic_store(&c->waiting_since, 0);
	return c->over_cap;
}

void
web_guard_request_done(void *cls, struct MHD_Connection *conn,
    void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct web_conn *c = conn_of(conn);

	/* the next request on this connection starts waiting now */
	if (c != NULL)
		atomic_store(&c->waiting_since, now_ms());
	web_request_done(cls, conn, con_cls, toe);
}

/* Shuts down the connections of g waiting too long for headers. */
static void
sweep(struct web_guard *g, long long now)
{
	struct web_conn *c;
	long long since, max = (long long)g->timeout * 1000;
	unsigned cut = 0;

	pthread_mutex_lock(&g->lock);
	for (c = g->conns; c != NULL; c = c->next) {
		since = atomic_load(&c->waiting_since);
		if (since == 0 || c->cut || now - since < max ||
		    c->fd == MHD_INVALID_SOCKET)
			continue;
		/* registered, so MHD has not closed the socket yet */
		if (shutdown(c->fd, SHUT_RDWR) == 0 || errno == ENOTCONN)
			cut++;
		c->cut = true;
	}
	pthread_mutex_unlock(&g->lock);
	/* one line a tick at most */
	if (cut > 0)
		log_warnx("%s: cut off %u connection(s) without a complete "
		    "request header after connection_timeout (%u s)", g->name,
		    cut, g->timeout);
}

static void *
watchdog_main(void *arg)
{
	struct web_watchdog *w = arg;
	int i;

	/* a tick a second; nothing wakes it early but the stop */
	while (core_worker_wait(&w->w, time(NULL) + 1) != -1)
		for (i = 0; i < 2; i++)
			if (w->guards[i] != NULL)
				sweep(w->guards[i], now_ms());
	return NULL;
}

struct web_watchdog *
web_watchdog_start(struct web_guard *a, struct web_guard *b, lb_err *err)
{
	struct web_watchdog *w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	w->guards[0] = a;
	w->guards[1] = b;
	if (core_worker_start(&w->w, watchdog_main, w, "connection watchdog",
	    err) == -1) {
		free(w);
		return NULL;
	}
	return w;
}

void
web_watchdog_stop(struct web_watchdog *w)
{
	if (w == NULL)
		return;
	core_worker_stop(&w->w);
	free(w);
}
