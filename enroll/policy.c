/*
 * policy.c - the autoenrollment policy document (GET /api/v1/policy), both
 * ends of it: the server fills an enroll_policy and writes it as JSON
 * (enroll_policy_json), the enrollment client reads the JSON back into the
 * same struct (enroll_policy_parse), and both compute when a certificate
 * is due for renewal with the one rule, enroll_renew_after.
 *
 * The document, as the server writes it:
 *
 *   { "user": { "email", "given_name", "surname", "dn" },
 *     "profiles": [ { "name", "enroll": true, "autoenroll": true,
 *         "escrow", "approval": "auto" | "manual",
 *         "key_types": [ "ec-p256", ... ],
 *         "key_generation": "client" | "server",
 *         "server_key_type" (escrow profiles), "validity_days",
 *         "renew_percent", "renew_days",
 *         "est": { "cacerts", "csrattrs", "simpleenroll",
 *                  "simplereenroll" | "serverkeygen": URL },
 *         "certificates": [ { "serial", "status", "not_before",
 *                             "not_after", "renew_after" } ] } ] }
 *
 * The parser is the client's defence against a server answer: capped,
 * every field typed, unknown fields ignored (a newer server may add some).
 * What makes one profile unusable is recorded in that profile (problem),
 * so that the others still enroll.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "enroll/enroll.h"

/* The names of enum enroll_est_op, as the document spells them. */
static const char *const est_ops[ENROLL_EST_NOPS] = {
	"cacerts", "csrattrs", "simpleenroll", "simplereenroll",
	"serverkeygen",
};

time_t
enroll_renew_after(time_t not_before, time_t not_after, long percent,
    long days)
{
	time_t life = not_after - not_before, by_pct, by_days;

	by_pct = not_before + life * percent / 100;
	by_days = not_after - (time_t)days * 86400;
	return by_pct < by_days ? by_pct : by_days;
}

const char *
enroll_est_op_name(enum enroll_est_op op)
{
	return op < ENROLL_EST_NOPS ? est_ops[op] : NULL;
}

/* ------------------------------------------------------------------ */
/* Lifetimes                                                           */

static void
cert_clear(enroll_policy_cert *c)
{
	free(c->serial);
	free(c->status);
	memset(c, 0, sizeof(*c));
}

void
enroll_policy_profile_clear(enroll_policy_profile *p)
{
	size_t i;

	free(p->name);
	for (i = 0; i < ENROLL_EST_NOPS; i++)
		free(p->est[i]);
	for (i = 0; i < p->ncerts; i++)
		cert_clear(&p->certs[i]);
	free(p->certs);
	memset(p, 0, sizeof(*p));
}

void
enroll_policy_clear(enroll_policy_doc *p)
{
	size_t i;

	if (p == NULL)
		return;
	free(p->email);
	free(p->given_name);
	free(p->surname);
	free(p->dn);
	for (i = 0; i < p->nprofiles; i++)
		enroll_policy_profile_clear(&p->profiles[i]);
	free(p->profiles);
	memset(p, 0, sizeof(*p));
}

enum ca_key_type
enroll_policy_key_type(const enroll_policy_profile *p)
{
	size_t i;

	/* P-256 where the profile allows it, else the first type known */
	for (i = 0; i < p->nkey_types; i++)
		if (p->key_types[i] == CA_KEY_ECP256)
			return CA_KEY_ECP256;
	return p->nkey_types > 0 ? p->key_types[0] : CA_KEY_ECP256;
}

/* ------------------------------------------------------------------ */
/* Writing (the server)                                                */

static json_t *
profile_json(const enroll_policy_profile *p)
{
	json_t *o = json_object(), *kt = json_array(), *est = json_object();
	json_t *certs = json_array(), *c;
	size_t i;
	int bad = o == NULL || kt == NULL || est == NULL || certs == NULL;

	for (i = 0; !bad && i < p->nkey_types; i++)
		bad |= json_array_append_new(kt, ca_json_str(ca_key_type_name(
		    p->key_types[i])));
	for (i = 0; !bad && i < ENROLL_EST_NOPS; i++)
		if (p->est[i] != NULL)
			bad |= ca_json_put(est, est_ops[i],
			    json_string(p->est[i]));
	for (i = 0; !bad && i < p->ncerts; i++) {
		const enroll_policy_cert *pc = &p->certs[i];

		bad |= (c = json_object()) == NULL ||
		    ca_json_put(c, "serial", ca_json_str(pc->serial)) |
		    ca_json_put(c, "status", ca_json_str(pc->status)) |
		    ca_json_put(c, "not_before",
		    ca_json_time(pc->not_before)) |
		    ca_json_put(c, "not_after",
		    ca_json_time(pc->not_after)) |
		    ca_json_put(c, "renew_after",
		    ca_json_time(pc->renew_after)) |
		    json_array_append_new(certs, c);
	}
	if (!bad)
		bad = ca_json_put(o, "name", ca_json_str(p->name)) |
		    ca_json_put(o, "enroll", json_boolean(p->enroll)) |
		    ca_json_put(o, "autoenroll",
		    json_boolean(p->autoenroll)) |
		    ca_json_put(o, "escrow", json_boolean(p->escrow)) |
		    ca_json_put(o, "approval", json_string(p->manual ?
		    "manual" : "auto")) |
		    ca_json_put(o, "key_generation",
		    json_string(p->escrow ? "server" : "client")) |
		    ca_json_put(o, "validity_days",
		    json_integer(p->validity_days)) |
		    ca_json_put(o, "renew_percent",
		    json_integer(p->renew_percent)) |
		    ca_json_put(o, "renew_days",
		    json_integer(p->renew_days)) |
		    (p->escrow && ca_json_put(o, "server_key_type",
		    ca_json_str(ca_key_type_name(p->server_key_type))));
	/* set_new takes its reference even when it fails */
	if (!bad && (json_object_set(o, "key_types", kt) |
	    json_object_set(o, "est", est) |
	    json_object_set(o, "certificates", certs)))
		bad = 1;
	json_decref(kt);
	json_decref(est);
	json_decref(certs);
	return ca_json_done(o, bad);
}

json_t *
enroll_policy_json(const enroll_policy_doc *p)
{
	json_t *doc = json_object(), *user = json_object();
	json_t *profs = json_array(), *jp;
	size_t i;
	int bad = doc == NULL || user == NULL || profs == NULL;

	if (!bad)
		bad = ca_json_put(user, "email", ca_json_str(p->email)) |
		    ca_json_put(user, "given_name",
		    ca_json_str(p->given_name)) |
		    ca_json_put(user, "surname",
		    ca_json_str(p->surname)) |
		    ca_json_put(user, "dn", ca_json_str(p->dn));
	for (i = 0; !bad && i < p->nprofiles; i++)
		bad = (jp = profile_json(&p->profiles[i])) == NULL ||
		    json_array_append_new(profs, jp) == -1;
	if (!bad && (json_object_set(doc, "user", user) |
	    json_object_set(doc, "profiles", profs)))
		bad = 1;
	json_decref(user);
	json_decref(profs);
	return ca_json_done(doc, bad);
}

/* ------------------------------------------------------------------ */
/* Reading (the enrollment client)                                     */

/* An integer member in [lo, hi], def when absent; -1 when out of range
 * or not an integer. */
static int
member_long(const json_t *o, const char *key, long def, long lo, long hi,
    long *out)
{
	const json_t *v = json_object_get(o, key);

	*out = def;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo ||
	    json_integer_value(v) > hi)
		return -1;
	*out = (long)json_integer_value(v);
	return 0;
}

bool
enroll_policy_name_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || strlen(s) > ENROLL_PROFILE_NAME_MAX)
		return false;
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

static int
parse_certs(const json_t *arr, enroll_policy_profile *p, bool *oom)
{
	const json_t *jc;
	size_t i, n = json_array_size(arr);
	time_t t;

	if (n > ENROLL_POLICY_CERTS_MAX)
		return -1;
	if (n > 0 && (p->certs = calloc(n, sizeof(*p->certs))) == NULL) {
		*oom = true;
		return -1;
	}
	json_array_foreach(arr, i, jc) {
		enroll_policy_cert *c = &p->certs[p->ncerts];

		if (!json_is_object(jc))
			return -1;
		p->ncerts++;
		c->serial = ca_json_dup(jc, "serial", 128, oom);
		c->status = ca_json_dup(jc, "status", 32, oom);
		/* a date that does not parse stays 0: the client refuses to
		 * decide on it when it is the certificate it holds */
		if (core_time_parse(json_string_value(json_object_get(jc,
		    "not_before")), 0, &t) == 0)
			c->not_before = t;
		if (core_time_parse(json_string_value(json_object_get(jc,
		    "not_after")), 0, &t) == 0)
			c->not_after = t;
		if (core_time_parse(json_string_value(json_object_get(jc,
		    "renew_after")), 0, &t) == 0)
			c->renew_after = t;
	}
	return 0;
}

/* One profile; problems of its own go into p->problem. */
static void
parse_profile(const json_t *jp, enroll_policy_profile *p, bool *oom)
{
	const json_t *kt, *est, *v, *certs;
	size_t i;

	p->name = ca_json_dup(jp, "name", ENROLL_PROFILE_NAME_MAX, oom);
	if (!json_is_object(jp) || !enroll_policy_name_ok(p->name)) {
		lb_err_set(&p->problem, LB_EINVAL, "the server's policy names "
		    "a profile badly");
		return;
	}
	p->enroll = json_is_true(json_object_get(jp, "enroll"));
	p->autoenroll = json_is_true(json_object_get(jp, "autoenroll"));
	p->escrow = json_is_true(json_object_get(jp, "escrow"));
	v = json_object_get(jp, "approval");
	p->manual = json_is_string(v) && strcmp(json_string_value(v),
	    "manual") == 0;
	kt = json_object_get(jp, "key_types");
	json_array_foreach(kt, i, v) {
		enum ca_key_type t = ca_key_type_parse(json_is_string(v) ?
		    json_string_value(v) : "");

		if (t != CA_KEY_NONE &&
		    p->nkey_types < sizeof(p->key_types) /
		    sizeof(p->key_types[0]))
			p->key_types[p->nkey_types++] = t;
	}
	v = json_object_get(jp, "server_key_type");
	p->server_key_type = ca_key_type_parse(json_is_string(v) ?
	    json_string_value(v) : "");
	if (member_long(jp, "validity_days", 0, 0, 36500,
	    &p->validity_days) == -1 ||
	    member_long(jp, "renew_percent", 80, 1, 99,
	    &p->renew_percent) == -1 ||
	    member_long(jp, "renew_days", 30, 0, 36500, &p->renew_days) == -1)
		lb_err_set(&p->problem, LB_EINVAL, "the server's policy has a "
		    "bad renewal window for %s", p->name);
	est = json_object_get(jp, "est");
	for (i = 0; i < ENROLL_EST_NOPS; i++)
		p->est[i] = ca_json_dup(est, est_ops[i], ENROLL_URL_MAX, oom);
	certs = json_object_get(jp, "certificates");
	if (certs != NULL && (!json_is_array(certs) ||
	    parse_certs(certs, p, oom) == -1))
		lb_err_set(&p->problem, LB_EINVAL, "the server's policy lists "
		    "%s's certificates badly", p->name);
}

int
enroll_policy_parse(const char *buf, size_t len, enroll_policy_doc *out,
    lb_err *err)
{
	json_t *doc = NULL, *profs, *user, *jp;
	json_error_t jerr;
	bool oom = false;
	size_t i, n;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (buf == NULL || len == 0)
		return lb_err_set(err, LB_EINVAL, "an empty policy document");
	if (len > ENROLL_POLICY_MAX)
		return lb_err_set(err, LB_ETOOBIG, "a policy document of %zu "
		    "bytes is too large (at most %zu)", len,
		    (size_t)ENROLL_POLICY_MAX);
	doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	profs = json_object_get(doc, "profiles");
	if (!json_is_object(doc) || !json_is_array(profs)) {
		lb_err_set(err, LB_EINVAL, "not a policy document");
		goto out;
	}
	if ((n = json_array_size(profs)) > ENROLL_POLICY_PROFILES_MAX) {
		lb_err_set(err, LB_ETOOBIG, "a policy of %zu profiles is too "
		    "large (at most %d)", n, ENROLL_POLICY_PROFILES_MAX);
		goto out;
	}
	user = json_object_get(doc, "user");
	out->email = ca_json_dup(user, "email", 254, &oom);
	out->given_name = ca_json_dup(user, "given_name", 256, &oom);
	out->surname = ca_json_dup(user, "surname", 256, &oom);
	out->dn = ca_json_dup(user, "dn", 1024, &oom);
	if (n > 0 && (out->profiles = calloc(n, sizeof(*out->profiles))) ==
	    NULL)
		oom = true;
	json_array_foreach(profs, i, jp) {
		if (oom)
			break;
		parse_profile(jp, &out->profiles[out->nprofiles++], &oom);
	}
	if (oom) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	json_decref(doc);
	if (rc == -1)
		enroll_policy_clear(out);
	return rc;
}
