/*
 * key.c - key types lockbox accepts, key generation, encrypted PKCS#8 key
 * files (OSSL_ENCODER/OSSL_DECODER), and the parsers for the PKCS#10 and
 * certificate input users hand in.  Every parser caps its input and takes
 * PEM or DER.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/ca_int.h"

#define CSR_MAX_SIZE ((size_t)64 * 1024)

static const struct {
	enum ca_key_type type;
	const char *name;
} key_types[] = {
	{ CA_KEY_RSA2048, "rsa-2048" },
	{ CA_KEY_RSA3072, "rsa-3072" },
	{ CA_KEY_RSA4096, "rsa-4096" },
	{ CA_KEY_ECP256, "ec-p256" },
	{ CA_KEY_ECP384, "ec-p384" },
};

enum ca_key_type
ca_key_type_parse(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < sizeof(key_types) / sizeof(key_types[0]);
	    i++)
		if (strcmp(name, key_types[i].name) == 0)
			return key_types[i].type;
	return CA_KEY_NONE;
}

const char *
ca_key_type_name(enum ca_key_type t)
{
	size_t i;

	for (i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
		if (key_types[i].type == t)
			return key_types[i].name;
	return "unsupported";
}

enum ca_key_type
ca_key_type_of(const EVP_PKEY *key)
{
	char curve[64];
	size_t len = 0;
	int bits;

	if (key == NULL)
		return CA_KEY_NONE;
	if (EVP_PKEY_is_a(key, "RSA")) {
		bits = EVP_PKEY_get_bits(key);
		if (bits < 2048)
			return CA_KEY_NONE;
		if (bits < 3072)
			return CA_KEY_RSA2048;
		if (bits < 4096)
			return CA_KEY_RSA3072;
		return CA_KEY_RSA4096;
	}
	if (EVP_PKEY_is_a(key, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
		    curve, sizeof(curve), &len) != 1) {
			ERR_clear_error();
			return CA_KEY_NONE;
		}
		if (strcmp(curve, "prime256v1") == 0 ||
		    strcmp(curve, "P-256") == 0)
			return CA_KEY_ECP256;
		if (strcmp(curve, "secp384r1") == 0 ||
		    strcmp(curve, "P-384") == 0)
			return CA_KEY_ECP384;
	}
	return CA_KEY_NONE;
}

EVP_PKEY *
ca_keygen(enum ca_key_type t, lb_err *err)
{
	EVP_PKEY *k = NULL;

	switch (t) {
	case CA_KEY_RSA2048:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		break;
	case CA_KEY_RSA3072:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
		break;
	case CA_KEY_RSA4096:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
		break;
	case CA_KEY_ECP256:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		break;
	case CA_KEY_ECP384:
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
		break;
	case CA_KEY_NONE:
		break;
	}
	if (k == NULL) {
		log_openssl("EVP_PKEY_Q_keygen");
		lb_err_set(err, LB_EINTERNAL, "cannot generate a %s key",
		    ca_key_type_name(t));
	}
	return k;
}

int
ca_key_write(const char *path, EVP_PKEY *key, const char *pass, bool excl,
    lb_err *err)
{
	OSSL_ENCODER_CTX *ectx = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	int rc = -1;

	ectx = OSSL_ENCODER_CTX_new_for_pkey(key, OSSL_KEYMGMT_SELECT_KEYPAIR,
	    "PEM", "PrivateKeyInfo", NULL);
	if (ectx == NULL || OSSL_ENCODER_CTX_get_num_encoders(ectx) == 0) {
		log_openssl("OSSL_ENCODER_CTX_new_for_pkey");
		lb_err_set(err, LB_EINTERNAL, "cannot encode the key");
		goto out;
	}
	if (pass != NULL &&
	    (OSSL_ENCODER_CTX_set_cipher(ectx, "AES-256-CBC", NULL) != 1 ||
	    OSSL_ENCODER_CTX_set_passphrase(ectx, (const unsigned char *)pass,
	    strlen(pass)) != 1)) {
		log_openssl("OSSL_ENCODER_CTX_set_cipher");
		lb_err_set(err, LB_EINTERNAL, "cannot encrypt the key");
		goto out;
	}
	if (OSSL_ENCODER_to_data(ectx, &data, &len) != 1) {
		log_openssl("OSSL_ENCODER_to_data");
		lb_err_set(err, LB_EINTERNAL, "cannot encode the key");
		goto out;
	}
	rc = core_file_write(path, data, len, 0600, excl, err);
out:
	if (data != NULL)
		OPENSSL_clear_free(data, len);
	OSSL_ENCODER_CTX_free(ectx);
	return rc;
}

int
ca_key_pkcs8_der(EVP_PKEY *key, unsigned char **der, size_t *len)
{
	OSSL_ENCODER_CTX *ectx;
	int rc = -1;

	*der = NULL;
	*len = 0;
	ectx = OSSL_ENCODER_CTX_new_for_pkey(key, OSSL_KEYMGMT_SELECT_KEYPAIR,
	    "DER", "PrivateKeyInfo", NULL);
	if (ectx == NULL || OSSL_ENCODER_CTX_get_num_encoders(ectx) == 0 ||
	    OSSL_ENCODER_to_data(ectx, der, len) != 1)
		log_openssl("PKCS#8 encoding");
	else
		rc = 0;
	OSSL_ENCODER_CTX_free(ectx);
	return rc;
}

EVP_PKEY *
ca_key_read(const char *path, const char *pass, lb_err *err)
{
	OSSL_DECODER_CTX *dctx = NULL;
	EVP_PKEY *key = NULL;
	unsigned char *buf = NULL;
	const unsigned char *p;
	size_t len = 0, left;

	if (core_file_read(path, CSR_MAX_SIZE, &buf, &len, err) == -1)
		goto out;
	dctx = OSSL_DECODER_CTX_new_for_pkey(&key, NULL, NULL, NULL,
	    OSSL_KEYMGMT_SELECT_KEYPAIR, NULL, NULL);
	if (dctx == NULL) {
		log_openssl("OSSL_DECODER_CTX_new_for_pkey");
		lb_err_set(err, LB_EINTERNAL, "cannot create a key decoder");
		goto out;
	}
	if (pass != NULL)
		OSSL_DECODER_CTX_set_passphrase(dctx,
		    (const unsigned char *)pass, strlen(pass));
	p = buf;
	left = len;
	if (OSSL_DECODER_from_data(dctx, &p, &left) != 1 || key == NULL) {
		log_openssl("OSSL_DECODER_from_data");
		lb_err_set(err, LB_EINVAL, "%s: not a private key%s", path,
		    pass != NULL ? " (or wrong passphrase)" : "");
		EVP_PKEY_free(key);
		key = NULL;
	}
out:
	OSSL_DECODER_CTX_free(dctx);
	if (buf != NULL)
		OPENSSL_clear_free(buf, len);
	return key;
}

/* True when buf looks like PEM: DER never starts with '-' or whitespace. */
static bool
is_pem(const unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len && i < 64; i++)
		if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' &&
		    buf[i] != '\n')
			return buf[i] == '-';
	return false;
}

X509_REQ *
ca_csr_make(EVP_PKEY *key, const X509_NAME *subject, const char *cn,
    const char *email, lb_err *err)
{
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	GENERAL_NAMES *gens = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	int ok = 0;

	if ((req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1)
		goto out;
	if (subject != NULL)
		name = X509_NAME_dup(subject);
	else if ((name = X509_NAME_new()) != NULL &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)(cn != NULL ? cn : email), -1, -1, 0) != 1)
		goto out;
	if (name == NULL || X509_REQ_set_subject_name(req, name) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1)
		goto out;
	/* the SAN built by hand: an e-mail is no config string */
	if ((gens = GENERAL_NAMES_new()) == NULL ||
	    ca_general_names_add(gens, GEN_EMAIL, email) == -1 ||
	    X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) != 1 ||
	    X509_REQ_add_extensions(req, exts) != 1 ||
	    X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto out;
	ok = 1;
out:
	if (!ok) {
		log_openssl("certificate request");
		lb_err_set(err, LB_EINTERNAL, "cannot build the certificate "
		    "request");
		X509_REQ_free(req);
		req = NULL;
	}
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	X509_NAME_free(name);
	return req;
}

X509_REQ *
ca_csr_parse(const unsigned char *buf, size_t len, lb_err *err)
{
	X509_REQ *req = NULL;
	EVP_PKEY *pub;
	BIO *bio = NULL;
	const unsigned char *p = buf;

	if (len == 0)
		goto bad;
	if (len > CSR_MAX_SIZE) {
		lb_err_set(err, LB_ETOOBIG, "CSR larger than %zu bytes",
		    CSR_MAX_SIZE);
		goto out;
	}
	if (is_pem(buf, len)) {
		if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL)
			goto bad;
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	} else {
		req = d2i_X509_REQ(NULL, &p, (long)len);
		if (req != NULL && p != buf + len) {
			X509_REQ_free(req);
			req = NULL;
		}
	}
	if (req == NULL)
		goto bad;
	if ((pub = X509_REQ_get0_pubkey(req)) == NULL) {
		lb_err_set(err, LB_EINVAL, "CSR carries no usable public key");
		goto fail;
	}
	if (X509_REQ_verify(req, pub) != 1) {
		log_openssl("X509_REQ_verify");
		lb_err_set(err, LB_EINVAL,
		    "CSR signature does not verify: the request was altered "
		    "or not signed by its key");
		goto fail;
	}
	ERR_clear_error();
	goto out;
bad:
	log_openssl("CSR parse");
	lb_err_set(err, LB_EINVAL,
	    "not a PKCS#10 certificate request (PEM or DER expected)");
fail:
	X509_REQ_free(req);
	req = NULL;
out:
	BIO_free(bio);
	return req;
}

X509 *
ca_cert_parse(const unsigned char *buf, size_t len, lb_err *err)
{
	X509 *x = NULL;
	BIO *bio = NULL;
	const unsigned char *p = buf;

	if (len > (size_t)1024 * 1024) {
		lb_err_set(err, LB_ETOOBIG, "certificate larger than 1 MiB");
		return NULL;
	}
	if (is_pem(buf, len)) {
		if ((bio = BIO_new_mem_buf(buf, (int)len)) != NULL)
			x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
	} else if (len > 0) {
		x = d2i_X509(NULL, &p, (long)len);
	}
	if (x == NULL) {
		log_openssl("certificate parse");
		lb_err_set(err, LB_EINVAL,
		    "not an X.509 certificate (PEM or DER expected)");
	}
	ERR_clear_error();
	return x;
}

STACK_OF(X509) *
ca_pem_chain_parse(const void *buf, size_t len, const char *what,
    lb_err *err)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio = NULL;
	X509 *x;

	if (len > (size_t)1024 * 1024) {
		lb_err_set(err, LB_ETOOBIG, "%s: larger than 1 MiB", what);
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL ||
	    (sk = sk_X509_new_null()) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(sk, x) <= 0) {
			X509_free(x);
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto fail;
		}
	ERR_clear_error();
	if (sk_X509_num(sk) > 0)
		goto out;
	lb_err_set(err, LB_EINVAL, "%s: no PEM certificate inside", what);
fail:
	sk_X509_pop_free(sk, X509_free);
	sk = NULL;
out:
	BIO_free(bio);
	return sk;
}

char *
ca_certs_pem(X509 *const *certs, size_t n, STACK_OF(X509) *chain,
    size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long blen;
	size_t i;
	int j;

	*len = 0;
	if (bio == NULL)
		goto out;
	for (i = 0; i < n; i++)
		if (PEM_write_bio_X509(bio, certs[i]) != 1)
			goto out;
	for (j = 0; chain != NULL && j < sk_X509_num(chain); j++)
		if (PEM_write_bio_X509(bio, sk_X509_value(chain, j)) != 1)
			goto out;
	if ((blen = BIO_get_mem_data(bio, &data)) < 0 ||
	    (out = malloc((size_t)blen + 1)) == NULL)
		goto out;
	memcpy(out, data, (size_t)blen);
	out[blen] = '\0';
	*len = (size_t)blen;
out:
	if (out == NULL)
		log_openssl("certificates as PEM");
	BIO_free(bio);
	return out;
}

const EVP_MD *
ca_sig_md(const EVP_PKEY *key)
{
	return ca_key_type_of(key) == CA_KEY_ECP384 ? EVP_sha384() :
	    EVP_sha256();
}

int
ca_spki_sha256(X509 *cert, char out[65])
{
	unsigned char *der = NULL;
	int len, rc;

	/* the stored SubjectPublicKeyInfo as it is: i2d_PUBKEY would run
	 * OpenSSL 3.0's provider encoder, a large share of issuing's cost */
	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	if (len <= 0)
		return log_openssl("i2d_X509_PUBKEY");
	rc = core_sha256_hex(der, (size_t)len, out);
	OPENSSL_free(der);
	return rc;
}

/*
 * Feeds the hash the parts of key that make it the key it is: "rsa" and
 * the modulus (an RSA key is its modulus, whatever the exponent or the
 * algorithm identifier, rsaEncryption or RSASSA-PSS, say), "ec", the
 * curve's name and the point's coordinates (compressed or not), or for
 * another type its name and raw public key.
 */
static int
key_id_parts(const EVP_PKEY *key, EVP_MD_CTX *md)
{
	unsigned char buf[1024];
	char curve[64];
	BIGNUM *a = NULL, *b = NULL;
	size_t len = 0, n;
	int rc = -1;

	if (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "RSA-PSS")) {
		if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &a) != 1 ||
		    (n = (size_t)BN_num_bytes(a)) > sizeof(buf) ||
		    BN_bn2bin(a, buf) != (int)n ||
		    EVP_DigestUpdate(md, "rsa", 4) != 1 ||
		    EVP_DigestUpdate(md, buf, n) != 1)
			goto out;
	} else if (EVP_PKEY_is_a(key, "EC")) {
		n = ((size_t)EVP_PKEY_get_bits(key) + 7) / 8;
		if (EVP_PKEY_get_utf8_string_param(key,
		    OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve), &len) != 1 ||
		    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &a) != 1 ||
		    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &b) != 1 ||
		    n == 0 || 2 * n > sizeof(buf) ||
		    BN_bn2binpad(a, buf, (int)n) != (int)n ||
		    BN_bn2binpad(b, buf + n, (int)n) != (int)n ||
		    EVP_DigestUpdate(md, "ec", 3) != 1 ||
		    EVP_DigestUpdate(md, curve, len + 1) != 1 ||
		    EVP_DigestUpdate(md, buf, 2 * n) != 1)
			goto out;
	} else {
		const char *type = EVP_PKEY_get0_type_name(key);

		if (type == NULL || EVP_PKEY_get_octet_string_param(key,
		    OSSL_PKEY_PARAM_PUB_KEY, buf, sizeof(buf), &len) != 1 ||
		    EVP_DigestUpdate(md, type, strlen(type) + 1) != 1 ||
		    EVP_DigestUpdate(md, buf, len) != 1)
			goto out;
	}
	rc = 0;
out:
	if (rc == -1)
		ERR_clear_error();
	BN_free(a);
	BN_free(b);
	return rc;
}

int
ca_key_id(const EVP_PKEY *key, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	int rc = -1;

	out[0] = '\0';
	if (key == NULL || (ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    key_id_parts(key, ctx) == 0 &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32) {
		core_hex_lower(md, mdlen, out);
		rc = 0;
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}
