/*
 * record.c - the escrow record format both ends share: the AAD that binds
 * a ciphertext to its certificate and owner, the record hash the receipt
 * signs, CMS EnvelopedData for shares (RSA-OAEP SHA-256, AES-256-CBC), and
 * the check that a private key belongs to a certificate.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "archive/archive_int.h"

#define AAD_MAGIC "lockbox-escrow-v1"

/* Appends a 4-byte big-endian length and the bytes to an EVP digest or a
 * buffer (whichever is non-NULL). */
static int
put_field(EVP_MD_CTX *md, unsigned char *buf, size_t *off,
    const void *data, size_t len)
{
	unsigned char l[4];

	l[0] = (unsigned char)(len >> 24);
	l[1] = (unsigned char)(len >> 16);
	l[2] = (unsigned char)(len >> 8);
	l[3] = (unsigned char)len;
	if (md != NULL)
		return EVP_DigestUpdate(md, l, 4) == 1 &&
		    EVP_DigestUpdate(md, data, len) == 1 ? 0 : -1;
	if (buf != NULL) {
		memcpy(buf + *off, l, 4);
		memcpy(buf + *off + 4, data, len);
	}
	*off += 4 + len;
	return 0;
}

int
archive_record_aad(X509 *cert, const char *email, unsigned char **aad,
    size_t *aad_len, lb_err *err)
{
	unsigned char *issuer = NULL, *buf = NULL;
	char *serial = NULL, spki[65];
	int ilen;
	size_t off = 0, pass;
	int rc = -1;

	*aad = NULL;
	*aad_len = 0;
	if ((ilen = i2d_X509_NAME(X509_get_issuer_name(cert), &issuer)) <= 0 ||
	    (serial = ca_cert_serial(cert)) == NULL ||
	    ca_spki_sha256(cert, spki) == -1) {
		log_openssl("archive_record_aad");
		lb_err_set(err, LB_EINTERNAL, "cannot bind the record to its "
		    "certificate");
		goto out;
	}
	/* pass 0 measures, pass 1 writes */
	for (pass = 0; pass < 2; pass++) {
		off = 0;
		if (pass == 1 && (buf = malloc(*aad_len)) == NULL) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		if (buf != NULL)
			memcpy(buf, AAD_MAGIC, strlen(AAD_MAGIC));
		off = strlen(AAD_MAGIC);
		put_field(NULL, buf, &off, issuer, (size_t)ilen);
		put_field(NULL, buf, &off, serial, strlen(serial));
		put_field(NULL, buf, &off, spki, strlen(spki));
		put_field(NULL, buf, &off, email, strlen(email));
		*aad_len = off;
	}
	*aad = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	free(serial);
	OPENSSL_free(issuer);
	return rc;
}

int
archive_record_hash(const unsigned char *aad, size_t aad_len,
    const unsigned char *iv, const unsigned char *tag,
    const unsigned char *ct, size_t ct_len, int threshold, char out[65])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char h[32], th[4];
	unsigned int hl = 0;
	int rc = -1;
	size_t off = 0;

	th[0] = (unsigned char)((unsigned)threshold >> 24);
	th[1] = (unsigned char)((unsigned)threshold >> 16);
	th[2] = (unsigned char)((unsigned)threshold >> 8);
	th[3] = (unsigned char)threshold;
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    put_field(md, NULL, &off, aad, aad_len) == -1 ||
	    put_field(md, NULL, &off, iv, ARCHIVE_IV_LEN) == -1 ||
	    put_field(md, NULL, &off, tag, ARCHIVE_TAG_LEN) == -1 ||
	    put_field(md, NULL, &off, ct, ct_len) == -1 ||
	    EVP_DigestUpdate(md, th, sizeof(th)) != 1 ||
	    EVP_DigestFinal_ex(md, h, &hl) != 1)
		goto out;
	core_hex_lower(h, 32, out);
	rc = 0;
out:
	if (rc == -1)
		log_openssl("archive_record_hash");
	EVP_MD_CTX_free(md);
	return rc;
}

int
archive_cms_encrypt(X509 *to, const unsigned char *data, size_t len,
    unsigned char **out, size_t *out_len, lb_err *err)
{
	CMS_ContentInfo *cms = NULL;
	CMS_RecipientInfo *ri;
	EVP_PKEY_CTX *pctx;
	BIO *in = NULL;
	unsigned char *der = NULL;
	int dlen, rc = -1;

	*out = NULL;
	*out_len = 0;
	if (!EVP_PKEY_is_a(X509_get0_pubkey(to), "RSA"))
		return lb_err_set(err, LB_EINVAL, "CMS EnvelopedData is made for "
		    "RSA certificates only (RSA-OAEP key transport)");
	/*
	 * The recipient is named by its subjectKeyIdentifier where the
	 * certificate has one (every certificate lockbox issues does; RFC 5652
	 * section 6.2.1 allows either form and archive_cms_decrypt, like
	 * `openssl cms -decrypt`, matches both): it spares a copy of the
	 * issuer's name per share.
	 */
	if ((in = BIO_new_mem_buf(data, (int)len)) == NULL ||
	    (cms = CMS_encrypt_ex(NULL, NULL, EVP_aes_256_cbc(),
	    CMS_BINARY | CMS_PARTIAL, NULL, NULL)) == NULL ||
	    (ri = CMS_add1_recipient_cert(cms, to, CMS_KEY_PARAM |
	    (X509_get0_subject_key_id(to) != NULL ? CMS_USE_KEYID : 0))) ==
	    NULL ||
	    (pctx = CMS_RecipientInfo_get0_pkey_ctx(ri)) == NULL ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) <= 0 ||
	    CMS_final(cms, in, NULL, CMS_BINARY) != 1 ||
	    (dlen = i2d_CMS_ContentInfo(cms, &der)) <= 0) {
		log_openssl("archive_cms_encrypt");
		lb_err_set(err, LB_EINTERNAL, "cannot encrypt to the certificate "
		    "(CMS EnvelopedData)");
		goto out;
	}
	*out = der;
	*out_len = (size_t)dlen;
	rc = 0;
out:
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return rc;
}

int
archive_cms_decrypt(EVP_PKEY *key, X509 *cert, const unsigned char *cms_der,
    size_t len, size_t max, unsigned char **out, size_t *out_len,
    lb_err *err)
{
	CMS_ContentInfo *cms = NULL;
	BIO *mem = NULL;
	const unsigned char *p = cms_der;
	unsigned char *buf = NULL;
	char *data;
	long n;
	int rc = -1;

	*out = NULL;
	*out_len = 0;
	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL ||
	    p != cms_der + len) {
		lb_err_set(err, LB_EINVAL, "not CMS EnvelopedData");
		goto out;
	}
	if ((mem = BIO_new(BIO_s_mem())) == NULL ||
	    CMS_decrypt(cms, key, cert, NULL, mem, CMS_BINARY) != 1) {
		log_openssl("CMS_decrypt");
		lb_err_set(err, LB_EINVAL, "cannot decrypt with this key "
		    "(wrong credential, or the data was altered)");
		goto out;
	}
	n = BIO_get_mem_data(mem, &data);
	/* nothing this project encrypts is empty */
	if (n <= 0 || (size_t)n > max) {
		lb_err_set(err, LB_EINVAL, "the decrypted content has the "
		    "wrong size");
		goto out;
	}
	if ((buf = malloc((size_t)n + 1)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	memcpy(buf, data, (size_t)n);
	*out = buf;
	*out_len = (size_t)n;
	rc = 0;
out:
	if (mem != NULL) {
		/* the plaintext share also sits in the BIO's buffer */
		n = BIO_get_mem_data(mem, &data);
		if (n > 0)
			OPENSSL_cleanse(data, (size_t)n);
	}
	ERR_clear_error();
	BIO_free(mem);
	CMS_ContentInfo_free(cms);
	return rc;
}

/* RSA: OAEP-encrypt a random block to the certificate, decrypt with key. */
static int
trial_rsa(EVP_PKEY *pub, EVP_PKEY *key)
{
	EVP_PKEY_CTX *e = NULL, *d = NULL;
	unsigned char msg[32], ct[1024], pt[1024];
	size_t ctl = sizeof(ct), ptl = sizeof(pt);
	int ok = 0;

	if (RAND_bytes(msg, sizeof(msg)) != 1 ||
	    (e = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init(e) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(e, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_encrypt(e, ct, &ctl, msg, sizeof(msg)) != 1 ||
	    (d = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
	    EVP_PKEY_decrypt_init(d) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(d, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_decrypt(d, pt, &ptl, ct, ctl) != 1)
		goto out;
	ok = ptl == sizeof(msg) && CRYPTO_memcmp(pt, msg, ptl) == 0;
out:
	OPENSSL_cleanse(pt, sizeof(pt));
	EVP_PKEY_CTX_free(e);
	EVP_PKEY_CTX_free(d);
	return ok;
}

/*
 * The curves' groups, built once: EC_GROUP_new_by_curve_name sets up two
 * Montgomery contexts, half the time of the key check below
 * (bench/escrow.c).  A group is only read once built, which OpenSSL
 * allows from many threads at once; the groups live as long as the
 * process.
 */
#define EC_GROUPS_MAX 4

static struct {
	int nid;
	EC_GROUP *group;
} ec_groups[EC_GROUPS_MAX];
static size_t ec_groups_n;
static pthread_mutex_t ec_groups_lock = PTHREAD_MUTEX_INITIALIZER;

/* The group of curve nid, built on first use; NULL if it cannot be. */
static const EC_GROUP *
ec_group_get0(int nid)
{
	const EC_GROUP *g = NULL;
	size_t i;

	pthread_mutex_lock(&ec_groups_lock);
	for (i = 0; i < ec_groups_n && g == NULL; i++)
		if (ec_groups[i].nid == nid)
			g = ec_groups[i].group;
	if (g == NULL && ec_groups_n < EC_GROUPS_MAX &&
	    (ec_groups[ec_groups_n].group = EC_GROUP_new_by_curve_name(nid)) !=
	    NULL) {
		ec_groups[ec_groups_n].nid = nid;
		g = ec_groups[ec_groups_n++].group;
	}
	pthread_mutex_unlock(&ec_groups_lock);
	return g;
}

/*
 * EC: the private scalar d times the curve's generator is the public
 * point Q - what makes every key agreement with d agree with Q.  One
 * fixed-base multiplication, constant time; d is cleansed.
 */
static int
trial_ec(EVP_PKEY *pub, EVP_PKEY *key)
{
	unsigned char want[160], got[160];
	size_t wl = 0, gl = 0, cl = 0;
	char curve[64];
	BIGNUM *d = NULL;
	const EC_GROUP *g;
	EC_POINT *q = NULL;
	BN_CTX *bc = NULL;
	int nid, ok = 0;

	if (EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME,
	    curve, sizeof(curve), &cl) != 1 ||
	    (nid = OBJ_sn2nid(curve)) == NID_undef ||
	    EVP_PKEY_get_octet_string_param(pub, OSSL_PKEY_PARAM_PUB_KEY, want,
	    sizeof(want), &wl) != 1 || wl == 0 ||
	    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 ||
	    (g = ec_group_get0(nid)) == NULL ||
	    (q = EC_POINT_new(g)) == NULL || (bc = BN_CTX_secure_new()) ==
	    NULL || EC_POINT_mul(g, q, d, NULL, NULL, bc) != 1)
		goto out;
	gl = EC_POINT_point2oct(g, q, want[0] == 0x04 ?
	    POINT_CONVERSION_UNCOMPRESSED : POINT_CONVERSION_COMPRESSED, got,
	    sizeof(got), bc);
	ok = gl == wl && CRYPTO_memcmp(got, want, wl) == 0;
out:
	BN_clear_free(d);
	EC_POINT_free(q);
	BN_CTX_free(bc);
	return ok;
}

int
archive_key_matches(X509 *cert, EVP_PKEY *key, lb_err *err)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	int ok;

	if (pub == NULL || key == NULL)
		return lb_err_set(err, LB_EINVAL, "no key to compare");
	if (EVP_PKEY_eq(pub, key) != 1) {
		ERR_clear_error();
		return lb_err_set(err, LB_EINVAL, "the private key does not "
		    "belong to the certificate");
	}
	if (EVP_PKEY_is_a(key, "RSA"))
		ok = trial_rsa(pub, key);
	else if (EVP_PKEY_is_a(key, "EC"))
		ok = trial_ec(pub, key);
	else
		ok = 0;
	ERR_clear_error();
	if (!ok)
		return lb_err_set(err, LB_EINVAL, "the private key failed a "
		    "trial %s with the certificate's public key",
		    EVP_PKEY_is_a(key, "RSA") ? "encryption" :
		    "multiplication");
	return 0;
}
