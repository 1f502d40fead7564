/*
 * conf.c - lockbox.conf, read with OpenSSL's own NCONF parser (no parser of
 * our own), and typed getters that validate every value they hand out.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/err.h>

#include "core/core.h"

#define CONF_MAX_SIZE ((size_t)1024 * 1024)

struct core_conf {
	CONF *nconf;
};

static core_conf *
conf_from_bio(BIO *bio, const char *what, lb_err *err)
{
	core_conf *c = NULL;
	long eline = -1;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	if ((c->nconf = NCONF_new(NULL)) == NULL) {
		log_openssl("NCONF_new");
		lb_err_set(err, LB_EINTERNAL, "cannot create a config parser");
		goto fail;
	}
	if (NCONF_load_bio(c->nconf, bio, &eline) <= 0) {
		log_openssl("NCONF_load_bio");
		if (eline > 0)
			lb_err_set(err, LB_EINVAL,
			    "%s: syntax error on line %ld", what, eline);
		else
			lb_err_set(err, LB_EINVAL, "%s: cannot be parsed", what);
		goto fail;
	}
	ERR_clear_error();
	goto out;
fail:
	core_conf_free(c);
	c = NULL;
out:
	return c;
}

/*
 * The first line (1-based) that holds an NCONF directive, 0 when none:
 * OpenSSL honours ".include" and ".pragma" (optionally after blanks, in
 * any case, with or without "=") and would read other files.
 */
static long
directive_line(const char *text, size_t len)
{
	size_t i = 0;
	long line = 1;

	while (i < len) {
		while (i < len && (text[i] == ' ' || text[i] == '\t'))
			i++;
		if (i < len && text[i] == '.' &&
		    (strncasecmp(text + i, ".include", len - i < 8 ? len - i :
		    8) == 0 || strncasecmp(text + i, ".pragma", len - i < 7 ?
		    len - i : 7) == 0))
			return line;
		while (i < len && text[i] != '\n')
			i++;
		i++;
		line++;
	}
	return 0;
}

static core_conf *
conf_parse(const char *text, size_t len, const char *what, lb_err *err)
{
	BIO *bio = NULL;
	core_conf *c = NULL;
	long line;

	if (len > CONF_MAX_SIZE) {
		lb_err_set(err, LB_ETOOBIG, "%s: larger than 1 MiB", what);
		goto out;
	}
	if (memchr(text, '\0', len) != NULL) {
		lb_err_set(err, LB_EINVAL, "%s: contains a NUL byte", what);
		goto out;
	}
	if ((line = directive_line(text, len)) > 0) {
		lb_err_set(err, LB_EINVAL, "%s: line %ld: .include and .pragma "
		    "are not allowed: the configuration is this one file", what,
		    line);
		goto out;
	}
	if ((bio = BIO_new_mem_buf(text, (int)len)) == NULL) {
		lb_err_set(err, LB_EINTERNAL, "out of memory");
		goto out;
	}
	c = conf_from_bio(bio, what, err);
out:
	BIO_free(bio);
	return c;
}

core_conf *
core_conf_load_mem(const char *text, size_t len, lb_err *err)
{
	return conf_parse(text, len, "configuration", err);
}

core_conf *
core_conf_load(const char *path, lb_err *err)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	core_conf *c = NULL;

	if (core_file_read(path, CONF_MAX_SIZE, &buf, &len, err) == 0)
		c = conf_parse((const char *)buf, len, path, err);
	free(buf);
	return c;
}

core_conf *
core_conf_new_empty(void)
{
	return core_conf_load_mem("", 0, NULL);
}

void
core_conf_free(core_conf *conf)
{
	if (conf == NULL)
		return;
	NCONF_free(conf->nconf);
	free(conf);
}

const char *
core_conf_get(const core_conf *conf, const char *section, const char *name,
    const char *def)
{
	const char *v;

	if (conf == NULL || conf->nconf == NULL)
		return def;
	v = NCONF_get_string(conf->nconf, section, name);
	if (v == NULL) {
		/* a missing key is not an error worth keeping */
		ERR_clear_error();
		return def;
	}
	return v;
}

int
core_parse_duration(const char *s, long *out)
{
	char *end = NULL;
	long v, mult = 1;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	switch (*end) {
	case '\0':
		break;
	case 's':
		end++;
		break;
	case 'm':
		mult = 60;
		end++;
		break;
	case 'h':
		mult = 3600;
		end++;
		break;
	case 'd':
		mult = 86400;
		end++;
		break;
	default:
		return -1;
	}
	if (*end != '\0' || v > LONG_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int
core_conf_get_long(const core_conf *conf, const char *section,
    const char *name, long def, long min, long max, long *out, lb_err *err)
{
	const char *s = core_conf_get(conf, section, name, NULL);
	long v;

	if (s == NULL) {
		*out = def;
		return 0;
	}
	if (core_parse_duration(s, &v) == -1)
		return lb_err_set(err, LB_EINVAL,
		    "lockbox.conf: [%s] %s = '%s' is not a number", section,
		    name, s);
	if (v < min || v > max)
		return lb_err_set(err, LB_EINVAL,
		    "lockbox.conf: [%s] %s = %ld is out of range [%ld, %ld]",
		    section, name, v, min, max);
	*out = v;
	return 0;
}

int
core_conf_get_size(const core_conf *conf, const char *section,
    const char *name, size_t def, size_t min, size_t max, size_t *out,
    lb_err *err)
{
	const char *s = core_conf_get(conf, section, name, NULL);
	char *end = NULL;
	unsigned long long v = 0;
	size_t mult = 1;

	if (s == NULL) {
		*out = def;
		return 0;
	}
	errno = 0;
	if (isdigit((unsigned char)s[0]))
		v = strtoull(s, &end, 10);
	if (end != NULL && (*end == 'k' || *end == 'K'))
		mult = 1024;
	else if (end != NULL && (*end == 'm' || *end == 'M'))
		mult = (size_t)1024 * 1024;
	if (end != NULL && mult != 1)
		end++;
	if (end == NULL || *end != '\0' || errno != 0)
		return lb_err_set(err, LB_EINVAL, "lockbox.conf: [%s] %s = "
		    "'%s' is not a size (bytes, or a number with k or m)",
		    section, name, s);
	if (v > max / mult || v * mult < min)
		return lb_err_set(err, LB_EINVAL, "lockbox.conf: [%s] %s = "
		    "%s is out of range [%zu, %zu] bytes", section, name, s,
		    min, max);
	*out = (size_t)(v * mult);
	return 0;
}

int
core_conf_get_bool(const core_conf *conf, const char *section,
    const char *name, bool def, bool *out, lb_err *err)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	const char *s = core_conf_get(conf, section, name, NULL);
	size_t i;

	if (s == NULL) {
		*out = def;
		return 0;
	}
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return lb_err_set(err, LB_EINVAL,
	    "lockbox.conf: [%s] %s = '%s' must be yes or no", section, name, s);
}
