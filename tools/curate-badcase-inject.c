/*
 * curate-badcase-inject - mix hard cases into a calibration set at a ratio.
 *
 * Two inputs are read in one record loop: the base set (the operands, or
 * standard input) and then the pool of hard cases (--badcases FILE, or
 * --from-scores FILE for a pool scored by curate-calibrate).  The base
 * goes first, so by the time the pool is read the number of cases to add
 * is known and the pool only needs a bounded keeper (libcurate's sampler:
 * random keys for a uniform choice, score keys for the hardest first).
 * Every base text's fingerprint is kept (32 bytes per record), so a pool
 * record already in the set is recognised and not added twice.
 *
 * Output: the base records (thinned evenly across strata with --total), in
 * input order, then the injected records in the pool's order, each with
 * "badcase": true.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "curate/dedupe.h"
#include "curate/hash.h"
#include "curate/jsonl.h"
#include "curate/rng.h"
#include "curate/sample.h"

enum {
    OPT_BADCASES = 1000,
    OPT_FROM_SCORES,
    OPT_RATIO,
    OPT_COUNT,
    OPT_TOTAL,
    OPT_BY,
    OPT_STRATA,
    OPT_TOP,
    OPT_SEED,
    OPT_MAX_STRATA
};

static const cli_option options[] = {
    {"badcases", 0, CLI_REQ_ARG, "FILE", "the pool of hard cases (JSONL); a uniform random choice\n"
     "of it is added", OPT_BADCASES},
    {"from-scores", 0, CLI_REQ_ARG, "FILE", "a pool scored by a numeric field (--by): the highest\n"
     "scores are added first (ties: earlier record first)", OPT_FROM_SCORES},
    {"ratio", 0, CLI_REQ_ARG, "R", "share of hard cases in the final set, 0 <= R < 1 (default 0.3)",
     OPT_RATIO},
    {"count", 0, CLI_REQ_ARG, "N", "add N hard cases instead of a ratio", OPT_COUNT},
    {"total", 0, CLI_REQ_ARG, "N", "keep the final set at N records by thinning the base set\n"
     "evenly across its strata (--strata), never by cutting its tail", OPT_TOTAL},
    {"by", 0, CLI_REQ_ARG, "FIELDS", "with --badcases: the strata fields for --total (as --strata);\n"
     "with --from-scores: the numeric score field", OPT_BY},
    {"strata", 0, CLI_REQ_ARG, "FIELDS", "strata fields for --total, comma-separated (default: none,\n"
     "a uniform thinning)", OPT_STRATA},
    {"top", 0, CLI_REQ_ARG, "K|F", "with --from-scores: only the K hardest records, or the\n"
     "hardest fraction F (0 < F <= 1, written with a '.') are candidates", OPT_TOP},
    {"seed", 0, CLI_REQ_ARG, "S", "random seed (default 0)", OPT_SEED},
    {"max-strata", 0, CLI_REQ_ARG, "N", "fail beyond N strata (default 10000)", OPT_MAX_STRATA},
    {NULL, 0, 0, NULL, NULL, 0},
};

static const cli_tool tool = {
    "curate-badcase-inject",
    "[OPTION]... (--badcases FILE | --from-scores FILE) [FILE]...",
    "Mix hard cases into a calibration set at a ratio, deduplicated and tagged.",
    "Reads the base set from the FILEs (or standard input), then the pool of hard\n"
    "cases.  Writes the base records in input order, then the added cases in the\n"
    "pool's order, each with \"badcase\": true.  A pool record whose text is\n"
    "already in the base set (exact match after whitespace normalization) or\n"
    "earlier in the pool is not added twice.  Records not written are rejected\n"
    "with a reason (already_in_set, duplicate_badcase, not_injected, thinned).",
    options,
    CLI_COMMON_ALL,
    "Memory: 32 bytes per base record, plus the added cases (and with --total, up\n"
    "to N base records per stratum).",
};

/* Everything one run needs, in one place so the phase functions below can
 * share it without a dozen parameters. */
typedef struct inject {
    cli_run run;
    size_t n_base_inputs;        /* inputs before the pool file */
    int in_pool;                 /* reached the pool */
    /* options */
    int scores;                  /* --from-scores */
    const char *score_field;
    double ratio;
    int have_ratio, have_count;
    uint64_t count, total;
    int have_total;
    int top_is_fraction;
    uint64_t top_k;
    double top_f;
    int have_top;
    uint64_t seed;
    /* state */
    curate_rng rng;
    curate_buf scratch;
    curate_dedupe_exact *seen;   /* fingerprints: ref 0 = base, 1 = pool */
    curate_sampler *base;        /* --total only */
    curate_sampler *pool;        /* NULL when nothing is to be added */
    uint64_t needed;             /* cases wanted before availability */
    uint64_t base_kept;          /* base records written or held */
    uint64_t n_already, n_dup, n_scored;
    uint64_t snap_read, snap_rejected; /* run counters when the pool began */
} inject;

/* Round half up for non-negative x, saturating. */
static uint64_t round_u64(double x)
{
    if (!(x > 0))
        return 0;
    if (x >= 1.8e19)
        return UINT64_MAX;
    return (uint64_t)floor(x + 0.5);
}

static size_t split_fields(char *s, char **out, size_t max, const char *opt)
{
    size_t n = 0;
    for (char *p = s;;) {
        char *c = strchr(p, ',');
        if (c)
            *c = 0;
        if (!*p)
            cli_usage_error("%s: empty field name", opt);
        if (n == max)
            cli_usage_error("%s: at most %zu fields", opt, max);
        out[n++] = p;
        if (!c)
            break;
        p = c + 1;
    }
    return n;
}

/* Reject an item the keepers let go (see curate-stratified-sample.c: an
 * earlier record is put back in run->line so the shared writer can tag
 * it; run->input_index is how cli.h tells which input a record came from). */
static void reject_item(cli_run *run, const curate_sample_item *it, uint64_t current,
                        const char *reason)
{
    if (it->ordinal == current) {
        cli_run_reject(run, reason, NULL);
        return;
    }
    curate_line saved = run->line;
    const char *saved_name = run->input_name;
    run->line.data = it->data;
    run->line.len = it->len;
    run->line.lineno = it->line;
    run->input_name = run->inputs[it->source];
    if (run->rejects_path)
        (void)cli_run_parse(run);
    cli_run_reject(run, reason, NULL);
    run->line = saved;
    run->input_name = saved_name;
}

static void drain(inject *in, curate_sampler *s, uint64_t current, const char *reason)
{
    curate_sample_item it;
    while (curate_sampler_next_dropped(s, &it))
        reject_item(&in->run, &it, current, reason);
}

static void lib_fail(inject *in, const curate_error *err, curate_status st)
{
    cli_error_lib(err);
    cli_run_abort(&in->run, st == CURATE_ERR_NOMEM    ? CLI_EXIT_INTERNAL
                            : st == CURATE_ERR_TOO_LARGE ? CLI_EXIT_DATA
                                                         : CLI_EXIT_INTERNAL);
}

/*
 * The base is complete: fix how many cases to add and open the keeper.
 * The ratio is of the final set, so without --total the count follows
 * from the base size: c / (B + c) = R gives c = R B / (1 - R).  The
 * keeper's capacity is that count (never more can be added), which bounds
 * memory; only "--top F" alone leaves it open until the pool's size is
 * known.
 */
static void begin_pool(inject *in)
{
    in->in_pool = 1;
    in->snap_read = in->run.records_read;
    in->snap_rejected = in->run.records_rejected;
    if (in->have_count)
        in->needed = in->count;
    else if (in->have_total)
        in->needed = round_u64(in->ratio * (double)in->total);
    else if (in->have_ratio || !in->scores || !in->have_top)
        in->needed = round_u64(in->ratio / (1 - in->ratio) * (double)in->base_kept);
    else if (!in->top_is_fraction)
        in->needed = in->top_k; /* --top K alone: add the K hardest */
    else
        in->needed = CURATE_SAMPLE_MAX_UNITS; /* --top F alone: known at the end */
    if (in->have_top && !in->top_is_fraction && in->top_k < in->needed)
        in->needed = in->top_k;
    if (in->needed > CURATE_SAMPLE_MAX_UNITS)
        in->needed = CURATE_SAMPLE_MAX_UNITS;
    if (in->needed == 0)
        return;
    curate_sampler_opts o = {NULL, 0, 0, in->needed, CURATE_ALLOC_EQUAL, NULL, 0, 0};
    curate_error err;
    curate_error_clear(&err);
    in->pool = curate_sampler_init(&o, &err);
    if (!in->pool)
        lib_fail(in, &err, err.code);
    size_t idx;
    if (curate_sampler_stratum_of_values(in->pool, NULL, NULL, &idx, &err) != CURATE_OK)
        lib_fail(in, &err, err.code);
}

/* Fingerprint of the current record's text; 0 if it was rejected. */
static int fingerprint(inject *in, curate_h128 *h)
{
    if (!cli_run_text(&in->run))
        return 0;
    curate_error err;
    curate_error_clear(&err);
    curate_status st = curate_text_fingerprint(in->run.text.data ? in->run.text.data : "",
                                               in->run.text.len, &in->scratch, h, &err);
    if (st != CURATE_OK)
        lib_fail(in, &err, st);
    return 1;
}

/* A base record: its fingerprint is remembered whatever happens to it (a
 * hard case equal to a thinned base record is still "in the set": the
 * thinning is random, the dedupe must not be), then it is written at once
 * or offered to the thinning sampler. */
static void base_record(inject *in)
{
    cli_run *run = &in->run;
    if (!cli_run_parse(run))
        return;
    curate_h128 h;
    if (!fingerprint(in, &h))
        return;
    int found;
    if (curate_dedupe_exact_add(in->seen, h, 0, &found, NULL) != CURATE_OK) {
        cli_error("out of memory (%zu fingerprints)", curate_dedupe_exact_count(in->seen));
        cli_run_abort(run, CLI_EXIT_INTERNAL);
    }
    if (!in->base) {
        cli_run_write(run);
        in->base_kept++;
        return;
    }
    curate_error err;
    curate_error_clear(&err);
    size_t si;
    curate_status st = curate_sampler_stratum_of(in->base, &run->rec, &si, &err);
    if (st == CURATE_ERR_JSON) {
        curate_error_at(&err, run->input_name, run->line.lineno);
        cli_run_bad(run, "bad_key", &err);
        return;
    }
    if (st != CURATE_OK) {
        curate_error_at(&err, run->input_name, run->line.lineno);
        lib_fail(in, &err, st);
    }
    curate_sample_item item = {run->line.data, run->line.len, run->records_read, 1,
                               run->line.lineno, (uint32_t)run->input_index, 0};
    st = curate_sampler_add(in->base, si, &item, &in->rng, &err);
    if (st != CURATE_OK)
        lib_fail(in, &err, st);
    in->base_kept++;
    drain(in, in->base, run->records_read, "thinned");
}

/* A pool record: score first (a record without one is bad input, not a
 * candidate), then the fingerprint check, then the keeper.  Only records
 * that pass both enter the fingerprint set as pool entries, so a repeat of
 * a rejected record is judged on its own. */
static void pool_record(inject *in)
{
    cli_run *run = &in->run;
    if (!cli_run_parse(run))
        return;
    curate_h128 h;
    if (!fingerprint(in, &h))
        return;
    uint64_t key = 0;
    if (in->scores) {
        double v;
        curate_status st = curate_record_get_double(&run->rec, in->score_field, &v);
        if (st != CURATE_OK || !isfinite(v)) {
            curate_error err;
            curate_error_clear(&err);
            curate_error_set(&err, st == CURATE_ERR_NO_FIELD ? CURATE_ERR_NO_FIELD : CURATE_ERR_FIELD_TYPE,
                             st == CURATE_ERR_NO_FIELD ? "no \"%s\" field (the score)"
                                                       : "field \"%s\" is not a finite number (the score)",
                             in->score_field);
            curate_error_at(&err, run->input_name, run->line.lineno);
            cli_run_bad(run, st == CURATE_ERR_NO_FIELD ? "no_score" : "bad_score", &err);
            return;
        }
        key = curate_score_key(v);
    }
    int found;
    uint64_t first = 0;
    if (curate_dedupe_exact_add(in->seen, h, 1, &found, &first) != CURATE_OK) {
        cli_error("out of memory (%zu fingerprints)", curate_dedupe_exact_count(in->seen));
        cli_run_abort(run, CLI_EXIT_INTERNAL);
    }
    if (found) {
        if (first == 0) {
            in->n_already++;
            cli_run_reject(run, "already_in_set", NULL);
        } else {
            in->n_dup++;
            cli_run_reject(run, "duplicate_badcase", NULL);
        }
        return;
    }
    in->n_scored++;
    if (!in->pool) {
        cli_run_reject(run, "not_injected", NULL);
        return;
    }
    curate_error err;
    curate_error_clear(&err);
    curate_sample_item item = {run->line.data, run->line.len, run->records_read, 1,
                               run->line.lineno, (uint32_t)run->input_index, 0};
    curate_status st = in->scores ? curate_sampler_add_keyed(in->pool, 0, &item, key, &err)
                                  : curate_sampler_add(in->pool, 0, &item, &in->rng, &err);
    if (st != CURATE_OK)
        lib_fail(in, &err, st);
    drain(in, in->pool, run->records_read, "not_injected");
}

int main(int argc, char **argv)
{
    cli_begin(&tool, argc, argv);
    static inject in;
    cli_run *run = &in.run;
    cli_run_init(run);
    in.ratio = 0.3;
    const char *pool_path = NULL;
    char *by_arg = NULL, *strata_arg = NULL;
    size_t max_strata = CURATE_SAMPLE_DEFAULT_MAX_STRATA;
    const char *arg;
    int optind_ = 0, id;
    while ((id = cli_getopt(argc, argv, &arg, &optind_)) != -1) {
        if (cli_run_option(run, id, arg))
            continue;
        switch (id) {
        case OPT_BADCASES:
        case OPT_FROM_SCORES:
            if (pool_path)
                cli_usage_error("give one pool: --badcases or --from-scores, once");
            pool_path = arg;
            in.scores = id == OPT_FROM_SCORES;
            break;
        case OPT_RATIO:
            in.ratio = cli_parse_double("--ratio", arg, 0, 0.999999);
            in.have_ratio = 1;
            break;
        case OPT_COUNT:
            in.count = cli_parse_u64("--count", arg, 0, CURATE_SAMPLE_MAX_UNITS, 0);
            in.have_count = 1;
            break;
        case OPT_TOTAL:
            in.total = cli_parse_u64("--total", arg, 1, CURATE_SAMPLE_MAX_UNITS, 0);
            in.have_total = 1;
            break;
        case OPT_BY: by_arg = (char *)arg; break;
        case OPT_STRATA: strata_arg = (char *)arg; break;
        case OPT_TOP:
            in.have_top = 1;
            if (strpbrk(arg, ".eE")) {
                in.top_is_fraction = 1;
                in.top_f = cli_parse_double("--top", arg, 0, 1);
                if (!(in.top_f > 0))
                    cli_usage_error("--top: the fraction must be above 0");
            } else {
                in.top_k = cli_parse_u64("--top", arg, 1, CURATE_SAMPLE_MAX_UNITS, 0);
            }
            break;
        case OPT_SEED: in.seed = cli_parse_u64("--seed", arg, 0, UINT64_MAX, 0); break;
        case OPT_MAX_STRATA:
            max_strata = (size_t)cli_parse_u64("--max-strata", arg, 1, 1000000, 0);
            break;
        default: cli_usage_error("unexpected option");
        }
    }
    if (!pool_path)
        cli_usage_error("give the hard cases with --badcases FILE or --from-scores FILE");
    if (in.have_ratio && in.have_count)
        cli_usage_error("--ratio and --count cannot be used together");
    if (in.have_total && in.have_count && in.count > in.total)
        cli_usage_error("--count %llu is more than --total %llu", (unsigned long long)in.count,
                        (unsigned long long)in.total);
    if (in.have_top && !in.scores)
        cli_usage_error("--top needs --from-scores");
    char *fields[64];
    size_t nf = 0;
    if (in.scores) {
        if (!by_arg || !*by_arg)
            cli_usage_error("--from-scores needs --by FIELD, the score field");
        if (strchr(by_arg, ','))
            cli_usage_error("--by: with --from-scores, one score field");
        in.score_field = by_arg;
        if (strata_arg)
            nf = split_fields(strata_arg, fields, 64, "--strata");
    } else {
        if (by_arg && strata_arg)
            cli_usage_error("--by and --strata name the same thing: give one");
        char *s = strata_arg ? strata_arg : by_arg;
        if (s)
            nf = split_fields(s, fields, 64, strata_arg ? "--strata" : "--by");
    }
    if (nf && !in.have_total)
        cli_usage_error("strata fields are for thinning the base set: they need --total");

    /* Inputs: the base files (or "-"), then the pool, as one list for the
     * shared record loop, so both are counted, rejected and reported the
     * same way; run.input_index tells the two apart. */
    int n_ops = argc - optind_;
    char **inputs = calloc((size_t)(n_ops > 0 ? n_ops : 1) + 1, sizeof *inputs);
    if (!inputs)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    size_t ni = 0;
    if (n_ops <= 0)
        inputs[ni++] = (char *)"-";
    for (int i = 0; i < n_ops; i++)
        inputs[ni++] = argv[optind_ + i];
    in.n_base_inputs = ni;
    inputs[ni++] = (char *)pool_path;

    curate_error err;
    curate_error_clear(&err);
    in.seen = curate_dedupe_exact_init(&err);
    if (!in.seen)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    if (in.have_total) {
        curate_sampler_opts o = {(const char *const *)fields, nf, 0, in.total,
                                 CURATE_ALLOC_PROPORTIONAL, NULL, 0, max_strata};
        in.base = curate_sampler_init(&o, &err);
        if (!in.base)
            cli_die(CLI_EXIT_INTERNAL, "%s", err.message);
    }
    curate_buf_init(&in.scratch);
    curate_rng_seed(&in.rng, in.seed);

    cli_run_start(run, (int)ni, inputs);
    while (cli_run_next(run)) {
        if (run->input_index >= in.n_base_inputs) {
            if (!in.in_pool) {
                begin_pool(&in);
                in.snap_read--; /* this record is the pool's first */
            }
            pool_record(&in);
        } else {
            base_record(&in);
        }
    }
    if (!in.in_pool)
        begin_pool(&in);

    /* How many cases: what was asked, within what the pool had.  The
     * keepers hold at least that many, so finishing them with this budget
     * selects exactly the cases (uniform, or the highest scores). */
    uint64_t eligible = in.n_scored;
    uint64_t inject_n = in.needed < eligible ? in.needed : eligible;
    if (in.have_top) {
        uint64_t k = in.top_is_fraction ? round_u64(in.top_f * (double)eligible) : in.top_k;
        if (k < inject_n)
            inject_n = k;
    }
    if (in.pool && curate_sampler_finish(in.pool, inject_n, &err) != CURATE_OK)
        lib_fail(&in, &err, err.code);
    uint64_t base_budget = 0;
    if (in.base) {
        base_budget = in.total - inject_n;
        if (curate_sampler_finish(in.base, base_budget, &err) != CURATE_OK)
            lib_fail(&in, &err, err.code);
    }
    if (!run->quiet && inject_n < in.needed && in.needed != CURATE_SAMPLE_MAX_UNITS &&
        !(in.have_top && !in.have_ratio && !in.have_count))
        cli_warn("only %llu hard cases could be added (%llu wanted; %llu in the pool were new)",
                 (unsigned long long)inject_n, (unsigned long long)in.needed,
                 (unsigned long long)eligible);

    /* Output: base records, then the added cases. */
    uint64_t base_written = 0, base_thinned = 0, end_thinned = 0;
    if (in.base) {
        for (size_t i = 0; i < curate_sampler_selected_count(in.base); i++) {
            const curate_sample_item *it = curate_sampler_selected(in.base, i);
            cli_run_write_line(run, it->data, it->len);
            base_written++;
        }
        for (size_t i = 0; i < curate_sampler_unselected_count(in.base); i++)
            reject_item(run, curate_sampler_unselected(in.base, i), UINT64_MAX, "thinned");
        end_thinned = curate_sampler_unselected_count(in.base);
        if (!run->quiet && base_written < base_budget)
            cli_warn("the base set has %llu usable records, fewer than the %llu --total leaves "
                     "for it", (unsigned long long)base_written, (unsigned long long)base_budget);
    } else {
        base_written = in.base_kept;
    }
    base_thinned = in.base_kept - base_written;
    curate_record rec;
    curate_record_init(&rec);
    curate_buf out;
    curate_buf_init(&out);
    uint64_t injected = 0;
    if (in.pool) {
        for (size_t i = 0; i < curate_sampler_selected_count(in.pool); i++) {
            const curate_sample_item *it = curate_sampler_selected(in.pool, i);
            curate_buf_reset(&out);
            if (curate_record_parse(&rec, it->data, it->len, &err) != CURATE_OK ||
                curate_record_set_bool(&rec, "badcase", 1) != CURATE_OK ||
                curate_record_render(&rec, &out) != CURATE_OK)
                cli_die(CLI_EXIT_INTERNAL, "internal error: a kept record no longer parses");
            cli_run_write_line(run, out.data, out.len);
            injected++;
        }
        for (size_t i = 0; i < curate_sampler_unselected_count(in.pool); i++)
            reject_item(run, curate_sampler_unselected(in.pool, i), UINT64_MAX, "not_injected");
    }

    /* --stats: each input's part of the bookkeeping.  The run's counters
     * were copied when the first pool record arrived; thinning rejects
     * made after the loop belong to the base. */
    uint64_t base_read = in.snap_read, pool_read = run->records_read - in.snap_read;
    uint64_t base_rejected = in.snap_rejected + end_thinned;
    uint64_t pool_rejected = run->records_rejected - base_rejected;
    uint64_t final_n = base_written + injected;
    curate_buf *x = &run->extra_stats;
    curate_buf_printf(x, ",\"inject\":{\"mode\":\"%s\",\"seed\":%llu,\"needed\":%llu,\"injected\":%llu,"
                      "\"final\":%llu,\"ratio\":%.6f,\"already_in_set\":%llu,"
                      "\"duplicate_badcase\":%llu,\"thinned\":%llu,"
                      "\"base\":{\"read\":%llu,\"written\":%llu,\"rejected\":%llu},"
                      "\"badcases\":{\"file\":",
                      in.scores ? "scores" : "random", (unsigned long long)in.seed,
                      (unsigned long long)(in.needed == CURATE_SAMPLE_MAX_UNITS ? inject_n : in.needed),
                      (unsigned long long)injected, (unsigned long long)final_n,
                      final_n ? (double)injected / (double)final_n : 0.0,
                      (unsigned long long)in.n_already, (unsigned long long)in.n_dup,
                      (unsigned long long)base_thinned, (unsigned long long)base_read,
                      (unsigned long long)base_written, (unsigned long long)base_rejected);
    curate_buf_append_json_string(x, pool_path, strlen(pool_path));
    curate_buf_printf(x, ",\"read\":%llu,\"written\":%llu,\"rejected\":%llu}}",
                      (unsigned long long)pool_read, (unsigned long long)injected,
                      (unsigned long long)pool_rejected);
    if (!run->quiet)
        fprintf(stderr, "%s: %llu hard cases added (%.1f%% of %llu records), %llu already in the "
                "set, %llu repeated in the pool\n", cli_progname, (unsigned long long)injected,
                final_n ? 100.0 * (double)injected / (double)final_n : 0.0,
                (unsigned long long)final_n, (unsigned long long)in.n_already,
                (unsigned long long)in.n_dup);
    int rc = cli_run_finish(run);
    curate_record_release(&rec);
    curate_buf_release(&out);
    curate_buf_release(&in.scratch);
    curate_sampler_free(in.base);
    curate_sampler_free(in.pool);
    curate_dedupe_exact_free(in.seen);
    free(inputs);
    return rc;
}
