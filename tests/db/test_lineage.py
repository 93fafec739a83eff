#!/usr/bin/python3
"""test_lineage.py CAIRN FIXTURE_DIR CASE — `cairn lineage`, `cairn export`
and `cairn verify` against the lineage fixture (tests/db/make_fixture.sh:
run B reads the model run A wrote). Expected graphs are computed here,
independently, from the MLMD Event table with Python's sqlite3 module.
The fixture's files and database are never modified: cases that change
things work on copies in a temporary directory."""
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

CAIRN, FIX, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
DB = os.path.join(FIX, "fixture.db")
DATA = os.path.join(FIX, "data")
ENV = {}
with open(os.path.join(FIX, "runs.env")) as f:
    for line in f:
        k, v = line.strip().split("=", 1)
        ENV[k] = v.strip("'")
A, B = ENV["UUID_A"], ENV["UUID_B"]
HOSTILE = "x'); DROP TABLE Artifact;--"
INPUT, OUTPUT = 3, 4
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args, db=DB):
    cmd = [CAIRN] + list(args)
    if db is not None:
        cmd += ["--db", db]
    p = subprocess.run(cmd, capture_output=True)
    return p.returncode, p.stdout.decode("utf-8", "surrogateescape"), \
        p.stderr.decode("utf-8", "surrogateescape")


def q(sql, *params, db=DB):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def artifact_at(path, db=DB):
    rows = q("SELECT artifact_id FROM ArtifactProperty WHERE name='url' AND "
             "is_custom_property=0 AND string_value=?", path, db=db)
    assert len(rows) == 1, (path, rows)
    return rows[0][0]


def closure(start_arts, direction, db=DB, start_execs=()):
    """Nodes ('a', id) / ('x', id) and edges (from, to, type) of the walk,
    computed straight from Event."""
    events = q("SELECT artifact_id, execution_id, type FROM Event", db=db)
    nodes = {("a", a) for a in start_arts} | {("x", x) for x in start_execs}
    edges = set()
    todo = list(nodes)
    seen = set(nodes)
    while todo:
        kind, i = todo.pop()
        for a, x, t in events:
            if kind == "a" and a == i:
                if direction == "up" and t == OUTPUT:
                    other, e = ("x", x), (("x", x), ("a", a), "OUTPUT")
                elif direction == "down" and t == INPUT:
                    other, e = ("x", x), (("a", a), ("x", x), "INPUT")
                else:
                    continue
            elif kind == "x" and x == i:
                if direction == "up" and t == INPUT:
                    other, e = ("a", a), (("a", a), ("x", x), "INPUT")
                elif direction == "down" and t == OUTPUT:
                    other, e = ("a", a), (("x", x), ("a", a), "OUTPUT")
                else:
                    continue
            else:
                continue
            edges.add(e)
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen, edges


def graph_json(*args, db=DB):
    rc, out, err = run("lineage", *args, "--json", db=db)
    check(rc == 0, f"lineage {args} --json: exit {rc} ({err.strip()})")
    g = json.loads(out)
    nodes = {(n["id"][0], n["mlmd_id"]) for n in g["nodes"]}
    edges = {((e["from"][0], int(e["from"][1:])), (e["to"][0], int(e["to"][1:])), e["type"])
             for e in g["edges"]}
    return g, nodes, edges


def copy_fixture(tmp):
    """A copy of the data directory and of the database (SQLite's backup, so
    that the copy is consistent), with the artifacts' paths moved to the
    copy. Returns (db, data)."""
    data = os.path.join(tmp, "data")
    shutil.copytree(DATA, data)
    db = os.path.join(tmp, "copy.db")
    src = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
    dst = sqlite3.connect(db)
    src.backup(dst)
    src.close()
    old = DATA + "/"
    new = data + "/"
    dst.execute("UPDATE ArtifactProperty SET string_value = ? || substr(string_value, ?) "
                "WHERE name='url' AND substr(string_value, 1, ?) = ?",
                (new, len(old) + 1, len(old), old))
    dst.execute("UPDATE cairn_artifact SET uri = ? || substr(uri, ?) "
                "WHERE substr(uri, 1, ?) = ?", (new, len(old) + 1, len(old), old))
    dst.commit()
    dst.close()
    return db, data


def sha256_file(path):
    with open(path, "rb") as f:
        return "cairn-merkle-sha256-v1:" + hashlib.sha256(f.read()).hexdigest()


# --------------------------------------------------------------------------
def case_help():
    for cmd in ["lineage", "export", "verify"]:
        for flag in ["--help", "-h"]:
            rc, out, err = run(cmd, flag, db=None)
            check(rc == 0, f"{cmd} {flag}: exit 0 (got {rc})")
            check(out.startswith(f"usage: cairn {cmd}"), f"{cmd} {flag}: usage on stdout")
            check(err == "", f"{cmd} {flag}: nothing on stderr")
    rc, out, _ = run("--help", db=None)
    for cmd in ["lineage", "export", "verify"]:
        check(re.search(rf"^  {cmd} ", out, re.M) is not None, f"cairn --help lists {cmd}")


def case_errors():
    missing = "0000dead-beef"
    for args in [("lineage", missing), ("export", missing, "--format", "cmf-json"),
                 ("verify", "0000deadbeef00")]:
        rc, out, err = run(*args)
        check(rc == 1, f"{args}: exit 1 for a missing run (got {rc})")
        check(f"cairn {args[0]}: " in err and "no run or artifact" in err and "in DB" in err,
              f"{args}: 'no run or artifact ... in DB' on stderr ({err.strip()})")
        check(out == "", f"{args}: nothing on stdout")
    rc, _, err = run("lineage", "/no/such/file.bin")
    check(rc == 1 and "no run or artifact '/no/such/file.bin'" in err, "lineage of an unknown path")
    rc, _, err = run("verify", "/no/such/file.bin")
    check(rc == 1 and "cairn verify: " in err, f"verify of a missing file: exit 1 ({err})")
    # Usage errors: exit 2, message on stderr.
    for args in [("lineage",), ("lineage", A, "--frob"), ("lineage", A, "--depth", "x"),
                 ("export", A), ("export", A, "--format", "yaml"), ("export",),
                 ("verify",), ("verify", "a", "b"), ("lineage", A, B)]:
        rc, out, err = run(*args)
        check(rc == 2, f"{args}: usage error exit 2 (got {rc})")
        check(err.startswith(f"cairn {args[0]}: "), f"{args}: 'cairn {args[0]}: ...' on stderr")
    # A database that does not exist is not created.
    with tempfile.TemporaryDirectory() as tmp:
        nodb = os.path.join(tmp, "none.db")
        for args in [("lineage", A), ("export", A, "--format", "cmf-json"), ("verify", "abcdef")]:
            rc, _, err = run(*args, db=nodb)
            check(rc == 2 and "no such database" in err, f"{args}: missing database ({err})")
        check(not os.path.exists(nodb), "a question does not create the database")
    # Ambiguity: a 4-digit run prefix shared by no run is simply not found;
    # an ambiguous hash prefix of one digit is refused (too short to be one).
    rc, _, err = run("lineage", "cairn-merkle-sha256-v1:")
    check(rc == 1, f"lineage of a bare scheme: exit 1 ({err})")


def case_up():
    model_b = artifact_at(os.path.join(DATA, "model-B.ckpt"))
    model_a = artifact_at(os.path.join(DATA, "model-A.ckpt"))
    raw = artifact_at(os.path.join(DATA, "raw.csv"))
    shards = [artifact_at(os.path.join(DATA, f"shard-{i}.bin")) for i in range(3)]
    (slice_id,), = q("SELECT a.id FROM Artifact a JOIN Type t ON t.id=a.type_id "
                     "WHERE t.name='Dataslice'")
    (train_a,), = q("SELECT ce.execution_id FROM cairn_execution ce JOIN cairn_run r ON "
                    "r.id=ce.run_id WHERE r.uuid=? AND ce.name='train-epoch' AND ce.rank=0", A)
    want_nodes, want_edges = closure([model_b], "up")
    g, nodes, edges = graph_json(os.path.join(DATA, "model-B.ckpt"), "--up")
    check(nodes == want_nodes, f"up from model-B: nodes {sorted(nodes)} == {sorted(want_nodes)}")
    check(edges == want_edges, "up from model-B: edges equal those computed from Event")
    for kind, i, what in [("a", model_a, "model-A"), ("x", train_a, "run A's train execution"),
                          ("a", slice_id, "the dataslice"), ("a", raw, "raw.csv")] + \
            [("a", s, f"shard {s}") for s in shards]:
        check((kind, i) in nodes, f"up from model-B reaches {what}")
    byid = {n["id"]: n for n in g["nodes"]}
    check(byid[f"x{train_a}"]["run"] == A and byid[f"x{train_a}"]["stage"] == "train",
          "run A's train execution carries run A's UUID and its stage")
    check(byid[f"a{model_b}"]["start"] and byid[f"a{model_b}"]["depth"] == 0, "the start node")
    check(g["truncated"] is False, "no depth limit: not truncated")
    # Edges go with the data: model-A -> B's train execution -> model-B.
    check(any(e == (("a", model_a), ("x", e[1][1]), "INPUT") and
              (("x", e[1][1]), ("a", model_b), "OUTPUT") in edges for e in edges),
          "model-A is an INPUT of the execution that OUTPUT model-B")
    # The same start by hash, hash prefix, artifact id and relative path.
    (h,), = q("SELECT uri FROM Artifact WHERE id=?", model_b)
    rel = os.path.relpath(os.path.join(DATA, "model-B.ckpt"))
    for start in [h, h.split(":")[1][:10], f"artifact:{model_b}", rel]:
        _, n2, e2 = graph_json(start, "--up")
        check(n2 == nodes and e2 == edges, f"start '{start}' gives the same graph")
    # Depth limit: 2 edges = the producer and its inputs.
    g2, n2, _ = graph_json(os.path.join(DATA, "model-B.ckpt"), "--up", "--depth", "2")
    check(g2["truncated"] is True, "--depth 2: truncated")
    check(all(n["depth"] <= 2 for n in g2["nodes"]), "--depth 2: no node beyond 2 edges")
    check(("a", model_a) in n2 and ("x", train_a) not in n2, "--depth 2 stops at model-A")
    # Text tree: the cross-run chain is shown.
    rc, out, err = run("lineage", os.path.join(DATA, "model-B.ckpt"), "--up")
    check(rc == 0 and "model-A.ckpt" in out and "raw.csv" in out and A in out and B in out,
          "text tree of model-B shows model-A, raw.csv and both runs")
    check("downstream" not in out, "--up prints no downstream section")
    # A run as start: every execution and artifact of run B is a start node.
    g3, n3, _ = graph_json(B, "--up")
    execs_b = {("x", x) for (x,) in q("SELECT ce.execution_id FROM cairn_execution ce JOIN "
                                      "cairn_run r ON r.id=ce.run_id WHERE r.uuid=?", B)}
    check(execs_b <= n3, "a run's executions are in its lineage")
    check(("x", train_a) in n3, "run B's lineage reaches run A's train execution")


def case_down():
    raw = artifact_at(os.path.join(DATA, "raw.csv"))
    model_b = artifact_at(os.path.join(DATA, "model-B.ckpt"))
    want_nodes, want_edges = closure([raw], "down")
    g, nodes, edges = graph_json(os.path.join(DATA, "raw.csv"), "--down")
    check(nodes == want_nodes, "down from raw.csv: nodes equal those computed from Event")
    check(edges == want_edges, "down from raw.csv: edges equal those computed from Event")
    check(("a", model_b) in nodes, "down from raw.csv reaches model-B (across runs)")
    check(all(n["down"] and not n["up"] for n in g["nodes"]), "--down: nodes reached downward")
    # Both directions: the union of the two walks, not the whole component.
    model_a = os.path.join(DATA, "model-A.ckpt")
    aid = artifact_at(model_a)
    up_n, up_e = closure([aid], "up")
    dn_n, dn_e = closure([aid], "down")
    _, nodes, edges = graph_json(model_a)
    check(nodes == up_n | dn_n and edges == up_e | dn_e, "default: ancestors and descendants")
    rc, out, _ = run("lineage", model_a)
    check(rc == 0 and "upstream" in out and "downstream" in out, "text: both sections")


def dot_tokens(text):
    """A minimal DOT lexer: ids, quoted strings (with \\" escapes), punctuation,
    '->'. Raises on an unterminated string or a stray character."""
    toks, i = [], 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c == '"':
            j, s = i + 1, []
            while True:
                if j >= len(text):
                    raise ValueError("unterminated string")
                if text[j] == "\\" and j + 1 < len(text):
                    s.append(text[j:j + 2])
                    j += 2
                elif text[j] == '"':
                    break
                elif text[j] == "\n":
                    raise ValueError("newline inside a string")
                else:
                    s.append(text[j])
                    j += 1
            toks.append(("str", "".join(s)))
            i = j + 1
        elif text.startswith("->", i):
            toks.append(("op", "->"))
            i += 2
        elif c in "{}[];,=":
            toks.append(("op", c))
            i += 1
        else:
            m = re.match(r"[A-Za-z_0-9.#]+", text[i:])
            if not m:
                raise ValueError(f"stray character {c!r}")
            toks.append(("id", m.group(0)))
            i += len(m.group(0))
    return toks


def parse_dot(text):
    toks = dot_tokens(text)
    assert toks[0] == ("id", "digraph") and toks[2] == ("op", "{") and toks[-1] == ("op", "}")
    nodes, edges, labels = set(), set(), {}
    stmts, cur = [], []
    depth = 0
    for t in toks[3:-1]:
        if t == ("op", "["):
            depth += 1
        elif t == ("op", "]"):
            depth -= 1
        if t == ("op", ";") and depth == 0:
            stmts.append(cur)
            cur = []
        else:
            cur.append(t)
    assert depth == 0 and not cur, "balanced brackets, every statement ends with ;"
    for s in stmts:
        if len(s) >= 3 and s[1] == ("op", "->"):
            edges.add((s[0][1], s[2][1]))
        elif s[0][0] == "id" and re.fullmatch(r"[ax]\d+", s[0][1]):
            nodes.add(s[0][1])
            for k in range(len(s) - 2):
                if s[k] == ("id", "label") and s[k + 1] == ("op", "="):
                    labels[s[0][1]] = s[k + 2][1]
    return nodes, edges, labels


def case_formats():
    with tempfile.TemporaryDirectory() as tmp:
        db, _ = copy_fixture(tmp)
        # A hostile artifact (quotes, backslashes, a newline, DOT escapes, braces)
        # as an input of the execution that wrote model-B.
        evil = 'evil "q" \\N \\l {x} ; -> \n2nd'
        model_b = artifact_at(os.path.join(tmp, "data", "model-B.ckpt"), db=db)
        con = sqlite3.connect(db)
        (xid,), = con.execute("SELECT execution_id FROM Event WHERE artifact_id=? AND type=4",
                              (model_b,)).fetchall()
        (tid,), = con.execute("SELECT id FROM Type WHERE name='Dataset'").fetchall()
        cur = con.execute("INSERT INTO Artifact(type_id, uri, state, name) VALUES (?,?,2,?)",
                          (tid, "cairn-merkle-sha256-v1:" + "ab" * 32, evil + ":h"))
        aid = cur.lastrowid
        con.execute("INSERT INTO ArtifactProperty(artifact_id, name, is_custom_property, "
                    "string_value) VALUES (?, 'url', 0, ?)", (aid, evil))
        con.execute("INSERT INTO Event(artifact_id, execution_id, type) VALUES (?,?,3)",
                    (aid, xid))
        con.commit()
        con.close()
        start = os.path.join(tmp, "data", "model-B.ckpt")
        g, nodes, edges = graph_json(start, "--up", db=db)
        names = {n["id"]: n for n in g["nodes"]}
        check(names[f"a{aid}"]["path"] == evil, "JSON: a hostile path comes back verbatim")
        rc, out, err = run("lineage", start, "--up", "--dot", db=db)
        check(rc == 0, f"--dot: exit 0 ({err})")
        try:
            dn, de, labels = parse_dot(out)
        except (AssertionError, ValueError, IndexError) as e:
            check(False, f"--dot output parses as DOT: {e}")
            return
        check(dn == {f"{k}{i}" for k, i in nodes}, "--dot: the same nodes as --json")
        check(de == {(f"{a[0]}{a[1]}", f"{b[0]}{b[1]}") for a, b, _ in edges},
              "--dot: the same edges as --json")
        lab = labels.get(f"a{aid}", "")
        check('evil \\"q\\" \\\\N \\\\l {x} ; -> ' in lab and "\n" not in lab,
              f"--dot: quotes and backslashes escaped, newline dropped: {lab!r}")
        hostile = [v for v in labels.values() if HOSTILE in v]
        check(len(hostile) == 1, "--dot: the SQL-hostile path appears verbatim in a label")
        if shutil.which("dot"):
            p = subprocess.run(["dot", "-Tsvg"], input=out.encode(), capture_output=True)
            check(p.returncode == 0, f"graphviz renders it ({p.stderr.decode()})")


def case_export():
    with tempfile.TemporaryDirectory() as tmp:
        out_file = os.path.join(tmp, "a.json")
        for run_uuid in [A, B]:
            rc, _, err = run("export", run_uuid[:8], "--format", "cmf-json", "-o", out_file)
            check(rc == 0 and err == "", f"export {run_uuid}: exit 0 ({err})")
            with open(out_file) as f:
                doc = json.load(f)
            rc, out, _ = run("export", run_uuid, "--format", "cmf-json")
            check(rc == 0 and json.loads(out) == doc, "export to stdout equals -o FILE")
            check(list(doc) == ["Pipeline"] and len(doc["Pipeline"]) == 1, "one Pipeline")
            p = doc["Pipeline"][0]
            check(p["name"] == "cairn-test" and p["type"] == "Parent_Context",
                  "the pipeline is the Parent_Context")
            (rid,), = q("SELECT id FROM cairn_run WHERE uuid=?", run_uuid)
            want_execs = {x for (x,) in q("SELECT execution_id FROM cairn_execution "
                                          "WHERE run_id=?", rid)}
            want_arts = {a for (a,) in q("SELECT artifact_id FROM cairn_artifact "
                                         "WHERE run_id=?", rid)}
            got_execs, got_arts, got_events = set(), set(), set()
            for st in p["stages"]:
                check(st["type"] in ("Pipeline_Stage", "cairn_Run"), f"stage type {st['type']}")
                for k in ["name", "id", "properties", "custom_properties", "executions"]:
                    check(k in st, f"stage has '{k}'")
                for ex in st["executions"]:
                    for k in ["id", "name", "type", "properties", "custom_properties", "events"]:
                        check(k in ex, f"execution has '{k}'")
                    got_execs.add(ex["id"])
                    if st["type"] == "Pipeline_Stage":
                        check(st["name"].endswith("/" + ex["properties"]["Context_Type"]),
                              "an execution's Context_Type is its stage")
                        check(ex["properties"]["cairn_run"] == run_uuid, "execution's run")
                    for ev in ex["events"]:
                        a = ev["artifact"]
                        for k in ["name", "uri", "type", "properties", "custom_properties"]:
                            check(k in a, f"artifact has '{k}'")
                        got_arts.add(a["id"])
                        got_events.add((a["id"], ex["id"], ev["type"]))
            want_events = set()
            for x in got_execs:
                want_events |= set(q("SELECT artifact_id, execution_id, type FROM Event "
                                     "WHERE execution_id=?", x))
            (rx,), = q("SELECT execution_id FROM cairn_run WHERE id=?", rid)
            check(want_execs <= got_execs and got_execs <= want_execs | {rx},
                  f"export of {run_uuid[:8]}: every execution of the run, and only those")
            check(want_arts == got_arts, f"export of {run_uuid[:8]}: every artifact of the run")
            check(got_events == want_events, "every event with its INPUT(3)/OUTPUT(4) type")
            names = {ev["artifact"]["properties"].get("url") for st in p["stages"]
                     for ex in st["executions"] for ev in ex["events"]}
            check(os.path.join(DATA, HOSTILE) in names, "the hostile file name verbatim")
            # The model is OUTPUT of A's training, INPUT of B's.
            model_a = artifact_at(os.path.join(DATA, "model-A.ckpt"))
            types = {t for a, _, t in got_events if a == model_a}
            check(types == ({OUTPUT} if run_uuid == A else {INPUT}),
                  f"model-A is {'OUTPUT' if run_uuid == A else 'INPUT'} in run {run_uuid[:8]}")
        # An unwritable -o: exit 1, nothing left behind.
        rc, _, err = run("export", A, "--format", "cmf-json", "-o",
                         os.path.join(tmp, "no", "dir.json"))
        check(rc == 1 and "cairn export: " in err, f"unwritable -o: exit 1 ({err})")
        check(sorted(os.listdir(tmp)) == ["a.json"], "no temporary file left behind")
    # A database that lost a table: the message names the statement's error
    # (it read "prepare: not an error" when a later statement prepared).
    for table in ["ArtifactProperty", "Context"]:
        with tempfile.TemporaryDirectory() as tmp:
            db, _ = copy_fixture(tmp)
            con = sqlite3.connect(db)
            con.execute(f"DROP TABLE {table}")
            con.commit()
            con.close()
            rc, out, err = run("export", A, "--format", "cmf-json", db=db)
            check(rc == 1 and f"no such table: {table}" in err and "not an error" not in err,
                  f"export without {table}: exit 1 naming it ({err.strip()})")


def case_verify():
    with tempfile.TemporaryDirectory() as tmp:
        db, data = copy_fixture(tmp)
        shard0 = os.path.join(data, "shard-0.bin")
        aid0 = artifact_at(shard0, db=db)
        rc, out, err = run("verify", shard0, db=db)
        check(rc == 0, f"verify shard-0: exit 0 ({out}{err})")
        check(out.startswith(f"OK {shard0}: matches artifact {aid0} logged by run "),
              f"verify shard-0: OK line ({out.strip()})")
        check(A in out and B in out and "Dataset" in out and "output" in out,
              "verify names the runs, the kind and the role")
        check(sha256_file(shard0) in out, "verify prints the hash (sha256 for one leaf)")
        # The fixture's own file, by relative path, against the fixture DB.
        rc, out, _ = run("verify", os.path.relpath(os.path.join(DATA, "shard-0.bin")))
        check(rc == 0 and out.startswith("OK "), "verify by a relative path")
        # The hostile name.
        hostile = os.path.join(data, HOSTILE)
        rc, out, _ = run("verify", hostile, db=db)
        check(rc == 0 and out.startswith(f"OK {hostile}: matches artifact"),
              f"verify of the hostile file name, verbatim ({out.strip()})")
        # A changed file: MISMATCH with both hashes.
        shard1 = os.path.join(data, "shard-1.bin")
        logged = sha256_file(shard1)
        with open(shard1, "r+b") as f:
            f.seek(10)
            f.write(b"\xff\x00changed")
        now = sha256_file(shard1)
        rc, out, _ = run("verify", shard1, db=db)
        check(rc == 1, f"verify of a changed file: exit 1 (got {rc})")
        check(out.startswith(f"MISMATCH {shard1}: logged hash {logged}, file now hashes to {now}"),
              f"MISMATCH line ({out.strip()})")
        rc, out, _ = run("verify", shard1, "--json", db=db)
        j = json.loads(out)
        check(rc == 1 and j["status"] == "mismatch" and j["file_hash"] == now and
              j["artifacts"][0]["logged_hash"] == logged, "verify --json of a mismatch")
        # By hash: every artifact with it, re-verified at its recorded path.
        rc, out, _ = run("verify", logged.split(":")[1][:12], db=db)
        check(rc == 1 and out.startswith(f"MISMATCH {shard1}: artifact"),
              f"verify by hash prefix finds the changed file ({out.strip()})")
        h0 = sha256_file(shard0)
        rc, out, _ = run("verify", h0, db=db)
        check(rc == 0 and out.startswith(f"OK {shard0}: artifact {aid0}"), "verify by full hash")
        rc, out, _ = run("verify", h0, "--json", db=db)
        j = json.loads(out)
        check(rc == 0 and j["status"] == "ok" and j["artifacts"][0]["status"] == "ok" and
              {r["run"] for r in j["artifacts"][0]["runs"]} == {A, B}, "verify HASH --json")
        os.remove(shard0)
        rc, out, _ = run("verify", h0, db=db)
        check(rc == 1 and out.startswith(f"MISSING {shard0}"), f"a removed file ({out.strip()})")
        rc, out, _ = run("verify", shard0, db=db)
        check(rc == 1 and out.startswith(f"MISSING {shard0}"), "a removed path: MISSING")
        # A file nobody logged.
        other = os.path.join(tmp, "other.bin")
        with open(other, "wb") as f:
            f.write(b"never logged\n")
        rc, out, _ = run("verify", other, db=db)
        check(rc == 1 and out.startswith(f"NOT LOGGED {other}"), f"not logged ({out.strip()})")
        # The same content copied elsewhere is still the logged artifact.
        cp = os.path.join(tmp, "raw-copy.csv")
        shutil.copy(os.path.join(data, "raw.csv"), cp)
        rc, out, _ = run("verify", cp, db=db)
        check(rc == 0 and "logged at another path" in out, "same content at another path: OK")
        # A dataslice hash: listed, skipped (its members are files).
        (sl,), = q("SELECT uri FROM Artifact WHERE uri LIKE 'cairn-dataslice%'", db=db)
        rc, out, _ = run("verify", sl, db=db)
        check(rc == 0 and out.startswith("SKIPPED train-split"), f"a dataslice ({out.strip()})")
    # The fixture itself is untouched.
    check(os.path.exists(os.path.join(DATA, "shard-0.bin")), "fixture files untouched")


def case_scale():
    """100k artifacts in chains of 10 (one execution per link, two inputs):
    the ancestors of one artifact equal the independent walk, quickly."""
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "big.db")
        src = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
        con = sqlite3.connect(db)
        src.backup(con)
        src.close()
        (tid,), = con.execute("SELECT id FROM Type WHERE name='Dataset'").fetchall()
        (xtid,), = con.execute("SELECT id FROM Type WHERE name='train-epoch'").fetchall()
        a0 = con.execute("SELECT max(id) FROM Artifact").fetchone()[0] + 1
        x0 = con.execute("SELECT max(id) FROM Execution").fetchone()[0] + 1
        n_chains, length = 10000, 10
        arts, execs, events = [], [], []
        for c in range(n_chains):
            for k in range(length):
                a = a0 + c * length + k
                arts.append((a, tid, f"cairn-merkle-sha256-v1:{a:064x}", f"/syn/{a}:{a}"))
                if k:
                    x = x0 + c * length + k
                    execs.append((x, xtid, f"syn:{x}"))
                    events.append((a - 1, x, INPUT))
                    # A second input shared across chains: the other chain's start.
                    events.append((a0 + ((c + 1) % n_chains) * length, x, INPUT))
                    events.append((a, x, OUTPUT))
        con.executemany("INSERT INTO Artifact(id, type_id, uri, state, name) VALUES (?,?,?,2,?)",
                        arts)
        con.executemany("INSERT INTO Execution(id, type_id, name) VALUES (?,?,?)", execs)
        con.executemany("INSERT INTO Event(artifact_id, execution_id, type) VALUES (?,?,?)",
                        events)
        con.commit()
        con.close()
        (count,), = q("SELECT count(*) FROM Artifact", db=db)
        check(count >= 100000, f"{count} artifacts")
        last = a0 + 5000 * length + length - 1
        # The independent walk, with indexed queries (closure() scans Event).
        con = sqlite3.connect(db)
        seen, edges, todo = {("a", last)}, set(), [("a", last)]
        while todo:
            kind, i = todo.pop()
            if kind == "a":
                rows = con.execute("SELECT execution_id FROM Event WHERE artifact_id=? AND "
                                   "type=4", (i,)).fetchall()
                nxt = [(("x", x), (("x", x), ("a", i), "OUTPUT")) for (x,) in rows]
            else:
                rows = con.execute("SELECT artifact_id FROM Event WHERE execution_id=? AND "
                                   "type=3", (i,)).fetchall()
                nxt = [(("a", a), (("a", a), ("x", i), "INPUT")) for (a,) in rows]
            for node, e in nxt:
                edges.add(e)
                if node not in seen:
                    seen.add(node)
                    todo.append(node)
        con.close()
        best = None
        for _ in range(3):
            t0 = time.perf_counter()
            _, nodes, got_edges = graph_json(f"artifact:{last}", "--up", db=db)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        check(nodes == seen and got_edges == edges,
              f"100k artifacts: ancestors equal the independent walk ({len(nodes)} nodes)")
        print(f"ancestors of one artifact among {count}: {len(nodes)} nodes, "
              f"whole command {best * 1000:.1f} ms (process start included)")
        check(best < 1.0, f"the whole command takes well under a second ({best:.3f} s)")


CASES = {"help": case_help, "errors": case_errors, "up": case_up, "down": case_down,
         "formats": case_formats, "export": case_export, "verify": case_verify,
         "scale": case_scale}

if __name__ == "__main__":
    CASES[CASE]()
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print(f"{CASE}: ok")
