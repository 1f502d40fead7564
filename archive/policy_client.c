/*
 * policy_client.c - the escrow policy as its members' clients see it:
 * each keeps a pin (under --home, by default ~/.lockbox) naming the first
 * policy it signed (or was told to trust) and the newest it verified, and
 * trusts the server's list of policies only as far as the pin and the
 * members' signatures carry it - never because the CA says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509v3.h>

#include "archive/archive_int.h"

#define PIN_FILE "escrow-pin.json"

/* ------------------------------------------------------------------ */
/* The pin                                                             */


int
archive_pin_load(const char *home, archive_pin *pin, bool *found,
    lb_err *err)
{
	char *path = core_path(home, PIN_FILE);
	unsigned char *buf = NULL;
	size_t len = 0;
	json_t *j = NULL;
	const char *first, *newest;
	lb_err e;
	int rc = -1;

	memset(pin, 0, sizeof(*pin));
	*found = false;
	lb_err_clear(&e);
	if (path == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (core_file_read(path, 4096, &buf, &len, &e) == -1) {
		if (e.code == LB_ENOTFOUND) {
			rc = 0;
		} else {
			*err = e;
		}
		goto out;
	}
	j = json_loadb((const char *)buf, len, 0, NULL);
	first = json_string_value(json_object_get(j, "first"));
	newest = json_string_value(json_object_get(j, "newest"));
	if (!archive_policy_hash_valid(first) || !archive_policy_hash_valid(newest)) {
		lb_err_set(err, LB_EINVAL, "%s is not this client's policy pin",
		    path);
		goto out;
	}
	memcpy(pin->first, first, 65);
	memcpy(pin->newest, newest, 65);
	*found = true;
	rc = 0;
out:
	json_decref(j);
	free(buf);
	free(path);
	return rc;
}

int
archive_pin_save(const char *home, const archive_pin *pin, lb_err *err)
{
	char *path = core_path(home, PIN_FILE), *text = NULL;
	int rc = -1;

	if (path == NULL || asprintf(&text, "{\"first\": \"%s\", \"newest\": "
	    "\"%s\"}\n", pin->first, pin->newest) == -1)
		lb_err_set(err, LB_EINTERNAL, "out of memory");
	else
		rc = core_file_write(path, text, strlen(text), 0600, false,
		    err);
	free(text);
	free(path);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Verifying the chain                                                 */

void
archive_verified_clear(archive_verified *v)
{
	archive_chain_clear(&v->chain);
	v->in_force = v->pending = v->first = -1;
}

static long
find_hash(const archive_chain *c, const char *hash)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->links[i].p.hash, hash) == 0)
			return (long)i;
	return -1;
}

int
archive_chain_verify(archive_verified *v, const char *first,
    const char *newest, lb_err *err)
{
	const archive_chain *c = &v->chain;
	char (*keys)[65] = NULL;
	size_t nkeys, i, nnext;
	long cur, next;
	bool seen_newest;
	lb_err why;

	v->in_force = v->pending = -1;
	v->first = -1;
	if ((cur = find_hash(c, first)) == -1)
		return lb_err_set(err, LB_EINVAL, "the server has no escrow "
		    "policy %.16s (the one this client trusts): it is not the "
		    "CA this client's members signed for, or its policies were "
		    "rewritten", first);
	seen_newest = newest == NULL || strcmp(newest, first) == 0;
	v->first = cur;
	if (strcmp(c->links[cur].status, "proposed") == 0)
		v->pending = cur;
	else
		v->in_force = cur;
	while (v->pending == -1) {
		for (i = 0, nnext = 0, next = -1; i < c->n; i++)
			if (strcmp(c->links[i].p.previous,
			    c->links[cur].p.hash) == 0) {
				next = (long)i;
				nnext++;
			}
		if (nnext > 1)
			return lb_err_set(err, LB_EINVAL, "the server shows two "
			    "successors of escrow policy v%d: refusing a forked "
			    "policy", c->links[cur].p.version);
		if (next == -1)
			break;
		if (strcmp(c->links[next].status, "proposed") == 0) {
			v->pending = next;
			break;
		}
		if (archive_chain_link_signers(&c->links[next], &keys, &nkeys,
		    err) == -1)
			return -1;
		lb_err_clear(&why);
		if (archive_policy_accepted(&c->links[cur].p, &c->links[next].p,
		    (const char (*)[65])keys, nkeys, &why) == -1) {
			free(keys);
			return lb_err_set(err, LB_EINVAL, "escrow policy v%d "
			    "(%.16s) stands on the server as %s, but its "
			    "members' signatures do not put it in force: %s",
			    c->links[next].p.version, c->links[next].p.hash,
			    c->links[next].status, why.msg);
		}
		free(keys);
		keys = NULL;
		cur = v->in_force = next;
		if (newest != NULL && strcmp(c->links[cur].p.hash, newest) == 0)
			seen_newest = true;
	}
	if (!seen_newest)
		return lb_err_set(err, LB_EINVAL, "the server's escrow policies "
		    "no longer lead to policy %.16s, the newest this client "
		    "verified: they were rewritten", newest);
	return 0;
}

static int
chain_fetch(const archive_transport *t, archive_chain *c, lb_err *err)
{
	core_http_reply r = { 0 };
	int rc = -1;

	if (t->api(t->h, "GET", ARCHIVE_API_POLICIES, NULL, &r, err) == 0)
		rc = archive_chain_parse(r.body != NULL ? r.body : "", r.len, c,
		    err);
	core_http_reply_clear(&r);
	return rc;
}

/* The pin, or one made of trust; LB_ENOTFOUND without either. */
static int
pin_or_trust(const char *home, const char *trust, archive_pin *pin,
    bool *pinned, lb_err *err)
{
	if (archive_pin_load(home, pin, pinned, err) == -1)
		return -1;
	if (*pinned && trust != NULL && strcmp(trust, pin->first) != 0 &&
	    strcmp(trust, pin->newest) != 0)
		return lb_err_set(err, LB_EINVAL, "this client already trusts "
		    "escrow policy %.16s: --trust-policy names another",
		    pin->first);
	if (!*pinned && trust != NULL) {
		memcpy(pin->first, trust, 65);
		memcpy(pin->newest, trust, 65);
	}
	return 0;
}

int
archive_client_policy_verify(const archive_transport *t, const char *home,
    const char *trust, archive_verified *out, lb_err *err)
{
	archive_pin pin;
	bool pinned;

	memset(out, 0, sizeof(*out));
	out->in_force = out->pending = -1;
	if (pin_or_trust(home, trust, &pin, &pinned, err) == -1)
		return -1;
	if (!pinned && trust == NULL)
		return lb_err_set(err, LB_ENOTFOUND, "this client trusts no "
		    "escrow policy yet: sign one that names your key, or give "
		    "--trust-policy HASH (from another member, never from the "
		    "server)");
	if (chain_fetch(t, &out->chain, err) == -1 ||
	    archive_chain_verify(out, pin.first, pinned ? pin.newest : NULL,
	    err) == -1) {
		archive_verified_clear(out);
		return -1;
	}
	if (out->in_force >= 0)
		memcpy(pin.newest, out->chain.links[out->in_force].p.hash, 65);
	if (archive_pin_save(home, &pin, err) == -1) {
		archive_verified_clear(out);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Signing                                                             */

void
archive_cert_email(X509 *x, char *out, size_t len)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
	    NULL);
	int i;

	out[0] = '\0';
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_EMAIL && (size_t)ASN1_STRING_length(
		    g->d.rfc822Name) < len) {
			memcpy(out, ASN1_STRING_get0_data(g->d.rfc822Name),
			    (size_t)ASN1_STRING_length(g->d.rfc822Name));
			out[ASN1_STRING_length(g->d.rfc822Name)] = '\0';
			break;
		}
	}
	GENERAL_NAMES_free(gens);
}

/* Refuses a proposal naming our e-mail with another key. */
static int
not_impersonated(const archive_policy *p, const char *spki,
    const char *email, lb_err *err)
{
	size_t i;

	for (i = 0; email[0] != '\0' && i < p->nmembers; i++)
		if (strcasecmp(p->members[i].email, email) == 0 &&
		    strcmp(p->members[i].spki, spki) != 0)
			return lb_err_set(err, LB_EINVAL, "proposal v%d names "
			    "%s with another key (%.16s) than your credential's "
			    "(%.16s): refusing to sign", p->version,
			    p->members[i].email, p->members[i].spki, spki);
	return 0;
}

int
archive_client_policy_sign(const archive_transport *t, const char *home,
    const char *hash, const char *trust, const archive_policy_review *rv,
    bool *in_force, lb_err *err)
{
	archive_verified v;
	archive_pin pin;
	const archive_chain_link *prop, *prev = NULL;
	core_http_reply r = { 0 };
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	char spki[65], email[256], path[160], *b64 = NULL;
	json_t *body = NULL, *resp = NULL;
	bool pinned;
	long at;
	int rc = -1;

	*in_force = false;
	memset(&v, 0, sizeof(v));
	v.in_force = v.pending = -1;
	if (!archive_policy_hash_valid(hash))
		return lb_err_set(err, LB_EINVAL, "'%s' is not a policy hash "
		    "(64 lowercase hex digits)", hash);
	if (ca_spki_sha256(t->cert, spki) == -1)
		return lb_err_set(err, LB_EINVAL, "cannot read the "
		    "credential's key");
	archive_cert_email(t->cert, email, sizeof(email));
	if (pin_or_trust(home, trust, &pin, &pinned, err) == -1 ||
	    chain_fetch(t, &v.chain, err) == -1)
		goto out;
	/* the hash read out names the document: a different one is not it */
	if ((at = find_hash(&v.chain, hash)) == -1 ||
	    strcmp(v.chain.links[at].status, "proposed") != 0) {
		lb_err_set(err, LB_ENOTFOUND, "the server has no pending "
		    "proposal whose document hashes to %s: check the hash read "
		    "out at the ceremony", hash);
		goto out;
	}
	prop = &v.chain.links[at];
	if (not_impersonated(&prop->p, spki, email, err) == -1)
		goto out;
	if (pinned || trust != NULL) {
		/* it must follow the newest policy this client verified */
		if (archive_chain_verify(&v, pin.first, pinned ? pin.newest :
		    NULL, err) == -1)
			goto out;
		if (v.pending != at) {
			lb_err_set(err, LB_EINVAL, "proposal v%d does not follow "
			    "the escrow policy this client trusts (%.16s)",
			    prop->p.version, pin.first);
			goto out;
		}
		if (v.in_force >= 0)
			prev = &v.chain.links[v.in_force];
	} else if (archive_policy_member_find(&prop->p, spki) == NULL) {
		lb_err_set(err, LB_EINVAL, "this client trusts no escrow policy "
		    "yet, and proposal v%d does not name your key: give "
		    "--trust-policy HASH (from another member, never from the "
		    "server)", prop->p.version);
		goto out;
	}
	if (rv != NULL && !rv->confirm(rv->arg, &prop->p, prev != NULL ?
	    &prev->p : NULL, spki)) {
		lb_err_set(err, LB_EINVAL, "not signed");
		goto out;
	}
	if (archive_policy_sign(&prop->p, t->key, t->cert, &sig, &sig_len,
	    err) == -1)
		goto out;
	if (core_b64_encode(sig, sig_len, 0, &b64, NULL) == -1 ||
	    (body = json_pack("{s:s}", "cms", b64)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	snprintf(path, sizeof(path), ARCHIVE_API_POLICIES "/%s/signatures",
	    hash);
	if (t->api(t->h, "POST", path, body, &r, err) == -1)
		goto out;
	resp = r.body != NULL ? json_loadb(r.body, r.len, 0, NULL) : NULL;
	*in_force = json_is_true(json_object_get(resp, "in_force"));
	/* the first policy this client signed is its pin from now on */
	if (!pinned) {
		memcpy(pin.first, trust != NULL ? trust : hash, 65);
		memcpy(pin.newest, pin.first, 65);
	}
	if (*in_force)
		memcpy(pin.newest, hash, 65);
	rc = archive_pin_save(home, &pin, err);
out:
	json_decref(resp);
	json_decref(body);
	free(b64);
	OPENSSL_free(sig);
	core_http_reply_clear(&r);
	archive_verified_clear(&v);
	return rc;
}
