/*
 * crl_http.c - the published files relying parties fetch over plain HTTP
 * (and HTTPS): the full CRL at the CDP URL (base_url + "/ca.crl",
 * application/pkix-crl) and the CA certificate at the AIA caIssuers URL,
 * with the caching headers of RFC 9111/9110: Last-Modified (the file's
 * mtime), ETag (quoted hex SHA-256 of the DER), Expires (the CRL's
 * nextUpdate), Cache-Control public, no-transform, max-age, and 304 for a
 * matching If-None-Match or If-Modified-Since.
 *
 * Each file is held in memory and reloaded when a stat() shows it was
 * replaced (pub/ is written by temp file + rename, so a new file is a new
 * inode): a CRL of a million entries is about 49 MB and must not be read
 * per request.  Responses share the loaded buffer by reference count.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>

#include "web/web_int.h"

#define CA_CRT_MAX    ((size_t)1024 * 1024)
/* The CA certificate changes rarely: an hour in caches. */
#define CA_CRT_MAX_AGE 3600L

/* One loaded version of a file, shared by the responses that send it. */
struct pubblob {
	atomic_int refs;
	unsigned char *der;
	size_t len;
	char etag[68];           /* "HEX" with the quotes */
	time_t mtime;
	time_t next_update;      /* CRLs: nextUpdate; 0 otherwise */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
};

struct web_pubfile {
	char *path;
	size_t max;
	bool is_crl;
	pthread_mutex_t lock;
	struct pubblob *cur;
};

static void
blob_put(void *cls)
{
	struct pubblob *b = cls;

	if (b == NULL || atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	free(b->der);
	free(b);
}

struct web_pubfile *
web_pubfile_new(const char *dir, const char *name, size_t max, bool is_crl)
{
	struct web_pubfile *f = calloc(1, sizeof(*f));

	if (f == NULL || (f->path = core_path(dir, name)) == NULL ||
	    pthread_mutex_init(&f->lock, NULL) != 0) {
		if (f != NULL)
			free(f->path);
		free(f);
		return NULL;
	}
	f->max = max;
	f->is_crl = is_crl;
	return f;
}

void
web_pubfile_free(struct web_pubfile *f)
{
	if (f == NULL)
		return;
	blob_put(f->cur);
	pthread_mutex_destroy(&f->lock);
	free(f->path);
	free(f);
}

/*
 * The nextUpdate of a DER CRL, read from the head of its TBSCertList
 * without decoding the entries: CertificateList ::= SEQUENCE { tbs
 * SEQUENCE { version INTEGER OPTIONAL, signature, issuer, thisUpdate,
 * nextUpdate Time OPTIONAL, ... } ... }.  0 when absent or malformed.
 */
static time_t
crl_next_update(const unsigned char *der, size_t len)
{
	const unsigned char *p = der, *elem;
	long n;
	int tag, cls, i, inf;
	ASN1_TIME *t = NULL;
	time_t out = 0;

	if (len > LONG_MAX)
		return 0;
	/* into CertificateList, then into tbsCertList */
	for (i = 0; i < 2; i++) {
		inf = ASN1_get_object(&p, &n, &tag, &cls, (long)(len - (size_t)(
		    p - der)));
		if ((inf & 0x80) || tag != V_ASN1_SEQUENCE)
			return 0;
	}
	/* skip version, signature, issuer, thisUpdate */
	for (i = 0; i < 4; i++) {
		elem = p;
		inf = ASN1_get_object(&p, &n, &tag, &cls, (long)(len - (size_t)(
		    p - der)));
		if (inf & 0x80)
			return 0;
		if (i == 0 && tag != V_ASN1_INTEGER) {
			p = elem;  /* v1: no version; the loop skips one less */
			continue;
		}
		p += n;
	}
	elem = p;
	if (d2i_ASN1_TIME(&t, &elem, (long)(len - (size_t)(p - der))) ==
	    NULL)
		return 0;
	out = core_asn1_time(t);
	ASN1_TIME_free(t);
	return out;
}

/* Loads the file anew; NULL with err. */
static struct pubblob *
blob_load(const struct web_pubfile *f, const struct stat *st, lb_err *err)
{
	struct pubblob *b = calloc(1, sizeof(*b));

	if (b == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	if (core_file_read(f->path, f->max, &b->der, &b->len, err) == -1)
		goto fail;
	b->etag[0] = '"';
	if (core_sha256_hex(b->der, b->len, b->etag + 1) == -1) {
		lb_err_set(err, LB_EINTERNAL, "cannot hash %s", f->path);
		goto fail;
	}
	b->etag[65] = '"';
	b->etag[66] = '\0';
	if (f->is_crl && (b->next_update = crl_next_update(b->der,
	    b->len)) == 0)
		log_warnx("%s: no nextUpdate found", f->path);
	atomic_init(&b->refs, 1);
	b->mtime = st->st_mtime;
	b->dev = st->st_dev;
	b->ino = st->st_ino;
	b->size = st->st_size;
	b->mtim = st->st_mtim;
	return b;
fail:
	free(b->der);
	free(b);
	return NULL;
}

/* The current version of f, up-ref'ed; NULL with err (LB_ENOTFOUND). */
static struct pubblob *
pubfile_get(struct web_pubfile *f, lb_err *err)
{
	struct pubblob *b = NULL, *nb;
	struct stat st;

	if (stat(f->path, &st) == -1) {
		lb_err_set(err, LB_ENOTFOUND, "%s is not published yet",
		    f->path);
		return NULL;
	}
	pthread_mutex_lock(&f->lock);
	b = f->cur;
	if (b == NULL || b->dev != st.st_dev || b->ino != st.st_ino ||
	    b->size != st.st_size || b->mtim.tv_sec != st.st_mtim.tv_sec ||
	    b->mtim.tv_nsec != st.st_mtim.tv_nsec) {
		/* loaded under the lock: one reader loads, the rest wait */
		if ((nb = blob_load(f, &st, err)) == NULL) {
			pthread_mutex_unlock(&f->lock);
			return NULL;
		}
		blob_put(f->cur);
		f->cur = b = nb;
	}
	atomic_fetch_add(&b->refs, 1);
	pthread_mutex_unlock(&f->lock);
	return b;
}

/* True when an If-None-Match list names etag (or is "*"). */
static bool
etag_matches(const char *inm, const char *etag)
{
	const char *p = inm, *q;
	size_t n, elen = strlen(etag);

	while (*p != '\0') {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		q = p + strcspn(p, ",");
		n = (size_t)(q - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == elen && memcmp(p, etag, n) == 0)
			return true;
		p = q;
	}
	return false;
}

/* 304 when the client's copy is current (RFC 9110 13.2.2 order). */
static bool
not_modified(struct web_req *r, const struct pubblob *b)
{
	const char *inm = MHD_lookup_connection_value(r->conn,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	const char *ims;
	struct tm tm;
	char *end;

	if (inm != NULL)
		return etag_matches(inm, b->etag);
	ims = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	if (ims == NULL)
		return false;
	memset(&tm, 0, sizeof(tm));
	end = strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL || *end != '\0')
		return false;
	return b->mtime <= timegm(&tm);
}

/* Sends f (or 304) with its caching headers. */
static enum MHD_Result
send_pubfile(struct web_req *r, struct web_pubfile *f, const char *ctype,
    const char *missing)
{
	struct pubblob *b;
	struct MHD_Response *resp;
	char lm[64], exp[64], cache[96];
	time_t now = time(NULL), expires;
	long max_age;
	bool nm, ok;
	lb_err err;

	lb_err_clear(&err);
	if ((b = pubfile_get(f, &err)) == NULL) {
		if (err.code == LB_ENOTFOUND)
			return web_send_error(r, 404, missing);
		return web_send_lb_err(r, &err);
	}
	expires = b->next_update != 0 ? b->next_update : now + CA_CRT_MAX_AGE;
	max_age = expires > now ? (long)(expires - now) : 0;
	web_http_date(b->mtime, lm, sizeof(lm));
	web_http_date(expires, exp, sizeof(exp));
	snprintf(cache, sizeof(cache), "public, no-transform, max-age=%ld",
	    max_age);
	nm = not_modified(r, b);
	resp = nm ? MHD_create_response_from_buffer(0, NULL,
	    MHD_RESPMEM_PERSISTENT) :
	    MHD_create_response_from_buffer_with_free_callback_cls(b->len,
	    b->der, blob_put, b);
	if (resp == NULL) {
		blob_put(b);
		return MHD_NO;
	}
	/* with a body, resp holds b's reference until MHD frees it */
	ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED,
	    lm) == MHD_YES &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG,
	    b->etag) == MHD_YES &&
	    MHD_add_response_header(resp, MHD_HTTP_HEADER_EXPIRES,
	    exp) == MHD_YES;
	if (nm)
		blob_put(b);
	if (!ok) {
		MHD_destroy_response(resp);
		return MHD_NO;
	}
	return web_queue(r, nm ? 304 : 200, resp, ctype, cache);
}

enum MHD_Result
web_pub_crl(struct web_req *r)
{
	static const char *const params[] = { NULL };
	lb_err err;

	lb_err_clear(&err);
	if (web_query_check(r, params, &err) == -1)
		return web_send_lb_err(r, &err);
	return send_pubfile(r, r->srv->crl_file, "application/pkix-crl",
	    "no CRL is published yet (pub/" CRL_FILE " is missing): issue "
	    "one with 'lockbox crl'");
}

/* The delta CRL ([crl] delta = yes), served exactly as the full CRL. */
enum MHD_Result
web_pub_delta_crl(struct web_req *r)
{
	static const char *const params[] = { NULL };
	lb_err err;

	lb_err_clear(&err);
	if (web_query_check(r, params, &err) == -1)
		return web_send_lb_err(r, &err);
	return send_pubfile(r, r->srv->delta_file, "application/pkix-crl",
	    "no delta CRL is published (delta CRLs are off: [crl] delta = "
	    "no in lockbox.conf)");
}

enum MHD_Result
web_pub_ca_cert(struct web_req *r)
{
	return send_pubfile(r, r->srv->ca_crt_file, "application/pkix-cert",
	    "the CA certificate is not published (pub/ca.crt is missing)");
}
