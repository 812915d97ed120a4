/*
 * tinymix_check.h - shared body of the test_ppl_tinymix_{f32,f16}{a,b}.c
 * programs: perplexity of ../shared/models/tinymix on each
 * hold-out file of ../shared/data/eval against the llama.cpp figures in
 * ../shared/models/tinymix/MODEL.md (llama-perplexity -c 256 -t 2).
 *
 * The text is what MODEL.md prescribes for llama-perplexity: the records'
 * "text" fields joined with one blank line ("\n\n"), no trailing newline
 * added (llama-perplexity then drops one trailing newline of the file, and
 * so does curate_ppl_text).  Included by those four tests only.
 */
#ifndef CURATE_TEST_TINYMIX_CHECK_H
#define CURATE_TEST_TINYMIX_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curate/buf.h"
#include "curate/jsonl.h"
#include "curate/model.h"
#include "curate/ppl.h"
#include "curate/tokenizer.h"
#include "helper_model.h"

typedef struct tinymix_ref {
    const char *domain;
    double ppl;         /* llama.cpp */
    uint64_t scored;    /* tokens scored (MODEL.md) */
} tinymix_ref;

/* "\n\n".join(record["text"] for record in file) */
static char *tinymix_join(const char *path, size_t *len)
{
    curate_error err;
    curate_error_clear(&err);
    curate_reader *r = curate_reader_open(path, NULL, &err);
    if (!r)
        return NULL;
    curate_buf all, text;
    curate_buf_init(&all);
    curate_buf_init(&text);
    curate_record rec;
    curate_record_init(&rec);
    curate_line line;
    int n = 0, bad = 0;
    while (curate_reader_next(r, &line, &err) == CURATE_OK) {
        if (curate_record_parse(&rec, line.data, line.len, &err) != CURATE_OK ||
            curate_record_get_string(&rec, "text", &text, &err) != CURATE_OK) {
            bad = 1;
            break;
        }
        if (n++)
            curate_buf_append(&all, "\n\n", 2);
        curate_buf_append(&all, text.data, text.len);
    }
    curate_record_release(&rec);
    curate_buf_release(&text);
    curate_reader_free(r);
    if (bad || n == 0) {
        curate_buf_release(&all);
        return NULL;
    }
    *len = all.len;
    return all.data;
}

/*
 * Evaluate model_rel (under models/tinymix/) on every domain and compare
 * with ref[].ppl to rel_tol.  Returns 77 when ../shared is missing, 0 when
 * all agree, 1 otherwise.
 */
static int tinymix_check(const char *model_rel, const tinymix_ref *ref, size_t n_ref,
                         double rel_tol)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/tinymix/%s", model_rel);
    char *model = mh_shared_path(rel);
    char *tokp = mh_shared_path("models/tinymix/tokenizer.model");
    if (!model || !tokp) {
        free(model);
        free(tokp);
        return 77;
    }
    curate_error err;
    curate_error_clear(&err);
    curate_model *m = curate_model_load(model, &err);
    curate_tokenizer *tok = curate_tokenizer_load_ex(tokp, CURATE_TOK_LOAD_KEEP_WHITESPACE, &err);
    if (!m || !tok) {
        fprintf(stderr, "load: %s\n", err.message);
        return 1;
    }
    curate_model_ctx *c = curate_model_ctx_init(m, 256, 0, &err);
    curate_ppl_opts o;
    curate_ppl_opts_init(&o);
    o.ctx = 256;
    int failed = 0;
    for (size_t i = 0; i < n_ref; i++) {
        char drel[256];
        snprintf(drel, sizeof drel, "data/eval/%s.jsonl", ref[i].domain);
        char *path = mh_shared_path(drel);
        if (!path) {
            failed = 77;
            break;
        }
        size_t len = 0;
        char *text = tinymix_join(path, &len);
        free(path);
        if (!text) {
            fprintf(stderr, "%s: cannot read the records\n", ref[i].domain);
            failed = 1;
            continue;
        }
        curate_ppl_result r;
        if (curate_ppl_text(c, tok, text, len, &o, &r, &err) != CURATE_OK) {
            fprintf(stderr, "%s: %s\n", ref[i].domain, err.message);
            failed = 1;
            free(text);
            continue;
        }
        double rel_err = fabs(r.ppl - ref[i].ppl) / ref[i].ppl;
        int ok = rel_err <= rel_tol && r.n_scored == ref[i].scored;
        fprintf(stderr, "%-12s %s PPL = %.4f +/- %.5f  llama.cpp %.4f  diff %.1e  scored %llu "
                        "(%llu)  %.0f tok/s  %s\n",
                ref[i].domain, model_rel, r.ppl, r.ppl_err, ref[i].ppl, rel_err,
                (unsigned long long)r.n_scored, (unsigned long long)ref[i].scored,
                (double)r.n_evaluated / r.seconds_eval, ok ? "ok" : "MISMATCH");
        if (!ok)
            failed = 1;
        free(text);
    }
    curate_model_ctx_free(c);
    curate_model_free(m);
    curate_tokenizer_free(tok);
    free(model);
    free(tokp);
    return failed;
}

#endif
