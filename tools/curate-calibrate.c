/*
 * curate-calibrate - the model stage: quantize a model with a calibration
 * set and report, per text domain, what the quantization did to it.
 *
 * The run, in order (each step only when asked for):
 *   1. load the model and its tokenizer;
 *   2. read the calibration records (--calib), tokenize each, optionally
 *      pick a seeded subset (--calib-records), pack them (--pack) and say
 *      what was used, cut and dropped;
 *   3. run the original model over the calibration sequences with an
 *      observer on every linear-layer input (curate_calib_collect);
 *      --out-imatrix writes the importance matrix from these observers;
 *   4. quantize the selected weight matrices into a copy of the model
 *      (--method; curate_calib_quantize); --out-gguf writes the result in
 *      ggml blocks;
 *   5. install activation rounding on the quantized model's context
 *      (--act-bits; curate_calib_act);
 *   6. for every evaluation domain, run the original and the quantized
 *      model side by side on the same chunks (curate_calib_compare): PPL of
 *      both, KL, top-1 agreement, verdict.
 * Without --method and --act-bits, step 6 measures the original alone (the
 * perplexity table of llama-perplexity).
 *
 * Outputs: the table on stdout (deterministic: no timings, the same bytes at
 * any thread count), notes, a progress bar and timings on stderr, --report
 * FILE.json with every number, --html FILE (tools/cli_report_html.c).
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib_report.h"
#include "cli.h"
#include "curate/actquant.h"
#include "curate/buf.h"
#include "curate/calibrate.h"
#include "curate/chat.h"
#include "curate/export.h"
#include "curate/gguf.h"
#include "curate/imatrix.h"
#include "curate/jsonl.h"
#include "curate/model.h"
#include "curate/ppl.h"
#include "curate/quant.h"
#include "curate/rng.h"
#include "curate/tokenizer.h"

enum {
    OPT_MODEL = 1000,
    OPT_TOKENIZER,
    OPT_EVAL,
    OPT_EVAL_DIR,
    OPT_EVAL_SPLIT,
    OPT_DOMAIN_FIELD,
    OPT_CTX,
    OPT_PPL_MODE,
    OPT_MAX_CHUNKS,
    OPT_THREADS,
    OPT_TOKENIZE,
    OPT_CALIB,
    OPT_PACK,
    OPT_CALIB_RECORDS,
    OPT_SEED,
    OPT_METHOD,
    OPT_BITS,
    OPT_GROUP,
    OPT_SYM,
    OPT_ASYM,
    OPT_RESTRICTED,
    OPT_ACT_ORDER,
    OPT_DAMP,
    OPT_INCLUDE,
    OPT_EXCLUDE,
    OPT_ACT_BITS,
    OPT_ACT_METHOD,
    OPT_ACT_SCOPE,
    OPT_OUT_GGUF,
    OPT_OUT_IMATRIX,
    OPT_IMATRIX_FORMAT,
    OPT_REPORT,
    OPT_HTML,
    OPT_MATRIX,
    OPT_REPEATS,
    OPT_SUBSAMPLE,
    OPT_SCORE,
    OPT_SCORE_INPUT
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
    {"eval-split", 0, CLI_REQ_ARG, "FILE", "evaluate on one JSONL file split into domains by\n"
     "the --domain-field of its records, in name order", OPT_EVAL_SPLIT},
    {"domain-field", 0, CLI_REQ_ARG, "NAME", "the field naming a record's domain, for\n"
     "--eval-split and the calibration set's\n"
     "composition (default: domain)", OPT_DOMAIN_FIELD},
    {"ctx", 'c', CLI_REQ_ARG, "N", "chunk length in tokens for calibration and\n"
     "evaluation (default 512; capped at the model's\n"
     "context length)", OPT_CTX},
    {"ppl-mode", 0, CLI_REQ_ARG, "MODE", "llamacpp (default: score the second half of each\n"
     "chunk, as llama-perplexity) or full (every\n"
     "position after the first)", OPT_PPL_MODE},
    {"max-chunks", 0, CLI_REQ_ARG, "N", "evaluate at most N chunks per domain\n"
     "(default: all)", OPT_MAX_CHUNKS},
    {"threads", 'j', CLI_REQ_ARG, "N", "threads (default: all online CPUs); results are\n"
     "the same for any N", OPT_THREADS},
    {"tokenize", 0, CLI_REQ_ARG, "MODE", "llamacpp (default: keep whitespace as written, as\n"
     "llama.cpp does) or spm (the tokenizer's own\n"
     "normalization, which may squash spaces)", OPT_TOKENIZE},
    {"calib", 0, CLI_REQ_ARG, "FILE", "the calibration set: JSONL text or chat records\n"
     "(repeatable; files are read in order)", OPT_CALIB},
    {"pack", 0, CLI_REQ_ARG, "MODE", "concat (default: one token stream cut into chunks\n"
     "of --ctx with BOS first, as llama.cpp's imatrix)\n"
     "or sample (one record per sequence, cut at --ctx)", OPT_PACK},
    {"calib-records", 0, CLI_REQ_ARG, "N", "use N records picked at random (--seed), kept in\n"
     "file order (default: all)", OPT_CALIB_RECORDS},
    {"seed", 0, CLI_REQ_ARG, "N", "seed for --calib-records (default 0)", OPT_SEED},
    {"method", 0, CLI_REQ_ARG, "NAME", "quantize the weights: rtn, mse, imatrix, awq or\n"
     "gptq (imatrix, awq and gptq need --calib)", OPT_METHOD},
    {"bits", 'b', CLI_REQ_ARG, "N", "weight bits, 2..8 (default 4)", OPT_BITS},
    {"group-size", 'g', CLI_REQ_ARG, "G", "columns per scale along a row (default 32;\n"
     "0 = one scale per output channel)", OPT_GROUP},
    {"sym", 0, CLI_NO_ARG, NULL, "symmetric codes (the default)", OPT_SYM},
    {"asym", 0, CLI_NO_ARG, NULL, "asymmetric codes with a minimum per group", OPT_ASYM},
    {"restricted", 0, CLI_NO_ARG, NULL, "symmetric range +-(2^(b-1)-1), as llama.cpp's Q8_0\n"
     "(default: the full range, as its Q4_0)", OPT_RESTRICTED},
    {"act-order", 0, CLI_NO_ARG, NULL, "gptq: quantize columns by decreasing Hessian\n"
     "diagonal (static groups)", OPT_ACT_ORDER},
    {"damp", 0, CLI_REQ_ARG, "F", "gptq: damping as a fraction of the mean Hessian\n"
     "diagonal (default 0.01)", OPT_DAMP},
    {"include", 0, CLI_REQ_ARG, "PATTERN", "quantize only tensors matching PATTERN (fnmatch;\n"
     "repeatable; default: every blk.* matrix, so the\n"
     "embedding and output stay as they are)", OPT_INCLUDE},
    {"exclude", 0, CLI_REQ_ARG, "PATTERN", "keep tensors matching PATTERN in full precision\n"
     "(repeatable), e.g. '*ffn_down*'", OPT_EXCLUDE},
    {"act-bits", 0, CLI_REQ_ARG, "N", "also round the inputs of the quantized layers to\n"
     "N-bit integers (simulated W8A8 with 8), 2..16", OPT_ACT_BITS},
    {"act-method", 0, CLI_REQ_ARG, "M", "static range from the calibration histograms:\n"
     "minmax (default), percentile[:P] (99.99), kl or\n"
     "mse", OPT_ACT_METHOD},
    {"act-scope", 0, CLI_REQ_ARG, "S", "tensor (default: one static scale per input) or\n"
     "token (a dynamic scale per token)", OPT_ACT_SCOPE},
    {"out-gguf", 0, CLI_REQ_ARG, "FILE", "write the quantized model as GGUF: Q8_0 (8 bits,\n"
     "sym), Q4_0 (4, sym) or Q4_1 (4, asym), groups of\n"
     "32; rows that do not split into blocks of 32 stay\n"
     "F16/F32", OPT_OUT_GGUF},
    {"out-imatrix", 0, CLI_REQ_ARG, "FILE", "write the calibration set's importance matrix\n"
     "for llama-quantize --imatrix", OPT_OUT_IMATRIX},
    {"imatrix-format", 0, CLI_REQ_ARG, "FMT", "gguf or dat (default: gguf when FILE ends in\n"
     ".gguf, else dat)", OPT_IMATRIX_FORMAT},
    {"report", 'r', CLI_REQ_ARG, "FILE", "write a JSON report with every number, the\n"
     "configuration and the calibration provenance", OPT_REPORT},
    {"html", 0, CLI_REQ_ARG, "FILE", "write a self-contained HTML page with charts",
     OPT_HTML},
    {"matrix", 0, CLI_NO_ARG, NULL, "also calibrate on each --domain-field domain of the\n"
     "calibration set alone and print the matrix of\n"
     "dPPL% (rows: calibration domain and all; columns:\n"
     "evaluation domain)", OPT_MATRIX},
    {"repeats", 0, CLI_REQ_ARG, "K", "also calibrate K times on seeded sub-samples of\n"
     "the set (--subsample, seeds --seed + i) and report\n"
     "mean, std, min and max of every figure; '~' marks\n"
     "a mean within 2 std of zero", OPT_REPEATS},
    {"subsample", 0, CLI_REQ_ARG, "F", "share of the records each repeat draws\n"
     "(default 0.8)", OPT_SUBSAMPLE},
    {"score", 0, CLI_REQ_ARG, "FILE", "write the records back as JSONL with loss (mean\n"
     "NLL per token, original), loss_q (quantized) and\n"
     "kl (mean KL): a scored pool for\n"
     "curate-badcase-inject", OPT_SCORE},
    {"score-input", 0, CLI_REQ_ARG, "FILE", "the records --score scores (default: the --calib\n"
     "files)", OPT_SCORE_INPUT},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const cli_tool tool = {
    "curate-calibrate",
    "-m FILE -t FILE [--calib FILE --method NAME] [OPTION]...\n"
    "       (--eval NAME=FILE | --eval-dir DIR | --eval-split FILE)...",
    "Quantize a model with a calibration set and report the damage per domain.",
    "With --method (and/or --act-bits) the model is quantized, using statistics of\n"
    "its layer inputs over the --calib records, and every evaluation domain is run\n"
    "through the original and the quantized model on the same chunks: PPL of both,\n"
    "the change in %, KL(original || quantized) mean and 99th percentile, top-1\n"
    "agreement, and a verdict (<1% excellent, 1-3% acceptable, >3% needs work).\n"
    "Without them it reports the original's perplexity per domain.  Perplexity is\n"
    "llama-perplexity's: the text tokenized once with BOS, chunks of --ctx tokens\n"
    "with BOS first, the second half of each chunk scored.  A text needs at least\n"
    "2 x ctx tokens (one chunk with --ppl-mode full).",
    options,
    CLI_COMMON_RECORDS,
    "Output: one line per domain on standard output (without quantization: domain,\n"
    "tokens, chunks, scored tokens, PPL, error; with it: domain, scored tokens, PPL\n"
    "of both models, change, KL mean and p99, top-1 agreement, verdict; then the\n"
    "means over domains, and the mean size of the change with the overall\n"
    "verdict).  Notes, timings and a progress bar on standard error.\n"
    "A domain that fails (too short, bad record) is reported and skipped; the exit\n"
    "status is then 1.",
};

/* ---- settings -------------------------------------------------------------------------- */

typedef struct domain {
    char *name;
    char *path;
    int plain;             /* plain text rather than JSONL */
    int split;             /* records of path whose domain field equals name */
    /* results */
    int ok;
    uint64_t records, bytes, tokens;
    size_t ctx;
    curate_calib_cmp cmp;
    double seconds_tokenize;
    char error[600];
} domain;

typedef struct settings {
    const char *model_path, *tokenizer_path, *report_path, *html_path;
    size_t ctx, max_chunks;
    unsigned threads;
    int full, spm_tokenize;
    domain *domains;
    size_t n_domains, cap_domains;
    const char *domain_field;
    /* calibration */
    const char **calib;
    size_t n_calib;
    curate_calib_pack pack;
    uint64_t calib_records;  /* 0 = all */
    uint64_t seed;
    /* weights */
    int quantize;
    curate_quant_config qcfg;
    int sym_given, asym_given, weight_opt_given;
    const char *weight_opt_name;
    const char **include, **exclude;
    size_t n_include, n_exclude;
    /* activations */
    int act;
    curate_act_config acfg;
    const char *act_method_text, *act_opt_name;
    /* exports */
    const char *out_gguf, *out_imatrix;
    int imatrix_format; /* -1 = from the file name */
    /* studies (calibrate_study.c in the library; study_* below) */
    int matrix;
    uint64_t repeats;
    double subsample;
    const char *score_path, *score_input;
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

static void *xrealloc(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    size_t bytes = n * size;
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    return q;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    return d;
}

static void push_str(const char ***arr, size_t *n, const char *s)
{
    *arr = xrealloc((void *)*arr, *n + 1, sizeof **arr);
    (*arr)[(*n)++] = s;
}

static domain *add_domain(settings *s, const char *name, size_t name_len, const char *path)
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
        s->cap_domains = s->cap_domains ? s->cap_domains * 2 : 8;
        s->domains = xrealloc(s->domains, s->cap_domains, sizeof *s->domains);
    }
    domain *d = &s->domains[s->n_domains++];
    memset(d, 0, sizeof *d);
    d->name = strndup(name, name_len);
    d->path = xstrdup(path);
    if (!d->name)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    d->plain = is_plain(path);
    return d;
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
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        const char *nm = de->d_name;
        if (nm[0] == '.')
            continue;
        if (!has_suffix(nm, ".jsonl") && !has_suffix(nm, ".txt") && !has_suffix(nm, ".raw"))
            continue;
        names = xrealloc(names, n + 1, sizeof *names);
        names[n++] = xstrdup(nm);
    }
    closedir(dp);
    if (n == 0)
        cli_die(CLI_EXIT_IO, "%s: no .jsonl, .txt or .raw files", dir);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        char *path = xrealloc(NULL, plen, 1);
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

/* The domain of a parsed record: the string value of field, or "-". */
static void record_domain(const curate_record *rec, const char *field, curate_buf *out)
{
    curate_error e;
    if (curate_record_get_string(rec, field, out, &e) != CURATE_OK) {
        curate_buf_reset(out);
        curate_buf_append_str(out, "-");
    }
}

/* --eval-split: one domain per distinct value of the domain field, in name
 * order.  The file is scanned here; each domain reads it again later. */
static void add_split(settings *s, const cli_run *run, const char *path)
{
    curate_error err;
    curate_error_clear(&err);
    curate_reader_opts ro = {run->max_record_bytes, 0};
    curate_reader *r = curate_reader_open(path, &ro, &err);
    if (!r) {
        cli_error_lib(&err);
        exit(CLI_EXIT_IO);
    }
    curate_record rec;
    curate_record_init(&rec);
    curate_buf val;
    curate_buf_init(&val);
    curate_line line;
    memset(&line, 0, sizeof line);
    char **names = NULL;
    size_t n = 0;
    curate_status st;
    while ((st = curate_reader_next(r, &line, &err)) == CURATE_OK) {
        if (curate_record_parse(&rec, line.data, line.len, &err) != CURATE_OK) {
            curate_error_at(&err, path, line.lineno);
            cli_error_lib(&err);
            exit(CLI_EXIT_DATA);
        }
        record_domain(&rec, s->domain_field, &val);
        size_t k = 0;
        while (k < n && strcmp(names[k], val.data) != 0)
            k++;
        if (k == n) {
            names = xrealloc(names, n + 1, sizeof *names);
            names[n++] = xstrdup(val.data);
        }
    }
    if (st != CURATE_END) {
        curate_error_at(&err, path, line.lineno);
        cli_error_lib(&err);
        exit(st == CURATE_ERR_IO ? CLI_EXIT_IO : CLI_EXIT_DATA);
    }
    curate_reader_free(r);
    curate_record_release(&rec);
    curate_buf_release(&val);
    if (n == 0)
        cli_die(CLI_EXIT_DATA, "%s: no records", path);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        domain *d = add_domain(s, names[i], strlen(names[i]), path);
        d->split = 1;
        d->plain = 0;
        free(names[i]);
    }
    free(names);
}

/* The option needs --method (a weight setting) or --act-bits. */
static void weight_opt(settings *s, const char *name)
{
    s->weight_opt_given = 1;
    s->weight_opt_name = name;
}

static void parse_options(int argc, char **argv, cli_run *run, settings *s)
{
    static const char *const modes[] = {"llamacpp", "full", NULL};
    static const char *const tokenize[] = {"llamacpp", "spm", NULL};
    static const char *const imfmt[] = {"gguf", "dat", NULL};
    const char **splits = NULL;
    size_t n_splits = 0;
    int id, optind_ = 1;
    const char *arg;
    curate_error err;
    curate_error_clear(&err);
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
        case OPT_EVAL_SPLIT: push_str(&splits, &n_splits, arg); break;
        case OPT_DOMAIN_FIELD:
            if (!*arg)
                cli_usage_error("--domain-field: the name must not be empty");
            s->domain_field = arg;
            break;
        case OPT_CTX: s->ctx = (size_t)cli_parse_u64("--ctx", arg, 2, 1u << 20, 1); break;
        case OPT_PPL_MODE: s->full = cli_parse_choice("--ppl-mode", arg, modes); break;
        case OPT_MAX_CHUNKS:
            s->max_chunks = (size_t)cli_parse_u64("--max-chunks", arg, 1, UINT32_MAX, 0);
            break;
        case OPT_THREADS: s->threads = (unsigned)cli_parse_u64("--threads", arg, 1, 1024, 0); break;
        case OPT_TOKENIZE: s->spm_tokenize = cli_parse_choice("--tokenize", arg, tokenize); break;
        case OPT_CALIB: push_str(&s->calib, &s->n_calib, arg); break;
        case OPT_PACK:
            if (curate_calib_pack_parse(arg, &s->pack, &err) != CURATE_OK)
                cli_usage_error("--pack: invalid value '%s' (choose from concat, sample)", arg);
            break;
        case OPT_CALIB_RECORDS:
            s->calib_records = cli_parse_u64("--calib-records", arg, 1, UINT64_MAX / 2, 1);
            break;
        case OPT_SEED: s->seed = cli_parse_u64("--seed", arg, 0, UINT64_MAX, 0); break;
        case OPT_METHOD:
            if (curate_quant_method_parse(arg, &s->qcfg.method, &err) != CURATE_OK)
                cli_usage_error("--method: invalid value '%s' (choose from rtn, mse, imatrix, "
                                "awq, gptq)",
                                arg);
            s->quantize = 1;
            break;
        case OPT_BITS:
            s->qcfg.bits = (unsigned)cli_parse_u64("--bits", arg, CURATE_QUANT_MIN_BITS,
                                                   CURATE_QUANT_MAX_BITS, 0);
            weight_opt(s, "--bits");
            break;
        case OPT_GROUP:
            s->qcfg.group_size = (size_t)cli_parse_u64("--group-size", arg, 0, 1u << 24, 0);
            weight_opt(s, "--group-size");
            break;
        case OPT_SYM: s->sym_given = 1; s->qcfg.asym = 0; weight_opt(s, "--sym"); break;
        case OPT_ASYM: s->asym_given = 1; s->qcfg.asym = 1; weight_opt(s, "--asym"); break;
        case OPT_RESTRICTED: s->qcfg.restricted = 1; weight_opt(s, "--restricted"); break;
        case OPT_ACT_ORDER: s->qcfg.act_order = 1; weight_opt(s, "--act-order"); break;
        case OPT_DAMP:
            s->qcfg.damp = (float)cli_parse_double("--damp", arg, 0.0, 1e6);
            weight_opt(s, "--damp");
            break;
        case OPT_INCLUDE: push_str(&s->include, &s->n_include, arg); break;
        case OPT_EXCLUDE: push_str(&s->exclude, &s->n_exclude, arg); break;
        case OPT_ACT_BITS:
            s->acfg.bits = (unsigned)cli_parse_u64("--act-bits", arg, 2, 16, 0);
            s->act = 1;
            break;
        case OPT_ACT_METHOD:
            if (curate_act_method_parse(arg, &s->acfg, &err) != CURATE_OK)
                cli_usage_error("--act-method: %s", err.message);
            s->act_method_text = arg;
            s->act_opt_name = "--act-method";
            break;
        case OPT_ACT_SCOPE:
            if (curate_act_scope_parse(arg, &s->acfg, &err) != CURATE_OK)
                cli_usage_error("--act-scope: invalid value '%s' (choose from tensor, token)", arg);
            s->act_opt_name = "--act-scope";
            break;
        case OPT_OUT_GGUF: s->out_gguf = arg; break;
        case OPT_OUT_IMATRIX: s->out_imatrix = arg; break;
        case OPT_IMATRIX_FORMAT:
            s->imatrix_format = cli_parse_choice("--imatrix-format", arg, imfmt);
            break;
        case OPT_REPORT: s->report_path = arg; break;
        case OPT_HTML: s->html_path = arg; break;
        case OPT_MATRIX: s->matrix = 1; break;
        case OPT_REPEATS: s->repeats = cli_parse_u64("--repeats", arg, 1, 1000, 0); break;
        case OPT_SUBSAMPLE:
            s->subsample = cli_parse_double("--subsample", arg, 1e-9, 1.0);
            break;
        case OPT_SCORE: s->score_path = arg; break;
        case OPT_SCORE_INPUT: s->score_input = arg; break;
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
    for (size_t i = 0; i < n_splits; i++)
        add_split(s, run, splits[i]);
    free(splits);
    if (s->n_domains == 0 && !s->out_gguf && !s->out_imatrix && !s->score_path)
        cli_usage_error("nothing to evaluate: give --eval NAME=FILE, --eval-dir DIR or "
                        "--eval-split FILE");
    /* combinations, checked before anything is loaded */
    if (s->sym_given && s->asym_given)
        cli_usage_error("--sym and --asym exclude each other");
    if (s->qcfg.restricted && s->qcfg.asym)
        cli_usage_error("--restricted is a symmetric range: not with --asym");
    if (s->weight_opt_given && !s->quantize)
        cli_usage_error("%s sets the weight quantization: give --method too",
                        s->weight_opt_name);
    if ((s->n_include || s->n_exclude) && !s->quantize && !s->act)
        cli_usage_error("--include and --exclude select tensors to quantize: give --method "
                        "or --act-bits");
    if (s->act_opt_name && !s->act)
        cli_usage_error("%s needs --act-bits", s->act_opt_name);
    if (s->quantize && curate_quant_config_check(&s->qcfg, &err) != CURATE_OK)
        cli_usage_error("%s", err.message);
    int needs_calib = (s->quantize && (s->qcfg.method == CURATE_QUANT_IMATRIX ||
                                       s->qcfg.method == CURATE_QUANT_AWQ ||
                                       s->qcfg.method == CURATE_QUANT_GPTQ));
    if (needs_calib && s->n_calib == 0)
        cli_usage_error("--method %s needs a calibration set: give --calib FILE",
                        curate_quant_method_name(s->qcfg.method));
    if (s->act && s->acfg.scope == CURATE_ACT_TENSOR && s->n_calib == 0)
        cli_usage_error("static activation scales (--act-scope tensor) need a calibration set: "
                        "give --calib FILE, or use --act-scope token");
    if (s->out_imatrix && s->n_calib == 0)
        cli_usage_error("--out-imatrix needs a calibration set: give --calib FILE");
    if (s->out_gguf) {
        if (!s->quantize)
            cli_usage_error("--out-gguf writes a quantized model: give --method");
        curate_ggml_type t;
        if (curate_export_block_type(&s->qcfg, &t, &err) != CURATE_OK)
            cli_usage_error("--out-gguf: %s", err.message);
    }
    if (s->calib_records && s->n_calib == 0)
        cli_usage_error("--calib-records needs --calib");
    if ((s->matrix || s->repeats) && !s->quantize && !s->act)
        cli_usage_error("%s compares calibrations: give --method or --act-bits",
                        s->matrix ? "--matrix" : "--repeats");
    if ((s->matrix || s->repeats) && s->n_calib == 0)
        cli_usage_error("%s needs a calibration set: give --calib FILE",
                        s->matrix ? "--matrix" : "--repeats");
    if (s->matrix && s->repeats)
        cli_usage_error("--matrix and --repeats are separate studies: give one");
    if ((s->matrix || s->repeats) && s->calib_records)
        cli_usage_error("--calib-records picks one subset: not with --matrix or --repeats");
    if ((s->matrix || s->repeats) && s->n_domains == 0)
        cli_usage_error("%s needs evaluation domains", s->matrix ? "--matrix" : "--repeats");
    if (s->subsample > 0 && !s->repeats)
        cli_usage_error("--subsample sets the repeats' sub-samples: give --repeats");
    if (s->subsample == 0)
        s->subsample = 0.8;
    if (s->score_input && !s->score_path)
        cli_usage_error("--score-input names the records to score: give --score FILE");
    if (s->score_path && !s->score_input && s->n_calib == 0)
        cli_usage_error("--score needs records: give --calib FILE or --score-input FILE");
    if (s->score_path && s->n_calib > 1 && !s->score_input)
        cli_usage_error("--score writes one file: with several --calib files give "
                        "--score-input FILE");
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

/* A library failure that ends the run: message, then exit (nothing of the
 * run's outputs has been written at that point; temporaries are removed by
 * the library's own writers). */
static void die_lib(const curate_error *err)
{
    cli_error_lib(err);
    exit(status_exit(err->code));
}

/* ---- progress -------------------------------------------------------------------------- */

typedef struct progress {
    int enabled;
    char stage[80];
    double t_start, t_last;
    int shown;
    /* evaluation: running sums for the figures on the bar */
    double nll_o, nll_q, kl;
    uint64_t rows;
    int has_q;
} progress;

static void prog_begin(progress *p, int enabled, const char *stage)
{
    memset(p, 0, sizeof *p);
    p->enabled = enabled;
    snprintf(p->stage, sizeof p->stage, "%s", stage);
    p->t_start = p->t_last = cli_now();
}

/*
 * Redraw at most five times a second (and at the end of the stage), with the
 * stage's name, a bar, the count, an ETA from the stage's own rate, and extra
 * figures.  Only on a terminal: a log file should not fill with carriage
 * returns.
 */
static void prog_draw(progress *p, uint64_t done, uint64_t total, const char *extra)
{
    double now = cli_now();
    if (!p->enabled || (now - p->t_last < 0.2 && done < total))
        return;
    p->t_last = now;
    const int width = 24;
    int fill = total ? (int)((double)width * (double)done / (double)total) : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width] = 0;
    char eta[32] = "";
    double el = now - p->t_start;
    if (done > 0 && done < total) {
        double left = el / (double)done * (double)(total - done);
        snprintf(eta, sizeof eta, "  ETA %d:%02d", (int)(left / 60), (int)fmod(left, 60.0));
    } else if (done >= total) {
        snprintf(eta, sizeof eta, "  %.1f s", el);
    }
    fprintf(stderr, "\r%s: %-20s [%s] %llu/%llu%s%s\033[K", cli_progname, p->stage, bar,
            (unsigned long long)done, (unsigned long long)total, eta, extra ? extra : "");
    p->shown = 1;
}

static void prog_end(progress *p)
{
    if (p->shown)
        fputs("\r\033[K", stderr);
    p->shown = 0;
}

static void on_progress(void *user, const char *stage, uint64_t done, uint64_t total)
{
    (void)stage;
    prog_draw(user, done, total, NULL);
}

static void on_seq(void *user, size_t seq, size_t n_seq, const curate_calib_seq_score *sc)
{
    progress *p = user;
    p->nll_o += sc[0].nll_orig;
    p->rows += sc[0].rows;
    if (p->has_q) {
        p->nll_q += sc[0].nll_quant;
        p->kl += sc[0].kl;
    }
    char extra[96] = "";
    if (p->rows && p->has_q)
        snprintf(extra, sizeof extra, "  PPL %.3f -> %.3f  KL %.5f", exp(p->nll_o / (double)p->rows),
                 exp(p->nll_q / (double)p->rows), p->kl / (double)p->rows);
    else if (p->rows)
        snprintf(extra, sizeof extra, "  PPL %.4f", exp(p->nll_o / (double)p->rows));
    prog_draw(p, seq + 1, n_seq, extra);
}

/* ---- reading records --------------------------------------------------------------------- */

/* The text a record gives the model: its text field, or its chat turns
 * rendered with --template (the same rule as every other tool). */
static curate_status record_text(const cli_run *run, const curate_record *rec, curate_buf *text,
                                 curate_error *err)
{
    curate_status st = curate_record_get_string(rec, run->field, text, err);
    if (st == CURATE_ERR_NO_FIELD && curate_record_get(rec, CURATE_CHAT_DEFAULT_FIELD)) {
        curate_error_clear(err);
        st = curate_chat_render(rec, CURATE_CHAT_DEFAULT_FIELD,
                                (curate_chat_template)run->chat_template, text, err);
    }
    return st;
}

/*
 * Read d's text into out.  0 on success; else d->error is set and the
 * return value is the exit status the failure deserves.  JSONL records
 * are joined with a blank line, the layout llama.cpp users give
 * llama-perplexity for record files (and the one ../shared's reference
 * numbers were made with); chat records go through the same renderer as
 * the other tools, so every stage sees the same text.
 */
static int read_domain(const cli_run *run, const settings *s, domain *d, curate_buf *out)
{
    curate_error err;
    curate_error_clear(&err);
    curate_buf_reset(out);
    d->records = d->bytes = 0;
    if (d->plain) {
        /* the file as it is, all of it */
        FILE *f = fopen(d->path, "rb");
        if (!f) {
            snprintf(d->error, sizeof d->error, "%s: cannot open: %s", d->path, strerror(errno));
            return CLI_EXIT_IO;
        }
        char chunk[1 << 16];
        size_t got;
        int rc = 0;
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
    curate_reader_opts ro = {run->max_record_bytes, 0};
    curate_reader *r = curate_reader_open(d->path, &ro, &err);
    if (!r) {
        curate_error_format(&err, d->error, sizeof d->error);
        return CLI_EXIT_IO;
    }
    int rc = 0;
    curate_record rec;
    curate_record_init(&rec);
    curate_buf text, dom;
    curate_buf_init(&text);
    curate_buf_init(&dom);
    curate_line line;
    memset(&line, 0, sizeof line);
    curate_status st;
    while ((st = curate_reader_next(r, &line, &err)) == CURATE_OK) {
        curate_error_clear(&err);
        st = curate_record_parse(&rec, line.data, line.len, &err);
        if (st == CURATE_OK && d->split) {
            record_domain(&rec, s->domain_field, &dom);
            if (strcmp(dom.data, d->name) != 0)
                continue;
        }
        if (st == CURATE_OK)
            st = record_text(run, &rec, &text, &err);
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
    curate_buf_release(&dom);
    curate_record_release(&rec);
    curate_reader_free(r);
    return rc;
}

/* ---- the calibration set ---------------------------------------------------------------- */

typedef struct calib_file {
    const char *path;
    char sha256[65];
    uint64_t records, bytes;
} calib_file;

typedef struct comp {
    char *name;
    uint64_t records, tokens;       /* in the file(s) */
    uint64_t used_records, used_tokens; /* picked for the run */
} comp;

typedef struct calib_set {
    calib_file *files;
    size_t n_files;
    char sha256[65];                /* of all files' bytes in order */
    /* per record: its domain, token count and sequence in toks (SIZE_MAX: empty) */
    uint32_t *rec_dom;
    uint64_t *rec_tokens;
    size_t *rec_seq;
    size_t n_rec;
    curate_seqs toks;
    comp *comp;
    size_t n_comp;
    /* the run's subset and its packing */
    uint64_t picked;
    curate_seqs seqs;
    curate_calib_pack_stats st;
    double seconds_tokenize;
} calib_set;

static uint32_t comp_index(calib_set *c, const char *name)
{
    for (size_t i = 0; i < c->n_comp; i++)
        if (strcmp(c->comp[i].name, name) == 0)
            return (uint32_t)i;
    c->comp = xrealloc(c->comp, c->n_comp + 1, sizeof *c->comp);
    memset(&c->comp[c->n_comp], 0, sizeof *c->comp);
    c->comp[c->n_comp].name = xstrdup(name);
    return (uint32_t)c->n_comp++;
}

/*
 * Read and tokenize every calibration record (no BOS: packing adds it).
 * A bad record stops the run with FILE:LINE, as in every filter under
 * --on-error=fail: calibrating on a silently shortened set would be worse.
 */
static void read_calib(const cli_run *run, const settings *s, const curate_tokenizer *tok,
                       calib_set *c)
{
    curate_error err;
    curate_error_clear(&err);
    c->files = xrealloc(NULL, s->n_calib, sizeof *c->files);
    c->n_files = s->n_calib;
    curate_seqs_init(&c->toks);
    curate_seqs_init(&c->seqs);
    curate_sha256 all;
    curate_sha256_init(&all);
    curate_record rec;
    curate_record_init(&rec);
    curate_buf text, dom;
    curate_buf_init(&text);
    curate_buf_init(&dom);
    curate_tokens ids;
    curate_tokens_init(&ids);
    size_t cap = 0;
    const double t0 = cli_now();
    for (size_t fi = 0; fi < s->n_calib; fi++) {
        calib_file *f = &c->files[fi];
        memset(f, 0, sizeof *f);
        f->path = s->calib[fi];
        /* the fingerprint of the bytes as they are on disk */
        FILE *fp = fopen(f->path, "rb");
        if (!fp)
            cli_die(CLI_EXIT_IO, "%s: cannot open: %s", f->path, strerror(errno));
        curate_sha256 one;
        curate_sha256_init(&one);
        unsigned char buf[1 << 16];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, fp)) > 0) {
            curate_sha256_update(&one, buf, got);
            curate_sha256_update(&all, buf, got);
            f->bytes += got;
        }
        if (ferror(fp))
            cli_die(CLI_EXIT_IO, "%s: read error: %s", f->path, strerror(errno));
        fclose(fp);
        uint8_t d[32];
        curate_sha256_final(&one, d);
        curate_sha256_hex(d, f->sha256);

        curate_reader_opts ro = {run->max_record_bytes, 0};
        curate_reader *r = curate_reader_open(f->path, &ro, &err);
        if (!r)
            die_lib(&err);
        curate_line line;
        memset(&line, 0, sizeof line);
        curate_status st;
        while ((st = curate_reader_next(r, &line, &err)) == CURATE_OK) {
            curate_error_clear(&err);
            st = curate_record_parse(&rec, line.data, line.len, &err);
            if (st == CURATE_OK)
                st = record_text(run, &rec, &text, &err);
            curate_tokens_reset(&ids);
            if (st == CURATE_OK)
                st = curate_tokenizer_encode(tok, text.data ? text.data : "", text.len, 0, &ids,
                                             &err);
            if (st != CURATE_OK) {
                curate_error_at(&err, f->path, line.lineno);
                die_lib(&err);
            }
            record_domain(&rec, s->domain_field, &dom);
            if (c->n_rec == cap) {
                cap = cap ? cap * 2 : 1024;
                c->rec_dom = xrealloc(c->rec_dom, cap, sizeof *c->rec_dom);
                c->rec_tokens = xrealloc(c->rec_tokens, cap, sizeof *c->rec_tokens);
                c->rec_seq = xrealloc(c->rec_seq, cap, sizeof *c->rec_seq);
            }
            uint32_t di = comp_index(c, dom.data);
            c->rec_dom[c->n_rec] = di;
            c->rec_tokens[c->n_rec] = ids.n;
            c->rec_seq[c->n_rec] = SIZE_MAX;
            if (ids.n) {
                c->rec_seq[c->n_rec] = c->toks.n;
                if (curate_seqs_add(&c->toks, ids.ids, ids.n, ids.n - 1, c->n_rec, &err))
                    die_lib(&err);
            }
            c->comp[di].records++;
            c->comp[di].tokens += ids.n;
            c->n_rec++;
            f->records++;
        }
        if (st != CURATE_END) {
            curate_error_at(&err, f->path, line.lineno);
            die_lib(&err);
        }
        curate_reader_free(r);
        if (f->records == 0)
            cli_die(CLI_EXIT_DATA, "%s: no records", f->path);
    }
    c->seconds_tokenize = cli_now() - t0;
    uint8_t d[32];
    curate_sha256_final(&all, d);
    curate_sha256_hex(d, c->sha256);
    curate_tokens_release(&ids);
    curate_buf_release(&text);
    curate_buf_release(&dom);
    curate_record_release(&rec);
}

/* Pick the run's records (all, or --calib-records of them with --seed)
 * and pack them into sequences of at most ctx tokens. */
static void pack_calib(const settings *s, size_t ctx, int32_t bos, calib_set *c)
{
    curate_error err;
    curate_error_clear(&err);
    size_t *pick = xrealloc(NULL, c->n_rec, sizeof *pick);
    size_t k = c->n_rec;
    if (s->calib_records && s->calib_records < c->n_rec) {
        curate_rng rng;
        curate_rng_seed(&rng, s->seed);
        k = (size_t)s->calib_records;
        curate_calib_pick(&rng, c->n_rec, k, pick);
    } else {
        for (size_t i = 0; i < k; i++)
            pick[i] = i;
    }
    c->picked = k;
    /* picked records -> their token sequences; empty ones are only counted */
    size_t *seq_pick = xrealloc(NULL, k, sizeof *seq_pick);
    size_t n_seq = 0;
    uint64_t n_empty = 0;
    for (size_t i = 0; i < k; i++) {
        size_t r = pick[i];
        comp *cp = &c->comp[c->rec_dom[r]];
        cp->used_records++;
        cp->used_tokens += c->rec_tokens[r];
        if (c->rec_seq[r] == SIZE_MAX)
            n_empty++;
        else
            seq_pick[n_seq++] = c->rec_seq[r];
    }
    if (curate_calib_pack_records(&c->toks, n_empty, seq_pick, n_seq, s->pack, ctx, bos, &c->seqs,
                                  &c->st, &err) != CURATE_OK)
        cli_die(CLI_EXIT_DATA, "calibration: %s", err.message);
    free(seq_pick);
    free(pick);
}

static void calib_release(calib_set *c)
{
    for (size_t i = 0; i < c->n_comp; i++)
        free(c->comp[i].name);
    free(c->comp);
    free(c->files);
    free(c->rec_dom);
    free(c->rec_tokens);
    free(c->rec_seq);
    curate_seqs_release(&c->toks);
    curate_seqs_release(&c->seqs);
}

/* ---- notes on tensors --------------------------------------------------------------------- */

typedef struct note {
    char *name;
    char *text;
} note;

typedef struct notes {
    note *v;
    size_t n;
} notes;

static void add_note(notes *ns, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_note(notes *ns, const char *name, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ns->v = xrealloc(ns->v, ns->n + 1, sizeof *ns->v);
    ns->v[ns->n].name = xstrdup(name);
    ns->v[ns->n].text = xstrdup(buf);
    ns->n++;
}

/* ---- JSON -------------------------------------------------------------------------------- */

static void json_str(curate_buf *b, const char *s)
{
    if (curate_buf_append_json_string(b, s, strlen(s)) != CURATE_OK)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
}

/* ,"key":value with NaN as null; digits after the point, or with
 * digits < 0 that many significant digits */
static void json_num(curate_buf *b, const char *key, int digits, double v)
{
    curate_buf_printf(b, ",\"%s\":", key);
    if (!isfinite(v))
        curate_buf_append_str(b, "null");
    else if (digits >= 0)
        curate_buf_printf(b, "%.*f", digits, v);
    else
        curate_buf_printf(b, "%.*g", -digits, v);
}

static void json_str_array(curate_buf *b, const char *const *v, size_t n)
{
    curate_buf_append_char(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            curate_buf_append_char(b, ',');
        json_str(b, v[i]);
    }
    curate_buf_append_char(b, ']');
}

/* Write data to path through a temporary file and rename (a reader never
 * sees half a file).  0 or the exit status. */
static int write_file(const char *path, const char *data, size_t len)
{
    size_t n = strlen(path);
    char *tmp = xrealloc(NULL, n + 16, 1);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    int rc = 0;
    if (fd < 0) {
        cli_error("%s: cannot create: %s", path, strerror(errno));
        rc = CLI_EXIT_IO;
    } else {
        FILE *f = fdopen(fd, "wb");
        int bad = !f || fwrite(data, 1, len, f) != len;
        if (f ? fclose(f) != 0 : close(fd) != 0)
            bad = 1;
        if (bad || rename(tmp, path) != 0) {
            cli_error("%s: cannot write: %s", path, strerror(errno));
            unlink(tmp);
            rc = CLI_EXIT_IO;
        }
    }
    free(tmp);
    return rc;
}

static const char *input_name(curate_linear_input w)
{
    switch (w) {
    case CURATE_LIN_ATTN_QKV: return "attn_qkv";
    case CURATE_LIN_ATTN_OUT: return "attn_output";
    case CURATE_LIN_FFN_GATE_UP: return "ffn_gate_up";
    case CURATE_LIN_FFN_DOWN: return "ffn_down";
    case CURATE_LIN_OUTPUT: return "output";
    }
    return "?";
}

/* ---- studies: the calibrations --matrix and --repeats add ---------------------------- */

/* One extra calibration: its records, and the quantized model it gave. */
typedef struct variant {
    char *name;                 /* calibration domain, or "repeat N" */
    uint64_t seed;              /* repeats: the sub-sample's seed */
    uint64_t records, tokens;   /* records picked, their tokens */
    uint64_t model_tokens;      /* tokens run through the model */
    int ok;                     /* 0: could not calibrate (error says why) */
    char error[600];
    curate_model *qm;
    curate_model_ctx *cq;
    curate_calib_act *act;
    curate_calib_cmp *cmp;      /* [n_domains]; NaN figures where not run */
} variant;

typedef struct study {
    variant *v;
    size_t n;
    size_t sub_k;               /* repeats: records per sub-sample */
} study;

/* The whole run, for the JSON report. */
typedef struct run_state {
    const settings *s;
    const curate_model *m;
    unsigned threads;
    size_t ctx;
    calib_set *calib;          /* NULL without --calib */
    const curate_calib_quant_result *qres; /* NULL without --method */
    const curate_calib_act *act;
    const curate_export_result *exp;
    const char *imatrix_format;
    uint64_t imatrix_entries;
    const notes *notes;
    const char *text_field, *template_name; /* --field, --template */
    double mean_dppl, mean_abs_dppl, mean_kl;
    size_t n_ok;
    double sec_total, sec_calib, sec_quant, sec_eval, sec_export;
    const study *study;         /* --matrix, --repeats (NULL otherwise) */
    double sec_study;           /* their calibrations and quantizations */
} run_state;

static void report_study(curate_buf *b, const run_state *rs);

static void report_calib(curate_buf *b, const run_state *rs)
{
    const settings *s = rs->s;
    const calib_set *c = rs->calib;
    curate_buf_printf(b, ",\"calibration\":");
    if (!c) {
        curate_buf_append_str(b, "null");
        return;
    }
    curate_buf_printf(b, "{\"files\":[");
    for (size_t i = 0; i < c->n_files; i++) {
        curate_buf_printf(b, "%s{\"path\":", i ? "," : "");
        json_str(b, c->files[i].path);
        curate_buf_printf(b, ",\"sha256\":\"%s\",\"bytes\":%llu,\"records\":%llu}",
                          c->files[i].sha256, (unsigned long long)c->files[i].bytes,
                          (unsigned long long)c->files[i].records);
    }
    curate_buf_printf(b, "],\"sha256\":\"%s\",\"domain_field\":", c->sha256);
    json_str(b, rs->s->domain_field ? rs->s->domain_field : "domain");
    const curate_calib_pack_stats *st = &c->st;
    curate_buf_printf(b,
                      ",\"records\":%llu,\"records_picked\":%llu,\"seed\":%llu,"
                      "\"sampled\":%s,\"pack\":\"%s\",\"ctx\":%zu,"
                      "\"records_used\":%llu,\"records_truncated\":%llu,"
                      "\"records_dropped\":%llu,\"records_empty\":%llu,"
                      "\"tokens\":%llu,\"tokens_used\":%llu,\"tokens_truncated\":%llu,"
                      "\"tokens_dropped\":%llu,\"sequences\":%llu,\"bos\":%llu,"
                      "\"model_tokens\":%llu,\"seconds_tokenize\":%.3f,\"composition\":[",
                      (unsigned long long)c->n_rec, (unsigned long long)c->picked,
                      (unsigned long long)s->seed, c->picked < c->n_rec ? "true" : "false",
                      curate_calib_pack_name(s->pack), rs->ctx,
                      (unsigned long long)st->records_used,
                      (unsigned long long)st->records_truncated,
                      (unsigned long long)st->records_dropped,
                      (unsigned long long)st->records_empty, (unsigned long long)st->tokens,
                      (unsigned long long)st->tokens_used,
                      (unsigned long long)st->tokens_truncated,
                      (unsigned long long)st->tokens_dropped, (unsigned long long)st->sequences,
                      (unsigned long long)st->bos, (unsigned long long)st->model_tokens,
                      c->seconds_tokenize);
    for (size_t i = 0; i < c->n_comp; i++) {
        curate_buf_printf(b, "%s{\"domain\":", i ? "," : "");
        json_str(b, c->comp[i].name);
        curate_buf_printf(b, ",\"records\":%llu,\"tokens\":%llu,\"records_picked\":%llu,"
                             "\"tokens_picked\":%llu}",
                          (unsigned long long)c->comp[i].records,
                          (unsigned long long)c->comp[i].tokens,
                          (unsigned long long)c->comp[i].used_records,
                          (unsigned long long)c->comp[i].used_tokens);
    }
    curate_buf_append_str(b, "]}");
}

static void report_quant(curate_buf *b, const run_state *rs)
{
    const settings *s = rs->s;
    curate_buf_printf(b, ",\"quant\":");
    if (!rs->qres) {
        curate_buf_append_str(b, "null");
    } else {
        const curate_quant_config *q = &s->qcfg;
        curate_buf_printf(b,
                          "{\"method\":\"%s\",\"bits\":%u,\"group_size\":%zu,\"sym\":%s,"
                          "\"restricted\":%s,\"act_order\":%s,\"damp\":%g,\"block_size\":%zu,"
                          "\"clip_grid\":%u,\"clip_min\":%g,\"awq_grid\":%u,"
                          "\"awq_clip_grid\":%u,\"awq_clip_min\":%g,\"include\":",
                          curate_quant_method_name(q->method), q->bits, q->group_size,
                          q->asym ? "false" : "true", q->restricted ? "true" : "false",
                          q->act_order ? "true" : "false", (double)q->damp, q->block_size,
                          q->clip_grid, (double)q->clip_min, q->awq_grid, q->awq_clip_grid,
                          (double)q->awq_clip_min);
        json_str_array(b, s->include, s->n_include);
        curate_buf_append_str(b, ",\"exclude\":");
        json_str_array(b, s->exclude, s->n_exclude);
        const curate_calib_quant_result *r = rs->qres;
        curate_buf_printf(b, ",\"n_quantized\":%zu,\"n_short_group\":%zu,\"seconds\":%.3f,"
                             "\"tensors\":[",
                          r->n_quantized, r->n_short_group, r->seconds);
        for (size_t i = 0; i < r->n; i++) {
            const curate_calib_qtensor *t = &r->t[i];
            curate_buf_printf(b, "%s{\"name\":", i ? "," : "");
            json_str(b, t->info.name);
            curate_buf_printf(b, ",\"rows\":%zu,\"cols\":%zu,\"quantized\":%s", t->info.rows,
                              t->info.cols, t->quantized ? "true" : "false");
            if (!t->quantized) {
                curate_buf_append_str(b, ",\"excluded_by\":");
                if (t->excluded_by)
                    json_str(b, t->excluded_by);
                else
                    curate_buf_append_str(b, "null");
                curate_buf_append_char(b, '}');
                continue;
            }
            curate_buf_printf(b, ",\"method\":\"%s\",\"fallback\":%s,\"groups\":%zu,"
                                 "\"last_group\":%zu,\"short_group\":%s",
                              curate_quant_method_name(t->method), t->fallback ? "true" : "false",
                              t->rep.n_groups, t->rep.last_group,
                              t->rep.short_group ? "true" : "false");
            json_num(b, "weight_err", -8, t->rep.weight_err);
            json_num(b, "weight_rel", -8, t->weight_rel);
            json_num(b, "out_err", -8, t->out_err);
            json_num(b, "out_rel", -8, t->out_rel);
            if (t->method == CURATE_QUANT_AWQ)
                curate_buf_printf(b, ",\"awq_alpha\":%g,\"awq_clipped\":%s",
                                  (double)t->rep.awq_alpha, t->rep.awq_clipped ? "true" : "false");
            if (t->method == CURATE_QUANT_GPTQ)
                curate_buf_printf(b, ",\"gptq_damp\":%g", t->rep.gptq_damp);
            if (t->method == CURATE_QUANT_AWQ || t->method == CURATE_QUANT_GPTQ)
                curate_buf_printf(b, ",\"dead_cols\":%zu", t->rep.dead_cols);
            curate_buf_printf(b, ",\"seconds\":%.4f}", t->seconds);
        }
        curate_buf_append_str(b, "]}");
    }
    curate_buf_printf(b, ",\"act\":");
    if (!rs->act) {
        curate_buf_append_str(b, "null");
        return;
    }
    const curate_act_config *a = &s->acfg;
    curate_buf_printf(b, "{\"bits\":%u,\"method\":", a->bits);
    json_str(b, s->act_method_text ? s->act_method_text : curate_act_method_name(a->method));
    if (a->method == CURATE_ACT_PERCENTILE)
        curate_buf_printf(b, ",\"percentile\":%g", a->percentile);
    curate_buf_printf(b, ",\"scope\":\"%s\",\"inputs\":[",
                      a->scope == CURATE_ACT_TOKEN ? "token" : "tensor");
    const curate_model_params *p = curate_model_get_params(rs->m);
    int first = 1;
    for (uint32_t l = 0; l <= p->n_layer; l++)
        for (int w = 0; w < 5; w++) {
            if ((l == p->n_layer) != (w == CURATE_LIN_OUTPUT))
                continue;
            curate_calib_act_info in = curate_calib_act_get(rs->act, l, (curate_linear_input)w);
            curate_buf_printf(b, "%s{\"layer\":%u,\"input\":\"%s\",\"enabled\":%s", first ? "" : ",",
                              l, input_name((curate_linear_input)w), in.enabled ? "true" : "false");
            first = 0;
            if (in.enabled && a->scope == CURATE_ACT_TENSOR) {
                json_num(b, "threshold", -8, in.threshold);
                json_num(b, "scale", -8, (double)in.scale);
            }
            if (in.enabled)
                curate_buf_printf(b, ",\"values\":%llu,\"clipped\":%llu",
                                  (unsigned long long)in.values, (unsigned long long)in.clipped);
            curate_buf_append_char(b, '}');
        }
    curate_buf_append_str(b, "]}");
}

/*
 * The JSON report: configuration, provenance, per-tensor and per-domain
 * figures, exports, timings.  Numbers carry more digits than the table
 * (the table is for people, the report for tools); figures that were not
 * computed are null.
 */
static int write_report(const run_state *rs)
{
    const settings *s = rs->s;
    const curate_model_params *p = curate_model_get_params(rs->m);
    curate_buf b;
    curate_buf_init(&b);
    curate_buf_printf(&b, "{\"tool\":\"curate-calibrate\",\"version\":");
    json_str(&b, curate_version());
    curate_buf_printf(&b, ",\"versions\":");
    json_str(&b, curate_version_string());
    curate_buf_printf(&b, ",\"model\":{\"path\":");
    json_str(&b, s->model_path);
    curate_buf_printf(&b, ",\"arch\":");
    json_str(&b, p->arch);
    curate_buf_printf(&b,
                      ",\"n_params\":%llu,\"n_vocab\":%u,\"n_ctx_train\":%u,\"n_embd\":%u,"
                      "\"n_layer\":%u,\"n_head\":%u,\"n_head_kv\":%u,\"n_ff\":%u}",
                      (unsigned long long)curate_model_n_params(rs->m), p->n_vocab,
                      p->n_ctx_train, p->n_embd, p->n_layer, p->n_head, p->n_head_kv, p->n_ff);
    curate_buf_printf(&b, ",\"tokenizer\":");
    json_str(&b, s->tokenizer_path);
    curate_buf_printf(&b, ",\"tokenize\":\"%s\",\"ppl_mode\":\"%s\",\"ctx\":%zu,\"max_chunks\":%zu,"
                          "\"threads\":%u",
                      s->spm_tokenize ? "spm" : "llamacpp", s->full ? "full" : "llamacpp", rs->ctx,
                      s->max_chunks, rs->threads);
    curate_buf_append_str(&b, ",\"text_field\":");
    json_str(&b, rs->text_field);
    curate_buf_append_str(&b, ",\"template\":");
    json_str(&b, rs->template_name ? rs->template_name : "plain");
    report_calib(&b, rs);
    report_quant(&b, rs);
    report_study(&b, rs);
    const int cmp = rs->qres || rs->act;
    curate_buf_append_str(&b, ",\"domains\":[");
    for (size_t i = 0; i < s->n_domains; i++) {
        const domain *d = &s->domains[i];
        const curate_calib_cmp *r = &d->cmp;
        curate_buf_printf(&b, "%s{\"name\":", i ? "," : "");
        json_str(&b, d->name);
        curate_buf_printf(&b, ",\"file\":");
        json_str(&b, d->path);
        curate_buf_printf(&b, ",\"format\":\"%s\",\"records\":%llu,\"text_bytes\":%llu",
                          d->plain ? "text" : (d->split ? "jsonl-split" : "jsonl"),
                          (unsigned long long)d->records, (unsigned long long)d->bytes);
        if (!d->ok) {
            curate_buf_printf(&b, ",\"error\":");
            json_str(&b, d->error);
            curate_buf_append_char(&b, '}');
            continue;
        }
        /* tokens/s: chunk tokens (chunks x ctx, as llama-perplexity counts)
         * per second of the evaluation; with a quantized model each token
         * runs through both models */
        double tps = r->seconds > 0 ? (double)(r->n_seq * d->ctx) / r->seconds : 0.0;
        curate_buf_printf(&b,
                          ",\"tokens\":%llu,\"ctx\":%zu,\"chunks\":%llu,\"scored\":%llu,"
                          "\"ppl\":%.6f,\"ppl_err\":%.6f,\"nll_mean\":%.8f,\"top1\":%.6f",
                          (unsigned long long)d->tokens, d->ctx, (unsigned long long)r->n_seq,
                          (unsigned long long)r->n_scored, r->ppl_orig, r->ppl_orig_err,
                          r->nll_orig, r->top1_orig);
        if (cmp) {
            json_num(&b, "ppl_quant", 6, r->ppl_quant);
            json_num(&b, "ppl_quant_err", 6, r->ppl_quant_err);
            json_num(&b, "nll_quant", 8, r->nll_quant);
            json_num(&b, "dppl_pct", 6, r->dppl_pct);
            json_num(&b, "kl_mean", -8, r->kl_mean);
            json_num(&b, "kl_p99", -8, r->kl_p99);
            json_num(&b, "kl_max", -8, r->kl_max);
            json_num(&b, "top1_agree", 6, r->top1_agree);
            json_num(&b, "top1_quant", 6, r->top1_quant);
            curate_buf_printf(&b, ",\"verdict\":\"%s\"", curate_calib_verdict(r->dppl_pct));
        }
        curate_buf_printf(&b,
                          ",\"models\":%d,\"seconds_tokenize\":%.3f,\"seconds_eval\":%.3f,"
                          "\"eval_tokens_per_second\":%.1f}",
                          cmp ? 2 : 1, d->seconds_tokenize, r->seconds, tps);
    }
    curate_buf_append_str(&b, "]");
    if (cmp) {
        curate_buf_printf(&b, ",\"summary\":{\"domains\":%zu", rs->n_ok);
        json_num(&b, "mean_dppl_pct", 6, rs->mean_dppl);
        json_num(&b, "mean_abs_dppl_pct", 6, rs->mean_abs_dppl);
        json_num(&b, "mean_kl", -8, rs->mean_kl);
        curate_buf_printf(&b, ",\"verdict\":\"%s\"}",
                          rs->n_ok ? curate_calib_verdict(rs->mean_abs_dppl) : "-");
    }
    curate_buf_append_str(&b, ",\"tensor_notes\":[");
    for (size_t i = 0; i < rs->notes->n; i++) {
        curate_buf_printf(&b, "%s{\"tensor\":", i ? "," : "");
        json_str(&b, rs->notes->v[i].name);
        curate_buf_append_str(&b, ",\"note\":");
        json_str(&b, rs->notes->v[i].text);
        curate_buf_append_char(&b, '}');
    }
    curate_buf_append_str(&b, "],\"exports\":{\"gguf\":");
    if (rs->exp) {
        const curate_export_result *e = rs->exp;
        curate_buf_printf(&b, "{\"path\":");
        json_str(&b, s->out_gguf);
        curate_buf_printf(&b, ",\"block_type\":\"%s\",\"file_type\":%u,\"packed\":%zu,"
                              "\"fallback\":%zu,\"copied\":%zu,\"codes_changed\":%llu",
                          curate_ggml_type_name(e->block_type), e->file_type, e->n_packed,
                          e->n_fallback, e->n_copied, (unsigned long long)e->codes_changed);
        json_num(&b, "max_abs_diff", -8, e->max_abs_diff);
        curate_buf_append_str(&b, ",\"tensors\":[");
        int first = 1;
        for (size_t i = 0; i < e->n_tensors; i++) {
            const curate_export_tensor_report *t = &e->tensors[i];
            if (t->kind == CURATE_EXPORT_COPIED)
                continue;
            curate_buf_printf(&b, "%s{\"name\":", first ? "" : ",");
            first = 0;
            json_str(&b, t->name);
            curate_buf_printf(&b, ",\"kind\":\"%s\",\"type\":\"%s\",\"codes_changed\":%llu",
                              curate_export_kind_name(t->kind), curate_ggml_type_name(t->type),
                              (unsigned long long)t->codes_changed);
            json_num(&b, "max_abs_diff", -8, t->max_abs_diff);
            curate_buf_append_char(&b, '}');
        }
        curate_buf_append_str(&b, "]}");
    } else {
        curate_buf_append_str(&b, "null");
    }
    curate_buf_append_str(&b, ",\"imatrix\":");
    if (s->out_imatrix) {
        curate_buf_append_str(&b, "{\"path\":");
        json_str(&b, s->out_imatrix);
        curate_buf_printf(&b, ",\"format\":\"%s\",\"entries\":%llu}", rs->imatrix_format,
                          (unsigned long long)rs->imatrix_entries);
    } else {
        curate_buf_append_str(&b, "null");
    }
    curate_buf_printf(&b,
                      "},\"seconds\":{\"total\":%.3f,\"calibrate\":%.3f,\"quantize\":%.3f,"
                      "\"export\":%.3f,\"eval\":%.3f},\"peak_rss_bytes\":%llu}\n",
                      rs->sec_total, rs->sec_calib, rs->sec_quant, rs->sec_export, rs->sec_eval,
                      (unsigned long long)cli_peak_rss());
    if (!b.data)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    int rc = write_file(s->report_path, b.data, b.len);
    curate_buf_release(&b);
    return rc;
}

/* The HTML page, through the shared report struct (tools/calib_report.h). */
static int write_html(const run_state *rs)
{
    const settings *s = rs->s;
    calib_report r;
    memset(&r, 0, sizeof r);
    r.tool_version = curate_version_string();
    r.model_path = s->model_path;
    const char *slash = strrchr(s->model_path, '/');
    r.model_name = slash ? slash + 1 : s->model_path;
    r.tokenizer_path = s->tokenizer_path;
    r.method = rs->qres ? curate_quant_method_name(s->qcfg.method) : NULL;
    r.bits = rs->qres ? s->qcfg.bits : 0;
    r.group_size = (unsigned)s->qcfg.group_size;
    r.symmetric = !s->qcfg.asym;
    r.act_bits = rs->act ? s->acfg.bits : 0;
    r.act_method = rs->act ? (s->act_method_text ? s->act_method_text
                                                 : curate_act_method_name(s->acfg.method))
                           : NULL;
    r.act_scope = rs->act ? (s->acfg.scope == CURATE_ACT_TOKEN ? "token" : "tensor") : NULL;
    r.ctx = (unsigned)rs->ctx;
    r.ppl_mode = s->full ? "full" : "llamacpp";
    r.threads = rs->threads;
    calib_comp_row *rows_c = NULL;
    if (rs->calib) {
        const calib_set *c = rs->calib;
        r.calib_path = c->n_files ? c->files[0].path : NULL;
        r.calib_sha256 = c->sha256;
        r.calib_records = c->picked;
        r.calib_tokens_used = c->st.tokens_used;
        r.calib_tokens_truncated = c->st.tokens_truncated;
        r.calib_tokens_dropped = c->st.tokens_dropped;
        r.pack = curate_calib_pack_name(s->pack);
        r.seed = s->seed;
        rows_c = xrealloc(NULL, c->n_comp, sizeof *rows_c);
        for (size_t i = 0; i < c->n_comp; i++) {
            rows_c[i].name = c->comp[i].name;
            rows_c[i].records = c->comp[i].used_records;
            rows_c[i].tokens = c->comp[i].used_tokens;
        }
        r.composition = rows_c;
        r.n_composition = c->n_comp;
    }
    calib_domain_row *rows = xrealloc(NULL, s->n_domains, sizeof *rows);
    size_t n = 0;
    for (size_t i = 0; i < s->n_domains; i++) {
        const domain *d = &s->domains[i];
        if (!d->ok)
            continue;
        calib_domain_row *w = &rows[n++];
        w->name = d->name;
        w->source = d->path;
        w->tokens_scored = d->cmp.n_scored;
        w->chunks = d->cmp.n_seq;
        w->ppl_orig = d->cmp.ppl_orig;
        w->ppl_orig_err = d->cmp.ppl_orig_err;
        w->ppl_quant = d->cmp.ppl_quant;
        w->ppl_quant_err = d->cmp.ppl_quant_err;
        w->dppl_pct = d->cmp.dppl_pct;
        w->kl_mean = d->cmp.kl_mean;
        w->kl_p99 = d->cmp.kl_p99;
        w->top1 = d->cmp.top1_agree;
        w->verdict = curate_calib_verdict(d->cmp.dppl_pct);
    }
    r.domains = rows;
    r.n_domains = n;
    r.mean_dppl_pct = rs->mean_dppl;
    r.mean_abs_dppl_pct = rs->mean_abs_dppl;
    r.mean_kl = rs->mean_kl;
    calib_tensor_note *tn = xrealloc(NULL, rs->notes->n, sizeof *tn);
    for (size_t i = 0; i < rs->notes->n; i++) {
        tn[i].name = rs->notes->v[i].name;
        tn[i].note = rs->notes->v[i].text;
    }
    r.notes = tn;
    r.n_notes = rs->notes->n;
    r.seconds_calibrate = rs->sec_calib;
    r.seconds_quantize = rs->sec_quant;
    r.seconds_eval = rs->sec_eval;
    double tok = 0;
    for (size_t i = 0; i < s->n_domains; i++)
        if (s->domains[i].ok)
            tok += (double)(s->domains[i].cmp.n_seq * s->domains[i].ctx);
    r.eval_tokens_per_s = rs->sec_eval > 0 ? tok / rs->sec_eval : 0;
    /* --matrix: the per-domain calibrations, then all of the set */
    const study *sd = rs->study;
    calib_matrix_row *mx = NULL;
    double *mv = NULL;
    if (s->matrix && sd && sd->n) {
        size_t nd = s->n_domains, nr = sd->n + 1;
        mx = xrealloc(NULL, nr, sizeof *mx);
        mv = xrealloc(NULL, nr * 2 * (nd ? nd : 1), sizeof *mv);
        for (size_t i = 0; i < nr; i++) {
            const variant *v = i < sd->n ? &sd->v[i] : NULL;
            double *dp = mv + i * 2 * nd, *kl = dp + nd;
            /* the page's domains are the ones that ran, in order */
            size_t k = 0;
            for (size_t j = 0; j < nd; j++) {
                if (!s->domains[j].ok)
                    continue;
                const curate_calib_cmp *c = v ? &v->cmp[j] : &s->domains[j].cmp;
                dp[k] = !v || v->ok ? c->dppl_pct : NAN;
                kl[k] = !v || v->ok ? c->kl_mean : NAN;
                k++;
            }
            mx[i].calib = v ? v->name : "all";
            mx[i].records = v ? v->records : rs->calib->picked;
            mx[i].tokens = v ? v->tokens : rs->calib->st.tokens;
            mx[i].dppl_pct = dp;
            mx[i].kl_mean = kl;
        }
        r.matrix = mx;
        r.n_matrix = nr;
    }
    curate_error err;
    curate_error_clear(&err);
    int rc = 0;
    if (calib_report_write_html(&r, s->html_path, &err) != CURATE_OK) {
        curate_error_at(&err, s->html_path, 0);
        cli_error_lib(&err);
        rc = status_exit(err.code);
    }
    free(rows);
    free(rows_c);
    free(tn);
    free(mx);
    free(mv);
    return rc;
}

/* ---- exports ------------------------------------------------------------------------------ */

static void export_imatrix(const settings *s, const curate_calib_obs *obs, const calib_set *c,
                           size_t ctx, run_state *rs)
{
    curate_error err;
    curate_error_clear(&err);
    curate_imatrix *im = curate_imatrix_new(&err);
    if (!im || curate_calib_obs_imatrix(obs, im, &err) != CURATE_OK)
        die_lib(&err);
    curate_imatrix_format fmt = s->imatrix_format < 0
                                    ? curate_imatrix_format_from_path(s->out_imatrix)
                                    : (curate_imatrix_format)s->imatrix_format;
    const char **names = xrealloc(NULL, c->n_files, sizeof *names);
    for (size_t i = 0; i < c->n_files; i++)
        names[i] = c->files[i].path;
    curate_imatrix_meta meta = {names, c->n_files, (uint32_t)c->st.sequences, (uint32_t)ctx};
    if (c->st.sequences > UINT32_MAX)
        cli_die(CLI_EXIT_DATA, "%s: too many chunks for an imatrix file", s->out_imatrix);
    if (curate_imatrix_write(im, &meta, fmt, s->out_imatrix, &err) != CURATE_OK) {
        curate_error_at(&err, s->out_imatrix, 0);
        die_lib(&err);
    }
    rs->imatrix_format = curate_imatrix_format_name(fmt);
    rs->imatrix_entries = curate_imatrix_n_entries(im);
    free(names);
    curate_imatrix_free(im);
}

static void export_gguf(const settings *s, const curate_calib_quant_result *q,
                        const calib_set *c, curate_export_result *res, notes *ns, int quiet)
{
    curate_error err;
    curate_error_clear(&err);
    curate_gguf *src = curate_gguf_open(s->model_path, &err);
    if (!src)
        die_lib(&err);
    curate_export_tensor *list = xrealloc(NULL, q->n, sizeof *list);
    size_t n = 0;
    for (size_t i = 0; i < q->n; i++)
        if (q->t[i].quantized) {
            list[n].name = q->t[i].info.name;
            list[n].quant = &q->t[i].out;
            n++;
        }
    curate_export_options opt;
    curate_export_options_init(&opt);
    opt.quant = &s->qcfg;
    char packv[16];
    const char *ek[1] = {"curate.calib.pack"};
    const char *ev[1] = {packv};
    if (c) {
        opt.prov.calib_source = c->files[0].path;
        opt.prov.calib_sha256 = c->sha256;
        opt.prov.calib_records = c->st.records_used;
        opt.prov.calib_tokens = c->st.model_tokens;
        opt.prov.calib_seed = s->seed;
        opt.prov.has_seed = c->picked < c->n_rec;
        snprintf(packv, sizeof packv, "%s", curate_calib_pack_name(s->pack));
        opt.prov.extra_keys = ek;
        opt.prov.extra_values = ev;
        opt.prov.n_extra = 1;
    }
    if (curate_export_gguf(src, list, n, &opt, s->out_gguf, res, &err) != CURATE_OK) {
        curate_error_at(&err, s->out_gguf, 0);
        die_lib(&err);
    }
    for (size_t i = 0; i < res->n_tensors; i++) {
        const curate_export_tensor_report *t = &res->tensors[i];
        if (t->kind != CURATE_EXPORT_FALLBACK)
            continue;
        size_t cols = 0;
        for (size_t k = 0; k < q->n; k++)
            if (strcmp(q->t[k].info.name, t->name) == 0)
                cols = q->t[k].info.cols;
        add_note(ns, t->name,
                 "written to the GGUF as %s: rows of %zu do not split into blocks of 32 "
                 "(fake-quant values)",
                 curate_ggml_type_name(t->type), cols);
    }
    if (!quiet)
        fprintf(stderr, "%s: %s: %zu tensors as %s, %zu as F16/F32 (rows not in blocks of 32), "
                        "%zu copied; general.file_type %u\n",
                cli_progname, s->out_gguf, res->n_packed, curate_ggml_type_name(res->block_type),
                res->n_fallback, res->n_copied, res->file_type);
    free(list);
    curate_gguf_close(src);
}

/* A PPL for the comparison table: 4 decimals, or 5 significant digits
 * with an exponent when the value would not fit the column (models far
 * off their domain reach millions). */
static const char *fmt_ppl(char *buf, size_t cap, double v)
{
    if (isfinite(v) && fabs(v) < 1e6)
        snprintf(buf, cap, "%.4f", v);
    else
        snprintf(buf, cap, "%.4e", v);
    return buf;
}

/* ---- studies: --matrix, --repeats, --score ------------------------------------------------ */

static int cmp_variant(const void *a, const void *b)
{
    return strcmp(((const variant *)a)->name, ((const variant *)b)->name);
}

/*
 * Calibrate on the records pick[0..k) of the set and quantize a copy of m
 * with them, exactly as the main run does with all of its records.  On a
 * failure that concerns this subset only (too few tokens for one chunk)
 * v->ok stays 0 with v->error set; other failures exit.
 */
static void study_build(const settings *s, const curate_model *m, curate_model_ctx *c,
                        const calib_set *cs, const size_t *pick, size_t k, size_t ctx,
                        int32_t bos, const curate_calib_select *sel, unsigned threads,
                        variant *v)
{
    curate_error err;
    curate_error_clear(&err);
    size_t *seq_pick = xrealloc(NULL, k ? k : 1, sizeof *seq_pick);
    size_t n_seq = 0;
    uint64_t n_empty = 0;
    v->records = k;
    for (size_t i = 0; i < k; i++) {
        v->tokens += cs->rec_tokens[pick[i]];
        if (cs->rec_seq[pick[i]] == SIZE_MAX)
            n_empty++;
        else
            seq_pick[n_seq++] = cs->rec_seq[pick[i]];
    }
    curate_seqs seqs;
    curate_seqs_init(&seqs);
    curate_calib_pack_stats st;
    if (curate_calib_pack_records(&cs->toks, n_empty, seq_pick, n_seq, s->pack, ctx, bos, &seqs,
                                  &st, &err) != CURATE_OK) {
        free(seq_pick);
        curate_seqs_release(&seqs);
        if (err.code == CURATE_ERR_NOMEM)
            cli_die(CLI_EXIT_INTERNAL, "out of memory");
        snprintf(v->error, sizeof v->error, "%s", err.message);
        return;
    }
    free(seq_pick);
    v->model_tokens = st.model_tokens;
    /* the same observers as the main run keeps */
    unsigned what = CURATE_OBSERVE_SUMSQ | CURATE_OBSERVE_ABSMEAN | CURATE_OBSERVE_MINMAX;
    if (s->act && s->acfg.scope == CURATE_ACT_TENSOR)
        what |= CURATE_OBSERVE_HIST;
    if (s->quantize && (s->qcfg.method == CURATE_QUANT_GPTQ || s->qcfg.method == CURATE_QUANT_AWQ))
        what |= CURATE_OBSERVE_HESSIAN;
    int with_output = 0;
    size_t nt = curate_calib_tensors(m, NULL, 0);
    curate_calib_tensor *tl = xrealloc(NULL, nt, sizeof *tl);
    curate_calib_tensors(m, tl, nt);
    for (size_t i = 0; i < nt; i++)
        if (tl[i].has_input && tl[i].input == CURATE_LIN_OUTPUT &&
            curate_calib_selected(sel, tl[i].name, NULL))
            with_output = 1;
    free(tl);
    curate_calib_obs *obs = curate_calib_obs_new(m, what, with_output, 0, &err);
    if (!obs)
        die_lib(&err);
    if (curate_calib_collect(c, &seqs, obs, NULL, NULL, &err) != CURATE_OK)
        die_lib(&err);
    curate_seqs_release(&seqs);
    if (s->quantize) {
        v->qm = curate_calib_model_copy(m, &err);
        if (!v->qm)
            die_lib(&err);
        curate_calib_quant_opts qo;
        curate_calib_quant_opts_init(&qo);
        qo.cfg = s->qcfg;
        qo.sel = *sel;
        qo.n_threads = threads;
        curate_calib_quant_result qres;
        memset(&qres, 0, sizeof qres);
        if (curate_calib_quantize(m, v->qm, obs, &qo, &qres, &err) != CURATE_OK)
            die_lib(&err);
        curate_calib_quant_result_release(&qres);
    }
    v->cq = curate_model_ctx_init(v->qm ? v->qm : m, ctx, s->threads, &err);
    if (!v->cq)
        die_lib(&err);
    if (s->act) {
        v->act = curate_calib_act_new(m, obs, &s->acfg, sel, &err);
        if (!v->act)
            die_lib(&err);
        curate_calib_act_attach(v->act, v->cq);
    }
    /* the statistics (a Hessian per input for gptq) are not needed any more */
    curate_calib_obs_free(obs);
    v->ok = 1;
}

/*
 * The extra calibrations: --matrix, one per calibration domain (the main
 * run is the "all" row); --repeats K, one per seeded sub-sample.
 */
static void study_setup(const settings *s, const curate_model *m, curate_model_ctx *c,
                        const calib_set *cs, size_t ctx, int32_t bos,
                        const curate_calib_select *sel, unsigned threads, int quiet, study *sd)
{
    size_t *pick = xrealloc(NULL, cs->n_rec ? cs->n_rec : 1, sizeof *pick);
    if (s->matrix) {
        sd->n = cs->n_comp;
        sd->v = xrealloc(NULL, sd->n, sizeof *sd->v);
        for (size_t di = 0; di < cs->n_comp; di++) {
            variant *v = &sd->v[di];
            memset(v, 0, sizeof *v);
            v->name = xstrdup(cs->comp[di].name);
        }
        for (size_t di = 0; di < cs->n_comp; di++) {
            variant *v = &sd->v[di];
            size_t k = 0;
            for (size_t r = 0; r < cs->n_rec; r++)
                if (cs->rec_dom[r] == di)
                    pick[k++] = r;
            study_build(s, m, c, cs, pick, k, ctx, bos, sel, threads, v);
            if (!quiet)
                fprintf(stderr, "%s: matrix: calibrated on %s: %llu records, %llu tokens%s%s\n",
                        cli_progname, v->name, (unsigned long long)v->records,
                        (unsigned long long)v->tokens, v->ok ? "" : ": skipped: ", v->error);
        }
        qsort(sd->v, sd->n, sizeof *sd->v, cmp_variant);
    } else {
        sd->n = (size_t)s->repeats;
        sd->v = xrealloc(NULL, sd->n, sizeof *sd->v);
        sd->sub_k = curate_calib_subsample_size(cs->n_rec, s->subsample);
        for (size_t i = 0; i < sd->n; i++) {
            variant *v = &sd->v[i];
            memset(v, 0, sizeof *v);
            char name[48];
            snprintf(name, sizeof name, "repeat %zu", i + 1);
            v->name = xstrdup(name);
            v->seed = s->seed + i + 1;
            curate_calib_subsample(s->seed, i + 1, cs->n_rec, sd->sub_k, pick);
            study_build(s, m, c, cs, pick, sd->sub_k, ctx, bos, sel, threads, v);
            if (!quiet)
                fprintf(stderr, "%s: repeat %zu of %zu: %llu of %zu records (seed %llu), %llu "
                                "tokens%s%s\n",
                        cli_progname, i + 1, sd->n, (unsigned long long)v->records, cs->n_rec,
                        (unsigned long long)v->seed, (unsigned long long)v->tokens,
                        v->ok ? "" : ": skipped: ", v->error);
        }
    }
    free(pick);
    for (size_t i = 0; i < sd->n; i++) {
        sd->v[i].cmp = xrealloc(NULL, s->n_domains ? s->n_domains : 1, sizeof *sd->v[i].cmp);
        for (size_t j = 0; j < s->n_domains; j++) {
            curate_calib_cmp *r = &sd->v[i].cmp[j];
            memset(r, 0, sizeof *r);
            r->ppl_quant = r->dppl_pct = r->kl_mean = r->kl_p99 = r->top1_agree = NAN;
        }
    }
}

static void study_release(study *sd)
{
    for (size_t i = 0; i < sd->n; i++) {
        variant *v = &sd->v[i];
        curate_calib_act_free(v->act);
        curate_model_ctx_free(v->cq);
        curate_model_free(v->qm);
        free(v->cmp);
        free(v->name);
    }
    free(sd->v);
    memset(sd, 0, sizeof *sd);
}

/*
 * Domain di's comparison: the original against the main quantized model
 * and every calibrated variant at once, so the original runs once per
 * chunk.  The main result goes to *main_res.
 */
static curate_status study_compare(curate_model_ctx *c, curate_model_ctx *cq, study *sd,
                                   size_t di, const curate_seqs *seqs,
                                   curate_calib_cmp *main_res, curate_calib_seq_fn on_seq_fn,
                                   void *user, curate_error *err)
{
    if (!cq || sd->n == 0)
        return curate_calib_compare(c, cq ? &cq : NULL, cq ? 1 : 0, seqs, main_res, on_seq_fn,
                                    user, err);
    curate_model_ctx **ctxs = xrealloc(NULL, sd->n + 1, sizeof *ctxs);
    size_t *who = xrealloc(NULL, sd->n + 1, sizeof *who);
    curate_calib_cmp *res = xrealloc(NULL, sd->n + 1, sizeof *res);
    size_t n = 0;
    ctxs[n++] = cq;
    for (size_t i = 0; i < sd->n; i++)
        if (sd->v[i].ok) {
            who[n] = i;
            ctxs[n++] = sd->v[i].cq;
        }
    curate_status st = curate_calib_compare(c, ctxs, n, seqs, res, on_seq_fn, user, err);
    if (st == CURATE_OK) {
        *main_res = res[0];
        for (size_t j = 1; j < n; j++)
            sd->v[who[j]].cmp[di] = res[j];
    }
    free(ctxs);
    free(who);
    free(res);
    return st;
}

/* The dPPL% mean with the noise mark: "+0.41~" */
static const char *fmt_noise(char *buf, size_t cap, const curate_calib_spread *sp)
{
    if (sp->n == 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%+.2f%s", sp->mean,
                 curate_calib_within_noise(sp, CURATE_CALIB_NOISE_K) ? "~" : "");
    return buf;
}

/* Figure `what` (0 dPPL%, 1 KL mean, 2 top-1) of every variant on domain di
 * (di = n_domains: the variant's mean over the domains that ran). */
static double study_fig(const settings *s, const variant *v, size_t di, int what)
{
    if (di < s->n_domains) {
        const curate_calib_cmp *r = &v->cmp[di];
        if (!s->domains[di].ok || !v->ok)
            return NAN;
        return what == 0 ? r->dppl_pct : what == 1 ? r->kl_mean : r->top1_agree;
    }
    double sum = 0;
    size_t n = 0;
    for (size_t j = 0; j < s->n_domains; j++) {
        double x = study_fig(s, v, j, what);
        if (isfinite(x)) {
            sum += x;
            n++;
        }
    }
    return n ? sum / (double)n : NAN;
}

static void study_spread(const settings *s, const study *sd, size_t di, int what,
                         curate_calib_spread *sp)
{
    double *x = xrealloc(NULL, sd->n ? sd->n : 1, sizeof *x);
    for (size_t i = 0; i < sd->n; i++)
        x[i] = study_fig(s, &sd->v[i], di, what);
    curate_calib_spread_of(x, sd->n, sp);
    free(x);
}

/* The study's table on stdout, after the main one. */
static void study_print(const settings *s, const study *sd, const calib_set *cs)
{
    if (sd->n == 0)
        return;
    if (s->matrix) {
        printf("\nmatrix: dPPL%% by calibration source (rows) and evaluation domain (columns)\n");
        printf("%-16s %8s %9s", "calibrated on", "records", "tokens");
        for (size_t j = 0; j < s->n_domains; j++)
            if (s->domains[j].ok)
                printf(" %10.10s", s->domains[j].name);
        printf(" %10s\n", "mean");
        for (size_t i = 0; i <= sd->n; i++) {
            if (i < sd->n) {
                const variant *v = &sd->v[i];
                printf("%-16.16s %8llu %9llu", v->name, (unsigned long long)v->records,
                       (unsigned long long)v->tokens);
                if (!v->ok) {
                    printf("  (not calibrated: %s)\n", v->error);
                    continue;
                }
                for (size_t j = 0; j < s->n_domains; j++)
                    if (s->domains[j].ok)
                        printf(" %+9.2f%%", v->cmp[j].dppl_pct);
                printf(" %+9.2f%%\n", study_fig(s, v, s->n_domains, 0));
            } else {
                printf("%-16s %8llu %9llu", "all", (unsigned long long)cs->picked,
                       (unsigned long long)cs->st.tokens);
                double sum = 0;
                size_t n = 0;
                for (size_t j = 0; j < s->n_domains; j++)
                    if (s->domains[j].ok) {
                        printf(" %+9.2f%%", s->domains[j].cmp.dppl_pct);
                        sum += s->domains[j].cmp.dppl_pct;
                        n++;
                    }
                printf(" %+9.2f%%\n", n ? sum / (double)n : NAN);
            }
        }
        return;
    }
    size_t ok = 0;
    for (size_t i = 0; i < sd->n; i++)
        ok += sd->v[i].ok != 0;
    printf("\nrepeats: %zu calibration%s on sub-samples of %zu of %zu records (seeds %llu..%llu); "
           "'~': |mean| < %.0f std\n",
           ok, ok == 1 ? "" : "s", sd->sub_k, cs->n_rec, (unsigned long long)sd->v[0].seed,
           (unsigned long long)sd->v[sd->n - 1].seed, CURATE_CALIB_NOISE_K);
    printf("%-16s %9s %7s %8s %8s %10s %10s %7s %7s\n", "domain", "dPPL%", "std", "min", "max",
           "KL mean", "std", "top-1", "std");
    for (size_t j = 0; j <= s->n_domains; j++) {
        if (j < s->n_domains && !s->domains[j].ok)
            continue;
        curate_calib_spread d, k, t;
        study_spread(s, sd, j, 0, &d);
        study_spread(s, sd, j, 1, &k);
        study_spread(s, sd, j, 2, &t);
        char mb[32];
        printf("%-16s %9s %7.2f %+8.2f %+8.2f %10.6f %10.6f %7.4f %7.4f\n",
               j < s->n_domains ? s->domains[j].name : "mean", fmt_noise(mb, sizeof mb, &d),
               d.std, d.min, d.max, k.mean, k.std, t.mean, t.std);
    }
}

static void json_spread(curate_buf *b, const char *key, const curate_calib_spread *sp)
{
    curate_buf_printf(b, ",\"%s\":{\"n\":%zu", key, sp->n);
    json_num(b, "mean", -8, sp->mean);
    json_num(b, "std", -8, sp->std);
    json_num(b, "min", -8, sp->min);
    json_num(b, "max", -8, sp->max);
    curate_buf_printf(b, ",\"within_noise\":%s}",
                      curate_calib_within_noise(sp, CURATE_CALIB_NOISE_K) ? "true" : "false");
}

/* "matrix" or "repeats" in the JSON report. */
static void report_study(curate_buf *b, const run_state *rs)
{
    const settings *s = rs->s;
    const study *sd = rs->study;
    if (!sd || sd->n == 0)
        return;
    if (s->matrix) {
        curate_buf_printf(b, ",\"matrix\":{\"seconds_calibrate\":%.3f,\"domain_field\":",
                          rs->sec_study);
        json_str(b, s->domain_field);
        curate_buf_append_str(b, ",\"rows\":[");
        for (size_t i = 0; i <= sd->n; i++) {
            const variant *v = i < sd->n ? &sd->v[i] : NULL;
            curate_buf_printf(b, "%s{\"calib\":", i ? "," : "");
            json_str(b, v ? v->name : "all");
            curate_buf_printf(b, ",\"records\":%llu,\"tokens\":%llu",
                              (unsigned long long)(v ? v->records : rs->calib->picked),
                              (unsigned long long)(v ? v->tokens : rs->calib->st.tokens));
            if (v && !v->ok) {
                curate_buf_append_str(b, ",\"error\":");
                json_str(b, v->error);
                curate_buf_append_char(b, '}');
                continue;
            }
            curate_buf_append_str(b, ",\"cells\":[");
            int first = 1;
            for (size_t j = 0; j < s->n_domains; j++) {
                if (!s->domains[j].ok)
                    continue;
                const curate_calib_cmp *r = v ? &v->cmp[j] : &s->domains[j].cmp;
                curate_buf_printf(b, "%s{\"eval\":", first ? "" : ",");
                first = 0;
                json_str(b, s->domains[j].name);
                json_num(b, "ppl_quant", 6, r->ppl_quant);
                json_num(b, "dppl_pct", 6, r->dppl_pct);
                json_num(b, "kl_mean", -8, r->kl_mean);
                json_num(b, "kl_p99", -8, r->kl_p99);
                json_num(b, "top1_agree", 6, r->top1_agree);
                curate_buf_append_char(b, '}');
            }
            curate_buf_append_str(b, "]}");
        }
        curate_buf_append_str(b, "]}");
        return;
    }
    curate_buf_printf(b, ",\"repeats\":{\"k\":%zu,\"subsample\":%.6g,\"records\":%zu,"
                         "\"of_records\":%zu,\"noise_k\":%.1f,\"seconds_calibrate\":%.3f,"
                         "\"seeds\":[",
                      sd->n, s->subsample, sd->sub_k, rs->calib->n_rec, CURATE_CALIB_NOISE_K,
                      rs->sec_study);
    for (size_t i = 0; i < sd->n; i++)
        curate_buf_printf(b, "%s%llu", i ? "," : "", (unsigned long long)sd->v[i].seed);
    curate_buf_append_str(b, "],\"runs\":[");
    for (size_t i = 0; i < sd->n; i++) {
        const variant *v = &sd->v[i];
        curate_buf_printf(b, "%s{\"seed\":%llu,\"records\":%llu,\"tokens\":%llu,\"ok\":%s",
                          i ? "," : "", (unsigned long long)v->seed,
                          (unsigned long long)v->records, (unsigned long long)v->tokens,
                          v->ok ? "true" : "false");
        if (!v->ok) {
            curate_buf_append_str(b, ",\"error\":");
            json_str(b, v->error);
        }
        curate_buf_append_str(b, ",\"dppl_pct\":[");
        for (size_t j = 0; j < s->n_domains; j++) {
            double x = study_fig(s, v, j, 0);
            if (isfinite(x))
                curate_buf_printf(b, "%s%.6f", j ? "," : "", x);
            else
                curate_buf_printf(b, "%snull", j ? "," : "");
        }
        curate_buf_append_str(b, "]}");
    }
    curate_buf_append_str(b, "],\"domains\":[");
    for (size_t j = 0; j <= s->n_domains; j++) {
        if (j < s->n_domains && !s->domains[j].ok)
            continue;
        curate_calib_spread d, k, t;
        study_spread(s, sd, j, 0, &d);
        study_spread(s, sd, j, 1, &k);
        study_spread(s, sd, j, 2, &t);
        if (j == s->n_domains)
            curate_buf_append_str(b, "],\"mean\":{\"name\":\"mean\"");
        else {
            curate_buf_append_str(b, b->data[b->len - 1] == '[' ? "{\"name\":" : ",{\"name\":");
            json_str(b, s->domains[j].name);
        }
        json_spread(b, "dppl_pct", &d);
        json_spread(b, "kl_mean", &k);
        json_spread(b, "top1_agree", &t);
        curate_buf_append_char(b, '}');
    }
    curate_buf_append_str(b, "}");
}

/* Per-record scores for --score: sums over each record's scored rows. */
typedef struct score_acc {
    curate_calib_seq_score *sc; /* [n records] */
    const curate_seqs *seqs;
    int has_q;
} score_acc;

static void on_score(void *user, size_t seq, size_t n_seq, const curate_calib_seq_score *sc)
{
    (void)n_seq;
    score_acc *a = user;
    a->sc[a->seqs->tag[seq]] = sc[0];
}

/*
 * --score: every record of the input (--score-input, else the --calib
 * file) tokenized with BOS as an evaluation text, cut at ctx tokens, and
 * run through the original and the quantized model: loss = mean NLL per
 * scored token under the original, loss_q under the quantized model,
 * kl = mean KL(original || quantized); the records are written back with
 * those fields set (every other byte as it was).  A record with fewer than
 * 2 tokens gets null.
 */
static int score_records(const cli_run *run, const settings *s, const curate_tokenizer *tok,
                         curate_model_ctx *c, curate_model_ctx *cq, size_t ctx, int add_bos,
                         int32_t bos)
{
    const char *path = s->score_input ? s->score_input : s->calib[0];
    curate_error err;
    curate_error_clear(&err);
    curate_reader_opts ro = {run->max_record_bytes, 0};
    curate_reader *r = curate_reader_open(path, &ro, &err);
    if (!r)
        die_lib(&err);
    curate_buf lines, text;
    curate_buf_init(&lines);
    curate_buf_init(&text);
    size_t *off = NULL, n = 0, cap = 0;
    curate_record rec;
    curate_record_init(&rec);
    curate_tokens ids;
    curate_tokens_init(&ids);
    curate_seqs seqs;
    curate_seqs_init(&seqs);
    curate_line line;
    memset(&line, 0, sizeof line);
    curate_status st;
    uint64_t truncated = 0;
    while ((st = curate_reader_next(r, &line, &err)) == CURATE_OK) {
        curate_error_clear(&err);
        st = curate_record_parse(&rec, line.data, line.len, &err);
        if (st == CURATE_OK)
            st = record_text(run, &rec, &text, &err);
        curate_tokens_reset(&ids);
        if (st == CURATE_OK)
            st = curate_tokenizer_encode(tok, text.data ? text.data : "", text.len,
                                         add_bos ? CURATE_TOK_ADD_BOS : 0, &ids, &err);
        if (st != CURATE_OK) {
            curate_error_at(&err, path, line.lineno);
            die_lib(&err);
        }
        if (n + 2 > cap) {
            cap = cap ? cap * 2 : 1024;
            off = xrealloc(off, cap, sizeof *off);
        }
        off[n] = lines.len;
        if (curate_buf_append(&lines, line.data, line.len) != CURATE_OK)
            cli_die(CLI_EXIT_INTERNAL, "out of memory");
        size_t len = ids.n;
        if (len > ctx) {
            len = ctx;
            truncated++;
        }
        if (len >= 2 && curate_seqs_add(&seqs, ids.ids, len, 0, n, &err) != CURATE_OK)
            die_lib(&err);
        n++;
        off[n] = lines.len;
    }
    if (st != CURATE_END) {
        curate_error_at(&err, path, line.lineno);
        die_lib(&err);
    }
    curate_reader_free(r);
    (void)bos;
    score_acc a;
    a.sc = xrealloc(NULL, n ? n : 1, sizeof *a.sc);
    memset(a.sc, 0, (n ? n : 1) * sizeof *a.sc);
    a.seqs = &seqs;
    a.has_q = cq != NULL;
    if (seqs.n) {
        curate_calib_cmp res;
        if (curate_calib_compare(c, cq ? &cq : NULL, cq ? 1 : 0, &seqs, &res, on_score, &a,
                                 &err) != CURATE_OK)
            die_lib(&err);
    }
    char *tmp = NULL;
    FILE *f = cli_output_open(s->score_path, &tmp);
    curate_buf out;
    curate_buf_init(&out);
    for (size_t i = 0; i < n; i++) {
        curate_error_clear(&err);
        if (curate_record_parse(&rec, lines.data + off[i], off[i + 1] - off[i], &err) !=
            CURATE_OK)
            die_lib(&err);
        const curate_calib_seq_score *sc = &a.sc[i];
        curate_status e = CURATE_OK;
        if (sc->rows) {
            double rows = (double)sc->rows;
            e = curate_record_set_double(&rec, "loss", sc->nll_orig / rows);
            if (!e && cq)
                e = curate_record_set_double(&rec, "loss_q", sc->nll_quant / rows);
            if (!e && cq)
                e = curate_record_set_double(&rec, "kl", sc->kl / rows);
        } else {
            e = curate_record_set_raw(&rec, "loss", "null", 4);
            if (!e && cq)
                e = curate_record_set_raw(&rec, "loss_q", "null", 4);
            if (!e && cq)
                e = curate_record_set_raw(&rec, "kl", "null", 4);
        }
        curate_buf_reset(&out);
        if (e || curate_record_render(&rec, &out) != CURATE_OK ||
            curate_buf_append_char(&out, '\n') != CURATE_OK)
            cli_die(CLI_EXIT_INTERNAL, "out of memory");
        fwrite(out.data, 1, out.len, f);
    }
    int rc = cli_output_close(f, tmp, s->score_path);
    if (!run->quiet && rc == 0)
        fprintf(stderr, "%s: %s: %zu records scored (%llu cut at %zu tokens)\n", cli_progname,
                s->score_path, n, (unsigned long long)truncated, ctx);
    curate_buf_release(&out);
    free(a.sc);
    free(off);
    curate_buf_release(&lines);
    curate_buf_release(&text);
    curate_record_release(&rec);
    curate_tokens_release(&ids);
    curate_seqs_release(&seqs);
    return rc;
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    cli_begin(&tool, argc, argv);
    cli_run run;
    cli_run_init(&run);
    settings s;
    memset(&s, 0, sizeof s);
    s.ctx = 512;
    s.domain_field = "domain";
    s.imatrix_format = -1;
    curate_quant_config_default(&s.qcfg);
    curate_act_config_default(&s.acfg);
    parse_options(argc, argv, &run, &s);
    const double t0 = cli_now();
    const int tty = isatty(STDERR_FILENO) && !run.quiet;

    curate_error err;
    curate_error_clear(&err);
    int status = 0;
    curate_model *m = NULL, *qm = NULL;
    curate_tokenizer *tok = NULL;
    curate_model_ctx *c = NULL, *cq = NULL;
    curate_calib_obs *obs = NULL;
    curate_calib_act *act = NULL;
    curate_calib_quant_result qres;
    memset(&qres, 0, sizeof qres);
    curate_export_result eres;
    memset(&eres, 0, sizeof eres);
    calib_set calib;
    memset(&calib, 0, sizeof calib);
    notes ns = {NULL, 0};
    study sd;
    memset(&sd, 0, sizeof sd);
    run_state rs;
    memset(&rs, 0, sizeof rs);
    rs.s = &s;
    rs.study = &sd;
    rs.notes = &ns;
    rs.mean_dppl = rs.mean_abs_dppl = rs.mean_kl = NAN;
    rs.text_field = run.field;
    rs.template_name = curate_chat_template_name((curate_chat_template)run.chat_template);
    curate_buf text;
    curate_buf_init(&text);
    curate_tokens stream;
    curate_tokens_init(&stream);
    curate_seqs seqs;
    curate_seqs_init(&seqs);
    progress prog;

    m = curate_model_load(s.model_path, &err);
    if (!m) {
        cli_error_lib(&err);
        status = status_exit(err.code);
        goto done;
    }
    rs.m = m;
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
    /* a model run past its trained context gives meaningless numbers: the
     * chunk length is capped (the library caps too; doing it here sizes the
     * contexts and says it once) */
    const curate_model_params *p = curate_model_get_params(m);
    size_t ctx = s.ctx;
    if (p->n_ctx_train && ctx > p->n_ctx_train) {
        if (!run.quiet)
            cli_warn("--ctx %zu is above the model's context length %u; using %u", ctx,
                     p->n_ctx_train, p->n_ctx_train);
        ctx = p->n_ctx_train;
    }
    rs.ctx = ctx;
    const int add_bos = p->add_bos;
    const int32_t bos = add_bos ? curate_tokenizer_bos(tok) : -1;
    if (add_bos && bos < 0) {
        cli_error("%s: the model adds BOS but the tokenizer has none", s.tokenizer_path);
        status = CLI_EXIT_DATA;
        goto done;
    }
    c = curate_model_ctx_init(m, ctx, s.threads, &err);
    if (!c)
        die_lib(&err);
    const unsigned threads = curate_model_ctx_threads(c);
    rs.threads = threads;
    if (!run.quiet)
        fprintf(stderr, "%s: %s: %s, %llu parameters, %u layers, vocabulary %u; ctx %zu, %u "
                        "thread%s\n",
                cli_progname, s.model_path, p->arch,
                (unsigned long long)curate_model_n_params(m), p->n_layer, p->n_vocab, ctx,
                threads, threads == 1 ? "" : "s");

    curate_calib_select sel = {s.include, s.n_include, s.exclude, s.n_exclude};

    /* ---- calibration ---- */
    if (s.n_calib) {
        double tc = cli_now();
        read_calib(&run, &s, tok, &calib);
        pack_calib(&s, ctx, bos, &calib);
        rs.calib = &calib;
        const curate_calib_pack_stats *st = &calib.st;
        if (!run.quiet) {
            fprintf(stderr,
                    "%s: calibration: %llu record%s%s, %llu tokens (sha256 %.16s...)\n"
                    "%s: calibration: --pack %s, ctx %zu: %llu sequence%s, %llu model tokens; "
                    "records used %llu, truncated %llu, dropped %llu (%llu empty); record "
                    "tokens used %llu, truncated %llu, dropped %llu\n",
                    cli_progname, (unsigned long long)calib.picked, calib.picked == 1 ? "" : "s",
                    calib.picked < calib.n_rec ? " (picked at random)" : "",
                    (unsigned long long)st->tokens, calib.sha256, cli_progname,
                    curate_calib_pack_name(s.pack), ctx, (unsigned long long)st->sequences,
                    st->sequences == 1 ? "" : "s", (unsigned long long)st->model_tokens,
                    (unsigned long long)st->records_used,
                    (unsigned long long)st->records_truncated,
                    (unsigned long long)st->records_dropped,
                    (unsigned long long)st->records_empty, (unsigned long long)st->tokens_used,
                    (unsigned long long)st->tokens_truncated,
                    (unsigned long long)st->tokens_dropped);
        }
        /* what the observers keep: cheap sums always (the report and the
         * imatrix use them), the rest only for the methods that read it -
         * the Hessian is cols^2 per input */
        unsigned what = CURATE_OBSERVE_SUMSQ | CURATE_OBSERVE_ABSMEAN | CURATE_OBSERVE_MINMAX;
        if (s.act && s.acfg.scope == CURATE_ACT_TENSOR)
            what |= CURATE_OBSERVE_HIST;
        if (s.quantize &&
            (s.qcfg.method == CURATE_QUANT_GPTQ || s.qcfg.method == CURATE_QUANT_AWQ))
            what |= CURATE_OBSERVE_HESSIAN;
        /* the output matrix's input only when something reads it (its
         * observation makes every calibration row compute logits) */
        int with_output = 0;
        if (s.quantize || s.act) {
            size_t nt = curate_calib_tensors(m, NULL, 0);
            curate_calib_tensor *tl = xrealloc(NULL, nt, sizeof *tl);
            curate_calib_tensors(m, tl, nt);
            for (size_t i = 0; i < nt; i++)
                if (tl[i].has_input && tl[i].input == CURATE_LIN_OUTPUT &&
                    curate_calib_selected(&sel, tl[i].name, NULL))
                    with_output = 1;
            free(tl);
        }
        obs = curate_calib_obs_new(m, what, with_output, 0, &err);
        if (!obs)
            die_lib(&err);
        prog_begin(&prog, tty, "calibrate");
        if (curate_calib_collect(c, &calib.seqs, obs, on_progress, &prog, &err) != CURATE_OK) {
            prog_end(&prog);
            die_lib(&err);
        }
        prog_end(&prog);
        rs.sec_calib = cli_now() - tc;
        if (!run.quiet)
            fprintf(stderr, "%s: calibrated on %llu sequences (%llu tokens) in %.2f s\n",
                    cli_progname, (unsigned long long)curate_calib_obs_sequences(obs),
                    (unsigned long long)curate_calib_obs_tokens(obs), rs.sec_calib);
        if (s.out_imatrix) {
            export_imatrix(&s, obs, &calib, ctx, &rs);
            if (!run.quiet)
                fprintf(stderr, "%s: %s: importance matrix (%s), %llu entries\n", cli_progname,
                        s.out_imatrix, rs.imatrix_format,
                        (unsigned long long)rs.imatrix_entries);
        }
    }

    /* ---- weights ---- */
    if (s.quantize) {
        double tq = cli_now();
        qm = curate_calib_model_copy(m, &err);
        if (!qm)
            die_lib(&err);
        curate_calib_quant_opts qo;
        curate_calib_quant_opts_init(&qo);
        qo.cfg = s.qcfg;
        qo.sel = sel;
        qo.keep_codes = s.out_gguf != NULL;
        qo.n_threads = threads;
        prog_begin(&prog, tty, "quantize");
        qo.progress = on_progress;
        qo.user = &prog;
        curate_status st = curate_calib_quantize(m, qm, obs, &qo, &qres, &err);
        prog_end(&prog);
        if (st)
            die_lib(&err);
        rs.qres = &qres;
        rs.sec_quant = cli_now() - tq;
        for (size_t i = 0; i < qres.n; i++) {
            const curate_calib_qtensor *t = &qres.t[i];
            if (t->excluded_by)
                add_note(&ns, t->info.name, "kept in full precision: excluded by '%s'",
                         t->excluded_by);
            if (!t->quantized)
                continue;
            if (t->rep.short_group)
                add_note(&ns, t->info.name,
                         "rows of %zu columns end in a shorter group of %zu (group size %zu)",
                         t->info.cols, t->rep.last_group, s.qcfg.group_size);
            if (t->fallback)
                add_note(&ns, t->info.name,
                         "no activations feed a lookup table: quantized with mse instead of %s",
                         curate_quant_method_name(s.qcfg.method));
        }
        if (!run.quiet)
            fprintf(stderr, "%s: quantized %zu of %zu matrices with %s, %u bits, group %zu%s "
                            "in %.2f s\n",
                    cli_progname, qres.n_quantized, qres.n,
                    curate_quant_method_name(s.qcfg.method), s.qcfg.bits, s.qcfg.group_size,
                    s.qcfg.asym ? " asym" : "", rs.sec_quant);
        if (s.out_gguf) {
            double te = cli_now();
            export_gguf(&s, &qres, s.n_calib ? &calib : NULL, &eres, &ns, run.quiet);
            rs.exp = &eres;
            rs.sec_export = cli_now() - te;
            if (s.act && !run.quiet)
                cli_warn("%s holds the quantized weights only: activation rounding "
                         "(--act-bits) is not part of a GGUF file",
                         s.out_gguf);
        }
    }
    if (!run.quiet)
        for (size_t i = 0; i < ns.n; i++)
            fprintf(stderr, "%s: note: %s: %s\n", cli_progname, ns.v[i].name, ns.v[i].text);

    /* ---- activations ---- */
    if (s.quantize || s.act) {
        cq = curate_model_ctx_init(qm ? qm : m, ctx, s.threads, &err);
        if (!cq)
            die_lib(&err);
    }
    if (s.act) {
        act = curate_calib_act_new(m, obs, &s.acfg, &sel, &err);
        if (!act)
            die_lib(&err);
        curate_calib_act_attach(act, cq);
        rs.act = act;
    }

    /* ---- studies: the extra calibrations, evaluated beside the main one ---- */
    if (s.matrix || s.repeats) {
        double ts = cli_now();
        study_setup(&s, m, c, &calib, ctx, bos, &sel, threads, run.quiet, &sd);
        rs.sec_study = cli_now() - ts;
        if (!run.quiet)
            fprintf(stderr, "%s: %s: %zu extra calibration%s in %.2f s\n", cli_progname,
                    s.matrix ? "matrix" : "repeats", sd.n, sd.n == 1 ? "" : "s", rs.sec_study);
    }

    /* ---- evaluation ---- */
    const int cmp = cq != NULL;
    double sum_dppl = 0, sum_abs = 0, sum_kl = 0;
    /* stdout holds no timings: the same input gives the same bytes at any
     * thread count, so the table can be diffed and tested */
    if (s.n_domains) {
        if (cmp)
            printf("%-16s %9s %11s %11s %8s %10s %10s %7s  %s\n", "domain", "scored",
                   "PPL orig", "PPL quant", "dPPL%", "KL mean", "KL p99", "top-1", "verdict");
        else
            printf("%-16s %10s %8s %10s %12s %10s\n", "domain", "tokens", "chunks", "scored",
                   "PPL", "+/-");
    }
    const double te = cli_now();
    /* A failing domain (unreadable, bad record, too short) is reported and
     * skipped: the other domains' numbers are still worth having, and the
     * exit status says that something failed. */
    for (size_t i = 0; i < s.n_domains; i++) {
        domain *d = &s.domains[i];
        d->ctx = ctx;
        int rc = read_domain(&run, &s, d, &text);
        if (rc == 0) {
            /* llama-perplexity -f drops one trailing newline; the text is
             * tokenized once with BOS, and chunked as curate/ppl.h does */
            size_t len = text.len;
            if (len && text.data[len - 1] == '\n')
                len--;
            curate_tokens_reset(&stream);
            curate_seqs_reset(&seqs);
            double tt = cli_now();
            curate_error_clear(&err);
            curate_status st = curate_tokenizer_encode(tok, text.data ? text.data : "", len,
                                                       add_bos ? CURATE_TOK_ADD_BOS : 0, &stream,
                                                       &err);
            d->seconds_tokenize = cli_now() - tt;
            d->tokens = stream.n;
            if (st == CURATE_OK)
                st = curate_calib_eval_seqs(stream.ids, stream.n, ctx,
                                            s.full ? CURATE_PPL_FULL : CURATE_PPL_LLAMACPP, bos,
                                            s.max_chunks, &seqs, &err);
            if (st == CURATE_OK) {
                char stage[80];
                snprintf(stage, sizeof stage, "evaluate %s", d->name);
                prog_begin(&prog, tty, stage);
                prog.has_q = cmp;
                st = study_compare(c, cq, &sd, i, &seqs, &d->cmp, on_seq, &prog, &err);
                prog_end(&prog);
            }
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
        const curate_calib_cmp *r = &d->cmp;
        if (cmp) {
            char po[32], pq[32];
            printf("%-16s %9llu %11s %11s %+7.2f%% %10.6f %10.6f %7.4f  %s\n", d->name,
                   (unsigned long long)r->n_scored, fmt_ppl(po, sizeof po, r->ppl_orig),
                   fmt_ppl(pq, sizeof pq, r->ppl_quant), r->dppl_pct, r->kl_mean, r->kl_p99,
                   r->top1_agree, curate_calib_verdict(r->dppl_pct));
            sum_dppl += r->dppl_pct;
            sum_abs += fabs(r->dppl_pct);
            sum_kl += r->kl_mean;
        } else {
            printf("%-16s %10llu %8llu %10llu %12.4f %10.5f\n", d->name,
                   (unsigned long long)d->tokens, (unsigned long long)r->n_seq,
                   (unsigned long long)r->n_scored, r->ppl_orig, r->ppl_orig_err);
        }
        rs.n_ok++;
        if (fflush(stdout) != 0)
            break;
        if (!run.quiet)
            fprintf(stderr, "%s: %s: %llu record%s, %llu tokens, tokenized in %.2f s, "
                            "evaluated in %.2f s (%.0f tokens/s%s)\n",
                    cli_progname, d->name, (unsigned long long)d->records,
                    d->records == 1 ? "" : "s", (unsigned long long)d->tokens,
                    d->seconds_tokenize, r->seconds,
                    r->seconds > 0 ? (double)(r->n_seq * ctx) / r->seconds : 0.0,
                    cmp ? ", both models" : "");
    }
    rs.sec_eval = cli_now() - te;
    if (cmp && rs.n_ok) {
        /* the overall figure weighs every domain the same: a domain is a
         * use the model must serve, whatever its size */
        rs.mean_dppl = sum_dppl / (double)rs.n_ok;
        rs.mean_abs_dppl = sum_abs / (double)rs.n_ok;
        rs.mean_kl = sum_kl / (double)rs.n_ok;
        /* the signed mean lets rises and falls cancel; the overall verdict
         * is on the mean size of the change, like each domain's */
        printf("%-16s %9s %11s %11s %+7.2f%% %10.6f\n", "mean", "", "", "", rs.mean_dppl,
               rs.mean_kl);
        printf("%-16s %9s %11s %11s %7.2f%% %10s %10s %7s  %s\n", "mean |dPPL|", "", "", "",
               rs.mean_abs_dppl, "", "", "", curate_calib_verdict(rs.mean_abs_dppl));
    }
    if (cmp && rs.n_ok)
        study_print(&s, &sd, &calib);
    if (ferror(stdout) || fclose(stdout) != 0) {
        if (errno != EPIPE)
            cli_error("standard output: write error: %s", strerror(errno));
        status = CLI_EXIT_IO;
    }
    if (s.score_path) {
        int rc = score_records(&run, &s, tok, c, cq, ctx, add_bos, bos);
        if (rc)
            status = rc;
    }
    rs.sec_total = cli_now() - t0;
    if (s.report_path) {
        int rc = write_report(&rs);
        if (rc)
            status = rc;
    }
    if (s.html_path) {
        int rc = write_html(&rs);
        if (rc)
            status = rc;
    }
    if (!run.quiet)
        fprintf(stderr, "%s: %.2f s, peak memory %.1f MiB\n", cli_progname, cli_now() - t0,
                (double)cli_peak_rss() / (1024.0 * 1024.0));

done:
    study_release(&sd);
    curate_buf_release(&text);
    curate_tokens_release(&stream);
    curate_seqs_release(&seqs);
    curate_calib_act_free(act);
    curate_model_ctx_free(cq);
    curate_model_ctx_free(c);
    curate_calib_obs_free(obs);
    curate_calib_quant_result_release(&qres);
    curate_export_result_release(&eres);
    calib_release(&calib);
    curate_tokenizer_free(tok);
    curate_model_free(qm);
    curate_model_free(m);
    for (size_t i = 0; i < ns.n; i++) {
        free(ns.v[i].name);
        free(ns.v[i].text);
    }
    free(ns.v);
    for (size_t i = 0; i < s.n_domains; i++) {
        free(s.domains[i].name);
        free(s.domains[i].path);
    }
    free(s.domains);
    free(s.calib);
    free(s.include);
    free(s.exclude);
    return status;
}
