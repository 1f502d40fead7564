/*
 * cmd_backup.c - `lockbox backup` and `lockbox restore`: a state directory
 * into one checksummed file and back (container and restore in
 * core/backup.c).  backup needs no daemon stop and no CA passphrase: it
 * copies the database with SQLite's online backup API and the key files as
 * they are (the CA key stays encrypted PKCS#8).  This file decides what a
 * restore needs: lockbox.conf, the database, every file lockbox.conf names
 * inside the directory (CA certificate, key and passphrase file, TLS
 * certificate and key, the LDAP bind password and CA file), the OCSP
 * signer, the first administrator's credential and pub/.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/backup.h"
#include "crl/crl.h"

static const char backup_help[] =
"usage: lockbox backup --out FILE [--dir DIR]\n"
"\n"
"Writes a backup of the state directory DIR to FILE (mode 0600; FILE must\n"
"not exist): a consistent copy of lockbox.db taken with SQLite's online\n"
"backup API, so 'lockbox serve' may keep running, and the files a restore\n"
"needs: lockbox.conf, the CA certificate, the encrypted CA key and its\n"
"passphrase file, the TLS and OCSP certificates and keys, the files\n"
"lockbox.conf names inside DIR (such as the [directory]\n"
"bind_password_file), admin.p12 and pub/.  Files named by absolute paths\n"
"are not included (a warning names them): back them up yourself.\n"
"\n"
"FILE HOLDS THE CA KEY TOGETHER WITH ITS PASSPHRASE and the escrowed\n"
"keys' records: whoever reads it can act as the CA.  Protect it like the\n"
"CA itself (encrypted, offline storage; never next to the CA's host).\n"
"\n"
"Restore with 'lockbox restore FILE --dir NEWDIR'.\n";

static const char restore_help[] =
"usage: lockbox restore FILE --dir DIR\n"
"\n"
"Restores a backup made by 'lockbox backup' into DIR, which must not\n"
"exist or be empty.  Every checksum of FILE is verified before anything\n"
"is written; then each file is written with its mode, and the restored\n"
"database is checked (PRAGMA integrity_check) with its audit chain\n"
"('lockbox audit verify').  On any failure nothing is left behind.\n"
"Prints what it restored.  FILE holds the CA key and its passphrase:\n"
"keep it like the CA itself.\n";

/* A file or directory named by lockbox.conf: [section] name, default. */
static const struct {
	const char *section, *name, *def;
	bool required;
} conf_files[] = {
	{ "ca", "cert", CA_CERT_FILE, false },
	{ "ca", "key", CA_KEY_FILE, true },
	{ "ca", "key_pass_file", CA_KEY_PASS_FILE, false },
	{ "server", "tls_cert", CA_TLS_CERT_FILE, false },
	{ "server", "tls_key", CA_TLS_KEY_FILE, false },
	{ "directory", "bind_password_file", NULL, false },
	{ "directory", "ca_file", NULL, false },
};

/* Files init or the daemon write outside lockbox.conf, when present. */
static const char *const fixed_files[] = {
	CA_CSR_FILE, CRL_OCSP_CERT_FILE, CRL_OCSP_KEY_FILE, CA_ADMIN_P12,
	/* a passphrase file older versions of init wrote beside admin.p12 */
	/* NOLINTNEXTLINE(bugprone-suspicious-missing-comma): concatenation */
	CA_ADMIN_P12 ".pass",
};

/* Adds the directories above rel (relative to dir) not yet in b. */
static int
add_parents(backup *b, const char *dir, const char *rel, lb_err *err)
{
	char sub[BACKUP_NAME_MAX + 1], *path;
	const char *s;
	struct stat st;
	int rc;

	for (s = strchr(rel, '/'); s != NULL; s = strchr(s + 1, '/')) {
		snprintf(sub, sizeof(sub), "%.*s", (int)(s - rel), rel);
		if (backup_find(b, sub) != NULL)
			continue;
		if ((path = core_path(dir, sub)) == NULL)
			return lb_err_set(err, LB_EINTERNAL, "out of memory");
		rc = stat(path, &st);
		free(path);
		if (rc == -1 || !S_ISDIR(st.st_mode))
			return lb_err_set(err, LB_EINVAL, "%s/%s: not a "
			    "directory", dir, sub);
		if (backup_add_dir(b, sub, st.st_mode & 0777, err) == -1)
			return -1;
	}
	return 0;
}

/*
 * Adds dir/rel.  Absent: an error when required, else skipped.  A name
 * outside dir (absolute, "..") is skipped with a warning.
 */
static int
add_state_file(backup *b, const char *dir, const char *rel, bool required,
    lb_err *err)
{
	unsigned char *buf = NULL;
	char *path = NULL;
	struct stat st;
	size_t len = 0;
	int rc = -1;

	if (rel[0] == '\0' || backup_find(b, rel) != NULL)
		return 0;
	if (!backup_name_valid(rel, strlen(rel))) {
		fprintf(stderr, "lockbox: warning: %s is not inside %s and is "
		    "not in the backup: back it up yourself\n", rel, dir);
		return 0;
	}
	if ((path = core_path(dir, rel)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (stat(path, &st) == -1) {
		if (errno == ENOENT && !required) {
			rc = 0;
			goto out;
		}
		lb_err_set(err, LB_EINVAL, "%s: %s: is %s a lockbox state "
		    "directory?", path, strerror(errno), dir);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		lb_err_set(err, LB_EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if (add_parents(b, dir, rel, err) == -1 ||
	    core_file_read(path, (size_t)BACKUP_FILE_MAX, &buf, &len, err) ==
	    -1)
		goto out;
	rc = backup_add_file(b, rel, st.st_mode & 0777, buf, len, err);
out:
	free(path);
	return rc;
}

/* Every regular file of dir/sub (one level, as pub/ is), sorted. */
static int
add_tree(backup *b, const char *dir, const char *sub, lb_err *err)
{
	struct dirent **names = NULL;
	char *path = NULL, rel[BACKUP_NAME_MAX + 1];
	struct stat st;
	int n = -1, i, rc = -1;

	if ((path = core_path(dir, sub)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if (stat(path, &st) == -1 && errno == ENOENT) {
		rc = 0;
		goto out;
	}
	if ((n = scandir(path, &names, NULL, alphasort)) == -1) {
		lb_err_set(err, LB_EINVAL, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (backup_find(b, sub) == NULL &&
	    backup_add_dir(b, sub, st.st_mode & 0777, err) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		const char *nm = names[i]->d_name;

		/* dot files and the temporary files of atomic writes */
		if (nm[0] == '.' || strstr(nm, ".tmp") != NULL)
			continue;
		if ((size_t)snprintf(rel, sizeof(rel), "%s/%s", sub, nm) >=
		    sizeof(rel))
			continue;
		free(path);
		if ((path = core_path(dir, rel)) == NULL) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		if (lstat(path, &st) == -1 || !S_ISREG(st.st_mode))
			continue;
		if (add_state_file(b, dir, rel, false, err) == -1)
			goto out;
	}
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(path);
	return rc;
}

/*
 * Records the backup in the audit log: a copy of the CA key left the
 * directory.  The backup is written by then, so a failure here is a
 * warning.
 */
static void
audit_backup(const char *db_path, const char *out, const backup *b)
{
	lb_err err = { 0 };
	sqlite3 *db = NULL;
	char detail[64];

	snprintf(detail, sizeof(detail), "%zu entries", backup_count(b));
	if ((db = core_db_open(db_path, false, &err)) == NULL ||
	    core_db_begin(db, &err) == -1)
		goto out;
	if (core_audit_append(db, cli_actor(), "backup.create", out, detail,
	    &err) == -1) {
		core_db_rollback(db);
		goto out;
	}
	core_db_commit(db, &err);
out:
	if (err.code != LB_OK)
		fprintf(stderr, "lockbox: warning: backup not recorded in the "
		    "audit log: %s\n", err.msg);
	core_db_close(db);
}

static void
print_entries(const backup *b)
{
	const backup_entry *e;
	size_t i;

	for (i = 0; (e = backup_get0(b, i)) != NULL; i++) {
		if (e->is_dir)
			printf("  %04o %12s  %s/\n", (unsigned)e->mode, "",
			    e->name);
		else
			printf("  %04o %12zu  %s\n", (unsigned)e->mode, e->len,
			    e->name);
	}
}

/* backup --out FILE */

static int
backup_option(void *state, int c, const char *arg)
{
	const char **out = state;

	if (c == 'o')
		*out = arg;
	return -1;
}

static int
backup_check(void *state, const cli_ctx *c)
{
	const char *const *out = state;

	(void)c;
	if (*out == NULL)
		return cli_usage("backup", "--out FILE is required");
	return -1;
}

static int
backup_run(void *state, cli_ctx *c)
{
	const char *out = *(const char **)state, *dir = c->dir, *v;
	char *conf_path = NULL, *db_path = NULL;
	core_conf *conf = NULL;
	backup *b = NULL;
	lb_err err = { 0 };
	size_t i;
	int rc = 1;

	/* before the work: core_file_write would refuse it only at the end */
	if (access(out, F_OK) == 0) {
		lb_err_set(&err, LB_ECONFLICT, "%s: already exists: remove it "
		    "or name another --out", out);
		goto out;
	}
	if ((conf_path = core_path(dir, CA_CONF_FILE)) == NULL ||
	    (db_path = core_path(dir, CA_DB_FILE)) == NULL ||
	    (b = backup_new()) == NULL) {
		lb_err_set(&err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if ((conf = core_conf_load(conf_path, &err)) == NULL)
		goto out;
	if (add_state_file(b, dir, CA_CONF_FILE, true, &err) == -1)
		goto out;
	for (i = 0; i < sizeof(conf_files) / sizeof(conf_files[0]); i++) {
		v = core_conf_get(conf, conf_files[i].section,
		    conf_files[i].name, conf_files[i].def);
		if (v != NULL && add_state_file(b, dir, v,
		    conf_files[i].required, &err) == -1)
			goto out;
	}
	for (i = 0; i < sizeof(fixed_files) / sizeof(fixed_files[0]); i++)
		if (add_state_file(b, dir, fixed_files[i], false, &err) == -1)
			goto out;
	if (add_tree(b, dir, CA_PUB_DIR, &err) == -1)
		goto out;
	if (backup_add_db(b, CA_DB_FILE, db_path, &err) == -1)
		goto out;
	if (backup_write(b, out, &err) == -1)
		goto out;
	audit_backup(db_path, out, b);
	printf("backup of %s written to %s (mode 0600):\n", dir, out);
	print_entries(b);
	printf("%s holds the CA key and its passphrase: keep it like the CA "
	    "itself.\n", out);
	rc = 0;
out:
	if (rc != 0)
		cli_fail(&err);
	backup_free(b);
	core_conf_free(conf);
	free(conf_path);
	free(db_path);
	return rc;
}

static const struct option backup_opts[] = {
	{ "out", required_argument, NULL, 'o' },
	{ NULL, 0, NULL, 0 },
};
/* nothing opened: backup needs no CA passphrase (the key is copied
 * encrypted) and reads the database with SQLite's online backup API */
static const cli_sub backup_sub = {
	"backup", backup_help, backup_opts, backup_option, 0, 0, NULL,
	backup_check, CLI_NONE, backup_run,
};

int
cmd_backup(int argc, char **argv)
{
	const char *out = NULL;

	return cli_run(&backup_sub, &out, argc, argv);
}

/* restore FILE --dir DIR */

static int
restore_check(void *state, const cli_ctx *c)
{
	(void)state;
	/* no default: restoring over the current state directory by
	 * accident must be impossible */
	if (c->dir_opt == NULL)
		return cli_usage("restore", "--dir DIR is required");
	return -1;
}

static int
restore_run(void *state, cli_ctx *c)
{
	const char *file = c->argv[0];
	backup_report rep = { 0 };
	backup *b = NULL;
	lb_err err = { 0 };
	int rc = 1;

	(void)state;
	if ((b = backup_read_file(file, &err)) == NULL)
		goto out;
	if (backup_restore(b, c->dir, CA_DB_FILE, &rep, &err) == -1) {
		lb_err err2 = { 0 };

		lb_err_set(&err2, err.code, "%s; nothing restored", err.msg);
		err = err2;
		goto out;
	}
	printf("restored %s into %s:\n", file, c->dir);
	print_entries(b);
	printf("%zu files (%llu bytes), %zu directories\n", rep.files,
	    (unsigned long long)rep.bytes, rep.dirs);
	printf("database: integrity_check ok\n");
	printf("audit chain: ok, %lld rows\n", (long long)rep.audit_rows);
	rc = 0;
out:
	if (rc != 0)
		cli_fail(&err);
	backup_free(b);
	return rc;
}

static const cli_sub restore_sub = {
	"restore", restore_help, NULL, NULL, 1, 1, "expected one backup FILE",
	restore_check, CLI_NONE, restore_run,
};

int
cmd_restore(int argc, char **argv)
{
	return cli_run(&restore_sub, NULL, argc, argv);
}
