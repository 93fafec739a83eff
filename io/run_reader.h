/*
 * run_reader.h — private to cairn (shared by the tools and the tests). Reads
 * everything a run directory's write-ahead log holds, in order, through one
 * record visitor, and reports — never crashes on — damaged or foreign files.
 * Later formats (HDF5) plug in beside it.
 */
#ifndef CAIRN_RUN_READER_H
#define CAIRN_RUN_READER_H

#include <stddef.h>
#include <stdint.h>

#include "wal_records.h"

typedef struct {
  uint64_t segments;        /* segment files opened successfully      */
  uint64_t blocks;          /* intact blocks decoded                  */
  uint64_t corrupt_regions; /* damaged regions skipped inside segments */
  uint64_t bytes_skipped;   /* bytes in damaged regions and torn tails */
  uint64_t torn_tails;      /* segments ending inside a block          */
  uint64_t bad_files;       /* files rejected (foreign, bad header)    */
  uint64_t bad_blocks;      /* blocks whose contents failed to decode  */
} cairn_run_damage;

/* Receives one human-readable message per problem found ("<file>: offset
 * <n>: <what>"). May be NULL. */
typedef void (*cairn_run_report_fn)(void *ctx, const char *msg);

/*
 * Lists the WAL segments of `dir` (files named wal-r<rank>-<seq>.cwal),
 * sorted by rank then sequence. On success *paths is a malloc'd array of
 * malloc'd strings (free with cairn__run_free_paths). Returns CAIRN_OK,
 * CAIRN_EIO (directory unreadable, message in err), CAIRN_ENOMEM.
 */
int cairn__run_list_wal(const char *dir, char ***paths, size_t *n, char *err,
                        size_t errlen);
void cairn__run_free_paths(char **paths, size_t n);

/*
 * Decodes every intact block of every segment of `dir` in order, calling the
 * visitor. Damage is counted in *damage (may be NULL) and described through
 * report. Returns CAIRN_OK when the directory could be read (even if damaged
 * — check *damage), CAIRN_ENOTFOUND if it holds no WAL segment, CAIRN_EIO,
 * CAIRN_ENOMEM, or a visitor's non-zero return.
 */
int cairn__run_read_wal(const char *dir, const cairn_rec_visitor *v,
                        cairn_run_damage *damage, cairn_run_report_fn report,
                        void *report_ctx);

#endif /* CAIRN_RUN_READER_H */
