/*
 * p12.c - PKCS#12 files for credentials and recovered keys.  Every file
 * written gets a generated password in FILE.pass (0600) unless the caller
 * names a password file; `modern` is PBES2 (AES-256-CBC, PBKDF2-SHA256)
 * with an HMAC-SHA256 MAC, `legacy` PBE-SHA1-3DES with a SHA-1 MAC for
 * clients such as gpgsm 2.2 that cannot read the modern form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/ui.h>

#include "ca/ca_int.h"

#define P12_MAX_SIZE ((size_t)1024 * 1024)
#define P12_PASS_LEN 24
#define P12_ITER 10000

/* The password: from pass_file, or generated into gen (P12_PASS_LEN). */
static char *
p12_pass(const char *pass_file, char *gen, lb_err *err)
{
	if (pass_file != NULL)
		return core_secret_read(pass_file, err);
	if (core_random_password(gen, P12_PASS_LEN) == -1) {
		lb_err_set(err, LB_EINTERNAL, "no randomness");
		return NULL;
	}
	return gen;
}

/* The PBE and MAC choices of a format. */
static void
p12_algs(enum ca_p12_format fmt, int *nid_key, int *nid_cert,
    const EVP_MD **mac)
{
	if (fmt == CA_P12_LEGACY) {
		*nid_key = *nid_cert = NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
		*mac = EVP_sha1();
	} else {
		*nid_key = *nid_cert = NID_aes_256_cbc;
		*mac = EVP_sha256();
	}
}

/*
 * MACs p12, then writes the generated password to path.pass (when gen is
 * the password) and the file to path, both 0600.
 */
static int
p12_finish(PKCS12 *p12, const char *path, const char *pass, char *gen,
    const EVP_MD *mac, lb_err *err)
{
	unsigned char *der = NULL;
	char *pass_path = NULL;
	int len = 0, rc = -1;

	if (PKCS12_set_mac(p12, pass, -1, NULL, 0, P12_ITER, mac) != 1) {
		log_openssl("PKCS12_set_mac");
		lb_err_set(err, LB_EINTERNAL, "cannot build the PKCS#12 file");
		goto out;
	}
	if ((len = i2d_PKCS12(p12, &der)) <= 0) {
		log_openssl("i2d_PKCS12");
		lb_err_set(err, LB_EINTERNAL, "cannot encode the PKCS#12 file");
		goto out;
	}
	if (pass == gen) {
		if (asprintf(&pass_path, "%s.pass", path) == -1) {
			pass_path = NULL;
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		gen[P12_PASS_LEN] = '\n';
		if (core_file_write(pass_path, gen, P12_PASS_LEN + 1, 0600,
		    false, err) == -1)
			goto out;
		gen[P12_PASS_LEN] = '\0';
	}
	if (core_file_write(path, der, (size_t)len, 0600, false, err) == -1)
		goto out;
	rc = 0;
out:
	free(pass_path);
	if (der != NULL)
		OPENSSL_clear_free(der, (size_t)len);
	return rc;
}

int
ca_p12_write(const char *path, const char *pass_file, EVP_PKEY *key,
    X509 *cert, STACK_OF(X509) *chain, const char *friendly,
    enum ca_p12_format fmt, lb_err *err)
{
	PKCS12 *p12 = NULL;
	char gen[P12_PASS_LEN + 2], *pass = NULL;
	int rc = -1, nid_key, nid_cert;
	const EVP_MD *mac;

	if ((pass = p12_pass(pass_file, gen, err)) == NULL)
		goto out;
	p12_algs(fmt, &nid_key, &nid_cert, &mac);
	/* mac_iter -1: no MAC yet, so that we choose its digest */
	p12 = PKCS12_create_ex(pass, friendly, key, cert, chain, nid_key,
	    nid_cert, P12_ITER, -1, 0, NULL, NULL);
	if (p12 == NULL) {
		log_openssl("PKCS12_create_ex");
		lb_err_set(err, LB_EINTERNAL, "cannot build the PKCS#12 file");
		goto out;
	}
	rc = p12_finish(p12, path, pass, gen, mac, err);
out:
	OPENSSL_cleanse(gen, sizeof(gen));
	if (pass != gen)
		core_secret_free(pass);
	PKCS12_free(p12);
	return rc;
}

/* friendlyName and localKeyID (the certificate's SHA-256) on a bag. */
static int
bag_attrs(PKCS12_SAFEBAG *bag, X509 *cert, const char *friendly)
{
	unsigned char id[EVP_MAX_MD_SIZE];
	unsigned int idlen = 0;

	if (friendly != NULL && PKCS12_add_friendlyname_utf8(bag, friendly,
	    -1) != 1)
		return -1;
	if (X509_digest(cert, EVP_sha256(), id, &idlen) != 1 ||
	    PKCS12_add_localkeyid(bag, id, (int)idlen) != 1)
		return -1;
	return 0;
}

int
ca_p12_write_multi(const char *path, const char *pass_file,
    EVP_PKEY *const *keys, X509 *const *certs, const char *const *friendly,
    size_t n, STACK_OF(X509) *chain, enum ca_p12_format fmt, lb_err *err)
{
	STACK_OF(PKCS12_SAFEBAG) *certbags = NULL, *keybags = NULL;
	STACK_OF(PKCS7) *safes = NULL;
	PKCS12_SAFEBAG *bag;
	PKCS12 *p12 = NULL;
	char gen[P12_PASS_LEN + 2], *pass = NULL;
	int rc = -1, nid_key, nid_cert, i;
	const EVP_MD *mac;
	size_t k;

	if (n == 0)
		return lb_err_set(err, LB_EINVAL, "no key to put into %s",
		    path);
	if ((pass = p12_pass(pass_file, gen, err)) == NULL)
		goto out;
	p12_algs(fmt, &nid_key, &nid_cert, &mac);
	for (k = 0; k < n; k++) {
		const char *name = friendly != NULL ? friendly[k] : NULL;

		if ((bag = PKCS12_add_cert(&certbags, certs[k])) == NULL ||
		    bag_attrs(bag, certs[k], name) == -1 ||
		    (bag = PKCS12_add_key_ex(&keybags, keys[k], 0, P12_ITER,
		    nid_key, pass, NULL, NULL)) == NULL ||
		    bag_attrs(bag, certs[k], name) == -1)
			goto fail;
	}
	for (i = 0; i < sk_X509_num(chain); i++)
		if (PKCS12_add_cert(&certbags, sk_X509_value(chain, i)) == NULL)
			goto fail;
	/* certificates in an encrypted safe, the shrouded keys in a plain
	 * one (they are encrypted bag by bag), as PKCS12_create does */
	if (PKCS12_add_safe_ex(&safes, certbags, nid_cert, P12_ITER, pass,
	    NULL, NULL) != 1 ||
	    PKCS12_add_safe_ex(&safes, keybags, -1, 0, NULL, NULL, NULL) != 1 ||
	    (p12 = PKCS12_add_safes_ex(safes, 0, NULL, NULL)) == NULL)
		goto fail;
	rc = p12_finish(p12, path, pass, gen, mac, err);
	goto out;
fail:
	log_openssl("PKCS12_add_key_ex");
	lb_err_set(err, LB_EINTERNAL, "cannot build the PKCS#12 file");
out:
	OPENSSL_cleanse(gen, sizeof(gen));
	if (pass != gen)
		core_secret_free(pass);
	sk_PKCS12_SAFEBAG_pop_free(certbags, PKCS12_SAFEBAG_free);
	sk_PKCS12_SAFEBAG_pop_free(keybags, PKCS12_SAFEBAG_free);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	PKCS12_free(p12);
	return rc;
}

static char *
ask_password(const char *path, lb_err *err)
{
	char buf[256], prompt[512];
	char *p;

	if (!isatty(STDIN_FILENO)) {
		lb_err_set(err, LB_EINVAL, "%s: no password: put it in %s.pass "
		    "or name a file with --cred-pass-file", path, path);
		return NULL;
	}
	snprintf(prompt, sizeof(prompt), "Password for %s: ", path);
	if (UI_UTIL_read_pw_string(buf, sizeof(buf), prompt, 0) != 0) {
		lb_err_set(err, LB_EINVAL, "%s: no password given", path);
		return NULL;
	}
	p = strdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (p == NULL)
		lb_err_set(err, LB_EINTERNAL, "out of memory");
	return p;
}

int
ca_p12_read(const char *path, const char *pass_file, EVP_PKEY **key,
    X509 **cert, STACK_OF(X509) **chain, lb_err *err)
{
	unsigned char *buf = NULL;
	const unsigned char *p;
	size_t len = 0;
	PKCS12 *p12 = NULL;
	char *pass = NULL, *side = NULL;
	int rc = -1;

	*key = NULL;
	*cert = NULL;
	if (chain != NULL)
		*chain = NULL;
	if (core_file_read(path, P12_MAX_SIZE, &buf, &len, err) == -1)
		goto out;
	p = buf;
	if ((p12 = d2i_PKCS12(NULL, &p, (long)len)) == NULL) {
		log_openssl("d2i_PKCS12");
		lb_err_set(err, LB_EINVAL, "%s: not a PKCS#12 file", path);
		goto out;
	}
	if (asprintf(&side, "%s.pass", path) == -1) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (access(side, R_OK) == 0)
		pass = core_secret_read(side, err);
	else if (pass_file != NULL)
		pass = core_secret_read(pass_file, err);
	else
		pass = ask_password(path, err);
	if (pass == NULL)
		goto out;
	if (PKCS12_parse(p12, pass, key, cert, chain) != 1 || *key == NULL ||
	    *cert == NULL) {
		log_openssl("PKCS12_parse");
		lb_err_set(err, LB_EINVAL, "%s: wrong password or no key and "
		    "certificate inside", path);
		EVP_PKEY_free(*key);
		X509_free(*cert);
		*key = NULL;
		*cert = NULL;
		if (chain != NULL) {
			sk_X509_pop_free(*chain, X509_free);
			*chain = NULL;
		}
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	core_secret_free(pass);
	free(side);
	if (buf != NULL)
		OPENSSL_clear_free(buf, len);
	PKCS12_free(p12);
	return rc;
}
