/*
 * curate-lang-filter - identify the language and script of each record's
 * text (CLD2 through libcurate's shim), annotate the record, and keep or
 * reject it by language and confidence.
 *
 * The decision for one record, in this order (docs/curate-lang-filter.1):
 *   --keep given and lang not listed  -> lang_not_kept
 *   --drop given and lang listed      -> lang_dropped
 *   lang known and score < --min-score -> lang_score
 *   lang "und" and --min-score > 0 (unless --keep lists und) -> unknown
 * where a rejection of an "und" record is named lang_short when the text
 * had too few letters to ask CLD2, and lang_unknown otherwise.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "curate/langid.h"

enum {
    OPT_KEEP = 1000, OPT_DROP, OPT_MIN_SCORE, OPT_MIN_CHARS, OPT_MAX_BYTES, OPT_QUICK_BYTES,
    OPT_TOP3, OPT_LIST
};

static const cli_option options[] = {
    {"keep", 'k', CLI_REQ_ARG, "LIST",
     "keep only records whose lang is in LIST,\n"
     "comma-separated (en,zh; 'und': unknown)", OPT_KEEP},
    {"drop", 'd', CLI_REQ_ARG, "LIST", "reject records whose lang is in LIST", OPT_DROP},
    {"min-score", 's', CLI_REQ_ARG, "X",
     "reject records whose lang_score is below X,\n"
     "0 to 1 (default 0: no threshold)", OPT_MIN_SCORE},
    {"min-chars", 0, CLI_REQ_ARG, "N",
     "texts with fewer than N letters get lang 'und'\n"
     "without asking CLD2 (default 20; 0: never)", OPT_MIN_CHARS},
    {"max-bytes", 0, CLI_REQ_ARG, "N",
     "show CLD2 at most N bytes of a text, sampled in\n"
     "windows over all of it (default 2K; 128 to 64M;\n"
     "K and M suffixes)", OPT_MAX_BYTES},
    {"quick-bytes", 0, CLI_REQ_ARG, "N",
     "first try a sample of N bytes and stop there if\n"
     "it is clearly one language (default 256; 0: off)", OPT_QUICK_BYTES},
    {"top3", 0, CLI_NO_ARG, NULL,
     "also add lang_top: up to three\n"
     "{\"lang\",\"percent\"} objects, largest first", OPT_TOP3},
    {"list-languages", 0, CLI_NO_ARG, NULL,
     "print the codes CLD2 answers, with names; exit", OPT_LIST},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const cli_tool tool = {
    "curate-lang-filter",
    "[OPTION]... [FILE]...",
    "Identify the language and script of JSONL records; keep or reject by language.",
    "Reads JSON Lines from the FILEs in order (standard input if none, or '-'),\n"
    "adds \"lang\" (ISO 639-1 code where one exists, 'und' if unknown),\n"
    "\"lang_score\" (0 to 1) and \"script\" (ISO 15924 code) to each record, and\n"
    "writes the records that pass --keep, --drop and --min-score.  Rejected\n"
    "records go to --rejects with \"_lang\", \"_lang_score\" and \"_script\".",
    options,
    CLI_COMMON_ALL,
    "Reject reasons: lang_not_kept, lang_dropped, lang_score, lang_unknown\n"
    "(CLD2 could not tell), lang_short (fewer than --min-chars letters).\n"
    "lang_score = percent/100 * min(1, normalized_score/512), halved when CLD2\n"
    "calls its answer unreliable.",
};

/* ---- language lists --------------------------------------------------------- */

#define MAX_LIST 128

typedef struct lang_list {
    const char *codes[MAX_LIST];
    size_t n;
    int given;
} lang_list;

/*
 * Parse "en,zh,und" into list.  Codes are matched case-insensitively and
 * mapped like CLD2's own (iw -> he, zh-Hant -> zh); a code the detector can
 * never answer is a usage error, since it would silently match nothing.
 */
static void parse_list(const char *opt, const char *arg, lang_list *list)
{
    list->given = 1;
    const char *p = arg;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0)
            cli_usage_error("%s: empty language code in '%s'", opt, arg);
        char code[16];
        if (len >= sizeof code)
            cli_usage_error("%s: '%.*s' is not a language code", opt, (int)len, p);
        /* BCP 47 case: language lower, script title ("Hant"), region
         * upper ("ME"), as CLD2 writes its codes. */
        memcpy(code, p, len);
        code[len] = 0;
        char *dash = strchr(code, '-');
        for (char *q = code; *q && q != dash; q++)
            *q = (char)tolower((unsigned char)*q);
        if (dash) {
            size_t sub = strlen(dash + 1);
            for (size_t i = 0; i < sub; i++) {
                unsigned char c = (unsigned char)dash[1 + i];
                dash[1 + i] = (char)(sub == 2 || i == 0 ? toupper(c) : tolower(c));
            }
        }
        const char *mapped = curate_langid_code_from_cld2(code);
        if (mapped == code) {
            /* Not a CLD2 alias: it must be a code from the list. */
            size_t n = curate_langid_language_count();
            mapped = NULL;
            for (size_t i = 0; i < n && !mapped; i++) {
                const char *c;
                curate_langid_language(i, &c, NULL);
                if (strcmp(c, code) == 0)
                    mapped = c;
            }
            if (!mapped && strcmp(code, "und") == 0)
                mapped = "und";
        } else if (strcmp(mapped, "und") == 0 && strcmp(code, "un") != 0) {
            mapped = NULL; /* "xx-Latn" and the joke codes are not choices */
        }
        if (!mapped)
            cli_usage_error("%s: '%s' is not a language code CLD2 answers "
                            "(see --list-languages)", opt, code);
        int dup = 0;
        for (size_t i = 0; i < list->n; i++)
            dup |= strcmp(list->codes[i], mapped) == 0;
        if (!dup) {
            if (list->n == MAX_LIST)
                cli_usage_error("%s: more than %d languages", opt, MAX_LIST);
            list->codes[list->n++] = mapped;
        }
        if (!e)
            break;
        p = e + 1;
    }
}

static int in_list(const lang_list *list, const char *code)
{
    for (size_t i = 0; i < list->n; i++)
        if (strcmp(list->codes[i], code) == 0)
            return 1;
    return 0;
}

/* ---- counts for --stats -------------------------------------------------------- */

typedef struct counter {
    const char *key[160];
    uint64_t n[160];
    size_t used;
} counter;

static void count(counter *c, const char *key)
{
    /* Codes are static strings from the library: compare pointers first. */
    for (size_t i = 0; i < c->used; i++)
        if (c->key[i] == key || strcmp(c->key[i], key) == 0) {
            c->n[i]++;
            return;
        }
    if (c->used < sizeof c->key / sizeof c->key[0]) {
        c->key[c->used] = key;
        c->n[c->used++] = 1;
    }
}

static void append_counts(curate_buf *b, const char *name, const counter *c)
{
    curate_buf_printf(b, ",\"%s\":{", name);
    for (size_t i = 0; i < c->used; i++) {
        if (i)
            curate_buf_append_char(b, ',');
        curate_buf_append_json_string(b, c->key[i], strlen(c->key[i]));
        curate_buf_printf(b, ":%llu", (unsigned long long)c->n[i]);
    }
    curate_buf_append_char(b, '}');
}

/* ---- main --------------------------------------------------------------------- */

typedef struct settings {
    lang_list keep, drop;
    double min_score;
    curate_langid_opts opts;
    int top3;
} settings;

static void parse_options(int argc, char **argv, cli_run *run, settings *s, int *first)
{
    const char *arg;
    int id, optind_out = 1;
    while ((id = cli_getopt(argc, argv, &arg, &optind_out)) != -1) {
        if (cli_run_option(run, id, arg))
            continue;
        switch (id) {
        case OPT_KEEP: parse_list("--keep", arg, &s->keep); break;
        case OPT_DROP: parse_list("--drop", arg, &s->drop); break;
        case OPT_MIN_SCORE: s->min_score = cli_parse_double("--min-score", arg, 0.0, 1.0); break;
        case OPT_MIN_CHARS:
            s->opts.min_letters = (size_t)cli_parse_u64("--min-chars", arg, 0, UINT32_MAX, 0);
            break;
        case OPT_MAX_BYTES:
            s->opts.max_bytes = (size_t)cli_parse_u64("--max-bytes", arg,
                                                      CURATE_LANGID_WINDOW_BYTES,
                                                      CURATE_LANGID_MAX_MAX_BYTES, 1);
            break;
        case OPT_QUICK_BYTES:
            s->opts.quick_bytes = (size_t)cli_parse_u64("--quick-bytes", arg, 0,
                                                        CURATE_LANGID_MAX_MAX_BYTES, 1);
            if (s->opts.quick_bytes && s->opts.quick_bytes < CURATE_LANGID_WINDOW_BYTES)
                cli_usage_error("--quick-bytes: %s is out of range (0, or %zu to %zu)", arg,
                                CURATE_LANGID_WINDOW_BYTES, CURATE_LANGID_MAX_MAX_BYTES);
            break;
        case OPT_TOP3: s->top3 = 1; break;
        case OPT_LIST: {
            size_t n = curate_langid_language_count();
            for (size_t i = 0; i < n; i++) {
                const char *code, *name;
                curate_langid_language(i, &code, &name);
                printf("%s\t%s\n", code, name);
            }
            if (fclose(stdout) != 0)
                exit(CLI_EXIT_IO);
            exit(CLI_EXIT_OK);
        }
        default: cli_usage_error("unhandled option");
        }
    }
    *first = optind_out;
}

/* The reject reason for the current result, or NULL to keep the record. */
static const char *decide(const settings *s, const curate_langid_result *r)
{
    int und = strcmp(r->lang, "und") == 0;
    const char *unknown = r->short_text ? "lang_short" : "lang_unknown";
    if (s->keep.given && !in_list(&s->keep, r->lang))
        return und ? unknown : "lang_not_kept";
    if (s->drop.given && in_list(&s->drop, r->lang))
        return und ? unknown : "lang_dropped";
    if (!und && r->score < s->min_score)
        return "lang_score";
    if (und && s->min_score > 0 && !(s->keep.given && in_list(&s->keep, "und")))
        return unknown;
    return NULL;
}

static void oom(void)
{
    cli_die(CLI_EXIT_INTERNAL, "out of memory");
}

/* The score (already rounded to 3 decimals by the library) in its shortest
 * spelling: "0.985", "0.5", "1", "0".  Used for records and rejects alike. */
static int format_score(char *buf, size_t size, double score)
{
    int n = snprintf(buf, size, "%.3f", score);
    if (n <= 0 || (size_t)n >= size)
        return 0;
    while (n > 1 && buf[n - 1] == '0')
        buf[--n] = 0;
    if (buf[n - 1] == '.')
        buf[--n] = 0;
    return n;
}

int main(int argc, char **argv)
{
    cli_begin(&tool, argc, argv);
    cli_run run;
    cli_run_init(&run);
    settings s;
    memset(&s, 0, sizeof s);
    curate_langid_opts_default(&s.opts);
    int first;
    parse_options(argc, argv, &run, &s, &first);

    curate_error err;
    curate_error_clear(&err);
    curate_langid *lid = curate_langid_init(&s.opts, &err);
    if (!lid) {
        if (err.code == CURATE_ERR_INVALID)
            cli_usage_error("%s", err.message);
        cli_die(CLI_EXIT_INTERNAL, "%s", err.message);
    }

    counter langs, scripts;
    memset(&langs, 0, sizeof langs);
    memset(&scripts, 0, sizeof scripts);
    curate_buf tmp;
    curate_buf_init(&tmp);

    cli_run_start(&run, argc - first, argv + first);
    while (cli_run_next(&run)) {
        if (!cli_run_parse(&run) || !cli_run_text(&run))
            continue;
        curate_langid_result r;
        curate_error_clear(&err);
        curate_status st = curate_langid_detect(lid, run.text.data ? run.text.data : "",
                                                run.text.len, &r, &err);
        if (st != CURATE_OK) {
            curate_error_at(&err, run.input_name, run.line.lineno);
            cli_error_lib(&err);
            cli_run_abort(&run, CLI_EXIT_INTERNAL);
        }
        count(&langs, r.lang);
        count(&scripts, r.script.script);

        char score[32];
        int score_len = format_score(score, sizeof score, r.score);
        const char *reason = decide(&s, &r);
        if (reason) {
            curate_buf_reset(&tmp);
            int ok = curate_buf_append_str(&tmp, "\"_lang\":") == CURATE_OK &&
                     curate_buf_append_json_string(&tmp, r.lang, strlen(r.lang)) == CURATE_OK &&
                     curate_buf_printf(&tmp, ",\"_lang_score\":%s,\"_script\":\"%s\"", score,
                                       r.script.script) == CURATE_OK;
            if (!ok)
                oom();
            cli_run_reject(&run, reason, tmp.data);
            continue;
        }
        int ok = curate_record_set_string(&run.rec, "lang", r.lang, strlen(r.lang)) == CURATE_OK &&
                 curate_record_set_raw(&run.rec, "lang_score", score, (size_t)score_len) == CURATE_OK &&
                 curate_record_set_string(&run.rec, "script", r.script.script,
                                          strlen(r.script.script)) == CURATE_OK;
        if (ok && s.top3) {
            curate_buf_reset(&tmp);
            ok = curate_buf_append_char(&tmp, '[') == CURATE_OK;
            for (size_t i = 0; ok && i < r.n_top; i++)
                ok = curate_buf_printf(&tmp, "%s{\"lang\":\"%s\",\"percent\":%u}", i ? "," : "",
                                       r.top[i].lang, r.top[i].percent) == CURATE_OK;
            ok = ok && curate_buf_append_char(&tmp, ']') == CURATE_OK &&
                 curate_record_set_raw(&run.rec, "lang_top", tmp.data, tmp.len) == CURATE_OK;
        }
        if (!ok)
            oom();
        cli_run_write(&run);
    }

    append_counts(&run.extra_stats, "lang_counts", &langs);
    append_counts(&run.extra_stats, "script_counts", &scripts);
    curate_buf_release(&tmp);
    curate_langid_free(lid);
    return cli_run_finish(&run);
}
