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

#define P12_MAX_SIZE (1024 * 1024)
#define P12_PASS_LEN 24
#define P12_ITER 10000

int
ca_p12_write(const char *path, const char *pass_file, EVP_PKEY *key,
    X509 *cert, STACK_OF(X509) *chain, const char *friendly,
    enum ca_p12_format fmt, lb_err *err)
{
	PKCS12 *p12 = NULL;
	char gen[P12_PASS_LEN + 2], *pass = NULL, *pass_path = NULL;
	unsigned char *der = NULL;
	int len, rc = -1, nid_key, nid_cert;
	const EVP_MD *mac;

	if (pass_file != NULL) {
		if ((pass = core_secret_read(pass_file, err)) == NULL)
			goto out;
	} else {
		if (core_random_password(gen, P12_PASS_LEN) == -1) {
			lb_err_set(err, LB_EINTERNAL, "no randomness");
			goto out;
		}
		pass = gen;
	}
	if (fmt == CA_P12_LEGACY) {
		nid_key = nid_cert = NID_pbe_WithSHA1And3_Key_TripleDES_CBC;
		mac = EVP_sha1();
	} else {
		nid_key = nid_cert = NID_aes_256_cbc;
		mac = EVP_sha256();
	}
	/* mac_iter -1: no MAC yet, so that we choose its digest below */
	p12 = PKCS12_create_ex(pass, friendly, key, cert, chain, nid_key,
	    nid_cert, P12_ITER, -1, 0, NULL, NULL);
	if (p12 == NULL ||
	    PKCS12_set_mac(p12, pass, -1, NULL, 0, P12_ITER, mac) != 1) {
		log_openssl("PKCS12_create_ex");
		lb_err_set(err, LB_EINTERNAL, "cannot build the PKCS#12 file");
		goto out;
	}
	if ((len = i2d_PKCS12(p12, &der)) <= 0) {
		log_openssl("i2d_PKCS12");
		lb_err_set(err, LB_EINTERNAL, "cannot encode the PKCS#12 file");
		goto out;
	}
	if (pass_file == NULL) {
		if (asprintf(&pass_path, "%s.pass", path) == -1) {
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
	OPENSSL_cleanse(gen, sizeof(gen));
	if (pass != gen)
		core_secret_free(pass);
	free(pass_path);
	if (der != NULL)
		OPENSSL_clear_free(der, (size_t)len);
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
