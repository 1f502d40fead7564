/*
 * p12.c - PKCS#12 files for credentials and recovered keys, and the
 * passphrases that protect them: from a file the user names, or typed on
 * the terminal, never written beside the file they protect.  A file is
 * never overwritten.  `modern` is PBES2 (AES-256-CBC, PBKDF2-SHA256)
 * with an HMAC-SHA256 MAC, `legacy` PBE-SHA1-3DES with a SHA-1 MAC for
 * clients such as gpgsm 2.2 that cannot read the modern form.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/ui.h>

#include "ca/ca_int.h"

#define P12_MAX_SIZE ((size_t)1024 * 1024)
#define PASS_MIN 8
#define PASS_MAX 1023
#define P12_ITER 10000

/* A passphrase typed on the terminal (twice when verify), or NULL; the
 * caller has checked that there is one. */
static char *
pass_typed(const char *prompt, int verify, lb_err *err)
{
	char buf[PASS_MAX + 1];
	char *p = NULL;

	if (UI_UTIL_read_pw_string(buf, sizeof(buf), prompt, verify) != 0)
		lb_err_set(err, LB_EINVAL, "no passphrase given (or the two "
		    "did not match)");
	else if (strlen(buf) < PASS_MIN)
		lb_err_set(err, LB_EINVAL, "a passphrase has at least %d "
		    "characters", PASS_MIN);
	else if ((p = strdup(buf)) == NULL)
		lb_err_set(err, LB_EINTERNAL, "out of memory");
	OPENSSL_cleanse(buf, sizeof(buf));
	return p;
}

/* A passphrase from pass_file, else typed (twice when fresh). */
static char *
pass_from(const char *pass_file, const char *path, int fresh, lb_err *err)
{
	char prompt[PATH_MAX + 64];

	if (pass_file != NULL)
		return core_secret_read(pass_file, err);
	if (!isatty(STDIN_FILENO)) {
		lb_err_set(err, LB_EINVAL, "%s: no passphrase: name a file "
		    "holding %s (see --help: --pass-file or --p12-pass-file), "
		    "or run on a terminal to type it%s", path, fresh ? "one" :
		    "it", fresh ? "; nothing was written" : "");
		return NULL;
	}
	snprintf(prompt, sizeof(prompt), "%s for %s: ", fresh ?
	    "New passphrase" : "Passphrase", path);
	return pass_typed(prompt, fresh, err);
}

char *
ca_pass_new(const char *pass_file, const char *path, lb_err *err)
{
	return pass_from(pass_file, path, 1, err);
}

char *
ca_pass_get(const char *pass_file, const char *path, lb_err *err)
{
	return pass_from(pass_file, path, 0, err);
}

int
ca_out_free(const char *path, lb_err *err)
{
	if (access(path, F_OK) == 0)
		return lb_err_set(err, LB_ECONFLICT, "%s already exists: not "
		    "overwritten (remove it or choose another name)", path);
	return 0;
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

/* MACs p12 and writes it to path (0600), which must not exist. */
static int
p12_finish(PKCS12 *p12, const char *path, const char *pass,
    const EVP_MD *mac, lb_err *err)
{
	unsigned char *der = NULL;
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
	if (ca_out_free(path, err) == -1 ||
	    core_file_write(path, der, (size_t)len, 0600, true, err) == -1)
		goto out;
	rc = 0;
out:
	if (der != NULL)
		OPENSSL_clear_free(der, (size_t)len);
	return rc;
}

int
ca_p12_write(const char *path, const char *pass, EVP_PKEY *key,
    X509 *cert, STACK_OF(X509) *chain, const char *friendly,
    enum ca_p12_format fmt, lb_err *err)
{
	PKCS12 *p12 = NULL;
	int rc = -1, nid_key, nid_cert;
	const EVP_MD *mac;

	p12_algs(fmt, &nid_key, &nid_cert, &mac);
	/* mac_iter -1: no MAC yet, so that we choose its digest */
	p12 = PKCS12_create_ex(pass, friendly, key, cert, chain, nid_key,
	    nid_cert, P12_ITER, -1, 0, NULL, NULL);
	if (p12 == NULL) {
		log_openssl("PKCS12_create_ex");
		lb_err_set(err, LB_EINTERNAL, "cannot build the PKCS#12 file");
		goto out;
	}
	rc = p12_finish(p12, path, pass, mac, err);
out:
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
ca_p12_write_multi(const char *path, const char *pass,
    EVP_PKEY *const *keys, X509 *const *certs, const char *const *friendly,
    size_t n, STACK_OF(X509) *chain, enum ca_p12_format fmt, lb_err *err)
{
	STACK_OF(PKCS12_SAFEBAG) *certbags = NULL, *keybags = NULL;
	STACK_OF(PKCS7) *safes = NULL;
	PKCS12_SAFEBAG *bag;
	PKCS12 *p12 = NULL;
	int rc = -1, nid_key, nid_cert, i;
	const EVP_MD *mac;
	size_t k;

	if (n == 0)
		return lb_err_set(err, LB_EINVAL, "no key to put into %s",
		    path);
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
	rc = p12_finish(p12, path, pass, mac, err);
	goto out;
fail:
	log_openssl("PKCS12_add_key_ex");
	lb_err_set(err, LB_EINTERNAL, "cannot build the PKCS#12 file");
out:
	sk_PKCS12_SAFEBAG_pop_free(certbags, PKCS12_SAFEBAG_free);
	sk_PKCS12_SAFEBAG_pop_free(keybags, PKCS12_SAFEBAG_free);
	sk_PKCS7_pop_free(safes, PKCS7_free);
	PKCS12_free(p12);
	return rc;
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
	/* the file named wins; FILE.pass beside it is read only as
	 * credentials made by older versions left it */
	if (pass_file == NULL && access(side, R_OK) == 0)
		pass = core_secret_read(side, err);
	else
		pass = ca_pass_get(pass_file, path, err);
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
