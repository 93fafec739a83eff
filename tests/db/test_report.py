#!/usr/bin/env python3
"""test_report.py CASE CAIRN FIXTURE_DIR OUT_DIR — tests of `cairn report`.

The fixture (tests/db/make_fixture.sh) holds real 4-rank runs A and B merged
into fixture.db; rank 2 is a straggler, and two metrics have hostile names.
The report is checked with independent readers: Python's html.parser for the
structure, the sqlite3 module for what should be in it, and headless
Chromium for what a browser makes of it (a screenshot, and the DOM after
parsing: no script element, the hostile metric name as text).

Cases: self_contained, content, options, help_and_errors, atomic, chromium.
Exit 0 pass, 1 fail, 77 skip (Chromium not installed: tools/bootstrap.sh
installs it).
"""
import html.parser
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import zlib

HOSTILE_HTML = "<script>alert(1)</script>"
HOSTILE_SQL = "x'); DROP TABLE Artifact;--"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}

FAILED = []


def check(cond, what):
    if not cond:
        FAILED.append(what)
        print("FAIL: " + what, file=sys.stderr)


def load_env(fixture):
    env = {}
    with open(os.path.join(fixture, "runs.env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v.strip("'")
    return env


def run(cmd, *args):
    return subprocess.run([cmd, *args], capture_output=True, text=True, timeout=120)


class Structure(html.parser.HTMLParser):
    """Balanced tags, every tag and attribute, and the text, as parsed."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.attrs, self.text = [], [], [], [], []
        self.svg_classes, self.h3_in_metrics, self.section = [], [], None
        self.in_h3 = False
        self.hm_rows = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id")
        if tag == "svg":
            self.svg_classes.append(a.get("class"))
        if tag == "g" and a.get("class") == "hm-row":
            self.hm_rows += 1
        if tag == "h3" and self.section == "metrics":
            self.in_h3 = True
            self.h3_in_metrics.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> closes <%s>" % (tag, self.stack[-1] if self.stack else ""))
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()
        if tag == "h3":
            self.in_h3 = False

    def handle_data(self, data):
        self.text.append(data)
        if self.in_h3:
            self.h3_in_metrics[-1] += data


def parse(text):
    p = Structure()
    p.feed(text)
    p.close()
    if p.stack:
        p.errors.append("unclosed: " + " ".join(p.stack))
    return p


def make_report(cairn, fixture, out, run_id, *extra):
    r = run(cairn, "report", run_id, "-o", out, "--db", os.path.join(fixture, "fixture.db"),
            *extra)
    check(r.returncode == 0, "report of %s exits 0 (got %d: %s)" % (run_id, r.returncode,
                                                                   r.stderr.strip()))
    return r


def db_metrics(fixture, uuid):
    db = sqlite3.connect(os.path.join(fixture, "fixture.db"))
    rows = db.execute("SELECT m.name FROM cairn_metric m JOIN cairn_run r ON r.id = m.run_id"
                      " WHERE r.uuid = ? ORDER BY m.name", (uuid,)).fetchall()
    db.close()
    return [r[0] for r in rows]


# ---------------------------------------------------------------------------


def case_self_contained(cairn, fixture, out, env):
    """Well-formed, no script, nothing external, CSP, hostile names inert."""
    path = os.path.join(out, "self-contained.html")
    make_report(cairn, fixture, path, env["UUID_A"])
    text = open(path, encoding="utf-8").read()  # strict: the report is valid UTF-8
    p = parse(text)
    check(not p.errors, "balanced tags: " + "; ".join(p.errors[:5]))
    check(text.startswith("<!DOCTYPE html>"), "starts with a doctype")
    check("script" not in p.tags, "no <script> element in the report")
    for bad in ("http://", "https://", "//cdn", "@import", "url(", "<iframe", "<object",
                "<embed", "<link", "<img"):
        check(bad not in text.lower(), "no %r in the report" % bad)
    check(not re.search(r"\bsrc\s*=", text, re.I), "no src= attribute")
    hrefs = [v for k, v in p.attrs if k == "href"]
    check(all(v and v.startswith("#") for v in hrefs),
          "every href is a fragment of the page itself: %r" % hrefs)
    check(not any(k.startswith("on") for k, _ in p.attrs), "no event-handler attribute")
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)"', text)
    check(csp is not None and "default-src 'none'" in csp.group(1)
          and "script-src" not in csp.group(1),
          "a Content-Security-Policy of default-src 'none' (no script source)")
    esc = "&lt;script&gt;alert(1)&lt;/script&gt;"
    check(esc in text, "the hostile metric name appears escaped")
    check("<script>alert(1)" not in text, "no raw <script>alert(1)")
    check(HOSTILE_HTML in "".join(p.text), "the hostile metric name is text once parsed")
    check("x&#39;); DROP TABLE Artifact;--" in text, "the SQL-hostile name appears, escaped")


def case_content(cairn, fixture, out, env):
    """Summary, one chart per metric, a heatmap row per rank, the lineage."""
    path = os.path.join(out, "report-A.html")
    make_report(cairn, fixture, path, env["UUID_A"])
    text = open(path, encoding="utf-8").read()
    p = parse(text)
    names = db_metrics(fixture, env["UUID_A"])
    check(len(names) == 4, "the fixture's run A has 4 metrics (got %d)" % len(names))
    check(p.svg_classes.count("chart") == len(names),
          "one chart per metric: %d charts, %d metrics" % (p.svg_classes.count("chart"),
                                                           len(names)))
    check(p.h3_in_metrics == names, "metric headings are the names, verbatim: %r" %
          p.h3_in_metrics)
    check(p.svg_classes.count("heatmap") == 1, "one heatmap")
    check(p.hm_rows == 4, "a heatmap row per rank (got %d)" % p.hm_rows)
    m = re.search(r'<p class="slowest">Slowest rank: (\d+)', text)
    check(m is not None and m.group(1) == "2",
          "the slowest rank named is the straggler, rank 2 (%s)" % (m and m.group(0)))
    check(p.svg_classes.count("lineage") == 1, "one lineage graph")
    lin = text[text.index('<svg class="lineage"'):]
    lin = lin[:lin.index("</svg>")]
    check("model-A.ckpt" in lin and "Model" in lin, "the lineage graph shows the model artifact")
    check("stage: prepare" in lin and "stage: train" in lin, "the lineage graph has both stages")
    check("prepare-shards" in lin and "train-epoch" in lin, "and the executions")
    check("edge-input" in lin and "edge-output" in lin, "with INPUT and OUTPUT edges")
    check(lin.count("stage: train") == 1, "one band per stage, not one per rank's context")
    body = "".join(p.text)
    for want in (env["UUID_A"], "cairn-test", "optimizer.lr", "0.001", "model.arch",
                 "resnet-test", "cmdline", "git.commit", "records dropped", "lineage-fixture"):
        check(want in body, "the summary shows %r" % want)
    # Run B continues from A's model: the model is an input there.
    pathb = os.path.join(out, "report-B.html")
    make_report(cairn, fixture, pathb, env["UUID_B"][:8])
    tb = open(pathb, encoding="utf-8").read()
    check(not parse(tb).errors, "report of run B (by UUID prefix) is well-formed")
    check("model-A.ckpt" in tb and "model-B.ckpt" in tb, "run B's lineage has both models")


def case_options(cairn, fixture, out, env):
    """--metrics selects and orders; --max-points buckets and keeps spikes."""
    path = os.path.join(out, "some.html")
    make_report(cairn, fixture, path, env["UUID_A"], "--metrics", "step_time_s,loss")
    p = parse(open(path, encoding="utf-8").read())
    check(p.h3_in_metrics == ["step_time_s", "loss"], "--metrics picks and orders: %r" %
          p.h3_in_metrics)
    r = run(cairn, "report", env["UUID_A"], "-o", path, "--db",
            os.path.join(fixture, "fixture.db"), "--metrics", "nope")
    check(r.returncode == 1 and r.stderr.startswith("cairn report: ") and "nope" in r.stderr,
          "an unknown metric is an error naming it (%d %r)" % (r.returncode, r.stderr))

    path = os.path.join(out, "bucketed.html")
    make_report(cairn, fixture, path, env["UUID_A"], "--metrics", "step_time_s",
                "--max-points", "20")
    text = open(path, encoding="utf-8").read()
    check("drawn as 20 buckets" in text, "a 200-step series is drawn as 20 buckets")
    chart = text[text.index('<svg class="chart"'):]
    chart = chart[:chart.index("</svg>")]
    mean = re.findall(r'stroke="#08519c" stroke-width="1.5" d="([^"]*)"', chart)
    pts = sum(len(re.findall(r"[ML]", d)) for d in mean)
    check(0 < pts <= 20, "at most 20 points on the mean line (got %d)" % pts)
    # Spikes stay: bucketing keeps the min of the minima and the max of the
    # maxima, so the band spans what it spans at full resolution (same y
    # axis, same top and bottom of the band).
    full = os.path.join(out, "full.html")
    make_report(cairn, fixture, full, env["UUID_A"], "--metrics", "step_time_s")
    ftext = open(full, encoding="utf-8").read()
    fchart = ftext[ftext.index('<svg class="chart"'):]
    fchart = fchart[:fchart.index("</svg>")]

    def axis_and_band(c):
        ticks = re.findall(r'text-anchor="end" fill="#333">([-0-9.e]+)</text>', c)
        ys = [float(y) for d in re.findall(r'fill="#9ecae1" fill-opacity[^>]* d="([^"]*)"', c)
              for y in re.findall(r"[ML][-0-9.]+ ([-0-9.]+)", d)]
        return ticks, (min(ys), max(ys)) if ys else None

    fa, ba = axis_and_band(fchart), axis_and_band(chart)
    check(fa[0] and fa == ba, "bucketed and full charts share the y axis and the band's "
          "extent (spikes kept): %r vs %r" % (fa, ba))
    r = run(cairn, "report", env["UUID_A"], "-o", path, "--db",
            os.path.join(fixture, "fixture.db"), "--max-points", "1")
    check(r.returncode == 2, "--max-points 1 is a usage error (got %d)" % r.returncode)


def case_help_and_errors(cairn, fixture, out, env):
    r = run(cairn, "report", "--help")
    check(r.returncode == 0 and r.stdout.startswith("usage: cairn report") and not r.stderr,
          "--help prints usage on stdout, exit 0")
    r = run(cairn, "--help")
    check("report" in r.stdout, "`cairn --help` lists report")
    db = os.path.join(fixture, "fixture.db")
    missing = os.path.join(out, "missing.html")
    r = run(cairn, "report", "00000000-0000-4000-8000-000000000000", "-o", missing, "--db", db)
    check(r.returncode == 1, "a missing run exits 1 (got %d)" % r.returncode)
    check(r.stderr.startswith("cairn report: "), "errors on stderr: %r" % r.stderr)
    check(not os.path.exists(missing), "no file for a missing run")
    r = run(cairn, "report", env["UUID_A"], "--db", db)
    check(r.returncode == 2 and r.stderr.startswith("cairn report: ") and "-o" in r.stderr,
          "no -o is a usage error, exit 2 (%d %r)" % (r.returncode, r.stderr))
    r = run(cairn, "report", "-o", missing, "--db", db)
    check(r.returncode == 2, "no run is a usage error")
    r = run(cairn, "report", env["UUID_A"], "-o", missing, "--db", db, "--bogus")
    check(r.returncode == 2 and "--bogus" in r.stderr, "an unknown option is a usage error")
    r = run(cairn, "report", env["UUID_A"], "-o", missing, "--db",
            os.path.join(out, "no-such.db"))
    check(r.returncode == 1 and r.stderr.startswith("cairn report: "),
          "a missing database exits 1 (got %d)" % r.returncode)
    r = run(cairn, "report", env["UUID_A"], "-o", os.path.join(out, "no-dir", "r.html"),
            "--db", db)
    check(r.returncode == 1 and "no-dir" in r.stderr,
          "an unwritable output exits 1 naming it (%d %r)" % (r.returncode, r.stderr))


def case_atomic(cairn, fixture, out, env):
    """The report replaces the file in one rename; no temporary is left."""
    d = tempfile.mkdtemp(dir=out)
    path = os.path.join(d, "r.html")
    with open(path, "w") as f:
        f.write("old")
    ino = os.stat(path).st_ino
    make_report(cairn, fixture, path, env["UUID_A"])
    check(open(path, encoding="utf-8").read().endswith("</html>\n"), "the report is complete")
    check(os.stat(path).st_ino != ino, "the old file was replaced by a rename, not rewritten")
    check(os.listdir(d) == ["r.html"], "no temporary left: %r" % os.listdir(d))
    check(os.stat(path).st_mode & 0o044, "the report is readable like any file")
    shutil.rmtree(d)


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def png_info(path):
    """(width, height, distinct bytes in the decompressed image)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    w, h = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    return w, h, len(set(raw))


def chromium(browser, profile, *args):
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", "--user-data-dir=" + profile, *args],
                          capture_output=True, timeout=180)


def dom_problems(dom):
    """What a browser's DOM says against the page: script elements, and the
    hostile metric name missing as text."""
    p = parse(dom)
    out = []
    if "script" in p.tags:
        out.append("a script element in the DOM")
    if HOSTILE_HTML not in "".join(p.text):
        out.append("the hostile metric name is not text in the DOM")
    return out


def case_chromium(cairn, fixture, out, env):
    browser = find_chromium()
    if not browser:
        print("SKIP: no chromium (tools/bootstrap.sh installs the Debian package chromium)")
        sys.exit(77)
    path = os.path.join(out, "report-A.html")
    make_report(cairn, fixture, path, env["UUID_A"])
    profile = tempfile.mkdtemp(dir=out)
    png = os.path.join(out, "report-A.png")
    if os.path.exists(png):
        os.unlink(png)
    r = chromium(browser, profile, "--screenshot=" + png, "--window-size=1400,3000",
                 "file://" + os.path.abspath(path))
    check(r.returncode == 0, "chromium --screenshot exits 0 (%d: %s)" %
          (r.returncode, r.stderr.decode(errors="replace")[-500:]))
    info = png_info(png) if os.path.exists(png) else None
    check(info is not None, "the screenshot is a PNG")
    if info:
        size = os.path.getsize(png)
        print("screenshot %s: %dx%d, %d bytes" % (png, info[0], info[1], size))
        check((info[0], info[1]) == (1400, 3000), "the screenshot is 1400x3000")
        check(size > 30000, "the screenshot is not trivial (%d bytes)" % size)
        check(info[2] > 50, "the screenshot is not blank (%d distinct bytes)" % info[2])

    r = chromium(browser, profile, "--dump-dom", "file://" + os.path.abspath(path))
    dom = r.stdout.decode("utf-8", errors="replace")
    check(r.returncode == 0 and "</html>" in dom, "chromium --dump-dom gives the DOM")
    probs = dom_problems(dom)
    check(not probs, "the DOM Chromium built: " + "; ".join(probs))
    check('class="heatmap"' in dom and 'class="lineage"' in dom, "the SVG is in the DOM")

    # The check above would catch an injection: the same page with the name
    # written raw makes a script element in Chromium's DOM.
    bad = os.path.join(out, "injected.html")
    text = open(path, encoding="utf-8").read()
    with open(bad, "w", encoding="utf-8") as f:
        f.write(text.replace("&lt;script&gt;alert(1)&lt;/script&gt;", HOSTILE_HTML, 1))
    r = chromium(browser, profile, "--dump-dom", "file://" + os.path.abspath(bad))
    probs = dom_problems(r.stdout.decode("utf-8", errors="replace"))
    check("a script element in the DOM" in probs,
          "an unescaped name would have been detected (%r)" % probs)
    shutil.rmtree(profile, ignore_errors=True)


CASES = {
    "self_contained": case_self_contained,
    "content": case_content,
    "options": case_options,
    "help_and_errors": case_help_and_errors,
    "atomic": case_atomic,
    "chromium": case_chromium,
}


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in CASES:
        print(__doc__, file=sys.stderr)
        return 2
    case, cairn, fixture, out = sys.argv[1:]
    out = os.path.join(out, case)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    CASES[case](cairn, fixture, out, load_env(fixture))
    if FAILED:
        print("%d check(s) failed" % len(FAILED), file=sys.stderr)
        return 1
    print("ok: " + case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
