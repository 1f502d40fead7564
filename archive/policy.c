/*
 * policy.c - the escrow policy document, both ends: what it says (the
 * threshold M, the agents and the recovery officers by key, the hash of
 * the policy before it), its one text form and hash, its members'
 * signatures (CMS SignedData, detached, checked against the keys the
 * document names, never against the CA), and the rule that puts a
 * policy in force: the first needs every member it names, a later one M
 * agents of the policy before it plus every member it adds.  The server
 * (archive/policy_db.c) and the members' clients (archive/policy_client.c)
 * apply the same rule; the clients' application is the one that counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "archive/archive_int.h"

#define DOC_HEADER "lockbox escrow policy v1\n"
#define NAME_MAX_LEN 200

void
archive_policy_clear(archive_policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nmembers; i++) {
		free(p->members[i].email);
		free(p->members[i].name);
	}
	free(p->members);
	free(p->doc);
	memset(p, 0, sizeof(*p));
}

/* A name fits a line of the document: 1 to 200 bytes, no control bytes. */
static bool
name_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f)
			return false;
	return n > 0 && n <= NAME_MAX_LEN && s[0] != ' ' && s[n - 1] != ' ';
}

/* 64 lowercase hex digits: a SHA-256 as the documents write it. */
bool
archive_policy_hash_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[64] == '\0';
}

size_t
archive_policy_count(const archive_policy *p, enum archive_member_role role)
{
	size_t i, n = 0;

	for (i = 0; i < p->nmembers; i++)
		n += p->members[i].role == role;
	return n;
}

const archive_policy_member *
archive_policy_member_find(const archive_policy *p, const char *spki)
{
	size_t i;

	for (i = 0; i < p->nmembers; i++)
		if (strcmp(p->members[i].spki, spki) == 0)
			return &p->members[i];
	return NULL;
}

/* The rules a document obeys whoever made it. */
static int
policy_check(const archive_policy *p, lb_err *err)
{
	size_t i, j, nagents = archive_policy_count(p, ARCHIVE_MEMBER_AGENT);
	const archive_policy_member *a, *b;

	if (p->version < 1 || (p->version == 1) != (p->previous[0] == '\0'))
		return lb_err_set(err, LB_EINVAL, "the policy's version and "
		    "its previous policy do not agree");
	if (p->threshold < 2 || p->threshold > ARCHIVE_MAX_AGENTS)
		return lb_err_set(err, LB_EINVAL, "the threshold must be at "
		    "least 2 (one agent alone must never be enough)");
	if (nagents < (size_t)p->threshold + 1)
		return lb_err_set(err, LB_EINVAL, "a threshold of %d needs at "
		    "least %d agents (M + 1, so that one lost agent loses no "
		    "key), and the policy names %zu", p->threshold,
		    p->threshold + 1, nagents);
	if (nagents > ARCHIVE_MAX_AGENTS)
		return lb_err_set(err, LB_EINVAL, "a policy names at most %d "
		    "agents", ARCHIVE_MAX_AGENTS);
	for (i = 0; i < p->nmembers; i++) {
		a = &p->members[i];
		if (!archive_policy_hash_valid(a->spki) || !core_email_valid(a->email) ||
		    strchr(a->email, ' ') != NULL || !name_ok(a->name))
			return lb_err_set(err, LB_EINVAL, "member %zu of the "
			    "policy is malformed", i + 1);
		for (j = 0; j < i; j++) {
			b = &p->members[j];
			if (strcmp(a->spki, b->spki) == 0)
				return lb_err_set(err, LB_EINVAL, "one key "
				    "stands twice in the policy (%s and %s)",
				    b->email, a->email);
			/* one person, one place: case-variants are one */
			if (strcasecmp(a->email, b->email) == 0)
				return lb_err_set(err, LB_EINVAL, "%s stands "
				    "twice in the policy", a->email);
		}
	}
	return 0;
}

static const char *
role_word(enum archive_member_role r)
{
	return r == ARCHIVE_MEMBER_AGENT ? "agent" : "officer";
}

int
archive_policy_render(archive_policy *p, lb_err *err)
{
	size_t cap = 256, i, len;
	char *doc;
	int n, r;

	free(p->doc);
	p->doc = NULL;
	p->doc_len = 0;
	if (policy_check(p, err) == -1)
		return -1;
	for (i = 0; i < p->nmembers; i++)
		cap += 64 + strlen(p->members[i].email) +
		    strlen(p->members[i].name) + 16;
	if ((doc = malloc(cap)) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	n = snprintf(doc, cap, DOC_HEADER "version: %d\nprevious: %s\n"
	    "threshold: %d\ncreated: %s\n", p->version,
	    p->previous[0] != '\0' ? p->previous : "none", p->threshold,
	    p->created);
	len = (size_t)n;
	/* agents first, then officers, each in the order given */
	for (r = 0; r < 2; r++)
		for (i = 0; i < p->nmembers; i++) {
			const archive_policy_member *m = &p->members[i];

			if ((int)m->role != r)
				continue;
			n = snprintf(doc + len, cap - len, "%s: %s %s %s\n",
			    role_word(m->role), m->spki, m->email, m->name);
			len += (size_t)n;
		}
	p->doc = doc;
	p->doc_len = len;
	if (core_sha256_hex(doc, len, p->hash) == -1)
		return lb_err_set(err, LB_EINTERNAL, "cannot hash the policy");
	return 0;
}

/* The next line of doc (without its newline) into line, or -1. */
static int
next_line(const char **s, const char *end, char *line, size_t max)
{
	const char *nl = memchr(*s, '\n', (size_t)(end - *s));
	size_t n;

	if (nl == NULL || (n = (size_t)(nl - *s)) >= max)
		return -1;
	memcpy(line, *s, n);
	line[n] = '\0';
	*s = nl + 1;
	return 0;
}

static int
parse_int_field(const char *line, const char *field, int *v)
{
	size_t fl = strlen(field);
	char *end;
	long x;

	if (strncmp(line, field, fl) != 0 || line[fl] < '1' || line[fl] > '9')
		return -1;
	x = strtol(line + fl, &end, 10);
	if (*end != '\0' || x < 1 || x > 1000000)
		return -1;
	*v = (int)x;
	return 0;
}

static int
parse_member(const char *line, archive_policy_member *m)
{
	const char *rest, *sp;

	if (strncmp(line, "agent: ", 7) == 0) {
		m->role = ARCHIVE_MEMBER_AGENT;
		rest = line + 7;
	} else if (strncmp(line, "officer: ", 9) == 0) {
		m->role = ARCHIVE_MEMBER_OFFICER;
		rest = line + 9;
	} else {
		return -1;
	}
	if (strlen(rest) < 66 || rest[64] != ' ')
		return -1;
	memcpy(m->spki, rest, 64);
	m->spki[64] = '\0';
	rest += 65;
	if ((sp = strchr(rest, ' ')) == NULL)
		return -1;
	m->email = strndup(rest, (size_t)(sp - rest));
	m->name = strdup(sp + 1);
	return m->email != NULL && m->name != NULL ? 0 : -1;
}

int
archive_policy_parse(const char *doc, size_t len, archive_policy *p,
    lb_err *err)
{
	const char *s = doc, *end = doc + len;
	char line[512];
	archive_policy_member *nm;

	memset(p, 0, sizeof(*p));
	if (len > ARCHIVE_POLICY_MAX || len < sizeof(DOC_HEADER) ||
	    memcmp(doc, DOC_HEADER, sizeof(DOC_HEADER) - 1) != 0)
		goto bad;
	s += sizeof(DOC_HEADER) - 1;
	if (next_line(&s, end, line, sizeof(line)) == -1 ||
	    parse_int_field(line, "version: ", &p->version) == -1 ||
	    next_line(&s, end, line, sizeof(line)) == -1 ||
	    strncmp(line, "previous: ", 10) != 0)
		goto bad;
	if (strcmp(line + 10, "none") != 0) {
		if (!archive_policy_hash_valid(line + 10))
			goto bad;
		memcpy(p->previous, line + 10, 65);
	}
	if (next_line(&s, end, line, sizeof(line)) == -1 ||
	    parse_int_field(line, "threshold: ", &p->threshold) == -1 ||
	    next_line(&s, end, line, sizeof(line)) == -1 ||
	    strncmp(line, "created: ", 9) != 0 ||
	    strlen(line + 9) >= sizeof(p->created))
		goto bad;
	memcpy(p->created, line + 9, strlen(line + 9) + 1);
	while (s < end) {
		if (p->nmembers >= (size_t)2 * ARCHIVE_MAX_AGENTS ||
		    next_line(&s, end, line, sizeof(line)) == -1 ||
		    (nm = realloc(p->members, (p->nmembers + 1) *
		    sizeof(*nm))) == NULL)
			goto bad;
		p->members = nm;
		memset(&nm[p->nmembers], 0, sizeof(*nm));
		if (parse_member(line, &nm[p->nmembers++]) == -1)
			goto bad;
	}
	/* one text form only: what renders differently was not ours */
	if (archive_policy_render(p, err) == -1)
		goto out;
	if (p->doc_len != len || memcmp(p->doc, doc, len) != 0)
		goto bad;
	return 0;
bad:
	lb_err_set(err, LB_EINVAL, "not an escrow policy document (or not "
	    "in its one text form)");
out:
	archive_policy_clear(p);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Signatures                                                          */

int
archive_signed_make(const void *data, size_t len, EVP_PKEY *key, X509 *cert,
    unsigned char **out, size_t *out_len, lb_err *err)
{
	BIO *in = BIO_new_mem_buf(data, (int)len);
	CMS_ContentInfo *cms = NULL;
	int n, rc = -1;

	*out = NULL;
	*out_len = 0;
	if (in == NULL || (cms = CMS_sign(cert, key, NULL, in, CMS_BINARY |
	    CMS_DETACHED | CMS_NOSMIMECAP)) == NULL ||
	    (n = i2d_CMS_ContentInfo(cms, out)) <= 0) {
		log_openssl("CMS_sign");
		lb_err_set(err, LB_EINTERNAL, "cannot sign with the "
		    "credential");
	} else {
		*out_len = (size_t)n;
		rc = 0;
	}
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return rc;
}

int
archive_signed_check(const void *data, size_t len, const unsigned char *sig,
    size_t sig_len, char spki[65], lb_err *err)
{
	const unsigned char *q = sig;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *signers = NULL;
	BIO *in = NULL, *mem = NULL;
	int rc = -1;

	spki[0] = '\0';
	if (sig_len == 0 || sig_len > ARCHIVE_POLICY_SIG_MAX ||
	    (cms = d2i_CMS_ContentInfo(NULL, &q, (long)sig_len)) == NULL ||
	    q != sig + sig_len ||
	    OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ||
	    CMS_is_detached(cms) != 1 ||
	    sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms)) != 1) {
		/* detached only: the signed text is the document itself */
		lb_err_set(err, LB_EINVAL, "the signature is not one detached "
		    "CMS SignedData signature");
		goto out;
	}
	/*
	 * trust is the key the document names, not a certificate chain.
	 * The document goes in through a buffering BIO: given a memory BIO,
	 * OpenSSL 3.0's CMS_verify copies it into one of its own, which it
	 * leaks when the signature does not verify.
	 */
	if ((mem = BIO_new_mem_buf(data, (int)len)) == NULL ||
	    (in = BIO_new(BIO_f_buffer())) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	in = BIO_push(in, mem);
	mem = NULL;
	if (CMS_verify(cms, NULL, NULL, in, NULL, CMS_BINARY |
	    CMS_NO_SIGNER_CERT_VERIFY) != 1 ||
	    (signers = CMS_get0_signers(cms)) == NULL ||
	    sk_X509_num(signers) != 1 ||
	    ca_spki_sha256(sk_X509_value(signers, 0), spki) == -1) {
		spki[0] = '\0';
		lb_err_set(err, LB_EINVAL, "the signature does not verify");
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	sk_X509_free(signers);
	BIO_free_all(in);
	BIO_free(mem);
	CMS_ContentInfo_free(cms);
	return rc;
}

int
archive_policy_sign(const archive_policy *p, EVP_PKEY *key, X509 *cert,
    unsigned char **out, size_t *out_len, lb_err *err)
{
	return archive_signed_make(p->doc, p->doc_len, key, cert, out, out_len,
	    err);
}

int
archive_policy_sig_check(const archive_policy *p, const unsigned char *sig,
    size_t len, char spki[65], lb_err *err)
{
	lb_err e = { 0 };

	if (archive_signed_check(p->doc, p->doc_len, sig, len, spki, &e) == -1)
		return lb_err_set(err, LB_EINVAL, "%s over policy %.16s", e.msg,
		    p->hash);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The rule                                                            */

static bool
signed_by(const char (*signers)[65], size_t n, const char *spki)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(signers[i], spki) == 0)
			return true;
	return false;
}

int
archive_policy_accepted(const archive_policy *prev, const archive_policy *p,
    const char (*signers)[65], size_t n, lb_err *err)
{
	const archive_policy_member *m, *was;
	size_t i, agents = 0, missing = 0;
	const char *first_missing = NULL;

	if (prev != NULL && (strcmp(p->previous, prev->hash) != 0 ||
	    p->version != prev->version + 1))
		return lb_err_set(err, LB_EINVAL, "policy %.16s does not "
		    "follow policy v%d", p->hash, prev->version);
	for (i = 0; i < p->nmembers; i++) {
		m = &p->members[i];
		/* a member it adds (or gives another role) proves its key */
		was = prev != NULL ? archive_policy_member_find(prev, m->spki) :
		    NULL;
		if ((was == NULL || was->role != m->role) &&
		    !signed_by(signers, n, m->spki)) {
			if (first_missing == NULL)
				first_missing = m->email;
			missing++;
		}
	}
	if (missing > 0)
		return lb_err_set(err, LB_ECONFLICT, "%zu member(s) of policy "
		    "v%d have not signed it yet (%s%s)", missing, p->version,
		    first_missing, missing > 1 ? ", ..." : "");
	for (i = 0; prev != NULL && i < prev->nmembers; i++)
		if (prev->members[i].role == ARCHIVE_MEMBER_AGENT &&
		    signed_by(signers, n, prev->members[i].spki))
			agents++;
	if (prev != NULL && agents < (size_t)prev->threshold)
		return lb_err_set(err, LB_ECONFLICT, "policy v%d needs %d "
		    "agents of policy v%d to sign it, and %zu have",
		    p->version, prev->threshold, prev->version, agents);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The chain, both ends                                                */

/*
 * The keys of l's signatures that verify over its document: the input of
 * archive_policy_accepted, for the server putting a policy in force and for
 * a member's client checking the chain alike.  A signature that does not
 * verify is left out, not an error.
 */
int
archive_chain_link_signers(const archive_chain_link *l, char (**keys)[65],
    size_t *n, lb_err *err)
{
	char spki[65];
	lb_err e;
	size_t i;

	*n = 0;
	if ((*keys = calloc(l->nsigs + 1, sizeof(**keys))) == NULL)
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	for (i = 0; i < l->nsigs; i++) {
		lb_err_clear(&e);
		if (archive_policy_sig_check(&l->p, l->sigs[i].cms,
		    l->sigs[i].len, spki, &e) == 0)
			memcpy((*keys)[(*n)++], spki, 65);
	}
	return 0;
}

void
archive_chain_link_clear(archive_chain_link *l)
{
	size_t j;

	archive_policy_clear(&l->p);
	for (j = 0; j < l->nsigs; j++) {
		free(l->sigs[j].email);
		free(l->sigs[j].cms);
	}
	free(l->sigs);
	memset(l, 0, sizeof(*l));
}

void
archive_chain_clear(archive_chain *c)
{
	size_t i;

	for (i = 0; c != NULL && i < c->n; i++)
		archive_chain_link_clear(&c->links[i]);
	if (c != NULL) {
		free(c->links);
		memset(c, 0, sizeof(*c));
	}
}

static json_t *
link_json(const archive_chain_link *l)
{
	json_t *o = json_object(), *sigs = json_array(), *s;
	char *b64 = NULL;
	size_t i;
	int bad = o == NULL || sigs == NULL;

	bad |= ca_json_put(o, "hash", json_string(l->p.hash)) |
	    ca_json_put(o, "version", json_integer(l->p.version)) |
	    ca_json_put(o, "threshold", json_integer(l->p.threshold)) |
	    ca_json_put(o, "status", json_string(l->status)) |
	    ca_json_put(o, "document", json_stringn(l->p.doc, l->p.doc_len));
	for (i = 0; !bad && i < l->nsigs; i++) {
		if (core_b64_encode(l->sigs[i].cms, l->sigs[i].len, 0, &b64,
		    NULL) == -1 || (s = json_pack("{s:s, s:s, s:s}", "spki",
		    l->sigs[i].spki, "email", l->sigs[i].email, "cms",
		    b64)) == NULL || json_array_append_new(sigs, s) == -1)
			bad = 1;
		free(b64);
		b64 = NULL;
	}
	if (bad || ca_json_put(o, "signatures", sigs) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *
archive_chain_json(const archive_chain *c)
{
	json_t *o = json_object(), *a = json_array(), *l;
	size_t i;

	if (o == NULL || a == NULL || ca_json_put(o, "policies", a) == -1) {
		json_decref(o);
		return NULL;
	}
	for (i = 0; i < c->n; i++)
		if ((l = link_json(&c->links[i])) == NULL ||
		    json_array_append_new(a, l) == -1) {
			json_decref(o);
			return NULL;
		}
	return o;
}

static int
sig_parse(json_t *j, archive_policy_sig *s)
{
	const char *spki = json_string_value(json_object_get(j, "spki"));
	const char *email = json_string_value(json_object_get(j, "email"));
	const char *cms = json_string_value(json_object_get(j, "cms"));

	if (spki == NULL || strlen(spki) != 64 || email == NULL ||
	    cms == NULL || (s->email = strdup(email)) == NULL ||
	    core_b64_decode(cms, strlen(cms), 2 * ARCHIVE_POLICY_SIG_MAX, 0,
	    &s->cms, &s->len) == -1)
		return -1;
	memcpy(s->spki, spki, 65);
	return 0;
}

int
archive_chain_parse(const char *body, size_t len, archive_chain *c,
    lb_err *err)
{
	json_t *root = NULL, *arr, *j, *sigs;
	archive_chain_link *l;
	const char *doc, *hash, *status;
	size_t i, k;

	memset(c, 0, sizeof(*c));
	if (len > ARCHIVE_MESSAGE_MAX ||
	    (root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL)) ==
	    NULL || !json_is_array(arr = json_object_get(root, "policies")) ||
	    json_array_size(arr) > 100000 ||
	    (c->links = calloc(json_array_size(arr) + 1,
	    sizeof(*c->links))) == NULL)
		goto bad;
	json_array_foreach(arr, i, j) {
		l = &c->links[c->n];
		doc = json_string_value(json_object_get(j, "document"));
		hash = json_string_value(json_object_get(j, "hash"));
		status = json_string_value(json_object_get(j, "status"));
		sigs = json_object_get(j, "signatures");
		if (doc == NULL || hash == NULL || status == NULL ||
		    strlen(status) >= sizeof(l->status) || !json_is_array(sigs) ||
		    json_array_size(sigs) > (size_t)2 * ARCHIVE_MAX_AGENTS)
			goto bad;
		if (archive_policy_parse(doc, json_string_length(json_object_get(
		    j, "document")), &l->p, err) == -1)
			goto out;
		c->n++;
		if (strcmp(l->p.hash, hash) != 0) {
			lb_err_set(err, LB_EINVAL, "the server names policy v%d "
			    "%.16s, and its document hashes to %.16s", l->p.version,
			    hash, l->p.hash);
			goto out;
		}
		memcpy(l->status, status, strlen(status) + 1);
		if ((l->sigs = calloc(json_array_size(sigs) + 1,
		    sizeof(*l->sigs))) == NULL)
			goto bad;
		for (k = 0; k < json_array_size(sigs); k++) {
			l->nsigs++;
			if (sig_parse(json_array_get(sigs, k), &l->sigs[k]) == -1)
				goto bad;
		}
	}
	json_decref(root);
	return 0;
bad:
	lb_err_set(err, LB_EINVAL, "the server's list of escrow policies is "
	    "malformed");
out:
	json_decref(root);
	archive_chain_clear(c);
	return -1;
}
