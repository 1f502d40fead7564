/*
 * test_backup.c - unit tests of core/backup.c: the container round-trips;
 * the reader refuses a bad magic, every truncation, a change of any single
 * byte (every field), oversized entries and files, names that escape the
 * directory, duplicate names, undeclared parents, bad modes and types,
 * count mismatches and stray bytes; the online copy of a live database is
 * consistent; restore writes files with their modes, refuses a non-empty
 * directory, and leaves nothing behind when the database fails its
 * integrity check or its audit chain is broken.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/backup.h"
#include "tests/unit/testutil.h"

/* ------------------------------------------------------------------ */
/* A raw container writer that skips the library's checks, to build     */
/* hostile inputs with valid checksums.                                 */

struct raw {
	unsigned char buf[8192];
	size_t len;
	unsigned count;
};

static void
raw_put(struct raw *r, const void *p, size_t n)
{
	assert_true(r->len + n <= sizeof(r->buf));
	memcpy(r->buf + r->len, p, n);
	r->len += n;
}

static void
raw_be(struct raw *r, uint64_t v, int n)
{
	unsigned char b[8];
	int i;

	for (i = n - 1; i >= 0; i--) {
		b[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	raw_put(r, b, (size_t)n);
}

static void
raw_start(struct raw *r)
{
	memset(r, 0, sizeof(*r));
	raw_put(r, BACKUP_MAGIC, BACKUP_MAGIC_LEN);
}

static void
raw_dir(struct raw *r, const char *name, uint32_t mode)
{
	raw_put(r, "D", 1);
	raw_be(r, strlen(name), 2);
	raw_put(r, name, strlen(name));
	raw_be(r, mode, 4);
	r->count++;
}

/* A file entry; declared is the length written in the header. */
static void
raw_file_len(struct raw *r, const char *name, uint32_t mode, const char *data,
    uint64_t declared)
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	raw_put(r, "F", 1);
	raw_be(r, strlen(name), 2);
	raw_put(r, name, strlen(name));
	raw_be(r, mode, 4);
	raw_be(r, declared, 8);
	assert_int_equal(EVP_Digest(data, strlen(data), md, &mdlen,
	    EVP_sha256(), NULL), 1);
	raw_put(r, md, sizeof(md));
	raw_put(r, data, strlen(data));
	r->count++;
}

static void
raw_file(struct raw *r, const char *name, uint32_t mode, const char *data)
{
	raw_file_len(r, name, mode, data, strlen(data));
}

static void
raw_end_count(struct raw *r, uint32_t count)
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	raw_put(r, "E", 1);
	raw_be(r, count, 4);
	assert_int_equal(EVP_Digest(r->buf, r->len, md, &mdlen, EVP_sha256(),
	    NULL), 1);
	raw_put(r, md, sizeof(md));
}

static void
raw_end(struct raw *r)
{
	raw_end_count(r, r->count);
}

/* Decoding r fails with code and a message containing want. */
static void
assert_refused(const struct raw *r, enum lb_errcode code, const char *want)
{
	lb_err err = { 0 };
	backup *b = backup_decode(r->buf, r->len, &err);

	if (b != NULL)
		fail_msg("accepted; expected '%s'", want);
	if (err.code != code)
		fail_msg("code %d, want %d: %s", err.code, code, err.msg);
	if (strstr(err.msg, want) == NULL)
		fail_msg("message '%s' lacks '%s'", err.msg, want);
}

/* A valid container of a directory and two files, via the library. */
static void
sample(unsigned char **buf, size_t *len)
{
	backup *b = backup_new();
	lb_err err = { 0 };

	assert_non_null(b);
	assert_int_equal(backup_add_file(b, "lockbox.conf", 0600,
	    (unsigned char *)strdup("[ca]\nname = x\n"), 14, &err), 0);
	assert_int_equal(backup_add_dir(b, "pub", 0755, &err), 0);
	assert_int_equal(backup_add_file(b, "pub/ca.crt", 0644,
	    (unsigned char *)strdup("CERT"), 4, &err), 0);
	assert_int_equal(backup_add_file(b, "empty", 0600,
	    (unsigned char *)strdup(""), 0, &err), 0);
	assert_int_equal(backup_encode(b, buf, len, &err), 0);
	backup_free(b);
}

/* ------------------------------------------------------------------ */

static void
test_roundtrip(void **state)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	lb_err err = { 0 };
	backup *b;
	const backup_entry *e;

	(void)state;
	sample(&buf, &len);
	assert_memory_equal(buf, BACKUP_MAGIC, BACKUP_MAGIC_LEN);
	b = backup_decode(buf, len, &err);
	assert_non_null(b);
	assert_int_equal(backup_count(b), 4);
	e = backup_get0(b, 0);
	assert_string_equal(e->name, "lockbox.conf");
	assert_false(e->is_dir);
	assert_int_equal(e->mode, 0600);
	assert_int_equal(e->len, 14);
	assert_memory_equal(e->data, "[ca]\nname = x\n", 14);
	e = backup_get0(b, 1);
	assert_string_equal(e->name, "pub");
	assert_true(e->is_dir);
	assert_int_equal(e->mode, 0755);
	e = backup_find(b, "pub/ca.crt");
	assert_non_null(e);
	assert_int_equal(e->mode, 0644);
	assert_memory_equal(e->data, "CERT", 4);
	assert_int_equal(backup_find(b, "empty")->len, 0);
	assert_null(backup_get0(b, 4));
	assert_null(backup_find(b, "nope"));
	backup_free(b);

	/* the raw writer agrees with the library byte for byte */
	{
		struct raw r;

		raw_start(&r);
		raw_file(&r, "lockbox.conf", 0600, "[ca]\nname = x\n");
		raw_dir(&r, "pub", 0755);
		raw_file(&r, "pub/ca.crt", 0644, "CERT");
		raw_file(&r, "empty", 0600, "");
		raw_end(&r);
		assert_int_equal(r.len, len);
		assert_memory_equal(r.buf, buf, len);
	}
	OPENSSL_clear_free(buf, len);
}

static void
test_bad_magic(void **state)
{
	struct raw r;

	(void)state;
	raw_start(&r);
	raw_end(&r);
	r.buf[0] = 'X';
	assert_refused(&r, LB_EINVAL, "bad magic");
	raw_start(&r);
	r.buf[15] = '2';  /* version 2 */
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "bad magic");
	r.len = 0;
	assert_refused(&r, LB_EINVAL, "bad magic");
	/* an empty container is valid */
	raw_start(&r);
	raw_end(&r);
	{
		lb_err err = { 0 };
		backup *b = backup_decode(r.buf, r.len, &err);

		assert_non_null(b);
		assert_int_equal(backup_count(b), 0);
		backup_free(b);
	}
}

static void
test_truncated(void **state)
{
	unsigned char *buf = NULL;
	size_t len = 0, n;
	lb_err err;
	backup *b;

	(void)state;
	sample(&buf, &len);
	for (n = 0; n < len; n++) {
		lb_err_clear(&err);
		b = backup_decode(buf, n, &err);
		if (b != NULL)
			fail_msg("accepted a prefix of %zu of %zu bytes", n, len);
		assert_int_not_equal(err.code, LB_OK);
		assert_true(err.msg[0] != '\0');
	}
	OPENSSL_clear_free(buf, len);
}

static void
test_corrupted_every_byte(void **state)
{
	unsigned char *buf = NULL;
	size_t len = 0, i;
	int bit;
	lb_err err;
	backup *b;

	(void)state;
	sample(&buf, &len);
	/* every field of every entry and of the trailer: any one bit */
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit += 7) {
			buf[i] ^= (unsigned char)(1u << bit);
			lb_err_clear(&err);
			b = backup_decode(buf, len, &err);
			if (b != NULL)
				fail_msg("accepted a flip of bit %d of byte %zu",
				    bit, i);
			assert_int_not_equal(err.code, LB_OK);
			buf[i] ^= (unsigned char)(1u << bit);
		}
	}
	/* and untouched it still decodes */
	b = backup_decode(buf, len, &err);
	assert_non_null(b);
	backup_free(b);
	OPENSSL_clear_free(buf, len);
}

static void
test_corrupted_fields(void **state)
{
	struct raw r;
	size_t at;

	(void)state;
	/* data altered: the entry's SHA-256 names it */
	raw_start(&r);
	raw_file(&r, "ca.key", 0600, "SECRET");
	raw_end(&r);
	r.buf[r.len - 1 - 32 - 4 - 1 - 1] ^= 1;   /* last data byte */
	assert_refused(&r, LB_EINVAL, "ca.key: SHA-256 mismatch");
	/* trailer hash altered */
	raw_start(&r);
	raw_file(&r, "ca.key", 0600, "SECRET");
	raw_end(&r);
	r.buf[r.len - 1] ^= 0x80;
	assert_refused(&r, LB_EINVAL, "trailer SHA-256 mismatch");
	/* unknown type */
	raw_start(&r);
	raw_put(&r, "X", 1);
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "unknown type 0x58");
	/* mode with more than permission bits */
	raw_start(&r);
	raw_file(&r, "a", 04755, "x");
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "invalid mode 4755");
	raw_start(&r);
	raw_dir(&r, "d", 0x80000000u);
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "invalid mode");
	/* declared length longer than the data: runs into the trailer */
	raw_start(&r);
	raw_file_len(&r, "a", 0600, "xyz", 1000);
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "truncated");
	/* declared length shorter: the checksum no longer matches */
	raw_start(&r);
	raw_file_len(&r, "a", 0600, "xyz", 1);
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "a: SHA-256 mismatch");
	/* trailer count wrong */
	raw_start(&r);
	raw_file(&r, "a", 0600, "x");
	raw_end_count(&r, 2);
	assert_refused(&r, LB_EINVAL, "trailer counts 2 entries, the file "
	    "has 1");
	/* stray bytes after the trailer */
	raw_start(&r);
	raw_file(&r, "a", 0600, "x");
	raw_end(&r);
	raw_put(&r, "\n", 1);
	assert_refused(&r, LB_EINVAL, "1 stray bytes after the trailer");
	/* no trailer at all */
	raw_start(&r);
	raw_file(&r, "a", 0600, "x");
	assert_refused(&r, LB_EINVAL, "no trailer");
	/* a name length of zero and one past the data */
	raw_start(&r);
	raw_put(&r, "F", 1);
	raw_be(&r, 0, 2);
	raw_be(&r, 0600, 4);
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "invalid entry name");
	raw_start(&r);
	at = r.len;
	raw_file(&r, "abc", 0600, "x");
	r.buf[at + 2] = 0xff;   /* namelen 0x00ff: past the end */
	assert_refused(&r, LB_EINVAL, "truncated");
}

static void
test_oversized(void **state)
{
	struct raw r;
	char name[BACKUP_NAME_MAX + 2];
	backup *b;
	lb_err err = { 0 };
	int i;

	(void)state;
	/* a length over the per-file cap is refused before anything else */
	raw_start(&r);
	raw_file_len(&r, "lockbox.db", 0600, "x", BACKUP_FILE_MAX + 1);
	raw_end(&r);
	assert_refused(&r, LB_ETOOBIG, "more than");
	raw_start(&r);
	raw_file_len(&r, "lockbox.db", 0600, "x", UINT64_MAX);
	raw_end(&r);
	assert_refused(&r, LB_ETOOBIG, "more than");
	/* names over 255 bytes */
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	raw_start(&r);
	raw_file(&r, name, 0600, "x");
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "invalid entry name");
	name[BACKUP_NAME_MAX] = '\0';
	raw_start(&r);
	raw_file(&r, name, 0600, "x");
	raw_end(&r);
	b = backup_decode(r.buf, r.len, &err);
	assert_non_null(b);   /* exactly 255 is fine */
	backup_free(b);
	/* more entries than the cap */
	assert_non_null(b = backup_new());
	for (i = 0; i < BACKUP_ENTRIES_MAX; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		assert_int_equal(backup_add_dir(b, name, 0700, &err), 0);
	}
	assert_int_equal(backup_add_dir(b, "one-more", 0700, &err), -1);
	assert_int_equal(err.code, LB_ETOOBIG);
	backup_free(b);
	/* the writer refuses a file over the cap without reading it */
	assert_non_null(b = backup_new());
	lb_err_clear(&err);
	assert_int_equal(backup_add_file(b, "big", 0600, NULL,
	    (size_t)BACKUP_FILE_MAX + 1, &err), -1);
	assert_int_equal(err.code, LB_ETOOBIG);
	backup_free(b);
}

static void
test_file_too_big(void **state)
{
	char *tmp = tu_mkdtemp("backup"), *path;
	lb_err err = { 0 };
	int fd;

	(void)state;
	assert_non_null(tmp);
	path = tu_path(tmp, "huge.lbk");
	/* sparse: no disk used, but larger than the cap */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)BACKUP_TOTAL_MAX + 1), 0);
	close(fd);
	assert_null(backup_read_file(path, &err));
	assert_int_equal(err.code, LB_ETOOBIG);
	/* too short, and absent */
	assert_int_equal(tu_write(path, "LOCKBOX", 7), 0);
	lb_err_clear(&err);
	assert_null(backup_read_file(path, &err));
	assert_int_equal(err.code, LB_EINVAL);
	lb_err_clear(&err);
	assert_null(backup_read_file(tmp, &err));   /* a directory */
	assert_int_equal(err.code, LB_EINVAL);
	unlink(path);
	lb_err_clear(&err);
	assert_null(backup_read_file(path, &err));
	assert_int_equal(err.code, LB_ENOTFOUND);
	free(path);
	tu_rmtree(tmp);
	free(tmp);
}

static void
test_path_traversal(void **state)
{
	static const char *const bad[] = {
		"../x", "..", "/etc/passwd", "a/../../x", "pub/../../x",
		"./x", ".", "a//b", "a/", "/", "x\n", "x\x1b[31m", "x\x7f",
		"caf\xc3\xa9",
	};
	struct raw r;
	size_t i;
	lb_err err = { 0 };
	backup *b;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		raw_start(&r);
		raw_dir(&r, "a", 0700);
		raw_dir(&r, "pub", 0700);
		raw_file(&r, bad[i], 0600, "pwned");
		raw_end(&r);
		assert_refused(&r, LB_EINVAL, "invalid entry name");
		assert_false(backup_name_valid(bad[i], strlen(bad[i])));
		/* and the writer refuses them too */
		assert_non_null(b = backup_new());
		lb_err_clear(&err);
		assert_int_equal(backup_add_file(b, bad[i], 0600,
		    (unsigned char *)strdup("x"), 1, &err), -1);
		backup_free(b);
		/* also as a directory */
		raw_start(&r);
		raw_dir(&r, bad[i], 0700);
		raw_end(&r);
		assert_refused(&r, LB_EINVAL, "invalid entry name");
	}
	/* a NUL inside the name */
	raw_start(&r);
	raw_put(&r, "F", 1);
	raw_be(&r, 3, 2);
	raw_put(&r, "a\0b", 3);
	raw_be(&r, 0600, 4);
	raw_be(&r, 0, 8);
	{
		unsigned char md[32];
		unsigned int l = 0;

		EVP_Digest("", 0, md, &l, EVP_sha256(), NULL);
		raw_put(&r, md, 32);
	}
	r.count++;
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "invalid entry name");
	/* a file in an undeclared directory */
	raw_start(&r);
	raw_file(&r, "pub/ca.crt", 0644, "x");
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "pub/ca.crt: its directory is not "
	    "declared");
	/* a file used as a directory */
	raw_start(&r);
	raw_file(&r, "pub", 0644, "x");
	raw_file(&r, "pub/ca.crt", 0644, "x");
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "is not declared");
	/* nested, declared in order: fine */
	raw_start(&r);
	raw_dir(&r, "a", 0700);
	raw_dir(&r, "a/b", 0700);
	raw_file(&r, "a/b/c.d..e", 0600, "x");
	raw_end(&r);
	b = backup_decode(r.buf, r.len, &err);
	assert_non_null(b);
	backup_free(b);
}

static void
test_duplicates(void **state)
{
	struct raw r;

	(void)state;
	raw_start(&r);
	raw_file(&r, "ca.key", 0600, "one");
	raw_file(&r, "ca.key", 0600, "two");
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "ca.key: duplicate entry");
	raw_start(&r);
	raw_dir(&r, "pub", 0755);
	raw_dir(&r, "pub", 0755);
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "pub: duplicate entry");
	raw_start(&r);
	raw_file(&r, "pub", 0600, "x");
	raw_dir(&r, "pub", 0755);
	raw_end(&r);
	assert_refused(&r, LB_EINVAL, "duplicate entry");
}

/* ------------------------------------------------------------------ */
/* The database copy and the restore                                   */

/* A lockbox database in dir/lockbox.db with n audit rows. */
static void
make_db(const char *dir, int n)
{
	char *path = tu_path(dir, "lockbox.db");
	lb_err err = { 0 };
	sqlite3 *db = core_db_open(path, true, &err);
	int i;

	assert_non_null(db);
	for (i = 0; i < n; i++) {
		assert_int_equal(core_db_begin(db, &err), 0);
		assert_int_equal(core_audit_append(db, "unit", "test", "obj",
		    "detail", &err), 0);
		assert_int_equal(core_db_commit(db, &err), 0);
	}
	core_db_close(db);
	free(path);
}

static void
test_db_online_copy(void **state)
{
	char *tmp = tu_mkdtemp("backup"), *src, *path;
	lb_err err = { 0 };
	sqlite3 *live;
	backup *b;
	const backup_entry *e;

	(void)state;
	assert_non_null(tmp);
	src = tu_path(tmp, "src");
	assert_int_equal(mkdir(src, 0700), 0);
	make_db(src, 3);
	path = tu_path(src, "lockbox.db");
	/* a writer holds an open write transaction with an uncommitted row:
	 * the copy has the committed rows only */
	live = core_db_open(path, false, &err);
	assert_non_null(live);
	assert_int_equal(core_db_begin(live, &err), 0);
	assert_int_equal(core_audit_append(live, "unit", "uncommitted", "o",
	    "d", &err), 0);
	assert_non_null(b = backup_new());
	assert_int_equal(backup_add_db(b, "lockbox.db", path, &err), 0);
	core_db_rollback(live);
	core_db_close(live);
	e = backup_find(b, "lockbox.db");
	assert_non_null(e);
	assert_int_equal(e->mode, 0600);
	assert_true(e->len > 100);
	assert_memory_equal(e->data, "SQLite format 3", 16);
	/* restored, it holds the three committed rows */
	{
		char *dst = tu_path(tmp, "dst");
		backup_report rep = { 0 };

		assert_int_equal(backup_restore(b, dst, "lockbox.db", &rep,
		    &err), 0);
		assert_int_equal(rep.audit_rows, 3);
		assert_int_equal(rep.files, 1);
		free(dst);
	}
	/* the database is restored 0600 whatever mode the entry says */
	{
		char *dst = tu_path(tmp, "dst644"), *dbp;
		unsigned char *copy = malloc(e->len);
		backup *b2 = backup_new();

		assert_non_null(copy);
		assert_non_null(b2);
		memcpy(copy, e->data, e->len);
		assert_int_equal(backup_add_file(b2, "lockbox.db", 0644, copy,
		    e->len, &err), 0);
		assert_int_equal(backup_restore(b2, dst, "lockbox.db", NULL,
		    &err), 0);
		dbp = tu_path(dst, "lockbox.db");
		assert_int_equal(tu_mode(dbp), 0600);
		free(dbp);
		backup_free(b2);
		free(dst);
	}
	/* an absent database is named */
	lb_err_clear(&err);
	assert_int_equal(backup_add_db(b, "x.db", "/nonexistent/x.db", &err),
	    -1);
	assert_int_not_equal(err.code, LB_OK);
	backup_free(b);
	free(path);
	free(src);
	tu_rmtree(tmp);
	free(tmp);
}

/* A backup of a database (from src) and a few files, written to out. */
static backup *
backup_of(const char *src, const char *db_entry)
{
	char *path = tu_path(src, "lockbox.db");
	lb_err err = { 0 };
	backup *b = backup_new();

	assert_non_null(b);
	assert_int_equal(backup_add_file(b, "lockbox.conf", 0644,
	    (unsigned char *)strdup("[ca]\n"), 5, &err), 0);
	assert_int_equal(backup_add_file(b, "ca.key", 0600,
	    (unsigned char *)strdup("KEY"), 3, &err), 0);
	assert_int_equal(backup_add_dir(b, "pub", 0755, &err), 0);
	assert_int_equal(backup_add_file(b, "pub/ca.crt", 0666,
	    (unsigned char *)strdup("CRT"), 3, &err), 0);
	assert_int_equal(backup_add_db(b, db_entry, path, &err), 0);
	free(path);
	return b;
}

static void
test_restore(void **state)
{
	char *tmp = tu_mkdtemp("backup"), *src, *dst, *p, *file, *content;
	lb_err err = { 0 };
	backup_report rep = { 0 };
	backup *b, *rb;
	size_t len;

	(void)state;
	assert_non_null(tmp);
	src = tu_path(tmp, "src");
	dst = tu_path(tmp, "dst");
	file = tu_path(tmp, "b.lbk");
	assert_int_equal(mkdir(src, 0700), 0);
	make_db(src, 2);
	b = backup_of(src, "lockbox.db");
	assert_int_equal(backup_write(b, file, &err), 0);
	assert_int_equal(tu_mode(file), 0600);
	/* never over an existing file */
	assert_int_equal(backup_write(b, file, &err), -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	backup_free(b);

	assert_non_null(rb = backup_read_file(file, &err));
	assert_int_equal(backup_restore(rb, dst, "lockbox.db", &rep, &err), 0);
	assert_int_equal(rep.files, 4);
	assert_int_equal(rep.dirs, 1);
	assert_int_equal(rep.audit_rows, 2);
	assert_int_equal(tu_mode(dst), 0700);
	p = tu_path(dst, "ca.key");
	assert_int_equal(tu_mode(p), 0600);
	content = tu_slurp(p, &len);
	assert_non_null(content);
	assert_string_equal(content, "KEY");
	free(content);
	free(p);
	p = tu_path(dst, "pub");
	assert_int_equal(tu_mode(p), 0755);
	free(p);
	p = tu_path(dst, "pub/ca.crt");
	assert_int_equal(tu_mode(p), 0644);   /* group/other write dropped */
	free(p);
	p = tu_path(dst, "lockbox.db");
	assert_int_equal(tu_mode(p), 0600);
	free(p);

	/* a non-empty directory is refused and left as it was */
	lb_err_clear(&err);
	assert_int_equal(backup_restore(rb, dst, "lockbox.db", NULL, &err),
	    -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	assert_non_null(strstr(err.msg, "not empty"));
	p = tu_path(dst, "ca.key");
	assert_int_equal(access(p, F_OK), 0);
	free(p);
	/* a file in the way is refused */
	lb_err_clear(&err);
	assert_int_equal(backup_restore(rb, file, "lockbox.db", NULL, &err),
	    -1);
	assert_int_equal(err.code, LB_ECONFLICT);
	/* an empty existing directory is fine, and stays on failure */
	tu_rmtree(dst);
	assert_int_equal(mkdir(dst, 0700), 0);
	assert_int_equal(backup_restore(rb, dst, "lockbox.db", NULL, &err), 0);
	tu_rmtree(dst);
	/* a backup without the database entry writes nothing */
	lb_err_clear(&err);
	assert_int_equal(backup_restore(rb, dst, "other.db", NULL, &err), -1);
	assert_non_null(strstr(err.msg, "holds no other.db"));
	assert_int_equal(access(dst, F_OK), -1);
	backup_free(rb);
	free(file);
	free(dst);
	free(src);
	tu_rmtree(tmp);
	free(tmp);
}

/* The restore removes everything when the database is bad. */
static void
test_restore_undo(void **state)
{
	char *tmp = tu_mkdtemp("backup"), *src, *dst, *path, *pre;
	lb_err err = { 0 };
	sqlite3 *db;
	backup *b;

	(void)state;
	assert_non_null(tmp);
	src = tu_path(tmp, "src");
	dst = tu_path(tmp, "dst");
	assert_int_equal(mkdir(src, 0700), 0);
	make_db(src, 3);

	/* not a database at all */
	assert_non_null(b = backup_new());
	assert_int_equal(backup_add_file(b, "lockbox.conf", 0600,
	    (unsigned char *)strdup("x"), 1, &err), 0);
	assert_int_equal(backup_add_file(b, "lockbox.db", 0600,
	    (unsigned char *)strdup("not a database, just text padding it "
	    "out"), 40, &err), 0);
	assert_int_equal(backup_restore(b, dst, "lockbox.db", NULL, &err),
	    -1);
	assert_int_not_equal(err.code, LB_OK);
	assert_int_equal(access(dst, F_OK), -1);
	backup_free(b);

	/* a database journal in the backup is refused before writing */
	b = backup_of(src, "lockbox.db");
	assert_int_equal(backup_add_file(b, "lockbox.db-wal", 0600,
	    (unsigned char *)strdup("WAL"), 3, &err), 0);
	lb_err_clear(&err);
	assert_int_equal(backup_restore(b, dst, "lockbox.db", NULL, &err),
	    -1);
	assert_non_null(strstr(err.msg, "holds lockbox.db-wal"));
	assert_int_equal(access(dst, F_OK), -1);
	backup_free(b);

	/* a broken audit chain: row 2's detail altered */
	path = tu_path(src, "lockbox.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE audit SET detail = 'forged' "
	    "WHERE id = 2", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	b = backup_of(src, "lockbox.db");
	lb_err_clear(&err);
	assert_int_equal(backup_restore(b, dst, "lockbox.db", NULL, &err),
	    -1);
	assert_non_null(strstr(err.msg, "audit chain broken at row 2"));
	assert_int_equal(access(dst, F_OK), -1);
	/* into an existing empty directory: emptied again, kept */
	assert_int_equal(mkdir(dst, 0700), 0);
	assert_int_equal(backup_restore(b, dst, "lockbox.db", NULL, &err),
	    -1);
	pre = tu_path(dst, "pub");
	assert_int_equal(access(pre, F_OK), -1);
	free(pre);
	assert_int_equal(rmdir(dst), 0);   /* fails unless empty */
	backup_free(b);
	free(path);
	free(dst);
	free(src);
	tu_rmtree(tmp);
	free(tmp);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_bad_magic),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupted_every_byte),
		cmocka_unit_test(test_corrupted_fields),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_file_too_big),
		cmocka_unit_test(test_path_traversal),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_db_online_copy),
		cmocka_unit_test(test_restore),
		cmocka_unit_test(test_restore_undo),
	};

	log_init("test_backup", false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
