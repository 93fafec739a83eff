#!/usr/bin/python3
"""test_queries.py CAIRN FIXTURE_DIR CASE — the questions (`cairn runs`,
`show`, `metrics`, `diff`, `search`) against the lineage fixture
(tests/db/make_fixture.sh). The database is read independently with Python's
sqlite3 module, and metric series are checked against `cairn dump --series`,
which reads the run's HDF5 files and not the database."""
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

CAIRN, FIX, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
DB = os.path.join(FIX, "fixture.db")
ENV = {}
with open(os.path.join(FIX, "runs.env")) as f:
    for line in f:
        k, v = line.strip().split("=", 1)
        ENV[k] = v.strip("'")
HOSTILE = ["x'); DROP TABLE Artifact;--", "<script>alert(1)</script>"]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args, db=DB, env=None):
    cmd = [CAIRN] + list(args)
    if db is not None:
        cmd += ["--db", db]
    p = subprocess.run(cmd, capture_output=True, env=env)
    return p.returncode, p.stdout.decode("utf-8", "surrogateescape"), \
        p.stderr.decode("utf-8", "surrogateescape")


def run_json(*args, db=DB):
    rc, out, err = run(*(list(args) + ["--json"]), db=db)
    check(rc == 0, f"{args} --json: exit {rc} ({err.strip()})")
    check(err == "", f"{args} --json: nothing on stderr ({err.strip()})")
    return json.loads(out)


def q(sql, *params, db=DB):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


A, B = ENV["UUID_A"], ENV["UUID_B"]
RUN_ID = {u: i for i, u in q("SELECT id, uuid FROM cairn_run")}


def last_per_key(table, run_id):
    cols = "key, type, int_value, double_value, string_value" if table == "cairn_param" \
        else "key, 3, NULL, NULL, value"
    out = {}
    for key, typ, i, d, s in q(f"SELECT {cols} FROM {table} WHERE run_id=? ORDER BY seq",
                               run_id):
        out[key] = {1: i, 2: d, 3: s, 4: bool(i)}[typ]
    return out


def dump_series(run_dir, name, ranks=False):
    args = [CAIRN, "dump", run_dir, "--series", name] + (["--ranks"] if ranks else [])
    p = subprocess.run(args, capture_output=True, check=True)
    return list(csv.DictReader(io.StringIO(p.stdout.decode())))


# --------------------------------------------------------------------------
def case_help():
    for cmd in ["runs", "show", "metrics", "diff", "search"]:
        for flag in ["--help", "-h"]:
            rc, out, err = run(cmd, flag, db=None)
            check(rc == 0, f"{cmd} {flag}: exit {rc}")
            check(out.startswith(f"usage: cairn {cmd}"), f"{cmd} {flag}: usage on stdout")
            check("Exit status" in out, f"{cmd} {flag}: exit statuses documented")
            check(err == "", f"{cmd} {flag}: nothing on stderr")
    rc, out, _ = run("--help", db=None)
    for cmd in ["runs", "show", "metrics", "diff", "search"]:
        check(f"  {cmd} " in out, f"cairn --help lists {cmd}")


def case_errors():
    missing = os.path.join(FIX, "no-such-dir", "none.db")
    for args in [["runs"], ["show", A], ["metrics", A], ["diff", A, B], ["search", "a=b"]]:
        rc, out, err = run(*args, db=missing)
        check(rc == 1, f"{args} missing db: exit 1, got {rc}")
        check(err.startswith(f"cairn {args[0]}: ") and "no such database" in err,
              f"{args} missing db: message ({err.strip()})")
        check(out == "", f"{args} missing db: nothing on stdout")
    # A file that is not a database.
    with tempfile.NamedTemporaryFile(suffix=".db") as t:
        t.write(b"not a database at all, not even close\n")
        t.flush()
        rc, _, err = run("runs", db=t.name)
        check(rc == 1 and "not a SQLite database" in err, f"runs on a text file: {rc} {err}")
    for args in [["show", "0000dead"], ["metrics", "0000dead"], ["diff", A, "0000dead"],
                 ["diff", "0000dead", B], ["metrics", "0000dead", "--name", "loss"]]:
        rc, out, err = run(*args)
        check(rc == 1, f"{args}: exit 1 for a missing run, got {rc}")
        check(err.startswith(f"cairn {args[0]}: no run '0000dead' in "),
              f"{args}: message ({err.strip()})")
    usage = [["runs", "--bogus"], ["runs", "notafilter"], ["runs", "--pipeline"],
             ["show"], ["show", A, B], ["show", A, "--csv"], ["diff", A], ["diff", A, B, A],
             ["metrics"], ["metrics", A, "--stat", "median", "--name", "loss"],
             ["metrics", A, "--name", "loss", "--from", "x"],
             ["metrics", A, "--name", "loss", "--rank", "-1"],
             ["metrics", A, "--stat", "mean"], ["metrics", A, "--name"],
             ["metrics", A, "--name", "loss", "--from", "10", "--to", "5"],
             ["metrics", A, "--name", "loss", "--rank", "1", "--stat", "max"],
             ["search"], ["search", "novalue"], ["search", "=x"], ["show", "zz"]]
    for args in usage:
        rc, out, err = run(*args)
        check(rc == 2, f"{args}: usage error exit 2, got {rc} ({err.strip()})")
        check(err.startswith(f"cairn {args[0]}: "), f"{args}: message on stderr ({err!r})")
    rc, _, err = run("metrics", A, "--name", "lsos")
    check(rc == 1 and "no metric 'lsos'" in err and "'loss'" in err,
          f"unknown metric names the close one: {rc} {err.strip()}")
    rc, _, err = run("metrics", A, "--name", "loss", "--rank", "99")
    check(rc == 1 and "rank 99" in err, f"missing rank: {rc} {err.strip()}")
    # $CAIRN_DB is the default database.
    env = dict(os.environ, CAIRN_DB=DB)
    rc, out, _ = run("runs", "--json", db=None, env=env)
    check(rc == 0 and len(json.loads(out)["runs"]) == 2, "runs with $CAIRN_DB")


def case_runs():
    d = run_json("runs")
    rows = q("SELECT uuid, pipeline, nranks, steps, samples, artifacts, source, dropped"
             " FROM cairn_run ORDER BY created_ns DESC")
    check([r["uuid"] for r in d["runs"]] == [r[0] for r in rows], "runs newest first")
    for r, row in zip(d["runs"], rows):
        got = (r["uuid"], r["pipeline"], r["ranks"], r["steps"], r["samples"], r["artifacts"],
               r["source"], r["dropped"])
        check(got == row, f"run row {got} == {row}")
        check(r["created"].endswith("Z") and "T" in r["created"], "ISO-8601 UTC time")
    check({r["uuid"] for r in d["runs"]} == {A, B}, "A and B merged, C not")

    def uuids(*args):
        return {r["uuid"] for r in run_json("runs", *args)["runs"]}
    check(uuids("experiment=lineage-fixture") == {A, B}, "metadata filter")
    check(uuids("optimizer.lr=1e-3") == {A, B}, "param compared as a number")
    check(uuids("optimizer.lr=0.002") == set(), "param filter excludes")
    check(uuids("batch=64.0", "model.arch=resnet-test") == {A, B}, "two filters")
    check(uuids("cmdline~model-B") == {B}, "substring filter")
    check(uuids("cmdline~model-B", "experiment=other") == set(), "filters AND")
    check(uuids("--pipeline", "cairn-test") == {A, B}, "--pipeline")
    check(uuids("--pipeline", "nope") == set(), "--pipeline excludes")
    check(uuids("pipeline=cairn-test") == {A, B}, "pipeline=NAME")
    pid_a = last_per_key("cairn_kv", RUN_ID[A])["pid"]
    check(uuids(f"pid={pid_a}") == {A}, "metadata filter picks one run")
    rc, out, _ = run("runs", "experiment=none")
    check(rc == 0 and "no runs match" in out, "no match is not an error")
    rc, out, _ = run("runs")
    check(A in out and B in out and "cairn-test" in out, "text listing")


def case_show():
    for u in (A, B):
        rid = RUN_ID[u]
        d = run_json("show", u[:8])
        check(d["run"]["uuid"] == u, "show by prefix")
        params = {p["key"]: p["value"] for p in d["params"]}
        check(params == last_per_key("cairn_param", rid), f"params of {u}")
        check({p["key"]: p["type"] for p in d["params"]}["optimizer.lr"] == "double",
              "param type")
        kv = {p["key"]: p["value"] for p in d["metadata"]}
        check(kv == last_per_key("cairn_kv", rid), f"metadata of {u}")
        arts = q("SELECT uri, hash, size, rank FROM cairn_artifact WHERE run_id=?"
                 " ORDER BY t_ns, lineage_id", rid)
        check([(a["path"], a["hash"] or a["error"] or "", a["size"], a["rank"])
               for a in d["artifacts"]] == arts, f"artifacts of {u}")
        ex = q("SELECT name, rank, start_ns, end_ns FROM cairn_execution WHERE run_id=?"
               " ORDER BY start_ns, rank, lineage_id", rid)
        check([(e["name"], e["rank"], e["start_ns"], e["end_ns"]) for e in d["executions"]]
              == ex, f"executions of {u}")
        for e in d["executions"]:
            check(abs(e["duration_s"] - (e["end_ns"] - e["start_ns"]) * 1e-9) < 1e-9,
                  "duration")
        check({s["name"] for s in d["stages"]} == {"prepare", "train"}, "stages")
        tot = q("SELECT channel, sum(logged), sum(stored), sum(dropped), sum(rejected)"
                " FROM cairn_accounting WHERE run_id=? GROUP BY channel ORDER BY channel", rid)
        check([(i, c["logged"], c["stored"], c["dropped"], c["rejected"])
               for i, c in enumerate(d["accounting"]["channels"])] == tot, "accounting")
        check(d["accounting"]["complete"] is True, "a finished run's accounting is complete")
        ms = q("SELECT name, nsteps, samples, last_mean, last_min, last_max FROM cairn_metric"
               " WHERE run_id=? ORDER BY name", rid)
        check([(m["name"], m["steps"], m["samples"], m["last_mean"], m["last_min"],
                m["last_max"]) for m in d["metrics"]] == ms, "metric summaries")
    roles = {(a["path"].rsplit("/", 1)[-1], a["role"])
             for a in run_json("show", B)["artifacts"]}
    check(("model-A.ckpt", "input") in roles and ("model-B.ckpt", "output") in roles,
          f"roles in B: {roles}")
    rc, out, _ = run("show", A)
    for s in ["metadata", "params", "stages:", "executions:", "artifacts:",
              "accounting", "metrics:", "optimizer.lr = 0.001 (double)"]:
        check(s in out, f"show text has {s!r}")


def case_metrics():
    d = run_json("metrics", A)
    ms = q("SELECT name, nsteps, samples, last_mean FROM cairn_metric WHERE run_id=?"
           " ORDER BY name", RUN_ID[A])
    check([(m["name"], m["steps"], m["samples"], m["last_mean"]) for m in d["metrics"]] == ms,
          "metric list")
    run_dir = ENV["RUN_A"]
    for name in ["loss", "step_time_s", HOSTILE[0]]:
        ref = dump_series(run_dir, name, ranks=True)
        steps = [int(r["step"]) for r in ref]
        for stat, col in [("mean", "mean"), ("std", "std"), ("min", "min"), ("max", "max"),
                          ("count", "count")]:
            s = run_json("metrics", A, "--name", name, "--stat", stat)
            check(s["steps"] == steps, f"{name} steps")
            want = [float(r[col]) for r in ref]
            check(s["values"] == want, f"{name} {stat} equals cairn dump's (HDF5) exactly")
        s = run_json("metrics", A, "--name", name, "--stat", "sum")
        means = [float(r["mean"]) * int(r["count"]) for r in ref]
        check(all(abs(x - y) <= 1e-12 * max(1, abs(y)) for x, y in zip(s["values"], means)),
              f"{name} sum")
        for rank in range(4):
            s = run_json("metrics", A, "--name", name, "--rank", str(rank))
            want = [float(r[f"rank{rank}"]) if r[f"rank{rank}"] != "" else None for r in ref]
            check(s["values"] == want, f"{name} rank {rank} equals cairn dump --ranks")
        s = run_json("metrics", A, "--name", name, "--from", "10", "--to", "19")
        check(s["steps"] == list(range(10, 20)), f"{name} step range")
        check(s["values"] == [float(r["mean"]) for r in ref[10:20]], f"{name} range values")
    rc, out, _ = run("metrics", A, "--name", "loss", "--from", "5", "--to", "6")
    check(rc == 0 and "5  " in out and "loss" in out, "series as text")


def case_hostile():
    rc, out, _ = run("metrics", A)
    for h in HOSTILE:
        check(h in out, f"metrics text shows {h!r} verbatim")
    names = [m["name"] for m in run_json("metrics", A)["metrics"]]
    for h in HOSTILE:
        check(h in names, f"metrics json has {h!r}")
    rc, out, _ = run("metrics", A, "--name", HOSTILE[1], "--json")
    check("<script>" not in out and json.loads(out)["metric"] == HOSTILE[1],
          "JSON escapes < and > (safe to embed in HTML) and decodes verbatim")
    rc, out, _ = run("show", A)
    check(HOSTILE[0] in out, "show text shows the hostile artifact path verbatim")
    check(q("SELECT count(*) FROM Artifact")[0][0] > 0, "Artifact table still there")
    # Control characters in a run's bytes never reach the terminal raw.
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "c.db")
        src = sqlite3.connect(DB)
        dst = sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        evil = "evil\x1b]0;pwned\x07\x1b[2J"
        dst.execute("INSERT INTO cairn_kv(run_id, seq, rank, key, value) VALUES (?,?,?,?,?)",
                    (RUN_ID[A], 100000, 0, "note", evil))
        dst.execute("UPDATE cairn_metric SET name=? WHERE run_id=? AND name='loss'",
                    ("lo\x1bss", RUN_ID[A]))
        dst.commit()
        dst.close()
        for args in (["show", A], ["metrics", A], ["diff", A, B], ["search", "note~evil"],
                     ["runs", "note~evil"]):
            rc, out, err = run(*args, db=copy)
            check(rc == 0, f"{args} on the copy: {rc} {err}")
            check("\x1b" not in out and "\x07" not in out, f"{args}: no raw control bytes")
        rc, out, _ = run("show", A, db=copy)
        check("evil\\x1b]0;pwned\\x07\\x1b[2J" in out, "control characters shown as \\xNN")
        d = run_json("show", A, db=copy)
        check({m["key"]: m["value"] for m in d["metadata"]}["note"] == evil,
              "JSON keeps the exact bytes")
        rc, out, _ = run("metrics", A, "--name", "lo\x1bss", "--csv", db=copy)
        check(rc == 0 and out.startswith("step,mean\n"), "a metric with a control char")


def case_diff():
    d = run_json("diff", A, B)
    check(d["a"] == A and d["b"] == B, "diff names the runs")
    check(d["params"]["differ"] == [] and d["params"]["equal"] == 3, "params equal")
    mkeys = {x["key"] for x in d["metadata"]["differ"]}
    check("cmdline" in mkeys and "pid" in mkeys and "experiment" not in mkeys,
          f"metadata differences {mkeys}")
    arts = d["artifacts"]

    def short(lst):
        return {(x["role"], x["kind"], x["path"].rsplit("/", 1)[-1]) for x in lst}
    check(short(arts["only_a"]) == {("output", "Model", "model-A.ckpt")},
          f"only in A: {short(arts['only_a'])}")
    check(short(arts["only_b"]) == {("input", "Model", "model-A.ckpt"),
                                    ("output", "Model", "model-B.ckpt")},
          f"only in B: {short(arts['only_b'])}")
    check(arts["changed"] == [] and arts["equal"] > 0, "shared inputs are equal")
    hash_a = q("SELECT hash FROM cairn_artifact WHERE run_id=? AND uri LIKE '%model-A.ckpt'",
               RUN_ID[A])[0][0]
    check([x["hash"] for x in arts["only_a"]] == [hash_a], "hash of A's model")
    check(d["differences"] == sum(len(d[s]["differ"]) for s in
                                  ["run", "params", "metadata", "metrics"]) +
          len(arts["only_a"]) + len(arts["only_b"]) + len(arts["changed"]), "difference count")
    same = run_json("diff", A, A)
    check(same["differences"] == 0 and same["equal"] > 0, "a run equals itself")
    rc, out, _ = run("diff", A, B)
    check("only in A: output Model" in out and "only in B: output Model" in out and
          "equal items not shown" in out, "diff text")


def case_search():
    def found(*terms):
        return run_json("search", *terms)
    d = found("experiment=lineage-fixture")
    check({r["uuid"] for r in d["runs"]} == {A, B}, "search by run metadata")
    hash_a = q("SELECT hash FROM cairn_artifact WHERE run_id=? AND uri LIKE '%model-A.ckpt'",
               RUN_ID[A])[0][0]
    d = found(f"hash={hash_a}")
    check([a["hash"] for a in d["artifacts"]] == [hash_a], "search by content hash")
    check(set(d["artifacts"][0]["runs"]) == {A, B}, "the artifact's runs (A made, B used)")
    check(d["artifacts"][0]["type"] == "Model", "artifact type")
    d = found("type=Model", "url~model-B")
    check([a["path"].rsplit("/", 1)[-1] for a in d["artifacts"]] == ["model-B.ckpt"],
          "two terms AND")
    d = found("shards=3")
    check(len(d["executions"]) == 2 and {e["run"] for e in d["executions"]} == {A, B},
          "search execution properties")
    d = found("owner=data-team")
    check([c["name"] for c in d["contexts"]] == ["cairn-test/prepare"],
          "search context properties")
    d = found("optimizer.lr=0.001", "batch=64")
    check({r["uuid"] for r in d["runs"]} == {A, B}, "search by params")
    pid_b = last_per_key("cairn_kv", RUN_ID[B])["pid"]
    d = found("experiment=lineage-fixture", f"pid={pid_b}")
    check([r["uuid"] for r in d["runs"]] == [B], "search narrows with AND")
    d = found("framework=pytorch")
    check(not any(d[k] for k in ["runs", "artifacts", "executions", "contexts"]),
          "nothing matches")
    d = found(f"url~{HOSTILE[0]}")
    check(len(d["artifacts"]) == 1 and d["artifacts"][0]["path"].endswith(HOSTILE[0]),
          "hostile path found verbatim, used as a bound value")
    rc, out, _ = run("search", "type=Model")
    check(rc == 0 and "model-A.ckpt" in out and "model-B.ckpt" in out, "search text")


def case_csv():
    rc, out, _ = run("runs", "--csv")
    rows = list(csv.reader(io.StringIO(out)))
    check(rc == 0 and rows[0] == ["uuid", "pipeline", "created", "ranks", "steps", "samples",
                                  "artifacts", "source", "dropped"], "runs CSV header")
    check(len(rows) == 3 and all(len(r) == 9 for r in rows), "runs CSV rows")
    rc, out, _ = run("metrics", A, "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    check({r["name"] for r in rows} == {m[0] for m in q(
        "SELECT name FROM cairn_metric WHERE run_id=?", RUN_ID[A])}, "metrics CSV names")
    check(all(len(r) == 11 for r in rows), "metrics CSV columns")
    rc, out, _ = run("metrics", A, "--name", HOSTILE[0], "--stat", "max", "--csv")
    rows = list(csv.reader(io.StringIO(out)))
    check(rows[0] == ["step", "max"] and len(rows) == 201 and
          all(len(r) == 2 for r in rows), "series CSV")
    rc, out, _ = run("metrics", A, "--name", "loss", "--rank", "0", "--csv")
    rows = list(csv.reader(io.StringIO(out)))
    check(rows[0] == ["step", "value"] and len(rows) == 201, "rank series CSV")


CASES = {n[5:]: f for n, f in globals().items() if n.startswith("case_")}
if CASE not in CASES:
    sys.exit(f"unknown case {CASE}; cases: {' '.join(CASES)}")
CASES[CASE]()
if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print(f"{CASE}: all checks passed")
