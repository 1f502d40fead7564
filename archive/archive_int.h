/*
 * archive_int.h - what the files of archive/ share: Shamir splitting and
 * combining of the data key over libgfshare.
 */
#ifndef LOCKBOX_ARCHIVE_INT_H
#define LOCKBOX_ARCHIVE_INT_H

#include "archive/archive.h"

/*
 * Splits secret (ARCHIVE_DATA_KEY_LEN bytes) into n shares with threshold
 * m; shares[i] (ARCHIVE_SHARE_LEN bytes each, caller-provided) gets x = i+1
 * then its 32 bytes.  Randomness from RAND_bytes.
 */
int archive_shamir_split(const unsigned char *secret, unsigned n, unsigned m,
    unsigned char (*shares)[ARCHIVE_SHARE_LEN], lb_err *err);
/* Combines n shares (each x then 32 bytes) into secret. */
int archive_shamir_combine(unsigned char (*shares)[ARCHIVE_SHARE_LEN],
    unsigned n, unsigned char *secret, lb_err *err);

#endif
