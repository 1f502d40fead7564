/*
 * backup.c - the backup container: building it (with a consistent copy of
 * the live SQLite database), encoding, the strict reader, and the restore.
 *
 * Format (all integers big-endian, no padding):
 *
 *   magic     17 bytes  "LOCKBOX-BACKUP 1\n"
 *   entries   0..1024, each:
 *     type     1 byte   'D' directory or 'F' regular file
 *     namelen  u16      1..255
 *     name     namelen bytes: a relative path of printable ASCII,
 *                       '/'-separated, no empty, "." or ".." component;
 *                       its parent directory declared by an earlier 'D'
 *     mode     u32      permission bits (at most 0777)
 *     'F' only:
 *     length   u64      at most 3 GiB
 *     sha256   32 bytes SHA-256 of the data
 *     data     length bytes
 *   trailer:
 *     type     1 byte   'E'
 *     count    u32      the number of entries
 *     sha256   32 bytes SHA-256 of every byte before this field (the
 *                       magic through count)
 *
 * The trailer ends the file; the whole file is at most 4 GiB.  Names are
 * unique.  The file holds the encrypted CA key and its passphrase, so it is
 * written 0600 and must be kept like the CA itself.
 *
 * The reader verifies all of it before returning anything, so a restore
 * writes nothing from a truncated, altered or hostile file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/backup.h"

#define SHA_LEN 32

struct ent {
	backup_entry pub;
	char *name;              /* owned */
	unsigned char *own;      /* owned data (NULL when borrowed) */
};

struct backup {
	struct ent *e;
	size_t n, cap;
	void *map;               /* backup_read_file's mapping */
	size_t map_len;
};

backup *
backup_new(void)
{
	return calloc(1, sizeof(struct backup));
}

void
backup_free(backup *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++) {
		free(b->e[i].name);
		OPENSSL_clear_free(b->e[i].own, b->e[i].pub.len);
	}
	free(b->e);
	if (b->map != NULL)
		munmap(b->map, b->map_len);
	free(b);
}

size_t
backup_count(const backup *b)
{
	return b->n;
}

const backup_entry *
backup_get0(const backup *b, size_t i)
{
	return i < b->n ? &b->e[i].pub : NULL;
}

const backup_entry *
backup_find(const backup *b, const char *name)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (strcmp(b->e[i].name, name) == 0)
			return &b->e[i].pub;
	return NULL;
}

bool
backup_name_valid(const char *name, size_t len)
{
	size_t i, start = 0;

	if (len == 0 || len > BACKUP_NAME_MAX)
		return false;
	for (i = 0; i <= len; i++) {
		if (i < len && name[i] != '/') {
			if (name[i] < 0x20 || name[i] > 0x7e)
				return false;
			continue;
		}
		/* a component is name[start..i) */
		if (i == start)
			return false;
		if (i - start == 1 && name[start] == '.')
			return false;
		if (i - start == 2 && name[start] == '.' &&
		    name[start + 1] == '.')
			return false;
		start = i + 1;
	}
	return true;
}

/* The parent of name ("" for a top-level name) is a declared directory. */
static bool
parent_declared(const backup *b, const char *name)
{
	const char *slash = strrchr(name, '/');
	size_t plen, i;

	if (slash == NULL)
		return true;
	plen = (size_t)(slash - name);
	for (i = 0; i < b->n; i++)
		if (b->e[i].pub.is_dir && strlen(b->e[i].name) == plen &&
		    memcmp(b->e[i].name, name, plen) == 0)
			return true;
	return false;
}

/*
 * Appends an entry after the checks the reader makes too.  name is copied;
 * own (may be NULL) becomes the backup's, also on failure.
 */
static int
add(backup *b, const char *name, size_t nlen, bool is_dir, mode_t mode,
    const unsigned char *data, unsigned char *own, size_t len, lb_err *err)
{
	struct ent *e;
	char shown[BACKUP_NAME_MAX + 1];

	if (!backup_name_valid(name, nlen)) {
		OPENSSL_clear_free(own, len);
		return lb_err_set(err, LB_EINVAL, "backup: invalid entry name "
		    "(absolute, '..', empty component, control byte or over "
		    "%d bytes)", BACKUP_NAME_MAX);
	}
	memcpy(shown, name, nlen);
	shown[nlen] = '\0';
	if ((mode & ~(mode_t)0777) != 0) {
		OPENSSL_clear_free(own, len);
		return lb_err_set(err, LB_EINVAL, "backup: %s: invalid mode %o",
		    shown, (unsigned)mode);
	}
	if ((uint64_t)len > BACKUP_FILE_MAX) {
		OPENSSL_clear_free(own, len);
		return lb_err_set(err, LB_ETOOBIG, "backup: %s: larger than "
		    "%llu bytes", shown, (unsigned long long)BACKUP_FILE_MAX);
	}
	if (b->n >= BACKUP_ENTRIES_MAX) {
		OPENSSL_clear_free(own, len);
		return lb_err_set(err, LB_ETOOBIG, "backup: more than %d "
		    "entries", BACKUP_ENTRIES_MAX);
	}
	if (backup_find(b, shown) != NULL) {
		OPENSSL_clear_free(own, len);
		return lb_err_set(err, LB_EINVAL, "backup: %s: duplicate entry",
		    shown);
	}
	if (!parent_declared(b, shown)) {
		OPENSSL_clear_free(own, len);
		return lb_err_set(err, LB_EINVAL, "backup: %s: its directory "
		    "is not declared before it", shown);
	}
	if (b->n == b->cap) {
		size_t ncap = b->cap == 0 ? 16 : b->cap * 2;

		if ((e = reallocarray(b->e, ncap, sizeof(*e))) == NULL) {
			OPENSSL_clear_free(own, len);
			return lb_err_set(err, LB_EINTERNAL, "out of memory");
		}
		b->e = e;
		b->cap = ncap;
	}
	e = &b->e[b->n];
	memset(e, 0, sizeof(*e));
	if ((e->name = strdup(shown)) == NULL) {
		OPENSSL_clear_free(own, len);
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	}
	e->own = own;
	e->pub.name = e->name;
	e->pub.is_dir = is_dir;
	e->pub.mode = mode;
	e->pub.data = own != NULL ? own : data;
	e->pub.len = len;
	b->n++;
	return 0;
}

int
backup_add_dir(backup *b, const char *name, mode_t mode, lb_err *err)
{
	return add(b, name, strlen(name), true, mode, NULL, NULL, 0, err);
}

int
backup_add_file(backup *b, const char *name, mode_t mode, unsigned char *data,
    size_t len, lb_err *err)
{
	return add(b, name, strlen(name), false, mode, NULL, data, len, err);
}

/* ------------------------------------------------------------------ */
/* The database: online backup into memory                             */

static int
db_fail(sqlite3 *db, const char *what, const char *path, lb_err *err)
{
	log_warnx("%s: %s: %s", what, path, sqlite3_errmsg(db));
	return lb_err_set(err, LB_EINTERNAL, "%s: %s: %s", path, what,
	    sqlite3_errmsg(db));
}

/* Runs PRAGMA integrity_check on db; 0 when it answers exactly "ok". */
static int
integrity_ok(sqlite3 *db, const char *path, lb_err *err)
{
	sqlite3_stmt *st = NULL;
	int rc = -1, s;

	if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) !=
	    SQLITE_OK) {
		db_fail(db, "PRAGMA integrity_check", path, err);
		goto out;
	}
	s = sqlite3_step(st);
	if (s != SQLITE_ROW) {
		db_fail(db, "PRAGMA integrity_check", path, err);
		goto out;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		lb_err_set(err, LB_EINVAL, "%s: integrity_check failed: %s",
		    path, (const char *)sqlite3_column_text(st, 0));
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

int
backup_add_db(backup *b, const char *name, const char *db_path, lb_err *err)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *bk = NULL;
	sqlite3_stmt *st = NULL;
	unsigned char *img = NULL, *copy = NULL;
	sqlite3_int64 size = 0;
	char sql[64];
	int rc = -1, s, tries = 0, page_size = 4096;

	if (sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		lb_err_set(err, LB_ENOTFOUND, "%s: %s", db_path,
		    src != NULL ? sqlite3_errmsg(src) : "cannot open");
		goto out;
	}
	sqlite3_busy_timeout(src, 10000);
	if (sqlite3_prepare_v2(src, "PRAGMA page_size", -1, &st, NULL) !=
	    SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		db_fail(src, "PRAGMA page_size", db_path, err);
		goto out;
	}
	page_size = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	/* an in-memory destination must have the source's page size */
	if (sqlite3_open_v2(":memory:", &dst, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		lb_err_set(err, LB_EINTERNAL, "cannot open a memory database");
		goto out;
	}
	snprintf(sql, sizeof(sql), "PRAGMA page_size = %d", page_size);
	if (sqlite3_exec(dst, sql, NULL, NULL, NULL) != SQLITE_OK) {
		db_fail(dst, "PRAGMA page_size", ":memory:", err);
		goto out;
	}
	if ((bk = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
		db_fail(dst, "sqlite3_backup_init", db_path, err);
		goto out;
	}
	/* all pages in one step: one read transaction, a consistent copy */
	for (;;) {
		s = sqlite3_backup_step(bk, -1);
		if (s == SQLITE_DONE)
			break;
		if ((s == SQLITE_BUSY || s == SQLITE_LOCKED) && tries++ < 300) {
			sqlite3_sleep(100);
			continue;
		}
		lb_err_set(err, LB_EINTERNAL, "%s: sqlite3_backup_step: %s",
		    db_path, sqlite3_errstr(s));
		goto out;
	}
	s = sqlite3_backup_finish(bk);
	bk = NULL;
	if (s != SQLITE_OK) {
		db_fail(dst, "sqlite3_backup_finish", db_path, err);
		goto out;
	}
	if (integrity_ok(dst, db_path, err) == -1)
		goto out;
	if ((img = sqlite3_serialize(dst, "main", &size, 0)) == NULL ||
	    size <= 0) {
		lb_err_set(err, LB_EINTERNAL, "%s: sqlite3_serialize failed",
		    db_path);
		goto out;
	}
	if ((uint64_t)size > BACKUP_FILE_MAX) {
		lb_err_set(err, LB_ETOOBIG, "%s: larger than %llu bytes",
		    db_path, (unsigned long long)BACKUP_FILE_MAX);
		goto out;
	}
	if ((copy = malloc((size_t)size)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	memcpy(copy, img, (size_t)size);
	rc = add(b, name, strlen(name), false, 0600, NULL, copy, (size_t)size,
	    err);
	copy = NULL;
out:
	if (img != NULL) {
		OPENSSL_cleanse(img, (size_t)size);
		sqlite3_free(img);
	}
	if (bk != NULL)
		sqlite3_backup_finish(bk);
	sqlite3_finalize(st);
	sqlite3_close(dst);
	sqlite3_close(src);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */

static unsigned char *
put_be(unsigned char *p, uint64_t v, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	return p + n;
}

static uint64_t
get_be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static int
sha256(const unsigned char *buf, size_t len, unsigned char out[SHA_LEN],
    lb_err *err)
{
	unsigned int olen = 0;

	if (EVP_Digest(buf, len, out, &olen, EVP_sha256(), NULL) != 1 ||
	    olen != SHA_LEN) {
		log_openssl("EVP_Digest");
		return lb_err_set(err, LB_EINTERNAL, "SHA-256 failed");
	}
	return 0;
}

int
backup_encode(const backup *b, unsigned char **out, size_t *len, lb_err *err)
{
	uint64_t total = BACKUP_MAGIC_LEN + 1 + 4 + SHA_LEN;
	unsigned char *buf = NULL, *p;
	size_t i, nlen;
	int rc = -1;

	*out = NULL;
	*len = 0;
	for (i = 0; i < b->n; i++) {
		total += 1 + 2 + strlen(b->e[i].name) + 4;
		if (!b->e[i].pub.is_dir)
			total += 8 + SHA_LEN + b->e[i].pub.len;
		if (total > BACKUP_TOTAL_MAX) {
			lb_err_set(err, LB_ETOOBIG, "backup: larger than %llu "
			    "bytes", (unsigned long long)BACKUP_TOTAL_MAX);
			goto out;
		}
	}
	if ((buf = malloc((size_t)total)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	p = buf;
	memcpy(p, BACKUP_MAGIC, BACKUP_MAGIC_LEN);
	p += BACKUP_MAGIC_LEN;
	for (i = 0; i < b->n; i++) {
		const backup_entry *e = &b->e[i].pub;

		nlen = strlen(e->name);
		*p++ = e->is_dir ? 'D' : 'F';
		p = put_be(p, nlen, 2);
		memcpy(p, e->name, nlen);
		p += nlen;
		p = put_be(p, (uint64_t)e->mode, 4);
		if (e->is_dir)
			continue;
		p = put_be(p, e->len, 8);
		if (sha256(e->data, e->len, p, err) == -1)
			goto out;
		p += SHA_LEN;
		if (e->len > 0)
			memcpy(p, e->data, e->len);
		p += e->len;
	}
	*p++ = 'E';
	p = put_be(p, b->n, 4);
	if (sha256(buf, (size_t)(p - buf), p, err) == -1)
		goto out;
	*out = buf;
	*len = (size_t)total;
	buf = NULL;
	rc = 0;
out:
	OPENSSL_clear_free(buf, (size_t)total);
	return rc;
}

int
backup_write(const backup *b, const char *path, lb_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc;

	if (backup_encode(b, &buf, &len, err) == -1)
		return -1;
	rc = core_file_write(path, buf, len, 0600, true, err);
	OPENSSL_clear_free(buf, len);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Decoding                                                            */

/* A cursor over the container; fails closed when a field runs past it. */
struct rd {
	const unsigned char *p;
	size_t left;
};

static const unsigned char *
take(struct rd *r, size_t n)
{
	const unsigned char *p = r->p;

	if (n > r->left)
		return NULL;
	r->p += n;
	r->left -= n;
	return p;
}

backup *
backup_decode(const unsigned char *buf, size_t len, lb_err *err)
{
	struct rd r = { buf, len };
	backup *b = NULL;
	const unsigned char *p, *name, *sum, *data;
	unsigned char want[SHA_LEN];
	uint64_t v, count;
	size_t nlen, i = 0;
	mode_t mode;
	int type;

	if ((uint64_t)len > BACKUP_TOTAL_MAX) {
		lb_err_set(err, LB_ETOOBIG, "backup: larger than %llu bytes",
		    (unsigned long long)BACKUP_TOTAL_MAX);
		goto fail;
	}
	if ((p = take(&r, BACKUP_MAGIC_LEN)) == NULL ||
	    memcmp(p, BACKUP_MAGIC, BACKUP_MAGIC_LEN) != 0) {
		lb_err_set(err, LB_EINVAL, "not a lockbox backup (bad magic)");
		goto fail;
	}
	if ((b = backup_new()) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto fail;
	}
	for (;; i++) {
		if ((p = take(&r, 1)) == NULL) {
			lb_err_set(err, LB_EINVAL, "backup: truncated at entry "
			    "%zu (no trailer)", i + 1);
			goto fail;
		}
		type = *p;
		if (type == 'E')
			break;
		if (type != 'D' && type != 'F') {
			lb_err_set(err, LB_EINVAL, "backup: entry %zu: unknown "
			    "type 0x%02x", i + 1, (unsigned)type);
			goto fail;
		}
		if ((p = take(&r, 2)) == NULL ||
		    (nlen = (size_t)get_be(p, 2), (name = take(&r, nlen)) ==
		    NULL) || (p = take(&r, 4)) == NULL) {
			lb_err_set(err, LB_EINVAL, "backup: truncated in entry "
			    "%zu", i + 1);
			goto fail;
		}
		if (!backup_name_valid((const char *)name, nlen)) {
			lb_err_set(err, LB_EINVAL, "backup: entry %zu: invalid "
			    "entry name (absolute, '..', empty component, "
			    "control byte or over %d bytes)", i + 1,
			    BACKUP_NAME_MAX);
			goto fail;
		}
		v = get_be(p, 4);
		if (v > 0777) {
			lb_err_set(err, LB_EINVAL, "backup: entry %zu: invalid "
			    "mode %llo", i + 1, (unsigned long long)v);
			goto fail;
		}
		mode = (mode_t)v;
		if (type == 'D') {
			if (add(b, (const char *)name, nlen, true, mode, NULL,
			    NULL, 0, err) == -1)
				goto fail;
			continue;
		}
		if ((p = take(&r, 8)) == NULL) {
			lb_err_set(err, LB_EINVAL, "backup: truncated in entry "
			    "%zu", i + 1);
			goto fail;
		}
		v = get_be(p, 8);
		if (v > BACKUP_FILE_MAX) {
			lb_err_set(err, LB_ETOOBIG, "backup: entry %zu: %llu "
			    "bytes, more than %llu", i + 1,
			    (unsigned long long)v,
			    (unsigned long long)BACKUP_FILE_MAX);
			goto fail;
		}
		if ((sum = take(&r, SHA_LEN)) == NULL ||
		    (data = take(&r, (size_t)v)) == NULL) {
			lb_err_set(err, LB_EINVAL, "backup: truncated in entry "
			    "%zu", i + 1);
			goto fail;
		}
		if (sha256(data, (size_t)v, want, err) == -1)
			goto fail;
		if (CRYPTO_memcmp(want, sum, SHA_LEN) != 0) {
			/* the name is valid, printable ASCII by now */
			lb_err_set(err, LB_EINVAL, "backup: %.*s: SHA-256 "
			    "mismatch (corrupted)", (int)nlen,
			    (const char *)name);
			goto fail;
		}
		if (add(b, (const char *)name, nlen, false, mode, data, NULL,
		    (size_t)v, err) == -1)
			goto fail;
	}
	if ((p = take(&r, 4)) == NULL) {
		lb_err_set(err, LB_EINVAL, "backup: truncated trailer");
		goto fail;
	}
	count = get_be(p, 4);
	if (count != b->n) {
		lb_err_set(err, LB_EINVAL, "backup: trailer counts %llu "
		    "entries, the file has %zu", (unsigned long long)count,
		    b->n);
		goto fail;
	}
	if (sha256(buf, len - r.left, want, err) == -1)
		goto fail;
	if ((sum = take(&r, SHA_LEN)) == NULL) {
		lb_err_set(err, LB_EINVAL, "backup: truncated trailer");
		goto fail;
	}
	if (CRYPTO_memcmp(want, sum, SHA_LEN) != 0) {
		lb_err_set(err, LB_EINVAL, "backup: trailer SHA-256 mismatch "
		    "(corrupted)");
		goto fail;
	}
	if (r.left != 0) {
		lb_err_set(err, LB_EINVAL, "backup: %zu stray bytes after the "
		    "trailer", r.left);
		goto fail;
	}
	return b;
fail:
	backup_free(b);
	return NULL;
}

backup *
backup_read_file(const char *path, lb_err *err)
{
	struct stat st;
	lb_err derr = { 0 };
	backup *b = NULL;
	void *map = MAP_FAILED;
	size_t len = 0;
	int fd;

	if ((fd = core_file_open(path, &st, err)) == -1)
		return NULL;
	if (!S_ISREG(st.st_mode)) {
		lb_err_set(err, LB_EINVAL, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)st.st_size > BACKUP_TOTAL_MAX) {
		lb_err_set(err, LB_ETOOBIG, "%s: larger than %llu bytes", path,
		    (unsigned long long)BACKUP_TOTAL_MAX);
		goto out;
	}
	len = (size_t)st.st_size;
	if (len < BACKUP_MAGIC_LEN) {
		lb_err_set(err, LB_EINVAL, "%s: not a lockbox backup (too "
		    "short)", path);
		goto out;
	}
	if ((map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0)) ==
	    MAP_FAILED) {
		lb_err_set(err, LB_EINTERNAL, "%s: mmap: %s", path,
		    strerror(errno));
		goto out;
	}
	if ((b = backup_decode(map, len, &derr)) == NULL) {
		/* name the file: the reader's message does not */
		lb_err_set(err, derr.code, "%s: %s", path, derr.msg);
		goto out;
	}
	b->map = map;
	b->map_len = len;
	map = MAP_FAILED;
out:
	if (map != MAP_FAILED)
		munmap(map, len);
	close(fd);
	return b;
}

/* ------------------------------------------------------------------ */
/* Restore                                                             */

/* What a restore created, removed in reverse order on failure. */
struct undo {
	char **paths;
	size_t n;
};

static int
undo_push(struct undo *u, char *path, lb_err *err)
{
	char **np;

	if ((np = reallocarray(u->paths, u->n + 1, sizeof(*np))) == NULL) {
		free(path);
		return lb_err_set(err, LB_EINTERNAL, "out of memory");
	}
	u->paths = np;
	u->paths[u->n++] = path;
	return 0;
}

static void
undo_run(struct undo *u, bool remove)
{
	size_t i;

	for (i = u->n; i-- > 0;) {
		/* directories come before their files: reverse order */
		if (remove && unlink(u->paths[i]) == -1 && errno != ENOENT)
			rmdir(u->paths[i]);
		free(u->paths[i]);
	}
	free(u->paths);
	u->paths = NULL;
	u->n = 0;
}

/* dir is absent (created, *made) or an empty directory; else LB_ECONFLICT. */
static int
prepare_dir(const char *dir, bool *made, lb_err *err)
{
	DIR *d;
	struct dirent *de;
	bool empty = true;

	*made = false;
	if (mkdir(dir, 0700) == 0) {
		*made = true;
		return 0;
	}
	if (errno != EEXIST)
		return lb_err_set(err, LB_EINVAL, "%s: %s", dir,
		    strerror(errno));
	if ((d = opendir(dir)) == NULL)
		return lb_err_set(err, LB_ECONFLICT, "%s: exists and is not a "
		    "directory: restore into a new directory", dir);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			empty = false;
	closedir(d);
	if (!empty)
		return lb_err_set(err, LB_ECONFLICT, "%s: exists and is not "
		    "empty: restore into a new or empty directory", dir);
	return 0;
}

static int
write_entry(const char *path, const backup_entry *e, mode_t mode, lb_err *err)
{
	int fd, rc = -1;

	if (e->is_dir) {
		if (mkdir(path, 0700) == -1 || chmod(path, mode) == -1)
			return lb_err_set(err, LB_EINTERNAL, "%s: %s", path,
			    strerror(errno));
		return 0;
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1)
		return lb_err_set(err, LB_EINTERNAL, "%s: %s", path,
		    strerror(errno));
	if (core_fd_write_all(fd, e->data, e->len, path, err) == -1)
		goto out;
	if (fchmod(fd, mode) == -1 || fsync(fd) == -1) {
		lb_err_set(err, LB_EINTERNAL, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (close(fd) == -1 && rc == 0)
		rc = lb_err_set(err, LB_EINTERNAL, "%s: %s", path,
		    strerror(errno));
	return rc;
}

/* PRAGMA integrity_check and the audit chain of the restored database. */
static int
check_db(const char *path, int64_t *rows, lb_err *err)
{
	sqlite3 *db = NULL;
	int64_t bad = 0;
	char why[256] = "";
	int rc = -1, v;

	if ((db = core_db_open(path, false, err)) == NULL)
		goto out;
	if (integrity_ok(db, path, err) == -1)
		goto out;
	v = core_audit_verify(db, rows, &bad, why, sizeof(why), err);
	if (v == -1)
		goto out;
	if (v != 0) {
		lb_err_set(err, LB_EINVAL, "%s: audit chain broken at row "
		    "%lld: %s", path, (long long)bad, why);
		goto out;
	}
	rc = 0;
out:
	core_db_close(db);
	return rc;
}

int
backup_restore(const backup *b, const char *dir, const char *db_name,
    backup_report *rep, lb_err *err)
{
	static const char *const side[] = { "-wal", "-shm", "-journal" };
	struct undo u = { NULL, 0 };
	backup_report r = { 0 };
	const backup_entry *dbe;
	char *path = NULL, *db_path = NULL, *p;
	bool made = false;
	size_t i;
	int rc = -1;

	if ((dbe = backup_find(b, db_name)) == NULL || dbe->is_dir) {
		lb_err_set(err, LB_EINVAL, "the backup holds no %s: not a "
		    "backup of a lockbox state directory", db_name);
		goto out;
	}
	/* SQLite would read these with the database: only its image is
	 * restored */
	for (i = 0; i < sizeof(side) / sizeof(side[0]); i++) {
		char side_name[BACKUP_NAME_MAX + 16];

		snprintf(side_name, sizeof(side_name), "%s%s", db_name,
		    side[i]);
		if (backup_find(b, side_name) != NULL) {
			lb_err_set(err, LB_EINVAL, "the backup holds %s: "
			    "refusing a database journal from a backup",
			    side_name);
			goto out;
		}
	}
	if (prepare_dir(dir, &made, err) == -1)
		goto out;
	for (i = 0; i < b->n; i++) {
		const backup_entry *e = &b->e[i].pub;

		if ((path = core_path(dir, e->name)) == NULL) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		/* the database holds escrow records: owner only, whatever
		 * the file says */
		if (write_entry(path, e, e == dbe ? 0600 :
		    e->mode & ~(mode_t)022, err) == -1) {
			free(path);
			path = NULL;
			goto out;
		}
		if (undo_push(&u, path, err) == -1) {
			path = NULL;
			goto out;
		}
		path = NULL;
		if (e->is_dir) {
			r.dirs++;
		} else {
			r.files++;
			r.bytes += e->len;
		}
	}
	if ((db_path = core_path(dir, db_name)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	/* opening the database may create these: owned by the restore */
	for (i = 0; i < sizeof(side) / sizeof(side[0]); i++) {
		if (asprintf(&p, "%s%s", db_path, side[i]) == -1) {
			lb_err_set(err, LB_EINTERNAL, "out of memory");
			goto out;
		}
		if (undo_push(&u, p, err) == -1)
			goto out;
	}
	if (check_db(db_path, &r.audit_rows, err) == -1)
		goto out;
	if (rep != NULL)
		*rep = r;
	rc = 0;
out:
	if (rc == -1) {
		undo_run(&u, true);
		if (made)
			rmdir(dir);
	} else {
		undo_run(&u, false);
	}
	free(db_path);
	return rc;
}
