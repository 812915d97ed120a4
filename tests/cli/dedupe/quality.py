#!/usr/bin/env python3
"""Near-duplicate quality of curate-dedupe on a generated corpus with ground truth.

The corpus (deterministic for --seed) holds English-like documents of 60 to
400 words (the vocabulary of tests/bench/gen_corpus.py) in which are planted

  near duplicates   1 to 3 copies of an earlier document, each with 2-10% of
                    its words edited (substitutions, insertions and deletions
                    mixed), placed later in the stream;
  hard negatives    (a) groups of documents drawn from one narrow topic
                    vocabulary (a third of their words from 40 topic words),
                    (b) groups sharing a long common boilerplate (cookie notice,
                    navigation, licence: 45-100 words) around distinct bodies
                    of 100-300 words (pairwise Jaccard up to about 0.3).

Every record has a family: a document and its planted copies share one,
everything else has its own.  curate-dedupe --mode near runs with the options
given after "--" (none: the defaults); a rejected record is correct when its
dup_of names a record of its own family.

  precision = correct rejects / all rejects
  recall    = correct rejects / planted copies

The true Jaccard similarity of word 3-gram sets (the default shingles) is
computed for every planted pair and for every pair inside a hard-negative
group, and reported, so the corpus is seen to be what it claims to be.

    python3 quality.py --bin build/bin [--min 0.95] [-- --threshold 0.6 ...]

Exit status: 0 when precision and recall both reach --min, 1 otherwise.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import gen_corpus  # noqa: E402  (vocabulary and topic words)

BOILERPLATES = [
    "We use cookies to improve your experience on our site and to show you relevant advertising. "
    "By continuing to browse the site you agree to our use of cookies. Read our privacy policy and "
    "cookie policy to find out more about how we use your data and how you can change your settings "
    "at any time.",
    "Home News Sport Business Technology Science Health Travel Culture Opinion Video Podcasts "
    "Newsletters Sign in Subscribe Search Menu Latest stories Most read Editors picks Follow us on "
    "social media for the latest updates and breaking news from around the world.",
    "This article is licensed under a Creative Commons Attribution Share Alike license. You are free "
    "to share and adapt the material for any purpose, even commercially, as long as you give "
    "appropriate credit, provide a link to the license, and indicate if changes were made to the "
    "original work.",
    "Posted by admin in Uncategorized with no comments yet. Leave a reply. Your email address will "
    "not be published. Required fields are marked. Save my name, email, and website in this browser "
    "for the next time I comment. Previous post Next post Related posts Recent comments Archives.",
]


def words_of(rng, cw, n, topic=None, topic_rate=0.0):
    ws = rng.choices(gen_corpus.COMMON, cum_weights=cw, k=n)
    if topic:
        for i in range(n):
            if rng.random() < topic_rate:
                ws[i] = rng.choice(topic)
    return ws


def sentences(rng, ws):
    """Capitalize and punctuate a word list into text."""
    out, i = [], 0
    while i < len(ws):
        k = min(len(ws) - i, rng.randint(6, 20))
        s = ws[i:i + k]
        s[0] = s[0].capitalize()
        out.append(" ".join(s) + ".")
        i += k
    return " ".join(out)


def edit(rng, text, frac):
    ws = text.split(" ")
    for _ in range(max(1, round(frac * len(ws)))):
        op = rng.randrange(3)
        i = rng.randrange(len(ws))
        if op == 0:
            ws[i] = rng.choice(gen_corpus.COMMON)
        elif op == 1:
            ws.insert(i, rng.choice(gen_corpus.COMMON))
        elif len(ws) > 1:
            del ws[i]
    return " ".join(ws)


def shingles(text, n=3):
    ws = text.lower().split()
    if len(ws) < n:
        return {" ".join(ws)} if ws else set()
    return {" ".join(ws[i:i + n]) for i in range(len(ws) - n + 1)}


def jaccard(a, b):
    sa, sb = shingles(a), shingles(b)
    u = len(sa | sb)
    return len(sa & sb) / u if u else 1.0


def build(seed, n_docs):
    rng = random.Random(seed)
    cw, acc = [], 0.0
    for r in range(len(gen_corpus.COMMON)):
        acc += 1.0 / (r + 1.5)
        cw.append(acc)
    items = []  # (text, family)
    fam = 0
    planted_pairs = []  # (original text, copy text)
    # plain documents
    originals = []
    for _ in range(n_docs):
        n = int(rng.choice([rng.randint(60, 150), rng.randint(150, 400)]))
        t = sentences(rng, words_of(rng, cw, n, gen_corpus.TOPICS[rng.choice(gen_corpus.DOMAINS)], 0.15))
        items.append([t, fam])
        originals.append(len(items) - 1)
        fam += 1
    # hard negatives (a): narrow topic groups
    neg_groups = []
    for g in range(n_docs // 40):
        topic = rng.sample(sum(gen_corpus.TOPICS.values(), []), 40)
        grp = []
        for _ in range(8):
            t = sentences(rng, words_of(rng, cw, rng.randint(80, 300), topic, 0.33))
            items.append([t, fam])
            grp.append(t)
            fam += 1
        neg_groups.append(grp)
    # hard negatives (b): shared boilerplate around distinct bodies
    for g in range(n_docs // 40):
        # one or two boilerplate paragraphs (45 to 100 words)
        bp = BOILERPLATES[g % len(BOILERPLATES)]
        if g % 3 == 0:
            bp += " " + BOILERPLATES[(g + 1) % len(BOILERPLATES)]
        grp = []
        for _ in range(8):
            body = sentences(rng, words_of(rng, cw, rng.randint(100, 300)))
            t = bp + " " + body if rng.random() < 0.5 else body + " " + bp
            items.append([t, fam])
            grp.append(t)
            fam += 1
        neg_groups.append(grp)
    rng.shuffle(items)
    # planted copies: a fifth of the plain documents get 1-3 edited copies,
    # inserted at random places after their original
    pos = {id(it): i for i, it in enumerate(items)}
    plain = [it for it in items if it[1] < n_docs]
    chosen = rng.sample(plain, len(plain) // 5)
    inserts = []
    for it in chosen:
        for _ in range(rng.randint(1, 3)):
            frac = rng.uniform(0.02, 0.10)
            c = edit(rng, it[0], frac)
            planted_pairs.append((it[0], c))
            at = rng.randint(pos[id(it)] + 1, len(items))
            inserts.append((at, rng.random(), [c, it[1]]))
    inserts.sort(key=lambda x: (x[0], x[1]))
    out = []
    k = 0
    for i, it in enumerate(items):
        while k < len(inserts) and inserts[k][0] == i:
            out.append(inserts[k][2])
            k += 1
        out.append(it)
    out.extend(x[2] for x in inserts[k:])
    return out, planted_pairs, neg_groups


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("CURATE_BIN", "build/bin"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--min", type=float, default=0.95)
    ap.add_argument("--keep", help="keep the corpus and outputs in this folder")
    args = ap.parse_args(argv)

    items, planted, neg_groups = build(args.seed, args.docs)
    pj = sorted(jaccard(a, b) for a, b in planted)
    nj = sorted(jaccard(a, b) for g in neg_groups for i, a in enumerate(g) for b in g[i + 1:])
    work = args.keep or tempfile.mkdtemp(prefix="dedupe-quality.")
    os.makedirs(work, exist_ok=True)
    corpus = os.path.join(work, "corpus.jsonl")
    family = {}
    with open(corpus, "w") as f:
        for i, (t, fam) in enumerate(items):
            rid = "r%06d" % i
            family[rid] = fam
            f.write(json.dumps({"id": rid, "text": t}) + "\n")
    rej = os.path.join(work, "rejects.jsonl")
    cmd = [os.path.join(args.bin, "curate-dedupe"), "-q", "--mode", "near", "--rejects", rej,
           "-o", os.path.join(work, "kept.jsonl"), "--stats", os.path.join(work, "stats.json")] + extra + [corpus]
    subprocess.run(cmd, check=True)
    planted_n = sum(1 for _ in planted)
    correct = total = 0
    for line in open(rej):
        r = json.loads(line)
        total += 1
        correct += family.get(r["dup_of"], -1) == family[r["id"]]
    precision = correct / total if total else 1.0
    recall = correct / planted_n if planted_n else 1.0
    q = lambda v, p: v[min(len(v) - 1, int(p * len(v)))]
    print(f"corpus: {len(items)} records, {planted_n} planted near duplicates "
          f"(true 3-gram Jaccard min {pj[0]:.3f}, 5% {q(pj, 0.05):.3f}, median {q(pj, 0.5):.3f}), "
          f"{sum(len(g) for g in neg_groups)} hard negatives in {len(neg_groups)} groups "
          f"(pairwise Jaccard max {nj[-1]:.3f}, 99% {q(nj, 0.99):.3f})")
    print(f"options: {' '.join(extra) or '(defaults)'}")
    print(f"rejected {total}, correct {correct}: precision {precision:.4f}, recall {recall:.4f}")
    if not args.keep:
        for n in os.listdir(work):
            os.unlink(os.path.join(work, n))
        os.rmdir(work)
    ok = precision >= args.min and recall >= args.min
    if not ok:
        print(f"FAIL: precision and recall must both be >= {args.min}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
