/*
 * runmeta.h — private to cairn. Automatic run metadata: who ran what, where,
 * when, under which scheduler job and from which git commit, collected once
 * at init as a list of string key/value pairs. docs/metadata.md lists every
 * key.
 *
 * Collection never spawns a process and never records the environment
 * wholesale: only variables named in an allowlist are recorded, and names
 * that look like they hold secrets are refused even when allowlisted.
 */
#ifndef CAIRN_RUNMETA_H
#define CAIRN_RUNMETA_H

#include <stddef.h>

/* One pair; both strings are owned by the cairn_meta that holds them. */
typedef struct {
  char *key;
  char *value;
} cairn_meta_kv;

/* An ordered list of pairs with unique keys. Start from `cairn_meta m = {0};`
 * and release with cairn__meta_free. Not thread-safe: one owner at a time. */
typedef struct {
  cairn_meta_kv *kv;
  size_t n, cap;
} cairn_meta;

/*
 * Appends the process-local metadata to m: cairn version, user, uid, pid,
 * launch time, executable, command line, working directory, host name, the
 * batch job (Slurm, PBS, LSF or Flux), the git state of the working
 * directory's repository, and the allowlisted environment variables.
 *
 * env_allowlist is a comma-separated list of variable names, each optionally
 * ending in '*' to match a prefix (e.g. "OMP_NUM_THREADS,SPACK_*"); NULL or
 * "" records no variable. Names containing TOKEN, SECRET, PASSWORD, PASSWD,
 * KEY or CREDENTIAL (any case) are never recorded; they are listed, without
 * values, under "env.refused".
 *
 * Items the system cannot provide (no /proc, no repository, ...) are simply
 * left out. Bounded: the git check gives up ("git.dirty" = "unknown") on huge
 * indexes rather than stat every file for long, but it does stat each tracked
 * file, so under MPI call it on one rank, not all.
 *
 * Returns CAIRN_OK; CAIRN_EINVAL if m is NULL; CAIRN_ENOMEM, with a message
 * in err, if an allocation fails. On error the pairs added so far stay in m;
 * either way the caller releases m with cairn__meta_free. Reentrant (no
 * global state) but reads the environment, so not safe against a concurrent
 * setenv.
 */
int cairn__meta_collect(cairn_meta *m, const char *env_allowlist, char *err,
                        size_t errlen);

/*
 * Adds a copy of key and value, replacing the value if key is already there
 * (the order of first insertion is kept). Values longer than CAIRN_VALUE_MAX
 * bytes are truncated (at a UTF-8 character boundary).
 * Returns CAIRN_OK; CAIRN_EINVAL for NULL m/key/value or an empty key;
 * CAIRN_ENAMETOOLONG for a key longer than CAIRN_NAME_MAX; CAIRN_ENOMEM (m is
 * unchanged).
 */
int cairn__meta_add(cairn_meta *m, const char *key, const char *value);

/*
 * Adds the job-wide items only a collective call can know: "mpi.library"
 * (mpi_version, e.g. from MPI_Get_library_version; skipped if NULL),
 * "mpi.ranks", "mpi.ranks_per_node", "hosts" (host_list, comma-separated;
 * skipped if NULL) and "hosts.count". Returns as cairn__meta_add does, and
 * CAIRN_EINVAL for negative counts.
 */
int cairn__meta_add_mpi(cairn_meta *m, const char *mpi_version, int nranks,
                        int ranks_per_node, const char *host_list, int nhosts);

/* Returns this process's command line as the "cmdline" item records it
 * (arguments joined by spaces, shell-quoted where needed), malloc'd; NULL
 * without /proc or memory. Reentrant. */
char *cairn__meta_cmdline(void);

/* Returns the value stored under key, or NULL. */
const char *cairn__meta_get(const cairn_meta *m, const char *key);

/* Frees every pair and the array, leaving m empty and reusable. NULL is a
 * no-op. */
void cairn__meta_free(cairn_meta *m);

#endif /* CAIRN_RUNMETA_H */
