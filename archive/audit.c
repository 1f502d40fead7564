/*
 * audit.c - agents' clients audit the escrows, both ends of it: the
 * server lists escrow records with their share blobs and the agent
 * certificates they name (GET /api/v1/escrow/records), and a member's
 * client checks each record against the policy chain its own pin
 * verifies: the record's policy is one it verified, the record follows
 * that policy's threshold, and its shares go to exactly that policy's
 * agents - read from the CMS recipients themselves and the keys of the
 * certificates they name, not from the rows that describe them.  Where
 * the client's own key is an agent of the record's policy, it decrypts
 * its own share as the proof no label can give.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "archive/archive_int.h"

#define AUDIT_FILE  "escrow-audit.json"
#define PAGE        200

/* ------------------------------------------------------------------ */
/* The server's end                                                    */

struct certs {
	json_t *obj;          /* serial -> PEM */
	sqlite3 *db;
	int failed;
};

static void
add_cert(struct certs *c, const char *serial)
{
	ca_cert_info ci;
	lb_err err = { 0 };

	if (json_object_get(c->obj, serial) != NULL)
		return;
	memset(&ci, 0, sizeof(ci));
	if (ca_cert_get(c->db, serial, &ci, &err) == 0)
		c->failed |= ca_json_put(c->obj, serial, ca_json_pem(ci.der,
		    ci.der_len));
	ca_cert_info_clear(&ci);
}

/*
 * The record's certificate as "cert", from ca's store.  A record whose
 * certificate is not there is listed without one, so that the members'
 * audit flags it rather than never seeing the record.
 */
static int
record_cert(sqlite3 *db, json_t *r, const char *serial, lb_err *err)
{
	ca_cert_info ci;
	int rc = 0;

	if (serial == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (ca_cert_get(db, serial, &ci, err) == -1) {
		if (err->code != LB_ENOTFOUND)
			return -1;
		lb_err_clear(err);
		return 0;
	}
	if (ca_json_put(r, "cert", ca_json_pem(ci.der, ci.der_len)) == -1)
		rc = lb_err_set(err, LB_EINTERNAL, "out of memory");
	ca_cert_info_clear(&ci);
	return rc;
}

json_t *
archive_escrow_list_json(sqlite3 *db, int64_t after, int limit, lb_err *err)
{
	sqlite3_stmt *st = NULL, *sh = NULL;
	json_t *out = json_object(), *recs = json_array(), *r, *shares;
	struct certs c = { json_object(), db, 0 };
	char *b64 = NULL;
	int rc;

	if (out == NULL || recs == NULL || c.obj == NULL ||
	    ca_json_put(out, "records", recs) == -1 ||
	    ca_json_put(out, "certs", c.obj) == -1) {
		json_decref(out);
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	if (core_db_prepare(db, "SELECT id, serial, email, created, "
	    "policy_hash, threshold FROM escrow_records WHERE id > ? ORDER BY "
	    "id LIMIT ?", &st, err) == -1 ||
	    core_db_prepare(db, "SELECT agent_serial, cms FROM escrow_shares "
	    "WHERE record_id = ? ORDER BY share_nr", &sh, err) == -1)
		goto fail;
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		char created[32];
		const char *pol = (const char *)sqlite3_column_text(st, 4);

		core_time_fmt((time_t)sqlite3_column_int64(st, 3), created,
		    sizeof(created));
		r = json_pack("{s:I, s:s, s:s, s:s, s:s?, s:i, s:[]}", "id",
		    (json_int_t)sqlite3_column_int64(st, 0), "serial",
		    (const char *)sqlite3_column_text(st, 1), "email",
		    (const char *)sqlite3_column_text(st, 2), "created",
		    created, "policy", pol, "threshold",
		    sqlite3_column_int(st, 5), "shares");
		if (r == NULL || json_array_append_new(recs, r) == -1)
			goto oom;
		if (record_cert(db, r, (const char *)sqlite3_column_text(st,
		    1), err) == -1)
			goto fail;
		shares = json_object_get(r, "shares");
		sqlite3_reset(sh);
		sqlite3_bind_int64(sh, 1, sqlite3_column_int64(st, 0));
		while (sqlite3_step(sh) == SQLITE_ROW) {
			const char *agent = (const char *)sqlite3_column_text(sh,
			    0);

			if (agent == NULL || core_b64_encode(sqlite3_column_blob(
			    sh, 1), (size_t)sqlite3_column_bytes(sh, 1), 0, &b64,
			    NULL) == -1 || json_array_append_new(shares,
			    json_pack("{s:s, s:s}", "agent_serial", agent, "cms",
			    b64)) == -1)
				goto oom;
			free(b64);
			b64 = NULL;
			add_cert(&c, agent);
		}
	}
	if (rc != SQLITE_DONE || c.failed) {
		core_db_fail(db, "list the escrow records", err);
		goto fail;
	}
	sqlite3_finalize(st);
	sqlite3_finalize(sh);
	return out;
oom:
	lb_err_set(err, LB_EINTERNAL, "out of memory");
fail:
	free(b64);
	sqlite3_finalize(st);
	sqlite3_finalize(sh);
	json_decref(out);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The client's end                                                    */

void
archive_audit_clear(archive_audit *a)
{
	size_t i;

	for (i = 0; i < a->nproblems; i++)
		free(a->problems[i]);
	free(a->problems);
	memset(a, 0, sizeof(*a));
}

static void problem(archive_audit *a, const char *serial, const char *email,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
problem(archive_audit *a, const char *serial, const char *email,
    const char *fmt, ...)
{
	char what[256], *line = NULL, **np;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (asprintf(&line, "record %s (%s): %s", serial, email, what) == -1)
		return;
	if ((np = realloc(a->problems, (a->nproblems + 1) * sizeof(*np))) ==
	    NULL) {
		free(line);
		return;
	}
	a->problems = np;
	a->problems[a->nproblems++] = line;
}

/* The verified policy a record names: in force or superseded on the way
 * from the pin; NULL otherwise (*before: it is older than the pin). */
static const archive_policy *
record_policy(const archive_verified *v, const char *hash, long *at,
    bool *before)
{
	long i;

	*before = false;
	for (i = 0; i < (long)v->chain.n; i++) {
		if (strcmp(v->chain.links[i].p.hash, hash) != 0)
			continue;
		if (i < v->first)
			*before = true;
		else if (i <= v->in_force)
			break;
		return NULL;
	}
	if (i == (long)v->chain.n)
		return NULL;
	*at = i;
	return &v->chain.links[i].p;
}

/* The certificate the server gives for serial (a new reference). */
static X509 *
given_cert(json_t *certs, const char *serial)
{
	const char *pem = json_string_value(json_object_get(certs, serial));
	lb_err err = { 0 };

	if (pem == NULL)
		return NULL;
	return ca_cert_parse((const unsigned char *)pem, strlen(pem), &err);
}

/*
 * One share: its CMS has exactly one key-transport recipient, which
 * names a certificate the server gave, whose key the policy lists as an
 * agent not yet seen in this record.  *mine when that agent is us.
 */
static const char *
check_share(const archive_policy *p, json_t *share, json_t *certs,
    bool *seen, const char *own_spki, bool *mine, unsigned char **der,
    size_t *der_len)
{
	const char *agent = json_string_value(json_object_get(share,
	    "agent_serial"));
	const char *b64 = json_string_value(json_object_get(share, "cms"));
	const unsigned char *q;
	STACK_OF(CMS_RecipientInfo) *ris;
	CMS_ContentInfo *cms = NULL;
	const archive_policy_member *m;
	const char *why = NULL;
	char spki[65];
	X509 *x = NULL;
	size_t i;

	*mine = false;
	*der = NULL;
	if (agent == NULL || b64 == NULL || core_b64_decode(b64, strlen(b64),
	    ARCHIVE_POLICY_SIG_MAX, 0, der, der_len) == -1)
		return "a share is malformed";
	q = *der;
	if ((cms = d2i_CMS_ContentInfo(NULL, &q, (long)*der_len)) == NULL ||
	    OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped ||
	    (ris = CMS_get0_RecipientInfos(cms)) == NULL ||
	    sk_CMS_RecipientInfo_num(ris) != 1 ||
	    CMS_RecipientInfo_type(sk_CMS_RecipientInfo_value(ris, 0)) !=
	    CMS_RECIPINFO_TRANS) {
		why = "a share is not CMS EnvelopedData to one recipient";
		goto out;
	}
	if ((x = given_cert(certs, agent)) == NULL ||
	    CMS_RecipientInfo_ktri_cert_cmp(sk_CMS_RecipientInfo_value(ris, 0),
	    x) != 0 || ca_spki_sha256(x, spki) == -1) {
		why = "a share's recipient is not the agent certificate it is "
		    "filed under";
		goto out;
	}
	if ((m = archive_policy_member_find(p, spki)) == NULL ||
	    m->role != ARCHIVE_MEMBER_AGENT) {
		why = "a share goes to a key that is no agent of its policy";
		goto out;
	}
	i = (size_t)(m - p->members);
	if (seen[i]) {
		why = "two shares go to one agent";
		goto out;
	}
	seen[i] = true;
	*mine = own_spki != NULL && strcmp(spki, own_spki) == 0;
out:
	ERR_clear_error();
	X509_free(x);
	CMS_ContentInfo_free(cms);
	return why;
}

/* Whether a bound share's plaintext names record r (its certificate and
 * owner email) and policy pol. */
static bool
binding_ok(const unsigned char *pt, json_t *r, const char *email,
    const char *pol)
{
	const char *pem = json_string_value(json_object_get(r, "cert"));
	unsigned char *aad = NULL, md[32];
	size_t aad_len = 0;
	char hex[65];
	lb_err err = { 0 };
	X509 *x;
	bool ok = false;

	if (pem == NULL || (x = ca_cert_parse((const unsigned char *)pem,
	    strlen(pem), &err)) == NULL)
		return false;
	if (archive_record_aad(x, email, &aad, &aad_len, &err) == 0 &&
	    EVP_Digest(aad, aad_len, md, NULL, EVP_sha256(), NULL) == 1) {
		core_hex_lower(pt + ARCHIVE_SHARE_LEN + 32, 32, hex);
		ok = CRYPTO_memcmp(md, pt + ARCHIVE_SHARE_LEN, 32) == 0 &&
		    strcmp(hex, pol) == 0;
	}
	free(aad);
	X509_free(x);
	return ok;
}

/* Checks one record; its problems into a. */
static void
check_record(const archive_verified *v, json_t *r, json_t *certs,
    const archive_transport *t, const char *own_spki, archive_audit *a)
{
	const char *serial = json_string_value(json_object_get(r, "serial"));
	const char *email = json_string_value(json_object_get(r, "email"));
	const char *pol = json_string_value(json_object_get(r, "policy"));
	const char *created = json_string_value(json_object_get(r, "created"));
	json_t *shares = json_object_get(r, "shares"), *s;
	const archive_policy *p, *first = &v->chain.links[0].p;
	unsigned char *der = NULL, *pt = NULL;
	size_t der_len = 0, pt_len = 0, i, nagents;
	bool *seen = NULL, mine, before;
	const char *why;
	lb_err err = { 0 };
	long at = -1;

	serial = serial != NULL ? serial : "?";
	email = email != NULL ? email : "?";
	a->records++;
	if (pol == NULL) {
		/* before any signed policy: an upgraded state directory */
		if (created != NULL && strcmp(created, first->created) >= 0)
			problem(a, serial, email, "%s", "escrowed after the "
			    "policies began, yet under none");
		else
			a->unsigned_before++;
		return;
	}
	if ((p = record_policy(v, pol, &at, &before)) == NULL) {
		if (before)
			a->before_pin++;
		else
			problem(a, serial, email, "escrowed under policy %.16s, "
			    "which this client has not verified", pol);
		return;
	}
	/* a policy two versions on was proposed after the one before it
	 * was in force: a record under the older one is stale by then */
	if (at + 2 <= v->in_force && created != NULL &&
	    strcmp(created, v->chain.links[at + 2].p.created) >= 0)
		problem(a, serial, email, "escrowed under policy %.16s after "
		    "newer ones were in force", pol);
	nagents = archive_policy_count(p, ARCHIVE_MEMBER_AGENT);
	if (json_integer_value(json_object_get(r, "threshold")) !=
	    p->threshold)
		problem(a, serial, email, "%s", "its threshold is not its "
		    "policy's");
	if (json_array_size(shares) != nagents)
		problem(a, serial, email, "%s", "its shares are not one per "
		    "agent of its policy");
	if ((seen = calloc(p->nmembers + 1, sizeof(bool))) == NULL)
		return;
	json_array_foreach(shares, i, s) {
		why = check_share(p, s, certs, seen, own_spki, &mine, &der,
		    &der_len);
		if (why != NULL) {
			problem(a, serial, email, "%s", why);
		} else if (mine && t != NULL) {
			/* our own share: no label, the decryption proves it */
			if (archive_cms_decrypt(t->key, t->cert, der, der_len,
			    4096, &pt, &pt_len, &err) == -1 || (pt_len !=
			    ARCHIVE_SHARE_LEN && pt_len != ARCHIVE_SHARE_BOUND_LEN))
				problem(a, serial, email, "%s", "the share filed "
				    "under your key does not decrypt with it");
			else if (pt_len == ARCHIVE_SHARE_BOUND_LEN &&
			    !binding_ok(pt, r, email, pol))
				problem(a, serial, email, "%s", "the share filed "
				    "under your key belongs to another record or "
				    "policy");
			else
				a->own_shares++;
			if (pt != NULL)
				OPENSSL_clear_free(pt, pt_len);
			pt = NULL;
			lb_err_clear(&err);
		}
		free(der);
		der = NULL;
	}
	free(seen);
}

int
archive_audit_page(const archive_verified *v, const archive_transport *t,
    const char *body, size_t len, archive_audit *a, int64_t *last,
    size_t *n, lb_err *err)
{
	json_t *page, *recs, *certs, *rec, *id;
	char own[65], *ownp = NULL;
	size_t i;

	*n = 0;
	if (v->in_force < 0 || v->first < 0)
		return lb_err_set(err, LB_EINVAL, "no verified policy to audit "
		    "against");
	if (t != NULL && t->cert != NULL && ca_spki_sha256(t->cert, own) == 0)
		ownp = own;
	page = len <= ARCHIVE_MESSAGE_MAX ? json_loadb(body, len,
	    JSON_REJECT_DUPLICATES, NULL) : NULL;
	recs = json_object_get(page, "records");
	certs = json_object_get(page, "certs");
	if (!json_is_array(recs) || !json_is_object(certs)) {
		json_decref(page);
		return lb_err_set(err, LB_EINVAL, "the server's list of escrow "
		    "records is malformed");
	}
	json_array_foreach(recs, i, rec) {
		id = json_object_get(rec, "id");
		/* records come in order, each once */
		if (!json_is_integer(id) || json_integer_value(id) <= *last) {
			json_decref(page);
			return lb_err_set(err, LB_EINVAL, "the server's list of "
			    "escrow records is out of order");
		}
		*last = json_integer_value(id);
		check_record(v, rec, certs, t, ownp, a);
	}
	*n = json_array_size(recs);
	json_decref(page);
	return 0;
}

static int
state_load(const char *home, int64_t *after)
{
	char *path = core_path(home, AUDIT_FILE);
	unsigned char *buf = NULL;
	size_t len = 0;
	lb_err err = { 0 };
	json_t *j;

	*after = 0;
	if (path != NULL && core_file_read(path, 4096, &buf, &len, &err) == 0 &&
	    (j = json_loadb((const char *)buf, len, 0, NULL)) != NULL) {
		*after = json_integer_value(json_object_get(j, "last_record"));
		json_decref(j);
	}
	free(buf);
	free(path);
	return 0;
}

static int
state_save(const char *home, int64_t last, lb_err *err)
{
	char *path = core_path(home, AUDIT_FILE), text[64];
	int rc;

	if (path == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	snprintf(text, sizeof(text), "{\"last_record\": %lld}\n",
	    (long long)last);
	rc = core_file_write(path, text, strlen(text), 0600, false, err);
	free(path);
	return rc;
}

int
archive_client_audit(const archive_transport *t, const char *home,
    const char *trust, bool from_start, archive_audit *out, lb_err *err)
{
	archive_verified v;
	core_http_reply r = { 0 };
	char path[128];
	int64_t after = 0, last;
	size_t n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (archive_client_policy_verify(t, home, trust, &v, err) == -1)
		return -1;
	if (v.in_force < 0) {
		archive_verified_clear(&v);
		return lb_err_set(err, LB_ENOTFOUND, "no escrow policy this "
		    "client trusts is in force yet: nothing to audit");
	}
	if (!from_start)
		state_load(home, &after);
	last = after;
	for (;;) {
		snprintf(path, sizeof(path), ARCHIVE_API_ESCROWS "?after=%lld"
		    "&limit=%d", (long long)last, PAGE);
		if (t->api(t->h, "GET", path, NULL, &r, err) == -1)
			goto out;
		n = 0;
		rc = archive_audit_page(&v, t, r.body != NULL ? r.body : "",
		    r.len, out, &last, &n, err);
		core_http_reply_clear(&r);
		if (rc == -1)
			goto out;
		rc = -1;
		if (n < PAGE)
			break;
	}
	/* what was found wrong is found again next time */
	if (out->nproblems == 0 && last > after &&
	    state_save(home, last, err) == -1)
		goto out;
	rc = 0;
out:
	core_http_reply_clear(&r);
	archive_verified_clear(&v);
	return rc;
}
