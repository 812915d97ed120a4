#!/usr/bin/env python3
"""curate-dedupe --mode exact against an independent Python reference.

A random corpus (deterministic for --seed) of short texts and their
variants - case changes, runs of Unicode whitespace, full-width letters,
ligatures, composed and decomposed accents, sharp s - is deduplicated by the
tool at each --normalize level and by this script with Python's own
unicodedata and str.casefold:

  bytes       the text
  whitespace  runs of White_Space -> one space, ends trimmed
  nfkc        NFKC, then whitespace
  casefold    NFKC, case folding, then whitespace

The kept records must be the same lines, and every reject must carry the
reference's dup_of (the id of the first record with the same key, or its
line number when it has none).  Exit 0 on agreement.
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import unicodedata

# Unicode White_Space (PropList.txt); Python's str.split() also splits on
# U+001C-U+001F, which are not White_Space, so the set is spelled out.
WS = "\t\n\v\f\r \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
     "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
WS_RE = re.compile("[" + re.escape(WS) + "]+")


def key(text, level):
    if level in ("nfkc", "casefold"):
        text = unicodedata.normalize("NFKC", text)
    if level == "casefold":
        text = text.casefold()
    if level != "bytes":
        text = WS_RE.sub(" ", text).strip(WS)
    return text


WORDS = ["alpha", "Beta", "gamma", "DELTA", "caf\u00e9", "cafe\u0301", "stra\u00dfe", "STRASSE",
         "\ufb01ne", "fine", "\uff21\uff22\uff23", "ABC", "\u03a3\u03bf\u03c6\u03af\u03b1",
         "\u03c3\u03bf\u03c6\u03af\u03b1\u03c2", "na\u00efve", "x\u00b2", "x2", "\u2460", "1"]
SPACES = [" ", " ", " ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2003", " \n\t "]


def variant(rng, words):
    out = []
    for w in words:
        r = rng.random()
        if r < 0.2:
            w = w.upper()
        elif r < 0.3:
            w = w.lower()
        out.append(w)
    sep = [rng.choice(SPACES) if rng.random() < 0.3 else " " for _ in out]
    text = "".join(w + s for w, s in zip(out, sep))
    if rng.random() < 0.3:
        text = rng.choice(SPACES) + text
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("CURATE_BIN", "build/bin"))
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--records", type=int, default=3000)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    bases = [[rng.choice(WORDS) for _ in range(rng.randint(1, 4))] for _ in range(150)]
    work = tempfile.mkdtemp(prefix="dedupe-ref.")
    corpus = os.path.join(work, "in.jsonl")
    lines = []
    with open(corpus, "w", encoding="utf-8") as f:
        for i in range(args.records):
            rec = {"text": variant(rng, rng.choice(bases))}
            if rng.random() < 0.8:
                rec = {"id": ("r%d" % i) if rng.random() < 0.7 else i, **rec}
            line = json.dumps(rec, ensure_ascii=rng.random() < 0.5)
            lines.append(line)
            f.write(line + "\n")
    bad = 0
    for level in ("bytes", "whitespace", "nfkc", "casefold"):
        first = {}
        want_kept, want_dups = [], []
        for n, line in enumerate(lines, 1):
            rec = json.loads(line)
            k = key(rec["text"], level)
            if k in first:
                want_dups.append((n, first[k]))
            else:
                first[k] = rec.get("id", n)
                want_kept.append(line)
        rej = os.path.join(work, "rej.jsonl")
        out = subprocess.run([os.path.join(args.bin, "curate-dedupe"), "-q", "--normalize", level,
                              "--rejects", rej, corpus], check=True, capture_output=True, text=True).stdout
        got_kept = out.splitlines()
        got_dups = [(r["_line"], r["dup_of"]) for r in map(json.loads, open(rej, encoding="utf-8"))]
        ok = got_kept == want_kept and got_dups == want_dups
        print(f"{level:10s}: {len(want_kept)} kept, {len(want_dups)} duplicates: "
              f"{'agree' if ok else 'DIFFER'} (tool kept {len(got_kept)}, rejected {len(got_dups)})")
        if not ok:
            bad = 1
            for a, b in zip(got_dups, want_dups):
                if a != b:
                    print("  first difference: tool", a, "reference", b)
                    break
    for n in os.listdir(work):
        os.unlink(os.path.join(work, n))
    os.rmdir(work)
    return bad


if __name__ == "__main__":
    sys.exit(main())
