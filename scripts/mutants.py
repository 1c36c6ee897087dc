#!/usr/bin/python3
"""Mutation testing of the Raft core (src/raft/*.c): `make mutants`.

Generates single-change mutants automatically, builds each (release flags,
no sanitizers), and runs, in order, the scenario tests (test_raft), the Raft
simulator (shoal-sim), the whole-node simulator's scenarios (shoal-nsim
--scenarios) and its seeds (shoal-nsim), stopping at the first failure. Every file of src/raft/ is linked into the node, so every
mutant also meets shoal-nsim. See docs/raft.md, "Mutation testing".

Mutation operators (one change per mutant):
  rel     < <= > >= == != : the boundary neighbour and the negation
  arith   `+ 1` / `- 1`: the sign flipped, or the term removed
  logic   && <-> ||
  minmax  `a < b ? x : y` (a relational choice): the arms swapped
  guard   `if (c) return ...;`: the guard removed (c still evaluated), or c negated
  assign  `x = e;` where x names an index/term/commit/match/next: e + 1, e - 1
Skipped: memory bookkeeping functions (SKIP_FUNCS), comments, strings, preprocessor lines, the bug side of
`#ifdef CANARY_*` blocks, and assert(...) calls.

A mutant's id is a hash of its file, function, the text of its line, the
operator and the replacement (and the occurrence among identical ones), so
it survives edits elsewhere in the file; tests/mutants/equivalent.txt lists
equivalent mutants by that id. A file moved to another folder keeps its old
path in the hash (ID_PATHS), so its ids survive the move too.

--asan builds the mutant and every other object with the Makefile's
ASan/UBSan flags (build/mutants/obj-asan; about five times slower, the
timeouts scaled): for mutants that read or write one element past an
array, which a release build seldom notices. A release survivor is rerun
under it; the result records "asan": true.

Results are cached in tests/mutants/results.jsonl (one JSON object a line,
keyed by id): a rerun skips mutants already killed or not built, and
re-runs survivors and timeouts only if the checkers (the simulators, the
scenario tests) or the seed counts changed. The report goes to
tests/mutants/report.md and report.json.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
OUT = os.path.join(ROOT, "tests", "mutants")
WORK = os.path.join(ROOT, "build", "mutants")
CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-g0", "-Wall", "-Wextra", "-Wshadow", "-Wformat=2",
          "-Wimplicit-fallthrough", "-Werror", "-O2"]
# --asan: the Makefile's test build (ASan/UBSan), for mutants that only read
# or write one element past an array: a release build seldom notices them
SAN = ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
       "-fno-omit-frame-pointer"]

# ---------------------------------------------------------------- generation

REL = {"<": ["<=", ">="], "<=": ["<", ">"], ">": [">=", "<="], ">=": [">", "<"],
       "==": ["!="], "!=": ["=="]}
# Memory bookkeeping (arenas, slabs, buffers), not Raft's logic: its mutants
# are crashes or leaks that say nothing about the simulators' power.
SKIP_FUNCS = re.compile(r"arena|slab|__alloc|_free|outbox|__msg$")
INDEXY = re.compile(r"(index|term|commit|match|next)", re.I)
# A mutant's id hashes its file's path (generate): the files moved into the
# layer folders keep the path they had before, so that the ids recorded in
# tests/mutants (results.jsonl, equivalent.txt, open.md, the canaries' headers)
# still name the same mutants. New path -> the path its ids are made with.
ID_PATHS = {
    "src/transport/client.c": "src/node/client.c",
    "src/transport/peer.c": "src/node/peer.c",
    "src/transport/proxy.c": "src/node/proxy.c",
    "src/shard/shard.c": "src/node/shard.c",
    "src/shard/shard_snap.c": "src/node/shard_snap.c",
    "src/shard/snapshot.c": "src/node/snapshot.c",
    "src/meta/meta.c": "src/node/meta.c",
    "src/meta/meta_cmd.c": "src/node/meta_cmd.c",
    "src/meta/map.c": "src/cluster/map.c",
    "src/router/slot.c": "src/cluster/slot.c",
    "src/router/gather.c": "src/node/gather.c",
    "src/router/cluster_cmds.c": "src/node/cluster_cmds.c",
}


def mask(text):
    """The text with comments, string/char literals and preprocessor lines
    blanked (newlines kept), and a per-character flag: mutable or not."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if out[k] != "\n":
                    out[k] = " "
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            for k in range(i + 1, min(j, n)):
                out[k] = " "
            i = j + 1
        else:
            i += 1
    masked = "".join(out)
    mutable = [True] * n
    # Preprocessor lines (with continuations) and the bug side of CANARY_ blocks.
    stack = []  # per #if: [is a CANARY_ test, this branch is the bug]
    pos = 0
    lines = masked.split("\n")
    cont = False
    for line in lines:
        end = pos + len(line)
        stripped = line.strip()
        skip = any(e[1] for e in stack)
        if cont or stripped.startswith("#"):
            m = re.match(r"#\s*(ifdef|ifndef|if|else|elif|endif)\b\s*(\w*)", stripped)
            if m and not cont:
                kind, name = m.group(1), m.group(2)
                if kind in ("ifdef", "ifndef", "if"):
                    canary = "CANARY_" in stripped
                    stack.append([canary, canary and kind == "ifdef"])
                elif kind in ("else", "elif") and stack and stack[-1][0]:
                    stack[-1][1] = not stack[-1][1]
                elif kind == "endif" and stack:
                    stack.pop()
            skip = True
            cont = line.rstrip().endswith("\\")
        if skip:
            for k in range(pos, end):
                mutable[k] = False
        pos = end + 1
    masked = "".join(ch if mutable[i] or ch == "\n" else " " for i, ch in enumerate(masked))
    # assert(...) calls, whole (they may span lines).
    for m in re.finditer(r"\b(_Static_assert|assert)\s*\(", masked):
        j = match_paren(masked, m.end() - 1)
        for k in range(m.start(), j + 1):
            mutable[k] = False
    masked = "".join(ch if mutable[i] or ch == "\n" else " " for i, ch in enumerate(masked))
    return masked



def match_paren(s, i):
    """Index of the bracket closing the one at s[i] (or len(s) - 1)."""
    opening, closing = s[i], {"(": ")", "[": "]", "{": "}"}[s[i]]
    depth = 0
    for j in range(i, len(s)):
        if s[j] == opening:
            depth += 1
        elif s[j] == closing:
            depth -= 1
            if depth == 0:
                return j
    return len(s) - 1


def functions(masked):
    """List of (start, end, name) of top-level brace blocks that are functions."""
    out = []
    depth = 0
    start = None
    for i, c in enumerate(masked):
        if c == "{":
            if depth == 0:
                head = masked[max(0, i - 400):i]
                names = re.findall(r"([A-Za-z_]\w*)\s*\([^;{}]*\)\s*$", head)
                start, name = i, (names[-1] if names else None)
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0 and start is not None:
                if name:
                    out.append((start, i, name))
                start = None
    return out


def expr_end(masked, i):
    """End (exclusive) of the expression starting at i: `;` `,` or an unmatched
    closing bracket at depth 0, or `:` of a ternary at depth 0."""
    depth = 0
    j = i
    while j < len(masked):
        c = masked[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return j
            depth -= 1
        elif c in ";," and depth == 0:
            return j
        j += 1
    return j


def expr_start(masked, i):
    """Start of the expression ending just before i (scanning back to `=`,
    `return`, `(`, `,` at depth 0)."""
    depth = 0
    j = i - 1
    while j >= 0:
        c = masked[j]
        if c in ")]":
            depth += 1
        elif c in "([":
            if depth == 0:
                return j + 1
            depth -= 1
        elif depth == 0 and (c in ";,{}" or (c == "=" and masked[j - 1] not in "=!<>"
                                             and masked[j + 1] != "=")):
            return j + 1
        elif depth == 0 and masked[max(0, j - 5):j + 1] == "return":
            return j + 1
        j -= 1
    return 0


def raw_mutants(text, masked):
    """(start, end, replacement, op) edits of the text."""
    out = []
    for m in re.finditer(r"(?<![<>=!\-])(<=|>=|==|!=|<|>)(?![<>=])", masked):
        for rep in REL[m.group(1)]:
            out.append((m.start(), m.end(), rep, "rel %s -> %s" % (m.group(1), rep)))
    for m in re.finditer(r"(?<=[\w)\]]) ([+-]) 1\b(?![.\w])", masked):
        sign = m.group(1)
        flip = "-" if sign == "+" else "+"
        out.append((m.start(1), m.start(1) + 1, flip, "arith %s 1 -> %s 1" % (sign, flip)))
        out.append((m.start(), m.end(), "", "arith %s 1 -> removed" % sign))
    for m in re.finditer(r"&&|\|\|", masked):
        rep = "||" if m.group(0) == "&&" else "&&"
        out.append((m.start(), m.end(), rep, "logic %s -> %s" % (m.group(0), rep)))
    for m in re.finditer(r"\?", masked):
        q = m.start()
        cs = expr_start(masked, q)
        cond = masked[cs:q]
        if not re.search(r"(?<![-<>])[<>]", cond):
            continue
        colon = expr_end_colon(masked, q + 1)
        if colon is None:
            continue
        ye = expr_end(masked, colon + 1)
        a, b = text[q + 1:colon], text[colon + 1:ye]
        rep = " %s : %s" % (b.strip(), a.strip())
        if b.endswith(" "):
            rep += " "
        out.append((q + 1, ye, rep, "minmax arms swapped"))
    for m in re.finditer(r"\bif\s*\(", masked):
        po = m.end() - 1
        pc = match_paren(masked, po)
        rest = masked[pc + 1:]
        g = re.match(r"\s*(\{\s*)?return\b[^;]*;(\s*\})?", rest)
        if not g or (g.group(1) is None) != (g.group(2) is None):
            continue
        stmt_end = pc + 1 + g.end()
        if re.match(r"\s*else\b", masked[stmt_end:]):
            continue
        if not all(ch == " " or ch == "\n" or not ch.isspace() for ch in masked[po:pc]):
            continue
        cond = text[po + 1:pc]
        out.append((m.start(), stmt_end, "(void)(%s);" % cond, "guard removed"))
        out.append((po + 1, pc, "!(%s)" % cond, "guard negated"))
    for m in re.finditer(r"([A-Za-z_][\w]*(?:(?:\.|->)[A-Za-z_]\w*|\[[^\]]*\])*)\s*=(?!=)",
                         masked):
        if m.start() > 0 and masked[m.start() - 1] in "=!<>+-*/%&|^.>":
            continue
        lhs = m.group(1)
        last = re.split(r"\.|->", re.sub(r"\[[^\]]*\]", "", lhs))[-1]
        if not INDEXY.search(last):
            continue
        before = masked[max(0, m.start() - 2):m.start()]
        if "*" in before:
            continue
        rs = m.end()
        while rs < len(masked) and masked[rs] == " ":
            rs += 1
        re_ = expr_end(masked, rs)
        rhs = text[rs:re_].rstrip()
        if not rhs or "{" in rhs or rhs == "NULL":
            continue
        for sign in "+-":
            out.append((rs, rs + len(rhs), "(%s) %s 1" % (rhs, sign),
                        "assign %s %s 1" % (last, sign)))
    return out


def expr_end_colon(masked, i):
    depth = 0
    for j in range(i, len(masked)):
        c = masked[j]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return None
            depth -= 1
        elif c == "?" and depth == 0:
            return None
        elif c == ":" and depth == 0:
            return j
        elif c == ";":
            return None
    return None


def generate(files):
    mutants = []
    for path in files:
        rel = os.path.relpath(path, ROOT)
        with open(path) as f:
            text = f.read()
        masked = mask(text)
        funcs = functions(masked)
        seen = {}
        for start, end, rep, op in sorted(raw_mutants(text, masked)):
            fn = next((name for s, e, name in funcs if s <= start <= e), None)
            if fn is None or SKIP_FUNCS.search(fn):
                continue
            line_no = text.count("\n", 0, start) + 1
            ls = text.rfind("\n", 0, start) + 1
            le = text.find("\n", start)
            line = text[ls:le].strip()
            key = (ID_PATHS.get(rel, rel), fn, " ".join(line.split()), op, rep)
            seen[key] = seen.get(key, 0) + 1
            ident = hashlib.sha1(repr(key + (seen[key],)).encode()).hexdigest()[:12]
            mutants.append({"id": ident, "file": rel, "function": fn, "line": line_no,
                            "text": line, "op": op, "start": start, "end": end, "rep": rep})
    return mutants


def apply(mutant):
    with open(os.path.join(ROOT, mutant["file"])) as f:
        text = f.read()
    return text[:mutant["start"]] + mutant["rep"] + text[mutant["end"]:]


# ---------------------------------------------------------------- building and running

def make_var(name):
    out = subprocess.run(["make", "--no-print-directory", "-s", "-f", "Makefile", "-f", "-",
                          "print-" + name], input="print-%%:\n\t@echo $($*)\n".replace("%%", "%"),
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


class Builder:
    """Objects of every source but the mutated file, built once; a mutant
    compiles one file and links test_raft, shoal-sim and shoal-nsim."""

    def __init__(self, asan=False):
        self.san = SAN if asan else []
        self.raft = make_var("RAFT_SRC")
        sim = make_var("SIM_ALL")
        nsim = make_var("NSIM_ALL")
        self.links = {"test_raft": ["tests/unit/test_raft.c"] + self.raft, "shoal-sim": sim,
                      "shoal-nsim": nsim}
        # the scenarios run the shoal-nsim binary (--scenarios): no link of their own
        self.stage_links = dict(self.links, **{"nsim-scenarios": nsim})
        # the node links Lua (src/script): the Makefile's flags, Debian's paths by default
        self.lua_cflags = make_var("LUA_CFLAGS")
        self.lua_libs = make_var("LUA_LIBS")
        self.obj = os.path.join(WORK, "obj-asan" if asan else "obj")
        os.makedirs(self.obj, exist_ok=True)
        srcs = sorted(set(s for v in self.links.values() for s in v))
        todo = []
        for s in srcs:
            o = self.objpath(s)
            if not os.path.exists(o) or os.path.getmtime(o) < newest_input(s):
                todo.append(s)
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            for s, r in zip(todo, ex.map(lambda s: self.compile(s, self.objpath(s)), todo)):
                if r:
                    sys.exit("cannot build %s:\n%s" % (s, r))

    def objpath(self, src):
        return os.path.join(self.obj, src.replace("/", "__") + ".o")

    def compile(self, src, obj, src_path=None):
        cmd = ["gcc"] + CFLAGS + self.san + self.lua_cflags + ["-Isrc", "-Itests/unit", "-c", "-o", obj,
                                                   src_path or src]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        return None if r.returncode == 0 else r.stderr[-2000:]

    def build(self, mutant, jobdir):
        """Returns None or the compiler's complaint."""
        srcdir = os.path.join(jobdir, "src", os.path.dirname(mutant["file"])[4:])
        os.makedirs(srcdir, exist_ok=True)
        for f in os.listdir(os.path.join(ROOT, os.path.dirname(mutant["file"]))):
            if f.endswith(".h"):
                shutil.copy(os.path.join(ROOT, os.path.dirname(mutant["file"]), f), srcdir)
        mpath = os.path.join(jobdir, "src", mutant["file"][4:])
        with open(mpath, "w") as f:
            f.write(apply(mutant))
        mobj = os.path.join(jobdir, "mutant.o")
        err = self.compile(mutant["file"], mobj, mpath)
        if err:
            return err
        for name, srcs in self.links.items():
            objs = [mobj if s == mutant["file"] else self.objpath(s) for s in srcs]
            r = subprocess.run(["gcc"] + self.san + ["-o", os.path.join(jobdir, name)] + objs + ["-lm"] +
                               self.lua_libs,
                               cwd=ROOT, capture_output=True, text=True)
            if r.returncode:
                return r.stderr[-2000:]
        return None


def newest_input(src):
    t = os.path.getmtime(os.path.join(ROOT, src))
    for d in ("src", "tests/unit"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, d)):
            for n in names:
                if n.endswith(".h"):
                    t = max(t, os.path.getmtime(os.path.join(dirpath, n)))
    return t


def run(cmd, timeout):
    """(returncode or 'timeout', stdout tail)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return "timeout", ""


def test_mutant(builder, mutant, jobdir, args):
    t0 = time.time()
    res = {"id": mutant["id"], "seeds": args.seeds, "nsim_seeds": args.nsim_seeds,
           "checkers": args.checkers}
    if args.asan:
        res["asan"] = True
    err = builder.build(mutant, jobdir)
    if err:
        res.update(status="not-built", by=err.strip().split("\n")[0][:200])
        res["secs"] = round(time.time() - t0, 1)
        return res
    stages = [("test_raft", [os.path.join(jobdir, "test_raft")], 60)]
    if args.seeds:
        stages.append(("shoal-sim", [os.path.join(jobdir, "shoal-sim"), "--seeds",
                                     str(args.seeds), "--quiet"], 60 + args.seeds * 1.0))
    if args.nsim_seeds:
        # a few seconds: one to three nodes on a frozen clock, each scenario
        # checking one promise of the shard (src/nsim/nsim_scenario.c)
        stages.append(("nsim-scenarios", [os.path.join(jobdir, "shoal-nsim"), "--scenarios"],
                       60 * (3 if args.asan else 1)))
        stages.append(("shoal-nsim", [os.path.join(jobdir, "shoal-nsim"), "--seeds",
                                      str(args.nsim_seeds), "--quiet"],
                       60 + args.nsim_seeds * (3.0 if args.asan else 0.6)))
    # Only the binaries that link the mutated file can see it (a mutant of
    # src/shard/ or src/node/ is met by shoal-nsim alone).
    stages = [st for st in stages if mutant["file"] in builder.stage_links[st[0]]]
    res["status"] = "survived"
    for name, cmd, timeout in stages:
        rc, out = run(cmd, timeout)
        if rc == "timeout":
            res.update(status="timeout", by="%s (over %d s)" % (name, timeout))
            break
        if rc != 0:
            v = re.search(r"^VIOLATION seed (\d+): (.*)$", out, re.M)
            san = re.search(r"(ERROR: AddressSanitizer: \S+|runtime error: .*)$", out, re.M)
            if san and not v:
                by = "%s under ASan/UBSan: %s" % (name, san.group(1)[:160])
            elif v:
                by = "%s seed %s: %s" % (name, v.group(1), v.group(2)[:160])
            elif name == "test_raft":
                fails = re.findall(r"^FAIL (\S+)", out, re.M)
                by = "test_raft %s" % (" ".join(fails)[:160] if fails else "exit %s" % rc)
            elif name == "nsim-scenarios" and re.search(r"^FAIL ", out, re.M):
                fail = re.search(r"^FAIL (.*)$", out, re.M).group(1)
                by = "nsim-scenarios %s" % fail[:160]
            else:
                tail = out.strip().split("\n")[-1:] if out.strip() else [""]
                by = "%s exit %s (crash): %s" % (name, rc, tail[0][:160])
            res.update(status="killed", by=by)
            break
    res["secs"] = round(time.time() - t0, 1)
    return res


def checkers_hash():
    h = hashlib.sha1()
    for d in ("src/sim", "src/nsim", "src/check", "src/node", "src/shard", "src/meta",
              "src/router", "src/transport", "src/kv", "src/wal", "tests/unit"):
        for dirpath, _, names in sorted(os.walk(os.path.join(ROOT, d))):
            for n in sorted(names):
                if n.endswith((".c", ".h")) and "raft" not in n or n == "test_raft.c" \
                        or n == "raft_net.h":
                    with open(os.path.join(dirpath, n), "rb") as f:
                        h.update(n.encode() + f.read())
    return h.hexdigest()[:12]


# ---------------------------------------------------------------- report

def load_equivalent():
    eq = {}
    path = os.path.join(OUT, "equivalent.txt")
    if os.path.exists(path):
        for line in open(path):
            if line.strip() and not line.startswith("#"):
                parts = line.split("|")
                eq[line.split()[0]] = parts[-1].strip()
    return eq


def load_cache():
    cache = {}
    path = os.path.join(OUT, "results.jsonl")
    if os.path.exists(path):
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                cache[r["id"]] = r
    return cache


def reusable(r, args):
    if r is None:
        return False
    if r["status"] in ("killed", "not-built"):
        return True
    if args.asan and not r.get("asan"):
        return False  # a release survivor is worth an ASan run
    return (r["checkers"] == args.checkers and r["seeds"] >= args.seeds
            and r["nsim_seeds"] >= args.nsim_seeds)


def report(mutants, cache, eq, args, ran_ids):
    name = "report" if args.files is None else "report-" + "-".join(
        os.path.basename(f)[:-2] for f in args.files)
    rows = []
    for m in mutants:
        r = cache.get(m["id"])
        status = r["status"] if r else "not-run"
        if status in ("survived", "timeout") and m["id"] in eq:
            status = "equivalent" if status == "survived" else status
        rows.append(dict(m, status=status, by=(r or {}).get("by", ""),
                         reason=eq.get(m["id"], "") if status == "equivalent" else "",
                         seeds=(r or {}).get("seeds"), nsim_seeds=(r or {}).get("nsim_seeds")))
    cols = ["generated", "run", "killed", "survived", "equivalent", "not-built", "timeout"]

    def tally(key):
        t = {}
        for row in rows:
            k = key(row)
            d = t.setdefault(k, dict.fromkeys(cols, 0))
            d["generated"] += 1
            if row["status"] != "not-run":
                d["run"] += 1
                d[row["status"]] += 1
        return t

    per_file = tally(lambda r: r["file"])
    per_func = tally(lambda r: (r["file"], r["function"]))
    total = tally(lambda r: "total")["total"]
    non_eq = total["killed"] + total["survived"] + total["timeout"]
    score = 100.0 * (total["killed"] + total["timeout"]) / non_eq if non_eq else 0.0
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump({"total": total, "score_percent": round(score, 1), "per_file": per_file,
                   "per_function": {"%s:%s" % k: v for k, v in per_func.items()},
                   "mutants": [{k: r[k] for k in ("id", "file", "function", "line", "text", "op",
                                                  "status", "by", "seeds", "nsim_seeds")}
                               for r in rows]}, f, indent=1)
    lines = ["# Mutants of %s (`make mutants`)" % ", ".join(sorted(per_file_names(rows))), "",
             "Generated by `scripts/mutants.py` at %s; seeds per mutant: test_raft, then up to "
             "%d shoal-sim seeds, then up to %d shoal-nsim seeds (the latest run's settings; "
             "each row's own are in report.json). Mutation score (killed + timeout over "
             "non-equivalent run): **%.1f%%**." % (time.strftime("%Y-%m-%d %H:%M UTC",
                                                               time.gmtime()), args.seeds,
                                                 args.nsim_seeds, score), "",
             "| file | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for k in sorted(per_file):
        lines.append("| %s | " % k + " | ".join(str(per_file[k][c]) for c in cols) + " |")
    lines.append("| **total** | " + " | ".join(str(total[c]) for c in cols) + " |")
    lines += ["", "## Per function (run only)", "", "| function | " + " | ".join(cols[1:]) + " |",
              "|---" * len(cols) + "|"]
    for k in sorted(per_func):
        if per_func[k]["run"]:
            lines.append("| %s:%s | " % k + " | ".join(str(per_func[k][c]) for c in cols[1:])
                         + " |")
    for title, want in (("Survivors", "survived"), ("Timeouts", "timeout"),
                        ("Equivalent", "equivalent"), ("Killed", "killed"),
                        ("Not built", "not-built")):
        sel = [r for r in rows if r["status"] == want]
        if not sel:
            continue
        lines += ["", "## %s (%d)" % (title, len(sel)), "", "| id | where | change | line | by |",
                  "|---|---|---|---|---|"]
        for r in sel:
            by = r["reason"] if want == "equivalent" else r["by"]
            lines.append("| %s | %s:%d %s | %s | `%s` | %s |" % (
                r["id"], r["file"], r["line"], r["function"], r["op"],
                r["text"].replace("|", "\\|")[:90], by.replace("|", "\\|")[:140]))
    with open(os.path.join(OUT, name + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return total, score


def per_file_names(rows):
    return set(r["file"] for r in rows)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", nargs="*", default=None, help="default: src/raft/*.c")
    ap.add_argument("--seeds", type=int, default=2000, help="shoal-sim seeds (0: skip)")
    ap.add_argument("--nsim-seeds", type=int, default=2000, help="shoal-nsim seeds (0: skip)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sample", type=int, default=0, help="a random sample of N mutants")
    ap.add_argument("--sample-seed", type=int, default=1)
    ap.add_argument("--ids", nargs="*", default=None, help="only these mutant ids")
    ap.add_argument("--list", action="store_true", help="print the mutants and exit")
    ap.add_argument("--report", action="store_true", help="only rewrite the report")
    ap.add_argument("--show", help="print the diff of one mutant id")
    ap.add_argument("--asan", action="store_true",
                    help="build with ASan/UBSan (slower): for mutants one element past an array")
    args = ap.parse_args()
    # --files src/shard/shard.c etc. works too: the file is linked only into
    # shoal-nsim, which alone then runs.
    files = args.files or sorted(os.path.join("src/raft", f)
                                 for f in os.listdir(os.path.join(ROOT, "src/raft"))
                                 if f.endswith(".c"))
    files = [os.path.join(ROOT, f) for f in files]
    mutants = generate(files)
    if args.show:
        m = next(m for m in mutants if m["id"] == args.show)
        tmp = os.path.join(WORK, "show.c")
        os.makedirs(WORK, exist_ok=True)
        with open(tmp, "w") as f:
            f.write(apply(m))
        subprocess.run(["diff", "-u", "--label", "a/" + m["file"], "--label", "b/" + m["file"],
                        os.path.join(ROOT, m["file"]), tmp])
        return 0
    if args.list:
        for m in mutants:
            print("%s %s:%d %s: %s | %s" % (m["id"], m["file"], m["line"], m["function"],
                                           m["op"], m["text"]))
        counts = {}
        for m in mutants:
            counts[m["file"]] = counts.get(m["file"], 0) + 1
        for f, c in sorted(counts.items()):
            print("%s: %d mutants" % (f, c))
        print("total: %d mutants" % len(mutants))
        return 0
    args.checkers = checkers_hash()
    cache = load_cache()
    eq = load_equivalent()
    todo = mutants
    if args.ids:
        todo = [m for m in mutants if m["id"] in set(args.ids)]
    elif args.sample:
        todo = sorted(random.Random(args.sample_seed).sample(mutants, min(args.sample,
                                                                          len(mutants))),
                      key=lambda m: (m["file"], m["start"]))
    if args.report:
        report(mutants, cache, eq, args, set())
        return 0
    todo = [m for m in todo if not reusable(cache.get(m["id"]), args)]
    try:
        os.nice(19)
    except OSError:
        pass
    print("%d mutants generated, %d to run, %d jobs, %d sim + %d nsim seeds each" % (
        len(mutants), len(todo), args.jobs, args.seeds, args.nsim_seeds), flush=True)
    builder = Builder(args.asan)
    lock = threading.Lock()
    slots = list(range(args.jobs))
    done = [0]
    t0 = time.time()

    def one(m):
        with lock:
            slot = slots.pop()
        try:
            jobdir = os.path.join(WORK, "job%d-%d" % (os.getpid(), slot))
            os.makedirs(jobdir, exist_ok=True)
            r = test_mutant(builder, m, jobdir, args)
        finally:
            with lock:
                slots.append(slot)
        with lock:
            cache[m["id"]] = r
            with open(os.path.join(OUT, "results.jsonl"), "a") as f:
                f.write(json.dumps(r) + "\n")
            done[0] += 1
            print("[%d/%d %.0fs] %s %s:%d %s: %s -> %s %s" % (
                done[0], len(todo), time.time() - t0, m["id"], m["file"], m["line"],
                m["function"], m["op"], r["status"], r.get("by", "")), flush=True)
        return r

    os.makedirs(OUT, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
        list(ex.map(one, todo))
    total, score = report(mutants, cache, eq, args, set(m["id"] for m in todo))
    print("total: %s; score %.1f%%; report in tests/mutants/" % (total, score))
    return 0


if __name__ == "__main__":
    sys.exit(main())
