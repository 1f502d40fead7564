/*
 * test_web_guard.c - unit tests of the connection caps and the header
 * deadline (web/guard.c), against a real libmicrohttpd daemon on
 * 127.0.0.1 whose connection notices and access handler are those of
 * guard.c alone (the handler answers 503 to a connection opened over a
 * cap, 200 otherwise):
 * - the global cap: the connections beyond it are refused, those under it
 *   served, and a slot freed by a close is free again;
 * - the per-address cap over a hundred client addresses (127.0.1.x) in a
 *   small table: refusals per address, and the counts stay right while
 *   addresses leave the table and others stay (its deletions);
 * - the watchdog: a partial header is cut off after the timeout even while
 *   bytes keep coming, and so is a keep-alive connection idle after its
 *   request, while a prompt request is served.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "web/web_int.h"

#define REQ "GET / HTTP/1.1\r\nHost: t\r\n\r\n"
#define ADDRS 100

struct fixture {
	struct MHD_Daemon *d;
	struct web_guard *g;
	struct web_watchdog *w;
	uint16_t port;
};

static void
notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct web_guard *g = cls;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
		*socket_context = web_guard_open(g, conn);
	else {
		web_guard_close(*socket_context);
		*socket_context = NULL;
	}
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	static const char ok[] = "ok\n", busy[] = "busy\n";
	static int served, refused;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	bool over;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	/* as router.c: decided on the first call, answered on the next */
	if (*con_cls == NULL) {
		*con_cls = web_guard_headers_in(conn) ? &refused : &served;
		return MHD_YES;
	}
	over = *con_cls == &refused;
	resp = MHD_create_response_from_buffer(over ? sizeof(busy) - 1 :
	    sizeof(ok) - 1, (void *)(over ? busy : ok), MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	if (over)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
		    "close");
	ret = MHD_queue_response(conn, over ? 503 : 200, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* MHD_OPTION_NOTIFY_COMPLETED: guard.c's, with no request state. */
static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	*con_cls = NULL;
	web_guard_request_done(cls, conn, con_cls, toe);
}

/* A daemon of two worker threads guarded by g. */
static int
start(struct fixture *f, unsigned limit, unsigned per_ip, unsigned hard,
    unsigned timeout)
{
	const union MHD_DaemonInfo *info;

	memset(f, 0, sizeof(*f));
	if ((f->g = web_guard_new("http", limit, per_ip, hard, timeout)) ==
	    NULL)
		return -1;
	f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_ITC | MHD_USE_AUTO, 0, NULL, NULL, handle, NULL,
	    MHD_OPTION_THREAD_POOL_SIZE, 2u,
	    MHD_OPTION_CONNECTION_LIMIT, 1000u,
	    MHD_OPTION_CONNECTION_TIMEOUT, 30u,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
	    MHD_OPTION_NOTIFY_CONNECTION, notify, f->g,
	    MHD_OPTION_END);
	if (f->d == NULL)
		return -1;
	info = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
	f->port = info != NULL ? info->port : 0;
	return f->port != 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	web_watchdog_stop(f->w);
	if (f->d != NULL)
		MHD_stop_daemon(f->d);
	web_guard_free(f->g);
	free(f);
	return 0;
}

static int
setup(void **state)
{
	*state = calloc(1, sizeof(struct fixture));
	return *state != NULL ? 0 : -1;
}

/* A connection from 127.0.1.src (0: any) to the daemon, 5 s timeouts. */
static int
dial(const struct fixture *f, int src)
{
	struct sockaddr_in sa;
	struct timeval tv = { 5, 0 };
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	if (src != 0) {
		sa.sin_addr.s_addr = htonl(0x7f000100u | (unsigned)src);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
			goto fail;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(f->port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/* Sends a request on fd and returns the answer's status (-1: none). */
static int
ask(int fd)
{
	char buf[512];
	ssize_t n;

	if (send(fd, REQ, strlen(REQ), MSG_NOSIGNAL) != (ssize_t)strlen(REQ))
		return -1;
	if ((n = recv(fd, buf, sizeof(buf) - 1, 0)) < 12)
		return -1;
	buf[n] = '\0';
	return strncmp(buf, "HTTP/1.1 ", 9) == 0 ? atoi(buf + 9) : -1;
}

/* A new connection from src, asked once; closed when not 200. */
static int
open_ask(const struct fixture *f, int src, int *status)
{
	int fd = dial(f, src);

	*status = fd != -1 ? ask(fd) : -1;
	if (*status != 200 && fd != -1) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* A new connection from src is served (200) within 2 s: the closes
 * before it reach the daemon asynchronously. */
static int
open_eventually(const struct fixture *f, int src)
{
	struct timespec tick = { 0, 20L * 1000 * 1000 };
	int fd, status, i;

	for (i = 0; i < 100; i++) {
		if ((fd = open_ask(f, src, &status)) != -1)
			return fd;
		nanosleep(&tick, NULL);
	}
	return -1;
}

/* Seconds until the daemon ends fd's connection (EOF or reset). */
static double
seconds_to_eof(int fd, const char *dribble)
{
	struct timespec t0, t1;
	struct timeval tv = { 1, 0 };
	char buf[256];
	ssize_t n;
	size_t k = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 10)
			return 99;
		/* a byte a second, if asked to: activity, but no header */
		if (dribble != NULL && dribble[k] != '\0' &&
		    send(fd, dribble + k++, 1, MSG_NOSIGNAL) != 1)
			break;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n == -1 && errno != EAGAIN &&
		    errno != EWOULDBLOCK))
			break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

static void
test_global_cap(void **state)
{
	struct fixture *f = *state;
	int fds[4], fd, status, i;

	assert_int_equal(start(f, 4, 0, 16, 30), 0);
	for (i = 0; i < 4; i++) {
		fds[i] = open_ask(f, 0, &status);
		assert_int_equal(status, 200);
	}
	/* beyond the cap: refused, and the refusal itself is counted only
	 * while it is open */
	for (i = 0; i < 3; i++) {
		assert_int_equal(open_ask(f, 0, &status), -1);
		assert_int_equal(status, 503);
	}
	/* those under the cap go on being served */
	for (i = 0; i < 4; i++)
		assert_int_equal(ask(fds[i]), 200);
	close(fds[0]);
	assert_int_not_equal(fd = open_eventually(f, 0), -1);
	assert_int_equal(open_ask(f, 0, &status), -1);
	assert_int_equal(status, 503);
	close(fd);
	for (i = 1; i < 4; i++)
		close(fds[i]);
}

static void
test_per_ip_cap(void **state)
{
	struct fixture *f = *state;
	int fds[ADDRS + 1][2], status, a, k;

	/* 100 addresses in a table of 256 slots: collisions, probes */
	assert_int_equal(start(f, 1000, 2, 128, 30), 0);
	for (a = 1; a <= ADDRS; a++)
		for (k = 0; k < 2; k++) {
			fds[a][k] = open_ask(f, a, &status);
			assert_int_equal(status, 200);
		}
	for (a = 1; a <= ADDRS; a++) {
		assert_int_equal(open_ask(f, a, &status), -1);
		assert_int_equal(status, 503);
	}
	/* odd addresses leave the table (deletions amid the probe chains),
	 * even ones keep both connections */
	for (a = 1; a <= ADDRS; a += 2)
		for (k = 0; k < 2; k++)
			close(fds[a][k]);
	/* (true whenever the closes arrive; after them, it checks that the
	 * even addresses are still found past the freed slots) */
	usleep(300 * 1000);
	for (a = 2; a <= ADDRS; a += 2) {
		assert_int_equal(open_ask(f, a, &status), -1);
		assert_int_equal(status, 503);
	}
	for (a = 1; a <= ADDRS; a += 2)
		for (k = 0; k < 2; k++)
			assert_int_not_equal(fds[a][k] = open_eventually(f, a),
			    -1);
	for (a = 1; a <= ADDRS; a++) {
		assert_int_equal(open_ask(f, a, &status), -1);
		assert_int_equal(status, 503);
		for (k = 0; k < 2; k++)
			assert_int_equal(ask(fds[a][k]), 200);
	}
	for (a = 1; a <= ADDRS; a++)
		for (k = 0; k < 2; k++)
			close(fds[a][k]);
}

static void
test_watchdog(void **state)
{
	struct fixture *f = *state;
	int slow, idle, quick, status;
	double secs;

	assert_int_equal(start(f, 100, 0, 200, 2), 0);
	assert_non_null(f->w = web_watchdog_start(f->g, NULL, NULL));
	assert_int_not_equal(slow = dial(f, 0), -1);
	idle = open_ask(f, 0, &status);
	assert_int_equal(status, 200);
	/* a header a byte a second: cut after 2 s, within a tick more */
	secs = seconds_to_eof(slow, "GET / HTTP/1.1\r\nHost: aaaaaaaaaaaa");
	assert_true(secs >= 1.5 && secs < 4.5);
	/* idle after its request: waited since it completed */
	secs = seconds_to_eof(idle, NULL);
	assert_true(secs < 4.5);
	/* a prompt request is served, keep-alive, more than once */
	quick = open_ask(f, 0, &status);
	assert_int_equal(status, 200);
	sleep(1);
	assert_int_equal(ask(quick), 200);
	close(quick);
	close(slow);
	close(idle);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_global_cap, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_per_ip_cap, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_watchdog, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
