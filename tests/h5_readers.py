#!/usr/bin/python3
"""h5_readers.py -- independent readers of cairn's HDF5 run file (format v2).

Run with Debian's /usr/bin/python3 (python3-h5py, serial HDF5) and
HDF5_PLUGIN_PATH pointing at the directory holding cairn's zstd plugin.

  h5_readers.py h5py FILE              values, filters and attributes of the
                                       synthetic run of tests/h5_testdata.h
  h5_readers.py h5dump FILE FORMAT_MD H5DUMP
                                       the objects h5dump lists equal the
                                       layout documented in docs/format.md
  h5_readers.py compare FILE_A FILE_B  same objects, attributes and values
                                       (creation_time_ns aside)

Exit status: 0 pass, 1 fail, 77 skipped (a reader is not installed).
"""
import math
import os
import re
import subprocess
import sys

SKIP = 77


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def need_h5py():
    try:
        import h5py  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        print("SKIP: h5py is not available in " + sys.executable)
        sys.exit(SKIP)


# ---- the synthetic run, as tests/h5_testdata.h defines it ----------------

W = 5
STEPS = 40
NAMES = [b"acc/top1", b"grad norm\x01\xfe", b"loss", b"nan_metric"]


def sample(m, s, rank):
    """(value, samples) or None, exactly as td_sample() in h5_testdata.h."""
    if m == 0:
        if s >= STEPS or (s + rank) % 7 == 0:
            return None
        return (((s * 5 + rank) % 64) / 64.0, 1)
    if m == 1:
        if rank % 2:
            return None
        if s == 1000 + rank:
            return (-1.5 * rank, 1)
        if s % 2 or s >= STEPS:
            return None
        return (1.0 / (1.0 + s) + rank * 1e-3, 1)
    if m == 2:
        if s >= STEPS:
            return None
        return (2.0 * math.exp(-s / 25.0) + 0.01 * math.sin(12.9898 * s + 78.233 * rank), 4)
    if s >= STEPS or rank != 1 or s > 3:
        return None
    return (float("nan") if s == 3 else float(s), 1)


def steps_of(m):
    out = set()
    for r in range(W):
        for s in list(range(STEPS)) + [1000 + r]:
            if sample(m, s, r) is not None:
                out.add(s)
    return sorted(out)


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def check_h5py(path):
    need_h5py()
    import h5py
    import numpy as np

    f = h5py.File(path, "r")
    a = f.attrs
    if int(a["cairn_format_version"]) != 2:
        fail("cairn_format_version")
    if a["run_id"] != b"10171e25-2c33-3a41-484f-565d646b7279":
        fail("run_id %r" % a["run_id"])
    for k, want in (("nranks", W), ("naggregators", 1), ("aggregator_group", 0),
                    ("nranks_in_file", W), ("detail", 1),
                    ("creation_time_ns", 1700000000123456789)):
        if int(a[k]) != want:
            fail("attribute %s = %r, want %r" % (k, a[k], want))
    if list(f["ranks/rank"][:]) != list(range(W)):
        fail("ranks/rank")
    if [h for h in f["ranks/hostname"][:]] != [b"node%02d" % (r // 2) for r in range(W)]:
        fail("ranks/hostname %r" % f["ranks/hostname"][:])
    names = list(f["names"][:])
    if names[:4] != NAMES:
        fail("names %r" % names)
    # metrics: one group per metric, numbered in name order
    if sorted(f["metrics"].keys(), key=int) != [str(i) for i in range(4)]:
        fail("metric groups %r" % list(f["metrics"].keys()))
    for m in range(4):
        g = f["metrics/%d" % m]
        if g.attrs["name"] != NAMES[m] or int(g.attrs["name_index"]) != m:
            fail("metric %d name %r" % (m, g.attrs["name"]))
        steps = steps_of(m)
        if list(g["step"][:]) != steps:
            fail("metric %d steps" % m)
        vals = g["values"][:].astype(np.float64)
        samp = g["samples"][:]
        if vals.shape != (len(steps), W):
            fail("metric %d values shape %r" % (m, vals.shape))
        # float32-exact metrics are stored as float32 (lossless)
        want_dtype = np.float32 if m in (0, 3) else np.float64
        if g["values"].dtype != want_dtype:
            fail("metric %d values dtype %r" % (m, g["values"].dtype))
        missing = 0
        for i, s in enumerate(steps):
            cnt = 0
            tot = 0.0
            sq = 0.0
            lo = hi = None
            rlo = rhi = -1
            for r in range(W):
                x = sample(m, s, r)
                if x is None:
                    if not math.isnan(vals[i, r]) or samp[i, r] != 0:
                        fail("metric %d step %d rank %d should be missing" % (m, s, r))
                    missing += 1
                    continue
                v, k = x
                if not same(float(vals[i, r]), v) or samp[i, r] != k:
                    fail("metric %d step %d rank %d: %r/%d, want %r/%d"
                         % (m, s, r, vals[i, r], samp[i, r], v, k))
                cnt += 1
                tot += v
                sq += v * v
                if math.isnan(v):
                    continue
                if lo is None or v < lo:
                    lo, rlo = v, r
                if hi is None or v > hi:
                    hi, rhi = v, r
            st = [int(g["count"][i]), float(g["sum"][i]), float(g["sumsq"][i]),
                  float(g["min"][i]), float(g["max"][i]), int(g["rank_min"][i]),
                  int(g["rank_max"][i])]
            want = [cnt, tot, sq, float("nan") if lo is None else lo,
                    float("nan") if hi is None else hi, rlo, rhi]
            if not all(same(float(x), float(y)) for x, y in zip(st, want)):
                fail("metric %d step %d statistics %r, want %r" % (m, s, st, want))
        if int(g.attrs["missing"]) != missing:
            fail("metric %d missing %r, want %d" % (m, g.attrs["missing"], missing))
        # shuffle (2) then zstd (32015) on every chunked array
        for d in ("values", "samples", "step", "sum"):
            pl = g[d].id.get_create_plist()
            ids = [pl.get_filter(i)[0] for i in range(pl.get_nfilters())]
            if ids != [2, 32015]:
                fail("metric %d %s filters %r" % (m, d, ids))
    # step markers
    t = f["steps/time_ns"][:]
    if list(f["steps/step"][:]) != list(range(STEPS)) or t.shape != (STEPS, W):
        fail("steps")
    for i in range(STEPS):
        for r in range(W):
            want = 0 if (r == 2 and i == 5) else 1700000000000000000 + i * 1000000 + r * 1000
            if int(t[i, r]) != want:
                fail("steps/time_ns[%d,%d]" % (i, r))
    # tables
    p = f["params"][:]
    rows = [(int(x["rank"]), names[x["key"]], int(x["type"]), int(x["i64"]), float(x["f64"]),
             x["str"]) for x in p]
    want = []
    for r in range(W):
        if r == 0:
            want.append((0, b"lr", 2, 0, 1e-3, b""))
        want += [(r, b"lr", 2, 0, 3e-4, b""), (r, b"batch", 1, 32 + r, 0.0, b""),
                 (r, b"model", 3, 0, 0.0, b"resnet-50"), (r, b"amp", 4, 1, 0.0, b"")]
    if rows != want:
        fail("params %r" % rows[:6])
    kv = [(int(x["rank"]), names[x["key"]], x["value"]) for x in f["run"][:]]
    if kv != [(0, b"dataset", b"imagenet/train"), (W - 1, b"note", b"straggler\ttab")]:
        fail("run %r" % kv)
    art = f["lineage/artifacts"][:]
    if [int(x["rank"]) for x in art] != [0, 2, 4] or art[0]["uri"] != b"file:///data/shard" \
            or art[0]["properties"] != b'{"rows": 1000, "split": "train"}':
        fail("lineage/artifacts %r" % art)
    exe = f["lineage/executions"]
    if len(exe) != 1 or exe[0]["name"] != b"train" or exe[0]["type"] != b"training" \
            or exe[0]["command"] != b"python train.py --epochs 3":
        fail("lineage/executions")
    if len(f["lineage/events"]) != 3 or len(f["lineage/contexts"]) != 1:
        fail("lineage/events or contexts")
    acc = f["accounting"]
    if acc.attrs["channels"] != b"metrics,control":
        fail("accounting channels")
    for r in range(W):
        got = [int(acc[k][r, 0]) for k in ("logged", "stored", "dropped", "rejected")]
        if got != [1000 + r, 990 + r, 10, r % 2] or int(acc["reported"][r]) != 1:
            fail("accounting rank %d: %r" % (r, got))
        if [int(acc[k][r, 1]) for k in ("logged", "stored", "dropped", "rejected")] != [5, 5, 0, 0]:
            fail("accounting control rank %d" % r)
    print("h5py (HDF5 %s) read every part of %s with the expected values"
          % (h5py.version.hdf5_version, path))


# ---- h5dump against docs/format.md ---------------------------------------

def documented_layout(md):
    """Paths listed in the layout block of the run-file section."""
    text = open(md, encoding="utf-8").read()
    sec = text.find("## Run file (HDF5), format v2")
    if sec < 0:
        fail("docs/format.md has no '## Run file (HDF5), format v2' section")
    block = re.search(r"<!-- h5-layout -->\s*```text\n(.*?)```", text[sec:], re.S)
    if not block:
        fail("the run-file section has no '<!-- h5-layout -->' text block")
    out = {}
    for line in block.group(1).splitlines():
        tok = line.split()
        if tok and tok[0].startswith("/"):
            out[tok[0]] = tok[1] if len(tok) > 1 else ""
    return out


def dumped_layout(h5dump, path):
    res = subprocess.run([h5dump, "-H", path], capture_output=True, text=True)
    if res.returncode != 0:
        fail("h5dump -H failed: " + res.stderr)
    named = re.compile(r'^\s*(GROUP|DATASET|ATTRIBUTE) "([^"]*)" \{')
    stack, out = [], {}
    for line in res.stdout.splitlines():
        net = line.count("{") - line.count("}")
        m = named.match(line)
        if m and net > 0:
            kind, name = m.group(1), m.group(2)
            objs = [n for k, n in stack if k in ("GROUP", "DATASET") and n != "/"]
            parent = "/" + "/".join(objs)
            if kind == "ATTRIBUTE":
                key = parent + "@" + name
                kind_doc = "attribute"
            else:
                key = (parent.rstrip("/") + "/" + name) if name != "/" else "/"
                kind_doc = kind.lower()
            key = re.sub(r"/metrics/\d+", "/metrics/<i>", key)
            out[key] = kind_doc
            stack.append((kind, name))
            for _ in range(net - 1):
                stack.append(("", ""))
        elif net > 0:
            for _ in range(net):
                stack.append(("", ""))
        else:
            for _ in range(-net):
                stack.pop()
    return out


def check_h5dump(path, md, h5dump):
    if not h5dump or not os.path.exists(h5dump):
        print("SKIP: h5dump is not installed")
        sys.exit(SKIP)
    doc = documented_layout(md)
    got = dumped_layout(h5dump, path)
    if set(doc) != set(got):
        fail("documented but not in the file: %r; in the file but not documented: %r"
             % (sorted(set(doc) - set(got)), sorted(set(got) - set(doc))))
    for k in doc:
        if doc[k] != got[k]:
            fail("%s is a %s in the file but documented as %s" % (k, got[k], doc[k]))
    # and h5dump decodes zstd chunks through the plugin
    res = subprocess.run([h5dump, "-d", "/metrics/2/step", path], capture_output=True, text=True)
    if res.returncode != 0 or "(0): 0, 1, 2, 3" not in res.stdout:
        fail("h5dump could not read a zstd-filtered dataset: " + res.stdout[-400:] +
             res.stderr[-400:])
    print("h5dump lists exactly the %d documented objects and attributes, and reads zstd data"
          % len(doc))


# ---- two files with equal content ----------------------------------------

def check_compare(pa, pb):
    need_h5py()
    import h5py
    import numpy as np

    fa, fb = h5py.File(pa, "r"), h5py.File(pb, "r")
    objs = {}

    def attrs_equal(name, x, y):
        ka = set(x.attrs.keys()) - {"creation_time_ns"}
        kb = set(y.attrs.keys()) - {"creation_time_ns"}
        if ka != kb:
            fail("%s: attributes %r vs %r" % (name, sorted(ka), sorted(kb)))
        for k in ka:
            if not np.array_equal(np.asarray(x.attrs[k]), np.asarray(y.attrs[k])):
                fail("%s@%s: %r vs %r" % (name, k, x.attrs[k], y.attrs[k]))

    def visit(name, obj):
        objs[name] = obj

    fa.visititems(visit)
    names_b = []
    fb.visititems(lambda n, o: names_b.append(n))
    if sorted(objs) != sorted(names_b):
        fail("objects differ: %r" % sorted(set(objs) ^ set(names_b)))
    attrs_equal("/", fa, fb)
    for name, x in objs.items():
        y = fb[name]
        attrs_equal(name, x, y)
        if isinstance(x, h5py.Dataset):
            if x.dtype != y.dtype or x.shape != y.shape:
                fail("%s: %r%r vs %r%r" % (name, x.dtype, x.shape, y.dtype, y.shape))
            u, v = x[()], y[()]
            if x.dtype.kind == "f":
                ok = np.array_equal(u, v, equal_nan=True)
            elif x.dtype.names or x.dtype.kind == "O":
                ok = [repr(r) for r in np.asarray(u).tolist()] == \
                     [repr(r) for r in np.asarray(v).tolist()]
            else:
                ok = np.array_equal(u, v)
            if not ok:
                fail("%s: values differ" % name)
    print("%s and %s hold the same %d objects, attributes and values"
          % (pa, pb, len(objs)))


def main(argv):
    if len(argv) >= 3 and argv[1] == "h5py":
        check_h5py(argv[2])
    elif len(argv) >= 5 and argv[1] == "h5dump":
        check_h5dump(argv[2], argv[3], argv[4])
    elif len(argv) >= 4 and argv[1] == "compare":
        check_compare(argv[2], argv[3])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
