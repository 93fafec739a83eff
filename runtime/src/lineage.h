/*
 * lineage.h — private to cairn: the checks of the artifact calls (api.c),
 * shared with their collective variants (lineage_mpi.c).
 */
#ifndef CAIRN_LINEAGE_H
#define CAIRN_LINEAGE_H

#include <stddef.h>

#include "cairn.h"

/* Checks an artifact's path (1..4095 bytes), kind, role and properties
 * (NULL or a flat JSON object; fn names the caller in the warning an
 * invalid one logs). Sets *len and *props_len. Returns CAIRN_OK,
 * CAIRN_EINVAL, CAIRN_ENAMETOOLONG, CAIRN_ENOMEM. Counts nothing. */
int cairn__artifact_check(const char *fn, const char *path, cairn_artifact_kind kind,
                          cairn_role role, const char *props, size_t *len, size_t *props_len);

/* Counts one rejected call on the control channel. */
void cairn__reject_control(void);

/* 1 if s is "scheme://...": an artifact recorded as given, never opened. */
int cairn__is_uri(const char *s);

#endif /* CAIRN_LINEAGE_H */
