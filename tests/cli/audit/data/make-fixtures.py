#!/usr/bin/env python3
"""Write the curate-audit test fixtures (deterministic; run from this folder).

balanced.jsonl  256 records that keep every PTQ practice rule: 4 domains x
                64, languages en and de 128 each (every domain/lang stratum
                32 records, 12.5%), buckets short/medium/long 64/128/64 with
                token counts inside the default edges, no duplicates.
eval.jsonl      an evaluation set: 20 unrelated texts, plus (eval-hit.jsonl)
                one text equal to a set text up to whitespace and one that is
                a near copy (one word changed) of another.
"""
import json
import random

rng = random.Random(20261123)
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu amber basil cedar dune ember fern grove harbor iris jade kelp lotus maple "
         "nectar olive pearl quartz reed sage thyme umber violet willow yarrow zinnia "
         "anchor beacon canyon delta estuary fjord glacier highland island jungle knoll "
         "lagoon mesa nook oasis prairie quarry ridge savanna tundra upland valley wetland").split()

def text(n_words):
    return " ".join(rng.choice(WORDS) for _ in range(n_words))

recs = []
domains = ["web", "code", "wiki", "math"]
i = 0
for d in domains:
    for k in range(64):
        lang = "en" if k % 2 == 0 else "de"
        # 16 short, 32 medium, 16 long per domain -> 64/128/64 overall
        if k < 16:
            bucket, tokens = "short", rng.randrange(20, 128)
        elif k < 48:
            bucket, tokens = "medium", rng.randrange(128, 512)
        else:
            bucket, tokens = "long", rng.randrange(512, 2048)
        recs.append({"id": "r%03d" % i, "domain": d, "lang": lang, "text": text(24),
                     "tokens": tokens, "bucket": bucket})
        i += 1
rng.shuffle(recs)
with open("balanced.jsonl", "w") as f:
    for r in recs:
        f.write(json.dumps(r) + "\n")

with open("eval.jsonl", "w") as f:
    for k in range(20):
        f.write(json.dumps({"id": "e%02d" % k, "text": text(30)}) + "\n")
with open("eval-hit.jsonl", "w") as f:
    for k in range(5):
        f.write(json.dumps({"id": "h%02d" % k, "text": text(30)}) + "\n")
    same = "  " + recs[10]["text"].replace(" ", "   ", 3) + "\n"
    words = recs[20]["text"].split()
    words[-1] = "zzzchanged"
    f.write(json.dumps({"id": "exact", "text": same}) + "\n")
    f.write(json.dumps({"id": "near", "text": " ".join(words)}) + "\n")
