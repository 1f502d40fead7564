/*
 * util.c - small helpers shared by every module: e-mail syntax, random
 * passwords, process hardening and timed waits (the encodings are in
 * codec.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/core.h"

bool
core_email_valid(const char *addr)
{
	const char *at, *p;
	size_t len;

	if (addr == NULL || (len = strlen(addr)) == 0 || len > 254)
		return false;
	if ((at = strchr(addr, '@')) == NULL || strchr(at + 1, '@') != NULL)
		return false;
	if (at == addr || at - addr > 64 || at[1] == '\0')
		return false;
	for (p = addr; p < at; p++) {
		unsigned char c = (unsigned char)*p;

		/* RFC 5322 dot-atom text, no quoting */
		if (c <= 0x20 || c >= 0x7f || strchr("\"(),:;<>[\\]", c))
			return false;
	}
	if (addr[0] == '.' || at[-1] == '.' || strstr(addr, "..") != NULL)
		return false;
	for (p = at + 1; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	if (at[1] == '.' || at[1] == '-' || p[-1] == '.' || p[-1] == '-')
		return false;
	return true;
}

int
core_random_password(char *out, size_t len)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char r[64];
	size_t i = 0;

	while (i < len) {
		size_t n = len - i < sizeof(r) ? len - i : sizeof(r), j;

		if (RAND_bytes(r, (int)n) != 1)
			return log_openssl("RAND_bytes");
		for (j = 0; j < n; j++)
			out[i++] = alphabet[r[j] & 63];
	}
	out[len] = '\0';
	OPENSSL_cleanse(r, sizeof(r));
	return 0;
}

void
core_process_harden(void)
{
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	/* no core file may ever hold a key or a share */
	(void)core_no_dumps(NULL);
}

int
core_cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int ok;

	if (pthread_condattr_init(&attr) != 0)
		return -1;
	ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
	    pthread_cond_init(cond, &attr) == 0;
	pthread_condattr_destroy(&attr);
	return ok ? 0 : -1;
}

void
core_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mutex,
    const bool *flag, const bool *stop, time_t until)
{
	struct timespec ts;
	time_t now = time(NULL);

	if (until <= now)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += until - now;
	while (!*flag && !*stop &&
	    pthread_cond_timedwait(cond, mutex, &ts) != ETIMEDOUT)
		;
}

void
core_http_reply_clear(core_http_reply *r)
{
	if (r->body != NULL)
		OPENSSL_clear_free(r->body, r->cap);
	memset(r, 0, sizeof(*r));
}
