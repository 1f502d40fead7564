/*
 * ocsp.c - OCSP load generator for bench/run.sh: THREADS clients, each a
 * libcurl easy handle on its own keep-alive connection, POST one pre-built
 * DER request to URL as fast as the responder answers, for SECONDS.
 * Prints "ocsp responses=N seconds=S rate=R errors=E"; every counted answer
 * is HTTP 200 application/ocsp-response whose first bytes are a
 * successful OCSPResponse.  bench/run.sh runs it twice: with the RFC 5019
 * nonce-less request (answers reused by the responder) and with one that
 * carries a nonce (a fresh signature every time).
 *
 *   ocsp URL REQUEST.der THREADS SECONDS
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "bench/bench.h"
#include "core/core.h"

struct client {
	const char *url;
	const unsigned char *req;
	size_t req_len;
	double deadline;
	long ok, errors;
	unsigned char buf[8192];
	size_t len;
};

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	struct client *c = arg;
	size_t len = size * n;

	if (len > sizeof(c->buf) - c->len)
		return 0;
	memcpy(c->buf + c->len, p, len);
	c->len += len;
	return len;
}

/* SEQUENCE { ENUMERATED 0 ... }: responseStatus successful. */
static int
successful(const unsigned char *b, size_t len)
{
	size_t i = 2;

	if (len < 5 || b[0] != 0x30)
		return 0;
	if (b[1] & 0x80)
		i = 2 + (b[1] & 0x7f);
	return i + 2 < len && b[i] == 0x0a && b[i + 1] == 1 && b[i + 2] == 0;
}

static void *
run(void *arg)
{
	struct client *c = arg;
	struct curl_slist *hdr = NULL;
	CURL *h = curl_easy_init();
	long code;

	if (h == NULL)
		return NULL;
	hdr = curl_slist_append(hdr, "Content-Type: application/ocsp-request");
	curl_easy_setopt(h, CURLOPT_URL, c->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->req);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)c->req_len);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	while (bench_now() < c->deadline) {
		c->len = 0;
		if (curl_easy_perform(h) == CURLE_OK &&
		    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) ==
		    CURLE_OK && code == 200 && successful(c->buf, c->len))
			c->ok++;
		else
			c->errors++;
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return NULL;
}

int
main(int argc, char **argv)
{
	struct client *cs;
	pthread_t *tids;
	unsigned char *req = NULL;
	size_t len = 0;
	long threads, secs, ok = 0, errors = 0, i;
	double start, took;
	lb_err err = { 0 };

	if (argc != 5 || (threads = atol(argv[3])) < 1 || threads > 256 ||
	    (secs = atol(argv[4])) < 1) {
		fprintf(stderr, "usage: ocsp URL REQUEST.der THREADS SECONDS\n");
		return 2;
	}
	if (core_file_read(argv[2], 65536, &req, &len, &err) == -1) {
		fprintf(stderr, "ocsp: %s\n", err.msg);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	cs = calloc((size_t)threads, sizeof(*cs));
	tids = calloc((size_t)threads, sizeof(*tids));
	if (cs == NULL || tids == NULL)
		return 1;
	start = bench_now();
	for (i = 0; i < threads; i++) {
		cs[i].url = argv[1];
		cs[i].req = req;
		cs[i].req_len = len;
		cs[i].deadline = start + (double)secs;
		if (pthread_create(&tids[i], NULL, run, &cs[i]) != 0)
			return 1;
	}
	for (i = 0; i < threads; i++) {
		pthread_join(tids[i], NULL);
		ok += cs[i].ok;
		errors += cs[i].errors;
	}
	took = bench_now() - start;
	printf("ocsp responses=%ld seconds=%.2f rate=%.1f errors=%ld\n", ok,
	    took, (double)ok / took, errors);
	free(cs);
	free(tids);
	free(req);
	curl_global_cleanup();
	return errors > 0 && ok == 0 ? 1 : 0;
}
