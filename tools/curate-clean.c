/*
 * curate-clean - clean the text field of JSONL records and drop the ones
 * that are not worth keeping.
 *
 * Per record, in this order: UTF-8 repair (or reject), removal of control
 * and invisible characters, Unicode normalization, rule files and presets,
 * whitespace normalization, then the filters (empty text, length, quality).
 * The order is deliberate: rules see normalized text (one spelling of each
 * character to match), and whitespace is tidied after rules so a deleted
 * tag or a redaction leaves no double spaces.  When the cleaned text equals
 * the decoded original, the record is written byte for byte (its escapes
 * stay as they were); otherwise only the text value is replaced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "curate/quality.h"
#include "curate/rules.h"
#include "curate/text.h"

enum {
    OPT_NORMALIZE = 1000, OPT_KEEP_CONTROL, OPT_KEEP_INVISIBLE, OPT_KEEP_WHITESPACE,
    OPT_ONE_LINE, OPT_INVALID_UTF8, OPT_RULES, OPT_PRESET, OPT_LIST_PRESETS, OPT_MIN_CHARS,
    OPT_MAX_CHARS, OPT_MIN_WORDS, OPT_MAX_WORDS, OPT_QUALITY, OPT_NO_QUALITY, OPT_ADD_QUALITY
};

static const cli_option options[] = {
    {"normalize", 0, CLI_REQ_ARG, "FORM",
     "Unicode normalization: 'nfc' (default), 'nfkc'\nor 'none'", OPT_NORMALIZE},
    {"keep-control", 0, CLI_NO_ARG, NULL,
     "keep control characters (default: remove them;\nCR, VT, FF and NEL become line breaks)",
     OPT_KEEP_CONTROL},
    {"keep-invisible", 0, CLI_NO_ARG, NULL,
     "keep zero-width and other invisible format\ncharacters (default: remove them; ZWJ and ZWNJ\n"
     "stay between two non-ASCII characters)", OPT_KEEP_INVISIBLE},
    {"keep-whitespace", 0, CLI_NO_ARG, NULL,
     "leave whitespace alone (default: collapse runs,\nkeep line and paragraph breaks, trim ends)",
     OPT_KEEP_WHITESPACE},
    {"one-line", 0, CLI_NO_ARG, NULL, "collapse line and paragraph breaks to spaces too",
     OPT_ONE_LINE},
    {"invalid-utf8", 0, CLI_REQ_ARG, "MODE",
     "'repair' (default: each bad sequence becomes\nU+FFFD) or 'reject'", OPT_INVALID_UTF8},
    {"rules", 'r', CLI_REQ_ARG, "FILE",
     "apply the replace/redact/drop rules in FILE\n(repeatable; rules run in command-line order)",
     OPT_RULES},
    {"preset", 'p', CLI_REQ_ARG, "NAME",
     "apply built-in rules: html, urls, emails,\nphones, pii (repeatable)", OPT_PRESET},
    {"list-presets", 0, CLI_NO_ARG, NULL, "print the rules of every preset and exit",
     OPT_LIST_PRESETS},
    {"min-chars", 0, CLI_REQ_ARG, "N", "reject texts under N characters (default 0: off)",
     OPT_MIN_CHARS},
    {"max-chars", 0, CLI_REQ_ARG, "N", "reject texts over N characters (default 0: off)",
     OPT_MAX_CHARS},
    {"min-words", 0, CLI_REQ_ARG, "N", "reject texts under N words (default 0: off)",
     OPT_MIN_WORDS},
    {"max-words", 0, CLI_REQ_ARG, "N", "reject texts over N words (default 0: off)",
     OPT_MAX_WORDS},
    {"quality", 0, CLI_REQ_ARG, "NAME=VALUE",
     "set a quality threshold (max_symbol_ratio=0.2)\nor switch a filter off or on (dup_lines=off);\n"
     "repeatable, applied in order", OPT_QUALITY},
    {"no-quality", 0, CLI_NO_ARG, NULL, "switch every quality filter off", OPT_NO_QUALITY},
    {"add-quality", 0, CLI_NO_ARG, NULL,
     "add a \"quality\" object with the measured\nsignals to each written record", OPT_ADD_QUALITY},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const cli_tool tool = {
    "curate-clean",
    "[OPTION]... [FILE]...",
    "Clean the text of JSONL records and drop low-quality ones.",
    "Reads JSON Lines from the FILEs in order (standard input if none, or '-').\n"
    "For each record the text field is repaired (invalid UTF-8), stripped of\n"
    "control and invisible characters, normalized (NFC), rewritten by rules,\n"
    "whitespace-collapsed, and checked by length and Gopher quality filters.\n"
    "Kept records are written with only the text value replaced; dropped ones\n"
    "go to --rejects with \"_reject\" naming the reason.",
    options,
    CLI_COMMON_ALL,
    "Quality filters (Gopher defaults; NAME=off switches one off):\n"
    "  word_count        min_words=50 max_words=100000\n"
    "  mean_word_length  min_mean_word_length=3 max_mean_word_length=10\n"
    "  symbol_ratio      max_symbol_ratio=0.1      ('#' or ellipses per word)\n"
    "  ellipsis_lines    max_ellipsis_lines=0.3    (lines ending in ...)\n"
    "  alpha_words       min_alpha_words=0.8       (words with a letter)\n"
    "  dup_lines         max_dup_lines=0.3         (repeated lines)\n"
    "  dup_line_chars    max_dup_line_chars=0.2    (chars in repeated lines)\n"
    "  top_2gram         max_top_2gram=0.20        (chars in the top word 2-gram)\n"
    "  top_3gram         max_top_3gram=0.18\n"
    "  top_4gram         max_top_4gram=0.16\n"
    "Reject reasons: invalid_utf8, rule:NAME, empty_text, length:min_chars,\n"
    "length:max_chars, length:min_words, length:max_words, quality:FILTER\n"
    "(plus the shared invalid_json, not_object, too_deep, too_large,\n"
    "no_field, field_type with --on-error=skip).",
};

/* ---- settings -------------------------------------------------------------- */

typedef struct settings {
    curate_norm norm;
    unsigned strip;           /* CURATE_STRIP_* */
    int whitespace;           /* collapse */
    unsigned ws_flags;
    int reject_utf8;
    uint64_t min_chars, max_chars, min_words, max_words;
    curate_quality_opts q;
    int add_quality;
    curate_rules *rules;
} settings;

static void list_presets(void)
{
    const char *const *names = curate_rules_preset_names();
    for (size_t i = 0; names[i]; i++)
        printf("%s# preset %s\n%s", i ? "\n" : "", names[i], curate_rules_preset_text(names[i]));
    if (fclose(stdout) != 0)
        exit(CLI_EXIT_IO);
    exit(CLI_EXIT_OK);
}

/* --quality NAME=VALUE */
static void quality_option(curate_quality_opts *q, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        cli_usage_error("--quality: expected NAME=VALUE, not '%s'", arg);
    char name[64];
    size_t nl = (size_t)(eq - arg);
    if (nl >= sizeof name)
        cli_usage_error("--quality: unknown name '%.*s'", (int)nl, arg);
    memcpy(name, arg, nl);
    name[nl] = 0;
    const char *val = eq + 1;
    int onoff = strcmp(val, "off") == 0 ? 0 : strcmp(val, "on") == 0 ? 1 : -1;
    curate_quality_filter f = curate_quality_filter_lookup(name);
    if (f != CURATE_QF_COUNT) {
        if (onoff < 0)
            cli_usage_error("--quality: filter '%s' takes 'on' or 'off'; set its thresholds "
                            "by their names (see --help)", name);
        if (onoff)
            q->enabled |= 1u << f;
        else
            q->enabled &= ~(1u << f);
        return;
    }
    if (onoff >= 0) {
        /* A threshold name with on/off switches the filter it belongs to. */
        curate_quality_opts probe = *q;
        if (curate_quality_opts_set(&probe, name, 0, &f) != CURATE_OK)
            cli_usage_error("--quality: unknown name '%s' (see --help)", name);
        if (onoff)
            q->enabled |= 1u << f;
        else
            q->enabled &= ~(1u << f);
        return;
    }
    char opt[80];
    snprintf(opt, sizeof opt, "--quality %s", name);
    double v = cli_parse_double(opt, val, 0, 1e15);
    curate_status st = curate_quality_opts_set(q, name, v, NULL);
    if (st == CURATE_ERR_INVALID)
        cli_usage_error("--quality: unknown name '%s' (see --help)", name);
    if (st == CURATE_ERR_RANGE)
        cli_usage_error("--quality: %s=%s is out of range (shares are 0 to 1, word counts "
                        "whole numbers)", name, val);
}

static void add_rules(settings *s, int preset, const char *arg)
{
    curate_error err;
    curate_error_clear(&err);
    curate_status st = preset ? curate_rules_add_preset(s->rules, arg, &err)
                              : curate_rules_add_file(s->rules, arg, &err);
    if (st == CURATE_OK)
        return;
    if (preset && st == CURATE_ERR_INVALID)
        cli_usage_error("--preset: %s", err.message);
    cli_error_lib(&err);
    exit(st == CURATE_ERR_IO ? CLI_EXIT_IO : st == CURATE_ERR_NOMEM ? CLI_EXIT_INTERNAL
                                                                     : CLI_EXIT_USAGE);
}

static void parse_options(int argc, char **argv, cli_run *run, settings *s, int *first)
{
    static const char *const forms[] = {"none", "nfc", "nfkc", NULL};
    static const char *const utf8_modes[] = {"repair", "reject", NULL};
    const char *arg;
    int id, optind_out = 1;
    while ((id = cli_getopt(argc, argv, &arg, &optind_out)) != -1) {
        if (cli_run_option(run, id, arg))
            continue;
        switch (id) {
        case OPT_NORMALIZE: s->norm = (curate_norm)cli_parse_choice("--normalize", arg, forms); break;
        case OPT_KEEP_CONTROL: s->strip &= ~(unsigned)CURATE_STRIP_CONTROL; break;
        case OPT_KEEP_INVISIBLE: s->strip &= ~(unsigned)CURATE_STRIP_ZERO_WIDTH; break;
        case OPT_KEEP_WHITESPACE: s->whitespace = 0; break;
        case OPT_ONE_LINE: s->ws_flags &= ~(unsigned)CURATE_WS_KEEP_NEWLINES; break;
        case OPT_INVALID_UTF8: s->reject_utf8 = cli_parse_choice("--invalid-utf8", arg, utf8_modes); break;
        case OPT_RULES: add_rules(s, 0, arg); break;
        case OPT_PRESET: add_rules(s, 1, arg); break;
        case OPT_LIST_PRESETS: list_presets(); break;
        case OPT_MIN_CHARS: s->min_chars = cli_parse_u64("--min-chars", arg, 0, UINT64_MAX, 1); break;
        case OPT_MAX_CHARS: s->max_chars = cli_parse_u64("--max-chars", arg, 0, UINT64_MAX, 1); break;
        case OPT_MIN_WORDS: s->min_words = cli_parse_u64("--min-words", arg, 0, UINT64_MAX, 1); break;
        case OPT_MAX_WORDS: s->max_words = cli_parse_u64("--max-words", arg, 0, UINT64_MAX, 1); break;
        case OPT_QUALITY: quality_option(&s->q, arg); break;
        case OPT_NO_QUALITY: s->q.enabled = 0; break;
        case OPT_ADD_QUALITY: s->add_quality = 1; break;
        default: cli_usage_error("unhandled option");
        }
    }
    *first = optind_out;
    if (s->max_chars && s->min_chars > s->max_chars)
        cli_usage_error("--min-chars %llu is above --max-chars %llu",
                        (unsigned long long)s->min_chars, (unsigned long long)s->max_chars);
    if (s->max_words && s->min_words > s->max_words)
        cli_usage_error("--min-words %llu is above --max-words %llu",
                        (unsigned long long)s->min_words, (unsigned long long)s->max_words);
    if ((s->q.enabled & (1u << CURATE_QF_WORD_COUNT)) && s->q.max_words &&
        s->q.min_words > s->q.max_words)
        cli_usage_error("--quality: min_words is above max_words");
    if ((s->q.enabled & (1u << CURATE_QF_MEAN_WORD_LENGTH)) &&
        s->q.min_mean_word_length > s->q.max_mean_word_length)
        cli_usage_error("--quality: min_mean_word_length is above max_mean_word_length");
}

/* ---- output helpers ----------------------------------------------------------- */

static void oom(void)
{
    cli_die(CLI_EXIT_INTERNAL, "out of memory");
}

static void put(curate_status st)
{
    if (st != CURATE_OK)
        oom();
}

/* The signals as a JSON object (no surrounding key). */
static void quality_json(curate_buf *b, const curate_quality_signals *q)
{
    put(curate_buf_printf(b,
                          "{\"chars\":%llu,\"words\":%llu,\"lines\":%llu,\"mean_word_length\":%.4g,"
                          "\"symbol_ratio\":%.4g,\"ellipsis_lines\":%.4g,\"alpha_words\":%.4g",
                          (unsigned long long)q->chars, (unsigned long long)q->words,
                          (unsigned long long)q->lines, q->mean_word_length, q->symbol_ratio,
                          q->ellipsis_lines, q->alpha_words));
    if (q->have_lines)
        put(curate_buf_printf(b, ",\"dup_lines\":%.4g,\"dup_line_chars\":%.4g", q->dup_lines,
                              q->dup_line_chars));
    if (q->have_ngrams)
        put(curate_buf_printf(b, ",\"top_2gram\":%.4g,\"top_3gram\":%.4g,\"top_4gram\":%.4g",
                              q->top_ngram[0], q->top_ngram[1], q->top_ngram[2]));
    put(curate_buf_append_char(b, '}'));
}

/* Counters for --stats. */
typedef struct counts {
    uint64_t changed, utf8_repaired, replacement_chars, removed_chars, rewritten_by_rules;
} counts;

static void stats_json(cli_run *run, const settings *s, const counts *c)
{
    static const char *const form_names[] = {"none", "nfc", "nfkc"};
    curate_buf *x = &run->extra_stats;
    put(curate_buf_printf(
        x,
        ",\"clean\":{\"normalize\":\"%s\",\"changed\":%llu,\"utf8_repaired\":%llu,"
        "\"replacement_chars\":%llu,\"removed_chars\":%llu,\"rewritten_by_rules\":%llu,"
        "\"rules\":[",
        form_names[s->norm], (unsigned long long)c->changed, (unsigned long long)c->utf8_repaired,
        (unsigned long long)c->replacement_chars, (unsigned long long)c->removed_chars,
        (unsigned long long)c->rewritten_by_rules));
    static const char *const actions[] = {"replace", "redact", "drop"};
    size_t n = curate_rules_count(s->rules);
    for (size_t i = 0; i < n; i++) {
        const curate_rule_info *ri = curate_rules_info(s->rules, i);
        put(curate_buf_printf(x, "%s{\"source\":", i ? "," : ""));
        put(curate_buf_append_json_string(x, ri->source, strlen(ri->source)));
        put(curate_buf_printf(x, ",\"line\":%llu,\"action\":\"%s\",\"name\":",
                              (unsigned long long)ri->line, actions[ri->action]));
        put(curate_buf_append_json_string(x, ri->name, strlen(ri->name)));
        put(curate_buf_printf(x, ",\"texts\":%llu,\"matches\":%llu}",
                              (unsigned long long)ri->texts, (unsigned long long)ri->matches));
    }
    put(curate_buf_append_str(x, "]}"));
}

/* ---- the record loop ------------------------------------------------------------ */

/* Does the raw JSON string value hold a \uD800-\uDFFF escape?  In repair
 * mode a lone one decodes to U+FFFD, so the text must be rewritten even
 * when cleaning changes nothing else (paired ones are rewritten as UTF-8,
 * which is harmless). */
static int has_surrogate_escape(const curate_record *rec, const char *field)
{
    const curate_member *m = curate_record_get(rec, field);
    if (!m || m->type != CURATE_JSON_STRING)
        return 0;
    for (size_t i = 0; i + 3 < m->value_len; i++) {
        if (m->value[i] == '\\') {
            char u = m->value[i + 1], d = m->value[i + 2], x = m->value[i + 3];
            if (u == 'u' && (d == 'd' || d == 'D') &&
                ((x >= '8' && x <= '9') || (x >= 'a' && x <= 'f') || (x >= 'A' && x <= 'F')))
                return 1;
            i++; /* skip the escaped character */
        }
    }
    return 0;
}

/* Two scratch buffers the stages write into in turn. */
typedef struct stage {
    curate_buf buf[2];
    int next;
    const char *s; /* current text */
    size_t n;
} stage;

static curate_buf *stage_out(stage *g)
{
    curate_buf *b = &g->buf[g->next];
    curate_buf_reset(b);
    return b;
}

static void stage_commit(stage *g)
{
    curate_buf *b = &g->buf[g->next];
    g->s = b->data ? b->data : "";
    g->n = b->len;
    g->next ^= 1;
}

int main(int argc, char **argv)
{
    cli_begin(&tool, argc, argv);
    cli_run run;
    cli_run_init(&run);
    settings s;
    memset(&s, 0, sizeof s);
    s.norm = CURATE_NORM_NFC;
    s.strip = CURATE_STRIP_CONTROL | CURATE_STRIP_ZERO_WIDTH;
    s.whitespace = 1;
    s.ws_flags = CURATE_WS_KEEP_NEWLINES;
    curate_quality_opts_default(&s.q);
    curate_error err;
    curate_error_clear(&err);
    s.rules = curate_rules_new(&err);
    if (!s.rules)
        oom();
    int first;
    parse_options(argc, argv, &run, &s, &first);
    const int have_rules = curate_rules_count(s.rules) > 0;
    const int length_filters = s.min_chars || s.max_chars || s.min_words || s.max_words;
    const int quality = s.q.enabled != 0 || s.add_quality;
    curate_quality *qs = curate_quality_new(&err);
    if (!qs)
        oom();
    if (!s.reject_utf8)
        run.rec.surrogates = CURATE_SURROGATE_REPLACE; /* lone \uD800 -> U+FFFD */

    stage g;
    memset(&g, 0, sizeof g);
    curate_buf_init(&g.buf[0]);
    curate_buf_init(&g.buf[1]);
    curate_buf extra, qjson;
    curate_buf_init(&extra);
    curate_buf_init(&qjson);
    counts c;
    memset(&c, 0, sizeof c);

    cli_run_start(&run, argc - first, argv + first);
    while (cli_run_next(&run)) {
        if (!cli_run_parse(&run))
            continue;
        /* In reject mode a lone surrogate escape is invalid text, not
         * invalid JSON (the line parsed, so nothing else can fail here).
         * (err is cleared after each use, not per record: it is 1 KiB.) */
        curate_status st = curate_record_get_string(&run.rec, run.field, &run.text, &err);
        if (st == CURATE_ERR_JSON && s.reject_utf8) {
            curate_buf_reset(&extra);
            put(curate_buf_append_str(&extra, "\"_error\":"));
            put(curate_buf_append_json_string(&extra, err.message, strlen(err.message)));
            curate_error_clear(&err);
            run.parsed_ = 0; /* as cli_run_text does: the line goes in escaped as "_raw" */
            cli_run_reject(&run, "invalid_utf8", extra.data);
            continue;
        }
        if (st != CURATE_OK) {
            curate_error_clear(&err);
            if (!cli_run_text(&run)) /* also renders chat "messages" records */
                continue;
        }
        int rules_changed = 0;
        g.s = run.text.data ? run.text.data : "";
        g.n = run.text.len;
        const int ascii = curate_is_ascii(g.s, g.n);

        /* 1. UTF-8 */
        int force = 0;
        if (!ascii && !s.reject_utf8 && memmem(g.s, g.n, "\xEF\xBF\xBD", 3) &&
            has_surrogate_escape(&run.rec, run.field))
            force = 1;
        if (!ascii) {
            size_t bad = curate_utf8_check(g.s, g.n);
            if (bad < g.n) {
                if (s.reject_utf8) {
                    curate_buf_reset(&extra);
                    put(curate_buf_printf(&extra, "\"_offset\":%llu", (unsigned long long)bad));
                    /* cli_run_reject keeps the rejects file valid JSON:
                     * a line with invalid UTF-8 goes in as "_raw". */
                    cli_run_reject(&run, "invalid_utf8", extra.data);
                    continue;
                }
                size_t repaired = 0;
                put(curate_utf8_repair(g.s, g.n, stage_out(&g), &repaired));
                stage_commit(&g);
                c.utf8_repaired++;
                c.replacement_chars += repaired;
            }
        }
        /* 2. control and invisible characters */
        if (s.strip && curate_strip_scan(g.s, g.n, s.strip) < g.n) {
            size_t removed = 0;
            put(curate_strip_chars(g.s, g.n, s.strip, stage_out(&g), &removed));
            stage_commit(&g);
            c.removed_chars += removed;
        }
        /* 3. normalization (identity on ASCII) */
        if (s.norm != CURATE_NORM_NONE && !ascii) {
            st = curate_normalize(g.s, g.n, s.norm, stage_out(&g), &err);
            if (st != CURATE_OK) {
                if (st == CURATE_ERR_NOMEM)
                    oom();
                cli_die(CLI_EXIT_INTERNAL, "%s:%llu: normalization failed: %s", run.input_name,
                        (unsigned long long)run.line.lineno, err.message);
            }
            stage_commit(&g);
        }
        /* 4. rules */
        if (have_rules) {
            curate_rules_result rr;
            curate_buf *out = stage_out(&g);
            st = curate_rules_apply(s.rules, g.s, g.n, out, &rr, &err);
            if (st == CURATE_ERR_NOMEM)
                oom();
            if (st != CURATE_OK) {
                /* PCRE2 gave up (match limit): bad input for this record. */
                curate_error_at(&err, run.input_name, run.line.lineno);
                cli_run_bad(&run, "rule_error", &err);
                curate_error_clear(&err);
                continue;
            }
            if (rr.dropped) {
                const curate_rule_info *ri = curate_rules_info(s.rules, rr.drop_rule);
                char reason[48], where[600];
                snprintf(reason, sizeof reason, "rule:%s", ri->name);
                snprintf(where, sizeof where, "%s:%llu", ri->source, (unsigned long long)ri->line);
                curate_buf_reset(&extra);
                put(curate_buf_append_str(&extra, "\"_rule\":"));
                put(curate_buf_append_json_string(&extra, where, strlen(where)));
                cli_run_reject(&run, reason, extra.data);
                continue;
            }
            if (rr.changed) {
                stage_commit(&g);
                c.rewritten_by_rules++;
                rules_changed = 1;
            }
        }
        /* 5. whitespace */
        if (s.whitespace && curate_whitespace_scan(g.s, g.n, s.ws_flags) < g.n) {
            put(curate_normalize_whitespace(g.s, g.n, s.ws_flags, stage_out(&g)));
            stage_commit(&g);
        }
        /* 6. filters */
        if (g.n == 0) {
            cli_run_reject(&run, "empty_text", NULL);
            continue;
        }
        if (length_filters) {
            const char *why = NULL;
            uint64_t value = 0, limit = 0;
            if (s.min_chars || s.max_chars) {
                uint64_t chars = curate_utf8_length(g.s, g.n);
                if (chars < s.min_chars)
                    why = "length:min_chars", value = chars, limit = s.min_chars;
                else if (s.max_chars && chars > s.max_chars)
                    why = "length:max_chars", value = chars, limit = s.max_chars;
            }
            if (!why && (s.min_words || s.max_words)) {
                uint64_t words = curate_word_count(g.s, g.n);
                if (words < s.min_words)
                    why = "length:min_words", value = words, limit = s.min_words;
                else if (s.max_words && words > s.max_words)
                    why = "length:max_words", value = words, limit = s.max_words;
            }
            if (why) {
                curate_buf_reset(&extra);
                put(curate_buf_printf(&extra, "\"_value\":%llu,\"_limit\":%llu",
                                      (unsigned long long)value, (unsigned long long)limit));
                cli_run_reject(&run, why, extra.data);
                continue;
            }
        }
        if (quality) {
            curate_quality_signals sig;
            curate_quality_filter failed;
            put(curate_quality_eval(qs, &s.q, g.s, g.n,
                                    s.add_quality ? CURATE_QUALITY_ALL_SIGNALS : 0, &sig, &failed));
            curate_buf_reset(&qjson);
            if (failed != CURATE_QF_COUNT || s.add_quality)
                quality_json(&qjson, &sig);
            if (failed != CURATE_QF_COUNT) {
                char reason[48];
                snprintf(reason, sizeof reason, "quality:%s", curate_quality_filter_name(failed));
                curate_buf_reset(&extra);
                put(curate_buf_append_str(&extra, "\"_quality\":"));
                put(curate_buf_append(&extra, qjson.data, qjson.len));
                cli_run_reject(&run, reason, extra.data);
                continue;
            }
            if (s.add_quality)
                put(curate_record_set_raw(&run.rec, "quality", qjson.data, qjson.len));
        }
        /* 7. write: the text value only changes if the text did.  A chat
         * record's text was rendered from its "messages" and cannot be
         * written back: it is filtered but passes unchanged, except that
         * a record a replace or redact rule rewrote is rejected rather
         * than let through unredacted. */
        if (run.text_from_messages) {
            if (rules_changed) {
                cli_run_reject(&run, "chat_rewrite", NULL);
                continue;
            }
            cli_run_write(&run); /* with "quality" if --add-quality queued it */
            continue;
        }
        if (force || g.n != run.text.len ||
            (g.s != run.text.data && memcmp(g.s, run.text.data, g.n) != 0)) {
            put(curate_record_set_string(&run.rec, run.field, g.s, g.n));
            c.changed++;
        }
        cli_run_write(&run);
    }

    stats_json(&run, &s, &c);
    int status = cli_run_finish(&run);
    curate_rules_free(s.rules);
    curate_quality_free(qs);
    curate_buf_release(&g.buf[0]);
    curate_buf_release(&g.buf[1]);
    curate_buf_release(&extra);
    curate_buf_release(&qjson);
    return status;
}
