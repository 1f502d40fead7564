/*
 * crl.c - the full CRL of the CA key: built from the revoked certificates
 * that ca_revoked_foreach streams out of the certificate store, signed
 * through ca_sign_crl_der, written atomically to pub/ca.crl and recorded with
 * its number in crl_state (owned here) in one transaction, so that CRL
 * numbers only ever grow, even with the daemon and `lockbox crl` issuing
 * side by side.  With [crl] delta = yes a delta CRL (pub/delta.crl) goes
 * out with every full CRL, in the same transaction.
 *
 * The entries are DER-encoded here, straight from the rows, into one
 * buffer, sorted by serial, and handed to ca_sign_crl_der with the header
 * (an X509_CRL without entries): an OpenSSL object per entry, encoded
 * twice (once to sign, once to write), made a CRL of a million entries
 * take many seconds and several hundred MiB.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "crl/crl.h"

int
crl_conf_load(const core_conf *conf, crl_conf *out, lb_err *err)
{
	if (core_conf_get_long(conf, "crl", "skew", 600, 0, 86400, &out->skew,
	    err) == -1 ||
	    core_conf_get_long(conf, "crl", "validity", 7L * 86400, 3600,
	    366L * 86400, &out->validity, err) == -1 ||
	    core_conf_get_long(conf, "crl", "interval", 86400, 60,
	    365L * 86400, &out->interval, err) == -1 ||
	    core_conf_get_long(conf, "crl", "coalesce", 2, 0, 3600,
	    &out->coalesce, err) == -1 ||
	    core_conf_get_bool(conf, "crl", "delta", false, &out->delta,
	    err) == -1)
		return -1;
	if (out->interval >= out->validity)
		return lb_err_set(err, LB_EINVAL, "lockbox.conf: [crl] interval "
		    "(%lds) must be shorter than validity (%lds), or relying "
		    "parties hold an expired CRL between two", out->interval,
		    out->validity);
	return 0;
}

/*
 * What building one CRL needs beside its header: the entries, each one
 * complete DER revokedCertificates element, appended to one buffer in the
 * order the rows come, and their offsets for sorting by serial.
 */
struct entry {
	size_t off;
	size_t len;
};

struct build {
	X509_CRL *crl;            /* the header: no entries */
	unsigned char *buf;       /* the entries' DER, back to back */
	size_t len, cap;
	struct entry *ents;
	size_t n, ncap;
	int64_t count;
};

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Two decimal digits. */
static unsigned char *
put2(unsigned char *p, int v)
{
	*p++ = (unsigned char)('0' + v / 10 % 10);
	*p++ = (unsigned char)('0' + v % 10);
	return p;
}

/*
 * A Time as RFC 5280 wants it: UTCTime through 2049, GeneralizedTime
 * after (or always, with gen); tag and length included.  Returns the end.
 */
static unsigned char *
put_time(unsigned char *p, time_t t, bool gen)
{
	struct tm tm;
	int year;

	gmtime_r(&t, &tm);
	year = tm.tm_year + 1900;
	if (gen || year >= 2050) {
		*p++ = V_ASN1_GENERALIZEDTIME;
		*p++ = 15;
		p = put2(p, year / 100);
	} else {
		*p++ = V_ASN1_UTCTIME;
		*p++ = 13;
	}
	p = put2(p, year % 100);
	p = put2(p, tm.tm_mon + 1);
	p = put2(p, tm.tm_mday);
	p = put2(p, tm.tm_hour);
	p = put2(p, tm.tm_min);
	p = put2(p, tm.tm_sec);
	*p++ = 'Z';
	return p;
}

/*
 * One entry: SEQUENCE { serial INTEGER, revocationDate Time,
 * crlEntryExtensions { reasonCode, invalidityDate } }.  Every length fits
 * in one byte: a serial has at most 20 bytes (RFC 5280), the rest is
 * fixed.
 */
static int
add_entry(const char *serial, time_t revoked_at, int reason,
    time_t invalidity, void *arg)
{
	/* id-ce-cRLReasons (2.5.29.21), id-ce-invalidityDate (2.5.29.24) */
	static const unsigned char oid_reason[] = { 0x06, 0x03, 0x55, 0x1d,
	    0x15 };
	static const unsigned char oid_inv[] = { 0x06, 0x03, 0x55, 0x1d,
	    0x18 };
	struct build *b = arg;
	unsigned char e[128], *p, *q, ser[21] = { 0 };
	size_t slen = strlen(serial), nb, i, ncap, cap;
	int hi, lo;
	bool has_reason = reason > 0 && reason <= 10 && reason != 7;
	bool has_inv = reason == 1 && invalidity > 0;
	struct entry *ne;
	unsigned char *nbuf;

	if (slen == 0 || slen % 2 != 0 || slen / 2 > 20)
		return -1;
	nb = 0;
	for (i = 0; i < slen / 2; i++) {
		if ((hi = hexval(serial[2 * i])) < 0 ||
		    (lo = hexval(serial[2 * i + 1])) < 0)
			return -1;
		ser[nb] = (unsigned char)(hi << 4 | lo);
		/* DER: no leading zero bytes */
		if (nb == 0 && ser[0] == 0 && i + 1 < slen / 2)
			continue;
		nb++;
	}
	p = e + 2;
	*p++ = V_ASN1_INTEGER;
	if (ser[0] & 0x80) {
		*p++ = (unsigned char)(nb + 1);
		*p++ = 0x00;        /* positive */
	} else {
		*p++ = (unsigned char)nb;
	}
	memcpy(p, ser, nb);
	p += nb;
	p = put_time(p, revoked_at, false);
	if (has_reason || has_inv) {
		q = p;              /* the extensions' SEQUENCE */
		p += 2;
		if (has_reason) {
			*p++ = 0x30;
			*p++ = 10;
			memcpy(p, oid_reason, sizeof(oid_reason));
			p += sizeof(oid_reason);
			*p++ = V_ASN1_OCTET_STRING;
			*p++ = 3;
			*p++ = V_ASN1_ENUMERATED;
			*p++ = 1;
			*p++ = (unsigned char)reason;
		}
		if (has_inv) {
			*p++ = 0x30;
			*p++ = 24;
			memcpy(p, oid_inv, sizeof(oid_inv));
			p += sizeof(oid_inv);
			*p++ = V_ASN1_OCTET_STRING;
			*p++ = 17;
			p = put_time(p, invalidity, true);
		}
		q[0] = 0x30;
		q[1] = (unsigned char)(p - q - 2);
	}
	e[0] = 0x30;
	e[1] = (unsigned char)(p - e - 2);
	nb = (size_t)(p - e);
	if (b->len + nb > b->cap) {
		cap = b->cap == 0 ? 65536 : b->cap * 2;
		if ((nbuf = realloc(b->buf, cap)) == NULL)
			return -1;
		b->buf = nbuf;
		b->cap = cap;
	}
	if (b->n == b->ncap) {
		ncap = b->ncap == 0 ? 1024 : b->ncap * 2;
		if ((ne = reallocarray(b->ents, ncap, sizeof(*ne))) == NULL)
			return -1;
		b->ents = ne;
		b->ncap = ncap;
	}
	memcpy(b->buf + b->len, e, nb);
	b->ents[b->n].off = b->len;
	b->ents[b->n].len = nb;
	b->len += nb;
	b->n++;
	b->count++;
	return 0;
}

/* qsort_r: by serial number (DER INTEGER contents: length, then bytes). */
static int
entry_cmp(const void *a, const void *b, void *base)
{
	const unsigned char *x = (const unsigned char *)base +
	    ((const struct entry *)a)->off;
	const unsigned char *y = (const unsigned char *)base +
	    ((const struct entry *)b)->off;

	/* 30 LL 02 il <il bytes> */
	if (x[3] != y[3])
		return x[3] < y[3] ? -1 : 1;
	return memcmp(x + 4, y + 4, x[3]);
}

/*
 * The revokedCertificates SEQUENCE, entries sorted by serial, into *out
 * (free()); *out_len 0 and *out NULL when there are none.
 */
static int
revoked_der(struct build *b, unsigned char **out, size_t *out_len)
{
	unsigned char *r, *p;
	size_t i, h, n;

	*out = NULL;
	*out_len = 0;
	if (b->n == 0)
		return 0;
	qsort_r(b->ents, b->n, sizeof(*b->ents), entry_cmp, b->buf);
	/* tag + length bytes: short form below 128, else 0x8K + K bytes */
	h = 2;
	if (b->len >= 128)
		for (n = b->len; n > 0; n >>= 8)
			h++;
	if ((r = malloc(h + b->len)) == NULL)
		return -1;
	p = r;
	*p++ = 0x30;
	if (h == 2) {
		*p++ = (unsigned char)b->len;
	} else {
		*p++ = (unsigned char)(0x80 | (h - 2));
		for (i = h - 2; i > 0; i--)
			*p++ = (unsigned char)(b->len >> (8 * (i - 1)));
	}
	for (i = 0; i < b->n; i++) {
		memcpy(p, b->buf + b->ents[i].off, b->ents[i].len);
		p += b->ents[i].len;
	}
	*out = r;
	*out_len = (size_t)(p - r);
	return 0;
}

static void
build_free(struct build *b)
{
	X509_CRL_free(b->crl);
	free(b->buf);
	free(b->ents);
	memset(b, 0, sizeof(*b));
}

/* The CRL without entries: version, times, AKI, CRL number. */
static int
build_header(struct build *b, ca_ctx *ca, int64_t number, time_t this_update,
    time_t next_update, lb_err *err)
{
	const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(
	    ca_get0_cert(ca));
	AUTHORITY_KEYID *akid = NULL;
	ASN1_INTEGER *num = NULL;
	ASN1_TIME *t = NULL;
	int rc = -1;

	if (skid == NULL) {
		lb_err_set(err, LB_EINVAL, "the CA certificate has no subject "
		    "key identifier: CRLs need one for their authority key "
		    "identifier");
		goto out;
	}
	if ((b->crl = X509_CRL_new()) == NULL ||
	    X509_CRL_set_version(b->crl, X509_CRL_VERSION_2) != 1 ||
	    (t = ASN1_TIME_set(NULL, this_update)) == NULL ||
	    X509_CRL_set1_lastUpdate(b->crl, t) != 1 ||
	    ASN1_TIME_set(t, next_update) == NULL ||
	    X509_CRL_set1_nextUpdate(b->crl, t) != 1 ||
	    (akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_dup(skid)) == NULL ||
	    X509_CRL_add1_ext_i2d(b->crl, NID_authority_key_identifier, akid,
	    0, 0) != 1 ||
	    (num = ASN1_INTEGER_new()) == NULL ||
	    ASN1_INTEGER_set_int64(num, number) != 1 ||
	    X509_CRL_add1_ext_i2d(b->crl, NID_crl_number, num, 0, 0) != 1)
		goto fail;
	rc = 0;
	goto out;
fail:
	log_openssl("CRL header");
	lb_err_set(err, LB_EINTERNAL, "cannot build the CRL");
out:
	ASN1_INTEGER_free(num);
	AUTHORITY_KEYID_free(akid);
	ASN1_TIME_free(t);
	return rc;
}

/*
 * A delta CRL's extras (RFC 5280 5.2.4): a critical deltaCRLIndicator
 * naming the base CRL number.
 */
static int
add_delta_indicator(X509_CRL *crl, int64_t base, lb_err *err)
{
	ASN1_INTEGER *num = NULL;
	int rc = -1;

	if ((num = ASN1_INTEGER_new()) == NULL ||
	    ASN1_INTEGER_set_int64(num, base) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_delta_crl, num, 1, 0) != 1) {
		log_openssl("deltaCRLIndicator");
		lb_err_set(err, LB_EINTERNAL, "cannot build the delta CRL");
		goto out;
	}
	rc = 0;
out:
	ASN1_INTEGER_free(num);
	return rc;
}

/* The full CRL's freshestCRL (RFC 5280 5.2.6): where the delta CRL is. */
static int
add_freshest(X509_CRL *crl, ca_ctx *ca, lb_err *err)
{
	X509_EXTENSION *ext = NULL;
	char val[600];
	int rc = -1;

	snprintf(val, sizeof(val), "URI:%s/" CRL_DELTA_FILE,
	    core_conf_get(ca_get0_conf(ca), "ca", "base_url",
	    "http://127.0.0.1:8080"));
	if ((ext = X509V3_EXT_conf_nid(NULL, NULL, NID_freshest_crl,
	    val)) == NULL || X509_CRL_add_ext(crl, ext, -1) != 1) {
		log_openssl("freshestCRL");
		lb_err_set(err, LB_EINTERNAL, "cannot add freshestCRL to the "
		    "CRL");
		goto out;
	}
	rc = 0;
out:
	X509_EXTENSION_free(ext);
	return rc;
}

/* RFC 5280 5.3.1: reasonCode removeFromCRL, used only in delta CRLs. */
#define REASON_REMOVE_FROM_CRL 8

/*
 * The serials on the new full CRL, packed back to back (NUL-terminated)
 * and sorted, so that a delta can tell which of the base's entries have
 * dropped off since.
 */
struct serials {
	char *buf;
	size_t len, cap;
	size_t *off;        /* into buf */
	size_t n, ncap;
};

static int
serials_add(struct serials *s, const char *serial)
{
	size_t l = strlen(serial) + 1, cap, ncap, *noff;
	char *nbuf;

	if (l > s->cap - s->len) {
		cap = s->cap == 0 ? 65536 : s->cap;
		while (l > cap - s->len)
			cap *= 2;
		if ((nbuf = realloc(s->buf, cap)) == NULL)
			return -1;
		s->buf = nbuf;
		s->cap = cap;
	}
	if (s->n == s->ncap) {
		ncap = s->ncap == 0 ? 1024 : s->ncap * 2;
		if ((noff = reallocarray(s->off, ncap, sizeof(*noff))) == NULL)
			return -1;
		s->off = noff;
		s->ncap = ncap;
	}
	memcpy(s->buf + s->len, serial, l);
	s->off[s->n++] = s->len;
	s->len += l;
	return 0;
}

static int
serial_cmp(const void *a, const void *b, void *buf)
{
	return strcmp((const char *)buf + *(const size_t *)a,
	    (const char *)buf + *(const size_t *)b);
}

static bool
serials_has(const struct serials *s, const char *serial)
{
	size_t lo = 0, hi = s->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(serial, s->buf + s->off[mid])) == 0)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

static void
serials_free(struct serials *s)
{
	free(s->buf);
	free(s->off);
	memset(s, 0, sizeof(*s));
}

/*
 * ca_revoked_foreach filter for a delta CRL: revoked since the base; every
 * serial of the new full CRL is noted in keep.
 */
struct since {
	struct build *b;
	time_t since;
	struct serials keep;
};

static int
add_entry_since(const char *serial, time_t revoked_at, int reason,
    time_t invalidity, void *arg)
{
	struct since *s = arg;

	if (serials_add(&s->keep, serial) == -1)
		return -1;
	if (revoked_at < s->since)
		return 0;
	return add_entry(serial, revoked_at, reason, invalidity, s->b);
}

/*
 * ca_revoked_foreach filter over what the base CRL listed (revoked by
 * the time it was issued, unexpired then): an entry that is not on the
 * new full CRL has expired since and gets removeFromCRL, so that a client
 * combining base and delta drops it too.
 */
static int
add_removal(const char *serial, time_t revoked_at, int reason,
    time_t invalidity, void *arg)
{
	struct since *s = arg;

	(void)reason;
	(void)invalidity;
	if (revoked_at > s->since || serials_has(&s->keep, serial))
		return 0;
	return add_entry(serial, revoked_at, REASON_REMOVE_FROM_CRL, 0, s->b);
}

/*
 * Builds and signs one CRL: the full one (base < 0) or a delta naming
 * base, with the revocations at or after since and, when base_at (the
 * time the base CRL was issued) is not 0, a removeFromCRL entry for each
 * certificate the base listed that has expired since.  *der is free()'d
 * by the caller; *entries counts them.
 */
static int
build_crl(ca_ctx *ca, sqlite3 *db, const crl_conf *cc, const crl_info *ci,
    time_t now, int64_t base, time_t since, time_t base_at,
    unsigned char **der, size_t *der_len, int64_t *entries, lb_err *err)
{
	struct build b;
	struct since s;
	unsigned char *rev = NULL;
	size_t rev_len = 0;
	int rc = -1;

	memset(&b, 0, sizeof(b));
	memset(&s, 0, sizeof(s));
	s.b = &b;
	s.since = since;
	if (build_header(&b, ca, ci->number, ci->this_update, ci->next_update,
	    err) == -1)
		goto out;
	if (base >= 0 ? add_delta_indicator(b.crl, base, err) == -1 :
	    (cc->delta && add_freshest(b.crl, ca, err) == -1))
		goto out;
	if (base >= 0 ? ca_revoked_foreach(db, now, add_entry_since, &s,
	    err) == -1 : ca_revoked_foreach(db, now, add_entry, &b,
	    err) == -1)
		goto out;
	if (base >= 0 && base_at > 0 && base_at < now) {
		/* what the base listed, against the new full CRL */
		if (s.keep.n > 0)
			qsort_r(s.keep.off, s.keep.n, sizeof(*s.keep.off),
			    serial_cmp, s.keep.buf);
		s.since = base_at;
		if (ca_revoked_foreach(db, base_at, add_removal, &s, err) == -1)
			goto out;
	}
	serials_free(&s.keep);
	*entries = b.count;
	if (revoked_der(&b, &rev, &rev_len) == -1) {
		lb_err_set(err, LB_EINTERNAL, "out of memory for the CRL");
		goto out;
	}
	/* the entries are in rev now: keep one copy */
	free(b.buf);
	b.buf = NULL;
	free(b.ents);
	b.ents = NULL;
	if (ca_sign_crl_der(ca, b.crl, rev, rev_len, der, der_len, err) == -1)
		goto out;
	rc = 0;
out:
	serials_free(&s.keep);
	free(rev);
	build_free(&b);
	return rc;
}

/*
 * Publishes (with delta) or removes (without) pub/delta.crl, so that a
 * switched-off delta CRL does not linger at its URL.
 */
static int
write_delta(ca_ctx *ca, const unsigned char *der, size_t len, lb_err *err)
{
	char *path = NULL;
	lb_err ferr;
	int rc = -1;

	lb_err_clear(&ferr);
	if ((path = core_path(ca_get0_dir(ca), CA_PUB_DIR "/"
	    CRL_DELTA_FILE)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (der == NULL) {
		if (unlink(path) == -1 && errno != ENOENT) {
			lb_err_set(err, LB_EINTERNAL, "cannot remove %s: %s", path,
			    strerror(errno));
			goto out;
		}
	} else if (core_file_write(path, der, len, 0644, false, &ferr) == -1) {
		lb_err_set(err, ferr.code, "cannot publish the delta CRL: %s",
		    ferr.msg);
		goto out;
	}
	rc = 0;
out:
	free(path);
	return rc;
}

static int
save_state(sqlite3 *db, const crl_info *ci, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (core_db_prepare(db, "INSERT INTO crl_state (id, number, "
	    "this_update, next_update, issued, entries, der_sha256) VALUES "
	    "(1, ?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO UPDATE SET number "
	    "= ?1, this_update = ?2, next_update = ?3, issued = ?4, entries "
	    "= ?5, der_sha256 = ?6", &st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, ci->number);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)ci->this_update);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)ci->next_update);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)ci->issued);
	sqlite3_bind_int64(st, 5, ci->entries);
	sqlite3_bind_text(st, 6, ci->sha256, -1, SQLITE_STATIC);
	if (core_db_exec(db, &st, "record the CRL", err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Inside or outside a transaction: one upsert. */
static int
record_publication(sqlite3 *db, const char *target, int64_t number,
    time_t now, const char *error, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_prepare_v2(db, error == NULL ?
	    "INSERT INTO crl_publications (target, number, published, "
	    "attempted, last_error) VALUES (?1, ?2, ?3, ?3, NULL) ON "
	    "CONFLICT (target) DO UPDATE SET number = ?2, published = ?3, "
	    "attempted = ?3, last_error = NULL" :
	    "INSERT INTO crl_publications (target, number, published, "
	    "attempted, last_error) VALUES (?1, NULL, NULL, ?3, ?4) ON "
	    "CONFLICT (target) DO UPDATE SET attempted = ?3, last_error = "
	    "?4", -1, &st, NULL) != SQLITE_OK) {
		core_db_fail(db, "record a CRL publication", err);
		goto out;
	}
	sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
	if (error == NULL)
		sqlite3_bind_int64(st, 2, number);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
	if (error != NULL)
		sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
	if (core_db_exec(db, &st, "record a CRL publication", err) == -1)
		goto out;
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
crl_publication_record(sqlite3 *db, const char *target, int64_t number,
    time_t now, const char *error, lb_err *err)
{
	return record_publication(db, target, number, now, error, err);
}

int
crl_issue(ca_ctx *ca, sqlite3 *db, const crl_conf *cc, time_t now,
    const char *actor, crl_info *out, lb_err *err)
{
	crl_info ci, prev;
	unsigned char *der = NULL, *delta = NULL;
	size_t delta_len = 0;
	int64_t delta_entries = 0;
	char *path = NULL, num[32], detail[160], ts[32];
	int rc = -1;
	bool in_tx = false, wrote = false;
	lb_err ferr;

	memset(&ci, 0, sizeof(ci));
	lb_err_clear(&ferr);
	if ((path = core_path(ca_get0_dir(ca), CA_PUB_DIR "/" CRL_FILE)) ==
	    NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	/* one writer at a time: the number and the file move together */
	if (core_db_begin(db, err) == -1)
		goto out;
	in_tx = true;
	if (crl_current(db, &prev, err) == -1)
		goto out;
	ci.number = prev.number + 1;
	ci.issued = now;
	ci.this_update = now - cc->skew;
	ci.next_update = ci.this_update + cc->validity;
	if (build_crl(ca, db, cc, &ci, now, -1, 0, 0, &der, &ci.der_len,
	    &ci.entries, err) == -1)
		goto out;
	/*
	 * The delta goes out with every full CRL, with the same number (RFC
	 * 5280 5.2.3: issued together, they share it), based on the previous
	 * full CRL: a relying party holding that one learns of everything
	 * revoked since its thisUpdate (revocations are committed with a
	 * revoked_at no earlier than that), and of everything it listed that
	 * has expired since (removeFromCRL).  The first CRL is its own base.
	 */
	if (cc->delta && build_crl(ca, db, cc, &ci, now, prev.number > 0 ?
	    prev.number : ci.number, prev.number > 0 ? prev.this_update :
	    ci.this_update, prev.number > 0 ? prev.issued : 0, &delta,
	    &delta_len, &delta_entries, err) == -1)
		goto out;
	if (write_delta(ca, delta, delta_len, err) == -1)
		goto out;
	if (core_sha256_hex(der, ci.der_len, ci.sha256) == -1) {
		lb_err_set(err, LB_EINTERNAL, "cannot hash the CRL");
		goto out;
	}
	if (core_file_write(path, der, ci.der_len, 0644, false, &ferr) == -1) {
		lb_err_set(err, ferr.code, "cannot publish the CRL: %s",
		    ferr.msg);
		goto out;
	}
	wrote = true;
	snprintf(num, sizeof(num), "%" PRId64, ci.number);
	core_time_fmt(ci.this_update, ts, sizeof(ts));
	if (cc->delta)
		snprintf(detail, sizeof(detail), "thisUpdate=%s entries=%"
		    PRId64 " delta=%" PRId64 " base=%" PRId64, ts, ci.entries,
		    delta_entries, prev.number > 0 ? prev.number : ci.number);
	else
		snprintf(detail, sizeof(detail), "thisUpdate=%s entries=%"
		    PRId64, ts, ci.entries);
	if (save_state(db, &ci, err) == -1 ||
	    record_publication(db, "web", ci.number, now, NULL, err) == -1 ||
	    core_audit_append(db, actor, "crl.issue", num, detail, err) == -1 ||
	    core_db_commit(db, err) == -1)
		goto out;
	in_tx = false;
	if (out != NULL)
		*out = ci;
	rc = 0;
out:
	if (in_tx)
		core_db_rollback(db);
	if (rc == -1 && in_tx && !wrote && ferr.code != LB_OK)
		record_publication(db, "web", 0, now, ferr.msg, NULL);
	free(der);
	free(delta);
	free(path);
	return rc;
}

int
crl_current(sqlite3 *db, crl_info *out, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	const char *h;
	int r, rc = -1;

	memset(out, 0, sizeof(*out));
	if (sqlite3_prepare_v2(db, "SELECT number, this_update, next_update, "
	    "issued, entries, der_sha256 FROM crl_state WHERE id = 1", -1,
	    &st, NULL) != SQLITE_OK) {
		core_db_fail(db, "read the CRL state", err);
		goto out;
	}
	r = sqlite3_step(st);
	if (r == SQLITE_ROW) {
		out->number = (int64_t)sqlite3_column_int64(st, 0);
		out->this_update = (time_t)sqlite3_column_int64(st, 1);
		out->next_update = (time_t)sqlite3_column_int64(st, 2);
		out->issued = (time_t)sqlite3_column_int64(st, 3);
		out->entries = (int64_t)sqlite3_column_int64(st, 4);
		if ((h = (const char *)sqlite3_column_text(st, 5)) != NULL)
			snprintf(out->sha256, sizeof(out->sha256), "%s", h);
	} else if (r != SQLITE_DONE) {
		core_db_fail(db, "read the CRL state", err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
crl_publication_foreach(sqlite3 *db,
    int (*fn)(const crl_publication *p, void *arg), void *arg, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	crl_publication p;
	int r, rc = -1;

	if (sqlite3_prepare_v2(db, "SELECT target, number, published, "
	    "attempted, last_error FROM crl_publications ORDER BY target",
	    -1, &st, NULL) != SQLITE_OK) {
		core_db_fail(db, "read CRL publications", err);
		goto out;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		p.target = (const char *)sqlite3_column_text(st, 0);
		p.number = (int64_t)sqlite3_column_int64(st, 1);
		p.published = (time_t)sqlite3_column_int64(st, 2);
		p.attempted = (time_t)sqlite3_column_int64(st, 3);
		p.last_error = (const char *)sqlite3_column_text(st, 4);
		if (p.target == NULL)
			continue;
		if (fn(&p, arg) != 0)
			break;
	}
	if (r != SQLITE_DONE && r != SQLITE_ROW) {
		core_db_fail(db, "read CRL publications", err);
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}
