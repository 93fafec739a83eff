/*
 * test_memory.c — how much memory finalize's conversion may use
 * (cairn__memory_available, behind wal.convert_memory's default), read from
 * fake /proc files and cgroup trees in a temporary directory: the node's
 * MemAvailable; a cgroup v2 limit, tighter on a parent; a cgroup v1 memory
 * hierarchy beside cgroup v2 (the hybrid layout of RHEL 7/8 clusters),
 * including a container that mounts its own cgroup as the hierarchy's
 * root; the inactive page cache counted as reclaimable; a cgroup at its
 * limit (known and none left, never "unknown"); unreadable files.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "h5/h5_finalize.h"
#include "test_tmpdir.h"
#include "util.h"

#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)

static char *root;

static void setup(void) {
  root = tt_tempdir("cairn-mem");
  cr_assert_not_null(root);
}

TestSuite(memory, .init = setup);

/* Writes root/rel (creating its directories) with printf-formatted text. */
static void put(const char *rel, const char *fmt, ...) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, rel);
  for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
    *p = '\0';
    mkdir(path, 0700);
    *p = '/';
  }
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s", path);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fclose(f);
}

static uint64_t avail(void) {
  char mi[512], cg[512], mnt[512];
  snprintf(mi, sizeof mi, "%s/proc/meminfo", root);
  snprintf(cg, sizeof cg, "%s/proc/self/cgroup", root);
  snprintf(mnt, sizeof mnt, "%s/proc/self/mountinfo", root);
  return cairn__memory_available_from(mi, cg, mnt, root);
}

static void meminfo_gib(unsigned gib) {
  put("proc/meminfo", "MemTotal:       %llu kB\nMemFree:          1000 kB\n"
                      "MemAvailable:   %llu kB\nBuffers:           100 kB\n",
      (unsigned long long)(64ull * GIB / 1024), (unsigned long long)(gib * GIB / 1024));
}

/* A cgroup v2 directory under sys/fs/cgroup: limit ("max" or bytes),
 * usage and inactive page cache. */
static void v2_group(const char *rel, const char *max, uint64_t current, uint64_t inactive) {
  char p[512];
  snprintf(p, sizeof p, "sys/fs/cgroup%s/memory.max", rel);
  put(p, "%s\n", max);
  snprintf(p, sizeof p, "sys/fs/cgroup%s/memory.current", rel);
  put(p, "%llu\n", (unsigned long long)current);
  snprintf(p, sizeof p, "sys/fs/cgroup%s/memory.stat", rel);
  put(p, "anon 1000\nfile %llu\nactive_file 7\ninactive_file %llu\nslab 3\n",
      (unsigned long long)(inactive + 7), (unsigned long long)inactive);
}

static const char v2_mounts[] =
    "24 1 0:21 / /proc rw,nosuid - proc proc rw\n"
    "31 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate\n";

Test(memory, meminfo_alone) {
  meminfo_gib(20);
  /* no cgroup files at all */
  cr_assert_eq(avail(), 20ull * GIB);
}

Test(memory, nothing_readable_is_unknown) {
  cr_assert_eq(avail(), 0);
}

Test(memory, cgroup_v2_limit_and_a_tighter_parent) {
  meminfo_gib(20);
  put("proc/self/cgroup", "0::/slurm/job7/step0\n");
  put("proc/self/mountinfo", v2_mounts);
  /* the step has 4 GiB of room, the job only 3 GiB: the job's wins */
  v2_group("/slurm/job7/step0", "8589934592", 4 * GIB, 0);
  v2_group("/slurm/job7", "10737418240", 7 * GIB, 0);
  v2_group("/slurm", "max", 30 * GIB, 0);
  cr_assert_eq(avail(), 3 * GIB);
  /* the inactive page cache is reclaimed before anything is killed */
  v2_group("/slurm/job7", "10737418240", 7 * GIB, 2 * GIB);
  cr_assert_eq(avail(), 4 * GIB, "%llu", (unsigned long long)avail());
  /* MemAvailable lower than every cgroup's headroom */
  meminfo_gib(1);
  cr_assert_eq(avail(), 1 * GIB);
}

Test(memory, cgroup_at_its_limit_is_known_and_empty) {
  meminfo_gib(20);
  put("proc/self/cgroup", "0::/job\n");
  put("proc/self/mountinfo", v2_mounts);
  v2_group("/job", "1073741824", 1 * GIB + 4096, 0);
  cr_assert_eq(avail(), 1, "none left is 1, not 0 (unknown)");
}

/* The hybrid layout: memory on a v1 hierarchy, an empty v2 one beside it. */
static const char hybrid_mounts[] =
    "24 1 0:21 / /proc rw - proc proc rw\n"
    "30 1 0:25 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
    "31 30 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    "33 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
    "35 30 0:30 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n";

static void v1_group(const char *mnt, const char *rel, uint64_t limit, uint64_t usage,
                     uint64_t inactive) {
  char p[512];
  snprintf(p, sizeof p, "%s%s/memory.limit_in_bytes", mnt, rel);
  put(p, "%llu\n", (unsigned long long)limit);
  snprintf(p, sizeof p, "%s%s/memory.usage_in_bytes", mnt, rel);
  put(p, "%llu\n", (unsigned long long)usage);
  snprintf(p, sizeof p, "%s%s/memory.stat", mnt, rel);
  /* the cgroup's own inactive_file is a decoy: v1 counts the hierarchy's */
  put(p, "cache 5\nrss 6\ninactive_file 1\ntotal_cache 9\ntotal_inactive_file %llu\n",
      (unsigned long long)inactive);
}

Test(memory, cgroup_v1_memory_hierarchy_beside_v2) {
  meminfo_gib(20);
  put("proc/self/cgroup", "12:memory:/slurm/uid_0/job_42\n"
                          "4:cpu,cpuacct:/slurm/uid_0/job_42\n"
                          "0::/user.slice\n");
  put("proc/self/mountinfo", hybrid_mounts);
  /* "no limit" in v1 is the largest page multiple below 2^63 */
  v1_group("sys/fs/cgroup/memory", "/slurm", 9223372036854771712ull, 12 * GIB, 0);
  v1_group("sys/fs/cgroup/memory", "/slurm/uid_0", 9223372036854771712ull, 12 * GIB, 0);
  v1_group("sys/fs/cgroup/memory", "/slurm/uid_0/job_42", 6 * GIB, 5 * GIB, 512 * MIB);
  /* the v2 hierarchy holds no limit that applies here */
  v2_group("/unified/user.slice", "104857600", 100 * MIB, 0);
  cr_assert_eq(avail(), 1 * GIB + 512 * MIB, "%llu", (unsigned long long)avail());
}

Test(memory, cgroup_v1_in_a_container_that_mounts_its_own_cgroup_as_root) {
  meminfo_gib(20);
  put("proc/self/cgroup", "4:memory:/process_api/abc\n0::/\n");
  put("proc/self/mountinfo",
      "35 30 0:30 /process_api/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
  v1_group("sys/fs/cgroup/memory", "", 2 * GIB, 1 * GIB, 0);
  /* a decoy where the path would lead if the mount's root were not taken
   * off it (a nested cgroup that happens to have the same name) */
  v1_group("sys/fs/cgroup/memory", "/process_api/abc", 200 * MIB, 100 * MIB, 0);
  cr_assert_eq(avail(), 1 * GIB, "%llu", (unsigned long long)avail());
}

Test(memory, the_conversion_bound_follows) {
  /* the real files of this machine: something is known on Linux */
  uint64_t a = cairn__memory_available();
  cr_assert_gt(a, 0);
  uint64_t b = cairn__h5_convert_memory(0);
  cr_assert(b > 0 && b <= a, "bound %llu of %llu", (unsigned long long)b, (unsigned long long)a);
  cr_assert_eq(cairn__h5_convert_memory(12345), 12345);
}
