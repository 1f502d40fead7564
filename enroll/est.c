/*
 * est.c - the bodies EST (RFC 7030, RFC 8951) moves over HTTP, built and
 * parsed here for both ends: the server's handlers and the enrollment
 * client (`lockbox enroll`).  Base64 PKCS#10 requests, certs-only SignedData, the
 * csrattrs answer, the server-generated key as PKCS#8 or EnvelopedData,
 * and the multipart/mixed body that carries a key beside its certificate.
 *
 * Everything here parses outside input: every parser caps its input
 * before it allocates, answers malformed input with LB_EINVAL and too
 * much of it with LB_ETOOBIG, and cleanses whatever held a private key.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/cms.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "archive/archive.h"
#include "enroll/enroll.h"

/* A certs-only response (a CA chain) is small; 1 MiB is generous. */
#define CERTS_MAX ((size_t)1024 * 1024)
/* A multipart body carries a key and a certificate or two. */
#define MULTIPART_MAX ((size_t)1024 * 1024)
/* Header lines per part and the length of a Content-Type we keep. */
#define PART_HEADERS_MAX 32
#define CTYPE_MAX 256
/* RFC 2046 section 5.1.1: boundaries are 1 to 70 characters. */
#define BOUNDARY_MAX 70
/* A subject key identifier is a hash: 20 bytes usually, 64 at most. */
#define KEY_ID_MAX 64
/* OID of id-aa-asymmDecryptKeyID (RFC 7030 section 4.4.1.2). */
#define OID_DECRYPT_KEY_ID "1.2.840.113549.1.9.16.2.54"

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Base64 of der in lines of 64 characters, each ending in CRLF (RFC 7030
 * bodies), into a malloc'ed NUL-terminated string; the scratch copy is
 * cleansed (der may be a key).
 */
static int
b64_encode_crlf(const unsigned char *der, size_t len, char **out,
    size_t *outlen, lb_err *err)
{
	if (len == 0 || core_b64_encode(der, len, CORE_B64_LINES, out,
	    outlen) == -1)
		return lb_err_set(err, LB_EINTERNAL, "cannot encode base64 "
		    "(nothing to encode, too much, or out of memory)");
	return 0;
}

/* First non-whitespace byte is '-': a PEM block. */
static bool
looks_pem(const unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!is_space(buf[i]))
			return buf[i] == '-';
	return false;
}

X509_REQ *
enroll_est_csr_decode(const unsigned char *body, size_t len, lb_err *err)
{
	unsigned char *der = NULL;
	size_t dlen = 0;
	X509_REQ *req = NULL;

	if (body == NULL || len == 0) {
		lb_err_set(err, LB_EINVAL, "empty request body: send the "
		    "base64 of a PKCS#10 request");
		return NULL;
	}
	if (len > ENROLL_BODY_MAX) {
		lb_err_set(err, LB_ETOOBIG, "request body larger than %zu "
		    "bytes", ENROLL_BODY_MAX);
		return NULL;
	}
	if (looks_pem(body, len))
		return ca_csr_parse(body, len, err);
	if (core_b64_decode((const char *)body, len, len, CORE_B64_WS,
	    &der, &dlen) == -1) {
		lb_err_set(err, LB_EINVAL, "request body is not base64: send "
		    "the base64 of a PKCS#10 request (RFC 7030 section 4.2.1)");
		return NULL;
	}
	req = ca_csr_parse(der, dlen, err);
	free(der);
	return req;
}

int
enroll_est_certs_only(X509 *const *certs, size_t n, char **out,
    size_t *outlen, lb_err *err)
{
	PKCS7 *p7 = NULL;
	unsigned char *der = NULL;
	size_t i;
	int dlen, rc = -1;

	*out = NULL;
	*outlen = 0;
	if (certs == NULL || n == 0)
		return lb_err_set(err, LB_EINTERNAL, "certs-only response "
		    "without certificates");
	/*
	 * PKCS#7 rather than CMS: CMS encodes certificates as a DER SET OF
	 * and so sorts them, while the order (the chain's) must survive.
	 */
	if ((p7 = PKCS7_new()) == NULL ||
	    PKCS7_set_type(p7, NID_pkcs7_signed) != 1 ||
	    PKCS7_content_new(p7, NID_pkcs7_data) != 1 ||
	    PKCS7_set_detached(p7, 1) != 1) {
		log_openssl("PKCS7_set_type");
		lb_err_set(err, LB_EINTERNAL, "cannot build a certs-only "
		    "response");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (certs[i] == NULL || PKCS7_add_certificate(p7, certs[i]) != 1) {
			log_openssl("PKCS7_add_certificate");
			lb_err_set(err, LB_EINTERNAL, "cannot build a "
			    "certs-only response");
			goto out;
		}
	}
	if ((dlen = i2d_PKCS7(p7, &der)) <= 0) {
		log_openssl("i2d_PKCS7");
		lb_err_set(err, LB_EINTERNAL, "cannot encode a certs-only "
		    "response");
		goto out;
	}
	rc = b64_encode_crlf(der, (size_t)dlen, out, outlen, err);
out:
	OPENSSL_free(der);
	PKCS7_free(p7);
	return rc;
}

STACK_OF(X509) *
enroll_est_certs_parse(const unsigned char *body, size_t len, lb_err *err)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t dlen;
	PKCS7 *p7 = NULL;
	STACK_OF(X509) *in, *certs = NULL;
	int i;

	if (body == NULL || len == 0) {
		lb_err_set(err, LB_EINVAL, "empty certs-only response");
		return NULL;
	}
	if (len > CERTS_MAX) {
		lb_err_set(err, LB_ETOOBIG, "certs-only response larger than "
		    "1 MiB");
		return NULL;
	}
	if (core_b64_decode((const char *)body, len, len, CORE_B64_WS,
	    &der, &dlen) == 0) {
		p = der;
	} else {
		p = body;
		dlen = len;
	}
	if ((p7 = d2i_PKCS7(NULL, &p, (long)dlen)) == NULL ||
	    p != (der != NULL ? der : body) + dlen ||
	    !PKCS7_type_is_signed(p7) || p7->d.sign == NULL) {
		log_openssl("d2i_PKCS7");
		lb_err_set(err, LB_EINVAL, "not a certs-only CMS SignedData "
		    "(RFC 7030 section 4.1.3)");
		goto out;
	}
	in = p7->d.sign->cert;
	if (in == NULL || sk_X509_num(in) <= 0) {
		lb_err_set(err, LB_EINVAL, "certs-only response carries no "
		    "certificate");
		goto out;
	}
	if ((certs = sk_X509_new_null()) == NULL)
		goto oom;
	for (i = 0; i < sk_X509_num(in); i++) {
		X509 *x = sk_X509_value(in, i);

		if (X509_up_ref(x) != 1)
			goto oom;
		if (sk_X509_push(certs, x) <= 0) {
			X509_free(x);
			goto oom;
		}
	}
	goto out;
oom:
	lb_err_set(err, LB_EINTERNAL, "out of memory");
	sk_X509_pop_free(certs, X509_free);
	certs = NULL;
out:
	ERR_clear_error();
	PKCS7_free(p7);
	free(der);
	return certs;
}

/* ------------------------------------------------------------------ */
/* csrattrs                                                            */

/* Growing DER buffer for the elements of the CsrAttrs SEQUENCE. */
struct derbuf {
	unsigned char *p;
	size_t len, cap;
	bool failed;
};

static void
der_add(struct derbuf *b, const unsigned char *d, int n)
{
	unsigned char *np;

	if (b->failed || n <= 0) {
		b->failed = true;
		return;
	}
	if (b->len + (size_t)n > b->cap) {
		size_t cap = (b->len + (size_t)n) * 2;

		if ((np = realloc(b->p, cap)) == NULL) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, (size_t)n);
	b->len += (size_t)n;
}

/* AttrOrOID: a bare OBJECT IDENTIFIER. */
static void
der_add_oid(struct derbuf *b, int nid)
{
	unsigned char *d = NULL;
	int n = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &d);

	der_add(b, d, n);
	OPENSSL_free(d);
}

/* AttrOrOID: an Attribute whose values are OBJECT IDENTIFIERs. */
static void
der_add_attr(struct derbuf *b, int nid, const int *vals, size_t nvals)
{
	X509_ATTRIBUTE *a = NULL;
	unsigned char *d = NULL;
	size_t i;
	int n = -1;

	if ((a = X509_ATTRIBUTE_new()) == NULL ||
	    X509_ATTRIBUTE_set1_object(a, OBJ_nid2obj(nid)) != 1)
		goto out;
	for (i = 0; i < nvals; i++)
		if (X509_ATTRIBUTE_set1_data(a, V_ASN1_OBJECT,
		    OBJ_nid2obj(vals[i]), -1) != 1)
			goto out;
	n = i2d_X509_ATTRIBUTE(a, &d);
out:
	der_add(b, d, n);
	OPENSSL_free(d);
	X509_ATTRIBUTE_free(a);
}

int
enroll_est_csrattrs(const char *const *key_types, size_t n, char **out,
    size_t *outlen, lb_err *err)
{
	struct derbuf b = { 0 };
	unsigned char *seq = NULL, *p;
	int curves[2], ext[1] = { NID_subject_alt_name };
	size_t i, ncurves = 0;
	bool rsa = false, p256 = false, p384 = false;
	int total, rc = -1;

	*out = NULL;
	*outlen = 0;
	for (i = 0; i < n; i++) {
		switch (ca_key_type_parse(key_types[i])) {
		case CA_KEY_RSA2048:
		case CA_KEY_RSA3072:
		case CA_KEY_RSA4096:
			rsa = true;
			break;
		case CA_KEY_ECP256:
			p256 = true;
			break;
		case CA_KEY_ECP384:
			p384 = true;
			break;
		case CA_KEY_NONE:
			return lb_err_set(err, LB_EINVAL, "csrattrs: unknown "
			    "key type '%s'", key_types[i] ? key_types[i] : "");
		}
	}
	if (p256)
		curves[ncurves++] = NID_X9_62_prime256v1;
	if (p384)
		curves[ncurves++] = NID_secp384r1;
	/* RFC 8951 section 3.2: the key types */
	if (rsa)
		der_add_oid(&b, NID_rsaEncryption);
	if (ncurves > 0)
		der_add_attr(&b, NID_X9_62_id_ecPublicKey, curves, ncurves);
	/* the signature algorithms (RFC 7030 section 4.5.2) */
	if (ncurves > 0)
		der_add_oid(&b, NID_ecdsa_with_SHA256);
	if (rsa)
		der_add_oid(&b, NID_sha256WithRSAEncryption);
	/* the e-mail address goes in a subjectAltName extension */
	der_add_attr(&b, NID_ext_req, ext, 1);
	if (b.failed || b.len > 4096) {
		log_openssl("enroll_est_csrattrs");
		lb_err_set(err, LB_EINTERNAL, "cannot encode csrattrs");
		goto out;
	}
	total = ASN1_object_size(1, (int)b.len, V_ASN1_SEQUENCE);
	if (total <= 0 || (seq = malloc((size_t)total)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	p = seq;
	ASN1_put_object(&p, 1, (int)b.len, V_ASN1_SEQUENCE,
	    V_ASN1_UNIVERSAL);
	memcpy(p, b.p, b.len);
	rc = b64_encode_crlf(seq, (size_t)total, out, outlen, err);
out:
	free(seq);
	free(b.p);
	return rc;
}

int
enroll_est_decrypt_key_id(X509_REQ *req, unsigned char **id, size_t *len,
    lb_err *err)
{
	ASN1_OBJECT *obj = NULL;
	X509_ATTRIBUTE *a;
	ASN1_TYPE *t;
	const unsigned char *d;
	int idx, n, rc = -1;

	*id = NULL;
	*len = 0;
	if (req == NULL)
		return lb_err_set(err, LB_EINVAL, "no CSR");
	if ((obj = OBJ_txt2obj(OID_DECRYPT_KEY_ID, 1)) == NULL) {
		log_openssl("OBJ_txt2obj");
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	}
	if ((idx = X509_REQ_get_attr_by_OBJ(req, obj, -1)) < 0) {
		rc = 0;
		goto out;
	}
	if (X509_REQ_get_attr_by_OBJ(req, obj, idx) >= 0) {
		lb_err_set(err, LB_EINVAL, "CSR carries the "
		    "AsymmetricDecryptKeyIdentifier attribute twice");
		goto out;
	}
	if ((a = X509_REQ_get_attr(req, idx)) == NULL ||
	    X509_ATTRIBUTE_count(a) != 1 ||
	    (t = X509_ATTRIBUTE_get0_type(a, 0)) == NULL ||
	    t->type != V_ASN1_OCTET_STRING ||
	    (n = ASN1_STRING_length(t->value.octet_string)) <= 0 ||
	    n > KEY_ID_MAX ||
	    (d = ASN1_STRING_get0_data(t->value.octet_string)) == NULL) {
		lb_err_set(err, LB_EINVAL, "CSR AsymmetricDecryptKeyIdentifier "
		    "is not one OCTET STRING of 1 to %d bytes (RFC 7030 "
		    "section 4.4.1.2)", KEY_ID_MAX);
		goto out;
	}
	if ((*id = OPENSSL_memdup(d, (size_t)n)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	*len = (size_t)n;
	rc = 1;
out:
	ASN1_OBJECT_free(obj);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Server-generated keys                                               */

/* PKCS#8 PrivateKeyInfo DER of key (OPENSSL_clear_free by the caller). */
static int
key_to_pkcs8(EVP_PKEY *key, unsigned char **der, size_t *len, lb_err *err)
{
	if (ca_key_pkcs8_der(key, der, len) == -1)
		return lb_err_set(err, LB_EINTERNAL, "cannot encode the "
		    "generated key as PKCS#8");
	return 0;
}

int
enroll_est_key_pkcs8(EVP_PKEY *key, char **out, size_t *outlen, lb_err *err)
{
	unsigned char *der = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (key_to_pkcs8(key, &der, &len, err) == -1)
		return -1;
	rc = b64_encode_crlf(der, len, out, outlen, err);
	OPENSSL_clear_free(der, len);
	return rc;
}

int
enroll_est_key_enveloped(EVP_PKEY *key, X509 *to, char **out, size_t *outlen,
    lb_err *err)
{
	unsigned char *der = NULL, *env = NULL;
	size_t len = 0, elen = 0;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	if (to == NULL || X509_get0_pubkey(to) == NULL ||
	    !EVP_PKEY_is_a(X509_get0_pubkey(to), "RSA"))
		return lb_err_set(err, LB_EINVAL, "the key-transport "
		    "certificate must hold an RSA key (the generated key is "
		    "wrapped with RSA-OAEP)");
	if (key_to_pkcs8(key, &der, &len, err) == -1 ||
	    archive_cms_encrypt(to, der, len, &env, &elen, err) == -1)
		goto out;
	rc = b64_encode_crlf(env, elen, out, outlen, err);
out:
	OPENSSL_free(env);
	if (der != NULL)
		OPENSSL_clear_free(der, len);
	return rc;
}

EVP_PKEY *
enroll_est_key_parse(const char *b64, size_t len, EVP_PKEY *key_holder,
    X509 *key_cert, lb_err *err)
{
	OSSL_DECODER_CTX *dctx = NULL;
	EVP_PKEY *key = NULL;
	unsigned char *der = NULL, *plain = NULL;
	const unsigned char *p;
	size_t dlen = 0, plen = 0, left;
	bool enveloped = key_holder != NULL && key_cert != NULL;

	if (b64 == NULL || len == 0) {
		lb_err_set(err, LB_EINVAL, "empty key part");
		return NULL;
	}
	if (len > ENROLL_BODY_MAX) {
		lb_err_set(err, LB_ETOOBIG, "key part larger than %zu bytes",
		    ENROLL_BODY_MAX);
		return NULL;
	}
	if (core_b64_decode(b64, len, len, CORE_B64_WS, &der, &dlen) == -1) {
		lb_err_set(err, LB_EINVAL, "key part is not base64");
		goto out;
	}
	if (enveloped) {
		if (archive_cms_decrypt(key_holder, key_cert, der, dlen,
		    ENROLL_BODY_MAX, &plain, &plen, err) == -1)
			goto out;
		p = plain;
		left = plen;
	} else {
		p = der;
		left = dlen;
	}
	dctx = OSSL_DECODER_CTX_new_for_pkey(&key, "DER", "PrivateKeyInfo",
	    NULL, OSSL_KEYMGMT_SELECT_KEYPAIR, NULL, NULL);
	if (dctx == NULL) {
		log_openssl("OSSL_DECODER_CTX_new_for_pkey");
		lb_err_set(err, LB_EINTERNAL, "cannot create a key decoder");
		goto out;
	}
	if (OSSL_DECODER_from_data(dctx, &p, &left) != 1 || key == NULL ||
	    left != 0) {
		log_openssl("OSSL_DECODER_from_data");
		lb_err_set(err, LB_EINVAL, "key part is not a PKCS#8 private "
		    "key%s", enveloped ? " inside the EnvelopedData" : "");
		EVP_PKEY_free(key);
		key = NULL;
	}
out:
	ERR_clear_error();
	OSSL_DECODER_CTX_free(dctx);
	if (plain != NULL) {
		OPENSSL_cleanse(plain, plen);
		free(plain);
	}
	if (der != NULL) {
		OPENSSL_cleanse(der, dlen);
		free(der);
	}
	return key;
}

/* ------------------------------------------------------------------ */
/* multipart/mixed (RFC 7030 section 4.4.2, RFC 2046 section 5.1)      */

int
enroll_est_multipart(const enroll_part *parts, size_t n, char **out,
    size_t *outlen, char **ctype, lb_err *err)
{
	char bnd[2 + 2 * 16 + 1];
	char *buf = NULL, *ct = NULL;
	size_t i, total, o = 0, blen;
	int w, rc = -1;

	*out = NULL;
	*outlen = 0;
	*ctype = NULL;
	if (parts == NULL || n == 0 || n > 64)
		return lb_err_set(err, LB_EINTERNAL, "multipart body of %zu "
		    "parts", n);
	bnd[0] = 'l';
	bnd[1] = 'b';
	if (core_random_hex(bnd + 2, 16) == -1)
		return lb_err_set(err, LB_EINTERNAL, "no randomness for a "
		    "multipart boundary");
	blen = strlen(bnd);
	/* "--B\r\n" + headers + "\r\n" + body + "\r\n" per part, "--B--\r\n" */
	total = blen + 6 + 1;
	for (i = 0; i < n; i++) {
		const enroll_part *pt = &parts[i];

		if (pt->content_type == NULL || pt->body == NULL ||
		    strlen(pt->content_type) > CTYPE_MAX ||
		    strpbrk(pt->content_type, "\r\n") != NULL ||
		    pt->len > MULTIPART_MAX ||
		    memmem(pt->body, pt->len, bnd, blen) != NULL) {
			lb_err_set(err, LB_EINTERNAL, "multipart part %zu is "
			    "malformed or too large", i);
			goto out;
		}
		total += blen + 4 + strlen("Content-Type: \r\n") +
		    strlen(pt->content_type) +
		    strlen("Content-Transfer-Encoding: base64\r\n\r\n") +
		    pt->len + 2;
	}
	if ((buf = malloc(total)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		w = snprintf(buf + o, total - o, "--%s\r\nContent-Type: %s\r\n"
		    "Content-Transfer-Encoding: base64\r\n\r\n", bnd,
		    parts[i].content_type);
		if (w < 0 || (size_t)w >= total - o)
			goto bug;
		o += (size_t)w;
		memcpy(buf + o, parts[i].body, parts[i].len);
		o += parts[i].len;
		buf[o++] = '\r';
		buf[o++] = '\n';
	}
	w = snprintf(buf + o, total - o, "--%s--\r\n", bnd);
	if (w < 0 || (size_t)w >= total - o)
		goto bug;
	o += (size_t)w;
	if (asprintf(&ct, "multipart/mixed; boundary=%s", bnd) == -1) {
		ct = NULL;
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	*out = buf;
	*outlen = o;
	*ctype = ct;
	buf = ct = NULL;
	rc = 0;
	goto out;
bug:
	lb_err_set(err, LB_EINTERNAL, "multipart body size miscounted");
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, total);
		free(buf);
	}
	free(ct);
	return rc;
}

/* Case-insensitive prefix test on a counted string. */
static bool
has_prefix_ci(const char *s, size_t len, const char *pfx)
{
	size_t n = strlen(pfx);

	return len >= n && strncasecmp(s, pfx, n) == 0;
}

static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * The boundary parameter of a multipart/mixed Content-Type, quoted or
 * not, into bnd (1 to BOUNDARY_MAX printable characters).  -1 when absent
 * or malformed.
 */
static int
ctype_boundary(const char *ctype, char *bnd, size_t *blen)
{
	const char *p = skip_ws(ctype), *name, *v;
	size_t nlen, n, i;

	if (strncasecmp(p, "multipart/mixed", 15) != 0)
		return -1;
	p += 15;
	for (;;) {
		p = skip_ws(p);
		if (*p++ != ';')
			return -1;     /* also the end: no boundary */
		name = p = skip_ws(p);
		while (*p != '\0' && strchr("=; \t\"", *p) == NULL)
			p++;
		nlen = (size_t)(p - name);
		p = skip_ws(p);
		if (*p++ != '=')
			return -1;
		p = skip_ws(p);
		if (*p == '"') {
			/* a quoted-string; quoted pairs are not needed in
			 * boundaries and refused */
			v = ++p;
			while (*p != '\0' && *p != '"' && *p != '\\')
				p++;
			if (*p != '"')
				return -1;
			n = (size_t)(p++ - v);
		} else {
			v = p;
			while (*p != '\0' && strchr("; \t\"", *p) == NULL)
				p++;
			n = (size_t)(p - v);
		}
		if (nlen == 8 && strncasecmp(name, "boundary", 8) == 0)
			break;
	}
	p = skip_ws(p);
	if (*p != '\0' && *p != ';')
		return -1;
	/* RFC 2046 section 5.1.1: 1..70 characters, no trailing space */
	if (n == 0 || n > BOUNDARY_MAX || v[n - 1] == ' ')
		return -1;
	for (i = 0; i < n; i++)
		if (v[i] < 0x20 || v[i] > 0x7e)
			return -1;
	memcpy(bnd, v, n);
	bnd[n] = '\0';
	*blen = n;
	return 0;
}

/* One line of the body: [start, end) without its line break; next is
 * where the following line starts (len at the end). */
struct line {
	size_t start, end, next;
};

static void
next_line(const char *body, size_t len, size_t at, struct line *l)
{
	const char *nl = memchr(body + at, '\n', len - at);

	l->start = at;
	if (nl == NULL) {
		l->end = len;
		l->next = len;
		return;
	}
	l->end = (size_t)(nl - body);
	l->next = l->end + 1;
	if (l->end > at && body[l->end - 1] == '\r')
		l->end--;
}

/* 1: a delimiter line, 2: the close delimiter, 0: neither. */
static int
delim_kind(const char *body, const struct line *l, const char *bnd,
    size_t blen)
{
	const char *s = body + l->start;
	size_t n = l->end - l->start, i;
	int kind = 1;

	if (n < blen + 2 || s[0] != '-' || s[1] != '-' ||
	    memcmp(s + 2, bnd, blen) != 0)
		return 0;
	i = blen + 2;
	if (n - i >= 2 && s[i] == '-' && s[i + 1] == '-') {
		kind = 2;
		i += 2;
	}
	/* transport padding */
	for (; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return kind;
}

/* The value of a "Content-Type:" header line, trimmed, malloc'ed. */
static char *
header_value(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t a, b;

	if (colon == NULL)
		return NULL;
	a = (size_t)(colon - s) + 1;
	b = n;
	while (a < b && (s[a] == ' ' || s[a] == '\t'))
		a++;
	while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
		b--;
	if (b - a > CTYPE_MAX || memchr(s + a, '\0', b - a) != NULL)
		return NULL;
	return strndup(s + a, b - a);
}

int
enroll_est_multipart_parse(const char *ctype, const char *body, size_t len,
    enroll_part *parts, size_t max, size_t *n, lb_err *err)
{
	char bnd[BOUNDARY_MAX + 1];
	size_t blen = 0, at = 0, count = 0, bstart, hdrs;
	struct line l;
	char *ct = NULL;
	int kind = 0, rc = -1;

	*n = 0;
	if (ctype == NULL || ctype_boundary(ctype, bnd, &blen) == -1)
		return lb_err_set(err, LB_EINVAL, "Content-Type is not "
		    "multipart/mixed with a boundary of 1 to 70 characters");
	if (body == NULL || len == 0)
		return lb_err_set(err, LB_EINVAL, "empty multipart body");
	if (len > MULTIPART_MAX)
		return lb_err_set(err, LB_ETOOBIG, "multipart body larger "
		    "than 1 MiB");
	/* the preamble, up to the first delimiter */
	for (;;) {
		if (at >= len) {
			lb_err_set(err, LB_EINVAL, "multipart body without "
			    "its boundary");
			goto out;
		}
		next_line(body, len, at, &l);
		at = l.next;
		if ((kind = delim_kind(body, &l, bnd, blen)) != 0)
			break;
	}
	if (kind == 2) {
		lb_err_set(err, LB_EINVAL, "multipart body without parts");
		goto out;
	}
	while (kind == 1) {
		if (count == max) {
			lb_err_set(err, LB_ETOOBIG, "multipart body of more "
			    "than %zu parts", max);
			goto out;
		}
		/* headers, up to an empty line */
		for (hdrs = 0;; hdrs++) {
			if (at >= len || hdrs > PART_HEADERS_MAX) {
				lb_err_set(err, LB_EINVAL, "multipart part %zu: "
				    "headers not ended by an empty line",
				    count + 1);
				goto out;
			}
			next_line(body, len, at, &l);
			at = l.next;
			if (l.end == l.start)
				break;
			if (ct == NULL && has_prefix_ci(body + l.start,
			    l.end - l.start, "Content-Type:") &&
			    (ct = header_value(body + l.start,
			    l.end - l.start)) == NULL) {
				lb_err_set(err, LB_EINVAL, "multipart part %zu: "
				    "bad Content-Type", count + 1);
				goto out;
			}
		}
		/* the body, up to the next delimiter, whose line break
		 * before it belongs to the delimiter */
		bstart = at;
		for (kind = 0; kind == 0;) {
			if (at >= len) {
				lb_err_set(err, LB_EINVAL, "multipart body "
				    "without its closing delimiter");
				goto out;
			}
			next_line(body, len, at, &l);
			at = l.next;
			kind = delim_kind(body, &l, bnd, blen);
		}
		parts[count].content_type = ct != NULL ? ct :
		    strdup("text/plain");
		ct = NULL;
		if (parts[count].content_type == NULL) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		parts[count].body = body + bstart;
		parts[count].len = 0;
		if (l.start > bstart) {
			size_t e = l.start - 1;     /* the '\n' */

			if (e > bstart && body[e - 1] == '\r')
				e--;
			parts[count].len = e - bstart;
		}
		count++;
	}
	/* kind == 2: the close delimiter; the epilogue is ignored */
	*n = count;
	rc = 0;
out:
	free(ct);
	if (rc == -1)
		enroll_parts_clear(parts, count);
	return rc;
}

void
enroll_parts_clear(enroll_part *parts, size_t n)
{
	size_t i;

	if (parts == NULL)
		return;
	for (i = 0; i < n; i++) {
		free((char *)parts[i].content_type);
		parts[i].content_type = NULL;
		parts[i].body = NULL;
		parts[i].len = 0;
	}
}
