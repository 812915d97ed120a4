#!/usr/bin/env python3
"""Generate an English-like JSONL web corpus for benchmarks (deterministic).

Each line is {"id": "doc-00000001", "text": "...", "domain": "news"}, about
1 KB on average (log-normal lengths from ~100 B to ~8 KB).  Texts are
sentences of common English words (Zipf-weighted) mixed with the domain's
topic words, with paragraphs, punctuation and, in about 5% of records, a
non-ASCII character (curly apostrophe, dash, accented word), as web text
has.  Planted among them:

  ~5% exact duplicates      an earlier text again, under a new id
  ~1% normalized variants   an earlier text with changed case and spacing
  ~3% near duplicates       an earlier text with 2-10% of its words edited
                            (substituted, inserted, deleted)

Only the Python standard library is used; the same --seed and --size-mb
give the same bytes.

    python3 tests/bench/gen_corpus.py --size-mb 200 --out /tmp/corpus.jsonl
"""
import argparse
import json
import math
import random
import sys

COMMON = """
the of and to a in is it you that he was for on are with as I his they be at one
have this from or had by not word but what some we can out other were all there
when up use your how said an each she which do their time if will way about many
then them write would like so these her long make thing see him two has look more
day could go come did number sound no most people my over know water than call
first who may down side been now find any new work part take get place made live
where after back little only round man year came show every good me give our under
name very through just form sentence great think say help low line differ turn
cause much mean before move right boy old too same tell does set three want air
well also play small end put home read hand port large spell add even land here
must big high such follow act why ask men change went light kind off need house
picture try us again animal point mother world near build self earth father head
stand own page should country found answer school grow study still learn plant
cover food sun four between state keep eye never last let thought city tree cross
farm hard start might story saw far sea draw left late run while press close night
real life few north open seem together next white children begin got walk example
ease paper group always music those both mark often letter until mile river car
feet care second book carry took science eat room friend began idea fish mountain
stop once base hear horse cut sure watch color face wood main enough plain girl
usual young ready above ever red list though feel talk bird soon body dog family
direct pose leave song measure door product black short numeral class wind
question happen complete ship area half rock order fire south problem piece told
knew pass since top whole king space heard best hour better true during hundred
five remember step early hold west ground interest reach fast verb sing listen six
table travel less morning ten simple several vowel toward war lay against pattern
slow center love person money serve appear road map rain rule govern pull cold
notice voice unit power town fine certain fly fall lead cry dark machine note
wait plan figure star box noun field rest correct able pound done beauty drive
stood contain front teach week final gave green oh quick develop ocean warm free
minute strong special mind behind clear tail produce fact street inch multiply
nothing course stay wheel full force blue object decide surface deep moon island
foot system busy test record boat common gold possible plane stead dry wonder
laugh thousand ago ran check game shape equate hot miss brought heat snow tire
bring yes distant fill east paint language among grand ball yet wave drop heart
am present heavy dance engine position arm wide sail material size vary settle
speak weight general ice matter circle pair include divide syllable felt perhaps
pick sudden count square reason length represent art subject region energy hunt
probable bed brother egg ride cell believe fraction forest sit race window store
summer train sleep prove lone leg exercise wall catch mount wish sky board joy
winter sat written wild instrument kept glass grass cow job edge sign visit past
soft fun bright gas weather month million bear finish happy hope flower clothe
strange gone jump baby eight village meet root buy raise solve metal whether push
seven paragraph third shall held hair describe cook floor either result burn hill
safe cat century consider type law bit coast copy phrase silent tall sand soil
roll temperature finger industry value fight lie beat excite natural view sense
ear else quite broke case middle kill son lake moment scale loud spring observe
child straight consonant nation dictionary milk speed method organ pay age
section dress cloud surprise quiet stone tiny climb cool design poor lot
experiment bottom key iron single stick flat twenty skin smile crease hole trade
melody trip office receive row mouth exact symbol die least trouble shout except
wrote seed tone join suggest clean break lady yard rise bad blow oil blood touch
grew cent mix team wire cost lost brown wear garden equal sent choose fell fit
flow fair bank collect save control decimal gentle woman captain practice
separate difficult doctor please protect noon whose locate ring character insect
caught period indicate radio spoke atom human history effect electric expect
crop modern element hit student corner party supply bone rail imagine provide
agree thus capital chair danger fruit rich thick soldier process operate guess
necessary sharp wing create neighbor wash bat rather crowd corn compare poem
string bell depend meat rub tube famous dollar stream fear sight thin triangle
planet hurry chief colony clock mine tie enter major fresh search send yellow gun
allow print dead spot desert suit current lift rose continue block chart hat sell
success company subtract event particular deal swim term opposite wife shoe
shoulder spread arrange camp invent cotton born determine quart nine truck noise
level chance gather shop stretch throw shine property column molecule select
wrong gray repeat require broad prepare salt nose plural anger claim continent
oxygen sugar death pretty skill women season solution magnet silver thank branch
match suffix especially fig afraid huge sister steel discuss forward similar
guide experience score apple bought led pitch coat mass card band rope slip win
dream evening condition feed tool total basic smell valley nor double seat arrive
master track parent shore division sheet substance favor connect post spend chord
fat glad original share station dad bread charge proper bar offer segment slave
duck instant market degree populate chick dear enemy reply drink occur support
speech nature range steam motion path liquid log meant quotient teeth shell neck
""".split()

TOPICS = {
    "news": "government minister election policy report official statement vote parliament "
            "crisis agency spokesman protest investigation court reform budget campaign "
            "president senator mayor council announcement officials sources ruling".split(),
    "sports": "match season coach player team league goal victory defeat championship "
              "tournament striker keeper injury transfer score stadium fans referee "
              "points playoff record medal training squad".split(),
    "tech": "software update device users data server network cloud security app release "
            "feature browser privacy developer code platform chip battery screen startup "
            "algorithm storage bug patch".split(),
    "recipes": "flour butter sugar oven bake minutes stir pan sauce garlic onion salt pepper "
               "cream cheese dough bowl mix heat simmer chop serve taste recipe ingredients".split(),
    "travel": "hotel flight beach museum tour city guide trip visit airport booking "
              "island village views local restaurant journey map hiking coast station "
              "passport luggage ferry".split(),
    "health": "patients doctor symptoms treatment study risk disease hospital health "
              "diet sleep exercise blood heart vaccine clinic therapy pain medicine "
              "nurse infection dose recovery".split(),
    "finance": "market shares stock investors price rate bank inflation growth profit "
               "revenue quarter earnings fund debt loan tax economy interest trading "
               "bond dividend assets".split(),
    "forum": "thanks anyone help question problem tried works issue post thread reply "
             "edit lol guys advice opinion experience recommend install setup "
             "solved cheers weird".split(),
}
DOMAINS = list(TOPICS)
NON_ASCII = ["\u2019s", "\u2014", "caf\u00e9", "na\u00efve", "\u201cquoted\u201d", "r\u00e9sum\u00e9",
             "\u00b0C", "\u20ac"]


def make_text(rng, cw, domain, target_bytes):
    topic = TOPICS[domain]
    out = []
    size = 0
    sentences_in_par = 0
    while size < target_bytes:
        n = rng.randint(6, 24)
        words = rng.choices(COMMON, cum_weights=cw, k=n)
        for i in range(n):
            if rng.random() < 0.18:
                words[i] = rng.choice(topic)
        if rng.random() < 0.3:
            words[rng.randrange(n - 1)] += ","
        words[0] = words[0].capitalize()
        r = rng.random()
        s = " ".join(words) + ("." if r < 0.85 else "?" if r < 0.93 else "!")
        out.append(s)
        size += len(s) + 1
        sentences_in_par += 1
        if sentences_in_par >= 3 and rng.random() < 0.25:
            out.append("\n\n")
            sentences_in_par = 0
    text = " ".join(out).replace(" \n\n ", "\n\n").strip()
    if rng.random() < 0.05:
        ws = text.split(" ")
        ws.insert(rng.randrange(len(ws)), rng.choice(NON_ASCII))
        text = " ".join(ws)
    return text


def edit_words(rng, text, frac):
    """Edit about frac of the words (at least one): substitute, insert or delete."""
    words = text.split(" ")
    n_edits = max(1, round(frac * len(words)))
    for _ in range(n_edits):
        op = rng.randrange(3)
        i = rng.randrange(len(words))
        if op == 0:
            words[i] = rng.choice(COMMON)
        elif op == 1:
            words.insert(i, rng.choice(COMMON))
        elif len(words) > 1:
            del words[i]
    return " ".join(words)


def variant(rng, text):
    """Same text for a case-folding, whitespace-collapsing comparison."""
    r = rng.random()
    if r < 0.34:
        return text.upper()
    if r < 0.67:
        return "  " + text.replace(" ", "  ", 3) + "\n"
    return text.lower().replace(". ", ".\t", 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=200.0, help="stop after this many MB (1e6 bytes)")
    ap.add_argument("--out", default="-", help="output file (default: standard output)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mean-bytes", type=int, default=1000, help="mean text length")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    weights = [1.0 / (r + 1.5) for r in range(len(COMMON))]
    cw = []
    acc = 0.0
    for w in weights:
        acc += w
        cw.append(acc)
    limit = int(args.size_mb * 1e6)
    mu = math.log(args.mean_bytes) - 0.5 * 0.6 ** 2
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8", newline="\n")
    pool = []  # recent originals: (text, domain)
    written = 0
    i = 0
    while written < limit:
        i += 1
        r = rng.random()
        if pool and r < 0.05:
            text, domain = rng.choice(pool)
        elif pool and r < 0.06:
            text, domain = rng.choice(pool)
            text = variant(rng, text)
        elif pool and r < 0.09:
            text, domain = rng.choice(pool)
            text = edit_words(rng, text, rng.uniform(0.02, 0.10))
        else:
            domain = rng.choice(DOMAINS)
            target = min(8000, max(100, int(rng.lognormvariate(mu, 0.6))))
            text = make_text(rng, cw, domain, target)
            if len(pool) < 20000:
                pool.append((text, domain))
            else:
                pool[rng.randrange(len(pool))] = (text, domain)
        line = json.dumps({"id": "doc-%08d" % i, "text": text, "domain": domain}, ensure_ascii=False)
        out.write(line)
        out.write("\n")
        written += len(line.encode("utf-8")) + 1
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
