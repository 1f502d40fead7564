/*
 * est.c - the enrollment benchmark's load generator, driven by
 * bench/run.sh.  It speaks two protocols over HTTPS keep-alive so that
 * lockbox and its peer face the same client:
 *
 *   est csrs N FILE       writes N P-256 PKCS#10 requests to FILE, one
 *                         base64 DER a line (subject CN=benchNNNNN@...)
 *   est run [options] URL CSRFILE CLIENTS SECONDS
 *                         CLIENTS threads, each one libcurl easy handle
 *                         on one kept-alive connection, POST the next
 *                         unused request as soon as the previous answer
 *                         arrived, for SECONDS; prints one line:
 *                         "est mode=M clients=C certs=N seconds=S rate=R
 *                          p50_ms=A p99_ms=B max_ms=X errors=E reused=U"
 *   est burst [options] URL CSRFILE CLIENTS
 *                         CLIENTS threads connect, wait for each other,
 *                         then each POSTs one request at the same instant
 *                         (a serverkeygen burst); the same line with
 *                         mode=burst
 *
 * Options:
 *   -m est|cfssl   est: RFC 7030 simpleenroll / serverkeygen (base64 DER
 *                  body, application/pkcs10); cfssl: cfssl's
 *                  /api/v1/cfssl/sign ({"certificate_request": PEM})
 *   -w URL         one GET per client before the clock starts, to open
 *                  the TLS connection (default: none; the first request
 *                  of each client is then a warm-up, not counted)
 *   -C FILE        CA certificates to verify the server with
 *   -E FILE -K FILE  TLS client certificate and key
 *
 * Every answer counted is checked: HTTP 200 and, for simpleenroll and
 * cfssl, a certificate for the request's own public key (certs-only CMS,
 * or cfssl's JSON "result.certificate"); serverkeygen answers must be
 * multipart/mixed (their key part is cleansed from memory at once).  Any
 * other answer is an error: counted, and described on stderr by status
 * with the first bytes of its body.  Requests, keys and bodies are made
 * before the clock starts; latency is each curl_easy_perform.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "bench/bench.h"
#include "core/core.h"

#define MAX_CSRS    200000
#define MAX_CLIENTS 256
#define BODY_MAX    ((size_t)1 << 20)
#define CSR_LINE    2048
#define MAX_KINDS   8

enum mode { MODE_EST, MODE_CFSSL };

/* One pre-made request: the bodies of both protocols and its key. */
struct csr {
	char *est;              /* base64 DER */
	char *cfssl;            /* JSON */
	EVP_PKEY *pub;
};

/* One kind of failure: status (0: transport) and a sample. */
struct kind {
	long code;
	long count;
	char sample[160];
};

struct client {
	struct bench *b;
	long ok, errors;
	double *lat;            /* ms, one per counted answer */
	size_t nlat, caplat;
	struct kind kinds[MAX_KINDS];
	size_t nkinds;
	struct bench_body body; /* the answer */
	char ctype[128];
};

struct bench {
	enum mode mode;
	bool burst;
	const char *url, *warm_url, *cacert, *cert, *key;
	struct csr *csrs;
	size_t ncsrs;
	atomic_size_t next;
	double seconds;
	pthread_barrier_t go;
};

static void
usage(void)
{
	fprintf(stderr, "usage: est csrs N FILE\n"
	    "       est run [-m est|cfssl] [-w URL] [-C CA] [-E CERT -K KEY] "
	    "URL CSRFILE CLIENTS SECONDS\n"
	    "       est burst [-m est] [-w URL] [-C CA] [-E CERT -K KEY] "
	    "URL CSRFILE CLIENTS\n");
	exit(2);
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

static X509_REQ *
make_csr(int i)
{
	char email[64];

	snprintf(email, sizeof(email), "bench%05d@example.org", i);
	return bench_csr_new(email, false);
}

static int
cmd_csrs(int n, const char *path)
{
	X509_REQ *req = NULL;
	unsigned char *der = NULL;
	char *b64 = NULL;
	FILE *f = NULL;
	int i, len, rc = -1;

	if ((f = fopen(path, "w")) == NULL) {
		log_warn("%s", path);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if ((req = make_csr(i)) == NULL)
			goto out;
		if ((len = i2d_X509_REQ(req, &der)) <= 0 ||
		    (b64 = malloc(4 * ((size_t)len / 3 + 1) + 1)) == NULL) {
			log_openssl("i2d_X509_REQ");
			goto out;
		}
		EVP_EncodeBlock((unsigned char *)b64, der, len);
		fprintf(f, "%s\n", b64);
		free(b64);
		b64 = NULL;
		OPENSSL_free(der);
		der = NULL;
		X509_REQ_free(req);
		req = NULL;
	}
	if (bench_fclose(&f, path) == -1)
		goto out;
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	free(b64);
	OPENSSL_free(der);
	X509_REQ_free(req);
	return rc;
}

/* cfssl's body: {"certificate_request": "<PEM>"} built with jansson. */
static char *
cfssl_body(const char *b64)
{
	size_t len = strlen(b64), i, o = 0;
	char *pem = malloc(len + len / 64 + 128);
	json_t *j = NULL;
	char *s = NULL;

	if (pem == NULL)
		return NULL;
	o += (size_t)sprintf(pem, "-----BEGIN CERTIFICATE REQUEST-----\n");
	for (i = 0; i < len; i += 64) {
		size_t k = len - i < 64 ? len - i : 64;

		memcpy(pem + o, b64 + i, k);
		o += k;
		pem[o++] = '\n';
	}
	sprintf(pem + o, "-----END CERTIFICATE REQUEST-----\n");
	if ((j = json_pack("{s:s}", "certificate_request", pem)) != NULL)
		s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	free(pem);
	return s;
}

static int
load_csrs(struct bench *b, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[CSR_LINE];
	unsigned char der[CSR_LINE];
	const unsigned char *p;
	X509_REQ *req = NULL;
	size_t cap = 0, len;
	int n, rc = -1;

	if (f == NULL) {
		log_warn("%s", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		len = strcspn(line, "\r\n");
		line[len] = '\0';
		if (len == 0)
			continue;
		if (b->ncsrs == MAX_CSRS || len > sizeof(der) / 4 * 3) {
			fprintf(stderr, "est: %s: too many or too long lines\n",
			    path);
			goto out;
		}
		if (b->ncsrs == cap) {
			struct csr *c;

			cap = cap ? 2 * cap : 1024;
			if ((c = realloc(b->csrs, cap * sizeof(*c))) == NULL)
				goto out;
			b->csrs = c;
		}
		n = EVP_DecodeBlock(der, (const unsigned char *)line,
		    (int)len);
		p = der;
		/* DecodeBlock counts the padding as zero bytes: d2i stops */
		if (n <= 0 || (req = d2i_X509_REQ(NULL, &p, n)) == NULL) {
			fprintf(stderr, "est: %s: line %zu is not a CSR\n",
			    path, b->ncsrs + 1);
			goto out;
		}
		/* counted at once, so that the caller frees what is set */
		b->csrs[b->ncsrs].pub = X509_REQ_get_pubkey(req);
		b->csrs[b->ncsrs].est = strdup(line);
		b->csrs[b->ncsrs].cfssl = cfssl_body(line);
		X509_REQ_free(req);
		req = NULL;
		if (b->csrs[b->ncsrs++].cfssl == NULL ||
		    b->csrs[b->ncsrs - 1].est == NULL ||
		    b->csrs[b->ncsrs - 1].pub == NULL)
			goto out;
	}
	if (b->ncsrs == 0) {
		fprintf(stderr, "est: %s holds no requests\n", path);
		goto out;
	}
	rc = 0;
out:
	X509_REQ_free(req);
	fclose(f);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Answers                                                              */

static size_t
header(char *p, size_t size, size_t n, void *arg)
{
	struct client *c = arg;
	size_t len = size * n, k = strlen("content-type:");

	if (len > k && strncasecmp(p, "content-type:", k) == 0) {
		p += k;
		len -= k;
		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n'))
			len--;
		if (len >= sizeof(c->ctype))
			len = sizeof(c->ctype) - 1;
		memcpy(c->ctype, p, len);
		c->ctype[len] = '\0';
	}
	return size * n;
}

/* The certificate of a certs-only CMS, base64 with line breaks. */
static X509 *
est_cert(const unsigned char *body, size_t len)
{
	unsigned char *clean = NULL, *der = NULL;
	const unsigned char *p;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *certs = NULL;
	X509 *x = NULL;
	size_t i, n = 0;
	int dl;

	if ((clean = malloc(len + 1)) == NULL ||
	    (der = malloc(len / 4 * 3 + 3)) == NULL)
		goto out;
	for (i = 0; i < len; i++)
		if (body[i] != '\r' && body[i] != '\n' && body[i] != ' ' &&
		    body[i] != '\t')
			clean[n++] = body[i];
	if (n == 0 || n % 4 != 0 ||
	    (dl = EVP_DecodeBlock(der, clean, (int)n)) <= 0)
		goto out;
	p = der;
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, dl)) == NULL ||
	    (certs = CMS_get1_certs(cms)) == NULL ||
	    sk_X509_num(certs) < 1)
		goto out;
	x = sk_X509_shift(certs);
out:
	sk_X509_pop_free(certs, X509_free);
	CMS_ContentInfo_free(cms);
	free(der);
	free(clean);
	return x;
}

static X509 *
cfssl_cert(const unsigned char *body, size_t len)
{
	json_t *j = json_loadb((const char *)body, len, 0, NULL), *ok, *c;
	const char *pem;
	BIO *bio = NULL;
	X509 *x = NULL;

	if (j == NULL || (ok = json_object_get(j, "success")) == NULL ||
	    !json_is_true(ok) ||
	    (c = json_object_get(json_object_get(j, "result"),
	    "certificate")) == NULL || (pem = json_string_value(c)) == NULL ||
	    (bio = BIO_new_mem_buf(pem, -1)) == NULL)
		goto out;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
out:
	BIO_free(bio);
	json_decref(j);
	return x;
}

/* Whether the answer is the one wanted; NULL, or why not. */
static const char *
check_answer(struct client *c, long code, const struct csr *r)
{
	X509 *x = NULL;
	const char *why = NULL;

	if (c->body.overflow)
		return "answer larger than 1 MiB";
	if (code != 200)
		return "not 200";
	if (c->b->burst) {
		if (strncasecmp(c->ctype, "multipart/mixed", 15) != 0)
			why = "not multipart/mixed";
		return why;
	}
	x = c->b->mode == MODE_EST ? est_cert(c->body.p, c->body.len) :
	    cfssl_cert(c->body.p, c->body.len);
	if (x == NULL)
		why = "no certificate in the answer";
	else if (EVP_PKEY_eq(X509_get0_pubkey(x), r->pub) != 1)
		why = "certificate for another key";
	X509_free(x);
	return why;
}

static void
count_error(struct client *c, long code, const char *why, CURLcode cc)
{
	struct kind *k = NULL;
	size_t i, n;
	char *s;

	c->errors++;
	for (i = 0; i < c->nkinds; i++)
		if (c->kinds[i].code == code)
			k = &c->kinds[i];
	if (k == NULL && c->nkinds < MAX_KINDS) {
		k = &c->kinds[c->nkinds++];
		k->code = code;
		if (cc != CURLE_OK)
			snprintf(k->sample, sizeof(k->sample), "%s",
			    curl_easy_strerror(cc));
		else {
			n = c->body.len < 100 ? c->body.len : 100;
			snprintf(k->sample, sizeof(k->sample), "%s: %.*s",
			    why, (int)n, c->body.p != NULL ?
			    (char *)c->body.p : "");
			for (s = k->sample; *s != '\0'; s++)
				if (*s == '\r' || *s == '\n')
					*s = ' ';
		}
	}
	if (k != NULL)
		k->count++;
}

/* ------------------------------------------------------------------ */
/* Clients                                                              */

static void
lat_add(struct client *c, double ms)
{
	double *n;

	if (c->nlat == c->caplat) {
		c->caplat = c->caplat ? 2 * c->caplat : 1024;
		if ((n = realloc(c->lat, c->caplat * sizeof(*n))) == NULL)
			abort();
		c->lat = n;
	}
	c->lat[c->nlat++] = ms;
}

/* One POST of the next request; counted when count is true. */
static void
one_request(struct client *c, CURL *h, bool count)
{
	struct bench *b = c->b;
	size_t i = atomic_fetch_add(&b->next, 1) % b->ncsrs;
	const struct csr *r = &b->csrs[i];
	const char *body = b->mode == MODE_EST ? r->est : r->cfssl;
	const char *why;
	CURLcode cc;
	long code = 0;
	double t0, t1;

	c->body.len = 0;
	c->body.overflow = false;
	c->ctype[0] = '\0';
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	t0 = bench_now();
	cc = curl_easy_perform(h);
	t1 = bench_now();
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	why = cc != CURLE_OK ? "transport" : check_answer(c, code, r);
	/* it holds a private key */
	if (c->body.p != NULL && b->burst)
		OPENSSL_cleanse(c->body.p, c->body.len);
	if (!count)
		return;
	if (why != NULL) {
		count_error(c, code, why, cc);
		return;
	}
	c->ok++;
	lat_add(c, (t1 - t0) * 1000.0);
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	struct bench *b = c->b;
	struct curl_slist *hdr = NULL;
	CURL *h = curl_easy_init();
	double deadline;

	if (h == NULL)
		abort();
	c->body.max = BODY_MAX;
	hdr = curl_slist_append(hdr, b->mode == MODE_EST ?
	    "Content-Type: application/pkcs10" :
	    "Content-Type: application/json");
	hdr = curl_slist_append(hdr, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, bench_body_collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &c->body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	/* a burst without a pool waits for RSA key generations in turn */
	curl_easy_setopt(h, CURLOPT_TIMEOUT, b->burst ? 600L : 30L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	if (b->cacert != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, b->cacert);
	if (b->cert != NULL)
		curl_easy_setopt(h, CURLOPT_SSLCERT, b->cert);
	if (b->key != NULL)
		curl_easy_setopt(h, CURLOPT_SSLKEY, b->key);
	/* open the connection (TLS handshake) before the clock */
	if (b->warm_url != NULL) {
		curl_easy_setopt(h, CURLOPT_URL, b->warm_url);
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
		c->body.len = 0;
		curl_easy_perform(h);
	}
	curl_easy_setopt(h, CURLOPT_URL, b->url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	if (b->warm_url == NULL && !b->burst)
		one_request(c, h, false);
	pthread_barrier_wait(&b->go);
	if (b->burst)
		one_request(c, h, true);
	else {
		deadline = bench_now() + b->seconds;
		while (bench_now() < deadline)
			one_request(c, h, true);
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of sorted v[0..n-1]. */
static double
quantile(const double *v, size_t n, double q)
{
	size_t r;

	if (n == 0)
		return 0;
	r = (size_t)(q * (double)n + 0.999999);
	if (r < 1)
		r = 1;
	return v[(r > n ? n : r) - 1];
}

static int
cmd_load(struct bench *b, int nclients)
{
	struct client *cs = calloc((size_t)nclients, sizeof(*cs));
	pthread_t *tids = calloc((size_t)nclients, sizeof(*tids));
	double *all = NULL, t0, took;
	size_t nall = 0, k;
	long ok = 0, errors = 0;
	int i, rc = -1;

	if (cs == NULL || tids == NULL)
		goto out;
	if (pthread_barrier_init(&b->go, NULL, (unsigned)nclients + 1) != 0)
		goto out;
	for (i = 0; i < nclients; i++) {
		cs[i].b = b;
		if (pthread_create(&tids[i], NULL, client_main, &cs[i]) != 0) {
			fprintf(stderr, "est: cannot start client %d\n", i);
			exit(1);
		}
	}
	pthread_barrier_wait(&b->go);
	t0 = bench_now();
	for (i = 0; i < nclients; i++)
		pthread_join(tids[i], NULL);
	took = bench_now() - t0;
	pthread_barrier_destroy(&b->go);
	for (i = 0; i < nclients; i++) {
		ok += cs[i].ok;
		errors += cs[i].errors;
		nall += cs[i].nlat;
	}
	if ((all = malloc((nall + 1) * sizeof(*all))) == NULL)
		goto out;
	nall = 0;
	for (i = 0; i < nclients; i++) {
		memcpy(all + nall, cs[i].lat, cs[i].nlat * sizeof(*all));
		nall += cs[i].nlat;
		for (k = 0; k < cs[i].nkinds; k++)
			if (cs[i].kinds[k].code != 0)
				fprintf(stderr, "est: client %d: %ld answers "
				    "HTTP %ld: %s\n", i, cs[i].kinds[k].count,
				    cs[i].kinds[k].code, cs[i].kinds[k].sample);
			else
				fprintf(stderr, "est: client %d: %ld requests "
				    "failed: %s\n", i, cs[i].kinds[k].count,
				    cs[i].kinds[k].sample);
	}
	qsort(all, nall, sizeof(*all), cmp_double);
	printf("est mode=%s clients=%d certs=%ld seconds=%.2f rate=%.1f "
	    "p50_ms=%.2f p99_ms=%.2f max_ms=%.2f errors=%ld reused=%zu\n",
	    b->burst ? "burst" : b->mode == MODE_EST ? "est" : "cfssl",
	    nclients, ok, took, (double)ok / took, quantile(all, nall, 0.50),
	    quantile(all, nall, 0.99), nall ? all[nall - 1] : 0.0, errors,
	    atomic_load(&b->next) > b->ncsrs ?
	    atomic_load(&b->next) - b->ncsrs : 0);
	rc = ok > 0 ? 0 : -1;
out:
	if (cs != NULL)
		for (i = 0; i < nclients; i++) {
			free(cs[i].lat);
			if (cs[i].body.p != NULL)
				OPENSSL_cleanse(cs[i].body.p, cs[i].body.len);
			free(cs[i].body.p);
		}
	free(all);
	free(cs);
	free(tids);
	return rc;
}

int
main(int argc, char **argv)
{
	struct bench b;
	const char *cmd;
	size_t i;
	int ch, nclients, rc;

	memset(&b, 0, sizeof(b));
	log_init("est", false);
	if (argc < 2)
		usage();
	cmd = argv[1];
	if (strcmp(cmd, "csrs") == 0) {
		if (argc != 4)
			usage();
		return cmd_csrs(bench_parse_count("est", argv[2], 1, MAX_CSRS),
		    argv[3]) == 0 ? 0 : 1;
	}
	if (strcmp(cmd, "run") != 0 && strcmp(cmd, "burst") != 0)
		usage();
	b.burst = strcmp(cmd, "burst") == 0;
	optind = 2;
	while ((ch = getopt(argc, argv, "m:w:C:E:K:")) != -1) {
		switch (ch) {
		case 'm':
			if (strcmp(optarg, "est") == 0)
				b.mode = MODE_EST;
			else if (strcmp(optarg, "cfssl") == 0)
				b.mode = MODE_CFSSL;
			else
				usage();
			break;
		case 'w':
			b.warm_url = optarg;
			break;
		case 'C':
			b.cacert = optarg;
			break;
		case 'E':
			b.cert = optarg;
			break;
		case 'K':
			b.key = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != (b.burst ? 3 : 4) || (b.burst && b.mode != MODE_EST))
		usage();
	b.url = argv[0];
	nclients = bench_parse_count("est", argv[2], 1, MAX_CLIENTS);
	if (!b.burst)
		b.seconds = bench_parse_count("est", argv[3], 1, 3600);
	atomic_init(&b.next, 0);
	if ((rc = load_csrs(&b, argv[1])) == 0) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = cmd_load(&b, nclients);
		curl_global_cleanup();
	}
	for (i = 0; i < b.ncsrs; i++) {
		free(b.csrs[i].est);
		free(b.csrs[i].cfssl);
		EVP_PKEY_free(b.csrs[i].pub);
	}
	free(b.csrs);
	return rc == 0 ? 0 : 1;
}
