#!/usr/bin/env python3
"""Cut the sample raw corpora in samples/raw/ from ../shared/data and add dirt.

This was run once to make the committed files; it is kept so the samples can
be rebuilt and audited.  Deterministic (fixed seed).  Usage:

    python3 samples/make-raw.py ../shared samples/raw

Sources are documented with their licenses in samples/README.md.  Only the
training side of each source is used (never data/eval and never the parts
data/eval was cut from), so the evaluation domains stay held out.
"""
import json
import os
import random
import re
import sys
import zipfile

SEED = 20261123
rng = random.Random(SEED)
BAD = "\ue000"  # placeholder replaced by invalid UTF-8 bytes at write time


def cap(text, limit):
    """Cut text at a paragraph or sentence end before limit characters."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    if cut < limit // 2:
        cut = text.rfind(". ", 0, limit)
        cut = cut + 1 if cut > 0 else limit
    return text[:cut].rstrip()


def web(shared):
    rows = [json.loads(l) for l in open(f"{shared}/data/web/c4_demo.jsonl", encoding="utf-8")]
    # data/eval/web is the first 121 documents: take ours from the end.
    return [{"text": cap(r["text"], 2500), "source": "c4_demo"} for r in rows[180:240]]


def wiki(shared):
    raw = open(f"{shared}/data/calibration/exllamav2/wiki.utf8", encoding="utf-8").read()
    docs = re.findall(r"<doc [^>]*>\n(.*?)</doc>", raw, flags=re.S)
    return [{"text": cap(d.strip(), 3000), "source": "exllamav2/wiki"} for d in docs[:28]]


def code(shared):
    items = json.load(open(f"{shared}/data/code/gpteacher-codegen-instruct.json", encoding="utf-8"))
    out = []
    for it in items[:70]:
        parts = [it["instruction"], it.get("input") or "", it["response"]]
        out.append({"text": cap("\n".join(p for p in parts if p), 2000), "source": "gpteacher-codegen"})
    return out


def chat(shared):
    items = json.load(open(f"{shared}/data/chat/llamafactory_dpo_en_demo.json", encoding="utf-8"))
    out = []
    for it in items[:40]:
        turns = []
        for c in it["conversations"]:
            role = "User" if c["from"] == "human" else "Assistant"
            turns.append(f"{role}: {c['value']}")
        turns.append(f"Assistant: {it['chosen']['value']}")
        out.append({"text": cap("\n\n".join(turns), 2500), "source": "llamafactory-dpo-demo"})
    return out


def chat_messages(shared):
    """A few chat records as messages arrays (rendered by --template)."""
    items = json.load(open(f"{shared}/data/chat/llamafactory_dpo_en_demo.json", encoding="utf-8"))
    out = []
    for it in items[40:52]:
        msgs = [{"role": "system", "content": "You are a helpful assistant."}]
        for c in it["conversations"]:
            msgs.append({"role": "user" if c["from"] == "human" else "assistant",
                         "content": cap(c["value"], 1200)})
        msgs.append({"role": "assistant", "content": cap(it["chosen"]["value"], 1200)})
        out.append({"messages": msgs, "source": "llamafactory-dpo-demo"})
    return out


def math(shared):
    rows = [json.loads(l) for l in open(f"{shared}/data/math/gsm8k_test.jsonl", encoding="utf-8")]
    # data/eval/math is records 1055-1318: take ours from the start.
    return [{"text": f"Question: {r['question']}\nAnswer: {r['answer']}", "source": "gsm8k"}
            for r in rows[:90]]


UDHR = {"deu": "de", "fra": "fr", "spa": "es", "rus": "ru", "cmn_hans": "zh", "jpn": "ja",
        "arb": "ar", "hin": "hi", "ita": "it", "pol": "pl", "tur": "tr", "vie": "vi"}


def multilingual(shared):
    out = []
    for code3, code1 in UDHR.items():
        text = open(f"{shared}/data/multilingual/udhr2/{code3}.txt", encoding="utf-8").read()
        lines = [l.strip() for l in text.splitlines() if l.strip()]
        # The first ~60% of each file only (data/eval uses the last 30%).
        lines = lines[: int(len(lines) * 0.6)]
        paras, cur = [], []
        for l in lines:
            cur.append(l)
            if sum(len(x) for x in cur) > 400:
                paras.append(" ".join(cur))
                cur = []
        for p in paras[:4]:
            out.append({"text": p, "source": f"udhr/{code3}", "lang_hint": code1})
    return out


def stories(shared):
    raw = open(f"{shared}/data/calibration/exllamav2/tiny.utf8", encoding="utf-8").read()
    parts = [p.strip() for p in re.split(r"\n\s*\n", raw) if len(p.strip()) > 200]
    return [{"text": cap(p, 2000), "source": "exllamav2/tiny"} for p in parts[:45]]


def near_copy(text, frac):
    words = text.split(" ")
    n = max(1, int(len(words) * frac))
    for _ in range(n):
        i = rng.randrange(len(words))
        op = rng.random()
        if op < 0.5:
            words[i] = rng.choice(["very", "quite", "the", "new", "old", "small", "many"])
        elif op < 0.75 and len(words) > 5:
            del words[i]
        else:
            words.insert(i, rng.choice(["really", "also", "still", "just"]))
    return " ".join(words)


def dirty(domain, recs):
    """Add realistic dirt; returns the list of output lines (bytes)."""
    out = []
    for i, r in enumerate(recs):
        r = dict(r)
        r = {"id": f"{domain}-{i + 1:04d}", **r, "domain": domain}
        out.append(r)
    n = len(out)
    extra = []
    # exact duplicates (same text, new id) and whitespace variants
    for k in range(max(1, n // 20)):
        src = rng.choice(out)
        if "text" not in src:
            continue
        d = dict(src, id=f"{domain}-dup{k}")
        extra.append(d)
    for k in range(max(1, n // 40)):
        src = rng.choice(out)
        if "text" not in src:
            continue
        extra.append(dict(src, id=f"{domain}-ws{k}", text="  " + src["text"].replace(" ", "  ", 5) + " \n"))
    # near duplicates: 2-10% of the words edited
    for k in range(max(1, n // 30)):
        src = rng.choice(out)
        if "text" not in src or len(src["text"].split()) < 40:
            continue
        extra.append(dict(src, id=f"{domain}-near{k}", text=near_copy(src["text"], rng.uniform(0.02, 0.08))))
    for e in extra:
        out.insert(rng.randrange(len(out) + 1), e)
    # per-domain dirt
    if domain == "web":
        for r in rng.sample(out, 4):
            r["text"] = f"<div class=\"post\"><p>{r['text']}</p><br/><a href=\"https://example.com/x\">Read more</a></div>"
        for r in rng.sample(out, 3):
            r["text"] += "\nContact: jane.doe@example.com or call +1 (555) 010-7788."
        out.insert(5, {"id": "web-junk1", "text": "Click here! Click here! Click here! Click here! Click here!", "domain": domain})
        out.insert(9, {"id": "web-junk2", "text": "#### ### ## # #### ### ## # ... ... ...", "domain": domain})
        out.insert(12, {"id": "web-fr", "text": "Toute personne a droit à l'éducation. L'éducation doit être gratuite, au moins en ce qui concerne l'enseignement élémentaire et fondamental. L'enseignement élémentaire est obligatoire.", "domain": domain})
        out.insert(15, {"id": "web-de", "text": "Jeder hat das Recht auf Bildung. Die Bildung ist unentgeltlich, zum mindesten der Grundschulunterricht und die grundlegende Bildung. Der Grundschulunterricht ist obligatorisch.", "domain": domain})
    for r in rng.sample([x for x in out if "text" in x], 2):
        r["text"] = r["text"][:40] + BAD + r["text"][40:]  # invalid UTF-8
    for r in rng.sample([x for x in out if "text" in x], 2):
        r["text"] = r["text"][:30] + "\u200b\u0007" + r["text"][30:]  # zero-width + BEL
    lines = []
    for r in out:
        s = json.dumps(r, ensure_ascii=False).encode("utf-8")
        s = s.replace(BAD.encode("utf-8"), b"\xff\xfe")
        lines.append(s)
    if domain in ("web", "code"):
        lines.insert(7, b'{"id": "' + domain.encode() + b'-broken", "text": "this line was cut off mid-stri')
        lines.insert(20, b'["not", "an", "object"]')
        lines.insert(25, b'{"id": "' + domain.encode() + b'-notext", "domain": "' + domain.encode() + b'"}')
        lines.insert(30, b'{"id": "' + domain.encode() + b'-empty", "text": "   ", "domain": "' + domain.encode() + b'"}')
    return lines


def eval_sets(shared):
    """Held-out evaluation texts per domain, disjoint from raw/ (other
    documents of the same sources; other languages for multilingual)."""
    out = {}
    raw = open(f"{shared}/data/calibration/exllamav2/tiny.utf8", encoding="utf-8").read()
    parts = [p.strip() for p in re.split(r"\n\s*\n", raw) if len(p.strip()) > 200]
    out["stories"] = [cap(p, 2000) for p in parts[120:134]]
    raw = open(f"{shared}/data/calibration/exllamav2/wiki.utf8", encoding="utf-8").read()
    docs = re.findall(r"<doc [^>]*>\n(.*?)</doc>", raw, flags=re.S)
    out["wiki"] = [cap(d.strip(), 3000) for d in docs[300:330] if len(d) > 1500][:6]
    rows = [json.loads(l) for l in open(f"{shared}/data/web/c4_demo.jsonl", encoding="utf-8")]
    out["web"] = [cap(r["text"], 2500) for r in rows[260:272]]
    items = json.load(open(f"{shared}/data/code/gpteacher-codegen-instruct.json", encoding="utf-8"))
    out["code"] = ["\n".join(x for x in [it["instruction"], it.get("input") or "", it["response"]] if x)
                   for it in items[600:640]]
    rows = [json.loads(l) for l in open(f"{shared}/data/math/gsm8k_test.jsonl", encoding="utf-8")]
    out["math"] = [f"Question: {r['question']}\nAnswer: {r['answer']}" for r in rows[500:530]]
    items = json.load(open(f"{shared}/data/chat/llamafactory_dpo_en_demo.json", encoding="utf-8"))
    out["chat"] = []
    for it in items[150:162]:
        turns = [f"{'User' if c['from'] == 'human' else 'Assistant'}: {c['value']}" for c in it["conversations"]]
        turns.append(f"Assistant: {it['chosen']['value']}")
        out["chat"].append(cap("\n\n".join(turns), 2500))
    out["multilingual"] = []
    for code3 in ["nld", "por_BR", "ukr", "kor", "ind", "swh"]:
        text = open(f"{shared}/data/multilingual/udhr2/{code3}.txt", encoding="utf-8").read()
        lines = [l.strip() for l in text.splitlines() if l.strip()]
        out["multilingual"].append(" ".join(lines[: int(len(lines) * 0.25)]))
    return out


def main():
    shared, outdir = sys.argv[1], sys.argv[2]
    evaldir = os.path.join(os.path.dirname(os.path.abspath(outdir)), "eval")
    os.makedirs(evaldir, exist_ok=True)
    for domain, texts in eval_sets(shared).items():
        with open(f"{evaldir}/{domain}.jsonl", "w", encoding="utf-8") as f:
            for i, t in enumerate(texts):
                f.write(json.dumps({"id": f"eval-{domain}-{i + 1:03d}", "text": t, "domain": domain},
                                   ensure_ascii=False) + "\n")
    os.makedirs(outdir, exist_ok=True)
    for domain, fn in [("web", web), ("wiki", wiki), ("code", code), ("chat", chat), ("math", math),
                       ("multilingual", multilingual), ("stories", stories)]:
        lines = dirty(domain, fn(shared))
        with open(f"{outdir}/{domain}.jsonl", "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
    with open(f"{outdir}/chat-messages.jsonl", "w", encoding="utf-8") as f:
        for i, r in enumerate(chat_messages(shared)):
            f.write(json.dumps({"id": f"chatmsg-{i + 1:04d}", **r, "domain": "chat"}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
