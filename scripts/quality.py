#!/usr/bin/env python3
"""`make quality`: Postern's decisions on the VALIDATION split of
../shared/corpus, per class and per source (QUALITY.md explains the split).

    python3 scripts/quality.py --postern target/debug/postern [--corpus ../shared/corpus]
        [--work /tmp/corpus] [--cap 300] [--split validation|train] [--dump FILE]

`--split train` runs the same machinery on a TRAIN sample (the first CAP
messages per source by sha256, TRAIN keys only) for tuning: it writes
WORK/quality-run/train.json (and `--dump`'s per-message JSON lines) and
never touches QUALITY.md, bench/results or the floors.

1. extracts the tarballs to WORK (once) and writes the labelled validation
   tree WORK/validation-CAP/{ham,spam,phish}/<source>/<file>: at most CAP
   messages per source, the first by sha256 of their key (deterministic);
   the tree is kept for the next run;
2. runs `postern simulate --json` over it with the environment given
   (Rspamd, clamd, the AI runtime: see the Makefile's `quality` target);
3. times the local pipeline alone (no Rspamd/clamd, one message at a time)
   on a smaller sample;
4. writes bench/results/quality.json, regenerates the tables in QUALITY.md
   and fails (exit 1) when a figure is worse than bench/quality-floor.json.
Python standard library only.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "models"))
import corpus  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results", "quality.json")
BEFORE = os.path.join(ROOT, "bench", "results", "quality-before.json")
FLOOR = os.path.join(ROOT, "bench", "quality-floor.json")
# Legitimate customer mail written for the check (bench/written-ham/README.md):
# receipts, notices and newsletters, the register the corpus lacks. Never
# trained on; a ham source of VALIDATION only.
WRITTEN = os.path.join(ROOT, "bench", "written-ham")
WRITTEN_SOURCE = "written-customer-mail"
DOC = os.path.join(ROOT, "QUALITY.md")
BEGIN, END = "<!-- quality:begin -->", "<!-- quality:end -->"
# Messages per label for the local-pipeline timing run.
COST_PER_LABEL = 40


def build_tree(work, cap, split="validation"):
    # Named after the split's code too, so a change to it rebuilds the tree.
    with open(corpus.__file__, "rb") as fh:
        code = hashlib.sha256(fh.read()).hexdigest()[:8]
    out = os.path.join(work, f"{split}-{cap}-{code}")
    want_validation = split == "validation"
    marker = out + ".done"
    if os.path.exists(marker):
        return out
    shutil.rmtree(out, ignore_errors=True)
    groups = {}
    for m in corpus.messages(work):
        if corpus.in_validation(m.key) == want_validation:
            groups.setdefault((m.label, m.source), []).append(m)
    for (label, source), msgs in sorted(groups.items()):
        d = os.path.join(out, label, source)
        os.makedirs(d, exist_ok=True)
        for m in corpus.by_hash(msgs, cap):
            name = m.key.replace("/", "_").replace("#", "_")
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(m.raw())
    open(marker, "w").close()
    return out


def add_written(tree, written=WRITTEN):
    """Puts the written messages into `tree` as ham/WRITTEN_SOURCE, afresh,
    so a message deleted from the repository leaves the run too."""
    d = os.path.join(tree, "ham", WRITTEN_SOURCE)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name in sorted(os.listdir(written)):
        if name.endswith(".eml"):
            shutil.copyfile(os.path.join(written, name), os.path.join(d, name))
    return d


def simulate(postern, tree, json_path, env, extra):
    cmd = [postern, "simulate", tree, "--json", json_path, *extra]
    print("+", " ".join(cmd), flush=True)
    with open(json_path + ".txt", "w") as log:
        subprocess.run(cmd, env=env, stdout=log, check=True, cwd=ROOT)
    with open(json_path) as fh:
        return json.load(fh)


def pct(x):
    return f"{100 * x:.1f}%"


def table(result):
    """Markdown: class × source with n, caught, quarantined and each verdict's share."""
    groups = result["groups"]
    names = []
    for g in groups:
        for v in g["verdicts"]:
            if v not in names:
                names.append(v)
    order = ["pass", "flag", "junk", "quarantine", "delete"]
    names.sort(key=lambda v: (order.index(v) if v in order else len(order), v))
    head = ["class", "source", "n", "caught", "quarantined+"] + names
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in sorted(groups, key=lambda g: (["phish", "spam", "malware", "ham"].index(g["class"]) if g["class"] in ("phish", "spam", "malware", "ham") else 9, g["source"] != "*", g["source"])):
        src = "**all**" if g["source"] == "*" else g["source"]
        cells = [g["class"], src, str(g["n"]), pct(g["caught"]), pct(g["quarantined"])]
        cells += [pct(g["verdicts"].get(v, 0) / g["n"]) for v in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_table(result):
    lines = []
    for cls, rows in sorted(result["sweep"].items()):
        lines.append(f"\n{cls}: share at or above each score cut, against ham\n")
        lines.append("| cut | " + cls + " | ham (all) | worst ham source |")
        lines.append("|---|---|---|---|")
        for r in rows:
            lines.append(f"| {r['cut']:g} | {pct(r['caught'])} | {pct(r['ham_fp'])} | {pct(r['worst_ham_fp'])} {r['worst_ham_source']} |")
    return "\n".join(lines)


def render(result):
    parts = []
    c = result.get("local_cost", {})
    parts.append(f"Run: {result.get('when', '?')}, commit {result.get('commit', '?')}, cap {result.get('cap')} per source, "
                 f"{result['messages']} messages, {result['skipped']} skipped.\n")
    parts.append(table(result))
    if c:
        parts.append(f"\nLocal pipeline (no Rspamd/clamd, AI tier on, debug build, one message at a time, {c['n']} messages): "
                     f"mean {c['mean_ms']:.1f} ms, p50 {c['p50_ms']:.1f} ms, p95 {c['p95_ms']:.1f} ms per message. "
                     f"With Rspamd and clamd ({result['cost']['n']} messages, 4 in flight): mean {result['cost']['mean_ms']:.1f} ms.")
    parts.append("\n<details><summary>Score sweep</summary>\n" + sweep_table(result) + "\n\n</details>")
    return "\n".join(parts)


def update_doc(result):
    with open(DOC) as fh:
        text = fh.read()
    body = "\n### Before (issue 14 start)\n\n"
    if os.path.exists(BEFORE):
        with open(BEFORE) as fh:
            body += render(json.load(fh))
    else:
        body += "(no bench/results/quality-before.json)"
    body += "\n\n### Latest `make quality`\n\n" + render(result) + "\n"
    a, b = text.index(BEGIN) + len(BEGIN), text.index(END)
    with open(DOC, "w") as fh:
        fh.write(text[:a] + "\n" + body + text[b:])


def check(result, floor):
    """Figures worse than the floor file, as messages."""
    bad = []
    g = {(x["class"], x["source"]): x for x in result["groups"]}
    for cls, lim in floor.get("classes", {}).items():
        got = g.get((cls, "*"))
        if got is None:
            bad.append(f"{cls}: no messages")
            continue
        for k in ("caught", "quarantined"):
            if k in lim and got[k] < lim[k]:
                bad.append(f"{cls} {k} {pct(got[k])} < floor {pct(lim[k])}")
    for src, lim in floor.get("ham_max", {}).items():
        got = g.get(("ham", src))
        if got is None:
            bad.append(f"ham/{src}: no messages")
            continue
        for k in ("caught", "quarantined"):
            if k in lim and got[k] > lim[k]:
                bad.append(f"ham/{src} {k} {pct(got[k])} > max {pct(lim[k])}")
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--postern", default=os.path.join(ROOT, "target", "debug", "postern"))
    ap.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "corpus"))
    ap.add_argument("--work", default="/tmp/corpus")
    ap.add_argument("--cap", type=int, default=300)
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite QUALITY.md")
    ap.add_argument("--split", choices=("validation", "train"), default="validation",
                    help="train: a TRAIN sample for tuning; writes no results, doc or floor check")
    ap.add_argument("--dump", help="also write one JSON line per message (simulate --dump) here")
    args = ap.parse_args()
    corpus.extract(args.corpus, args.work)
    tree = build_tree(args.work, args.cap, args.split)
    env = dict(os.environ)
    tmp = os.path.join(args.work, "quality-run")
    os.makedirs(tmp, exist_ok=True)
    extra = ["--parallel", "4"] + (["--dump", args.dump] if args.dump else [])
    if args.split == "train":
        result = simulate(args.postern, tree, os.path.join(tmp, "train.json"), env, extra)
        print(table(result))
        print(sweep_table(result))
        return
    add_written(tree)
    result = simulate(args.postern, tree, os.path.join(tmp, "full.json"), env, extra)
    local_env = {k: v for k, v in env.items() if k not in ("POSTERN_RSPAMD_URL", "POSTERN_CLAMD_ADDR")}
    local = simulate(args.postern, tree, os.path.join(tmp, "local.json"), local_env,
                     ["--parallel", "1", "--limit", str(COST_PER_LABEL)])
    result["local_cost"] = local["cost"]
    result["cap"] = args.cap
    result["when"] = subprocess.run(["date", "-u", "+%Y-%m-%d %H:%M UTC"], capture_output=True, text=True).stdout.strip()
    result["commit"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result["scanners"] = {"rspamd": "POSTERN_RSPAMD_URL" in env, "clamd": "POSTERN_CLAMD_ADDR" in env, "ai": "POSTERN_AI_RUNTIME" in env}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1, sort_keys=True)
        fh.write("\n")
    if not args.no_doc:
        update_doc(result)
    print(render(result))
    with open(FLOOR) as fh:
        bad = check(result, json.load(fh))
    for b in bad:
        print("quality: below floor:", b, file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
