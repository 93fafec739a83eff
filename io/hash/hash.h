/*
 * hash.h — private to cairn: content hashes of artifacts (scheme
 * "cairn-merkle-sha256-v1"), identical whatever the number of threads or
 * ranks that computed them. The scheme is specified, with test vectors, in
 * docs/format.md ("Content hashes (cairn-merkle-sha256-v1)").
 *
 * In short: a file of at most one leaf (leaf_bytes, default 4 MiB) is
 * identified by the plain SHA-256 of its bytes, so small artifacts match
 * `sha256sum`. A larger file is cut into leaves of leaf_bytes bytes (the
 * last one shorter); the leaves form the RFC 6962 Merkle tree (leaf =
 * SHA-256(0x00 || bytes), node = SHA-256(0x01 || left || right)), and the
 * identity is SHA-256(0x02 || u64le size || u64le leaf_bytes || root), which
 * binds the size and the leaf size. Leaves are independent, so any number of
 * threads or ranks may hash any subsets of them.
 *
 * The MPI collective variant is declared in hash_mpi.h.
 */
#ifndef CAIRN_HASH_H
#define CAIRN_HASH_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_HASH_SCHEME "cairn-merkle-sha256-v1"
#define CAIRN_HASH_DIGEST_LEN 32u
#define CAIRN_HASH_HEX_LEN 64u /* hex digits, lowercase; plus a terminator */

/* Leaf sizes: a power of two in [CAIRN_HASH_MIN_LEAF, CAIRN_HASH_MAX_LEAF].
 * 0 passed to the functions below selects CAIRN_HASH_DEFAULT_LEAF. */
#define CAIRN_HASH_DEFAULT_LEAF (UINT64_C(4) << 20) /* 4 MiB */
#define CAIRN_HASH_MIN_LEAF (UINT64_C(4) << 10)     /* 4 KiB */
#define CAIRN_HASH_MAX_LEAF (UINT64_C(1) << 30)     /* 1 GiB */

/* Domain-separation prefixes (one byte hashed before the node's input). */
#define CAIRN_HASH_PREFIX_LEAF 0x00u
#define CAIRN_HASH_PREFIX_NODE 0x01u
#define CAIRN_HASH_PREFIX_FINAL 0x02u

#define CAIRN_HASH_REASON_LEN 256u

/*
 * The outcome of hashing one artifact. A failed artifact is data, not an
 * error of the job: status says what happened and reason says it in words,
 * ready to be recorded next to the path.
 */
typedef struct cairn_hash_result {
  int status;            /* CAIRN_OK or a negative CAIRN_E* code          */
  char reason[CAIRN_HASH_REASON_LEN]; /* "" when status == CAIRN_OK       */
  uint8_t digest[CAIRN_HASH_DIGEST_LEN]; /* the identity (zero on failure) */
  char hex[CAIRN_HASH_HEX_LEN + 1];      /* digest in lowercase hex ("")  */
  uint64_t size;       /* bytes hashed (size at open; 0 if never opened)   */
  uint64_t leaf_bytes; /* the leaf size used (recorded with the hash)      */
  uint64_t nleaves;    /* max(1, ceil(size / leaf_bytes))                  */
} cairn_hash_result;

/*
 * Hashes the regular file at path with nthreads threads (0: one per online
 * core; never more than leaves, nor than 1024), the caller being one of
 * them, each reading disjoint leaves with pread. The result does not depend
 * on nthreads. If a worker thread cannot be started, the others do its
 * share. Worker threads block all signals.
 *
 * Returns out->status: CAIRN_OK; CAIRN_ENOTFOUND ("no such file");
 * CAIRN_EINVAL for bad arguments, a directory ("is a directory") or
 * anything else that is not a regular file (FIFOs are opened without
 * blocking and refused); CAIRN_EIO for a permission error ("permission
 * denied") or a read error (with the system's message); CAIRN_ECORRUPT if
 * the file changed while it was hashed (its size, mtime or ctime differ
 * between the fstat before and after reading, or a read ended early) — the
 * digest is then cleared and must not be recorded as the identity;
 * CAIRN_ENOMEM. out is always filled when non-NULL. Never blocks on a FIFO,
 * never exits. Thread-safe (no shared state except the test hook below).
 */
int cairn__hash_file(const char *path, uint64_t leaf_bytes, unsigned nthreads,
                     cairn_hash_result *out);

/*
 * Hashes leaves [first_leaf, first_leaf + nleaves) of the file open as fd,
 * whose size is size, into out[0..nleaves). The leaf hash is the scheme's:
 * SHA-256(0x00 || bytes), except that a file of at most one leaf has the
 * plain SHA-256 of its bytes as its only "leaf", so cairn__hash_combine can
 * treat every file alike. This is one rank's share in the collective variant
 * and one thread's in cairn__hash_file.
 *
 * Returns CAIRN_OK; CAIRN_EINVAL (bad leaf size, range beyond the file);
 * CAIRN_EIO on a read error; CAIRN_ECORRUPT if the file ended before size;
 * CAIRN_ENOMEM. On failure a message is written to err (if errlen > 0) and
 * out is undefined. Thread-safe: uses pread only, never the file offset.
 */
int cairn__hash_leaves(int fd, uint64_t size, uint64_t leaf_bytes, uint64_t first_leaf,
                       uint64_t nleaves, uint8_t (*out)[CAIRN_HASH_DIGEST_LEN], char *err,
                       size_t errlen);

/*
 * Computes the identity of a file of size bytes from all its leaf hashes
 * (nleaves must be max(1, ceil(size / leaf_bytes))). A pure function of its
 * inputs; it allocates only OpenSSL's digest context.
 *
 * Returns CAIRN_OK; CAIRN_EINVAL if nleaves or leaf_bytes do not fit size;
 * CAIRN_ENOMEM if OpenSSL cannot allocate a context. Thread-safe.
 */
int cairn__hash_combine(const uint8_t (*leaves)[CAIRN_HASH_DIGEST_LEN], uint64_t nleaves,
                        uint64_t size, uint64_t leaf_bytes, uint8_t root[CAIRN_HASH_DIGEST_LEN]);

/* Number of leaves of a file of size bytes: max(1, ceil(size / leaf_bytes)). */
uint64_t cairn__hash_nleaves(uint64_t size, uint64_t leaf_bytes);

/* Returns 1 if leaf_bytes is a valid leaf size (0 is not; callers map 0 to
 * the default first), 0 otherwise. */
int cairn__hash_leaf_size_ok(uint64_t leaf_bytes);

/* Writes the 64 lowercase hex digits of digest and a terminator to hex. */
void cairn__hash_to_hex(const uint8_t digest[CAIRN_HASH_DIGEST_LEN],
                        char hex[CAIRN_HASH_HEX_LEN + 1]);

/*
 * Shared with hash_mpi.c: opens path for hashing without blocking (O_NONBLOCK
 * keeps a FIFO from stalling the job) and checks that it is a regular file.
 * Returns CAIRN_OK with *fd open and *st filled, or a status as for
 * cairn__hash_file with reason written (fd closed).
 */
struct stat;
int cairn__hash_open(const char *path, int *fd, struct stat *st, char *reason, size_t len);

/* Shared with hash_mpi.c: returns 1 if two fstat results of one open file
 * show no change (same size, mtime and ctime to the nanosecond), else 0. */
int cairn__hash_unchanged(const struct stat *before, const struct stat *after);

/* Shared with hash_mpi.c: fills out as a failed artifact (digest and hex
 * cleared, reason formatted) and returns status. */
int cairn__hash_fail(cairn_hash_result *out, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Tests only: a function cairn__hash_file calls in the calling thread after
 * its first fstat and before reading, so a test can change the file at a
 * known moment. NULL (the default) disables it. Not thread-safe: set it
 * before hashing, from a test.
 */
typedef void (*cairn_hash_test_hook)(int fd, void *arg);
void cairn__hash_set_test_hook(cairn_hash_test_hook fn, void *arg);

#endif /* CAIRN_HASH_H */
