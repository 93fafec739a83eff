/*
 * cli_common.c — what the `cairn` subcommands share: where the database
 * is, opening it for a question, and JSON/CSV string output.
 */
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "cli.h"
#include "db/db_query.h"
#include "tool_common.h"

int cairn_cli_opt_value(int argc, char **argv, int *i, const char *name, const char **val) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n))
    return 0;
  if (argv[*i][n] == '=') {
    *val = argv[*i] + n + 1;
    return 1;
  }
  if (argv[*i][n])
    return 0;
  *val = *i + 1 < argc ? argv[++*i] : NULL;
  return 1;
}

int cairn_cli_target(const char *cmd, const char *what, int argc, char **argv, int *i,
                     const char **target) {
  if (argv[*i][0] == '-' && argv[*i][1] && strcmp(argv[*i], "--")) {
    fprintf(stderr, "cairn %s: unknown option '%s' (see `cairn %s --help`)\n", cmd, argv[*i],
            cmd);
    return 2;
  }
  if (!strcmp(argv[*i], "--") && *i + 1 < argc)
    ++*i;
  if (*target) {
    fprintf(stderr, "cairn %s: one %s at a time ('%s' and '%s')\n", cmd, what, *target,
            argv[*i]);
    return 2;
  }
  *target = argv[*i];
  return 0;
}

const char *cairn_cli_db_path(const char *opt) {
  if (opt && *opt)
    return opt;
  const char *env = getenv("CAIRN_DB");
  return env && *env ? env : "cairn.db";
}

sqlite3 *cairn_cli_open_db(const char *cmd, const char *path) {
  sqlite3 *db = NULL;
  char err[512];
  int rc = cairn_db_open(path, 0, &db, err, sizeof err);
  if (rc) {
    fprintf(stderr, "cairn %s: %s\n", cmd, err);
    return NULL;
  }
  return db;
}

void cairn_cli_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    switch (*p) {
    case '"': fputs("\\\"", f); break;
    case '\\': fputs("\\\\", f); break;
    case '\n': fputs("\\n", f); break;
    case '\r': fputs("\\r", f); break;
    case '\t': fputs("\\t", f); break;
    case '<': case '>': case '&': fprintf(f, "\\u%04x", *p); break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        fprintf(f, "\\u%04x", *p);
      else
        fputc(*p, f);
    }
  }
  fputc('"', f);
}

void cairn_cli_cell(const char *s, size_t w) {
  s = s ? s : "";
  cairn_tool_fput_text(stdout, s);
  for (size_t k = cairn_dbq_esc_width(s); k < w; k++)
    putchar(' ');
}

void cairn_cli_csv_str(FILE *f, const char *s) {
  s = s ? s : "";
  if (!strpbrk(s, ",\"\n\r")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"')
      fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}
