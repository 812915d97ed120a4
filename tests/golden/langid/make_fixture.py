#!/usr/bin/env python3
"""Cut the committed language-id fixture from the UDHR texts in ../shared.

    python3 tests/golden/langid/make_fixture.py /work/shared/data/multilingual/udhr2 \
        > tests/golden/langid/udhr_sample.tsv

Paragraphs are built exactly as tests/unit/test_langid_accuracy.c builds
them: the file's lines with ASCII spaces, tabs and CRs trimmed, blank lines
skipped, consecutive lines joined with a newline until the unit holds at
least 100 characters (code points); a shorter remainder at the end is
dropped.  Three paragraphs per language are kept (the 4th, 12th and 20th),
written as  lang TAB script TAB text  with the newlines inside a paragraph
written as the two characters \\n.  lang is the ISO 639-1 code the file's
name stands for and script the ISO 15924 code of its writing system: the
truth, not what any detector said.
"""
import os
import sys

# file stem -> (ISO 639-1, ISO 15924)
LABELS = {
    "arb": ("ar", "Arab"), "ben": ("bn", "Beng"), "cmn_hans": ("zh", "Hani"),
    "cmn_hant": ("zh", "Hani"), "deu": ("de", "Latn"), "eng": ("en", "Latn"),
    "fra": ("fr", "Latn"), "heb": ("he", "Hebr"), "hin": ("hi", "Deva"),
    "ind": ("id", "Latn"), "ita": ("it", "Latn"), "jpn": ("ja", "Jpan"),
    "kor": ("ko", "Hang"), "nld": ("nl", "Latn"), "pol": ("pl", "Latn"),
    "por_BR": ("pt", "Latn"), "rus": ("ru", "Cyrl"), "spa": ("es", "Latn"),
    "swh": ("sw", "Latn"), "tha": ("th", "Thai"), "tur": ("tr", "Latn"),
    "ukr": ("uk", "Cyrl"), "vie": ("vi", "Latn"),
}


def paragraphs(path, min_chars=100):
    unit = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip(" \t\r\n")
            if not line:
                continue
            unit.append(line)
            if sum(len(x) for x in unit) + len(unit) - 1 >= min_chars:
                yield "\n".join(unit)
                unit = []


def main():
    src = sys.argv[1]
    for stem in sorted(LABELS):
        paras = list(paragraphs(os.path.join(src, stem + ".txt")))
        lang, script = LABELS[stem]
        for i in (3, 11, 19):
            text = paras[i].replace("\\", "\\\\").replace("\n", "\\n")
            print(f"{lang}\t{script}\t{text}")


if __name__ == "__main__":
    main()
