/*
 * backup.h - backup archives of a state directory: a consistent copy of the
 * SQLite database taken with the online backup API while the daemon runs,
 * plus the files a restore needs, in one self-describing, checksummed
 * container (format in core/backup.c), and the restore that verifies the
 * whole container before it writes anything and undoes what it wrote on
 * any failure.
 *
 * core knows no file names of the layers above: the caller (cli/cmd_backup.c)
 * decides what goes in.  The reader works on a memory buffer so that the
 * fuzzer and the unit tests drive the same code as `lockbox restore`.
 */
#ifndef LOCKBOX_CORE_BACKUP_H
#define LOCKBOX_CORE_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/core.h"

#define BACKUP_MAGIC       "LOCKBOX-BACKUP 1\n"
#define BACKUP_MAGIC_LEN   (sizeof(BACKUP_MAGIC) - 1)
/* Caps the reader enforces (and the writer, so it never writes what the
 * reader would refuse). */
#define BACKUP_TOTAL_MAX   ((uint64_t)4 * 1024 * 1024 * 1024)
#define BACKUP_FILE_MAX    ((uint64_t)3 * 1024 * 1024 * 1024)
#define BACKUP_ENTRIES_MAX 1024
#define BACKUP_NAME_MAX    255

/* One entry as read back or added; every field borrowed from the backup. */
typedef struct backup_entry {
	const char *name;            /* relative path, '/'-separated */
	bool is_dir;
	mode_t mode;                 /* permission bits only */
	const unsigned char *data;   /* files only */
	size_t len;
} backup_entry;

/* The totals of a restore. */
typedef struct backup_report {
	size_t files, dirs;
	uint64_t bytes;
	int64_t audit_rows;          /* rows of the verified audit chain */
} backup_report;

typedef struct backup backup;

/* An empty backup to add entries to; NULL when out of memory. */
backup *backup_new(void);
/* Frees b, cleansing every byte it owns (entries hold CA secrets). */
void backup_free(backup *b);

/* The number of entries and the i-th (borrowed; NULL past the end). */
size_t backup_count(const backup *b);
const backup_entry *backup_get0(const backup *b, size_t i);
/* The entry called name, or NULL. */
const backup_entry *backup_find(const backup *b, const char *name);

/*
 * True for a name the container accepts: 1..BACKUP_NAME_MAX printable
 * ASCII bytes, '/'-separated components none of which is empty, "." or
 * "..", no leading '/'.
 */
bool backup_name_valid(const char *name, size_t len);

/*
 * Adds a directory entry (its parent must have been added first).  -1 with
 * err on an invalid or duplicate name or a missing parent.
 */
int backup_add_dir(backup *b, const char *name, mode_t mode, lb_err *err);
/*
 * Adds a file entry, taking ownership of data (malloc'ed; freed with
 * OPENSSL_clear_free, also on failure).  Same rules as backup_add_dir,
 * plus BACKUP_FILE_MAX.
 */
int backup_add_file(backup *b, const char *name, mode_t mode,
    unsigned char *data, size_t len, lb_err *err);
/*
 * Adds the SQLite database at db_path as the file entry name (mode 0600):
 * a read-only connection copies it page by page into memory with
 * sqlite3_backup_init/step/finish in one read transaction, so the copy is
 * consistent even while the daemon writes; SQLITE_BUSY and SQLITE_LOCKED
 * are retried for up to 30 s.  The copy passes PRAGMA integrity_check
 * before it is added.
 */
int backup_add_db(backup *b, const char *name, const char *db_path,
    lb_err *err);

/*
 * Encodes b into a malloc'ed container (*out, *len); the caller frees it
 * with OPENSSL_clear_free.  LB_ETOOBIG over BACKUP_TOTAL_MAX.
 */
int backup_encode(const backup *b, unsigned char **out, size_t *len,
    lb_err *err);
/* Encodes b and writes it to path atomically, mode 0600, never replacing
 * an existing file (LB_ECONFLICT). */
int backup_write(const backup *b, const char *path, lb_err *err);

/*
 * Parses and verifies a container from memory: the magic, every field,
 * every entry's SHA-256 and the trailer's, the caps, names (no absolute
 * path, no "..", no duplicate, parents declared first).  The entries
 * borrow buf, which must outlive the result.  NULL with err (LB_EINVAL,
 * LB_ETOOBIG) on anything wrong; nothing is trusted before it returns.
 */
backup *backup_decode(const unsigned char *buf, size_t len, lb_err *err);
/* backup_decode over a file (mapped read-only; kept until backup_free). */
backup *backup_read_file(const char *path, lb_err *err);

/*
 * Writes every entry of b under dir, which must be absent (it is created,
 * 0700) or an empty directory: directories and files created exclusively,
 * never following links, with their modes (group and other write bits
 * dropped), each file fsync'ed.  Then opens the entry db_name (which must
 * exist) as the database and runs PRAGMA integrity_check and
 * core_audit_verify.  On any failure removes everything it created.
 * rep (optional) receives the totals.
 */
int backup_restore(const backup *b, const char *dir, const char *db_name,
    backup_report *rep, lb_err *err);

#endif /* LOCKBOX_CORE_BACKUP_H */
