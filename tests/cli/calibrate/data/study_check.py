#!/usr/bin/env python3
"""Checks for the study cases (study-*.case): reads the reports and files
the case wrote in its scratch dir and prints 'ok' or what is wrong."""
import json
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def dppl(rep):
    return {d["name"]: d["dppl_pct"] for d in rep["domains"] if "dppl_pct" in d}


def close(a, b, tol=1e-9):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def matrix(tmp):
    """rows = calibration domains (sorted) + all; the all row is the main
    table; the math row is a separate run on the math records alone."""
    main, alone = load(f"{tmp}/m.json"), load(f"{tmp}/math.json")
    rows = main["matrix"]["rows"]
    names = [r["calib"] for r in rows]
    doms = sorted({json.loads(l).get("domain", "-") for l in open(f"{tmp}/calib.jsonl")})
    if names != doms + ["all"]:
        return f"rows {names}, expected {doms + ['all']}"
    for r in rows:
        if "cells" not in r:
            return f"row {r['calib']} not calibrated: {r.get('error')}"
    allrow = {c["eval"]: c["dppl_pct"] for c in rows[-1]["cells"]}
    if allrow != dppl(main):
        return f"all row {allrow} != main {dppl(main)}"
    mrow = {c["eval"]: c["dppl_pct"] for c in rows[names.index("math")]["cells"]}
    if mrow != dppl(alone):
        return f"math row {mrow} != the math-only run {dppl(alone)}"
    if len(set(tuple(sorted((c["eval"], c["dppl_pct"]) for c in r["cells"])) for r in rows)) < 2:
        return "every row is the same: the calibrations did not differ"
    return "ok"


def repeats(tmp):
    """--subsample 1: every repeat is the main run (std 0, same means);
    --subsample 0.5: repeat i is --calib-records k --seed seed+i."""
    full, half, one = load(f"{tmp}/full.json"), load(f"{tmp}/half.json"), load(f"{tmp}/r1.json")
    rf = full["repeats"]
    if rf["k"] != 2 or rf["records"] != rf["of_records"]:
        return f"full: k {rf['k']}, records {rf['records']} of {rf['of_records']}"
    main = dppl(full)
    for d in rf["domains"]:
        s = d["dppl_pct"]
        if s["n"] != 2 or s["std"] != 0 or not close(s["mean"], main[d["name"]], 1e-7):
            return f"full: {d['name']}: {s} vs main {main[d['name']]}"
        if s["within_noise"]:
            return "full: std 0 marked as noise"
    rh = half["repeats"]
    n = rh["of_records"]
    if rh["records"] != int(n * 0.5 + 0.5) or rh["seeds"] != [8, 9, 10]:
        return f"half: records {rh['records']} of {n}, seeds {rh['seeds']}"
    names = [d["name"] for d in half["domains"] if "dppl_pct" in d]
    run1 = dict(zip(names, rh["runs"][0]["dppl_pct"]))
    alone = dppl(one)
    for k, v in alone.items():
        if not close(run1[k], v, 1e-7):
            return f"half: repeat 1 {k} {run1[k]} != --calib-records {rh['records']} --seed 8: {v}"
    for d in rh["domains"]:
        s = d["dppl_pct"]
        vals = [r["dppl_pct"][names.index(d["name"])] for r in rh["runs"]]
        m = sum(vals) / len(vals)
        sd = (sum((x - m) ** 2 for x in vals) / (len(vals) - 1)) ** 0.5
        if not (close(s["mean"], m, 1e-6) and close(s["std"], sd, 1e-5)
                and s["min"] == min(vals) and s["max"] == max(vals)):
            return f"half: {d['name']}: {s} vs {vals}"
        if s["within_noise"] != (abs(m) < 2 * sd):
            return f"half: {d['name']}: noise flag {s['within_noise']} for {m} +- {sd}"
    return "ok"


def score(tmp):
    """Every line is the input line plus loss, loss_q, kl; the records
    badcase-inject added are the top 3 by kl."""
    src = open(f"{tmp}/in.jsonl").read().splitlines()
    out = open(f"{tmp}/scores.jsonl").read().splitlines()
    if len(src) != len(out):
        return f"{len(out)} lines for {len(src)}"
    kls = []
    for a, b in zip(src, out):
        rec = json.loads(b)
        for k in ("loss", "loss_q", "kl"):
            if not isinstance(rec.get(k), float):
                return f"{k} missing in {b[:80]}"
        if not (rec["loss"] > 0 and rec["loss_q"] > 0 and rec["kl"] >= 0):
            return f"bad scores {rec['loss']} {rec['loss_q']} {rec['kl']}"
        # the added members come last: cut them off and get the line back
        cut = b[: b.rindex(',"loss":')] + "}"
        if cut != a:
            return f"line changed: {a[:60]} -> {cut[:60]}"
        kls.append((rec["kl"], rec["id"]))
    inj = [json.loads(l) for l in open(f"{tmp}/inj.jsonl")]
    base = len(open(f"{tmp}/base.jsonl").read().splitlines())
    added = [r["id"] for r in inj[base:]]
    top = [i for _, i in sorted(kls, key=lambda t: -t[0])[:3]]
    if sorted(added) != sorted(top):
        return f"added {added}, top by kl {top}"
    return "ok"


print({"matrix": matrix, "repeats": repeats, "score": score}[sys.argv[1]](sys.argv[2]))
