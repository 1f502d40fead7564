/*
 * crl_sign.c - what crl/ needs from the CA: the CA key's signature over a
 * CRL (in the signer process when the daemon runs one: ca_sign_crl_der
 * sends it there), the revoked certificates still within their validity, streamed
 * from the certificate store, and the revocation generation: a counter
 * ca_revoke_in_tx bumps, so that a daemon notices revocations made by
 * another process with one cheap read.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"

#define GENERATION_SETTING "revocation.generation"

int
ca_sign_crl(ca_ctx *ca, X509_CRL *crl, lb_err *err)
{
	const ASN1_TIME *last, *next;

	if (ca->key == NULL)
		return lb_err_set(err, LB_EINTERNAL, ca->signer != NULL ?
		    "the CA key is in the signer process: use ca_sign_crl_der" :
		    "the CA key is not loaded");
	/* the profile of every CRL this CA signs: v2, both times, forward */
	if (X509_CRL_get_version(crl) != X509_CRL_VERSION_2)
		return lb_err_set(err, LB_EINVAL, "refusing to sign a CRL that "
		    "is not version 2");
	last = X509_CRL_get0_lastUpdate(crl);
	next = X509_CRL_get0_nextUpdate(crl);
	if (last == NULL || next == NULL || ASN1_TIME_compare(last, next) >= 0)
		return lb_err_set(err, LB_EINVAL, "refusing to sign a CRL "
		    "without a nextUpdate after its thisUpdate");
	if (X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) !=
	    1 || X509_CRL_sign(crl, ca->key, ca_sig_md(ca->key)) <= 0) {
		log_openssl("ca_sign_crl");
		return lb_err_set(err, LB_EINTERNAL, "cannot sign the CRL");
	}
	return 0;
}

int
ca_revoked_foreach(sqlite3 *db, time_t now,
    int (*fn)(const char *serial, time_t revoked_at, int reason,
    time_t invalidity, void *arg), void *arg, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	const char *serial;
	int rc = -1, r;

	/* expired certificates drop off: RFC 5280 5.1.2.6 allows it and it
	 * keeps the CRL bounded */
	if (core_db_prepare(db, "SELECT serial, revoked, reason, invalidity "
	    "FROM certificates WHERE status = 'revoked' AND not_after >= "
	    "?", &st, err) == -1)
		goto out;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		serial = (const char *)sqlite3_column_text(st, 0);
		if (serial == NULL)
			continue;
		if (fn(serial, (time_t)sqlite3_column_int64(st, 1),
		    sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 :
		    sqlite3_column_int(st, 2),
		    (time_t)sqlite3_column_int64(st, 3), arg) != 0) {
			lb_err_set(err, LB_EINTERNAL, "cannot add a revoked "
			    "certificate to the CRL");
			goto out;
		}
	}
	rc = core_db_rows_done(db, r, "read revoked certificates", err);
out:
	sqlite3_finalize(st);
	return rc;
}

int
ca_revocation_generation(sqlite3 *db, int64_t *gen, lb_err *err)
{
	return core_setting_get(db, GENERATION_SETTING, 0, gen, err);
}

int
ca_revocation_bump(sqlite3 *db, lb_err *err)
{
	return core_setting_bump(db, GENERATION_SETTING, err);
}

/* Bytes of a DER length field for a content of n bytes. */
static size_t
der_len_size(size_t n)
{
	size_t k = 1;

	if (n < 128)
		return 1;
	while (n > 0) {
		k++;
		n >>= 8;
	}
	return k;
}

/* Writes tag and length of a content of n bytes; returns the bytes used. */
static size_t
der_header(unsigned char *p, unsigned char tag, size_t n)
{
	size_t k = der_len_size(n), i;

	p[0] = tag;
	if (k == 1) {
		p[1] = (unsigned char)n;
		return 2;
	}
	p[1] = (unsigned char)(0x80 | (k - 1));
	for (i = 0; i < k - 1; i++)
		p[1 + k - 1 - i] = (unsigned char)(n >> (8 * i));
	return 1 + k;
}

/*
 * Where the crlExtensions ([0]) start inside the content of a
 * TBSCertList (the content's end when there are none); -1 when malformed.
 */
static long
ext_offset(const unsigned char *c, long clen)
{
	const unsigned char *p = c, *start;
	long n;
	int tag, cls, inf;

	while (p < c + clen) {
		start = p;
		inf = ASN1_get_object(&p, &n, &tag, &cls, clen - (p - c));
		if (inf & 0x80)
			return -1;
		if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 0)
			return start - c;
		p += n;
	}
	return clen;
}

int
ca_sign_crl_der(ca_ctx *ca, X509_CRL *head, const unsigned char *revoked,
    size_t rlen, unsigned char **out, size_t *out_len, lb_err *err)
{
	unsigned char *tbs0 = NULL, *p, *buf = NULL, *alg = NULL;
	const unsigned char *c;
	const ASN1_BIT_STRING *psig;
	const X509_ALGOR *palg;
	EVP_MD_CTX *mctx = NULL;
	long clen, off, n;
	size_t tbslen, siglen = 0, total, h, hl;
	int len, alglen, tag, cls, rc = -1;

	*out = NULL;
	*out_len = 0;
	if (ca->signer != NULL)
		return ca_signer_sign_crl(ca, head, revoked, rlen, out, out_len,
		    err);
	/* the header: checked, issuer set, algorithm chosen, by the same
	 * path every CRL takes */
	if (ca_sign_crl(ca, head, err) == -1)
		return -1;
	if (rlen > 0) {
		c = revoked;
		if ((ASN1_get_object(&c, &n, &tag, &cls, (long)rlen) & 0x80) ||
		    tag != V_ASN1_SEQUENCE || (size_t)(c - revoked) +
		    (size_t)n != rlen)
			return lb_err_set(err, LB_EINVAL, "refusing to sign "
			    "malformed revokedCertificates");
	}
	if ((len = i2d_re_X509_CRL_tbs(head, &tbs0)) <= 0 ||
	    (alglen = (X509_CRL_get0_signature(head, &psig, &palg),
	    i2d_X509_ALGOR(palg, &alg))) <= 0)
		goto ossl;
	c = tbs0;
	if ((ASN1_get_object(&c, &clen, &tag, &cls, len) & 0x80) ||
	    tag != V_ASN1_SEQUENCE || (off = ext_offset(c, clen)) < 0) {
		lb_err_set(err, LB_EINTERNAL, "cannot parse the CRL header");
		goto out;
	}
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(mctx, NULL, ca_sig_md(ca->key), NULL,
	    ca->key) != 1 ||
	    EVP_DigestSign(mctx, NULL, &siglen, NULL, 0) != 1)
		goto ossl;
	/* tbs = SEQUENCE { header fields, revoked, crlExtensions } */
	tbslen = 1 + der_len_size((size_t)clen + rlen) + (size_t)clen + rlen;
	/* room for the outer header (at most 6 bytes) before the tbs */
	if ((buf = malloc(6 + tbslen + (size_t)alglen + 6 + siglen + 1)) ==
	    NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory for the CRL");
		goto out;
	}
	p = buf + 6;
	p += der_header(p, 0x30, (size_t)clen + rlen);
	memcpy(p, c, (size_t)off);
	p += off;
	if (rlen > 0)
		memcpy(p, revoked, rlen);
	p += rlen;
	memcpy(p, c + off, (size_t)(clen - off));
	p += clen - off;
	if (EVP_DigestSign(mctx, p + alglen + 6, &siglen, buf + 6,
	    tbslen) != 1)
		goto ossl;
	memcpy(p, alg, (size_t)alglen);
	p += alglen;
	hl = der_header(p, 0x03, siglen + 1);
	/* the signature was written 6 bytes past the alg: slide it home */
	memmove(p + hl + 1, p + 6, siglen);
	p[hl] = 0x00; /* no unused bits */
	p += hl + 1 + siglen;
	total = (size_t)(p - (buf + 6));
	h = 1 + der_len_size(total);
	der_header(buf + 6 - h, 0x30, total);
	memmove(buf, buf + 6 - h, h + total);
	*out = buf;
	*out_len = h + total;
	buf = NULL;
	rc = 0;
	goto out;
ossl:
	log_openssl("ca_sign_crl_der");
	lb_err_set(err, LB_EINTERNAL, "cannot sign the CRL");
out:
	EVP_MD_CTX_free(mctx);
	OPENSSL_free(tbs0);
	OPENSSL_free(alg);
	free(buf);
	return rc;
}
