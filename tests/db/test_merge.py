#!/usr/bin/python3
"""`cairn merge` against real runs (the db_fixture: runs A, B, crashed C),
read back with Python's sqlite3 module, an independent reader.

usage: test_merge.py CAIRN FIXTURE_DIR CASE
cases: schema, roundtrip, twice, kill, crashed, corrupt, concurrent, dbmerge,
       hostile, errors
"""
import csv
import io
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile

CAIRN, FIX, CASE = sys.argv[1], sys.argv[2], sys.argv[3]

# The ML Metadata schema version 10 tables and their columns, in order.
MLMD_V10 = {
    "Type": ["id", "name", "version", "type_kind", "description", "input_type",
             "output_type", "external_id"],
    "ParentType": ["type_id", "parent_type_id"],
    "TypeProperty": ["type_id", "name", "data_type"],
    "Artifact": ["id", "type_id", "uri", "state", "name", "external_id",
                 "create_time_since_epoch", "last_update_time_since_epoch"],
    "ArtifactProperty": ["artifact_id", "name", "is_custom_property", "int_value",
                         "double_value", "string_value", "byte_value", "proto_value",
                         "bool_value"],
    "Execution": ["id", "type_id", "last_known_state", "name", "external_id",
                  "create_time_since_epoch", "last_update_time_since_epoch"],
    "ExecutionProperty": ["execution_id", "name", "is_custom_property", "int_value",
                          "double_value", "string_value", "byte_value", "proto_value",
                          "bool_value"],
    "Context": ["id", "type_id", "name", "external_id", "create_time_since_epoch",
                "last_update_time_since_epoch"],
    "ContextProperty": ["context_id", "name", "is_custom_property", "int_value",
                        "double_value", "string_value", "byte_value", "proto_value",
                        "bool_value"],
    "ParentContext": ["context_id", "parent_context_id"],
    "Event": ["id", "artifact_id", "execution_id", "type", "milliseconds_since_epoch"],
    "EventPath": ["event_id", "is_index_step", "step_index", "step_key"],
    "Association": ["id", "context_id", "execution_id"],
    "Attribution": ["id", "context_id", "artifact_id"],
    "MLMDEnv": ["schema_version"],
}
CMF_ARTIFACT_TYPES = {"Dataset", "Model", "Dataslice", "Metrics", "Step_Metrics",
                      "Environment"}

env = {}
with open(os.path.join(FIX, "runs.env")) as f:
    for line in f:
        k, v = line.strip().split("=", 1)
        env[k] = v.strip("'")
RUN_A, RUN_B, RUN_C = env["RUN_A"], env["RUN_B"], env["RUN_C"]
UUID_A, UUID_C = env["UUID_A"], env["UUID_C"]
tmp = tempfile.mkdtemp(prefix="cairn-merge-")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def merge(db, *inputs, extra_env=None, args=()):
    e = dict(os.environ)
    if extra_env:
        e.update(extra_env)
    return subprocess.run([CAIRN, "merge", "--db", db, *args, *inputs], env=e,
                          capture_output=True, text=True)


def dump(db):
    """Every row of every table, in a stable order (the database's content)."""
    con = sqlite3.connect(db)
    out = []
    for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"):
        rows = con.execute(f'SELECT * FROM "{t}"').fetchall()
        out.append((t, sorted(rows, key=repr)))
    con.close()
    return out


def series_csv(run_dir, name):
    """The series as `cairn dump` reads it from the run directory's HDF5 files."""
    r = subprocess.run([CAIRN, "dump", run_dir, "--series", name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return list(csv.DictReader(io.StringIO(r.stdout)))


if CASE == "schema":
    db = os.path.join(tmp, "s.db")
    r = merge(db, RUN_A)
    check(r.returncode == 0, f"merge A: {r.returncode} {r.stderr}")
    con = sqlite3.connect(db)
    for table, cols in MLMD_V10.items():
        got = [row[1] for row in con.execute(f"PRAGMA table_info(`{table}`)")]
        check(got == cols, f"MLMD table {table}: columns {got}, expected {cols}")
    check(con.execute("SELECT schema_version FROM MLMDEnv").fetchall() == [(10,)],
          "MLMDEnv.schema_version is not 10")
    types = {n: k for n, k in con.execute("SELECT name, type_kind FROM Type")}
    for t in ("Dataset", "Model", "Dataslice"):
        check(types.get(t) == 1, f"artifact type {t} missing (types: {types})")
    check(set(n for n, k in types.items() if k == 1) <= CMF_ARTIFACT_TYPES | {"Artifact"},
          f"artifact types beyond CMF's: {types}")
    check(types.get("Parent_Context") == 2 and types.get("Pipeline_Stage") == 2,
          f"CMF context types missing: {types}")
    ctx = dict(con.execute("SELECT c.name, t.name FROM Context c JOIN Type t ON t.id=c.type_id"))
    check(ctx.get("cairn-test") == "Parent_Context", f"pipeline context: {ctx}")
    check(ctx.get("cairn-test/prepare") == "Pipeline_Stage" and
          ctx.get("cairn-test/train") == "Pipeline_Stage", f"stage contexts: {ctx}")
    # Artifacts: uri = content hash; events INPUT 3 / OUTPUT 4 only.
    for uri, state, name in con.execute("SELECT uri, state, name FROM Artifact"):
        if state == 2:
            check(uri.startswith("cairn-merkle-sha256-v1:") or
                  uri.startswith("cairn-dataslice-sha256-v1:"), f"uri not a hash: {uri}")
            check(name.endswith(":" + uri), f"name {name} is not <path>:<hash>")
        else:
            check(state == 6 and uri == "s3://bucket/reference/v1", f"artifact {uri} state {state}")
    check({t for (t,) in con.execute("SELECT DISTINCT type FROM Event")} == {3, 4},
          "Event.type is not only 3/4")
    # The shard files' hashes equal sha256sum (files under 4 MiB).
    import hashlib
    for i in range(3):
        p = os.path.join(FIX, "data", f"shard-{i}.bin")
        h = hashlib.sha256(open(p, "rb").read()).hexdigest()
        n = con.execute("SELECT count(*) FROM Artifact WHERE uri=?",
                        ("cairn-merkle-sha256-v1:" + h,)).fetchone()[0]
        check(n == 1, f"shard-{i}: no artifact with uri = its sha256")
    # Executions: the model is an OUTPUT of train-epoch on rank 0.
    rows = con.execute("""SELECT t.name FROM Event e JOIN Artifact a ON a.id=e.artifact_id
        JOIN Execution x ON x.id=e.execution_id JOIN Type t ON t.id=x.type_id
        WHERE a.name LIKE '%model-A.ckpt:%' AND e.type=4""").fetchall()
    check(rows == [("train-epoch",)], f"model-A output of {rows}")
    run = con.execute("SELECT uuid, nranks, source, steps, samples FROM cairn_run").fetchall()
    check(run == [(UUID_A, 4, "h5", 200, 4 * 200 * 4)], f"cairn_run row {run}")

elif CASE == "roundtrip":
    # The summary row of each metric against the run directory read directly.
    db = os.path.join(tmp, "r.db")
    r = merge(db, RUN_A)
    check(r.returncode == 0, f"merge: {r.stderr}")
    con = sqlite3.connect(db)
    for name in ("loss", "step_time_s", "x'); DROP TABLE Artifact;--"):
        rows = series_csv(RUN_A, name)
        last = rows[-1]
        got = con.execute("SELECT nsteps, first_step, last_step, last_count, last_mean, last_min,"
                          " last_max FROM cairn_metric WHERE name=?", (name,)).fetchone()
        check(got is not None, f"metric {name!r} not in the database")
        if got:
            check(got[0] == len(rows) and got[1] == int(rows[0]["step"]) and
                  got[2] == int(last["step"]), f"{name}: steps {got[:3]}")
            check(got[3] == int(last["count"]), f"{name}: count {got[3]} vs {last['count']}")
            check(abs(got[4] - float(last["mean"])) <= 1e-12 * max(1, abs(got[4])),
                  f"{name}: last mean {got[4]} vs {last['mean']}")
            check(got[5] == float(last["min"]) and got[6] == float(last["max"]),
                  f"{name}: min/max {got[5:]} vs {last['min']},{last['max']}")
    # Not one row per sample: chunks.
    nchunks = con.execute("SELECT count(*) FROM cairn_series_chunk").fetchone()[0]
    nmetrics = con.execute("SELECT count(*) FROM cairn_metric").fetchone()[0]
    check(nchunks == nmetrics * 8, f"{nchunks} series chunks for {nmetrics} metrics")
    nr = con.execute("SELECT count(*) FROM cairn_rank_chunk").fetchone()[0]
    check(nr == nmetrics * 4, f"{nr} rank chunks, expected {nmetrics * 4}")
    marks = con.execute("SELECT rank, n FROM cairn_step_mark ORDER BY rank").fetchall()
    check(marks == [(0, 200), (1, 200), (2, 200), (3, 200)], f"step marks {marks}")

elif CASE == "twice":
    db = os.path.join(tmp, "t.db")
    r = merge(db, RUN_A, RUN_B)
    check(r.returncode == 0 and "2 runs added" in r.stdout, f"first merge: {r.stdout} {r.stderr}")
    before = dump(db)
    r = merge(db, RUN_A, RUN_B)
    check(r.returncode == 0 and "0 runs added, 2 unchanged" in r.stdout,
          f"second merge: {r.stdout} {r.stderr}")
    check(dump(db) == before, "merging twice changed the database")

elif CASE == "kill":
    db = os.path.join(tmp, "k.db")
    r = merge(db, RUN_A)
    check(r.returncode == 0, f"merge A: {r.stderr}")
    before = dump(db)
    # Killed (SIGKILL) in the middle of run B's transaction.
    r = merge(db, RUN_B, extra_env={"CAIRN_TEST_MERGE_KILL_AFTER": "2"})
    check(r.returncode == -signal.SIGKILL, f"merge was not killed: rc {r.returncode}")
    check(os.path.exists(db + "-wal") or True, "")
    check(dump(db) == before, "a merge killed half-way changed the database")
    r = merge(db, RUN_B)
    check(r.returncode == 0 and "1 run added" in r.stdout, f"merge after kill: {r.stdout}")

elif CASE == "crashed":
    db = os.path.join(tmp, "c.db")
    r = merge(db, RUN_C)
    check(r.returncode == 0, f"merge of the crashed run: {r.returncode} {r.stderr}")
    check("recovered ranks (from write-ahead logs) 4" in r.stdout, f"summary: {r.stdout}")
    con = sqlite3.connect(db)
    row = con.execute("SELECT uuid, source, recovered_ranks, steps FROM cairn_run").fetchone()
    check(row[:3] == (UUID_C, "wal", 4), f"crashed run row {row}")
    # Everything flushed before the kill is there: steps 0..100 at least.
    check(row[3] >= 101, f"crashed run kept {row[3]} steps, expected >= 101")

elif CASE == "corrupt":
    db = os.path.join(tmp, "x.db")
    r = merge(db, RUN_A)
    before = dump(db)
    bad = os.path.join(tmp, "bad-run")
    shutil.copytree(RUN_B, bad)
    h5 = [f for f in os.listdir(bad) if f.endswith(".h5")][0]
    with open(os.path.join(bad, h5), "r+b") as f:  # clobber the middle of the file
        f.seek(os.path.getsize(os.path.join(bad, h5)) // 2)
        f.write(b"\xde\xad\xbe\xef" * 4096)
    r = merge(db, bad)
    check(r.returncode == 1, f"corrupt run: exit {r.returncode}, expected 1")
    check(h5 in r.stderr and "not merged" in r.stderr, f"error does not name the file: {r.stderr}")
    check(dump(db) == before, "a corrupt run changed the database")
    # A file that is not HDF5 at all.
    foreign = os.path.join(tmp, "foreign-run")
    os.mkdir(foreign)
    with open(os.path.join(foreign, "run-g000000.h5"), "w") as f:
        f.write("this is not HDF5\n" * 100)
    r = merge(db, foreign)
    check(r.returncode == 1 and "run-g000000.h5" in r.stderr, f"foreign file: {r.stderr}")
    check(dump(db) == before, "a foreign file changed the database")
    # --salvage merges what could be read, and says so.
    r = merge(db, bad, args=("--salvage",))
    check(r.returncode == 0, f"--salvage: {r.returncode} {r.stderr}")

elif CASE == "concurrent":
    db = os.path.join(tmp, "p.db")
    procs = [subprocess.Popen([CAIRN, "merge", "--quiet", "--db", db, d], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for d in (RUN_A, RUN_B, RUN_C, RUN_A, RUN_B)]
    outs = [p.communicate() + (p.returncode,) for p in procs]
    for o in outs:
        check(o[2] == 0, f"concurrent merge failed: {o}")
    con = sqlite3.connect(db)
    n = con.execute("SELECT count(*) FROM cairn_run").fetchone()[0]
    check(n == 3, f"{n} runs after concurrent merges, expected 3")
    check(con.execute("SELECT count(*) FROM Type GROUP BY name, type_kind HAVING count(*) > 1")
          .fetchall() == [], "duplicate types")
    check(con.execute("PRAGMA integrity_check").fetchone() == ("ok",), "integrity")

elif CASE == "dbmerge":
    src = os.path.join(FIX, "fixture.db")
    dst = os.path.join(tmp, "d.db")
    r = merge(dst, RUN_C)
    r = merge(dst, src)
    check(r.returncode == 0 and "2 runs added" in r.stdout, f"db merge: {r.stdout} {r.stderr}")
    r2 = merge(dst, src)
    check(r2.returncode == 0 and "0 runs added, 2 unchanged" in r2.stdout, f"db merge twice: {r2.stdout}")
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    q = """SELECT r.uuid, m.name, c.field, c.step_lo, c.step_hi, c.n, c.data
           FROM cairn_series_chunk c JOIN cairn_metric m ON m.id=c.metric_id
           JOIN cairn_run r ON r.id=m.run_id ORDER BY 1,2,3,4"""
    check(a.execute(q).fetchall() == [x for x in b.execute(q).fetchall() if x[0] != UUID_C],
          "series chunks differ after a database merge")
    q = """SELECT r.uuid, a.lineage_id, a.uri, a.hash, x.uri, x.name FROM cairn_artifact a
           JOIN cairn_run r ON r.id=a.run_id JOIN Artifact x ON x.id=a.artifact_id ORDER BY 1,2"""
    check(a.execute(q).fetchall() == [x for x in b.execute(q).fetchall() if x[0] != UUID_C],
          "artifacts differ after a database merge")
    q = """SELECT xa.name, t.name, e.type FROM Event e JOIN Artifact xa ON xa.id=e.artifact_id
           JOIN Execution x ON x.id=e.execution_id JOIN Type t ON t.id=x.type_id
           WHERE x.name LIKE ? ORDER BY 1,2,3"""
    for u in (env["UUID_A"], env["UUID_B"]):
        check(a.execute(q, (u + "%",)).fetchall() == b.execute(q, (u + "%",)).fetchall(),
              f"lineage events of run {u} differ after a database merge")

elif CASE == "hostile":
    db = os.path.join(tmp, "h.db")
    merge(db, RUN_A)
    con = sqlite3.connect(db)
    names = {n for (n,) in con.execute("SELECT name FROM cairn_metric")}
    check("x'); DROP TABLE Artifact;--" in names, f"hostile metric name altered: {names}")
    check("<script>alert(1)</script>" in names, f"hostile html name altered: {names}")
    n = con.execute("SELECT count(*) FROM Artifact WHERE name LIKE ?",
                    ("%/x'); DROP TABLE Artifact;--:cairn-merkle-sha256-v1:%",)).fetchone()[0]
    check(n == 1, "hostile artifact path not stored verbatim")

elif CASE == "errors":
    db = os.path.join(tmp, "e.db")
    r = merge(db, "/nonexistent/run")
    check(r.returncode == 1 and "/nonexistent/run" in r.stderr, f"missing run: {r.returncode} {r.stderr}")
    r = subprocess.run([CAIRN, "merge"], capture_output=True, text=True)
    check(r.returncode == 2 and "no run directory" in r.stderr, f"no args: {r.stderr}")
    r = subprocess.run([CAIRN, "merge", "--bogus", RUN_A], capture_output=True, text=True)
    check(r.returncode == 2 and "--bogus" in r.stderr, f"bad option: {r.stderr}")
    r = subprocess.run([CAIRN, "merge", "--help"], capture_output=True, text=True)
    check(r.returncode == 0 and "usage: cairn merge" in r.stdout, "merge --help")
    notdb = os.path.join(tmp, "notdb")
    with open(notdb, "w") as f:
        f.write("hello, not a database\n" * 10)
    r = merge(notdb, RUN_A)
    check(r.returncode == 2 and "not a SQLite database" in r.stderr, f"foreign db: {r.stderr}")
    other = os.path.join(tmp, "other.sqlite")
    c = sqlite3.connect(other)
    c.execute("CREATE TABLE t(x)")
    c.commit()
    c.close()
    r = merge(other, RUN_A)
    check(r.returncode == 2 and "without cairn's tables" in r.stderr, f"other sqlite: {r.stderr}")
else:
    sys.exit(f"unknown case {CASE}")

shutil.rmtree(tmp, ignore_errors=True)
if failures:
    sys.exit(f"{len(failures)} check(s) failed in case {CASE}")
print(f"case {CASE}: ok")
