/*
 * bench.h - what the benchmark programs in bench/ (and the load tools in
 * tests/tools/) share: argument parsing, a monotonic clock, subscribers'
 * requests and a capped response body for libcurl.  Header-only: each
 * benchmark is its own program.  One-value SQL queries come from
 * tests/unit/testutil.h (tu_sql_int).
 */
#ifndef LOCKBOX_BENCH_H
#define LOCKBOX_BENCH_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/core.h"

/* The whole number s in [min, max]; exits 2 naming prog otherwise. */
/*
 * The passphrase file for the administrator credential ca_init writes:
 * DIR.pw beside the state directory (0600), its path in a buffer the
 * next call reuses; NULL when it cannot be written.
 */
static inline const char *
bench_admin_pass(const char *dir)
{
	static char p[4096];
	static const char pw[] = "bench passphrase\n";

	if ((size_t)snprintf(p, sizeof(p), "%s.pw", dir) >= sizeof(p) ||
	    core_file_write(p, pw, sizeof(pw) - 1, 0600, false, NULL) == -1)
		return NULL;
	return p;
}

static inline int
bench_parse_count(const char *prog, const char *s, int min, int max)
{
	char *end = NULL;
	long v = strtol(s, &end, 10);

	if (end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "%s: '%s' is not a number in [%d, %d]\n", prog,
		    s, min, max);
		exit(2);
	}
	return (int)v;
}

/* Seconds on the monotonic clock. */
static inline double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Closes *fp, the file written at path, and sets it NULL: 0, or -1 with
 * the failure logged (a full disk shows only here).
 */
static inline int
bench_fclose(FILE **fp, const char *path)
{
	int rc = fclose(*fp);

	*fp = NULL;
	if (rc != 0) {
		log_warn("%s", path);
		return -1;
	}
	return 0;
}

/*
 * A signed PKCS#10 request with subject CN=email (and, with email_attr,
 * emailAddress=email) for a fresh P-256 key, or NULL with the OpenSSL
 * errors logged.
 */
static inline X509_REQ *
bench_csr_new(const char *email, bool email_attr)
{
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	X509_NAME *n = NULL;
	int rc = -1;

	if ((key = EVP_EC_gen("P-256")) == NULL ||
	    (req = X509_REQ_new()) == NULL ||
	    (n = X509_REQ_get_subject_name(req)) == NULL ||
	    X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
	    (const unsigned char *)email, -1, -1, 0) != 1 ||
	    (email_attr && X509_NAME_add_entry_by_NID(n,
	    NID_pkcs9_emailAddress, MBSTRING_ASC,
	    (const unsigned char *)email, -1, -1, 0) != 1) ||
	    X509_REQ_set_pubkey(req, key) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto out;
	rc = 0;
out:
	if (rc == -1) {
		log_openssl("make_csr");
		X509_REQ_free(req);
		req = NULL;
	}
	EVP_PKEY_free(key);
	return req;
}

/* A response body, collected by bench_body_collect. */
struct bench_body {
	unsigned char *p;       /* NUL-terminated; NULL before any byte */
	size_t len;
	size_t max;             /* at most this many bytes are kept */
	bool overflow;          /* more came: the transfer was stopped */
};

/*
 * A CURLOPT_WRITEFUNCTION appending to the struct bench_body arg
 * (CURLOPT_WRITEDATA); stops the transfer beyond its max or when out of
 * memory.
 */
static inline size_t
bench_body_collect(char *p, size_t size, size_t n, void *arg)
{
	struct bench_body *b = arg;
	size_t len = size * n;
	unsigned char *nb;

	if (len > b->max - b->len) {
		b->overflow = true;
		return 0;
	}
	if ((nb = realloc(b->p, b->len + len + 1)) == NULL)
		return 0;
	b->p = nb;
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
	return len;
}

#endif
