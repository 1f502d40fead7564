/*
 * ctx.c - opening a CA: its config, certificate chain, key and profiles,
 * and the accessors every other module uses to reach them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca/ca_int.h"

#define CHAIN_MAX_SIZE ((size_t)1024 * 1024)

/* Reads every certificate of a PEM file, in order. */
static STACK_OF(X509) *
read_chain(const char *path, lb_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	STACK_OF(X509) *sk = NULL;

	if (core_file_read(path, CHAIN_MAX_SIZE, &buf, &len, err) == 0)
		sk = ca_pem_chain_parse(buf, len, path, err);
	free(buf);
	return sk;
}

static char *
conf_path(const struct ca_ctx *ca, const char *name, const char *def)
{
	const char *v = core_conf_get(ca->conf, "ca", name, def);

	if (v[0] == '/')
		return strdup(v);
	return core_path(ca->dir, v);
}

ca_ctx *
ca_open(const char *dir, unsigned flags, lb_err *err)
{
	struct ca_ctx *ca = NULL;
	char *path = NULL, *pass = NULL;
	const char *url;
	int i;

	if ((ca = calloc(1, sizeof(*ca))) == NULL ||
	    (ca->dir = strdup(dir)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	if ((path = core_path(dir, CA_CONF_FILE)) == NULL)
		goto oom;
	if ((ca->conf = core_conf_load(path, err)) == NULL) {
		if (err != NULL && err->code == LB_ENOTFOUND)
			snprintf(err->msg, sizeof(err->msg),
			    "%s holds no lockbox CA: create one with 'lockbox "
			    "init --dir %s'", dir, dir);
		goto fail;
	}
	free(path);
	if ((path = conf_path(ca, "cert", CA_CERT_FILE)) == NULL)
		goto oom;
	if ((ca->chain = read_chain(path, err)) == NULL) {
		if (err != NULL && err->code == LB_ENOTFOUND)
			snprintf(err->msg, sizeof(err->msg),
			    "%s has no CA certificate yet: a subordinate CA "
			    "needs 'lockbox ca install FILE'", dir);
		goto fail;
	}
	ca->cert = sk_X509_value(ca->chain, 0);
	if ((ca->store = X509_STORE_new()) == NULL)
		goto oom;
	for (i = 0; i < sk_X509_num(ca->chain); i++)
		if (X509_STORE_add_cert(ca->store, sk_X509_value(ca->chain,
		    i)) != 1)
			goto oom;
	url = core_conf_get(ca->conf, "ca", "base_url",
	    "http://127.0.0.1:8080");
	if (strncmp(url, "http://", 7) != 0 || strlen(url) > 512) {
		lb_err_set(err, LB_EINVAL, "lockbox.conf: [ca] base_url must be "
		    "an http:// URL (relying parties fetch CRLs over plain "
		    "HTTP)");
		goto fail;
	}
	if ((ca->base_url = strdup(url)) == NULL)
		goto oom;
	/* no trailing slash: URLs are built as base_url + "/name" */
	while (strlen(ca->base_url) > 7 &&
	    ca->base_url[strlen(ca->base_url) - 1] == '/')
		ca->base_url[strlen(ca->base_url) - 1] = '\0';
	if (core_conf_get_bool(ca->conf, "ca", "role_separation", true,
	    &ca->role_separation, err) == -1)
		goto fail;
	if ((flags & CA_OPEN_NO_KEY) == 0) {
		free(path);
		if ((path = conf_path(ca, "key_pass_file", CA_KEY_PASS_FILE)) ==
		    NULL)
			goto oom;
		if ((pass = core_secret_read(path, err)) == NULL)
			goto fail;
		free(path);
		if ((path = conf_path(ca, "key", CA_KEY_FILE)) == NULL)
			goto oom;
		if ((ca->key = ca_key_read(path, pass, err)) == NULL)
			goto fail;
		if (X509_check_private_key(ca->cert, ca->key) != 1) {
			ERR_clear_error();
			lb_err_set(err, LB_EINVAL, "%s does not match the CA "
			    "certificate", path);
			goto fail;
		}
	}
	if (ca_profiles_load(ca, err) == -1)
		goto fail;
	goto out;
oom:
	lb_err_set(err, LB_EINTERNAL, "out of memory");
fail:
	ca_free(ca);
	ca = NULL;
out:
	core_secret_free(pass);
	free(path);
	return ca;
}

void
ca_free(ca_ctx *ca)
{
	if (ca == NULL)
		return;
	ca_signer_stop(ca);
	ca_profiles_free(ca);
	EVP_PKEY_free(ca->key);
	X509_STORE_free(ca->store);
	sk_X509_pop_free(ca->chain, X509_free);
	core_conf_free(ca->conf);
	free(ca->base_url);
	free(ca->dir);
	free(ca);
}

const char *
ca_get0_dir(const ca_ctx *ca)
{
	return ca->dir;
}

const core_conf *
ca_get0_conf(const ca_ctx *ca)
{
	return ca->conf;
}

X509 *
ca_get0_cert(const ca_ctx *ca)
{
	return ca->cert;
}

STACK_OF(X509) *
ca_get0_chain(const ca_ctx *ca)
{
	return ca->chain;
}

X509_STORE *
ca_get0_store(const ca_ctx *ca)
{
	return ca->store;
}

sqlite3 *
ca_db_open(const ca_ctx *ca, lb_err *err)
{
	char *path = core_path(ca->dir, CA_DB_FILE);
	sqlite3 *db;

	if (path == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	db = core_db_open(path, false, err);
	free(path);
	if (db != NULL && ca_key_uses_fill(db, ca->cert, err) == -1) {
		core_db_close(db);
		return NULL;
	}
	return db;
}
