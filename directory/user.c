/*
 * user.c - directory-backed identity for enrollment: finding a user by
 * login (uid or e-mail) with the configured filter, checking a password by
 * a simple bind as that user on a connection of its own, group membership,
 * and adding or removing a certificate on the user's entry
 * (userCertificate;binary, the "address book").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lber.h>
#include <ldap.h>

#include "directory/directory_int.h"

#define LOGIN_MAX 256

void
directory_user_free(directory_user *u)
{
	if (u == NULL)
		return;
	free(u->dn);
	free(u->mail);
	free(u->given_name);
	free(u->surname);
	free(u);
}

/* A login is 1..LOGIN_MAX printable bytes (UTF-8 allowed, no controls). */
static int
check_login(const directory_ctx *d, const char *login, lb_err *err)
{
	size_t n = login != NULL ? strlen(login) : 0, i;

	if (n == 0 || n > LOGIN_MAX)
		return lb_err_set(err, LB_EINVAL, "directory %s: a login must "
		    "have 1 to %d bytes", d->uri, LOGIN_MAX);
	for (i = 0; i < n; i++)
		if ((unsigned char)login[i] < 0x20 || login[i] == 0x7f)
			return lb_err_set(err, LB_EINVAL, "directory %s: the "
			    "login has a control character", d->uri);
	return 0;
}

/* The user filter with every %s replaced by the escaped login. */
static char *
make_filter(const directory_ctx *d, const char *login, lb_err *err)
{
	struct berval in = { strlen(login), (char *)login }, esc = { 0, NULL };
	const char *f;
	char *out = NULL;
	size_t n = 0, cap;

	if (ldap_bv2escaped_filter_value(&in, &esc) != 0) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		return NULL;
	}
	cap = strlen(d->user_filter) * (esc.bv_len + 1) + 1;
	if ((out = malloc(cap)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	for (f = d->user_filter; *f != '\0'; f++) {
		if (f[0] == '%' && f[1] == 's') {
			memcpy(out + n, esc.bv_val, esc.bv_len);
			n += esc.bv_len;
			f++;
		} else if (f[0] == '%' && f[1] == '%') {
			out[n++] = '%';
			f++;
		} else
			out[n++] = *f;
	}
	out[n] = '\0';
out:
	ber_memfree(esc.bv_val);
	return out;
}

static char *
first_value(LDAP *ld, LDAPMessage *e, const char *attr)
{
	struct berval **vals = ldap_get_values_len(ld, e, attr);
	char *v = NULL;

	if (vals != NULL && vals[0] != NULL)
		v = strndup(vals[0]->bv_val, vals[0]->bv_len);
	ldap_value_free_len(vals);
	return v;
}

struct lookup_args {
	const char *login;
	directory_user *user;
};

static int
lookup_op(directory_ctx *d, void *arg, lb_err *err)
{
	struct lookup_args *a = arg;
	char *attrs[] = { d->mail_attr, "givenName", "sn", NULL };
	struct timeval tv = dir_timeout(d);
	LDAPMessage *res = NULL, *e;
	directory_user *u = NULL;
	char *filter = NULL, *dn = NULL;
	int lrc, n, rc = -1;

	if ((filter = make_filter(d, a->login, err)) == NULL)
		goto out;
	/* Two are enough to tell "exactly one" from "ambiguous". */
	lrc = ldap_search_ext_s(d->ld, d->user_base, LDAP_SCOPE_SUBTREE,
	    filter, attrs, 0, NULL, NULL, &tv, 2, &res);
	if (lrc != LDAP_SUCCESS && lrc != LDAP_SIZELIMIT_EXCEEDED) {
		dir_fail(d, lrc, "search for users under", d->user_base, err);
		goto out;
	}
	n = ldap_count_entries(d->ld, res);
	if (n == 0) {
		lb_err_set(err, LB_ENOTFOUND, "directory %s: no user '%s' "
		    "under %s", d->uri, a->login, d->user_base);
		goto out;
	}
	if (n > 1 || lrc == LDAP_SIZELIMIT_EXCEEDED) {
		lb_err_set(err, LB_ECONFLICT, "directory %s: the login '%s' "
		    "matches several entries under %s: make user_filter "
		    "unique", d->uri, a->login, d->user_base);
		goto out;
	}
	e = ldap_first_entry(d->ld, res);
	if ((u = calloc(1, sizeof(*u))) == NULL ||
	    (dn = ldap_get_dn(d->ld, e)) == NULL ||
	    (u->dn = strdup(dn)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	u->mail = first_value(d->ld, e, d->mail_attr);
	u->given_name = first_value(d->ld, e, "givenName");
	u->surname = first_value(d->ld, e, "sn");
	a->user = u;
	u = NULL;
	rc = 0;
out:
	directory_user_free(u);
	ldap_memfree(dn);
	ldap_msgfree(res);
	free(filter);
	return rc;
}

directory_user *
directory_user_lookup(directory_ctx *d, const char *login, lb_err *err)
{
	struct lookup_args a = { login, NULL };

	if (d->user_base == NULL) {
		lb_err_set(err, LB_EINVAL, "directory %s: set base_dn (or "
		    "user_base) in [directory] to look up users", d->uri);
		return NULL;
	}
	if (check_login(d, login, err) == -1 ||
	    dir_run(d, lookup_op, &a, err) == -1)
		return NULL;
	return a.user;
}

directory_user *
directory_user_authenticate(directory_ctx *d, const char *login,
    const char *password, lb_err *err)
{
	directory_user *u = NULL;
	struct berval cred;
	LDAP *ld = NULL;
	int lrc;

	/* An empty password is an unauthenticated bind: it always succeeds. */
	if (password == NULL || password[0] == '\0') {
		lb_err_set(err, LB_EFORBIDDEN, "directory %s: empty password "
		    "for '%s'", d->uri, login != NULL ? login : "");
		return NULL;
	}
	if ((u = directory_user_lookup(d, login, err)) == NULL)
		return NULL;
	if (dir_handle_open(d, &ld, err) == -1)
		goto fail;
	cred.bv_val = (char *)password;
	cred.bv_len = strlen(password);
	lrc = ldap_sasl_bind_s(ld, u->dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL,
	    NULL);
	if (lrc == LDAP_INVALID_CREDENTIALS) {
		lb_err_set(err, LB_EFORBIDDEN, "directory %s: wrong password "
		    "for %s", d->uri, u->dn);
		goto fail;
	}
	if (lrc != LDAP_SUCCESS) {
		dir_fail_on(d, ld, lrc, "bind as", u->dn, err);
		goto fail;
	}
	ldap_unbind_ext_s(ld, NULL, NULL);
	return u;
fail:
	if (ld != NULL)
		ldap_unbind_ext_s(ld, NULL, NULL);
	directory_user_free(u);
	return NULL;
}

struct group_args {
	const char *user_dn;
	const char *group_dn;
	bool member;
};

static int
group_op(directory_ctx *d, void *arg, lb_err *err)
{
	struct group_args *a = arg;
	struct berval in = { strlen(a->user_dn), (char *)a->user_dn };
	struct berval esc = { 0, NULL };
	char *attrs[] = { "1.1", NULL };
	struct timeval tv = dir_timeout(d);
	LDAPMessage *res = NULL;
	char *filter = NULL;
	size_t n;
	int lrc, rc = -1;

	if (ldap_bv2escaped_filter_value(&in, &esc) != 0) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	n = strlen(d->group_attr) + esc.bv_len + 4;
	if ((filter = malloc(n)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	snprintf(filter, n, "(%s=%s)", d->group_attr, esc.bv_val);
	lrc = ldap_search_ext_s(d->ld, a->group_dn, LDAP_SCOPE_BASE, filter,
	    attrs, 0, NULL, NULL, &tv, 1, &res);
	if (lrc == LDAP_NO_SUCH_OBJECT) {
		lb_err_set(err, LB_ENOTFOUND, "directory %s: no group %s",
		    d->uri, a->group_dn);
		goto out;
	}
	if (lrc != LDAP_SUCCESS) {
		dir_fail(d, lrc, "search group", a->group_dn, err);
		goto out;
	}
	a->member = ldap_count_entries(d->ld, res) > 0;
	rc = 0;
out:
	ldap_msgfree(res);
	free(filter);
	ber_memfree(esc.bv_val);
	return rc;
}

int
directory_user_in_group(directory_ctx *d, const char *user_dn,
    const char *group_dn, bool *member, lb_err *err)
{
	struct group_args a = { user_dn, group_dn, false };

	*member = false;
	if (user_dn == NULL || user_dn[0] == '\0' || group_dn == NULL ||
	    group_dn[0] == '\0')
		return lb_err_set(err, LB_EINVAL, "directory %s: group "
		    "membership needs a user DN and a group DN", d->uri);
	if (dir_run(d, group_op, &a, err) == -1)
		return -1;
	*member = a.member;
	return 0;
}

struct cert_args {
	const char *user_dn;
	struct berval der;
	bool add;
};

static int
cert_op(directory_ctx *d, void *arg, lb_err *err)
{
	struct cert_args *a = arg;
	struct berval *vals[] = { &a->der, NULL };
	LDAPMod mod = { (a->add ? LDAP_MOD_ADD : LDAP_MOD_DELETE) |
	    LDAP_MOD_BVALUES, "userCertificate;binary", { 0 } };
	LDAPMod *mods[] = { &mod, NULL };
	int lrc;

	mod.mod_bvalues = vals;
	lrc = ldap_modify_ext_s(d->ld, a->user_dn, mods, NULL, NULL);
	/* Idempotent: the queue may retry a publication that succeeded. */
	if (lrc == LDAP_SUCCESS || (a->add && lrc == LDAP_TYPE_OR_VALUE_EXISTS)
	    || (!a->add && lrc == LDAP_NO_SUCH_ATTRIBUTE))
		return 0;
	return dir_fail(d, lrc, a->add ? "add userCertificate;binary to" :
	    "remove userCertificate;binary from", a->user_dn, err);
}

static int
user_cert(directory_ctx *d, const char *user_dn, const unsigned char *der,
    size_t len, bool add, lb_err *err)
{
	struct cert_args a = { user_dn, { len, (char *)der }, add };

	if (user_dn == NULL || user_dn[0] == '\0' || der == NULL || len == 0)
		return lb_err_set(err, LB_EINVAL, "directory %s: publishing a "
		    "user certificate needs the user's DN and the DER", d->uri);
	return dir_run(d, cert_op, &a, err);
}

int
directory_publish_user_cert(directory_ctx *d, const char *user_dn,
    const unsigned char *der, size_t len, lb_err *err)
{
	return user_cert(d, user_dn, der, len, true, err);
}

int
directory_unpublish_user_cert(directory_ctx *d, const char *user_dn,
    const unsigned char *der, size_t len, lb_err *err)
{
	return user_cert(d, user_dn, der, len, false, err);
}
