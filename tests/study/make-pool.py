#!/usr/bin/env python3
"""Build the raw multi-domain pool for the calibration study (issue #6).

Every source in ../shared/data outside data/eval becomes JSONL records
{"id", "text", "domain", "source"} in OUT/<domain>.jsonl.  Parts of a source
that data/eval was cut from are left out, so the evaluation domains stay
held out:

  wiki.test.raw          articles 13-62 only (eval/wiki is the first 12)
  c4_demo.jsonl          documents 122-300 only (eval/web is the first 121)
  gsm8k_test.jsonl       records 0-1054 only (eval/math is 1055-1318)
  udhr2/*.txt            the first 70% of each file (eval uses the last 30%)
  HumanEval, MT-bench    not used at all (eval/code and eval/chat are them)

Long documents are cut into records of whole paragraphs up to --max-chars
(default 1500), so record lengths vary the way real calibration candidates
do.  Deterministic; stdlib only.

    python3 tests/study/make-pool.py ../shared pool/
"""
import argparse
import json
import os
import re


def paragraphs(text):
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def pack(paras, max_chars):
    """Group consecutive paragraphs into chunks of at most max_chars."""
    out, cur = [], ""
    for p in paras:
        while len(p) > max_chars:  # one huge paragraph: cut at a sentence end
            cut = p.rfind(". ", 0, max_chars)
            cut = cut + 1 if cut > max_chars // 3 else max_chars
            if cur:
                out.append(cur)
                cur = ""
            out.append(p[:cut].strip())
            p = p[cut:].strip()
        if cur and len(cur) + 2 + len(p) > max_chars:
            out.append(cur)
            cur = ""
        cur = f"{cur}\n\n{p}" if cur else p
    if cur:
        out.append(cur)
    return [c for c in out if len(c) >= 40]


class Pool:
    def __init__(self, outdir, max_chars):
        self.outdir, self.max_chars = outdir, max_chars
        self.files, self.counts = {}, {}

    def add(self, domain, source, text, pack_it=True, **extra):
        chunks = pack(paragraphs(text), self.max_chars) if pack_it else [text.strip()]
        f = self.files.get(domain)
        if f is None:
            f = self.files[domain] = open(os.path.join(self.outdir, f"{domain}.jsonl"), "w", encoding="utf-8")
        for c in chunks:
            if not c:
                continue
            n = self.counts.get(domain, 0) + 1
            self.counts[domain] = n
            rec = {"id": f"{domain}-{n:06d}", "text": c, "domain": domain, "source": source, **extra}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def close(self):
        for f in self.files.values():
            f.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shared")
    ap.add_argument("outdir")
    ap.add_argument("--max-chars", type=int, default=1500)
    a = ap.parse_args()
    d = os.path.join(a.shared, "data")
    os.makedirs(a.outdir, exist_ok=True)
    pool = Pool(a.outdir, a.max_chars)
    read = lambda *p: open(os.path.join(d, *p), encoding="utf-8").read()

    # ExLlamaV2 calibration files.
    ex = ("calibration", "exllamav2")
    for line in read(*ex, "c4.utf8").splitlines():
        if line.strip():
            pool.add("web", "exllamav2/c4", line)
    pool.add("code", "exllamav2/code", read(*ex, "code.utf8"))
    pool.add("multilingual", "exllamav2/multilingual", read(*ex, "multilingual.utf8"))
    pool.add("technical", "exllamav2/technical", read(*ex, "technical.utf8"))
    pool.add("stories", "exllamav2/tiny", read(*ex, "tiny.utf8"))
    for doc in re.findall(r"<doc [^>]*>\n(.*?)</doc>", read(*ex, "wiki.utf8"), flags=re.S):
        pool.add("wiki", "exllamav2/wiki", doc)
    pool.add("misc", "llamacpp/groups_merged", read("calibration", "llamacpp-imatrix", "groups_merged.txt"))

    # WikiText-2 test, articles 13-62 (split at " = Title = " lines).
    raw = read("wiki", "wikitext-2-raw", "wiki.test.raw")
    starts = [m.start() for m in re.finditer(r"^ = [^=].* = $", raw, flags=re.M)]
    for i, s in enumerate(starts):
        if i < 12:
            continue
        e = starts[i + 1] if i + 1 < len(starts) else len(raw)
        pool.add("wiki", "wikitext-2/test", raw[s:e])

    # C4 sample, documents 122-300.
    rows = [json.loads(l) for l in open(os.path.join(d, "web", "c4_demo.jsonl"), encoding="utf-8")]
    for r in rows[121:]:
        pool.add("web", "c4_demo", r["text"])

    # GPTeacher code and roleplay.
    for it in json.load(open(os.path.join(d, "code", "gpteacher-codegen-instruct.json"), encoding="utf-8")):
        parts = [it["instruction"], it.get("input") or "", it["response"]]
        pool.add("code", "gpteacher-codegen", "\n".join(p for p in parts if p), pack_it=False)
    for it in json.load(open(os.path.join(d, "roleplay", "gpteacher-roleplay-instruct.json"), encoding="utf-8")):
        parts = [it["instruction"], it.get("input") or "", it["response"]]
        pool.add("roleplay", "gpteacher-roleplay", "\n".join(p for p in parts if p), pack_it=False)

    # GSM8K test records 0-1054.
    rows = [json.loads(l) for l in open(os.path.join(d, "math", "gsm8k_test.jsonl"), encoding="utf-8")]
    for r in rows[:1055]:
        pool.add("math", "gsm8k", f"Question: {r['question']}\nAnswer: {r['answer']}", pack_it=False)

    # LLaMA-Factory DPO demo: conversations + chosen, as User/Assistant text.
    for it in json.load(open(os.path.join(d, "chat", "llamafactory_dpo_en_demo.json"), encoding="utf-8")):
        turns = [f"{'User' if c['from'] == 'human' else 'Assistant'}: {c['value']}" for c in it["conversations"]]
        turns.append(f"Assistant: {it['chosen']['value']}")
        pool.add("chat", "llamafactory-dpo-demo", "\n\n".join(turns))

    # UDHR, first 70% of the lines of each of the 23 extracted files.
    udir = os.path.join(d, "multilingual", "udhr2")
    for name in sorted(os.listdir(udir)):
        lines = open(os.path.join(udir, name), encoding="utf-8").read().splitlines()
        keep = lines[: int(len(lines) * 0.7)]
        pool.add("multilingual", f"udhr/{name[:-4]}", "\n\n".join(l for l in keep if l.strip()))

    pool.close()
    for dom in sorted(pool.counts):
        print(f"{dom:14s} {pool.counts[dom]:6d} records")
    print(f"{'total':14s} {sum(pool.counts.values()):6d} records")


if __name__ == "__main__":
    main()
