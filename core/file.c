/*
 * file.c - whole-file reads with a size cap, atomic writes (temporary file,
 * fsync, rename) with an explicit mode, and one-line secret files.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/core.h"

char *
core_path(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) == -1)
		return NULL;
	return p;
}

int
core_file_open(const char *path, struct stat *st, lb_err *err)
{
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		lb_err_set(err, errno == ENOENT ? LB_ENOTFOUND : LB_EINVAL,
		    "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) == -1) {
		lb_err_set(err, LB_EINTERNAL, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (S_ISDIR(st->st_mode)) {
		lb_err_set(err, LB_EINVAL, "%s: is a directory", path);
		close(fd);
		return -1;
	}
	return fd;
}

int
core_file_read(const char *path, size_t max, unsigned char **out, size_t *len,
    lb_err *err)
{
	int fd = -1, rc = -1;
	struct stat st;
	unsigned char *buf = NULL;
	size_t cap, n = 0;
	ssize_t r;

	*out = NULL;
	*len = 0;
	if ((fd = core_file_open(path, &st, err)) == -1)
		goto out;
	if (S_ISREG(st.st_mode) && (size_t)st.st_size > max) {
		lb_err_set(err, LB_ETOOBIG, "%s: larger than %zu bytes", path,
		    max);
		goto out;
	}
	/* pipes and terminals have no size: read up to the cap */
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
	if ((buf = malloc(cap + 1)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	for (;;) {
		if (n == cap) {
			unsigned char *nb;

			if (cap > max) {
				lb_err_set(err, LB_ETOOBIG,
				    "%s: larger than %zu bytes", path, max);
				goto out;
			}
			cap *= 2;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				lb_err_set(err, LB_EINTERNAL, "out of memory");
				goto out;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			lb_err_set(err, LB_EINTERNAL, "%s: %s", path,
			    strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		lb_err_set(err, LB_ETOOBIG, "%s: larger than %zu bytes", path,
		    max);
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (fd != -1)
		close(fd);
	return rc;
}

int
core_fd_write_all(int fd, const void *buf, size_t len, const char *path,
    lb_err *err)
{
	const unsigned char *p = buf;
	size_t off = 0;
	ssize_t w;

	while (off < len) {
		w = write(fd, p + off, len - off);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return lb_err_set(err, LB_EINTERNAL, "%s: %s", path,
			    strerror(errno));
		off += (size_t)w;
	}
	return 0;
}

int
core_file_write(const char *path, const void *buf, size_t len, mode_t mode,
    bool excl, lb_err *err)
{
	char tmp[PATH_MAX] = ""; /* non-empty only while we own a temp file */
	int fd = -1, rc = -1;

	if (excl && access(path, F_OK) == 0) {
		lb_err_set(err, LB_ECONFLICT, "%s: already exists", path);
		goto out;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >=
	    sizeof(tmp)) {
		tmp[0] = '\0';
		lb_err_set(err, LB_EINVAL, "%s: path too long", path);
		goto out;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		/* the name is not ours: never unlink it */
		tmp[0] = '\0';
		lb_err_set(err, LB_EINTERNAL, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fchmod(fd, mode) == -1) {
		lb_err_set(err, LB_EINTERNAL, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (core_fd_write_all(fd, buf, len, path, err) == -1)
		goto out;
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		lb_err_set(err, LB_EINTERNAL, "%s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	if (excl) {
		/* link() fails when path appeared meanwhile: never overwrite */
		if (link(tmp, path) == -1) {
			lb_err_set(err, errno == EEXIST ? LB_ECONFLICT :
			    LB_EINTERNAL, "%s: %s", path, strerror(errno));
			goto out;
		}
		unlink(tmp);
	} else if (rename(tmp, path) == -1) {
		lb_err_set(err, LB_EINTERNAL, "%s: %s", path, strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	if (tmp[0] != '\0')
		unlink(tmp);
	return rc;
}

char *
core_secret_read(const char *path, lb_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;

	if (core_file_read(path, 4096, &buf, &len, err) == -1)
		return NULL;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (len == 0 || memchr(buf, '\0', len) != NULL) {
		OPENSSL_clear_free(buf, len + 1);
		lb_err_set(err, LB_EINVAL, "%s: empty or not a text secret",
		    path);
		return NULL;
	}
	return (char *)buf;
}

void
core_secret_free(char *s)
{
	if (s != NULL)
		OPENSSL_clear_free(s, strlen(s));
}

int
core_file_shred(const char *path, lb_err *err)
{
	static const char zeros[4096];
	struct stat sb;
	off_t left;
	ssize_t n;
	int fd, rc = -1;

	if ((fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		return lb_err_set(err, LB_EINTERNAL, "%s: %s", path,
		    strerror(errno));
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		lb_err_set(err, LB_EINVAL, "%s: not a regular file", path);
		goto out;
	}
	for (left = sb.st_size; left > 0; left -= n) {
		n = write(fd, zeros, left < (off_t)sizeof(zeros) ?
		    (size_t)left : sizeof(zeros));
		if (n <= 0) {
			lb_err_set(err, LB_EINTERNAL, "%s: %s", path,
			    strerror(errno));
			goto out;
		}
	}
	if (fsync(fd) == -1 || unlink(path) == -1) {
		lb_err_set(err, LB_EINTERNAL, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}
