/*
 * bench_aggregator.c — what a node aggregator spends per record, in one
 * process and one thread, without MPI and without the ranks around it.
 *
 * The aggregator thread (runtime/src/aggregator.c) takes each encoded block
 * a rank's drain sends it, appends it to its write-ahead log (zstd and a
 * write) and adds it to the run view it keeps for MPI_Finalize. On a node
 * whose cores the ranks keep busy, every nanosecond of that is taken from a
 * rank, so this is the figure the step-time overhead of bench_mpi_training
 * follows. This program encodes the blocks of a data-parallel run up front,
 * as the ranks' drains would (every rank logs every metric once per step;
 * a block holds a few steps of one rank), then times, in alternating
 * rounds on a fresh log and a fresh view each time:
 *
 *   decode      cairn__rec_decode with a visitor that only sums the values:
 *               the floor of anything that reads the blocks
 *   log         cairn__wal_append of every block (what the log costs)
 *   view        cairn__view_builder_add of every block (what the view costs)
 *   aggregator  both, block by block, as the aggregator does
 *
 * and prints ns of wall time and of thread CPU time per record and the
 * minor page faults per 1,000 records (the medians over the rounds), the
 * ratios to decode, then what this host charges for a new 4 KiB page of
 * anonymous memory and of page cache (and so what the view's cells and the
 * log's bytes cost per record at those prices), the time to finish the kept view (the first part
 * of an aggregator's MPI_Finalize) and to free it with a sibling thread
 * running (as the rank's application thread would be), and the CPU time
 * per record of decoding one block repeatedly, warm in the caches (as a
 * live aggregator often finds a block its rank has just sent). Every round
 * of every mode runs in its own child process, forked once the blocks are
 * encoded, so that no round inherits memory (or malloc thresholds) from an
 * earlier one.
 *
 *   bench_aggregator [RANKS [METRICS [STEPS [STEPS_PER_BLOCK [ROUNDS]]]]]
 *                    (default 8 1000 1500 5 5: the shape of the 8-rank
 *                    bench_mpi_training run in bench/README.md)
 *
 * The log goes to a directory bench-aggregator-XXXXXX under $CAIRN_RUN_DIR
 * or the working directory, removed at the end.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cairn.h"
#include "config.h"
#include "hugemem.h"
#include "run_view.h"
#include "wal.h"
#include "wal_format.h"
#include "wal_records.h"

#define MAX_PER_BLOCK 4096

typedef struct {
  void *data;
  size_t len;
  uint64_t records;
} block;

typedef struct {
  double wall_ns, cpu_ns, faults, log_bytes; /* log_bytes: per record */
} sample;

enum { MODE_DECODE, MODE_LOG, MODE_VIEW, MODE_AGG, NMODES };
static const char *const mode_name[NMODES] = {"decode", "log", "view", "aggregator"};

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double unit_noise(void) { /* in [-1, 1) */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}

static uint64_t now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long minor_faults(void) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt;
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench_aggregator: %s: %s\n", what, why);
  exit(1);
}

/* The blocks in the order an aggregator receives them: for each window of
 * STEPS_PER_BLOCK steps, one block per rank (rank order rotating, as ranks
 * drift). A rank's values are float32 tensors widened (loss-like, decaying
 * with the step, with the rank's own noise), as in bench_h5_size. */
static block *make_blocks(uint32_t ranks, uint32_t metrics, uint32_t steps, uint32_t per,
                          size_t *nblocks, uint64_t *nrec) {
  size_t windows = (steps + per - 1) / per, n = 0;
  block *bl = calloc(windows * ranks, sizeof *bl);
  char **names = calloc(metrics, sizeof *names);
  uint32_t *ids = calloc(metrics, sizeof *ids);
  cairn_metric_agg *agg = calloc((size_t)metrics * per, sizeof *agg);
  if (!bl || !names || !ids || !agg)
    die("blocks", "out of memory");
  for (uint32_t k = 0; k < metrics; k++) {
    char s[64];
    snprintf(s, sizeof s, "layer%04" PRIu32 ".grad_norm", k);
    names[k] = strdup(s);
    ids[k] = k;
    if (!names[k])
      die("blocks", "out of memory");
  }
  *nrec = 0;
  for (size_t w = 0; w < windows; w++) {
    uint32_t s0 = (uint32_t)w * per, s1 = s0 + per < steps ? s0 + per : steps;
    for (uint32_t j = 0; j < ranks; j++) {
      uint32_t r = (uint32_t)((j + w) % ranks);
      cairn_buf b = {0};
      cairn__rec_put_source(&b, r);
      if (w == 0) { /* a rank's first block: RUN and NAMES */
        cairn_rec_run run = {.rank = r, .nranks = ranks, .pid = 1000 + r, .start_ns = 1,
                             .hostname = "node0", .hostname_len = 5, .version = "bench",
                             .version_len = 5};
        cairn__rec_put_run(&b, &run);
        cairn__rec_put_names(&b, metrics, ids, (const char *const *)names);
      }
      size_t na = 0;
      cairn_rec_step marks[MAX_PER_BLOCK];
      for (uint32_t s = s0; s < s1; s++) {
        for (uint32_t k = 0; k < metrics; k++) {
          double base = (1.0 + k % 17) / (1.0 + 0.01 * s);
          double v = (double)(float)(base * (1.0 + 0.05 * unit_noise()));
          agg[na++] = (cairn_metric_agg){s, k, 1, v, v, v};
        }
        marks[s - s0] = (cairn_rec_step){s, 1000000ull * s + r, 0};
      }
      cairn__rec_put_metrics(&b, na, agg);
      cairn__rec_put_steps(&b, s1 - s0, marks);
      uint64_t done = (uint64_t)s1 * metrics;
      cairn_rec_counters ctr[2] = {{CAIRN_CHANNEL_METRICS, done, done, 0, 0},
                                   {CAIRN_CHANNEL_CONTROL, s1, s1, 0, 0}};
      cairn__rec_put_counters(&b, 2, ctr);
      if (b.failed)
        die("blocks", "out of memory encoding");
      bl[n++] = (block){b.data, b.len, na};
      *nrec += na;
    }
  }
  for (uint32_t k = 0; k < metrics; k++)
    free(names[k]);
  free(names);
  free(ids);
  free(agg);
  *nblocks = n;
  return bl;
}

static double decode_sum;
static int sum_metric(void *ctx, const cairn_metric_agg *a) {
  (void)ctx;
  decode_sum += a->sum;
  return 0;
}

/* Removes the log's files; returns the bytes they held. */
static uint64_t remove_logs(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  uint64_t bytes = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    struct stat st;
    if (e->d_name[0] == '.')
      continue;
    if (fstatat(dirfd(d), e->d_name, &st, 0) == 0)
      bytes += (uint64_t)st.st_size;
    unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
  return bytes;
}

/* wal.compression_level, from the environment as the aggregator reads it */
static int wal_level = 1;
/* the ranks an aggregator serves, which it tells its view */
static uint32_t group_ranks;

/* One round of one mode over every block. The view built (view and
 * aggregator modes) is left in *vb_out for the caller to finish or free. */
static sample run_mode(int mode, const block *bl, size_t nb, uint64_t nrec, const char *dir,
                       cairn_view_builder **vb_out) {
  char err[512] = "";
  cairn_wal_writer *w = NULL;
  cairn_view_builder *vb = NULL;
  if (mode == MODE_LOG || mode == MODE_AGG) {
    /* the aggregator's log as MPI runs open it (defaults of docs/config.md,
     * but the level of CAIRN_WAL_COMPRESSION_LEVEL) */
    cairn_wal_options o = {.dir = dir, .rank = 0, .compression_level = wal_level, .sync_policy = 1,
                           .sync_interval_ms = 1000, .segment_bytes = 64u << 20};
    if (cairn__wal_open(&w, &o, err, sizeof err) != CAIRN_OK)
      die("opening the log", err);
  }
  if ((mode == MODE_VIEW || mode == MODE_AGG) && cairn__view_builder_new(&vb) != CAIRN_OK)
    die("view", "out of memory");
  if (vb)
    cairn__view_builder_expect_ranks(vb, group_ranks);
  cairn_rec_visitor v = {.metric = sum_metric};
  long f0 = minor_faults();
  uint64_t c0 = now_ns(CLOCK_THREAD_CPUTIME_ID), t0 = now_ns(CLOCK_MONOTONIC);
  for (size_t i = 0; i < nb; i++) {
    if (mode == MODE_DECODE && cairn__rec_decode(bl[i].data, bl[i].len, &v, err, sizeof err))
      die("decoding a block", err);
    if (w && cairn__wal_append(w, CAIRN_WAL_BLOCK_DATA, bl[i].data, bl[i].len) != CAIRN_OK)
      die("appending to the log", dir);
    if (vb && cairn__view_builder_add(vb, 0, bl[i].data, bl[i].len, err, sizeof err) != CAIRN_OK)
      die("adding to the view", err);
  }
  uint64_t t1 = now_ns(CLOCK_MONOTONIC), c1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
  long f1 = minor_faults();
  if (w && cairn__wal_close(w) != CAIRN_OK)
    die("closing the log", dir);
  uint64_t log_bytes = remove_logs(dir);
  *vb_out = vb;
  return (sample){(double)(t1 - t0) / (double)nrec, (double)(c1 - c0) / (double)nrec,
                  (double)(f1 - f0) * 1000.0 / (double)nrec, (double)log_bytes / (double)nrec};
}

/* A thread of the process that keeps running while the view is freed, as
 * the aggregator rank's application thread does: unmapping memory then
 * interrupts its CPU to flush its TLB, which a lone thread would not see. */
static _Atomic int spin_stop;
static void *spin(void *arg) {
  (void)arg;
  while (!atomic_load_explicit(&spin_stop, memory_order_relaxed))
    ;
  return NULL;
}

/* What a measuring child reports, in this order (measure's got[]). */
enum { GOT_WALL, GOT_CPU, GOT_FAULTS, GOT_FINISH, GOT_FREE, GOT_LOG_BYTES, NGOT };

/* One round of one mode in a child process, so that every round starts
 * from the same memory state (the blocks, nothing freed yet), as an
 * aggregator's view starts from a process that has not held one: what
 * malloc kept from an earlier round (or which of its thresholds an earlier
 * round moved) would otherwise change the page faults of the next. got[]:
 * wall ns, CPU ns and faults per 1,000 records, and for the view mode the
 * seconds to finish it and to free it, and the log's bytes per record. */
static void measure(int mode, const block *bl, size_t nb, uint64_t nrec, const char *dir,
                    double got[NGOT]) {
  int fd[2];
  if (pipe(fd) != 0)
    die("pipe", strerror(errno));
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0)
    die("fork", strerror(errno));
  if (pid == 0) {
    close(fd[0]);
    cairn_view_builder *vb = NULL;
    sample s = run_mode(mode, bl, nb, nrec, dir, &vb);
    double out[NGOT] = {[GOT_WALL] = s.wall_ns, [GOT_CPU] = s.cpu_ns, [GOT_FAULTS] = s.faults,
                        [GOT_LOG_BYTES] = s.log_bytes};
    if (vb) {
      cairn_run_view view;
      uint64_t t0 = now_ns(CLOCK_MONOTONIC);
      if (cairn__view_builder_finish(vb, &view) != CAIRN_OK)
        die("finishing the view", "failed");
      out[GOT_FINISH] = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
      pthread_t th;
      int spun = pthread_create(&th, NULL, spin, NULL) == 0;
      struct timespec settle = {0, 2000000};
      nanosleep(&settle, NULL);
      t0 = now_ns(CLOCK_MONOTONIC);
      cairn__view_free(&view);
      out[GOT_FREE] = (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e9;
      atomic_store(&spin_stop, 1);
      if (spun)
        pthread_join(th, NULL);
    }
    _exit(write(fd[1], out, sizeof out) == (ssize_t)sizeof out ? 0 : 1);
  }
  close(fd[1]);
  ssize_t n = read(fd[0], got, NGOT * sizeof *got);
  close(fd[0]);
  int status;
  waitpid(pid, &status, 0);
  if (n != (ssize_t)(NGOT * sizeof *got) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    die("a measuring child process", "failed (see above)");
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static unsigned long arg(int argc, char **argv, int i, unsigned long def, unsigned long max) {
  if (argc <= i)
    return def;
  char *end;
  unsigned long v = strtoul(argv[i], &end, 10);
  if (*end || v == 0 || v > max) {
    fprintf(stderr,
            "usage: bench_aggregator [RANKS [METRICS [STEPS [STEPS_PER_BLOCK [ROUNDS]]]]]\n"
            "argument %d: expected an integer from 1 to %lu, got '%s'\n",
            i, max, argv[i]);
    exit(2);
  }
  return v;
}

/* What this host charges for memory new to a process, in thread CPU ns
 * per 4 KiB page (median of 5): the first write to each page of a fresh
 * anonymous mapping (a page fault, zeroing, the mapping), and appending to
 * a file in the page cache (a new page-cache page and the copy into it).
 * The kept view takes new anonymous memory for every cell it adds, the log
 * new page-cache pages for every block it appends, so these prices bound
 * from below what a record costs them wherever pages are expensive (on the
 * virtual machine of bench/README.md about fifty times bare metal's). */
static void page_prices(const char *dir, double *anon_ns, double *file_ns) {
  enum { REPS = 5 };
  const size_t len = (size_t)64 << 20, page = 4096, piece = (size_t)64 << 10;
  double anon[REPS], file[REPS];
  char path[4200];
  snprintf(path, sizeof path, "%s/page-prices", dir);
  unsigned char *buf = malloc(piece);
  if (!buf)
    die("page prices", "out of memory");
  memset(buf, 0x5a, piece);
  for (int r = 0; r < REPS; r++) {
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      die("page prices: mmap", strerror(errno));
    uint64_t c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    for (size_t o = 0; o < len; o += page)
      p[o] = (unsigned char)o;
    anon[r] = (double)(now_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)(len / page);
    munmap(p, len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
      die("page prices: open", strerror(errno));
    c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    for (size_t o = 0; o < len; o += piece)
      if (write(fd, buf, piece) != (ssize_t)piece)
        die("page prices: write", strerror(errno));
    file[r] = (double)(now_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)(len / page);
    close(fd);
    unlink(path);
  }
  free(buf);
  *anon_ns = median(anon, REPS);
  *file_ns = median(file, REPS);
}

int main(int argc, char **argv) {
  uint32_t ranks = (uint32_t)arg(argc, argv, 1, 8, 4096);
  group_ranks = ranks;
  uint32_t metrics = (uint32_t)arg(argc, argv, 2, 1000, 1u << 20);
  uint32_t steps = (uint32_t)arg(argc, argv, 3, 1500, 1u << 30);
  uint32_t per = (uint32_t)arg(argc, argv, 4, 5, MAX_PER_BLOCK);
  int rounds = (int)arg(argc, argv, 5, 5, 1000);

  const char *base = getenv("CAIRN_RUN_DIR");
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/bench-aggregator-XXXXXX", base && *base ? base : ".");
  if (!mkdtemp(dir))
    die("creating a directory under", base && *base ? base : ".");

  /* mpi.aggregator_huge_pages and wal.compression_level from the
   * environment (CAIRN_MPI_AGGREGATOR_HUGE_PAGES, CAIRN_WAL_COMPRESSION_LEVEL),
   * read by cairn's own configuration code, and applied as the aggregator
   * applies them. */
  cairn_config cfg;
  char cfg_err[512];
  cairn__config_defaults(&cfg);
  if (cairn__config_apply_env(&cfg, cfg_err, sizeof cfg_err) != CAIRN_OK)
    die("configuration", cfg_err);
  int huge = cfg.aggregator_huge_pages;
  cairn__huge_enable(huge);
  wal_level = cfg.compression_level;

  size_t nb;
  uint64_t nrec;
  block *bl = make_blocks(ranks, metrics, steps, per, &nb, &nrec);
  size_t bytes = 0;
  for (size_t i = 0; i < nb; i++)
    bytes += bl[i].len;
  printf("aggregator work per record: %" PRIu32 " ranks x %" PRIu32 " metrics x %" PRIu32
         " steps, %" PRIu32 " steps per block: %zu blocks, %" PRIu64
         " records, %.2f encoded bytes per record; %d rounds per mode, medians; view memory "
         "%s; log at zstd level %d\n",
         ranks, metrics, steps, per, nb, nrec, (double)bytes / (double)nrec, rounds,
         huge ? "in huge-page regions (CAIRN_MPI_AGGREGATOR_HUGE_PAGES)" : "from malloc",
         wal_level);

  double (*wall)[NMODES] = calloc((size_t)rounds, sizeof *wall);
  double (*cpu)[NMODES] = calloc((size_t)rounds, sizeof *cpu);
  double (*flt)[NMODES] = calloc((size_t)rounds, sizeof *flt);
  double *finish = calloc((size_t)rounds, sizeof *finish);
  double *freeing = calloc((size_t)rounds, sizeof *freeing);
  double log_bytes = 0;
  if (!wall || !cpu || !flt || !finish || !freeing)
    die("results", "out of memory");
  for (int r = 0; r < rounds; r++) {
    for (int j = 0; j < NMODES; j++) {
      int m = r % 2 ? NMODES - 1 - j : j; /* odd rounds in reverse order */
      double got[NGOT];
      measure(m, bl, nb, nrec, dir, got);
      if (m == MODE_LOG)
        log_bytes = got[GOT_LOG_BYTES]; /* the same blocks, the same bytes, every round */
      wall[r][m] = got[GOT_WALL];
      cpu[r][m] = got[GOT_CPU];
      flt[r][m] = got[GOT_FAULTS];
      if (m == MODE_VIEW) {
        finish[r] = got[GOT_FINISH];
        freeing[r] = got[GOT_FREE];
      }
    }
  }
  double med[3][NMODES];
  for (int m = 0; m < NMODES; m++) {
    double col[3][1000];
    for (int r = 0; r < rounds; r++) {
      col[0][r] = wall[r][m];
      col[1][r] = cpu[r][m];
      col[2][r] = flt[r][m];
    }
    for (int k = 0; k < 3; k++)
      med[k][m] = median(col[k], rounds);
  }
  printf("  %-12s %10s %10s %14s %12s\n", "mode", "wall ns", "cpu ns", "faults/1000", "cpu/decode");
  for (int m = 0; m < NMODES; m++)
    printf("  %-12s %10.1f %10.1f %14.2f %11.2fx\n", mode_name[m], med[0][m], med[1][m],
           med[2][m], med[1][m] / med[1][MODE_DECODE]);
  printf("  the log holds %.2f bytes per record (zstd level %d)\n", log_bytes, wal_level);
  printf("  the view's share of the aggregator: %.1f ns of %.1f ns CPU per record\n",
         med[1][MODE_AGG] - med[1][MODE_LOG], med[1][MODE_AGG]);
  double anon_ns, file_ns;
  page_prices(dir, &anon_ns, &file_ns);
  /* a cell is a running sum per step and rank (8 bytes); these blocks log
   * every metric once a step, so the view keeps no sample counts (lazy
   * counts, io/run_view.c) */
  double cell_bytes = (double)sizeof(double);
  printf("  this host's price of a new 4 KiB page: %.2f us anonymous (first write), %.2f us "
         "in the page cache (append); at these prices the view's %.0f bytes per record cost "
         "%.1f ns and the log's %.2f bytes %.1f ns per record\n",
         anon_ns / 1e3, file_ns / 1e3, cell_bytes, cell_bytes * anon_ns / 4096.0, log_bytes,
         log_bytes * file_ns / 4096.0);
  printf("  finishing the kept view (%" PRIu64 " per-rank samples): %.3f s (median)\n", nrec,
         median(finish, rounds));
  printf("  freeing the finished view, a sibling thread running: %.3f s (median)\n",
         median(freeing, rounds));
  /* The modes above read every block once, from memory far larger than
   * the caches (as a view built over a long run does); a live aggregator
   * reads a block its rank's writer has just put in shared memory, often
   * still in the caches. Decoding the largest block over and over gives
   * that warm cost of decoding alone. */
  size_t big = 0;
  for (size_t i = 1; i < nb; i++)
    if (bl[i].records > bl[big].records)
      big = i;
  if (!nb || !bl[big].records)
    die("decoding a block", "no block holds a record");
  double warm[7];
  cairn_rec_visitor sv = {.metric = sum_metric};
  char err[512];
  uint64_t reps = 2000000 / (bl[big].records + 1) + 1;
  for (int r = 0; r < 7; r++) {
    uint64_t c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    for (uint64_t k = 0; k < reps; k++)
      if (cairn__rec_decode(bl[big].data, bl[big].len, &sv, err, sizeof err))
        die("decoding a block", err);
    warm[r] = (double)(now_ns(CLOCK_THREAD_CPUTIME_ID) - c0) /
              (double)(reps * bl[big].records);
  }
  printf("  decoding one block of %" PRIu64 " records again and again (warm in the caches): "
         "%.1f ns CPU per record (median of 7)\n",
         bl[big].records, median(warm, 7));
  if (decode_sum == 12345.0)
    printf(" \n"); /* keeps the decode visitor's work */
  for (size_t i = 0; i < nb; i++)
    free(bl[i].data);
  free(bl);
  free(wall);
  free(cpu);
  free(flt);
  free(finish);
  free(freeing);
  rmdir(dir);
  return 0;
}
