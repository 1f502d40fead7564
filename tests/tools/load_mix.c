/*
 * load_mix.c - test tool: a multi-threaded load generator for
 * tests/integration/63_load.sh.  CLIENTS threads (one libcurl handle each,
 * so each keeps its connections alive between requests, and every fourth
 * request of a thread forces a fresh connection) take turns at three
 * requests until SECONDS have passed:
 *
 *   - EST simpleenroll (HTTPS, client certificate CERT/KEY, one of the
 *     CSR files, base64 DER): the answer must be 200, a certs-only
 *     PKCS#7 holding a certificate of the CSR's public key;
 *   - OCSP: POST OCSPREQ (DER) to HTTP/ocsp: a successful OCSP response;
 *   - CRL: GET HTTP/ca.crl: a DER CRL.
 *
 *   load_mix --https URL --http URL --cacert FILE --cert FILE --key FILE
 *            --ocsp-req FILE [--clients N] [--seconds S] [--sources K]
 *            [--serials FILE] CSR.der...
 *
 * With --serials FILE the serial (hex, upper case, as lockbox stores it)
 * of every certificate received is written to FILE, one a line, so that
 * the test can hold the database to what the clients got.
 *
 * With --sources K the clients bind to the loopback addresses 127.0.0.1
 * to 127.0.0.K in turn, so the per-IP connection limit sees K peers.
 * Prints one line of counters:
 *   requests= enroll= ocsp= crl= ok= status5xx= status_other= dropped=
 *   bad_answer=
 * where dropped counts requests that got no complete HTTP answer (a
 * transfer error of any kind: reset, closed, timed out) and bad_answer 2xx
 * answers whose body is not what was asked for (an enrollment without a
 * certificate of the CSR's key).  The first few failures are described on
 * standard error.  Exit status: 0 when every request succeeded, 1 when
 * any failed, 2 usage or set-up error.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "bench/bench.h"

#define MAX_CSRS      64
#define MAX_BODY      ((size_t)4 * 1024 * 1024)
#define MAX_FILE      ((size_t)1024 * 1024)
#define MAX_REPORTS   10

struct csr {
	char *b64;               /* the request body */
	EVP_PKEY *pub;           /* the key the certificate must carry */
};

struct opts {
	const char *https, *http, *cacert, *cert, *key;
	FILE *serials;           /* --serials, or NULL */
	unsigned char *ocsp_req;
	size_t ocsp_len;
	struct csr csrs[MAX_CSRS];
	int ncsrs;
	int clients, sources;
	double seconds;
};

struct counters {
	atomic_long requests, enroll, ocsp, crl, ok, s5xx, other, dropped, bad;
};

struct client {
	const struct opts *o;
	struct counters *c;
	int id;
	pthread_t thread;
};

static atomic_int reports;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 1, 2)))
static void
report(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&reports, 1) >= MAX_REPORTS)
		return;
	va_start(ap, fmt);
	fputs("load_mix: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Reads a whole file (at most MAX_FILE bytes); NULL on failure. */
static unsigned char *
read_file(const char *path, size_t *len)
{
	FILE *f;
	unsigned char *p = NULL;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL) {
		perror(path);
		return NULL;
	}
	if ((p = malloc(MAX_FILE)) != NULL) {
		n = fread(p, 1, MAX_FILE, f);
		if (ferror(f) || n == 0 || n == MAX_FILE) {
			fprintf(stderr, "load_mix: %s: unreadable, empty or "
			    "too large\n", path);
			free(p);
			p = NULL;
		} else
			*len = n;
	}
	fclose(f);
	return p;
}

/* Loads a DER CSR: its base64 body and its public key. */
static int
load_csr(const char *path, struct csr *c)
{
	unsigned char *der = NULL;
	const unsigned char *q;
	X509_REQ *req = NULL;
	size_t len = 0;
	int n, rc = -1;

	if ((der = read_file(path, &len)) == NULL)
		goto out;
	q = der;
	if ((req = d2i_X509_REQ(NULL, &q, (long)len)) == NULL ||
	    (c->pub = X509_REQ_get_pubkey(req)) == NULL) {
		fprintf(stderr, "load_mix: %s: not a DER CSR\n", path);
		goto out;
	}
	if ((c->b64 = malloc(4 * (len / 3 + 1) + 1)) == NULL)
		goto out;
	n = EVP_EncodeBlock((unsigned char *)c->b64, der, (int)len);
	c->b64[n] = '\0';
	rc = 0;
out:
	X509_REQ_free(req);
	free(der);
	return rc;
}

/* Writes the serial of cert to serials (one line, hex); stdio locks the
 * stream for each call, so threads do not interleave their lines. */
static void
note_serial(FILE *serials, const X509 *cert)
{
	BIGNUM *bn;
	char *hex = NULL;

	if (serials == NULL)
		return;
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL)) ==
	    NULL || (hex = BN_bn2hex(bn)) == NULL)
		report("cannot print a serial");
	else
		fprintf(serials, "%s\n", hex);
	OPENSSL_free(hex);
	BN_free(bn);
}

/* Whether an EST answer (base64 certs-only PKCS#7) holds a certificate
 * of pub; its serial goes to serials. */
static bool
has_cert(const struct bench_body *b, EVP_PKEY *pub, FILE *serials)
{
	unsigned char *clean = NULL, *der = NULL;
	const unsigned char *q;
	PKCS7 *p7 = NULL;
	STACK_OF(X509) *certs;
	size_t i, n = 0;
	int len, pad = 0, k;
	bool found = false;

	if (b->len == 0 || (clean = malloc(b->len + 1)) == NULL ||
	    (der = malloc(b->len)) == NULL)
		goto out;
	for (i = 0; i < b->len; i++)
		if (b->p[i] != '\r' && b->p[i] != '\n')
			clean[n++] = b->p[i];
	if (n == 0 || n % 4 != 0)
		goto out;
	pad = (clean[n - 1] == '=') + (clean[n - 2] == '=');
	if ((len = EVP_DecodeBlock(der, clean, (int)n)) <= pad)
		goto out;
	q = der;
	if ((p7 = d2i_PKCS7(NULL, &q, len - pad)) == NULL ||
	    !PKCS7_type_is_signed(p7) || p7->d.sign == NULL ||
	    (certs = p7->d.sign->cert) == NULL)
		goto out;
	for (k = 0; k < sk_X509_num(certs); k++)
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, k)),
		    pub) == 1) {
			note_serial(serials, sk_X509_value(certs, k));
			found = true;
		}
out:
	PKCS7_free(p7);
	free(der);
	free(clean);
	return found;
}

static bool
ocsp_ok(const struct bench_body *b)
{
	const unsigned char *q = b->p;
	OCSP_RESPONSE *r;
	bool ok;

	if (b->len == 0 || (r = d2i_OCSP_RESPONSE(NULL, &q,
	    (long)b->len)) == NULL)
		return false;
	ok = OCSP_response_status(r) == OCSP_RESPONSE_STATUS_SUCCESSFUL;
	OCSP_RESPONSE_free(r);
	return ok;
}

static bool
crl_ok(const struct bench_body *b)
{
	const unsigned char *q = b->p;
	X509_CRL *crl;

	if (b->len == 0 || (crl = d2i_X509_CRL(NULL, &q,
	    (long)b->len)) == NULL)
		return false;
	X509_CRL_free(crl);
	return true;
}

static void *
client_run(void *arg)
{
	struct client *cl = arg;
	const struct opts *o = cl->o;
	struct counters *c = cl->c;
	struct curl_slist *h_p10 = NULL, *h_ocsp = NULL;
	CURL *h;
	char url[1024], src[32];
	double end = now() + o->seconds;
	long n, code;
	int kind;
	CURLcode rc;
	struct bench_body b;
	bool good;
	const struct csr *csr;

	if ((h = curl_easy_init()) == NULL) {
		report("client %d: curl_easy_init failed", cl->id);
		atomic_fetch_add(&c->dropped, 1);
		return NULL;
	}
	h_p10 = curl_slist_append(NULL, "Content-Type: application/pkcs10");
	h_ocsp = curl_slist_append(NULL,
	    "Content-Type: application/ocsp-request");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(h, CURLOPT_CAINFO, o->cacert);
	curl_easy_setopt(h, CURLOPT_SSLCERT, o->cert);
	curl_easy_setopt(h, CURLOPT_SSLKEY, o->key);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bench_body_collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	if (o->sources > 1) {
		snprintf(src, sizeof(src), "127.0.0.%d",
		    1 + cl->id % o->sources);
		curl_easy_setopt(h, CURLOPT_INTERFACE, src);
	}
	for (n = 0; now() < end; n++) {
		memset(&b, 0, sizeof(b));
		b.max = MAX_BODY;
		kind = (int)((cl->id + n) % 3);
		csr = &o->csrs[(cl->id + n) % o->ncsrs];
		curl_easy_setopt(h, CURLOPT_FORBID_REUSE, n % 4 == 3 ? 1L : 0L);
		switch (kind) {
		case 0:
			snprintf(url, sizeof(url), "%s/.well-known/est/"
			    "smime-sign/simpleenroll", o->https);
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, h_p10);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, csr->b64);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE,
			    (long)strlen(csr->b64));
			atomic_fetch_add(&c->enroll, 1);
			break;
		case 1:
			snprintf(url, sizeof(url), "%s/ocsp", o->http);
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, h_ocsp);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, o->ocsp_req);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE,
			    (long)o->ocsp_len);
			atomic_fetch_add(&c->ocsp, 1);
			break;
		default:
			snprintf(url, sizeof(url), "%s/ca.crl", o->http);
			curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
			curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
			atomic_fetch_add(&c->crl, 1);
			break;
		}
		curl_easy_setopt(h, CURLOPT_URL, url);
		atomic_fetch_add(&c->requests, 1);
		rc = curl_easy_perform(h);
		code = 0;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
		if (rc != CURLE_OK) {
			atomic_fetch_add(&c->dropped, 1);
			report("client %d: %s: no complete answer: %s (HTTP "
			    "%ld)", cl->id, url, curl_easy_strerror(rc), code);
		} else if (code >= 500) {
			atomic_fetch_add(&c->s5xx, 1);
			report("client %d: %s: HTTP %ld: %.200s", cl->id, url,
			    code, b.p != NULL ? (char *)b.p : "");
		} else if (code != 200) {
			atomic_fetch_add(&c->other, 1);
			report("client %d: %s: HTTP %ld: %.200s", cl->id, url,
			    code, b.p != NULL ? (char *)b.p : "");
		} else {
			good = kind == 0 ? has_cert(&b, csr->pub, o->serials) :
			    kind == 1 ? ocsp_ok(&b) : crl_ok(&b);
			if (good)
				atomic_fetch_add(&c->ok, 1);
			else {
				atomic_fetch_add(&c->bad, 1);
				report("client %d: %s: HTTP 200 but not the "
				    "expected answer (%zu bytes)", cl->id, url,
				    b.len);
			}
		}
		free(b.p);
	}
	curl_easy_cleanup(h);
	curl_slist_free_all(h_p10);
	curl_slist_free_all(h_ocsp);
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr, "usage: load_mix --https URL --http URL --cacert FILE "
	    "--cert FILE --key FILE --ocsp-req FILE [--clients N] "
	    "[--seconds S] [--sources K] [--serials FILE] CSR.der...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct counters c;
	struct client *cl = NULL;
	const char *ocsp = NULL;
	int i, started = 0, rc = 2;

	memset(&o, 0, sizeof(o));
	memset(&c, 0, sizeof(c));
	o.clients = 64;
	o.seconds = 8;
	o.sources = 1;
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--https") == 0)
			o.https = argv[i + 1];
		else if (strcmp(argv[i], "--http") == 0)
			o.http = argv[i + 1];
		else if (strcmp(argv[i], "--cacert") == 0)
			o.cacert = argv[i + 1];
		else if (strcmp(argv[i], "--cert") == 0)
			o.cert = argv[i + 1];
		else if (strcmp(argv[i], "--key") == 0)
			o.key = argv[i + 1];
		else if (strcmp(argv[i], "--ocsp-req") == 0)
			ocsp = argv[i + 1];
		else if (strcmp(argv[i], "--clients") == 0)
			o.clients = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--seconds") == 0)
			o.seconds = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--sources") == 0)
			o.sources = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--serials") == 0) {
			if (o.serials != NULL)
				usage();
			if ((o.serials = fopen(argv[i + 1], "w")) == NULL) {
				perror(argv[i + 1]);
				goto out;
			}
		}
		else
			usage();
	}
	if (o.https == NULL || o.http == NULL || o.cacert == NULL ||
	    o.cert == NULL || o.key == NULL || ocsp == NULL || i >= argc ||
	    argc - i > MAX_CSRS || o.clients < 1 || o.clients > 1024 ||
	    o.seconds <= 0 || o.sources < 1 || o.sources > 254)
		usage();
	if ((o.ocsp_req = read_file(ocsp, &o.ocsp_len)) == NULL)
		goto out;
	for (; i < argc; i++)
		if (load_csr(argv[i], &o.csrs[o.ncsrs++]) == -1)
			goto out;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (cl = calloc((size_t)o.clients, sizeof(*cl))) == NULL)
		goto out;
	for (started = 0; started < o.clients; started++) {
		cl[started].o = &o;
		cl[started].c = &c;
		cl[started].id = started;
		if (pthread_create(&cl[started].thread, NULL, client_run,
		    &cl[started]) != 0) {
			fprintf(stderr, "load_mix: pthread_create failed\n");
			break;
		}
	}
	for (i = 0; i < started; i++)
		pthread_join(cl[i].thread, NULL);
	printf("requests=%ld enroll=%ld ocsp=%ld crl=%ld ok=%ld status5xx=%ld "
	    "status_other=%ld dropped=%ld bad_answer=%ld\n",
	    (long)c.requests, (long)c.enroll, (long)c.ocsp, (long)c.crl,
	    (long)c.ok, (long)c.s5xx, (long)c.other, (long)c.dropped,
	    (long)c.bad);
	if (started == o.clients)
		rc = c.requests > 0 && c.ok == c.requests ? 0 : 1;
	if (o.serials != NULL && fclose(o.serials) != 0) {
		perror("--serials");
		rc = 2;
	}
	o.serials = NULL;
	curl_global_cleanup();
out:
	for (i = 0; i < o.ncsrs; i++) {
		free(o.csrs[i].b64);
		EVP_PKEY_free(o.csrs[i].pub);
	}
	if (o.serials != NULL)
		fclose(o.serials);
	free(o.ocsp_req);
	free(cl);
	return rc;
}
