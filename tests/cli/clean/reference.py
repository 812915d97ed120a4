#!/usr/bin/env python3
"""curate-clean's text stages against an independent Python reference.

Generates records with messy text (invalid UTF-8, controls, invisible
characters, every kind of Unicode whitespace, decomposed and compatibility
characters, emoji joiners), runs curate-clean with --no-quality under each
cleaning option, and checks every record:

  - the cleaned text equals the reference (bytes.decode('utf-8', 'replace'),
    the removal rules of curate-clean(1), unicodedata's NFC/NFKC, the
    whitespace rules), or the record was rejected as empty_text when the
    reference text is empty;
  - a record whose text did not change is written byte for byte; one whose
    text changed keeps every other member, in order;
  - read = written + rejected in --stats, and the output and rejects files
    hold exactly those counts.

Only characters assigned in Python's Unicode version are used: their
normalization cannot differ in utf8proc's newer Unicode (the stability
policy).  Exit status 0 = pass, 1 = fail.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import unicodedata as ud

PIECES = [
    "word", "Hello", "caf\u00e9", "e\u0301", "A\u030a", "\u212b", "\ufb01", "\uff21\uff42",
    "x\u00b2", "\u1100\u1161\u11a8", "\u0915\u093c", "\u4e2d\u6587", "\u0645\u06cc",
    "\U0001F468", "\U0001F469", "\u2026", "\u201cq\u201d", "a\u0323\u0301",
    " ", " ", " ", "  ", "\t", "\n", "\n\n", "\n\n\n", "\r\n", "\r", "\x0b", "\x0c",
    "\u0085", "\u00a0", "\u3000", "\u2003", "\u2028", "\u2029", "\u202f",
    "\x01", "\x07", "\x1f", "\x7f", "\x00", "\u0080", "\u009f",
    "\u200b", "\u200c", "\u200d", "\u200e", "\ufeff", "\u00ad", "\u202e", "\u2066", "\u061c",
    "\ufe0f",
]
BAD_BYTES = [b"\xff", b"\xc0\xaf", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]

WHITE = set("\t\n\x0b\x0c\r \u0085\u00a0\u1680\u2028\u2029\u202f\u205f\u3000") | {
    chr(c) for c in range(0x2000, 0x200B)}
BREAKS = set("\n\x0b\x0c\r\u0085\u2028")
ZW_DROP = {0x00AD, 0x061C, 0x180E, 0x200B, 0x200E, 0x200F, 0xFEFF} | set(range(0x202A, 0x202F)) \
    | set(range(0x2060, 0x2065)) | set(range(0x2066, 0x206A))
JOINERS = {0x200C, 0x200D}


def invisible(c):
    return ord(c) in ZW_DROP or ord(c) in JOINERS


def strip(text, control, zw):
    out = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        o = ord(c)
        if control and (o < 0x20 or 0x7F <= o <= 0x9F) and c not in "\t\n":
            if c == "\r" and i + 1 < n and text[i + 1] == "\n":
                pass
            elif c in "\r\x0b\x0c\x85":
                out.append("\n")
            i += 1
            continue
        if zw and o in ZW_DROP:
            i += 1
            continue
        if zw and o in JOINERS:
            prev = out[-1] if out else None
            nxt = text[i + 1] if i + 1 < n else None
            # a neighbour must be visible: not ASCII, not invisible, not a
            # (C1) control
            ok = lambda ch: ch is not None and ord(ch) > 0x9F and not invisible(ch)
            if ok(prev) and ok(nxt):
                out.append(c)
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def whitespace(text, keep_newlines):
    out = []
    in_ws = False
    breaks = 0
    prev_cr = False
    for c in text:
        if c in WHITE:
            in_ws = True
            if c in BREAKS and not (c == "\n" and prev_cr):
                breaks += 1
            if c == "\u2029":
                breaks += 2
        else:
            if in_ws and out:
                if keep_newlines and breaks >= 2:
                    out.append("\n\n")
                elif keep_newlines and breaks:
                    out.append("\n")
                else:
                    out.append(" ")
            in_ws = False
            breaks = 0
            out.append(c)
        prev_cr = c == "\r"
    return "".join(out)


def clean(raw, opts):
    text = raw.decode("utf-8", "replace")
    if "control" in opts or "zw" in opts:
        text = strip(text, "control" in opts, "zw" in opts)
    if opts.get("norm", "nfc") != "none":
        text = ud.normalize(opts.get("norm", "nfc").upper(), text)
    if "ws" in opts:
        text = whitespace(text, "one_line" not in opts)
    return text


def make_records(rng, count):
    """(id, raw text bytes, JSON line bytes) per record."""
    recs = []
    for i in range(count):
        parts = []
        for _ in range(rng.randint(0, 25)):
            if rng.random() < 0.04:
                parts.append(rng.choice(BAD_BYTES))
            else:
                parts.append(rng.choice(PIECES).encode("utf-8"))
        raw = b"".join(parts)
        # The JSON string: raw UTF-8 where possible (invalid bytes stay raw),
        # escapes for what JSON requires, sometimes \\u escapes for the rest.
        esc = []
        for piece in parts:
            try:
                s = piece.decode("utf-8")
            except UnicodeDecodeError:
                esc.append(piece)
                continue
            dumped = json.dumps(s, ensure_ascii=rng.random() < 0.3)[1:-1]
            esc.append(dumped.encode("utf-8"))
        line = b'{"id":%d,"text":"%s","keep":[1, 2.50]}' % (i, b"".join(esc))
        recs.append((i, raw, line))
    return recs


OPTION_SETS = [
    ([], {"control": 1, "zw": 1, "norm": "nfc", "ws": 1}),
    (["--normalize", "nfkc"], {"control": 1, "zw": 1, "norm": "nfkc", "ws": 1}),
    (["--normalize", "none"], {"control": 1, "zw": 1, "norm": "none", "ws": 1}),
    (["--keep-control"], {"zw": 1, "norm": "nfc", "ws": 1}),
    (["--keep-invisible"], {"control": 1, "norm": "nfc", "ws": 1}),
    (["--keep-whitespace"], {"control": 1, "zw": 1, "norm": "nfc"}),
    (["--one-line"], {"control": 1, "zw": 1, "norm": "nfc", "ws": 1, "one_line": 1}),
    (["--keep-control", "--keep-invisible", "--keep-whitespace", "--normalize", "none"], {"norm": "none"}),
]


def run_case(binary, records, args, opts, tmp):
    inp = os.path.join(tmp, "in.jsonl")
    out = os.path.join(tmp, "out.jsonl")
    rej = os.path.join(tmp, "rej.jsonl")
    stats = os.path.join(tmp, "stats.json")
    with open(inp, "wb") as f:
        f.write(b"".join(r[2] + b"\n" for r in records))
    cmd = [os.path.join(binary, "curate-clean"), "-q", "--no-quality", "-o", out,
           "--rejects", rej, "--stats", stats] + args + [inp]
    p = subprocess.run(cmd, capture_output=True)
    errors = []
    if p.returncode != 0:
        return ["%s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr.decode(errors="replace"))]
    outs = open(out, "rb").read().splitlines()
    rejs = open(rej, "rb").read().splitlines()
    st = json.load(open(stats))
    rec = st["records"]
    if rec["read"] != len(records) or rec["read"] != rec["written"] + rec["rejected"] \
            or rec["written"] != len(outs) or rec["rejected"] != len(rejs):
        errors.append("counts: %s, %d out, %d rejects" % (rec, len(outs), len(rejs)))
    by_id = {}
    for line in outs:
        by_id[json.loads(line)["id"]] = line
    rejected = {}
    for line in rejs:
        d = json.loads(line.decode("utf-8", "replace"))
        rejected[d["id"]] = d["_reject"]
    for rid, raw, line in records:
        want = clean(raw, opts)
        if want == "":
            if rejected.get(rid) != "empty_text":
                errors.append("%s: record %d: expected empty_text, got %r" % (args, rid, by_id.get(rid)))
            continue
        got_line = by_id.get(rid)
        if got_line is None:
            errors.append("%s: record %d missing (rejected as %s)" % (args, rid, rejected.get(rid)))
            continue
        got = json.loads(got_line)
        if got["text"] != want:
            errors.append("%s: record %d: text %r, reference %r (input %r)" % (args, rid, got["text"], want, raw))
            continue
        try:
            original = raw.decode("utf-8")
        except UnicodeDecodeError:
            original = None  # repaired, so rewritten
        if want == original:
            if got_line != line:
                errors.append("%s: record %d unchanged but not byte-identical" % (args, rid))
        elif list(got.keys()) != ["id", "text", "keep"] or got["keep"] != [1, 2.5] \
                or not got_line.endswith(b',"keep":[1, 2.50]}'):
            errors.append("%s: record %d: other members changed: %r" % (args, rid, got_line))
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--records", type=int, default=400)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    records = make_records(rng, a.records)
    errors = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("CURATE_TMP")) as tmp:
        for args, opts in OPTION_SETS:
            errors += run_case(a.bin, records, args, opts, tmp)
    for e in errors[:20]:
        print("FAIL:", e)
    if errors:
        print("FAIL: %d mismatches" % len(errors))
        return 1
    print("PASS: %d records x %d option sets match the reference" % (len(records), len(OPTION_SETS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
