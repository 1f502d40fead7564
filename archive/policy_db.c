/*
 * policy_db.c - the escrow policy on the server, owner of escrow_policies
 * and escrow_policy_signatures: proposals (the administrator's, never a
 * change by itself), the members' signatures, and the step into force
 * once archive_policy_accepted holds.  The server checks the rule too, so
 * that it never escrows to a policy its members did not sign; the
 * members' clients check it again from their own pins, since whoever can
 * write lockbox.db can write these rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "archive/archive_int.h"

#define POLICY_COLS "hash, document, status"

/* A row of POLICY_COLS into l, its document parsed and its hash checked. */
static int
row_to_link(sqlite3_stmt *st, archive_chain_link *l, lb_err *err)
{
	const char *hash = (const char *)sqlite3_column_text(st, 0);
	const char *doc = (const char *)sqlite3_column_text(st, 1);
	const char *status = (const char *)sqlite3_column_text(st, 2);

	if (hash == NULL || doc == NULL || status == NULL ||
	    strlen(status) >= sizeof(l->status) ||
	    archive_policy_parse(doc, (size_t)sqlite3_column_bytes(st, 1),
	    &l->p, err) == -1 || strcmp(l->p.hash, hash) != 0) {
		archive_policy_clear(&l->p);
		return lb_err_set(err, LB_EINTERNAL, "the stored escrow policy "
		    "%.16s is not the document it names", hash ? hash : "");
	}
	memcpy(l->status, status, strlen(status) + 1);
	return 0;
}

/* The one policy with status (in_force or proposed); *found. */
static int
policy_with_status(sqlite3 *db, const char *status, archive_chain_link *l,
    bool *found, lb_err *err)
{
	sqlite3_stmt *st;
	int r, rc = 0;

	memset(l, 0, sizeof(*l));
	*found = false;
	/* every escrow reads the policy in force: kept prepared */
	if ((st = core_db_cached(db, "SELECT " POLICY_COLS " FROM "
	    "escrow_policies WHERE status = ?1 ORDER BY version DESC "
	    "LIMIT 1")) == NULL)
		return core_db_fail(db, "read the escrow policy", err);
	sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
	if ((r = sqlite3_step(st)) == SQLITE_ROW) {
		rc = row_to_link(st, l, err);
		*found = rc == 0;
	} else if (r != SQLITE_DONE) {
		rc = core_db_fail(db, "read the escrow policy", err);
	}
	core_db_cached_done(st);
	return rc;
}

int
archive_policy_in_force(sqlite3 *db, archive_policy *p, bool *found,
    lb_err *err)
{
	archive_chain_link l;

	if (policy_with_status(db, "in_force", &l, found, err) == -1)
		return -1;
	*p = l.p;
	return 0;
}

int
archive_policy_hash_in_force(sqlite3 *db, char hash[65], bool *found,
    lb_err *err)
{
	sqlite3_stmt *st;
	const char *h;
	int r;

	*found = false;
	hash[0] = '\0';
	if ((st = core_db_cached(db, "SELECT hash FROM escrow_policies WHERE "
	    "status = 'in_force'")) == NULL)
		return core_db_fail(db, "read the escrow policy", err);
	if ((r = sqlite3_step(st)) == SQLITE_ROW &&
	    (h = (const char *)sqlite3_column_text(st, 0)) != NULL &&
	    strlen(h) == 64) {
		memcpy(hash, h, 65);
		*found = true;
	}
	core_db_cached_done(st);
	return r == SQLITE_ROW || r == SQLITE_DONE ? 0 :
	    core_db_fail(db, "read the escrow policy", err);
}

int
archive_threshold_get(sqlite3 *db, int *threshold, lb_err *err)
{
	archive_policy p;
	bool found;

	*threshold = 0;
	if (archive_policy_in_force(db, &p, &found, err) == -1)
		return -1;
	if (found)
		*threshold = p.threshold;
	archive_policy_clear(&p);
	return 0;
}

static int
load_sigs(sqlite3 *db, archive_chain_link *l, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	archive_policy_sig *ns, *s;
	const char *spki;
	int r;

	if (core_db_prepare(db, "SELECT spki_sha256, email, cms FROM "
	    "escrow_policy_signatures WHERE policy_hash = ? ORDER BY created, "
	    "spki_sha256", &st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, l->p.hash, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if ((ns = realloc(l->sigs, (l->nsigs + 1) * sizeof(*ns))) ==
		    NULL)
			break;
		l->sigs = ns;
		s = &ns[l->nsigs++];
		memset(s, 0, sizeof(*s));
		spki = (const char *)sqlite3_column_text(st, 0);
		if (spki != NULL && strlen(spki) == 64)
			memcpy(s->spki, spki, 65);
		if ((s->email = core_db_text_dup(st, 1)) == NULL ||
		    core_db_blob_dup(st, 2, &s->cms, &s->len) == -1)
			break;
	}
	return core_db_rows_done(db, (sqlite3_finalize(st), r),
	    "read the policy signatures", err);
}

int
archive_chain_load(sqlite3 *db, archive_chain *c, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	archive_chain_link *nl;
	int r;

	memset(c, 0, sizeof(*c));
	if (core_db_prepare(db, "SELECT " POLICY_COLS " FROM escrow_policies "
	    "WHERE status <> 'withdrawn' ORDER BY version", &st, err) == -1)
		return -1;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if ((nl = realloc(c->links, (c->n + 1) * sizeof(*nl))) ==
		    NULL) {
			r = SQLITE_NOMEM;
			break;
		}
		c->links = nl;
		memset(&nl[c->n], 0, sizeof(*nl));
		if (row_to_link(st, &nl[c->n], err) == -1) {
			sqlite3_finalize(st);
			archive_chain_clear(c);
			return -1;
		}
		c->n++;
	}
	if (core_db_rows_done(db, (sqlite3_finalize(st), r),
	    "read the escrow policies", err) == -1) {
		archive_chain_clear(c);
		return -1;
	}
	for (size_t i = 0; i < c->n; i++)
		if (load_sigs(db, &c->links[i], err) == -1) {
			archive_chain_clear(c);
			return -1;
		}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Proposals                                                           */

/* Whether email is one of the n wanted (NULL: all are). */
static bool
wanted(const char *const *list, size_t n, const char *email, bool *seen)
{
	size_t i;

	if (list == NULL)
		return true;
	for (i = 0; i < n; i++)
		if (strcasecmp(list[i], email) == 0) {
			seen[i] = true;
			return true;
		}
	return false;
}

struct members {
	archive_policy *p;
	enum archive_member_role role;
	const char *const *list;
	size_t n;
	bool *seen;
	int failed;
	lb_err *err;
};

static int
member_one(const ca_operator *op, void *arg)
{
	struct members *m = arg;
	archive_policy_member *nm, *x;
	const unsigned char *q = op->der;
	X509 *cert;

	if (!op->usable || !wanted(m->list, m->n, op->email, m->seen))
		return 0;
	if ((nm = realloc(m->p->members, (m->p->nmembers + 1) *
	    sizeof(*nm))) == NULL) {
		m->failed = 1;
		return 1;
	}
	m->p->members = nm;
	x = &nm[m->p->nmembers++];
	memset(x, 0, sizeof(*x));
	x->role = m->role;
	cert = d2i_X509(NULL, &q, (long)op->der_len);
	if (cert == NULL || ca_spki_sha256(cert, x->spki) == -1 ||
	    (x->email = strdup(op->email)) == NULL ||
	    (x->name = strdup(op->name)) == NULL)
		m->failed = 1;
	X509_free(cert);
	return m->failed;
}

/* Adds the usable operators of role (those in list, NULL: all). */
static int
add_members(sqlite3 *db, archive_policy *p, enum ca_role role,
    enum archive_member_role as, const char *const *list, size_t n,
    lb_err *err)
{
	struct members m = { p, as, list, n, NULL, 0, err };
	size_t i;
	int rc = 0;

	if (n > 0 && (m.seen = calloc(n, sizeof(bool))) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	if (ca_operator_list_role(db, ca_role_name(role), member_one, &m,
	    err) == -1 || m.failed)
		rc = lb_err_set(err, LB_EINTERNAL, "cannot read the %ss",
		    ca_role_name(role));
	for (i = 0; rc == 0 && i < n; i++)
		if (!m.seen[i])
			rc = lb_err_set(err, LB_EINVAL, "%s is not an active %s",
			    list[i], ca_role_name(role));
	free(m.seen);
	return rc;
}

/* 1 when a policy (of any status) has this hash, 0 when none, -1. */
static int
hash_known(sqlite3 *db, const char *hash, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (core_db_prepare(db, "SELECT 1 FROM escrow_policies WHERE hash = ?",
	    &st, err) == -1)
		return -1;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	sqlite3_finalize(st);
	if (r == SQLITE_ROW)
		return 1;
	return r == SQLITE_DONE ? 0 : core_db_fail(db, "read the policies",
	    err);
}

int
archive_policy_propose(sqlite3 *db, int threshold,
    const char *const *agents, size_t nagents, const char *const *officers,
    size_t nofficers, const char *actor, archive_policy *out, lb_err *err)
{
	archive_chain_link cur, pend;
	bool have_cur = false, have_pend = false;
	char detail[160], ver[16], thr[16], now[16];
	time_t t;
	int rc = -1, known;

	memset(out, 0, sizeof(*out));
	memset(&cur, 0, sizeof(cur));
	memset(&pend, 0, sizeof(pend));
	if (core_db_begin(db, err) == -1)
		return -1;
	if (policy_with_status(db, "proposed", &pend, &have_pend, err) == -1 ||
	    policy_with_status(db, "in_force", &cur, &have_cur, err) == -1)
		goto out;
	if (have_pend) {
		lb_err_set(err, LB_ECONFLICT, "proposal v%d %s is pending: "
		    "one policy has one successor (withdraw it first with "
		    "'lockbox escrow policy withdraw %s')", pend.p.version,
		    pend.p.hash, pend.p.hash);
		goto out;
	}
	out->threshold = threshold;
	out->version = have_cur ? cur.p.version + 1 : 1;
	if (have_cur)
		memcpy(out->previous, cur.p.hash, sizeof(out->previous));
	if (add_members(db, out, CA_ROLE_RECOVERY_AGENT, ARCHIVE_MEMBER_AGENT,
	    agents, nagents, err) == -1 ||
	    add_members(db, out, CA_ROLE_RECOVERY_OFFICER,
	    ARCHIVE_MEMBER_OFFICER, officers, nofficers, err) == -1)
		goto out;
	/* a proposal withdrawn and made again within the second would be
	 * the same document: its time moves on until it is a new one */
	for (t = time(NULL); ; t++) {
		core_time_fmt(t, out->created, sizeof(out->created));
		if (archive_policy_render(out, err) == -1 ||
		    (known = hash_known(db, out->hash, err)) == -1)
			goto out;
		if (known == 0)
			break;
	}
	snprintf(ver, sizeof(ver), "%d", out->version);
	snprintf(thr, sizeof(thr), "%d", out->threshold);
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	{
		const char *v[] = { out->hash, ver, have_cur ? cur.p.hash :
		    NULL, thr, out->doc, actor, now };

		if (core_db_run(db, "INSERT INTO escrow_policies (hash, version, "
		    "previous, threshold, document, status, proposed_by, "
		    "created) VALUES (?, ?, ?, ?, ?, 'proposed', ?, ?)", v, 7,
		    "store the proposal", err) == -1)
			goto out;
	}
	snprintf(detail, sizeof(detail), "v%d threshold=%d agents=%zu "
	    "officers=%zu", out->version, out->threshold,
	    archive_policy_count(out, ARCHIVE_MEMBER_AGENT),
	    archive_policy_count(out, ARCHIVE_MEMBER_OFFICER));
	if (core_audit_append(db, actor, "escrow.policy_propose", out->hash,
	    detail, err) == -1)
		goto out;
	rc = core_db_commit(db, err);
out:
	if (rc == -1) {
		core_db_rollback(db);
		archive_policy_clear(out);
	}
	archive_policy_clear(&cur.p);
	archive_policy_clear(&pend.p);
	return rc;
}

int
archive_policy_withdraw(sqlite3 *db, const char *hash, const char *actor,
    lb_err *err)
{
	const char *v[] = { hash };

	if (core_db_begin(db, err) == -1)
		return -1;
	if (core_db_run(db, "UPDATE escrow_policies SET status = 'withdrawn' "
	    "WHERE hash = ? AND status = 'proposed'", v, 1,
	    "withdraw the proposal", err) == -1)
		goto fail;
	if (sqlite3_changes(db) != 1) {
		lb_err_set(err, LB_ENOTFOUND, "no pending proposal %s", hash);
		goto fail;
	}
	if (core_audit_append(db, actor, "escrow.policy_withdraw", hash, "",
	    err) == -1)
		goto fail;
	return core_db_commit(db, err);
fail:
	core_db_rollback(db);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Signatures                                                          */

/* A refused signature leaves its audit row, in a transaction of its own
 * (internal errors leave none). */
static void
refused(sqlite3 *db, const char *actor, const char *hash, const lb_err *why)
{
	lb_err e = { 0 };

	if (why->code == LB_EINTERNAL || core_db_begin(db, &e) == -1)
		return;
	if (core_audit_append(db, actor, "escrow.policy_sign_refused", hash,
	    why->msg, &e) == -1 || core_db_commit(db, &e) == -1)
		core_db_rollback(db);
}

int
archive_policy_signature_add(sqlite3 *db, const char *hash,
    const unsigned char *sig, size_t len, const char *caller_spki,
    const char *actor, bool *in_force, lb_err *err)
{
	archive_chain_link pend, cur;
	bool have_pend = false, have_cur = false;
	const archive_policy_member *m;
	char spki[65], now[16], (*keys)[65] = NULL;
	size_t nkeys = 0;
	lb_err why;
	int rc = -1;

	*in_force = false;
	memset(&cur, 0, sizeof(cur));
	if (core_db_begin(db, err) == -1)
		return -1;
	if (policy_with_status(db, "proposed", &pend, &have_pend, err) == -1)
		goto out;
	if (!have_pend || strcmp(pend.p.hash, hash) != 0) {
		lb_err_set(err, LB_ENOTFOUND, "%s is not the pending escrow "
		    "policy proposal", hash);
		goto out;
	}
	if (policy_with_status(db, "in_force", &cur, &have_cur, err) == -1)
		goto out;
	if (archive_policy_sig_check(&pend.p, sig, len, spki, err) == -1)
		goto out;
	if (caller_spki != NULL && strcmp(caller_spki, spki) != 0) {
		lb_err_set(err, LB_EFORBIDDEN, "the signature is not made with "
		    "your credential's key");
		goto out;
	}
	if ((m = archive_policy_member_find(&pend.p, spki)) == NULL &&
	    (!have_cur || (m = archive_policy_member_find(&cur.p, spki)) ==
	    NULL || m->role != ARCHIVE_MEMBER_AGENT)) {
		lb_err_set(err, LB_EFORBIDDEN, "the signing key is neither a "
		    "member of proposal v%d nor an agent of the policy in force",
		    pend.p.version);
		goto out;
	}
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	{
		sqlite3_stmt *st = NULL;

		if (core_db_prepare(db, "INSERT OR REPLACE INTO "
		    "escrow_policy_signatures (policy_hash, spki_sha256, email, "
		    "cms, created) VALUES (?, ?, ?, ?, ?)", &st, err) == -1)
			goto out;
		sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, spki, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, m->email, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, sig, (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
		if (core_db_exec(db, &st, "store the signature", err) == -1)
			goto out;
	}
	if (core_audit_append(db, actor, "escrow.policy_sign", hash, m->email,
	    err) == -1 || load_sigs(db, &pend, err) == -1 ||
	    archive_chain_link_signers(&pend, &keys, &nkeys, err) == -1)
		goto out;
	lb_err_clear(&why);
	if (archive_policy_accepted(have_cur ? &cur.p : NULL, &pend.p,
	    (const char (*)[65])keys, nkeys, &why) == 0) {
		const char *v[] = { now, hash };
		const char *pv[] = { cur.p.hash };

		if ((have_cur && core_db_run(db, "UPDATE escrow_policies SET "
		    "status = 'superseded' WHERE hash = ?", pv, 1,
		    "supersede the policy", err) == -1) ||
		    core_db_run(db, "UPDATE escrow_policies SET status = "
		    "'in_force', in_force = ? WHERE hash = ?", v, 2,
		    "put the policy in force", err) == -1 ||
		    core_audit_append(db, actor, "escrow.policy_in_force", hash,
		    now, err) == -1)
			goto out;
		*in_force = true;
	}
	rc = core_db_commit(db, err);
out:
	if (rc == -1) {
		core_db_rollback(db);
		refused(db, actor, hash, err);
	}
	free(keys);
	archive_chain_link_clear(&pend);
	archive_policy_clear(&cur.p);
	return rc;
}

int
archive_policy_sign_body(sqlite3 *db, const char *hash, const void *body,
    size_t len, const char *caller_spki, const char *actor, json_t **reply,
    lb_err *err)
{
	static const char *const known[] = { "cms", NULL };
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	const char *cms;
	json_t *j;
	bool in_force = false;
	int rc = -1;

	*reply = NULL;
	if (hash == NULL || !archive_policy_hash_valid(hash))
		return lb_err_set(err, LB_ENOTFOUND, "no escrow policy proposal "
		    "%s", hash != NULL ? hash : "");
	if ((j = ca_json_load_object(body, len, known, "{\"cms\": \"BASE64\"}",
	    err)) == NULL)
		return -1;
	if (ca_json_get_string(j, "cms", false, 2 * ARCHIVE_POLICY_SIG_MAX,
	    &cms, err) == -1)
		goto out;
	if (core_b64_decode(cms, strlen(cms), 2 * ARCHIVE_POLICY_SIG_MAX, 0,
	    &sig, &sig_len) == -1) {
		lb_err_set(err, LB_EINVAL, "cms is not base64");
		goto out;
	}
	if (archive_policy_signature_add(db, hash, sig, sig_len, caller_spki,
	    actor, &in_force, err) == -1)
		goto out;
	if ((*reply = json_pack("{s:s, s:b}", "hash", hash, "in_force",
	    in_force)) == NULL)
		lb_err_set(err, LB_EINTERNAL, "out of memory");
	else
		rc = 0;
out:
	free(sig);
	json_decref(j);
	return rc;
}

int
archive_policy_local_api(void *h, const char *method, const char *path,
    json_t *body, core_http_reply *r, lb_err *err)
{
	const archive_policy_local *l = h;
	sqlite3 *db = l->db;
	const char *pre = ARCHIVE_API_POLICIES "/";
	char hash[65], *text = NULL;
	archive_chain ch;
	json_t *reply = NULL;
	long long after = 0;
	int rc = -1, limit = 0;

	memset(r, 0, sizeof(*r));
	if (strcmp(method, "GET") == 0 &&
	    strcmp(path, ARCHIVE_API_POLICIES) == 0) {
		if (archive_chain_load(db, &ch, err) == -1)
			return -1;
		reply = archive_chain_json(&ch);
		archive_chain_clear(&ch);
	} else if (strcmp(method, "GET") == 0 &&
	    sscanf(path, ARCHIVE_API_ESCROWS "?after=%lld&limit=%d", &after,
	    &limit) == 2 && after >= 0 && limit > 0 && limit <= 1000) {
		if ((reply = archive_escrow_list_json(db, (int64_t)after, limit,
		    err)) == NULL)
			return -1;
	} else if (strcmp(method, "POST") == 0 &&
	    strncmp(path, pre, strlen(pre)) == 0 &&
	    strlen(path) == strlen(pre) + 64 + strlen("/signatures") &&
	    strcmp(path + strlen(pre) + 64, "/signatures") == 0) {
		memcpy(hash, path + strlen(pre), 64);
		hash[64] = '\0';
		if ((text = json_dumps(body, JSON_COMPACT)) == NULL ||
		    archive_policy_sign_body(db, hash, text, strlen(text), NULL,
		    l->actor, &reply, err) == -1)
			goto out;
	}
	if (reply == NULL || (r->body = json_dumps(reply, JSON_COMPACT)) ==
	    NULL) {
		lb_err_set(err, LB_EINTERNAL, "no local answer to %s %s",
		    method, path);
		goto out;
	}
	r->len = strlen(r->body);
	r->cap = r->len + 1;
	r->status = 200;
	rc = 0;
out:
	free(text);
	json_decref(reply);
	return rc;
}
