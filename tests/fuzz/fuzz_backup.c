/*
 * fuzz_backup.c - libFuzzer harness for the backup container reader
 * (backup_decode, what `lockbox restore` runs on a file before it writes
 * anything).  On success the result must be sane: every name valid, every
 * file within the caps and inside the input, and encoding it again must
 * give back the input byte for byte (the format has one encoding).  On
 * failure it must say why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "core/backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lb_err err = { 0 };
	const backup_entry *e;
	unsigned char *out = NULL;
	size_t i, len = 0;
	backup *b;

	if ((b = backup_decode(data, size, &err)) == NULL) {
		if (err.code == LB_OK || err.msg[0] == '\0')
			abort();
		ERR_clear_error();
		return 0;
	}
	if (backup_count(b) > BACKUP_ENTRIES_MAX)
		abort();
	for (i = 0; (e = backup_get0(b, i)) != NULL; i++) {
		if (!backup_name_valid(e->name, strlen(e->name)) ||
		    (e->mode & ~(mode_t)0777) != 0 ||
		    backup_find(b, e->name) != e)
			abort();
		if (e->is_dir && e->len != 0)
			abort();
		if (!e->is_dir && e->len > 0 && (e->data < data ||
		    e->data + e->len > data + size))
			abort();
	}
	if (backup_encode(b, &out, &len, &err) == -1)
		abort();
	if (len != size || memcmp(out, data, size) != 0)
		abort();
	OPENSSL_clear_free(out, len);
	backup_free(b);
	return 0;
}
