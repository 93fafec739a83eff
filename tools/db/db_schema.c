/*
 * db_schema.c — the lineage database's schema, opening and run lookup.
 *
 * The MLMD tables are those of ML Metadata's SQLite schema version 10 (the
 * tables, columns, keys and indexes MLMD creates), so that MLMD and the
 * Common Metadata Framework open the lineage as their own. cairn's tables
 * follow. docs/database.md explains both; tests/db checks the MLMD list.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cairn.h"
#include "db.h"
#include "util.h"

/* clang-format off */
const char *const cairn_db_schema_sql =
  /* ---- ML Metadata, schema version 10 ---- */
  "CREATE TABLE IF NOT EXISTS `Type` ("
  " `id` INTEGER PRIMARY KEY AUTOINCREMENT, `name` VARCHAR(255) NOT NULL,"
  " `version` VARCHAR(255), `type_kind` TINYINT(1) NOT NULL, `description` TEXT,"
  " `input_type` TEXT, `output_type` TEXT, `external_id` VARCHAR(255) UNIQUE);\n"
  "CREATE TABLE IF NOT EXISTS `ParentType` ("
  " `type_id` INT NOT NULL, `parent_type_id` INT NOT NULL,"
  " PRIMARY KEY (`type_id`, `parent_type_id`));\n"
  "CREATE TABLE IF NOT EXISTS `TypeProperty` ("
  " `type_id` INT NOT NULL, `name` VARCHAR(255) NOT NULL, `data_type` INT NULL,"
  " PRIMARY KEY (`type_id`, `name`));\n"
  "CREATE TABLE IF NOT EXISTS `Artifact` ("
  " `id` INTEGER PRIMARY KEY AUTOINCREMENT, `type_id` INT NOT NULL, `uri` TEXT,"
  " `state` INT, `name` VARCHAR(255), `external_id` VARCHAR(255) UNIQUE,"
  " `create_time_since_epoch` INT NOT NULL DEFAULT 0,"
  " `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,"
  " UNIQUE(`type_id`, `name`));\n"
  "CREATE TABLE IF NOT EXISTS `ArtifactProperty` ("
  " `artifact_id` INT NOT NULL, `name` VARCHAR(255) NOT NULL,"
  " `is_custom_property` TINYINT(1) NOT NULL, `int_value` INT, `double_value` DOUBLE,"
  " `string_value` TEXT, `byte_value` BLOB, `proto_value` BLOB, `bool_value` BOOLEAN,"
  " PRIMARY KEY (`artifact_id`, `name`, `is_custom_property`));\n"
  "CREATE TABLE IF NOT EXISTS `Execution` ("
  " `id` INTEGER PRIMARY KEY AUTOINCREMENT, `type_id` INT NOT NULL,"
  " `last_known_state` INT, `name` VARCHAR(255), `external_id` VARCHAR(255) UNIQUE,"
  " `create_time_since_epoch` INT NOT NULL DEFAULT 0,"
  " `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,"
  " UNIQUE(`type_id`, `name`));\n"
  "CREATE TABLE IF NOT EXISTS `ExecutionProperty` ("
  " `execution_id` INT NOT NULL, `name` VARCHAR(255) NOT NULL,"
  " `is_custom_property` TINYINT(1) NOT NULL, `int_value` INT, `double_value` DOUBLE,"
  " `string_value` TEXT, `byte_value` BLOB, `proto_value` BLOB, `bool_value` BOOLEAN,"
  " PRIMARY KEY (`execution_id`, `name`, `is_custom_property`));\n"
  "CREATE TABLE IF NOT EXISTS `Context` ("
  " `id` INTEGER PRIMARY KEY AUTOINCREMENT, `type_id` INT NOT NULL,"
  " `name` VARCHAR(255) NOT NULL, `external_id` VARCHAR(255) UNIQUE,"
  " `create_time_since_epoch` INT NOT NULL DEFAULT 0,"
  " `last_update_time_since_epoch` INT NOT NULL DEFAULT 0,"
  " UNIQUE(`type_id`, `name`));\n"
  "CREATE TABLE IF NOT EXISTS `ContextProperty` ("
  " `context_id` INT NOT NULL, `name` VARCHAR(255) NOT NULL,"
  " `is_custom_property` TINYINT(1) NOT NULL, `int_value` INT, `double_value` DOUBLE,"
  " `string_value` TEXT, `byte_value` BLOB, `proto_value` BLOB, `bool_value` BOOLEAN,"
  " PRIMARY KEY (`context_id`, `name`, `is_custom_property`));\n"
  "CREATE TABLE IF NOT EXISTS `ParentContext` ("
  " `context_id` INT NOT NULL, `parent_context_id` INT NOT NULL,"
  " PRIMARY KEY (`context_id`, `parent_context_id`));\n"
  "CREATE TABLE IF NOT EXISTS `Event` ("
  " `id` INTEGER PRIMARY KEY AUTOINCREMENT, `artifact_id` INT NOT NULL,"
  " `execution_id` INT NOT NULL, `type` INT NOT NULL, `milliseconds_since_epoch` INT,"
  " UNIQUE(`artifact_id`, `execution_id`, `type`));\n"
  "CREATE TABLE IF NOT EXISTS `EventPath` ("
  " `event_id` INT NOT NULL, `is_index_step` TINYINT(1) NOT NULL,"
  " `step_index` INT, `step_key` TEXT);\n"
  "CREATE TABLE IF NOT EXISTS `Association` ("
  " `id` INTEGER PRIMARY KEY AUTOINCREMENT, `context_id` INT NOT NULL,"
  " `execution_id` INT NOT NULL, UNIQUE(`context_id`, `execution_id`));\n"
  "CREATE TABLE IF NOT EXISTS `Attribution` ("
  " `id` INTEGER PRIMARY KEY AUTOINCREMENT, `context_id` INT NOT NULL,"
  " `artifact_id` INT NOT NULL, UNIQUE(`context_id`, `artifact_id`));\n"
  "CREATE TABLE IF NOT EXISTS `MLMDEnv` (`schema_version` INTEGER PRIMARY KEY);\n"
  "CREATE INDEX IF NOT EXISTS `idx_artifact_uri` ON `Artifact`(`uri`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_artifact_create_time_since_epoch`"
  " ON `Artifact`(`create_time_since_epoch`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_artifact_last_update_time_since_epoch`"
  " ON `Artifact`(`last_update_time_since_epoch`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_event_execution_id` ON `Event`(`execution_id`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_parentcontext_parent_context_id`"
  " ON `ParentContext`(`parent_context_id`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_type_name` ON `Type`(`name`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_execution_create_time_since_epoch`"
  " ON `Execution`(`create_time_since_epoch`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_execution_last_update_time_since_epoch`"
  " ON `Execution`(`last_update_time_since_epoch`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_context_create_time_since_epoch`"
  " ON `Context`(`create_time_since_epoch`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_context_last_update_time_since_epoch`"
  " ON `Context`(`last_update_time_since_epoch`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_eventpath_event_id` ON `EventPath`(`event_id`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_artifact_property_int`"
  " ON `ArtifactProperty`(`name`, `is_custom_property`, `int_value`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_artifact_property_double`"
  " ON `ArtifactProperty`(`name`, `is_custom_property`, `double_value`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_artifact_property_string`"
  " ON `ArtifactProperty`(`name`, `is_custom_property`, `string_value`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_execution_property_int`"
  " ON `ExecutionProperty`(`name`, `is_custom_property`, `int_value`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_execution_property_double`"
  " ON `ExecutionProperty`(`name`, `is_custom_property`, `double_value`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_execution_property_string`"
  " ON `ExecutionProperty`(`name`, `is_custom_property`, `string_value`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_context_property_int`"
  " ON `ContextProperty`(`name`, `is_custom_property`, `int_value`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_context_property_double`"
  " ON `ContextProperty`(`name`, `is_custom_property`, `double_value`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_context_property_string`"
  " ON `ContextProperty`(`name`, `is_custom_property`, `string_value`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_type_external_id` ON `Type`(`external_id`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_artifact_external_id` ON `Artifact`(`external_id`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_execution_external_id` ON `Execution`(`external_id`);\n"
  "CREATE INDEX IF NOT EXISTS `idx_context_external_id` ON `Context`(`external_id`);\n"
  /* cairn: for lineage walks from an artifact to the executions using it. */
  "CREATE INDEX IF NOT EXISTS `idx_cairn_event_artifact` ON `Event`(`artifact_id`, `type`);\n"
  /* ---- cairn's own tables ---- */
  "CREATE TABLE IF NOT EXISTS cairn_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
  "CREATE TABLE IF NOT EXISTS cairn_run ("
  " id INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, pipeline TEXT NOT NULL,"
  " context_id INTEGER NOT NULL, execution_id INTEGER NOT NULL,"
  " origin TEXT NOT NULL, source TEXT NOT NULL, format_version INTEGER NOT NULL,"
  " cairn_version TEXT NOT NULL, created_ns INTEGER NOT NULL, merged_ns INTEGER NOT NULL,"
  " nranks INTEGER NOT NULL, naggregators INTEGER NOT NULL, detail INTEGER NOT NULL,"
  " nmetrics INTEGER NOT NULL, steps INTEGER NOT NULL, samples INTEGER NOT NULL,"
  " artifacts INTEGER NOT NULL, executions INTEGER NOT NULL,"
  " recovered_ranks INTEGER NOT NULL, damaged INTEGER NOT NULL,"
  " logged INTEGER NOT NULL, stored INTEGER NOT NULL, dropped INTEGER NOT NULL,"
  " rejected INTEGER NOT NULL, fingerprint TEXT NOT NULL);\n"
  "CREATE INDEX IF NOT EXISTS cairn_run_pipeline ON cairn_run(pipeline);\n"
  "CREATE TABLE IF NOT EXISTS cairn_rank ("
  " run_id INTEGER NOT NULL, rank INTEGER NOT NULL, hostname TEXT NOT NULL,"
  " pid INTEGER NOT NULL, start_ns INTEGER NOT NULL, acct_reported INTEGER NOT NULL,"
  " PRIMARY KEY (run_id, rank));\n"
  "CREATE TABLE IF NOT EXISTS cairn_accounting ("
  " run_id INTEGER NOT NULL, rank INTEGER NOT NULL, channel INTEGER NOT NULL,"
  " logged INTEGER NOT NULL, stored INTEGER NOT NULL, dropped INTEGER NOT NULL,"
  " rejected INTEGER NOT NULL, PRIMARY KEY (run_id, rank, channel));\n"
  "CREATE TABLE IF NOT EXISTS cairn_param ("
  " run_id INTEGER NOT NULL, seq INTEGER NOT NULL, rank INTEGER NOT NULL,"
  " key TEXT NOT NULL, type INTEGER NOT NULL, int_value INTEGER, double_value REAL,"
  " string_value TEXT, PRIMARY KEY (run_id, seq));\n"
  "CREATE INDEX IF NOT EXISTS cairn_param_key ON cairn_param(key);\n"
  "CREATE TABLE IF NOT EXISTS cairn_kv ("
  " run_id INTEGER NOT NULL, seq INTEGER NOT NULL, rank INTEGER NOT NULL,"
  " key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, seq));\n"
  "CREATE INDEX IF NOT EXISTS cairn_kv_key ON cairn_kv(key, value);\n"
  "CREATE TABLE IF NOT EXISTS cairn_metric ("
  " id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, name TEXT NOT NULL,"
  " nsteps INTEGER NOT NULL, first_step INTEGER, last_step INTEGER,"
  " ncols INTEGER NOT NULL, detail INTEGER NOT NULL, missing INTEGER NOT NULL,"
  " samples INTEGER NOT NULL, last_count INTEGER, last_mean REAL, last_min REAL,"
  " last_max REAL, UNIQUE (run_id, name));\n"
  "CREATE TABLE IF NOT EXISTS cairn_series_chunk ("
  " metric_id INTEGER NOT NULL, field INTEGER NOT NULL, step_lo INTEGER NOT NULL,"
  " step_hi INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,"
  " PRIMARY KEY (metric_id, field, step_lo));\n"
  "CREATE TABLE IF NOT EXISTS cairn_rank_chunk ("
  " metric_id INTEGER NOT NULL, rank INTEGER NOT NULL, step_lo INTEGER NOT NULL,"
  " step_hi INTEGER NOT NULL, n INTEGER NOT NULL, vals BLOB NOT NULL,"
  " samples BLOB NOT NULL, PRIMARY KEY (metric_id, rank, step_lo));\n"
  "CREATE TABLE IF NOT EXISTS cairn_step_mark ("
  " run_id INTEGER NOT NULL, rank INTEGER NOT NULL, step_lo INTEGER NOT NULL,"
  " step_hi INTEGER NOT NULL, n INTEGER NOT NULL, steps BLOB NOT NULL,"
  " times BLOB NOT NULL, PRIMARY KEY (run_id, rank, step_lo));\n"
  "CREATE TABLE IF NOT EXISTS cairn_stage ("
  " run_id INTEGER NOT NULL, lineage_id INTEGER NOT NULL, context_id INTEGER NOT NULL,"
  " name TEXT NOT NULL, pipeline TEXT NOT NULL, properties TEXT NOT NULL,"
  " PRIMARY KEY (run_id, lineage_id));\n"
  "CREATE TABLE IF NOT EXISTS cairn_execution ("
  " run_id INTEGER NOT NULL, lineage_id INTEGER NOT NULL, execution_id INTEGER NOT NULL,"
  " stage_lineage_id INTEGER NOT NULL, rank INTEGER NOT NULL, start_ns INTEGER NOT NULL,"
  " end_ns INTEGER NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, command TEXT NOT NULL,"
  " properties TEXT NOT NULL, PRIMARY KEY (run_id, lineage_id));\n"
  "CREATE INDEX IF NOT EXISTS cairn_execution_mlmd ON cairn_execution(execution_id);\n"
  "CREATE TABLE IF NOT EXISTS cairn_artifact ("
  " run_id INTEGER NOT NULL, lineage_id INTEGER NOT NULL, artifact_id INTEGER NOT NULL,"
  " kind INTEGER NOT NULL, rank INTEGER NOT NULL, size INTEGER NOT NULL,"
  " t_ns INTEGER NOT NULL, uri TEXT NOT NULL, hash TEXT NOT NULL,"
  " properties TEXT NOT NULL, PRIMARY KEY (run_id, lineage_id));\n"
  "CREATE INDEX IF NOT EXISTS cairn_artifact_mlmd ON cairn_artifact(artifact_id);\n"
  "CREATE INDEX IF NOT EXISTS cairn_artifact_hash ON cairn_artifact(hash);\n"
  "CREATE TABLE IF NOT EXISTS cairn_event ("
  " run_id INTEGER NOT NULL, seq INTEGER NOT NULL, execution_lineage_id INTEGER NOT NULL,"
  " artifact_lineage_id INTEGER NOT NULL, type INTEGER NOT NULL, rank INTEGER NOT NULL,"
  " t_ns INTEGER NOT NULL, PRIMARY KEY (run_id, seq));\n";
/* clang-format on */

int cairn_db_sql_error(sqlite3 *db, char *err, size_t errlen, const char *what) {
  cairn__fmt(err, errlen, "%s: %s: %s", sqlite3_db_filename(db, "main"), what,
             sqlite3_errmsg(db));
  return CAIRN_EIO;
}

int cairn_db_prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql, char *err, size_t errlen) {
  if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
    *st = NULL;
    return cairn_db_sql_error(db, err, errlen, "prepare");
  }
  return CAIRN_OK;
}

int cairn_db_query_run(sqlite3 *db, sqlite3_stmt **st, const char *sql, int64_t run_id,
                       char *err, size_t errlen) {
  if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
    return cairn_db_sql_error(db, err, errlen, "read");
  sqlite3_bind_int64(*st, 1, run_id);
  return CAIRN_OK;
}

char *cairn_db_dup_text(const unsigned char *s) {
  const char *t = s ? (const char *)s : "";
  size_t n = strlen(t) + 1;
  char *d = malloc(n);
  if (d)
    memcpy(d, t, n);
  return d;
}

int cairn_db_exec(sqlite3 *db, const char *sql, char *err, size_t errlen) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    cairn__fmt(err, errlen, "%s: %s", sqlite3_db_filename(db, "main"),
               msg ? msg : sqlite3_errmsg(db));
    sqlite3_free(msg);
    return CAIRN_EIO;
  }
  return CAIRN_OK;
}

/* 1 if the table exists in the main database, 0 if not, -1 on error. */
static int has_table(sqlite3 *db, const char *name) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", -1,
                         &st, NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int r = sqlite3_step(st);
  sqlite3_finalize(st);
  return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : -1;
}

/* The first column of the first row of sql into *v (dflt when NULL or no
 * row); CAIRN_OK or CAIRN_EIO. */
static int scalar_i64(sqlite3 *db, const char *sql, int64_t dflt, int64_t *v) {
  sqlite3_stmt *st;
  *v = dflt;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    return CAIRN_EIO;
  int r = sqlite3_step(st);
  if (r == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    *v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return r == SQLITE_ROW || r == SQLITE_DONE ? CAIRN_OK : CAIRN_EIO;
}

/* Checks (and, when create, makes) the schema inside the open transaction. */
static int check_schema(sqlite3 *db, const char *path, int create, char *err, size_t errlen) {
  int64_t nobj;
  if (scalar_i64(db, "SELECT count(*) FROM sqlite_master", 0, &nobj))
    goto sqlerr;
  if (nobj == 0) {
    if (!create) {
      cairn__fmt(err, errlen, "%s: an empty file, not a cairn lineage database", path);
      return CAIRN_EFOREIGN;
    }
    char sql[256];
    cairn__fmt(sql, sizeof sql,
               "INSERT INTO MLMDEnv(schema_version) VALUES (%d);"
               "INSERT INTO cairn_meta(key, value) VALUES ('schema_version', '%d');"
               "INSERT INTO cairn_meta(key, value) VALUES ('created_by', 'cairn %s');",
               CAIRN_DB_MLMD_SCHEMA_VERSION, CAIRN_DB_SCHEMA_VERSION, cairn_version());
    int rc = cairn_db_exec(db, cairn_db_schema_sql, err, errlen);
    return rc ? rc : cairn_db_exec(db, sql, err, errlen);
  }
  int have_mlmd = has_table(db, "MLMDEnv");
  int have_cairn = has_table(db, "cairn_meta");
  if (have_mlmd < 0 || have_cairn < 0)
    goto sqlerr;
  if (!have_mlmd || !have_cairn) {
    cairn__fmt(err, errlen,
               "%s: a SQLite database without cairn's tables (expected a cairn lineage "
               "database: MLMDEnv and cairn_meta)",
               path);
    return CAIRN_EFOREIGN;
  }
  int64_t mv, cv;
  if (scalar_i64(db, "SELECT max(schema_version) FROM MLMDEnv", -1, &mv) ||
      scalar_i64(db,
                 "SELECT CAST(value AS INTEGER) FROM cairn_meta WHERE key='schema_version'", -1,
                 &cv))
    goto sqlerr;
  if (mv != CAIRN_DB_MLMD_SCHEMA_VERSION || cv != CAIRN_DB_SCHEMA_VERSION) {
    cairn__fmt(err, errlen,
               "%s: schema versions MLMD %lld / cairn %lld, this cairn reads MLMD %d / cairn %d",
               path, (long long)mv, (long long)cv, CAIRN_DB_MLMD_SCHEMA_VERSION,
               CAIRN_DB_SCHEMA_VERSION);
    return CAIRN_EVERSION;
  }
  return CAIRN_OK;
sqlerr:
  cairn__fmt(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
  return CAIRN_EIO;
}

int cairn_db_open(const char *path, int create, sqlite3 **out, char *err, size_t errlen) {
  *out = NULL;
  struct stat sb;
  int exists = stat(path, &sb) == 0;
  if (!exists && !create) {
    cairn__fmt(err, errlen, "%s: no such database (merge a run into it first)", path);
    return CAIRN_ENOTFOUND;
  }
  if (exists && S_ISDIR(sb.st_mode)) {
    cairn__fmt(err, errlen, "%s: is a directory, expected a cairn database file", path);
    return CAIRN_EINVAL;
  }
  if (exists && sb.st_size > 0) {
    /* Refuse anything that is not SQLite before SQLite touches it. */
    FILE *f = fopen(path, "rb");
    char magic[16] = {0};
    if (!f) {
      cairn__fmt(err, errlen, "%s: %s", path, strerror(errno));
      return CAIRN_EIO;
    }
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got < sizeof magic || memcmp(magic, "SQLite format 3", 16) != 0) {
      cairn__fmt(err, errlen, "%s: not a SQLite database (expected a cairn lineage database)",
                 path);
      return CAIRN_EFOREIGN;
    }
  }
  sqlite3 *db = NULL;
  int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
    cairn__fmt(err, errlen, "%s: cannot open: %s", path, db ? sqlite3_errmsg(db) : "no memory");
    sqlite3_close(db);
    return CAIRN_EIO;
  }
  /* Concurrent merges wait for each other's transactions (each is short
   * compared to this), never fail with "database is locked". */
  sqlite3_busy_timeout(db, 600000);
  int rc = cairn_db_exec(db, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;"
                             " PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY;"
                             " PRAGMA foreign_keys=OFF;",
                         err, errlen);
  if (rc)
    goto fail;
  /* Checked (and created) in one transaction: a merge takes the write lock
   * first (BEGIN IMMEDIATE: a second process creating the same database
   * waits, then finds it made), a question only reads. */
  rc = cairn_db_exec(db, create ? "BEGIN IMMEDIATE" : "BEGIN", err, errlen);
  if (rc)
    goto fail;
  rc = check_schema(db, path, create, err, errlen);
  if (rc) {
    cairn_db_exec(db, "ROLLBACK", NULL, 0);
    goto fail;
  }
  rc = cairn_db_exec(db, "COMMIT", err, errlen);
  if (rc)
    goto fail;
  *out = db;
  return CAIRN_OK;
fail:
  sqlite3_close(db);
  return rc;
}

void cairn_db_close(sqlite3 *db) {
  sqlite3_close(db);
}

int cairn_db_find_run(sqlite3 *db, const char *q, int64_t *run_id, char *err, size_t errlen) {
  char hex[40];
  size_t n = 0;
  for (const char *p = q; *p; p++) {
    if (*p == '-')
      continue;
    if (!isxdigit((unsigned char)*p) || n + 1 >= sizeof hex) {
      cairn__fmt(err, errlen,
                 "'%s': not a run id (expected a run UUID, or at least 4 of its hex digits)", q);
      return CAIRN_EINVAL;
    }
    hex[n++] = (char)tolower((unsigned char)*p);
  }
  hex[n] = '\0';
  if (n < 4) {
    cairn__fmt(err, errlen,
               "'%s': not a run id (expected a run UUID, or at least 4 of its hex digits)", q);
    return CAIRN_EINVAL;
  }
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db,
                         "SELECT id, uuid FROM cairn_run WHERE replace(uuid,'-','') >= ?1"
                         " AND replace(uuid,'-','') < ?1 || 'g' ORDER BY uuid LIMIT 6",
                         -1, &st, NULL) != SQLITE_OK) {
    cairn__fmt(err, errlen, "%s", sqlite3_errmsg(db));
    return CAIRN_EIO;
  }
  sqlite3_bind_text(st, 1, hex, -1, SQLITE_TRANSIENT);
  int found = 0;
  size_t o = 0;
  char list[400] = "";
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (found++ == 0)
      *run_id = sqlite3_column_int64(st, 0);
    if (o < sizeof list - 40)
      o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", found > 1 ? ", " : "",
                            (const char *)sqlite3_column_text(st, 1));
  }
  sqlite3_finalize(st);
  if (found == 0) {
    cairn__fmt(err, errlen, "no run '%s' in %s (see `cairn runs`)", q,
               sqlite3_db_filename(db, "main"));
    return CAIRN_ENOTFOUND;
  }
  if (found > 1) {
    cairn__fmt(err, errlen, "run id '%s' is ambiguous: %s%s", q, list,
               found > 5 ? ", ..." : "");
    return CAIRN_EINVAL;
  }
  return CAIRN_OK;
}
