/*
 * operator.c - operators and their roles.  A role is a row, not a field of
 * the certificate, so it can be withdrawn without reissuing; each operator
 * credential is a certificate of the `operator` profile (or
 * `recovery-agent` for agents).  Role separation keeps one person (e-mail)
 * from holding both an issuing role and a recovery role.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_int.h"

static const struct {
	enum ca_role role;
	const char *name;
} roles[] = {
	{ CA_ROLE_ADMIN, "admin" },
	{ CA_ROLE_OFFICER, "officer" },
	{ CA_ROLE_RECOVERY_OFFICER, "recovery-officer" },
	{ CA_ROLE_RECOVERY_AGENT, "recovery-agent" },
	{ CA_ROLE_AUDITOR, "auditor" },
};

#define ISSUING_ROLES (CA_ROLE_ADMIN | CA_ROLE_OFFICER)
#define RECOVERY_ROLES (CA_ROLE_RECOVERY_OFFICER | CA_ROLE_RECOVERY_AGENT)

enum ca_role
ca_role_parse(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(name, roles[i].name) == 0)
			return roles[i].role;
	return CA_ROLE_NONE;
}

const char *
ca_role_name(enum ca_role r)
{
	size_t i;

	for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (roles[i].role == r)
			return roles[i].name;
	return "none";
}

void
ca_operator_clear(ca_operator *op)
{
	if (op == NULL)
		return;
	free(op->name);
	free(op->email);
	free(op->role);
	free(op->serial);
	free(op->status);
	free(op->der);
	memset(op, 0, sizeof(*op));
}

/* Refuses a role that role separation forbids for this e-mail. */
static int
check_separation(sqlite3 *db, enum ca_role role, const char *email,
    lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, r;
	enum ca_role held;
	unsigned other = (role & ISSUING_ROLES) ? RECOVERY_ROLES :
	    (role & RECOVERY_ROLES) ? ISSUING_ROLES : 0;

	if (other == 0)
		return 0;
	if (sqlite3_prepare_v2(db, "SELECT role FROM operators WHERE email = ? "
	    "AND status = 'active'", -1, &st, NULL) != SQLITE_OK)
		return core_db_fail(db, "operator roles", err);
	sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		held = ca_role_parse((const char *)sqlite3_column_text(st, 0));
		if (held & other) {
			lb_err_set(err, LB_ECONFLICT,
			    "%s already holds the %s role '%s': with role "
			    "separation on, one person may not also hold '%s' "
			    "(remove the other role first)", email,
			    (held & ISSUING_ROLES) ? "issuing" : "recovery",
			    ca_role_name(held), ca_role_name(role));
			goto out;
		}
	}
	rc = core_db_rows_done(db, r, "operator roles", err);
out:
	sqlite3_finalize(st);
	return rc;
}

X509 *
ca_operator_add(ca_ctx *ca, sqlite3 *db, enum ca_role role, const char *name,
    const char *email, EVP_PKEY *pubkey, const char *actor, lb_err *err)
{
	ca_request req;
	X509 *x = NULL;
	sqlite3_stmt *st = NULL;
	char *serial = NULL, detail[256];
	const char *profile = role == CA_ROLE_RECOVERY_AGENT ?
	    "recovery-agent" : "operator";

	if (ca_role_name(role)[0] == 'n') {
		lb_err_set(err, LB_EINVAL, "unknown role: use admin, officer, "
		    "recovery-officer, recovery-agent or auditor");
		return NULL;
	}
	memset(&req, 0, sizeof(req));
	req.profile = profile;
	req.email = email;
	req.common_name = name;
	req.pubkey = pubkey;
	if (ca_key_use_check(db, pubkey, profile, err) == -1 ||
	    (x = ca_sign_cert(ca, &req, err)) == NULL)
		return NULL;
	if ((serial = ca_cert_serial(x)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	if (core_db_begin(db, err) == -1)
		goto fail;
	if (ca->role_separation && check_separation(db, role, email, err) == -1)
		goto rollback;
	if (ca_store_cert(db, x, profile, email, actor, err) == -1)
		goto rollback;
	if (core_db_prepare(db, "INSERT INTO operators (name, email, role, "
	    "serial, created) VALUES (?, ?, ?, ?, ?)", &st, err) == -1)
		goto rollback;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ca_role_name(role), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, serial, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	if (core_db_exec(db, &st, "add operator", err) == -1)
		goto rollback;
	snprintf(detail, sizeof(detail), "role=%s name=%s email=%s",
	    ca_role_name(role), name, email);
	if (core_audit_append(db, actor, "operator.add", serial, detail,
	    err) == -1)
		goto rollback;
	if (core_db_commit(db, err) == -1)
		goto fail;
	sqlite3_finalize(st);
	free(serial);
	return x;
rollback:
	core_db_rollback(db);
fail:
	sqlite3_finalize(st);
	free(serial);
	X509_free(x);
	return NULL;
}

int
ca_operator_list(sqlite3 *db, int (*fn)(const ca_operator *op, void *arg),
    void *arg, lb_err *err)
{
	return ca_operator_list_role(db, NULL, fn, arg, err);
}

int
ca_operator_list_role(sqlite3 *db, const char *role,
    int (*fn)(const ca_operator *op, void *arg), void *arg, lb_err *err)
{
	sqlite3_stmt *st;
	ca_operator op;
	int rc = -1, r, stop;

	/*
	 * all: in the order they were added; one role: by serial.  Every
	 * escrow lists its agents, so the statement is kept prepared: fn
	 * must not list operators itself.
	 */
	if ((st = core_db_cached(db, "SELECT o.id, o.name, o.email, o.role, "
	    "o.serial, o.status, o.created, c.not_after, o.status = 'active' "
	    "AND c.status = 'valid' AND c.not_after >= ?2 AND c.not_before <= "
	    "?2, c.der FROM operators o JOIN certificates c ON c.serial = "
	    "o.serial WHERE ?1 IS NULL OR o.role = ?1 ORDER BY CASE WHEN ?1 IS "
	    "NULL THEN o.id ELSE 0 END, o.serial")) == NULL)
		return core_db_fail(db, "list operators", err);
	if (role != NULL)
		sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&op, 0, sizeof(op));
		op.id = sqlite3_column_int64(st, 0);
		op.name = core_db_text_dup(st, 1);
		op.email = core_db_text_dup(st, 2);
		op.role = core_db_text_dup(st, 3);
		op.serial = core_db_text_dup(st, 4);
		op.status = core_db_text_dup(st, 5);
		op.created = (time_t)sqlite3_column_int64(st, 6);
		op.not_after = (time_t)sqlite3_column_int64(st, 7);
		op.usable = sqlite3_column_int(st, 8) != 0;
		if (!op.name || !op.email || !op.role || !op.serial ||
		    !op.status || core_db_blob_dup(st, 9, &op.der,
		    &op.der_len) == -1) {
			ca_operator_clear(&op);
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		stop = fn(&op, arg);
		ca_operator_clear(&op);
		if (stop)
			break;
	}
	if (r != SQLITE_DONE && r != SQLITE_ROW) {
		core_db_fail(db, "list operators", err);
		goto out;
	}
	rc = 0;
out:
	core_db_cached_done(st);
	return rc;
}

int
ca_operator_remove(sqlite3 *db, const char *id_or_serial, const char *actor,
    lb_err *err)
{
	return ca_operator_remove_guarded(db, id_or_serial, actor, NULL, NULL,
	    err);
}

int
ca_operator_remove_guarded(sqlite3 *db, const char *id_or_serial,
    const char *actor, ca_leave_guard guard, void *arg, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	char norm[130] = "", *serial = NULL, detail[256];
	bool by_id = true, revoked;
	unsigned before;
	const char *p;
	int rc = -1, r;

	for (p = id_or_serial; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p))
			by_id = false;
	if (id_or_serial[0] == '\0' || strlen(id_or_serial) > 18)
		by_id = false;
	if (!by_id && ca_serial_normalise(id_or_serial, norm,
	    sizeof(norm)) == -1)
		return lb_err_set(err, LB_EINVAL, "'%s' is neither an operator "
		    "id nor a certificate serial", id_or_serial);
	if (core_db_begin(db, err) == -1)
		return -1;
	if (core_db_prepare(db, "SELECT o.serial, o.status, o.role, o.email, "
	    "c.status FROM operators o JOIN certificates c ON c.serial = "
	    "o.serial WHERE (?1 IS NOT NULL AND o.id = ?1) OR (?2 IS NOT NULL "
	    "AND o.serial = ?2)", &st, err) == -1)
		goto rollback;
	if (by_id)
		sqlite3_bind_int64(st, 1, strtoll(id_or_serial, NULL, 10));
	else
		sqlite3_bind_text(st, 2, norm, -1, SQLITE_STATIC);
	r = sqlite3_step(st);
	if (r == SQLITE_DONE) {
		lb_err_set(err, LB_ENOTFOUND, "no operator '%s' (see 'lockbox "
		    "operator list')", id_or_serial);
		goto rollback;
	}
	if (r != SQLITE_ROW) {
		core_db_fail(db, "remove operator", err);
		goto rollback;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 1), "removed") == 0) {
		lb_err_set(err, LB_ECONFLICT, "operator '%s' was already "
		    "removed", id_or_serial);
		goto rollback;
	}
	serial = strdup((const char *)sqlite3_column_text(st, 0));
	snprintf(detail, sizeof(detail), "role=%s email=%s",
	    (const char *)sqlite3_column_text(st, 2),
	    (const char *)sqlite3_column_text(st, 3));
	revoked = strcmp((const char *)sqlite3_column_text(st, 4),
	    "revoked") == 0;
	sqlite3_finalize(st);
	st = NULL;
	if (serial == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto rollback;
	}
	before = ca_operator_roles(db, serial, NULL, err);
	if (err->code != LB_OK)
		goto rollback;
	if (core_db_prepare(db, "UPDATE operators SET status = 'removed', "
	    "removed = ? WHERE serial = ?", &st, err) == -1)
		goto rollback;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(st, 2, serial, -1, SQLITE_STATIC);
	if (core_db_exec(db, &st, "remove operator", err) == -1)
		goto rollback;
	if (core_audit_append(db, actor, "operator.remove", serial, detail,
	    err) == -1)
		goto rollback;
	/* the credential dies with the role: privilegeWithdrawn (9) */
	if (!revoked && ca_revoke_in_tx(db, serial, 9, 0, actor, err) == -1)
		goto rollback;
	if (guard != NULL && guard(db, serial, before, 9, arg, err) == -1)
		goto rollback;
	if (core_db_commit(db, err) == -1)
		goto out;
	rc = 0;
	goto out;
rollback:
	core_db_rollback(db);
out:
	sqlite3_finalize(st);
	free(serial);
	return rc;
}

unsigned
ca_operator_roles(sqlite3 *db, const char *serial, char **email, lb_err *err)
{
	sqlite3_stmt *st;
	unsigned roles_held = CA_ROLE_NONE;
	int r;

	if (email != NULL)
		*email = NULL;
	/* every authenticated request and every escrow asks: kept prepared */
	if ((st = core_db_cached(db, "SELECT o.role, o.email FROM operators o "
	    "JOIN certificates c ON c.serial = o.serial WHERE o.serial = ?1 AND "
	    "o.status = 'active' AND c.status = 'valid' AND c.not_after >= ?2 "
	    "AND c.not_before <= ?3")) == NULL) {
		core_db_fail(db, "operator roles", err);
		return CA_ROLE_NONE;
	}
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
	sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		roles_held |= ca_role_parse(
		    (const char *)sqlite3_column_text(st, 0));
		if (email != NULL && *email == NULL)
			*email = strdup((const char *)sqlite3_column_text(st,
			    1));
	}
	if (r != SQLITE_DONE)
		core_db_fail(db, "operator roles", err);
	core_db_cached_done(st);
	return roles_held;
}
