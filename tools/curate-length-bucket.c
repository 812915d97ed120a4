/*
 * curate-length-bucket - count tokens (or characters, or words) and put
 * every record in a length bucket.
 *
 * One pass with --edges.  With --quantiles the edges depend on the whole
 * input, so it is read twice: the first pass counts every record and keeps
 * the counts (8 bytes each), the second assigns buckets from the kept
 * counts without counting again.  Standard input that is not a regular
 * file cannot be read twice, so it is first copied to an unlinked
 * temporary file which then stands in for it (messages and rejects still
 * say "-").
 *
 * Counting with a tokenizer goes through curate_token_counter (a cache of
 * per-word counts that is exact; see curate/tokcount.h), which is what
 * makes this tool keep pace with the other filters.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "curate/jsonl.h"
#include "curate/text.h"
#include "curate/tokcount.h"
#include "curate/tokenizer.h"

enum {
    OPT_TOKENIZER = 1000,
    OPT_UNIT,
    OPT_EDGES,
    OPT_QUANTILES,
    OPT_NAMES,
    OPT_MIN,
    OPT_MAX,
    OPT_TOKENS_FIELD,
    OPT_BUCKET_FIELD,
    OPT_NO_CACHE
};

#define MAX_EDGES 63

static const cli_option options[] = {
    {"tokenizer", 't', CLI_REQ_ARG, "FILE", "count tokens with this SentencePiece model\n"
     "(.model); counts have no BOS or EOS", OPT_TOKENIZER},
    {"unit", 0, CLI_REQ_ARG, "UNIT", "without a tokenizer: count 'chars' (code\n"
     "points) or 'words' (runs of non-whitespace)", OPT_UNIT},
    {"edges", 0, CLI_REQ_ARG, "LIST", "increasing bucket edges (default 128,512):\n"
     "count < first edge: first bucket, < second\n"
     "edge: second bucket, ..., else the last one", OPT_EDGES},
    {"quantiles", 0, CLI_REQ_ARG, "LIST", "derive the edges from the counts (e.g.\n"
     "0.25,0.75); reads the input twice (standard\n"
     "input is spooled to a temporary file)", OPT_QUANTILES},
    {"names", 0, CLI_REQ_ARG, "LIST", "bucket names, one more than the edges\n"
     "(default short,medium,long)", OPT_NAMES},
    {"min", 0, CLI_REQ_ARG, "N", "reject counts below N (reason too_short)", OPT_MIN},
    {"max", 0, CLI_REQ_ARG, "N", "reject counts above N (reason too_long)", OPT_MAX},
    {"tokens-field", 0, CLI_REQ_ARG, "NAME", "field for the count (default tokens)", OPT_TOKENS_FIELD},
    {"bucket-field", 0, CLI_REQ_ARG, "NAME", "field for the bucket name (default bucket)",
     OPT_BUCKET_FIELD},
    {"no-cache", 0, CLI_NO_ARG, NULL, "count every text with SentencePiece itself,\n"
     "without the word count cache (slower)", OPT_NO_CACHE},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const cli_tool tool = {
    "curate-length-bucket",
    "(--tokenizer FILE | --unit UNIT) [OPTION]... [FILE]...",
    "Count the tokens of each record and assign a length bucket.",
    "Adds \"tokens\" (the count: SentencePiece token ids of the text without BOS\n"
    "or EOS, or code points, or words, as chosen) and \"bucket\" (a name) to each\n"
    "record; every other byte of the record is kept.  Chat records are counted as\n"
    "rendered with their template.  With --min/--max, records outside the range\n"
    "go to the rejects.",
    options,
    CLI_COMMON_ALL,
    "Buckets: with edges E1 < E2 < ... and names N0, N1, ..., a record with count c\n"
    "is N0 if c < E1, N1 if E1 <= c < E2, ..., and the last name if c >= the last\n"
    "edge.  --quantiles Q1,Q2,... sets edge k to 1 + the count at rank ceil(Qk x n)\n"
    "of the n records kept by --min/--max, sorted: the first ceil(Q1 x n) records\n"
    "(and any tied with the last of them) fall below it.",
};

typedef enum unit_kind { UNIT_NONE = -1, UNIT_CHARS = 0, UNIT_WORDS = 1, UNIT_TOKENS = 2 } unit_kind;

typedef struct settings {
    const char *tokenizer_path;
    unit_kind unit;
    uint64_t edges[MAX_EDGES];
    size_t n_edges;
    double quantiles[MAX_EDGES];
    size_t n_quantiles;
    char *names[MAX_EDGES + 1];
    size_t n_names;
    char *names_buf;  /* --names copy the names point into */
    uint64_t min, max;
    const char *tokens_field, *bucket_field;
    int no_cache;
    /* shared options, replayed on the first pass's record loop */
    int shared_ids[64];
    const char *shared_args[64];
    size_t n_shared;
} settings;

/* ---- option parsing --------------------------------------------------------- */

static void parse_options(int argc, char **argv, cli_run *run, settings *s, int *first)
{
    static const char *const units[] = {"chars", "words", NULL};
    char *items[MAX_EDGES + 1];
    int id, optind_ = 1, have_min = 0, have_max = 0;
    const char *arg;
    while ((id = cli_getopt(argc, argv, &arg, &optind_)) != -1) {
        if (cli_run_option(run, id, arg)) {
            if (s->n_shared < sizeof s->shared_ids / sizeof s->shared_ids[0]) {
                s->shared_ids[s->n_shared] = id;
                s->shared_args[s->n_shared++] = arg;
            }
            continue;
        }
        switch (id) {
        case OPT_TOKENIZER: s->tokenizer_path = arg; break;
        case OPT_UNIT: s->unit = (unit_kind)cli_parse_choice("--unit", arg, units); break;
        case OPT_EDGES: {
            char *copy = strdup(arg);
            if (!copy)
                cli_die(CLI_EXIT_INTERNAL, "out of memory");
            s->n_edges = cli_split_list("--edges", copy, items, MAX_EDGES);
            for (size_t i = 0; i < s->n_edges; i++) {
                s->edges[i] = cli_parse_u64("--edges", items[i], 1, UINT64_MAX, 0);
                if (i && s->edges[i] <= s->edges[i - 1])
                    cli_usage_error("--edges: the edges must increase (%s after %s)", items[i],
                                    items[i - 1]);
            }
            free(copy);
            break;
        }
        case OPT_QUANTILES: {
            char *copy = strdup(arg);
            if (!copy)
                cli_die(CLI_EXIT_INTERNAL, "out of memory");
            s->n_quantiles = cli_split_list("--quantiles", copy, items, MAX_EDGES);
            for (size_t i = 0; i < s->n_quantiles; i++) {
                s->quantiles[i] = cli_parse_double("--quantiles", items[i], 0.0, 1.0);
                if (s->quantiles[i] <= 0.0 || s->quantiles[i] >= 1.0)
                    cli_usage_error("--quantiles: %s is not strictly between 0 and 1", items[i]);
                if (i && s->quantiles[i] <= s->quantiles[i - 1])
                    cli_usage_error("--quantiles: the quantiles must increase (%s after %s)",
                                    items[i], items[i - 1]);
            }
            free(copy);
            break;
        }
        case OPT_NAMES: {
            char *copy = strdup(arg); /* kept: the names point into it */
            if (!copy)
                cli_die(CLI_EXIT_INTERNAL, "out of memory");
            free(s->names_buf);
            s->names_buf = copy;
            s->n_names = cli_split_list("--names", copy, s->names, MAX_EDGES + 1);
            for (size_t i = 0; i < s->n_names; i++)
                for (size_t j = 0; j < i; j++)
                    if (strcmp(s->names[i], s->names[j]) == 0)
                        cli_usage_error("--names: '%s' given twice", s->names[i]);
            break;
        }
        case OPT_MIN: s->min = cli_parse_u64("--min", arg, 0, UINT64_MAX, 1); have_min = 1; break;
        case OPT_MAX: s->max = cli_parse_u64("--max", arg, 0, UINT64_MAX, 1); have_max = 1; break;
        case OPT_TOKENS_FIELD:
        case OPT_BUCKET_FIELD:
            if (!*arg)
                cli_usage_error("--%s: the name must not be empty",
                                id == OPT_TOKENS_FIELD ? "tokens-field" : "bucket-field");
            *(id == OPT_TOKENS_FIELD ? &s->tokens_field : &s->bucket_field) = arg;
            break;
        case OPT_NO_CACHE: s->no_cache = 1; break;
        default: cli_usage_error("unexpected option");
        }
    }
    *first = optind_;
    if (!s->tokenizer_path && s->unit == UNIT_NONE)
        cli_usage_error("give --tokenizer FILE, or --unit chars|words to count without one");
    if (s->tokenizer_path && s->unit != UNIT_NONE)
        cli_usage_error("--tokenizer and --unit exclude each other");
    if (s->tokenizer_path)
        s->unit = UNIT_TOKENS;
    if (s->n_edges && s->n_quantiles)
        cli_usage_error("--edges and --quantiles exclude each other");
    if (!s->n_edges && !s->n_quantiles) {
        s->edges[0] = 128;
        s->edges[1] = 512;
        s->n_edges = 2;
    }
    size_t n_cuts = s->n_quantiles ? s->n_quantiles : s->n_edges;
    if (!s->n_names) {
        if (n_cuts != 2)
            cli_usage_error("give --names with %zu names for %zu edges", n_cuts + 1, n_cuts);
        static char sh[] = "short", me[] = "medium", lo[] = "long";
        s->names[0] = sh;
        s->names[1] = me;
        s->names[2] = lo;
        s->n_names = 3;
    }
    if (s->n_names != n_cuts + 1)
        cli_usage_error("--names: %zu names for %zu %s; need %zu", s->n_names, n_cuts,
                        s->n_quantiles ? "quantiles" : "edges", n_cuts + 1);
    if (!have_max)
        s->max = UINT64_MAX;
    if (have_min && have_max && s->min > s->max)
        cli_usage_error("--min %llu is above --max %llu", (unsigned long long)s->min,
                        (unsigned long long)s->max);
    if (s->no_cache && !s->tokenizer_path)
        cli_usage_error("--no-cache applies only with --tokenizer");
}

/* ---- counting ---------------------------------------------------------------- */

typedef struct counter {
    unit_kind unit;
    curate_tokenizer *tok;
    curate_token_counter *tc;
} counter;

static void counter_open(counter *c, const settings *s)
{
    c->unit = s->unit;
    if (s->unit != UNIT_TOKENS)
        return;
    curate_error err;
    curate_error_clear(&err);
    c->tok = curate_tokenizer_load(s->tokenizer_path, &err);
    if (!c->tok) {
        cli_error_lib(&err);
        exit(err.code == CURATE_ERR_NOMEM ? CLI_EXIT_INTERNAL
             : err.code == CURATE_ERR_IO  ? CLI_EXIT_IO
                                          : CLI_EXIT_DATA);
    }
    curate_token_counter_opts o;
    curate_token_counter_opts_default(&o);
    o.disable_cache = s->no_cache;
    c->tc = curate_token_counter_init(c->tok, &o, &err);
    if (!c->tc) {
        cli_error_lib(&err);
        exit(CLI_EXIT_INTERNAL);
    }
}

static void counter_close(counter *c)
{
    curate_token_counter_free(c->tc);
    curate_tokenizer_free(c->tok);
}

/*
 * Count run->text.  Returns 1 with *n set, or 0 when the tokenizer failed
 * (handled by --on-error).
 */
static int count_text(counter *c, cli_run *run, uint64_t *n)
{
    const char *t = run->text.data ? run->text.data : "";
    size_t len = run->text.len;
    switch (c->unit) {
    case UNIT_CHARS: *n = curate_utf8_length(t, len); return 1;
    case UNIT_WORDS: *n = curate_word_count(t, len); return 1;
    default: break;
    }
    curate_error err;
    curate_error_clear(&err);
    curate_status st = curate_token_counter_count(c->tc, t, len, n, &err);
    if (st == CURATE_OK)
        return 1;
    if (st == CURATE_ERR_NOMEM)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    curate_error_at(&err, run->input_name, run->line.lineno);
    return cli_run_bad(run, "tokenizer_error", &err);
}

/* ---- quantiles: first pass ----------------------------------------------------- */

#define COUNT_FAILED UINT64_MAX

typedef struct count_list {
    uint64_t *v;
    size_t n, cap;
} count_list;

static void count_list_push(count_list *l, uint64_t x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        if (cap > SIZE_MAX / sizeof *l->v)
            cli_die(CLI_EXIT_INTERNAL, "out of memory");
        uint64_t *p = realloc(l->v, cap * sizeof *p);
        if (!p)
            cli_die(CLI_EXIT_INTERNAL, "out of memory (keeping %zu counts)", l->n);
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = x;
}

/*
 * Make standard input readable twice; returns the offset to rewind to.  A
 * regular file (`< file`) already is; anything else is copied to an
 * unlinked temporary file that becomes fd 0.
 */
static off_t spool_stdin(void)
{
    struct stat st;
    off_t here = lseek(STDIN_FILENO, 0, SEEK_CUR);
    if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode) && here >= 0)
        return here;
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    size_t n = strlen(dir);
    char *path = malloc(n + 32);
    if (!path)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    snprintf(path, n + 32, "%s/curate-length-bucket.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        cli_die(CLI_EXIT_IO, "%s: cannot create a temporary file for standard input: %s", path,
                strerror(errno));
    unlink(path);
    char *buf = malloc(1 << 20);
    if (!buf)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    for (;;) {
        ssize_t k = read(STDIN_FILENO, buf, 1 << 20);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            cli_die(CLI_EXIT_IO, "-: read error: %s", strerror(errno));
        if (k == 0)
            break;
        for (ssize_t off = 0; off < k;) {
            ssize_t w = write(fd, buf + off, (size_t)(k - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                cli_die(CLI_EXIT_IO, "%s: cannot spool standard input: %s", path, strerror(errno));
            off += w;
        }
    }
    free(buf);
    free(path);
    if (lseek(fd, 0, SEEK_SET) != 0 || dup2(fd, STDIN_FILENO) < 0)
        cli_die(CLI_EXIT_IO, "cannot reopen the spooled standard input: %s", strerror(errno));
    close(fd);
    return 0;
}

/* Inputs other than "-" must be regular files: they are read twice. */
static void check_rereadable(int n, char **files, int *uses_stdin)
{
    *uses_stdin = n == 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(files[i], "-") == 0) {
            *uses_stdin = 1;
            continue;
        }
        struct stat st;
        if (stat(files[i], &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
            cli_usage_error("--quantiles reads its input twice: %s is not a regular file "
                            "(give it on standard input, which is spooled)", files[i]);
    }
}

/* Release what a record loop holds when cli_run_finish is not called. */
static void run_release(cli_run *r)
{
    if (r->progress_shown)
        fputs("\r\033[K", stderr);
    curate_record_release(&r->rec);
    curate_buf_release(&r->text);
    curate_buf_release(&r->extra_stats);
    curate_buf_release(&r->outbuf);
}

/* First pass: every record's count (COUNT_FAILED when counting failed). */
static void first_pass(const settings *s, const cli_run *main_run, counter *c, int n, char **files,
                       count_list *all)
{
    cli_run p;
    cli_run_init(&p);
    for (size_t i = 0; i < s->n_shared; i++)
        cli_run_option(&p, s->shared_ids[i], s->shared_args[i]);
    p.output_path = p.rejects_path = p.stats_path = NULL;
    p.quiet = main_run->quiet;
    cli_run_start(&p, n, files);
    while (cli_run_next(&p)) {
        if (!cli_run_parse(&p) || !cli_run_text(&p))
            continue;
        uint64_t k;
        count_list_push(all, count_text(c, &p, &k) ? k : COUNT_FAILED);
    }
    run_release(&p);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Edges from the quantiles of the counts within [min, max]. */
static size_t quantile_edges(settings *s, const count_list *all)
{
    count_list kept = {0};
    for (size_t i = 0; i < all->n; i++)
        if (all->v[i] != COUNT_FAILED && all->v[i] >= s->min && all->v[i] <= s->max)
            count_list_push(&kept, all->v[i]);
    if (kept.n)
        qsort(kept.v, kept.n, sizeof *kept.v, cmp_u64);
    for (size_t q = 0; q < s->n_quantiles; q++) {
        if (!kept.n) {
            s->edges[q] = 0; /* no records: nothing will be bucketed */
            continue;
        }
        /* rank ceil(q n), 1-based; the small epsilon keeps q n that is an
         * integer in exact arithmetic (0.7 x 10) from rounding up. */
        double r = s->quantiles[q] * (double)kept.n - 1e-9;
        size_t rank = r <= 1.0 ? 1 : (size_t)r + ((double)(size_t)r < r);
        if (rank > kept.n)
            rank = kept.n;
        s->edges[q] = kept.v[rank - 1] + 1;
    }
    s->n_edges = s->n_quantiles;
    size_t n = kept.n;
    free(kept.v);
    return n;
}

/* ---- main ---------------------------------------------------------------------- */

static size_t bucket_of(const settings *s, uint64_t n)
{
    size_t b = 0;
    while (b < s->n_edges && n >= s->edges[b])
        b++;
    return b;
}

static void report(cli_run *run, const settings *s, const uint64_t *per_bucket, uint64_t total,
                   uint64_t n_counted, const counter *c, size_t n_quantile_records)
{
    static const char *const unit_names[] = {"chars", "words", "tokens"};
    const char *unit = unit_names[s->unit];
    curate_buf *x = &run->extra_stats;
    curate_buf_printf(x, ",\"length_bucket\":{\"unit\":\"%s\",\"counted\":%llu,\"total\":%llu,"
                      "\"edges\":[", unit, (unsigned long long)n_counted,
                      (unsigned long long)total);
    for (size_t i = 0; i < s->n_edges; i++)
        curate_buf_printf(x, "%s%llu", i ? "," : "", (unsigned long long)s->edges[i]);
    curate_buf_append_str(x, "],\"buckets\":{");
    for (size_t i = 0; i < s->n_names; i++) {
        if (i)
            curate_buf_append_char(x, ',');
        curate_buf_append_json_string(x, s->names[i], strlen(s->names[i]));
        curate_buf_printf(x, ":%llu", (unsigned long long)per_bucket[i]);
    }
    curate_buf_append_char(x, '}');
    if (s->n_quantiles) {
        curate_buf_append_str(x, ",\"quantiles\":[");
        for (size_t i = 0; i < s->n_quantiles; i++)
            curate_buf_printf(x, "%s%.17g", i ? "," : "", s->quantiles[i]);
        curate_buf_printf(x, "],\"quantile_records\":%zu", n_quantile_records);
    }
    if (c->tc) {
        curate_token_counter_stats st;
        curate_token_counter_get_stats(c->tc, &st);
        curate_buf_printf(x, ",\"token_cache\":{\"enabled\":%s,\"segments\":%llu,\"hits\":%llu,"
                          "\"direct_calls\":%llu,\"verified\":%llu,\"entries\":%llu,"
                          "\"memory_bytes\":%zu", st.cache_enabled ? "true" : "false",
                          (unsigned long long)st.segments, (unsigned long long)st.hits,
                          (unsigned long long)st.direct, (unsigned long long)st.verified,
                          (unsigned long long)st.entries, st.memory);
        if (st.why_disabled) {
            curate_buf_append_str(x, ",\"why_disabled\":");
            curate_buf_append_json_string(x, st.why_disabled, strlen(st.why_disabled));
        }
        curate_buf_append_char(x, '}');
        if (!st.cache_enabled && !s->no_cache && !run->quiet)
            cli_warn("token count cache off (%s): counting at SentencePiece speed", st.why_disabled);
    }
    curate_buf_append_char(x, '}');
    if (run->quiet)
        return;
    /* One line: "short 25 (< 128), medium 50 (< 512), long 25". */
    curate_buf line;
    curate_buf_init(&line);
    for (size_t i = 0; i < s->n_names; i++) {
        curate_buf_printf(&line, "%s%s %llu", i ? ", " : "", s->names[i],
                          (unsigned long long)per_bucket[i]);
        if (i < s->n_edges)
            curate_buf_printf(&line, " (< %llu)", (unsigned long long)s->edges[i]);
    }
    fprintf(stderr, "%s: %s buckets: %s\n", cli_progname, unit, line.data ? line.data : "");
    curate_buf_release(&line);
}

int main(int argc, char **argv)
{
    cli_begin(&tool, argc, argv);
    cli_run run;
    cli_run_init(&run);
    settings s;
    memset(&s, 0, sizeof s);
    s.unit = UNIT_NONE;
    s.tokens_field = "tokens";
    s.bucket_field = "bucket";
    int first;
    parse_options(argc, argv, &run, &s, &first);
    int n_files = argc - first;
    char **files = argv + first;

    counter c;
    memset(&c, 0, sizeof c);
    counter_open(&c, &s);

    count_list all = {0};
    size_t n_quantile_records = 0;
    if (s.n_quantiles) {
        int uses_stdin;
        off_t stdin_start = 0;
        check_rereadable(n_files, files, &uses_stdin);
        if (uses_stdin)
            stdin_start = spool_stdin();
        first_pass(&s, &run, &c, n_files, files, &all);
        n_quantile_records = quantile_edges(&s, &all);
        if (uses_stdin && lseek(STDIN_FILENO, stdin_start, SEEK_SET) != stdin_start)
            cli_die(CLI_EXIT_IO, "cannot rewind the spooled standard input: %s", strerror(errno));
    }

    uint64_t per_bucket[MAX_EDGES + 1] = {0};
    uint64_t total = 0, n_counted = 0;
    size_t next = 0; /* next count kept by the first pass */
    char extra[64];
    cli_run_start(&run, n_files, files);
    while (cli_run_next(&run)) {
        if (!cli_run_parse(&run) || !cli_run_text(&run))
            continue;
        uint64_t n;
        if (s.n_quantiles) {
            if (next >= all.n)
                cli_error("the input changed between the two passes");
            if (next >= all.n)
                cli_run_abort(&run, CLI_EXIT_IO);
            n = all.v[next++];
            /* A count that failed then fails again now, for --on-error. */
            if (n == COUNT_FAILED && !count_text(&c, &run, &n))
                continue;
        } else if (!count_text(&c, &run, &n)) {
            continue;
        }
        if (n < s.min || n > s.max) {
            snprintf(extra, sizeof extra, "\"_%s\":%llu", "tokens", (unsigned long long)n);
            cli_run_reject(&run, n < s.min ? "too_short" : "too_long", extra);
            continue;
        }
        size_t b = bucket_of(&s, n);
        per_bucket[b]++;
        total += n;
        n_counted++;
        if (n > INT64_MAX ||
            curate_record_set_int(&run.rec, s.tokens_field, (int64_t)n) != CURATE_OK ||
            curate_record_set_string(&run.rec, s.bucket_field, s.names[b], strlen(s.names[b])) !=
                CURATE_OK)
            cli_die(CLI_EXIT_INTERNAL, "out of memory");
        cli_run_write(&run);
    }
    if (s.n_quantiles && next != all.n) {
        cli_error("the input changed between the two passes");
        cli_run_abort(&run, CLI_EXIT_IO);
    }
    report(&run, &s, per_bucket, total, n_counted, &c, n_quantile_records);
    int status = cli_run_finish(&run);
    counter_close(&c);
    free(all.v);
    free(s.names_buf);
    return status;
}
