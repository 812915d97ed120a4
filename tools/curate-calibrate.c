/*
 * curate-calibrate - the model stage.  For now: evaluate a model's
 * perplexity on each text domain, with llama-perplexity's method by default
 * so the numbers match the ones users know.  (Quantizing with a calibration
 * set and comparing original and quantized models come next.)
 *
 * Each --eval file becomes one text: JSONL records' texts (or rendered chat
 * records) joined with a blank line, or a plain-text file as it is.  The
 * model is loaded once and one context (with its thread pool) serves every
 * domain.  Results: a table on stdout (deterministic: no timings), a summary
 * and a progress bar on stderr, and --report FILE.json with everything.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "curate/buf.h"
#include "curate/chat.h"
#include "curate/jsonl.h"
#include "curate/model.h"
#include "curate/ppl.h"
#include "curate/tokenizer.h"

enum {
    OPT_MODEL = 1000,
    OPT_TOKENIZER,
    OPT_EVAL,
    OPT_EVAL_DIR,
    OPT_CTX,
    OPT_PPL_MODE,
    OPT_MAX_CHUNKS,
    OPT_THREADS,
    OPT_TOKENIZE,
    OPT_REPORT
};

static const cli_option options[] = {
    {"model", 'm', CLI_REQ_ARG, "FILE", "the model: a GGUF file of architecture llama\n"
     "(weights F32, F16, BF16 or Q8_0; computed in F32)", OPT_MODEL},
    {"tokenizer", 't', CLI_REQ_ARG, "FILE", "the model's SentencePiece tokenizer (.model);\n"
     "its vocabulary must be the model's", OPT_TOKENIZER},
    {"eval", 'e', CLI_REQ_ARG, "NAME=FILE", "evaluate on FILE and report it as NAME\n"
     "(repeatable): JSONL (texts of the records joined\n"
     "by a blank line) or plain text (.txt, .raw)", OPT_EVAL},
    {"eval-dir", 0, CLI_REQ_ARG, "DIR", "evaluate on every file in DIR (.jsonl, .txt,\n"
     ".raw), each named by its file name without the\n"
     "extension, in name order", OPT_EVAL_DIR},
    {"ctx", 'c', CLI_REQ_ARG, "N", "chunk length in tokens (default 512; capped at\n"
     "the model's context length)", OPT_CTX},
    {"ppl-mode", 0, CLI_REQ_ARG, "MODE", "llamacpp (default: score the second half of each\n"
     "chunk, as llama-perplexity) or full (every\n"
     "position after the first)", OPT_PPL_MODE},
    {"max-chunks", 0, CLI_REQ_ARG, "N", "evaluate at most N chunks per domain (default: all)",
     OPT_MAX_CHUNKS},
    {"threads", 'j', CLI_REQ_ARG, "N", "threads (default: all online CPUs); results are\n"
     "the same for any N", OPT_THREADS},
    {"tokenize", 0, CLI_REQ_ARG, "MODE", "llamacpp (default: keep whitespace as written, as\n"
     "llama.cpp does) or spm (the tokenizer's own\n"
     "normalization, which may squash spaces)", OPT_TOKENIZE},
    {"report", 'r', CLI_REQ_ARG, "FILE", "write a JSON report (per domain: tokens, chunks,\n"
     "PPL and its error, timings) to FILE", OPT_REPORT},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const cli_tool tool = {
    "curate-calibrate",
    "--model FILE --tokenizer FILE (--eval NAME=FILE | --eval-dir DIR)... [OPTION]...",
    "Measure a model's perplexity on each text domain.",
    "Without a quantization method (the only mode so far) this reports the\n"
    "original model's perplexity per domain, by default exactly as llama.cpp's\n"
    "llama-perplexity computes it: the whole text tokenized once with BOS, chunks\n"
    "of --ctx tokens with BOS over each chunk's first token, the second half of\n"
    "each chunk scored, PPL = exp(mean negative log-likelihood) +/- its error.\n"
    "A text needs at least 2 x ctx tokens (one chunk with --ppl-mode full).",
    options,
    CLI_COMMON_RECORDS,
    "Output: one line per domain on standard output (domain, tokens, chunks, scored\n"
    "tokens, PPL, error); timings and a progress bar on standard error.\n"
    "A domain that fails (too short, bad record) is reported and skipped; the exit\n"
    "status is then 1.",
};

typedef struct domain {
    char *name;
    char *path;
    int plain;            /* plain text rather than JSONL */
    /* results */
    int ok;
    uint64_t records, bytes;
    curate_ppl_result res;
    char error[600];
} domain;

typedef struct settings {
    const char *model_path, *tokenizer_path, *report_path;
    size_t ctx, max_chunks;
    unsigned threads;
    int full, spm_tokenize;
    domain *domains;
    size_t n_domains, cap_domains;
} settings;

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int is_plain(const char *path)
{
    return has_suffix(path, ".txt") || has_suffix(path, ".raw");
}

static void add_domain(settings *s, const char *name, size_t name_len, const char *path)
{
    if (name_len == 0)
        cli_usage_error("--eval: the name before '=' must not be empty");
    if (!*path)
        cli_usage_error("--eval: no file after '%.*s='", (int)name_len, name);
    for (size_t i = 0; i < s->n_domains; i++)
        if (strlen(s->domains[i].name) == name_len &&
            memcmp(s->domains[i].name, name, name_len) == 0)
            cli_usage_error("domain '%.*s' given twice", (int)name_len, name);
    if (s->n_domains == s->cap_domains) {
        size_t cap = s->cap_domains ? s->cap_domains * 2 : 8;
        domain *d = realloc(s->domains, cap * sizeof *d);
        if (!d)
            cli_die(CLI_EXIT_INTERNAL, "out of memory");
        s->domains = d;
        s->cap_domains = cap;
    }
    domain *d = &s->domains[s->n_domains++];
    memset(d, 0, sizeof *d);
    d->name = strndup(name, name_len);
    d->path = strdup(path);
    if (!d->name || !d->path)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    d->plain = is_plain(path);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every evaluation file of dir, sorted by name so that the table and the
 * report come out in the same order on every file system. */
static void add_dir(settings *s, const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        cli_die(CLI_EXIT_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        const char *nm = de->d_name;
        if (nm[0] == '.')
            continue;
        if (!has_suffix(nm, ".jsonl") && !has_suffix(nm, ".txt") && !has_suffix(nm, ".raw"))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                cli_die(CLI_EXIT_INTERNAL, "out of memory");
            names = nn;
        }
        if (!(names[n++] = strdup(nm)))
            cli_die(CLI_EXIT_INTERNAL, "out of memory");
    }
    closedir(dp);
    if (n == 0)
        cli_die(CLI_EXIT_IO, "%s: no .jsonl, .txt or .raw files", dir);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(plen);
        if (!path)
            cli_die(CLI_EXIT_INTERNAL, "out of memory");
        snprintf(path, plen, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            const char *dot = strrchr(names[i], '.');
            add_domain(s, names[i], (size_t)(dot - names[i]), path);
        }
        free(path);
        free(names[i]);
    }
    free(names);
}

static void parse_options(int argc, char **argv, cli_run *run, settings *s)
{
    static const char *const modes[] = {"llamacpp", "full", NULL};
    static const char *const tokenize[] = {"llamacpp", "spm", NULL};
    int id, optind_ = 1;
    const char *arg;
    while ((id = cli_getopt(argc, argv, &arg, &optind_)) != -1) {
        if (cli_run_option(run, id, arg))
            continue;
        switch (id) {
        case OPT_MODEL: s->model_path = arg; break;
        case OPT_TOKENIZER: s->tokenizer_path = arg; break;
        case OPT_EVAL: {
            const char *eq = strchr(arg, '=');
            if (!eq)
                cli_usage_error("--eval: expected NAME=FILE, got '%s'", arg);
            add_domain(s, arg, (size_t)(eq - arg), eq + 1);
            break;
        }
        case OPT_EVAL_DIR: add_dir(s, arg); break;
        case OPT_CTX: s->ctx = (size_t)cli_parse_u64("--ctx", arg, 2, 1u << 20, 1); break;
        case OPT_PPL_MODE: s->full = cli_parse_choice("--ppl-mode", arg, modes); break;
        case OPT_MAX_CHUNKS:
            s->max_chunks = (size_t)cli_parse_u64("--max-chunks", arg, 1, UINT32_MAX, 0);
            break;
        case OPT_THREADS: s->threads = (unsigned)cli_parse_u64("--threads", arg, 1, 1024, 0); break;
        case OPT_TOKENIZE: s->spm_tokenize = cli_parse_choice("--tokenize", arg, tokenize); break;
        case OPT_REPORT: s->report_path = arg; break;
        default: cli_usage_error("unexpected option");
        }
    }
    if (optind_ < argc)
        cli_usage_error("unexpected argument '%s' (evaluation files go with --eval NAME=FILE)",
                        argv[optind_]);
    if (!s->model_path)
        cli_usage_error("--model is required");
    if (!s->tokenizer_path)
        cli_usage_error("--tokenizer is required");
    if (s->n_domains == 0)
        cli_usage_error("nothing to evaluate: give --eval NAME=FILE or --eval-dir DIR");
}

/* Exit status for a library failure: the tool's classes (see cli.h) */
static int status_exit(curate_status st)
{
    switch (st) {
    case CURATE_ERR_IO: return CLI_EXIT_IO;
    case CURATE_ERR_NOMEM:
    case CURATE_ERR_INTERNAL: return CLI_EXIT_INTERNAL;
    default: return CLI_EXIT_DATA;
    }
}

/* ---- reading an evaluation file ------------------------------------------------ */

/*
 * Read d's text into out.  0 on success; else d->error is set and the
 * return value is the exit status the failure deserves.  JSONL records
 * are joined with a blank line, the layout llama.cpp users give
 * llama-perplexity for record files (and the one ../shared's reference
 * numbers were made with); chat records go through the same renderer as
 * the other tools, so every stage sees the same text.
 */
static int read_domain(const cli_run *run, domain *d, curate_buf *out)
{
    curate_error err;
    curate_error_clear(&err);
    curate_buf_reset(out);
    curate_reader_opts ro = {run->max_record_bytes, 0};
    curate_reader *r = curate_reader_open(d->path, &ro, &err);
    if (!r) {
        curate_error_format(&err, d->error, sizeof d->error);
        return CLI_EXIT_IO;
    }
    int rc = 0;
    if (d->plain) {
        /* the file as it is, all of it: lines come without their "\n",
         * so the reader is not used line by line here */
        curate_reader_free(r);
        FILE *f = fopen(d->path, "rb");
        if (!f) {
            snprintf(d->error, sizeof d->error, "%s: cannot open: %s", d->path, strerror(errno));
            return CLI_EXIT_IO;
        }
        char chunk[1 << 16];
        size_t got;
        while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
            if (curate_buf_append(out, chunk, got) != CURATE_OK)
                cli_die(CLI_EXIT_INTERNAL, "out of memory");
        if (ferror(f)) {
            snprintf(d->error, sizeof d->error, "%s: read error: %s", d->path, strerror(errno));
            rc = CLI_EXIT_IO;
        }
        fclose(f);
        d->records = 1;
        d->bytes = out->len;
        return rc;
    }
    curate_record rec;
    curate_record_init(&rec);
    curate_buf text;
    curate_buf_init(&text);
    curate_line line;
    memset(&line, 0, sizeof line);
    curate_status st;
    while ((st = curate_reader_next(r, &line, &err)) == CURATE_OK) {
        curate_error_clear(&err);
        st = curate_record_parse(&rec, line.data, line.len, &err);
        if (st == CURATE_OK) {
            st = curate_record_get_string(&rec, run->field, &text, &err);
            if (st == CURATE_ERR_NO_FIELD && curate_record_get(&rec, CURATE_CHAT_DEFAULT_FIELD)) {
                curate_error_clear(&err);
                st = curate_chat_render(&rec, CURATE_CHAT_DEFAULT_FIELD,
                                        (curate_chat_template)run->chat_template, &text, &err);
            }
        }
        if (st != CURATE_OK) {
            if (st == CURATE_ERR_NOMEM)
                cli_die(CLI_EXIT_INTERNAL, "out of memory");
            curate_error_at(&err, d->path, line.lineno);
            curate_error_format(&err, d->error, sizeof d->error);
            rc = CLI_EXIT_DATA;
            break;
        }
        if ((d->records && curate_buf_append(out, "\n\n", 2) != CURATE_OK) ||
            curate_buf_append(out, text.data, text.len) != CURATE_OK)
            cli_die(CLI_EXIT_INTERNAL, "out of memory");
        d->records++;
        d->bytes += text.len;
    }
    if (!rc && st != CURATE_END) {
        /* a too-long line or a read error */
        curate_error_at(&err, d->path, line.lineno);
        curate_error_format(&err, d->error, sizeof d->error);
        rc = st == CURATE_ERR_IO ? CLI_EXIT_IO : CLI_EXIT_DATA;
    }
    if (!rc && d->records == 0) {
        snprintf(d->error, sizeof d->error, "%s: no records", d->path);
        rc = CLI_EXIT_DATA;
    }
    curate_buf_release(&text);
    curate_record_release(&rec);
    curate_reader_free(r);
    return rc;
}

/* ---- progress ------------------------------------------------------------------ */

typedef struct progress {
    int enabled;
    const char *name;
    double t_start, t_last;
    size_t ctx;
    double nll_sum;
    uint64_t scored;
    int shown;
} progress;

/*
 * After every chunk: keep a running PPL for the bar, redraw at most five
 * times a second (and at the last chunk).  Only on a terminal: a log file
 * should not fill with carriage returns.
 */
static void on_chunk(void *user, size_t chunk, size_t n_chunks, const float *logits,
                     size_t n_rows, const int32_t *targets, const double *nll)
{
    (void)logits;
    (void)targets;
    progress *p = user;
    for (size_t i = 0; i < n_rows; i++)
        p->nll_sum += nll[i];
    p->scored += n_rows;
    double now = cli_now();
    if (chunk == 0)
        p->t_start = now; /* the rate counts from the end of the first chunk */
    if (!p->enabled || (now - p->t_last < 0.2 && chunk + 1 < n_chunks))
        return;
    p->t_last = now;
    const int width = 30;
    int fill = (int)((double)width * (double)(chunk + 1) / (double)n_chunks);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width] = 0;
    char rate[32] = "";
    if (chunk > 0)
        snprintf(rate, sizeof rate, "  %.0f tok/s",
                 (double)(chunk * p->ctx) / (now - p->t_start + 1e-9));
    fprintf(stderr, "\r%s: %-12s [%s] %zu/%zu  PPL %.4f%s\033[K", cli_progname, p->name, bar,
            chunk + 1, n_chunks, exp(p->nll_sum / (double)p->scored), rate);
    p->shown = 1;
}

/* ---- the report -------------------------------------------------------------------- */

static void json_str(curate_buf *b, const char *s)
{
    if (curate_buf_append_json_string(b, s, strlen(s)) != CURATE_OK)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
}

/*
 * The JSON report, written to a temporary file beside the target and
 * renamed, so a reader never sees half a report.  Numbers carry more
 * digits than the table (the table is for people, the report for tools).
 */
static int write_report(const settings *s, const curate_model *m, unsigned threads,
                        double seconds)
{
    const curate_model_params *p = curate_model_get_params(m);
    curate_buf b;
    curate_buf_init(&b);
    curate_buf_printf(&b, "{\"tool\":\"curate-calibrate\",\"version\":");
    json_str(&b, curate_version());
    curate_buf_printf(&b, ",\"model\":{\"path\":");
    json_str(&b, s->model_path);
    curate_buf_printf(&b, ",\"arch\":");
    json_str(&b, p->arch);
    curate_buf_printf(&b,
                      ",\"n_params\":%llu,\"n_vocab\":%u,\"n_ctx_train\":%u,\"n_embd\":%u,"
                      "\"n_layer\":%u,\"n_head\":%u,\"n_head_kv\":%u,\"n_ff\":%u}",
                      (unsigned long long)curate_model_n_params(m), p->n_vocab, p->n_ctx_train,
                      p->n_embd, p->n_layer, p->n_head, p->n_head_kv, p->n_ff);
    curate_buf_printf(&b, ",\"tokenizer\":");
    json_str(&b, s->tokenizer_path);
    curate_buf_printf(&b, ",\"tokenize\":\"%s\",\"ppl_mode\":\"%s\",\"ctx\":%zu,\"max_chunks\":%zu,"
                          "\"threads\":%u,\"domains\":[",
                      s->spm_tokenize ? "spm" : "llamacpp", s->full ? "full" : "llamacpp", s->ctx,
                      s->max_chunks, threads);
    for (size_t i = 0; i < s->n_domains; i++) {
        const domain *d = &s->domains[i];
        const curate_ppl_result *r = &d->res;
        curate_buf_printf(&b, "%s{\"name\":", i ? "," : "");
        json_str(&b, d->name);
        curate_buf_printf(&b, ",\"file\":");
        json_str(&b, d->path);
        curate_buf_printf(&b, ",\"format\":\"%s\",\"records\":%llu,\"text_bytes\":%llu",
                          d->plain ? "text" : "jsonl", (unsigned long long)d->records,
                          (unsigned long long)d->bytes);
        if (!d->ok) {
            curate_buf_printf(&b, ",\"error\":");
            json_str(&b, d->error);
            curate_buf_append_char(&b, '}');
            continue;
        }
        curate_buf_printf(&b,
                          ",\"tokens\":%llu,\"ctx\":%zu,\"chunks\":%llu,\"scored\":%llu,"
                          "\"ppl\":%.6f,\"ppl_err\":%.6f,\"nll_mean\":%.8f,\"nll_std\":%.8f,"
                          "\"top1\":%.6f,\"seconds_tokenize\":%.3f,\"seconds_eval\":%.3f,"
                          "\"eval_tokens_per_second\":%.1f}",
                          (unsigned long long)r->n_tokens, r->ctx,
                          (unsigned long long)r->n_chunks, (unsigned long long)r->n_scored, r->ppl,
                          r->ppl_err, r->nll_mean, r->nll_std, r->top1, r->seconds_tokenize,
                          r->seconds_eval,
                          r->seconds_eval > 0 ? (double)r->n_evaluated / r->seconds_eval : 0.0);
    }
    curate_buf_printf(&b, "],\"seconds\":%.3f,\"peak_rss_bytes\":%llu}\n", seconds,
                      (unsigned long long)cli_peak_rss());
    if (!b.data)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");

    size_t n = strlen(s->report_path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    memcpy(tmp, s->report_path, n);
    memcpy(tmp + n, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    int rc = 0;
    if (fd < 0) {
        cli_error("%s: cannot create: %s", s->report_path, strerror(errno));
        rc = CLI_EXIT_IO;
    } else {
        FILE *f = fdopen(fd, "wb");
        int bad = !f || fwrite(b.data, 1, b.len, f) != b.len;
        if (f ? fclose(f) != 0 : close(fd) != 0)
            bad = 1;
        if (bad || rename(tmp, s->report_path) != 0) {
            cli_error("%s: cannot write: %s", s->report_path, strerror(errno));
            unlink(tmp);
            rc = CLI_EXIT_IO;
        }
    }
    free(tmp);
    curate_buf_release(&b);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    cli_begin(&tool, argc, argv);
    cli_run run;
    cli_run_init(&run);
    settings s;
    memset(&s, 0, sizeof s);
    s.ctx = 512;
    parse_options(argc, argv, &run, &s);
    const double t0 = cli_now();

    curate_error err;
    curate_error_clear(&err);
    int status = 0;
    curate_model *m = NULL;
    curate_tokenizer *tok = NULL;
    curate_model_ctx *c = NULL;
    curate_buf text;
    curate_buf_init(&text);
    m = curate_model_load(s.model_path, &err);
    if (!m) {
        cli_error_lib(&err);
        status = status_exit(err.code);
        goto done;
    }
    unsigned flags = s.spm_tokenize ? 0 : CURATE_TOK_LOAD_KEEP_WHITESPACE;
    tok = curate_tokenizer_load_ex(s.tokenizer_path, flags, &err);
    if (!tok) {
        cli_error_lib(&err);
        status = status_exit(err.code);
        goto done;
    }
    if (curate_model_check_tokenizer(m, tok, &err) != CURATE_OK) {
        cli_error("%s and %s: %s", s.model_path, s.tokenizer_path, err.message);
        status = CLI_EXIT_DATA;
        goto done;
    }
    /* the library caps too; capping here as well lets the context be sized
     * to what is used and the warning be said once */
    const curate_model_params *p = curate_model_get_params(m);
    size_t ctx = s.ctx;
    if (p->n_ctx_train && ctx > p->n_ctx_train) {
        if (!run.quiet)
            cli_warn("--ctx %zu is above the model's context length %u; using %u", ctx,
                     p->n_ctx_train, p->n_ctx_train);
        ctx = p->n_ctx_train;
    }
    s.ctx = ctx;
    c = curate_model_ctx_init(m, ctx, s.threads, &err);
    if (!c) {
        cli_error_lib(&err);
        status = status_exit(err.code);
        goto done;
    }
    const unsigned threads = curate_model_ctx_threads(c);
    if (!run.quiet)
        fprintf(stderr, "%s: %s: %s, %llu parameters, %u layers, vocabulary %u; ctx %zu, %u "
                        "thread%s\n",
                cli_progname, s.model_path, p->arch,
                (unsigned long long)curate_model_n_params(m), p->n_layer, p->n_vocab, ctx,
                threads, threads == 1 ? "" : "s");

    curate_ppl_opts o;
    curate_ppl_opts_init(&o);
    o.ctx = ctx;
    o.mode = s.full ? CURATE_PPL_FULL : CURATE_PPL_LLAMACPP;
    o.max_chunks = s.max_chunks;
    o.on_chunk = on_chunk;
    progress prog;
    o.user = &prog;
    const int tty = isatty(STDERR_FILENO);

    /* stdout holds no timings: the same input gives the same bytes at any
     * thread count, so the table can be diffed and tested */
    printf("%-16s %10s %8s %10s %12s %10s\n", "domain", "tokens", "chunks", "scored", "PPL",
           "+/-");
    /* A failing domain (unreadable, bad record, too short) is reported and
     * skipped: the other domains' numbers are still worth having, and the
     * exit status says that something failed. */
    for (size_t i = 0; i < s.n_domains; i++) {
        domain *d = &s.domains[i];
        int rc = read_domain(&run, d, &text);
        if (rc == 0) {
            memset(&prog, 0, sizeof prog);
            prog.enabled = tty && !run.quiet;
            prog.name = d->name;
            prog.ctx = ctx;
            prog.t_start = prog.t_last = cli_now();
            curate_error_clear(&err);
            curate_status st = curate_ppl_text(c, tok, text.data ? text.data : "", text.len, &o,
                                               &d->res, &err);
            if (prog.shown)
                fputs("\r\033[K", stderr);
            if (st == CURATE_OK) {
                d->ok = 1;
            } else {
                if (st == CURATE_ERR_NOMEM || st == CURATE_ERR_INTERNAL)
                    cli_die(CLI_EXIT_INTERNAL, "%s: %s", d->name, err.message);
                snprintf(d->error, sizeof d->error, "%s: %s", d->path, err.message);
                rc = CLI_EXIT_DATA;
            }
        }
        if (rc) {
            cli_error("%s", d->error);
            if (status == 0 || rc > status)
                status = rc;
            continue;
        }
        const curate_ppl_result *r = &d->res;
        printf("%-16s %10llu %8llu %10llu %12.4f %10.5f\n", d->name,
               (unsigned long long)r->n_tokens, (unsigned long long)r->n_chunks,
               (unsigned long long)r->n_scored, r->ppl, r->ppl_err);
        if (fflush(stdout) != 0)
            break;
        if (!run.quiet)
            fprintf(stderr, "%s: %s: %llu record%s, %llu tokens, tokenized in %.2f s, "
                            "evaluated in %.2f s (%.0f tokens/s)\n",
                    cli_progname, d->name, (unsigned long long)d->records,
                    d->records == 1 ? "" : "s",
                    (unsigned long long)r->n_tokens, r->seconds_tokenize, r->seconds_eval,
                    r->seconds_eval > 0 ? (double)r->n_evaluated / r->seconds_eval : 0.0);
    }
    if (ferror(stdout) || fclose(stdout) != 0) {
        if (errno != EPIPE)
            cli_error("standard output: write error: %s", strerror(errno));
        status = CLI_EXIT_IO;
    }
    if (s.report_path) {
        int rc = write_report(&s, m, threads, cli_now() - t0);
        if (rc)
            status = rc;
    }
    if (!run.quiet)
        fprintf(stderr, "%s: %.2f s, peak memory %.1f MiB\n", cli_progname, cli_now() - t0,
                (double)cli_peak_rss() / (1024.0 * 1024.0));

done:
    curate_buf_release(&text);
    curate_model_ctx_free(c);
    curate_tokenizer_free(tok);
    curate_model_free(m);
    for (size_t i = 0; i < s.n_domains; i++) {
        free(s.domains[i].name);
        free(s.domains[i].path);
    }
    free(s.domains);
    return status;
}
