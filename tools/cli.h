/*
 * cli.h — private to the `cairn` command: the subcommands and what they
 * share (option parsing helpers, the database path, output formats).
 */
#ifndef CAIRN_TOOLS_CLI_H
#define CAIRN_TOOLS_CLI_H

#include <stdio.h>

#include "db/db.h"

typedef struct {
  const char *name;
  int (*fn)(int argc, char **argv); /* argv[0] is the command's name */
  const char *args;
  const char *what;
} cairn_cli_command;

int cairn_tool_dump(int argc, char **argv);
int cairn_cmd_merge(int argc, char **argv);
int cairn_cmd_lineage(int argc, char **argv); /* cmd_lineage.c */
int cairn_cmd_export(int argc, char **argv);  /* cmd_lineage.c */
int cairn_cmd_verify(int argc, char **argv);  /* cmd_verify.c */
int cairn_cmd_runs(int argc, char **argv);
int cairn_cmd_show(int argc, char **argv);
int cairn_cmd_metrics(int argc, char **argv);
int cairn_cmd_diff(int argc, char **argv);
int cairn_cmd_search(int argc, char **argv);
int cairn_cmd_report(int argc, char **argv);

/* An option with a value, "NAME VALUE" or "NAME=VALUE": returns 1 when
 * argv[*i] is that option (*i advanced past a separate value; *val NULL
 * when the value is missing), 0 when it is another argument. */
int cairn_cli_opt_value(int argc, char **argv, int *i, const char *name, const char **val);

/* The one target of a command (what `cairn lineage` or `cairn verify`
 * looks at), for argv[*i] when it is none of the command's options: "--"
 * makes the next argument the target, any other argument starting with
 * '-' is an unknown option. Returns 0 with *target set, or 2 after printing
 * the error ("cairn CMD: ..."; WHAT names the target in "one WHAT at a
 * time" when a second one is given). */
int cairn_cli_target(const char *cmd, const char *what, int argc, char **argv, int *i,
                     const char **target);

/* The database path: --db PATH if given, else $CAIRN_DB, else ./cairn.db. */
const char *cairn_cli_db_path(const char *opt);

/* Opens the database of a question (it must exist). Prints the error
 * ("cairn CMD: ...") and returns NULL on failure. */
sqlite3 *cairn_cli_open_db(const char *cmd, const char *path);

/* Output formats of data commands. */
typedef enum { CAIRN_OUT_TEXT = 0, CAIRN_OUT_JSON, CAIRN_OUT_CSV } cairn_out_format;

/* Writes s as a JSON string (quoted, escaped: control characters, quotes,
 * backslashes, and '<' '>' '&' as \u escapes so that output is safe to embed
 * in HTML too). */
void cairn_cli_json_str(FILE *f, const char *s);
/* Prints s escaped (control characters as \xNN; NULL as nothing), padded
 * with spaces to w columns. */
void cairn_cli_cell(const char *s, size_t w);

/* Writes s as a CSV field (quoted when it holds a comma, quote or newline). */
void cairn_cli_csv_str(FILE *f, const char *s);

#endif /* CAIRN_TOOLS_CLI_H */
