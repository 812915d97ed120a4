/*
 * test_report_html.c - the --html page of curate-calibrate
 * (calib_report_write_html, tools/cli_report_html.c, included here because
 * unit tests link only the library).
 *
 * Pages are rendered to files in the scratch directory and read back:
 * - structure: every tag closed (Python's html.parser through a small
 *   checker, skipped without python3; the checker is shown a broken page
 *   first so it is known to fail), every '&' starts a reference and every
 *   '<' a tag, nothing external (no http, script, src, href, url(), @import);
 * - escaping of & < > " ' in names, paths and notes; invalid UTF-8 and
 *   control bytes become U+FFFD;
 * - the numbers of each domain in its table row, NaN as "-";
 * - charts: one <svg> per chart; PPL-change bars start at the zero line
 *   (negative ones below it), have heights proportional to the change and
 *   the verdict's colour; the 1% and 3% bands sit where the bars' scale puts
 *   them; tick labels are round numbers, evenly spaced in value and position;
 *   KL bars only for domains with a KL; composition cut at 40 rows;
 * - zero domains and an evaluation-only report (no quantization);
 * - writing: a second write replaces the first, a readable mode, an error
 *   naming the file for a missing directory, a target that is a directory
 *   and a write cut short by the file size limit (old page kept, no
 *   temporary file left), a FIFO written in place.
 */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../tools/cli_report_html.c"
#include "helper_model.h"

#define NASTY "chat <&\"'>"
#define NASTY_ESC "chat &lt;&amp;&quot;&#39;&gt;"

/* ---- fixtures ---------------------------------------------------------------- */

static calib_domain_row domains[5];
static calib_comp_row comp[3];
static calib_tensor_note notes[2];

static void fill_domain(calib_domain_row *d, const char *name, double po, double pq, double kl,
                        double p99, double top1, const char *verdict)
{
    memset(d, 0, sizeof *d);
    d->name = name;
    d->source = "eval/x&y.jsonl";
    d->tokens_scored = 12345;
    d->chunks = 3;
    d->ppl_orig = po;
    d->ppl_orig_err = po * 0.01;
    d->ppl_quant = pq;
    d->ppl_quant_err = pq * 0.01;
    d->dppl_pct = 100 * (pq / po - 1);
    d->kl_mean = kl;
    d->kl_p99 = p99;
    d->top1 = top1;
    d->verdict = verdict;
}

/* Five domains: excellent, acceptable, needs work (with a nasty name),
 * negative (better after quantization), and one without KL figures. */
static void sample_report(calib_report *r)
{
    memset(r, 0, sizeof *r);
    fill_domain(&domains[0], "wiki", 12.25, 12.30, 0.0123, 0.081, 0.953, "excellent");
    fill_domain(&domains[1], "code", 14.0, 14.35, 0.0311, 0.20, 0.921, "acceptable");
    fill_domain(&domains[2], NASTY, 20.0, 21.1, 0.052, 0.31, 0.88, "needs work");
    fill_domain(&domains[3], "math", 16.0, 15.88, 0.009, 0.05, 0.97, "excellent");
    fill_domain(&domains[4], "nokl", 30.0, 30.15, NAN, NAN, NAN, "excellent");
    domains[4].tokens_scored = 1234567;
    r->domains = domains;
    r->n_domains = 5;
    double s = 0, k = 0;
    for (int i = 0; i < 5; i++)
        s += domains[i].dppl_pct;
    for (int i = 0; i < 4; i++)
        k += domains[i].kl_mean;
    r->mean_dppl_pct = s / 5;
    r->mean_kl = k / 4;

    r->tool_version = "libcurate 0.1.0 (test)";
    r->model_path = "/models/a<b>.gguf";
    r->model_name = "stories260K";
    r->tokenizer_path = "/models/tok512.model";
    r->method = "gptq";
    r->bits = 4;
    r->group_size = 32;
    r->symmetric = 1;
    r->act_bits = 8;
    r->act_method = "percentile:99.99";
    r->act_scope = "tensor";
    r->ctx = 256;
    r->ppl_mode = "llamacpp";
    r->threads = 2;

    r->calib_path = "calib/set & more.jsonl";
    r->calib_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    r->calib_records = 512;
    r->calib_tokens_used = 131072;
    r->calib_tokens_truncated = 2048;
    r->calib_tokens_dropped = 77;
    r->pack = "concat";
    r->seed = 424242;
    comp[0] = (calib_comp_row){"wiki", 256, 70000};
    comp[1] = (calib_comp_row){NASTY, 128, 40000};
    comp[2] = (calib_comp_row){"code", 128, 21072};
    r->composition = comp;
    r->n_composition = 3;

    notes[0] = (calib_tensor_note){"blk.0.ffn_down.weight", "excluded by '*ffn_down*'"};
    notes[1] = (calib_tensor_note){"blk.1.ffn_down.weight", "bad\x01\xff<note>"};
    r->notes = notes;
    r->n_notes = 2;
    r->seconds_calibrate = 1.5;
    r->seconds_quantize = 12.4;
    r->seconds_eval = 3.0;
    r->eval_tokens_per_s = 4321;
}

static char *render(const calib_report *r, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", mh_scratch_dir(), name);
    curate_error err;
    curate_error_clear(&err);
    curate_status st = calib_report_write_html(r, path, &err);
    if (st != CURATE_OK)
        fail_msg("write %s: %s", path, err.message);
    size_t len;
    char *page = mh_read_file(path, &len);
    assert_non_null(page);
    assert_int_equal(strlen(page), len);
    return page;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The text from the first occurrence of start up to (excluding) end, as a
 * malloc'd string; fails the test when either is missing. */
static char *slice(const char *hay, const char *start, const char *end)
{
    const char *a = strstr(hay, start);
    if (!a)
        fail_msg("missing: %s", start);
    const char *b = strstr(a, end);
    if (!b)
        fail_msg("missing %s after %s", end, start);
    size_t n = (size_t)(b - a);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, a, n);
    s[n] = 0;
    return s;
}

/* ---- structure ---------------------------------------------------------------- */

static const char checker_py[] =
    "import sys\n"
    "from html.parser import HTMLParser\n"
    "VOID = {'area','base','br','col','embed','hr','img','input','link','meta','source',"
    "'track','wbr'}\n"
    "class P(HTMLParser):\n"
    "    def __init__(self):\n"
    "        super().__init__(convert_charrefs=False)\n"
    "        self.stack = []; self.bad = []\n"
    "    def handle_starttag(self, tag, attrs):\n"
    "        if tag not in VOID: self.stack.append(tag)\n"
    "    def handle_endtag(self, tag):\n"
    "        top = self.stack[-1] if self.stack else None\n"
    "        if tag != top: self.bad.append('</%s> closes <%s> at %s' % (tag, top, self.getpos()))\n"
    "        else: self.stack.pop()\n"
    "    def handle_entityref(self, name):\n"
    "        if name not in ('amp', 'lt', 'gt', 'quot'): self.bad.append('&' + name)\n"
    "p = P()\n"
    "p.feed(open(sys.argv[1], encoding='utf-8').read()); p.close()\n"
    "if p.stack: p.bad.append('not closed: ' + ' '.join(p.stack))\n"
    "for b in p.bad: print(b, file=sys.stderr)\n"
    "sys.exit(1 if p.bad else 0)\n";

static int have_python = -1;
static char checker_path[1200];

/* 0 = well formed, 1 = not, 77 = cannot check (no python3). */
static int check_tags(const char *page_path)
{
    if (have_python < 0) {
        have_python = system("python3 -c 'import html.parser' >/dev/null 2>&1") == 0;
        if (!have_python) {
            fprintf(stderr, "note: python3 not found, tag nesting not checked\n");
        } else {
            snprintf(checker_path, sizeof checker_path, "%s/check_html.py", mh_scratch_dir());
            assert_int_equal(mh_write_file(checker_path, checker_py, strlen(checker_py)), 0);
        }
    }
    if (!have_python)
        return 77;
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s'", checker_path, page_path);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 2;
}

/* What every page must satisfy, whatever it holds. */
static void check_page(const char *page, const char *path)
{
    assert_true(strncmp(page, "<!DOCTYPE html>\n", 16) == 0);
    assert_non_null(strstr(page, "<meta charset=\"utf-8\">"));
    assert_non_null(strstr(page, "</html>\n"));
    int rc = check_tags(path);
    assert_true(rc == 0 || rc == 77);
    for (const char *p = page; *p; p++) {
        if (*p == '&') {
            const char *q = p + 1;
            if (*q == '#') {
                q++;
                if (*q == 'x')
                    q++;
                while ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') || (*q >= 'A' && *q <= 'F'))
                    q++;
            } else {
                while (*q >= 'a' && *q <= 'z')
                    q++;
            }
            if (*q != ';' || q == p + 1)
                fail_msg("bare '&' at byte %zu: %.20s", (size_t)(p - page), p);
        }
        if (*p == '<') {
            char c = p[1];
            if (!((c >= 'a' && c <= 'z') || c == '/' || c == '!'))
                fail_msg("bare '<' at byte %zu: %.20s", (size_t)(p - page), p);
        }
    }
    /* self-contained: nothing fetched, nothing run */
    static const char *const banned[] = {"http", "HTTP", "<script", "src=", "href=", "url(",
                                         "@import", "<link", "<img", "<iframe", "on" "load="};
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        if (strstr(page, banned[i]))
            fail_msg("page contains %s", banned[i]);
}

static void test_checker_catches_broken_pages(void **state)
{
    (void)state;
    char path[1200];
    snprintf(path, sizeof path, "%s/broken.html", mh_scratch_dir());
    const char *broken = "<!DOCTYPE html><html><body><div><span></div></body></html>";
    assert_int_equal(mh_write_file(path, broken, strlen(broken)), 0);
    int rc = check_tags(path);
    if (rc == 77)
        skip();
    assert_int_equal(rc, 1);
    const char *good = "<!DOCTYPE html><html><body><div><br><span>&amp;</span></div>"
                       "<svg><rect x=\"1\"/></svg></body></html>";
    assert_int_equal(mh_write_file(path, good, strlen(good)), 0);
    assert_int_equal(check_tags(path), 0);
}

/* ---- the full report ------------------------------------------------------------ */

static void test_structure_and_escapes(void **state)
{
    (void)state;
    calib_report r;
    sample_report(&r);
    char path[1200];
    char *page = render(&r, "full.html", path, sizeof path);
    check_page(page, path);

    /* title names model and method */
    char *title = slice(page, "<title>", "</title>");
    assert_non_null(strstr(title, "stories260K"));
    assert_non_null(strstr(title, "gptq"));
    free(title);
    char *h1 = slice(page, "<h1>", "</h1>");
    assert_non_null(strstr(h1, "gptq"));
    free(h1);

    /* escapes */
    assert_null(strstr(page, NASTY));
    assert_true(count(page, NASTY_ESC) >= 4); /* table, two charts, composition */
    assert_non_null(strstr(page, "/models/a&lt;b&gt;.gguf"));
    assert_non_null(strstr(page, "calib/set &amp; more.jsonl"));
    assert_non_null(strstr(page, "excluded by &#39;*ffn_down*&#39;"));
    assert_non_null(strstr(page, "bad\xEF\xBF\xBD\xEF\xBF\xBD&lt;note&gt;"));
    assert_null(strstr(page, "\x01"));

    /* configuration and provenance */
    static const char *const want[] = {
        "percentile:99.99", "tok512.model", "llamacpp", "libcurate 0.1.0 (test)",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "concat",
        "424,242", "131,072", "2,048", "<dd>77</dd>", "<dd>512</dd>", "blk.0.ffn_down.weight",
        "4,321 tokens/s", "12.4 s", "1.50 s", "<dd>256 tokens</dd>", "<dd>32</dd>"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(page, want[i]))
            fail_msg("missing %s", want[i]);
    /* total time is the sum of the parts */
    char total[64];
    snprintf(total, sizeof total, "<dt>Total</dt><dd>%.1f s", 1.5 + 12.4 + 3.0);
    assert_non_null(strstr(page, total));
    assert_int_equal(count(page, "<svg"), 3);
    assert_int_equal(count(page, "</svg>"), 3);
    free(page);
}

/* Each domain's row holds its own figures; NaN prints as "-". */
static void test_table_numbers(void **state)
{
    (void)state;
    calib_report r;
    sample_report(&r);
    char path[1200];
    char *page = render(&r, "table.html", path, sizeof path);
    for (size_t i = 0; i < r.n_domains; i++) {
        const calib_domain_row *d = &domains[i];
        char start[200], buf[64];
        snprintf(start, sizeof start, "<tr><td title=\"eval/x&amp;y.jsonl\">%s</td>",
                 i == 2 ? NASTY_ESC : d->name);
        char *row = slice(page, start, "</tr>");
        /* PPL in [10, 100) with 3 decimals, its error (< 10) with 4 */
        snprintf(buf, sizeof buf, ">%.3f <span", d->ppl_orig);
        assert_non_null(strstr(row, buf));
        snprintf(buf, sizeof buf, "\xC2\xB1 %.4f<", d->ppl_orig_err);
        assert_non_null(strstr(row, buf));
        snprintf(buf, sizeof buf, ">%.3f <span", d->ppl_quant);
        assert_non_null(strstr(row, buf));
        snprintf(buf, sizeof buf, ">%+.2f%%<", d->dppl_pct);
        assert_non_null(strstr(row, buf));
        if (isnan(d->kl_mean)) {
            /* mean KL, p99 KL and top-1 are "-" */
            assert_int_equal(count(row, "<td class=\"n\">-</td>"), 3);
        } else {
            snprintf(buf, sizeof buf, ">%.4f<", d->kl_mean);
            assert_non_null(strstr(row, buf));
            snprintf(buf, sizeof buf, ">%.4f<", d->kl_p99);
            assert_non_null(strstr(row, buf));
            snprintf(buf, sizeof buf, ">%.1f%%<", 100 * d->top1);
            assert_non_null(strstr(row, buf));
            assert_null(strstr(row, ">-<"));
        }
        snprintf(buf, sizeof buf, ">%s</span>", d->verdict);
        assert_non_null(strstr(row, buf));
        const char *cls = strcmp(d->verdict, "excellent") == 0    ? "pill v-ok"
                          : strcmp(d->verdict, "acceptable") == 0 ? "pill v-warn"
                                                                  : "pill v-bad";
        assert_non_null(strstr(row, cls));
        free(row);
    }
    assert_non_null(strstr(page, "<td class=\"n\">1,234,567</td>"));
    char *foot = slice(page, "<tr class=\"total\">", "</tr>");
    char buf[64];
    snprintf(buf, sizeof buf, ">%+.2f%%<", r.mean_dppl_pct);
    assert_non_null(strstr(foot, buf));
    snprintf(buf, sizeof buf, ">%.4f<", r.mean_kl);
    assert_non_null(strstr(foot, buf));
    free(foot);
    free(page);
}

/* ---- charts ------------------------------------------------------------------------ */

typedef struct rect {
    char cls[32];
    double x, y, w, h;
} rect;

/* Every <rect class="..." x= y= width= height=> in svg whose class starts
 * with prefix. */
static size_t rects(const char *svg, const char *prefix, rect *out, size_t cap)
{
    size_t n = 0;
    char pat[64];
    snprintf(pat, sizeof pat, "<rect class=\"%s", prefix);
    for (const char *p = strstr(svg, pat); p; p = strstr(p + 1, pat)) {
        assert_true(n < cap);
        rect *r = &out[n];
        const char *c = p + strlen("<rect class=\"");
        size_t k = strcspn(c, "\"");
        assert_true(k < sizeof r->cls);
        memcpy(r->cls, c, k);
        r->cls[k] = 0;
        int got = sscanf(c + k, "\" x=\"%lf\" y=\"%lf\" width=\"%lf\" height=\"%lf\"", &r->x, &r->y,
                         &r->w, &r->h);
        assert_int_equal(got, 4);
        n++;
    }
    return n;
}

/* Tick labels of the y axis: value and baseline position. */
static size_t ticks(const char *svg, double *val, double *ypos, size_t cap)
{
    size_t n = 0;
    const char *pat = "<text class=\"tick\" x=\"";
    for (const char *p = strstr(svg, pat); p; p = strstr(p + 1, pat)) {
        assert_true(n < cap);
        double x;
        int got = sscanf(p + strlen(pat), "%lf\" y=\"%lf\" text-anchor=\"end\">%lf", &x, &ypos[n],
                         &val[n]);
        assert_int_equal(got, 3);
        n++;
    }
    return n;
}

/* The step between ticks is 1, 2 or 5 times a power of ten, every tick a
 * multiple of it, evenly spaced in value and on the page. */
static void check_round_ticks(const double *v, const double *y, size_t n)
{
    assert_true(n >= 3);
    double step = v[1] - v[0];
    assert_true(fabs(step) > 0);
    double a = fabs(step), p = pow(10, floor(log10(a) + 1e-9)), m = a / p;
    assert_true(fabs(m - 1) < 1e-6 || fabs(m - 2) < 1e-6 || fabs(m - 5) < 1e-6);
    double dy = y[1] - y[0];
    for (size_t i = 1; i < n; i++) {
        assert_true(fabs(v[i] - v[i - 1] - step) < a * 1e-6);
        assert_true(fabs(y[i] - y[i - 1] - dy) < 0.11);
        double q = v[i] / a;
        assert_true(fabs(q - round(q)) < 1e-6);
    }
}

static void test_dppl_chart(void **state)
{
    (void)state;
    calib_report r;
    sample_report(&r);
    char path[1200];
    char *page = render(&r, "chart.html", path, sizeof path);
    char *svg = slice(page, "<svg class=\"chart chart-dppl\"", "</svg>");

    double zero_y, x1, x2;
    const char *z = strstr(svg, "<line class=\"zero\"");
    assert_non_null(z);
    assert_int_equal(sscanf(z, "<line class=\"zero\" x1=\"%lf\" x2=\"%lf\" y1=\"%lf\"", &x1, &x2,
                            &zero_y), 3);

    /* ticks: round, evenly spaced, covering the data (from the most
     * negative change up to past 3%); their spacing gives the scale */
    double tv[32], ty[32];
    size_t nt = ticks(svg, tv, ty, 32);
    check_round_ticks(tv, ty, nt);
    assert_true(tv[nt - 1] >= 3);
    assert_true(tv[nt - 1] >= domains[2].dppl_pct && tv[nt - 1] >= 3);
    double k = (ty[0] - ty[nt - 1]) / (tv[nt - 1] - tv[0]); /* pixels per percent */
    assert_true(fabs(ty[0] - 4 - (zero_y + k * tv[0] * -1)) < 0.2); /* lowest tick */

    rect bars[8];
    size_t nb = rects(svg, "bar", bars, 8);
    assert_int_equal(nb, r.n_domains); /* every domain has a change */
    for (size_t i = 0; i < nb; i++) {
        const calib_domain_row *d = &domains[i];
        /* verdicts go by the size of the change either way */
        double mag = fabs(d->dppl_pct);
        const char *want = mag < 1 ? "bar v-ok" : mag <= 3 ? "bar v-warn" : "bar v-bad";
        assert_string_equal(bars[i].cls, want);
        if (d->dppl_pct >= 0)
            assert_true(fabs(bars[i].y + bars[i].h - zero_y) < 0.15);
        else
            assert_true(fabs(bars[i].y - zero_y) < 0.15); /* drawn below zero */
        assert_true(fabs(bars[i].h - k * fabs(d->dppl_pct)) < 0.15);
        /* bars left to right in domain order */
        if (i > 0)
            assert_true(bars[i].x > bars[i - 1].x + bars[i - 1].w);
        /* the value is written on the chart */
        char v[64];
        snprintf(v, sizeof v, ">%+.2f%%</text>", d->dppl_pct);
        assert_non_null(strstr(svg, v));
    }

    /* verdict bands where the bars' scale puts 1% and 3%, mirrored below
     * zero as far as the axis goes (|change| decides the verdict) */
    rect ok[5], warn[5], bad[5];
    size_t nok = rects(svg, "band-ok", ok, 5), nwarn = rects(svg, "band-warn", warn, 5),
           nbad = rects(svg, "band-bad", bad, 5);
    assert_int_equal(nok, 1);
    assert_true(nwarn >= 1 && nwarn <= 2);
    assert_true(nbad >= 1 && nbad <= 2);
    assert_true(fabs(ok[0].y - (zero_y - k)) < 0.3);
    const rect *wpos = NULL, *bpos = NULL; /* the bands above zero */
    for (size_t i = 0; i < nwarn; i++)
        if (warn[i].y < zero_y)
            wpos = &warn[i];
    for (size_t i = 0; i < nbad; i++)
        if (bad[i].y < zero_y)
            bpos = &bad[i];
    assert_non_null(wpos);
    assert_non_null(bpos);
    assert_true(fabs(wpos->y + wpos->h - (zero_y - k)) < 0.3);
    assert_true(fabs(wpos->h - 2 * k) < 0.3);
    assert_true(fabs(bpos->y + bpos->h - (zero_y - 3 * k)) < 0.3);
    /* the plot reaches below the negative bar, with room for its label */
    double low = ok[0].y + ok[0].h;
    for (size_t i = 0; i < nwarn; i++)
        low = fmax(low, warn[i].y + warn[i].h);
    for (size_t i = 0; i < nbad; i++)
        low = fmax(low, bad[i].y + bad[i].h);
    assert_true(low > bars[3].y + bars[3].h + 14);
    assert_non_null(strstr(svg, ">1%</text>"));
    assert_non_null(strstr(svg, ">3%</text>"));
    free(svg);

    /* KL: bars for the four domains with a KL, p99 ticks likewise */
    svg = slice(page, "<svg class=\"chart chart-kl\"", "</svg>");
    assert_int_equal(count(svg, "class=\"bar kl\""), 4);
    assert_int_equal(count(svg, "<line class=\"p99\""), 4);
    nt = ticks(svg, tv, ty, 32);
    check_round_ticks(tv, ty, nt);
    assert_true(fabs(tv[0]) < 1e-12);
    assert_true(tv[nt - 1] >= 0.31); /* the largest p99 fits */
    rect kb[4];
    assert_int_equal(rects(svg, "bar kl", kb, 4), 4);
    double kk = (ty[0] - ty[nt - 1]) / (tv[nt - 1] - tv[0]);
    for (size_t i = 0; i < 4; i++)
        assert_true(fabs(kb[i].h - kk * domains[i].kl_mean) < 0.15);
    free(svg);

    /* composition: records and tokens per domain, shares of the total */
    svg = slice(page, "<svg class=\"chart chart-comp\"", "</svg>");
    assert_int_equal(count(svg, "class=\"bar rec\""), 3);
    assert_int_equal(count(svg, "class=\"bar tok\""), 3);
    assert_non_null(strstr(svg, ">256 (50%)<"));
    assert_non_null(strstr(svg, ">70k (53%)<"));
    assert_non_null(strstr(svg, NASTY_ESC));
    free(svg);
    free(page);
}

/* A high-cardinality composition is cut at 40 rows, the rest summed. */
static void test_composition_cut(void **state)
{
    (void)state;
    calib_report r;
    sample_report(&r);
    static calib_comp_row many[45];
    static char names[45][16];
    for (int i = 0; i < 45; i++) {
        snprintf(names[i], sizeof names[i], "d%02d", i);
        many[i] = (calib_comp_row){names[i], (uint64_t)(100 - i), (uint64_t)(1000 + i)};
    }
    r.composition = many;
    r.n_composition = 45;
    char path[1200];
    char *page = render(&r, "many.html", path, sizeof path);
    check_page(page, path);
    char *svg = slice(page, "<svg class=\"chart chart-comp\"", "</svg>");
    assert_int_equal(count(svg, "class=\"bar rec\""), 40);
    assert_non_null(strstr(svg, ">d38<"));
    assert_null(strstr(svg, ">d39<"));
    assert_non_null(strstr(svg, ">6 others<"));
    uint64_t rest = 0;
    for (int i = 39; i < 45; i++)
        rest += many[i].records;
    char buf[32];
    snprintf(buf, sizeof buf, ">%llu (", (unsigned long long)rest);
    assert_non_null(strstr(svg, buf));
    free(svg);
    free(page);
}

/* ---- edge reports ------------------------------------------------------------------ */

static void test_zero_domains(void **state)
{
    (void)state;
    calib_report r;
    sample_report(&r);
    r.domains = NULL;
    r.n_domains = 0;
    r.mean_dppl_pct = NAN;
    r.mean_kl = NAN;
    char path[1200];
    char *page = render(&r, "empty.html", path, sizeof path);
    check_page(page, path);
    assert_non_null(strstr(page, "No evaluation domain was scored"));
    assert_null(strstr(page, "chart-dppl"));
    assert_null(strstr(page, "chart-kl"));
    assert_int_equal(count(page, "<svg"), 1); /* composition only */
    assert_null(strstr(page, "<table>\n<thead><tr><th>Domain"));
    free(page);
}

/* All changes NaN: no PPL chart, but the rest of the page stands. */
static void test_all_nan(void **state)
{
    (void)state;
    calib_report r;
    sample_report(&r);
    static calib_domain_row d[2];
    fill_domain(&d[0], "a", 10, NAN, NAN, NAN, NAN, NULL);
    fill_domain(&d[1], "b", 11, NAN, NAN, NAN, NAN, NULL);
    d[0].source = NULL;
    r.domains = d;
    r.n_domains = 2;
    r.mean_dppl_pct = NAN;
    r.mean_kl = NAN;
    char path[1200];
    char *page = render(&r, "nan.html", path, sizeof path);
    check_page(page, path);
    assert_int_equal(count(page, "<svg"), 1);
    assert_non_null(strstr(page, "No domain has a PPL change to chart"));
    assert_null(strstr(page, "nan"));
    assert_null(strstr(page, "NaN"));
    char *row = slice(page, "<tr><td>a</td>", "</tr>"); /* no source, no tooltip */
    assert_int_equal(count(row, ">-<"), 6); /* PPL quant, change, KL x2, top-1, verdict */
    free(row);
    free(page);
}

static void test_evaluation_only(void **state)
{
    (void)state;
    calib_report r;
    sample_report(&r);
    static calib_domain_row d[2];
    fill_domain(&d[0], "wiki", 12.25, NAN, NAN, NAN, NAN, NULL);
    fill_domain(&d[1], "code", 4.5, NAN, NAN, NAN, NAN, NULL);
    d[0].dppl_pct = d[1].dppl_pct = NAN;
    r.domains = d;
    r.n_domains = 2;
    r.method = NULL;
    r.bits = 0;
    r.act_bits = 0;
    r.mean_dppl_pct = r.mean_kl = NAN;
    r.calib_path = NULL;
    r.calib_sha256 = NULL;
    r.calib_records = 0;
    r.composition = NULL;
    r.n_composition = 0;
    r.notes = NULL;
    r.n_notes = 0;
    r.seconds_calibrate = r.seconds_quantize = NAN;
    char path[1200];
    char *page = render(&r, "eval.html", path, sizeof path);
    check_page(page, path);
    assert_non_null(strstr(page, "No quantization ran"));
    assert_non_null(strstr(page, "none (evaluation only)"));
    assert_non_null(strstr(page, "No calibration set was used"));
    assert_null(strstr(page, "PPL quantized"));
    assert_null(strstr(page, "KL"));
    assert_null(strstr(page, "Verdict"));
    assert_null(strstr(page, "Quantization</dt>"));
    assert_null(strstr(page, "Calibration pass</dt>"));
    assert_non_null(strstr(page, "<dt>Total</dt><dd>3.00 s</dd>"));
    assert_int_equal(count(page, "<svg"), 0);
    char *row = slice(page, "<tr><td title=\"eval/x&amp;y.jsonl\">wiki</td>", "</tr>");
    assert_non_null(strstr(row, ">12.250 <span"));
    assert_int_equal(count(row, "<td"), 3);
    free(row);
    /* two tokens-scored figures summed in the summary */
    assert_non_null(strstr(page, ">24,690<"));
    free(page);
}

/* ---- writing ------------------------------------------------------------------------ */

static size_t tmp_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp."))
            n++;
    closedir(d);
    return n;
}

static void test_write_errors_and_replace(void **state)
{
    (void)state;
    calib_report r;
    sample_report(&r);
    curate_error err;
    char dir[1200], path[1300], buf[1600];
    snprintf(dir, sizeof dir, "%s/werr", mh_scratch_dir());
    mkdir(dir, 0777);

    /* missing directory: an I/O error naming the file */
    snprintf(path, sizeof path, "%s/no/such/dir/r.html", dir);
    curate_error_clear(&err);
    assert_int_equal(calib_report_write_html(&r, path, &err), CURATE_ERR_IO);
    assert_int_equal(err.code, CURATE_ERR_IO);
    curate_error_format(&err, buf, sizeof buf);
    assert_non_null(strstr(buf, path));

    /* the target is a directory: not a regular file, so opened directly,
     * which fails */
    snprintf(path, sizeof path, "%s/isdir.html", dir);
    mkdir(path, 0777);
    curate_error_clear(&err);
    assert_int_equal(calib_report_write_html(&r, path, &err), CURATE_ERR_IO);
    curate_error_format(&err, buf, sizeof buf);
    assert_non_null(strstr(buf, path));
    assert_int_equal(tmp_leftovers(dir), 0);

    /* a write that fails half way (file size limit): an error, the old
     * page stays, the temporary file goes */
    snprintf(path, sizeof path, "%s/big.html", dir);
    assert_int_equal(mh_write_file(path, "old", 3), 0);
    struct rlimit old_lim, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old_lim), 0);
    lim = old_lim;
    lim.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    curate_error_clear(&err);
    curate_status wst = calib_report_write_html(&r, path, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old_lim), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(wst, CURATE_ERR_IO);
    curate_error_format(&err, buf, sizeof buf);
    assert_non_null(strstr(buf, path));
    assert_non_null(strstr(buf, "write failed"));
    assert_int_equal(tmp_leftovers(dir), 0);
    size_t old_len;
    char *old_page = mh_read_file(path, &old_len);
    assert_non_null(old_page);
    assert_string_equal(old_page, "old");
    free(old_page);

    /* a second write replaces the first, readable by others */
    snprintf(path, sizeof path, "%s/twice.html", dir);
    assert_int_equal(mh_write_file(path, "old", 3), 0);
    assert_int_equal(calib_report_write_html(&r, path, &err), CURATE_OK);
    r.model_name = "second-model";
    assert_int_equal(calib_report_write_html(&r, path, &err), CURATE_OK);
    size_t len;
    char *page = mh_read_file(path, &len);
    assert_non_null(page);
    assert_non_null(strstr(page, "second-model"));
    assert_null(strstr(page, "stories260K"));
    free(page);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((st.st_mode & 0444) != 0 && (st.st_mode & 0044) == 0044);
    assert_int_equal(tmp_leftovers(dir), 0);

    /* not a regular file (a FIFO here, /dev/stdout in use): written in place,
     * not renamed over */
    snprintf(path, sizeof path, "%s/fifo.html", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    int rfd = open(path, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    r.n_notes = 0; /* keep the page within the pipe's buffer */
    r.n_composition = 0;
    assert_int_equal(calib_report_write_html(&r, path, &err), CURATE_OK);
    char head[32] = {0};
    assert_int_equal(read(rfd, head, 15), 15);
    assert_string_equal(head, "<!DOCTYPE html>");
    close(rfd);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(tmp_leftovers(dir), 0);

    /* bad arguments */
    assert_int_equal(calib_report_write_html(NULL, path, &err), CURATE_ERR_INVALID);
    assert_int_equal(calib_report_write_html(&r, "", &err), CURATE_ERR_INVALID);
    r.domains = NULL;
    assert_int_equal(calib_report_write_html(&r, path, &err), CURATE_ERR_INVALID);
}

/* The helpers the page leans on. */
static void test_helpers(void **state)
{
    (void)state;
    char b[64];
    assert_string_equal(fcount(b, sizeof b, 0), "0");
    assert_string_equal(fcount(b, sizeof b, 999), "999");
    assert_string_equal(fcount(b, sizeof b, 1000), "1,000");
    assert_string_equal(fcount(b, sizeof b, UINT64_MAX), "18,446,744,073,709,551,615");
    assert_string_equal(fcompact(b, sizeof b, 9800), "9,800");
    assert_string_equal(fcompact(b, sizeof b, 41234), "41.2k");
    assert_string_equal(fcompact(b, sizeof b, 40000), "40k");
    assert_string_equal(fcompact(b, sizeof b, 150000), "150k");
    assert_string_equal(fcompact(b, sizeof b, 1250000), "1.25M");
    assert_string_equal(fcompact(b, sizeof b, 2500000), "2.5M");
    assert_string_equal(fcompact(b, sizeof b, 3.1e9), "3.1G");
    assert_string_equal(fnum(b, sizeof b, NAN, 2, 1, "%"), "-");
    assert_string_equal(fnum(b, sizeof b, INFINITY, 2, 1, "%"), "+inf");
    assert_string_equal(fnum(b, sizeof b, -0.5, 2, 1, "%"), "-0.50%");
    /* axes: round steps covering the range, on several scales */
    const double ranges[][2] = {{0, 4}, {-0.8, 5.5}, {0, 0.31}, {0, 1e-5}, {0, 123456},
                                {-250, 3}, {0, 0}, {2, 2}};
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        axis a;
        nice_axis(ranges[i][0], ranges[i][1], 5, &a);
        double tol = a.step * 1e-6; /* a tick may sit a rounding error inside */
        assert_true(a.lo <= ranges[i][0] + tol && a.hi >= ranges[i][1] - tol && a.hi > a.lo);
        assert_true(a.n >= 2 && a.n <= 12);
        double v[16], y[16];
        for (int t = 0; t <= a.n; t++) {
            v[t] = axis_tick(&a, t);
            y[t] = axis_map(&a, v[t], 100, 0);
        }
        check_round_ticks(v, y, (size_t)a.n + 1);
    }
    /* escaping: UTF-8 kept, bad bytes replaced, cut at code points */
    html_out o;
    curate_buf_init(&o.b);
    o.st = CURATE_OK;
    esc_n(&o, "\xC3\xA9t\xC3\xA9 <&> \xC0\xAF \xED\xA0\x80", 0);
    assert_string_equal(o.b.data, "\xC3\xA9t\xC3\xA9 &lt;&amp;&gt; \xEF\xBF\xBD\xEF\xBF\xBD "
                                  "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    curate_buf_reset(&o.b);
    esc_n(&o, "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 2);
    assert_string_equal(o.b.data, "\xC3\xA9\xC3\xA9\xE2\x80\xA6");
    curate_buf_release(&o.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_checker_catches_broken_pages),
        cmocka_unit_test(test_structure_and_escapes),
        cmocka_unit_test(test_table_numbers),
        cmocka_unit_test(test_dppl_chart),
        cmocka_unit_test(test_composition_cut),
        cmocka_unit_test(test_zero_domains),
        cmocka_unit_test(test_all_nan),
        cmocka_unit_test(test_evaluation_only),
        cmocka_unit_test(test_write_errors_and_replace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
