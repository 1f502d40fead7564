/*
 * statement.c - a recovery request is a statement its officer signs, both
 * ends: its one text form (the request id, the key owner's e-mail, the
 * officer's reason, the one-time key, the expiry, each record's serial and
 * key), the server
 * taking it once from the requester (POST .../{id}/statement), and the
 * agent's check of it before anything is released: signed by a recovery
 * officer of the policy the agent's own pin verifies, for this request,
 * this one-time key and this owner, and naming every record whose share
 * the agent is asked for.  The reason is signed too, so that what an
 * agent reads before releasing is the officer's word, not the server's.
 *
 *   lockbox recovery statement v2
 *   request: ID
 *   owner: EMAIL
 *   reason: TEXT                 (one line: archive_reason_check)
 *   one-time-key: SPKI
 *   expires: ISO-8601
 *   record: SERIAL SPKI          (one line each)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "archive/archive_int.h"

#define HEADER "lockbox recovery statement v2\n"
#define STATEMENT_MAX ((size_t)64 * 1024)

void
archive_statement_clear(archive_statement *s)
{
	free(s->owner);
	free(s->reason);
	free(s->records);
	free(s->text);
	memset(s, 0, sizeof(*s));
	s->owner = s->reason = s->text = NULL;
	s->records = NULL;
}

int
archive_statement_render(archive_statement *s, lb_err *err)
{
	size_t cap, len, i;
	int n;

	free(s->text);
	s->text = NULL;
	if (!archive_request_id_valid(s->id) || s->owner == NULL ||
	    !core_email_valid(s->owner) || strchr(s->owner, ' ') != NULL ||
	    archive_reason_check(s->reason, err) == -1 ||
	    !archive_policy_hash_valid(s->onetime) || s->expires[0] == '\0' ||
	    s->nrecords == 0 || s->nrecords > 10000) {
		lb_err_clear(err);
		return lb_err_set(err, LB_EINVAL, "a recovery statement needs "
		    "a request id, an owner, a reason, a one-time key and "
		    "records");
	}
	cap = 256 + strlen(s->owner) + strlen(s->reason) + s->nrecords * 160;
	if ((s->text = malloc(cap)) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	n = snprintf(s->text, cap, HEADER "request: %s\nowner: %s\n"
	    "reason: %s\none-time-key: %s\nexpires: %s\n", s->id, s->owner,
	    s->reason, s->onetime, s->expires);
	len = (size_t)n;
	for (i = 0; i < s->nrecords; i++) {
		if (s->records[i].serial[0] == '\0' ||
		    strspn(s->records[i].serial, "0123456789ABCDEF") !=
		    strlen(s->records[i].serial) ||
		    !archive_policy_hash_valid(s->records[i].spki))
			return lb_err_set(err, LB_EINVAL, "record %zu of the "
			    "statement is malformed", i + 1);
		n = snprintf(s->text + len, cap - len, "record: %s %s\n",
		    s->records[i].serial, s->records[i].spki);
		len += (size_t)n;
	}
	s->text_len = len;
	return 0;
}

/* "field: value" at *p into out (at most max bytes); -1 when not. */
static int
field(const char **p, const char *end, const char *name, char *out,
    size_t max)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t fl = strlen(name), n;

	if (nl == NULL || (size_t)(nl - *p) <= fl ||
	    strncmp(*p, name, fl) != 0 || (n = (size_t)(nl - *p) - fl) >= max)
		return -1;
	memcpy(out, *p + fl, n);
	out[n] = '\0';
	*p = nl + 1;
	return 0;
}

int
archive_statement_parse(const char *text, size_t len, archive_statement *s,
    lb_err *err)
{
	const char *p, *end;
	char owner[256], reason[ARCHIVE_REASON_MAX + 1], line[160], *sp;
	archive_statement_record *nr;

	memset(s, 0, sizeof(*s));
	if (text == NULL || len > STATEMENT_MAX || len < sizeof(HEADER) ||
	    memcmp(text, HEADER, sizeof(HEADER) - 1) != 0)
		goto bad;
	p = text;
	end = text + len;
	p += sizeof(HEADER) - 1;
	if (field(&p, end, "request: ", s->id, sizeof(s->id)) == -1 ||
	    field(&p, end, "owner: ", owner, sizeof(owner)) == -1 ||
	    field(&p, end, "reason: ", reason, sizeof(reason)) == -1 ||
	    field(&p, end, "one-time-key: ", s->onetime,
	    sizeof(s->onetime)) == -1 ||
	    field(&p, end, "expires: ", s->expires, sizeof(s->expires)) == -1 ||
	    (s->owner = strdup(owner)) == NULL ||
	    (s->reason = strdup(reason)) == NULL)
		goto bad;
	while (p < end) {
		if (s->nrecords >= 10000 ||
		    field(&p, end, "record: ", line, sizeof(line)) == -1 ||
		    (sp = strchr(line, ' ')) == NULL ||
		    (size_t)(sp - line) >= sizeof(nr->serial) ||
		    strlen(sp + 1) != 64 ||
		    (nr = realloc(s->records, (s->nrecords + 1) *
		    sizeof(*nr))) == NULL)
			goto bad;
		s->records = nr;
		nr = &s->records[s->nrecords++];
		memcpy(nr->serial, line, (size_t)(sp - line));
		nr->serial[sp - line] = '\0';
		memcpy(nr->spki, sp + 1, 65);
	}
	if (archive_statement_render(s, err) == -1)
		goto out;
	/* one text form only */
	if (s->text == NULL || s->text_len != len ||
	    memcmp(s->text, text, len) != 0)
		goto bad;
	return 0;
bad:
	lb_err_set(err, LB_EINVAL, "not a recovery statement (or not in its "
	    "one text form)");
out:
	archive_statement_clear(s);
	return -1;
}

const archive_statement_record *
archive_statement_find(const archive_statement *s, const char *serial)
{
	size_t i;

	for (i = 0; i < s->nrecords; i++)
		if (strcmp(s->records[i].serial, serial) == 0)
			return &s->records[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The server's end                                                    */

/* The SPKI hash of a DER certificate. */
static int
der_spki(const unsigned char *der, size_t len, char spki[65])
{
	const unsigned char *q = der;
	X509 *x = der != NULL ? d2i_X509(NULL, &q, (long)len) : NULL;
	int rc = x != NULL ? ca_spki_sha256(x, spki) : -1;

	X509_free(x);
	return rc;
}

/* Whether s says what the stored request rq is. */
static int
statement_matches(const archive_recovery *rq, const archive_statement *s,
    lb_err *err)
{
	char spki[65];
	const archive_statement_record *r;
	size_t i;

	if (strcmp(s->id, rq->id) != 0 || strcasecmp(s->owner, rq->email) != 0)
		return lb_err_set(err, LB_EINVAL, "the statement is not about "
		    "this request (its id or owner differ)");
	if (rq->reason == NULL || strcmp(s->reason, rq->reason) != 0)
		return lb_err_set(err, LB_EINVAL, "the statement gives another "
		    "reason than the request's");
	if (der_spki(rq->request_cert, rq->request_cert_len, spki) == -1 ||
	    strcmp(spki, s->onetime) != 0)
		return lb_err_set(err, LB_EINVAL, "the statement names another "
		    "one-time key than the request's");
	if (s->nrecords != rq->nrecords)
		return lb_err_set(err, LB_EINVAL, "the statement names %zu "
		    "records, the request covers %zu", s->nrecords,
		    rq->nrecords);
	for (i = 0; i < rq->nrecords; i++)
		if ((r = archive_statement_find(s, rq->records[i].serial)) ==
		    NULL || der_spki(rq->records[i].cert,
		    rq->records[i].cert_len, spki) == -1 ||
		    strcmp(spki, r->spki) != 0)
			return lb_err_set(err, LB_EINVAL, "the statement does not "
			    "name record %s with its key", rq->records[i].serial);
	return 0;
}

int
archive_recovery_statement(sqlite3 *db, const archive_caller *who,
    const char *id, const void *body, size_t len, lb_err *err)
{
	static const char *const known[] = { "statement", "cms", NULL };
	static const char *const allow[] = { "pending", NULL };
	archive_recovery rq;
	archive_statement s;
	const char *text, *cms;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	char spki[65], creds[65], actor[320];
	bool expired = false;
	json_t *j = NULL;
	int rc = -1;

	memset(&rq, 0, sizeof(rq));
	memset(&s, 0, sizeof(s));
	if ((j = ca_json_load_object(body, len, known, "{\"statement\": "
	    "\"...\", \"cms\": \"BASE64\"}", err)) == NULL ||
	    ca_json_get_string(j, "statement", false, STATEMENT_MAX, &text,
	    err) == -1 || ca_json_get_string(j, "cms", false,
	    2 * ARCHIVE_POLICY_SIG_MAX, &cms, err) == -1)
		goto out;
	if (core_b64_decode(cms, strlen(cms), 2 * ARCHIVE_POLICY_SIG_MAX, 0,
	    &sig, &sig_len) == -1) {
		lb_err_set(err, LB_EINVAL, "cms is not base64");
		goto out;
	}
	if (archive_load_request(db, id, &rq, err) == -1)
		goto out;
	if (who->serial == NULL || strcmp(who->serial,
	    rq.requester_serial) != 0) {
		lb_err_set(err, LB_EFORBIDDEN, "only the requester signs a "
		    "request's statement");
		goto out;
	}
	if (archive_check_status(&rq, allow, &expired, err) == -1)
		goto out;
	if (rq.statement != NULL) {
		lb_err_set(err, LB_ECONFLICT, "request %s has its statement "
		    "already", id);
		goto out;
	}
	if (archive_statement_parse(text, strlen(text), &s, err) == -1 ||
	    statement_matches(&rq, &s, err) == -1 ||
	    archive_signed_check(s.text, s.text_len, sig, sig_len, spki,
	    err) == -1)
		goto out;
	if (der_spki(rq.requester_cert, rq.requester_cert_len, creds) == -1 ||
	    strcmp(spki, creds) != 0) {
		lb_err_set(err, LB_EINVAL, "the statement is not signed with "
		    "the requester's credential key");
		goto out;
	}
	if (core_db_begin(db, err) == -1)
		goto out;
	{
		sqlite3_stmt *st = NULL;

		if (core_db_prepare(db, "UPDATE recovery_requests SET statement "
		    "= ?, statement_cms = ? WHERE id = ? AND statement IS NULL",
		    &st, err) == -1) {
			core_db_rollback(db);
			goto out;
		}
		sqlite3_bind_text(st, 1, s.text, (int)s.text_len, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, sig, (int)sig_len, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
		archive_actor_of(who, actor, sizeof(actor));
		if (core_db_exec(db, &st, "store the statement", err) == -1 ||
		    core_audit_append(db, actor, "recovery.statement", id,
		    who->email != NULL ? who->email : "", err) == -1) {
			core_db_rollback(db);
			goto out;
		}
	}
	rc = core_db_commit(db, err);
out:
	if (rc == -1 && err->code != LB_EINTERNAL)
		archive_recovery_refused(db, who, "recovery.statement_refused",
		    id != NULL ? id : "", err);
	free(sig);
	json_decref(j);
	archive_statement_clear(&s);
	archive_recovery_clear(&rq);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The officer's end                                                   */

int
archive_statement_of(const char *id, const char *owner, const char *reason,
    X509 *onetime, const char *expires, X509 *const *certs, size_t n,
    archive_statement *s, lb_err *err)
{
	size_t i;
	char *serial;

	memset(s, 0, sizeof(*s));
	snprintf(s->id, sizeof(s->id), "%s", id);
	snprintf(s->expires, sizeof(s->expires), "%s", expires);
	if ((s->owner = strdup(owner)) == NULL ||
	    (s->reason = strdup(reason != NULL ? reason : "")) == NULL ||
	    (s->records = calloc(n + 1, sizeof(*s->records))) == NULL ||
	    ca_spki_sha256(onetime, s->onetime) == -1) {
		archive_statement_clear(s);
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	}
	for (i = 0; i < n; i++) {
		if ((serial = ca_cert_serial(certs[i])) == NULL ||
		    strlen(serial) >= sizeof(s->records[i].serial) ||
		    ca_spki_sha256(certs[i], s->records[i].spki) == -1) {
			free(serial);
			archive_statement_clear(s);
			return lb_err_set(err, LB_EINVAL, "record %zu's "
			    "certificate is malformed", i + 1);
		}
		memcpy(s->records[i].serial, serial, strlen(serial) + 1);
		free(serial);
		s->nrecords++;
	}
	if (archive_statement_render(s, err) == -1) {
		archive_statement_clear(s);
		return -1;
	}
	return 0;
}

/* DIR/ID.statement: what the officer signed, for the fetch to hold the
 * package to. */
static char *
statement_path(const char *dir, const char *id)
{
	char name[ARCHIVE_REQUEST_ID_LEN + 16];

	snprintf(name, sizeof(name), "%s.statement", id);
	return core_path(dir, name);
}

int
archive_statement_save(const char *dir, const archive_statement *s,
    lb_err *err)
{
	char *path = statement_path(dir, s->id);
	int rc;

	if (path == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	rc = core_file_write(path, s->text, s->text_len, 0600, true, err);
	free(path);
	return rc;
}

int
archive_statement_load(const char *dir, const char *id, archive_statement *s,
    lb_err *err)
{
	char *path = statement_path(dir, id);
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	if (path == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (core_file_read(path, STATEMENT_MAX, &buf, &len, err) == 0)
		rc = archive_statement_parse((const char *)buf, len, s, err);
	free(buf);
	free(path);
	return rc;
}

void
archive_statement_remove(const char *dir, const char *id)
{
	char *path = statement_path(dir, id);

	if (path != NULL)
		(void)unlink(path);
	free(path);
}

int
archive_client_statement(const archive_transport *t, const char *dir,
    const char *id, const char *owner, const char *reason, json_t *reply,
    lb_err *err)
{
	json_t *recs = json_object_get(reply, "records"), *r, *body = NULL;
	const char *expires = json_string_value(json_object_get(reply,
	    "expires"));
	X509 **certs = NULL, *onetime = NULL;
	EVP_PKEY *otkey = NULL;
	archive_statement s;
	core_http_reply hr = { 0 };
	unsigned char *sig = NULL;
	size_t sig_len = 0, n = json_array_size(recs), i, k = 0;
	char path[128], *b64 = NULL;
	int rc = -1;

	memset(&s, 0, sizeof(s));
	if (n == 0 || expires == NULL ||
	    (certs = calloc(n, sizeof(X509 *))) == NULL) {
		lb_err_set(err, LB_EINVAL, "the server's request names no "
		    "records to sign for");
		goto out;
	}
	json_array_foreach(recs, i, r) {
		const char *pem = json_string_value(json_object_get(r, "cert"));

		/* only keys of the owner: what the officer asked for */
		if (pem == NULL || (certs[k] = ca_cert_parse((const unsigned
		    char *)pem, strlen(pem), err)) == NULL ||
		    !archive_cert_has_email(certs[k], owner)) {
			if (certs[k] != NULL)
				k++;
			lb_err_set(err, LB_EINVAL, "the server's request covers "
			    "a key that is not %s's: not signing it", owner);
			goto out;
		}
		k++;
	}
	if (archive_onetime_load(dir, id, &otkey, &onetime, err) == -1 ||
	    archive_statement_of(id, owner, reason, onetime, expires, certs, k,
	    &s, err) == -1 ||
	    archive_signed_make(s.text, s.text_len, t->key, t->cert, &sig,
	    &sig_len, err) == -1)
		goto out;
	if (core_b64_encode(sig, sig_len, 0, &b64, NULL) == -1 ||
	    (body = json_pack("{s:s%, s:s}", "statement", s.text, s.text_len,
	    "cms", b64)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	snprintf(path, sizeof(path), ARCHIVE_API "/%s/statement", id);
	if (archive_statement_save(dir, &s, err) == -1 ||
	    t->api(t->h, "POST", path, body, &hr, err) == -1)
		goto out;
	rc = 0;
out:
	for (i = 0; i < k; i++)
		X509_free(certs[i]);
	free(certs);
	core_http_reply_clear(&hr);
	json_decref(body);
	free(b64);
	OPENSSL_free(sig);
	EVP_PKEY_free(otkey);
	X509_free(onetime);
	archive_statement_clear(&s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The agent's end                                                     */

/* HOME/released.json: the one-time keys this agent released to. */
static int
released_load(const char *home, json_t **out, lb_err *err)
{
	char *path = core_path(home, "released.json");
	unsigned char *buf = NULL;
	size_t len = 0;
	lb_err e = { 0 };
	int rc = 0;

	*out = NULL;
	if (path == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (core_file_read(path, (size_t)16 * 1024 * 1024, &buf, &len,
	    &e) == 0)
		*out = json_loadb((const char *)buf, len, 0, NULL);
	else if (e.code != LB_ENOTFOUND)
		rc = lb_err_set(err, e.code, "%s", e.msg);
	if (rc == 0 && *out == NULL && e.code == LB_OK)
		rc = lb_err_set(err, LB_EINVAL, "%s is not this client's list "
		    "of one-time keys released to", path);
	if (rc == 0 && *out == NULL)
		*out = json_pack("{s:[]}", "onetime");
	if (rc == 0 && !json_is_array(json_object_get(*out, "onetime")))
		rc = lb_err_set(err, LB_EINVAL, "%s is not this client's list "
		    "of one-time keys released to", path);
	free(buf);
	free(path);
	return rc;
}

int
archive_released_before(const char *home, const char *onetime, bool *seen,
    lb_err *err)
{
	json_t *j, *e;
	size_t i;

	*seen = false;
	if (released_load(home, &j, err) == -1) {
		json_decref(j);
		return -1;
	}
	json_array_foreach(json_object_get(j, "onetime"), i, e)
		if (json_is_string(e) && strcmp(json_string_value(e),
		    onetime) == 0)
			*seen = true;
	json_decref(j);
	return 0;
}

int
archive_released_add(const char *home, const char *onetime, lb_err *err)
{
	char *path = core_path(home, "released.json"), *text = NULL;
	json_t *j = NULL;
	int rc = -1;

	if (path == NULL || released_load(home, &j, err) == -1)
		goto out;
	if (json_array_append_new(json_object_get(j, "onetime"),
	    json_string(onetime)) == -1 ||
	    (text = json_dumps(j, JSON_COMPACT)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	rc = core_file_write(path, text, strlen(text), 0600, false, err);
out:
	free(text);
	json_decref(j);
	free(path);
	return rc;
}

int
archive_view_statement_check(const archive_view *v, const archive_policy *p,
    X509 *own, archive_checked *out, lb_err *err)
{
	const archive_policy_member *m;
	const archive_statement_record *sr;
	unsigned char *aad = NULL;
	size_t aad_len = 0, i, k;
	char spki[65], email[256];
	time_t until;

	memset(out, 0, sizeof(*out));
	if (v->statement == NULL || v->statement_cms == NULL)
		return lb_err_set(err, LB_EINVAL, "the requesting officer has "
		    "not signed this request: refusing to release a share");
	if (archive_statement_parse(v->statement, strlen(v->statement),
	    &out->s, err) == -1)
		goto fail;
	if (archive_signed_check(out->s.text, out->s.text_len,
	    v->statement_cms, v->statement_cms_len, spki, err) == -1 ||
	    (m = archive_policy_member_find(p, spki)) == NULL ||
	    m->role != ARCHIVE_MEMBER_OFFICER) {
		lb_err_clear(err);
		lb_err_set(err, LB_EINVAL, "the request's statement is not "
		    "signed by a recovery officer of escrow policy v%d: "
		    "refusing to release a share", p->version);
		goto fail;
	}
	out->officer = m;
	if (strcmp(out->s.id, v->id) != 0 || v->request_cert == NULL ||
	    ca_spki_sha256(v->request_cert, spki) == -1 ||
	    strcmp(spki, out->s.onetime) != 0) {
		lb_err_set(err, LB_EINVAL, "the officer's statement is about "
		    "another request or another one-time key: refusing to "
		    "release a share");
		goto fail;
	}
	if (v->reason == NULL || strcmp(v->reason, out->s.reason) != 0) {
		lb_err_set(err, LB_EINVAL, "the server shows another reason "
		    "for this request than its officer signed: refusing to "
		    "release a share");
		goto fail;
	}
	if (core_time_parse(out->s.expires, 0, &until) == -1 ||
	    until < time(NULL)) {
		lb_err_set(err, LB_EINVAL, "the officer's statement has "
		    "expired (%s): refusing to release a share",
		    out->s.expires);
		goto fail;
	}
	archive_cert_email(own, email, sizeof(email));
	if (strcasecmp(email, out->s.owner) == 0 ||
	    strcasecmp(email, m->email) == 0) {
		lb_err_set(err, LB_EFORBIDDEN, "you %s: you may not release "
		    "your share", strcasecmp(email, out->s.owner) == 0 ?
		    "own the keys of this request" : "asked for this recovery");
		goto fail;
	}
	if ((out->aad_sha256 = calloc(v->nshares + 1, 32)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	/* each share asked for: a record the officer named, with its key */
	for (i = 0; i < v->nshares; i++) {
		if ((sr = archive_statement_find(&out->s,
		    v->shares[i].serial)) == NULL) {
			lb_err_set(err, LB_EINVAL, "the server asks for your share "
			    "of key %s, which the officer's statement does not "
			    "name: refusing to release a share",
			    v->shares[i].serial);
			goto fail;
		}
		for (k = 0; k < v->nrecords; k++)
			if (v->records[k].serial != NULL &&
			    strcmp(v->records[k].serial, sr->serial) == 0)
				break;
		if (k == v->nrecords || v->records[k].cert == NULL ||
		    ca_spki_sha256(v->records[k].cert, spki) == -1 ||
		    strcmp(spki, sr->spki) != 0 ||
		    archive_record_aad(v->records[k].cert, out->s.owner, &aad,
		    &aad_len, err) == -1 ||
		    EVP_Digest(aad, aad_len, out->aad_sha256 + 32 * i, NULL,
		    EVP_sha256(), NULL) != 1) {
			free(aad);
			lb_err_clear(err);
			lb_err_set(err, LB_EINVAL, "key %s is not the one the "
			    "officer's statement names: refusing to release a "
			    "share", sr->serial);
			goto fail;
		}
		free(aad);
		aad = NULL;
	}
	return 0;
fail:
	archive_checked_clear(out);
	return -1;
}

void
archive_checked_clear(archive_checked *c)
{
	archive_statement_clear(&c->s);
	free(c->aad_sha256);
	memset(c, 0, sizeof(*c));
}
