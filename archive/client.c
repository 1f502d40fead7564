/*
 * client.c - the recovery workflow as the operators' clients run it, over
 * a transport the caller passes (cli/http.c in lockbox, a fake in the unit
 * tests): the officer opens a request (archive_client_request) and fetches
 * the keys once approved (archive_client_fetch); an agent approves
 * (archive_client_approve).  The secrets stay here: the one-time key is
 * made and kept in the officer's directory, shares are decrypted and
 * re-encrypted in the agent's process.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/archive.h"

/* API/ID, then suffix. */
static void
request_path(char *out, size_t len, const char *id, const char *suffix)
{
	snprintf(out, len, ARCHIVE_API "/%s%s", id, suffix);
}

void
archive_fingerprint(X509 *x, char out[ARCHIVE_FINGERPRINT_LEN])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	size_t i;

	out[0] = '\0';
	if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
		return;
	for (i = 0; i < n; i++)
		snprintf(out + 3 * i, ARCHIVE_FINGERPRINT_LEN - 3 * i, "%02X%s",
		    md[i], i + 1 < n ? ":" : "");
}

/* A 2xx answer's JSON, or NULL with err. */
static json_t *
reply_json(const core_http_reply *r, lb_err *err)
{
	json_t *j = r->body != NULL ? json_loadb(r->body, r->len, 0, NULL) :
	    NULL;

	if (!json_is_object(j)) {
		json_decref(j);
		lb_err_set(err, LB_EINTERNAL, "the server's answer is not a "
		    "JSON object");
		return NULL;
	}
	return j;
}

int
archive_client_request(const archive_transport *t, const char *dir,
    const char *email, const char *serial, const char *reason,
    archive_client_opened *out, lb_err *err)
{
	core_http_reply r = { 0 };
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	json_t *body = NULL, *id;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (access(dir, W_OK) == -1) {
		lb_err_set(err, LB_EINVAL, "%s: %s: the one-time key could not "
		    "be kept", dir, strerror(errno));
		return -1;
	}
	if ((key = ca_keygen(CA_KEY_RSA3072, err)) == NULL ||
	    (cert = archive_onetime_cert(key, t->key, t->cert, err)) == NULL)
		goto out;
	if ((body = archive_opening_json(email, serial, reason, cert)) ==
	    NULL) {
		lb_err_set(err, LB_EINVAL, "cannot build the request (is the "
		    "reason valid UTF-8?)");
		goto out;
	}
	if (t->api(t->h, "POST", ARCHIVE_API, body, &r, err) == -1 ||
	    (out->reply = reply_json(&r, err)) == NULL)
		goto out;
	id = json_object_get(out->reply, "id");
	if (!json_is_string(id) ||
	    !archive_request_id_valid(json_string_value(id))) {
		lb_err_set(err, LB_EINTERNAL, "the server answered no request "
		    "id");
		goto out;
	}
	memcpy(out->id, json_string_value(id), sizeof(out->id));
	if (archive_onetime_save(dir, out->id, key, cert, &out->key_path,
	    err) == -1)
		goto out;
	archive_fingerprint(cert, out->fingerprint);
	/* what the agents will release to: this officer's statement */
	if (archive_client_statement(t, dir, out->id, email, reason,
	    out->reply, err) == -1)
		goto out;
	rc = 0;
out:
	if (rc == -1 && out->id[0] == '\0')
		archive_client_opened_clear(out);
	core_http_reply_clear(&r);
	json_decref(body);
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}

void
archive_client_opened_clear(archive_client_opened *o)
{
	json_decref(o->reply);
	free(o->key_path);
	memset(o, 0, sizeof(*o));
}

/* Whether hash names a policy of the chain (any status but proposed). */
static bool
in_chain(const archive_verified *pv, const char *hash)
{
	size_t i;

	for (i = 0; i < pv->chain.n; i++)
		if (strcmp(pv->chain.links[i].p.hash, hash) == 0 &&
		    strcmp(pv->chain.links[i].status, "proposed") != 0)
			return true;
	return false;
}

/* Our shares re-encrypted to the one-time key, each bound to the record
 * the statement names for it. */
static int
rewrap_checked(const archive_view *v, const archive_checked *c,
    const archive_verified *pv, EVP_PKEY *key, X509 *cert,
    archive_approval *ap, size_t *unbound, lb_err *err)
{
	archive_share_binding b;
	unsigned char *wrapped = NULL, *copy;
	size_t wlen = 0, i;
	lb_err sub;

	memset(ap, 0, sizeof(*ap));
	*unbound = 0;
	for (i = 0; i < v->nshares; i++) {
		lb_err_clear(&sub);
		if (archive_share_rewrap_bound(key, cert, v->shares[i].cms,
		    v->shares[i].cms_len, v->request_cert, &b, &wrapped, &wlen,
		    &sub) == -1) {
			lb_err_set(err, sub.code, "your share of serial %s: %s",
			    v->shares[i].serial, sub.msg);
			goto fail;
		}
		if (b.bound && (CRYPTO_memcmp(b.aad_sha256, c->aad_sha256 +
		    32 * i, 32) != 0 || !in_chain(pv, b.policy))) {
			OPENSSL_free(wrapped);
			lb_err_set(err, LB_EINVAL, "the share the server gave as "
			    "yours of key %s belongs to another record or "
			    "policy: refusing to release a share",
			    v->shares[i].serial);
			goto fail;
		}
		*unbound += !b.bound;
		if ((copy = malloc(wlen)) == NULL) {
			OPENSSL_free(wrapped);
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto fail;
		}
		memcpy(copy, wrapped, wlen);
		OPENSSL_free(wrapped);
		if (archive_approval_add(ap, v->shares[i].record_id, copy,
		    wlen) == -1) {
			free(copy);
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto fail;
		}
	}
	return 0;
fail:
	archive_approval_clear(ap);
	return -1;
}

int
archive_client_approve(const archive_transport *t, const char *id,
    const char *ca_file, const char *home, const char *trust,
    const archive_review *rv, archive_client_approved *out, lb_err *err)
{
	core_http_reply r = { 0 };
	archive_view v = { 0 };
	archive_approval ap = { 0 };
	archive_verified pv;
	archive_checked c;
	json_t *body = NULL, *resp = NULL;
	char path[128], fp[ARCHIVE_FINGERPRINT_LEN], onetime[65] = "";
	bool seen = false, releasing;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	memset(&pv, 0, sizeof(pv));
	memset(&c, 0, sizeof(c));
	request_path(path, sizeof(path), id, "");
	if (t->api(t->h, "GET", path, NULL, &r, err) == -1 ||
	    archive_view_parse(r.body, r.len, &v, err) == -1)
		goto out;
	/*
	 * Nothing to hand in (not pending, or no share of ours): the server
	 * decides, says why and audits the attempt.
	 */
	releasing = strcmp(v.status, "pending") == 0 && v.nshares > 0;
	if (!releasing) {
		rv->show(rv->arg, &v, NULL, NULL);
	} else {
		if (archive_client_policy_verify(t, home, trust, &pv,
		    err) == -1)
			goto out;
		if (pv.in_force < 0) {
			lb_err_set(err, LB_EINVAL, "no escrow policy this client "
			    "trusts is in force: refusing to release a share");
			goto out;
		}
		if (archive_view_statement_check(&v,
		    &pv.chain.links[pv.in_force].p, t->cert, &c, err) == -1 ||
		    archive_view_check(&v, ca_file, err) == -1 ||
		    archive_released_before(home, c.s.onetime, &seen,
		    err) == -1)
			goto out;
		if (seen) {
			lb_err_set(err, LB_EINVAL, "you released shares to this "
			    "request's one-time key before: refusing to release "
			    "to it again");
			goto out;
		}
		memcpy(onetime, c.s.onetime, sizeof(onetime));
		rv->show(rv->arg, &v, &c, &pv.chain.links[pv.in_force].p);
		archive_fingerprint(v.request_cert, fp);
		if (!rv->confirm(rv->arg, &v, fp)) {
			lb_err_set(err, LB_EINVAL, "not approved");
			goto out;
		}
		if (rewrap_checked(&v, &c, &pv, t->key, t->cert, &ap,
		    &out->unbound, err) == -1)
			goto out;
	}
	if ((body = archive_approval_json(&ap)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	core_http_reply_clear(&r);
	request_path(path, sizeof(path), id, "/approve");
	if (t->api(t->h, "POST", path, body, &r, err) == -1 ||
	    (resp = reply_json(&r, err)) == NULL)
		goto out;
	/* released: never again to this key */
	if (onetime[0] != '\0' && archive_released_add(home, onetime,
	    err) == -1)
		goto out;
	out->nshares = ap.nshares;
	out->approvals = json_integer_value(json_object_get(resp,
	    "approvals"));
	out->threshold = json_integer_value(json_object_get(resp,
	    "threshold"));
	snprintf(out->status, sizeof(out->status), "%s",
	    json_string_value(json_object_get(resp, "status")) != NULL ?
	    json_string_value(json_object_get(resp, "status")) : "");
	rc = 0;
out:
	archive_checked_clear(&c);
	archive_verified_clear(&pv);
	archive_approval_clear(&ap);
	archive_view_clear(&v);
	core_http_reply_clear(&r);
	json_decref(resp);
	json_decref(body);
	return rc;
}

/*
 * A fetch the server refused (409/410): when the request is over, its
 * one-time key can never serve again and goes; err (kept) says so.
 */
static void
forget_if_over(const archive_transport *t, const char *dir, const char *id,
    lb_err *err)
{
	static const char *const over[] = { "denied", "expired", "collected",
	    NULL };
	core_http_reply r = { 0 };
	archive_view v;
	lb_err e = { 0 };
	char path[128];
	size_t i, n;

	memset(&v, 0, sizeof(v));
	request_path(path, sizeof(path), id, "");
	if (t->api(t->h, "GET", path, NULL, &r, &e) == 0 &&
	    archive_view_parse((const char *)r.body, r.len, &v, &e) == 0) {
		for (i = 0; over[i] != NULL; i++)
			if (strcmp(v.status, over[i]) == 0)
				break;
		if (over[i] != NULL)
			archive_statement_remove(dir, id);
		if (over[i] != NULL && archive_onetime_remove(dir, id,
		    &e) == 0 && (n = strlen(err->msg)) < sizeof(err->msg))
			snprintf(err->msg + n, sizeof(err->msg) - n, "; the "
			    "one-time key of request %s is deleted", id);
	}
	archive_view_clear(&v);
	core_http_reply_clear(&r);
}

int
archive_client_fetch(const archive_transport *t, const char *dir,
    const char *id, const char *serial, archive_package *pkg,
    archive_opened *keys, lb_err *err)
{
	core_http_reply r = { 0 };
	EVP_PKEY *otkey = NULL;
	X509 *otcert = NULL;
	archive_statement st;
	char path[128];
	size_t i;
	int rc = -1;

	memset(&st, 0, sizeof(st));
	memset(pkg, 0, sizeof(*pkg));
	memset(keys, 0, sizeof(*keys));
	request_path(path, sizeof(path), id, "/package");
	/* the server first: a request that is over is said so, whatever
	 * is left here */
	if (t->api(t->h, "GET", path, NULL, &r, err) == -1 ||
	    archive_onetime_load(dir, id, &otkey, &otcert, err) == -1 ||
	    archive_statement_load(dir, id, &st, err) == -1 ||
	    archive_package_parse(r.body, r.len, pkg, err) == -1)
		goto out;
	/* only the keys this officer asked for */
	for (i = 0; i < pkg->nrecords; i++)
		if (archive_statement_find(&st, pkg->records[i].serial) ==
		    NULL) {
			lb_err_set(err, LB_EINVAL, "the package holds key %s, "
			    "which your statement of request %s does not name: "
			    "nothing is written", pkg->records[i].serial, id);
			archive_package_clear(pkg);
			goto out;
		}
	if (archive_package_open(pkg, serial, otkey, otcert, keys, err) == -1) {
		archive_package_clear(pkg);
		goto out;
	}
	rc = 0;
out:
	if (rc == -1 && err != NULL && err->code == LB_ECONFLICT)
		forget_if_over(t, dir, id, err);
	core_http_reply_clear(&r);
	EVP_PKEY_free(otkey);
	X509_free(otcert);
	archive_statement_clear(&st);
	return rc;
}

int
archive_client_collected(const archive_transport *t, const char *dir,
    const char *id, lb_err *err)
{
	core_http_reply r = { 0 };
	char path[128];
	int rc;

	if (archive_onetime_remove(dir, id, err) == -1)
		return -1;
	archive_statement_remove(dir, id);
	request_path(path, sizeof(path), id, "/collected");
	rc = t->api(t->h, "POST", path, NULL, &r, err);
	core_http_reply_clear(&r);
	return rc;
}
