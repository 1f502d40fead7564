/*
 * util.c - small helpers shared by every module: e-mail syntax, hex,
 * random passwords, time formatting and process hardening.
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

char *
core_hex(const unsigned char *buf, size_t len)
{
	static const char digits[] = "0123456789ABCDEF";
	char *s;
	size_t i;

	if ((s = malloc(len * 2 + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		s[2 * i] = digits[buf[i] >> 4];
		s[2 * i + 1] = digits[buf[i] & 0xf];
	}
	s[2 * len] = '\0';
	return s;
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

int
core_b64_decode(const char *s, size_t slen, size_t max, unsigned char **out,
    size_t *len)
{
	EVP_ENCODE_CTX *c = NULL;
	unsigned char *buf = NULL;
	int n = 0, f = 0, rc = -1;

	*out = NULL;
	*len = 0;
	if (s == NULL || slen == 0 || slen > max || slen % 4 != 0 ||
	    slen > (size_t)INT32_MAX / 2 ||
	    (buf = malloc(slen / 4 * 3 + 4)) == NULL ||
	    (c = EVP_ENCODE_CTX_new()) == NULL)
		goto out;
	EVP_DecodeInit(c);
	if (EVP_DecodeUpdate(c, buf, &n, (const unsigned char *)s,
	    (int)slen) < 0 || EVP_DecodeFinal(c, buf + n, &f) != 1 ||
	    n + f <= 0)
		goto out;
	*out = buf;
	*len = (size_t)n + (size_t)f;
	buf = NULL;
	rc = 0;
out:
	EVP_ENCODE_CTX_free(c);
	free(buf);
	return rc;
}

void
core_time_fmt(time_t t, char *out, size_t outlen)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
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
