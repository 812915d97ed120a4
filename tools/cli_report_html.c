/*
 * tools/cli_report_html.c - the --html page of curate-calibrate: one file
 * with inline CSS and inline SVG, no script and no external resource, so it
 * opens offline, survives being mailed around and prints.
 *
 * The page is built in memory (a few tens of kB even for many domains), then
 * written to a temporary file beside the target and renamed.  Every string
 * from the run (domain names, paths, notes) goes through esc(); numbers are
 * formatted here.  Charts are drawn with linear axes whose ticks are "nice"
 * numbers (1, 2 or 5 times a power of ten) so the grid reads at a glance.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib_report.h"
#include "curate/buf.h"

/* ---- output with a sticky error -------------------------------------------- */

/* The page is appended piece by piece; the first allocation failure is kept
 * and every later append is skipped, so the writers need no checks. */
typedef struct html_out {
    curate_buf b;
    curate_status st;
} html_out;

static void put(html_out *o, const char *s)
{
    if (o->st == CURATE_OK)
        o->st = curate_buf_append_str(&o->b, s);
}

static void putf(html_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(html_out *o, const char *fmt, ...)
{
    if (o->st != CURATE_OK)
        return;
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->st = CURATE_ERR_INTERNAL;
        return;
    }
    if ((size_t)n < sizeof small) {
        o->st = curate_buf_append(&o->b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        o->st = CURATE_ERR_NOMEM;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->st = curate_buf_append(&o->b, big, (size_t)n);
    free(big);
}

/* Length of the UTF-8 sequence starting at s (1..4), or 0 if it is not a
 * valid one (overlong, surrogate, beyond U+10FFFF, cut short). */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; min = 0x10000; }
    else return 0;
    unsigned cp = c & (0x3Fu >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/*
 * Text content or attribute value: & < > " ' become references, so the
 * same function serves both places.  Bytes that are not valid UTF-8 and
 * control characters (HTML parse errors) become U+FFFD.  At most max_cp
 * code points are written (0 = all); a cut string ends in an ellipsis.
 * NULL prints as "-", like a missing number.
 */
static void esc_n(html_out *o, const char *s, size_t max_cp)
{
    if (!s) {
        put(o, "-");
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    size_t cps = 0;
    while (*p) {
        if (max_cp && cps == max_cp) {
            put(o, "\xE2\x80\xA6"); /* ... */
            return;
        }
        cps++;
        size_t n = utf8_seq(p);
        if (n == 0) {
            put(o, "\xEF\xBF\xBD");
            p++;
            continue;
        }
        switch (*p) {
        case '&': put(o, "&amp;"); break;
        case '<': put(o, "&lt;"); break;
        case '>': put(o, "&gt;"); break;
        case '"': put(o, "&quot;"); break;
        case '\'': put(o, "&#39;"); break;
        default:
            if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7F)
                put(o, "\xEF\xBF\xBD");
            else if (o->st == CURATE_OK)
                o->st = curate_buf_append(&o->b, p, n);
        }
        p += n;
    }
}

static void esc(html_out *o, const char *s) { esc_n(o, s, 0); }

/* Code points in s, for estimating how wide a label is drawn. */
static size_t cp_count(const char *s, size_t max_cp)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)(s ? s : "-"); *p; p++)
        if ((*p & 0xC0) != 0x80)
            n++;
    return max_cp && n > max_cp ? max_cp + 1 : n;
}

/* ---- numbers -------------------------------------------------------------------- */

/* x with dec decimals (a sign always if plus) and a suffix; "-" when it is
 * NaN (not computed), "inf" when it overflowed. */
static const char *fnum(char *buf, size_t size, double x, int dec, int plus, const char *suffix)
{
    if (isnan(x))
        snprintf(buf, size, "-");
    else if (isinf(x))
        snprintf(buf, size, "%sinf", x > 0 ? (plus ? "+" : "") : "-");
    else if (plus)
        snprintf(buf, size, "%+.*f%s", dec, x, suffix);
    else
        snprintf(buf, size, "%.*f%s", dec, x, suffix);
    return buf;
}

/* 1234567 -> "1,234,567". */
static const char *fcount(char *buf, size_t size, uint64_t v)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    size_t j = 0;
    for (int i = 0; i < n && j + 2 < size; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = digits[i];
    }
    buf[j] = 0;
    return buf;
}

/* Short form for chart labels: 950, 9,500, 41.2k, 40k, 1.25M, 3.10G (round
 * values, such as axis ticks, without trailing zeros). */
static const char *fcompact(char *buf, size_t size, double v)
{
    if (v < 1e4)
        return fcount(buf, size, (uint64_t)(v + 0.5));
    const char *unit = v < 1e6 ? "k" : v < 1e9 ? "M" : "G";
    double scale = v < 1e6 ? 1e3 : v < 1e9 ? 1e6 : 1e9, x = v / scale;
    int dec = x >= 100 ? 0 : x >= 10 ? 1 : 2;
    while (dec > 0 && fabs(x * pow(10, dec - 1) - round(x * pow(10, dec - 1))) < 1e-9)
        dec--;
    snprintf(buf, size, "%.*f%s", dec, x, unit);
    return buf;
}

/* Seconds for people: 0.42 s, 12.3 s, 95 s (1 min 35 s). */
static const char *fseconds(char *buf, size_t size, double s)
{
    if (isnan(s) || s < 0)
        snprintf(buf, size, "-");
    else if (s < 10)
        snprintf(buf, size, "%.2f s", s);
    else if (s < 60)
        snprintf(buf, size, "%.1f s", s);
    else
        snprintf(buf, size, "%.0f s (%.0f min %.0f s)", s, floor(s / 60), fmod(s, 60));
    return buf;
}

/* Tokens per second with thousands separators, "-" when unknown. */
static const char *frate(char *buf, size_t size, double v)
{
    if (!isfinite(v) || v < 0 || v >= 1e19)
        return fnum(buf, size, v, 0, 0, "");
    return fcount(buf, size, (uint64_t)llround(v));
}

/* PPL in 5 significant-ish digits: 1.2346, 12.346, 123.46, 12346.  A fixed
 * number of decimals would print 0.3% changes on a PPL of 4 as two equal
 * numbers, or carry noise digits on a PPL of 3000. */
static const char *fppl(char *buf, size_t size, double x)
{
    double a = fabs(x);
    int dec = a >= 10000 ? 0 : a >= 1000 ? 1 : a >= 100 ? 2 : a >= 10 ? 3 : 4;
    if (isfinite(x))
        snprintf(buf, size, "%.*f", dec, x);
    else
        fnum(buf, size, x, 0, 0, "");
    return buf;
}

/* KL in nats: small numbers keep three significant digits.  A good 8-bit
 * model has a mean KL around 1e-4, which %.4f would print as 0.0001. */
static const char *fkl(char *buf, size_t size, double x)
{
    if (isfinite(x) && x != 0 && fabs(x) < 1e-4)
        snprintf(buf, size, "%.2e", x);
    else if (isfinite(x) && fabs(x) < 1)
        snprintf(buf, size, "%.4f", x);
    else
        fnum(buf, size, x, 3, 0, "");
    return buf;
}

/* ---- verdicts ------------------------------------------------------------------- */

typedef enum { V_NONE, V_OK, V_WARN, V_BAD } vclass;

static const char *const vclass_css[] = {"v-none", "v-ok", "v-warn", "v-bad"};

/* The bands of issue 5: <1% excellent, 1-3% acceptable, >3% needs work. */
static vclass verdict_of_change(double pct)
{
    if (!isfinite(pct))
        return isinf(pct) && pct > 0 ? V_BAD : V_NONE;
    pct = fabs(pct); /* a large fall is as suspect as a large rise */
    return pct < 1 ? V_OK : pct <= 3 ? V_WARN : V_BAD;
}

/* The caller's verdict string decides; a missing or unknown one falls back
 * to the change itself. */
static vclass verdict_class(const calib_domain_row *d)
{
    if (d->verdict) {
        if (strcmp(d->verdict, "excellent") == 0)
            return V_OK;
        if (strcmp(d->verdict, "acceptable") == 0)
            return V_WARN;
        if (strcmp(d->verdict, "needs work") == 0)
            return V_BAD;
    }
    return verdict_of_change(d->dppl_pct);
}

static void verdict_pill(html_out *o, const calib_domain_row *d)
{
    vclass v = verdict_class(d);
    if (!d->verdict && v == V_NONE) {
        put(o, "-");
        return;
    }
    putf(o, "<span class=\"pill %s\">", vclass_css[v]);
    if (d->verdict)
        esc(o, d->verdict);
    else
        put(o, v == V_OK ? "excellent" : v == V_WARN ? "acceptable" : "needs work");
    put(o, "</span>");
}

/* ---- axes ----------------------------------------------------------------------- */

typedef struct axis {
    double lo, hi;   /* the range drawn */
    double step, t0; /* ticks: t0 + i*step for i in 0..n, within [lo, hi] */
    int n;
    int decimals;  /* for the tick labels */
} axis;

/* Round the range [lo, hi] outwards to multiples of a step of 1, 2 or 5
 * times a power of ten, giving about `target` intervals. */
static void nice_axis(double lo, double hi, int target, axis *a)
{
    if (!(hi > lo))
        hi = lo + (lo != 0 ? fabs(lo) : 1);
    double raw = (hi - lo) / target;
    double p = pow(10, floor(log10(raw)));
    double f = raw / p;
    double nf = f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10;
    a->step = nf * p;
    a->lo = floor(lo / a->step + 1e-9) * a->step;
    a->hi = ceil(hi / a->step - 1e-9) * a->step;
    /* the products above may land a rounding error inside the range */
    if (a->lo > lo + a->step * 1e-6)
        a->lo -= a->step;
    if (a->hi < hi - a->step * 1e-6)
        a->hi += a->step;
    a->t0 = a->lo;
    a->n = (int)lround((a->hi - a->lo) / a->step);
    int d = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
    a->decimals = d > 9 ? 9 : d;
}

/* Counts have no fractional ticks: a step below 1 becomes 1. */
static void axis_integer(axis *a)
{
    if (a->step >= 1)
        return;
    a->step = 1;
    a->lo = a->t0 = floor(a->lo);
    a->hi = ceil(a->hi);
    a->n = (int)lround(a->hi - a->lo);
    a->decimals = 0;
}

static double axis_tick(const axis *a, int i)
{
    double v = a->t0 + i * a->step;
    return fabs(v) < a->step * 1e-6 ? 0.0 : v; /* no "-0" */
}

/* Draw from lo instead of the tick below it (lo inside the range); the
 * ticks below lo go. */
static void axis_cut_below(axis *a, double lo)
{
    if (!(lo > a->lo) || !(lo < a->hi))
        return;
    a->lo = lo;
    double k = ceil(lo / a->step - 1e-9);
    a->t0 = k * a->step;
    a->n = (int)lround((a->hi - a->t0) / a->step);
}

/* Pixel position of v on an axis drawn from p0 (at lo) to p1 (at hi). */
static double axis_map(const axis *a, double v, double p0, double p1)
{
    return p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0);
}

/* ---- charts ------------------------------------------------------------------------ */

enum { CHART_W = 760, LABEL_CP = 18 };

/* Domain labels under a vertical bar chart; rotated when they would not fit
 * their slot.  Returns the room they need below the axis.  Widths are
 * estimated (about 6.8 units per character at 12 px in the usual sans
 * fonts): the page has no script to measure text, so the estimate errs wide. */
static double x_labels_room(const calib_report *r, double slot, int *rotate)
{
    size_t longest = 1;
    for (size_t i = 0; i < r->n_domains; i++) {
        size_t c = cp_count(r->domains[i].name, LABEL_CP);
        if (c > longest)
            longest = c;
    }
    double w = (double)longest * 6.8;
    *rotate = w > slot - 6;
    return *rotate ? 24 + w * 0.574 : 26;
}

static void x_label(html_out *o, const char *name, double cx, double y, int rotate)
{
    if (rotate)
        putf(o, "<text class=\"xl\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" "
                "transform=\"rotate(-35 %.1f %.1f)\">", cx + 4, y, cx + 4, y);
    else
        putf(o, "<text class=\"xl\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", cx, y);
    esc_n(o, name, LABEL_CP);
    put(o, "</text>");
}

/* Horizontal grid lines and tick labels at the left of a vertical chart. */
static void y_grid(html_out *o, const axis *a, double x0, double x1, double y0, double y1,
                   const char *unit)
{
    for (int i = 0; i <= a->n; i++) {
        double v = axis_tick(a, i), y = axis_map(a, v, y0, y1);
        putf(o, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
             x0, x1, y, y);
        putf(o, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.*f%s</text>",
             x0 - 6, y + 4, a->decimals, v, unit);
    }
}

static void svg_open(html_out *o, const char *cls, double h, const char *label)
{
    putf(o, "<svg class=\"%s\" viewBox=\"0 0 %d %.0f\" role=\"img\" aria-label=\"", cls,
         CHART_W, ceil(h));
    esc(o, label);
    put(o, "\"><title>");
    esc(o, label);
    put(o, "</title>");
}

/*
 * PPL change per domain: vertical bars from zero (negative ones downwards),
 * coloured by verdict, over the verdict bands (below 1%, 1-3%, above 3%).
 * The axis always reaches past 3% so the bands are there to compare with,
 * even when every domain is far below them.
 */
static void chart_dppl(html_out *o, const calib_report *r)
{
    double mn = 0, mx = 4;
    size_t finite = 0;
    for (size_t i = 0; i < r->n_domains; i++) {
        double v = r->domains[i].dppl_pct;
        if (!isfinite(v))
            continue;
        finite++;
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
    }
    if (finite == 0) {
        put(o, "<p class=\"muted\">No domain has a PPL change to chart.</p>\n");
        return;
    }
    axis a;
    nice_axis(mn, mx, 5, &a);
    /* Below zero, draw only as far as the data needs (plus room for a
     * label under the lowest bar), not down to the next round tick: a
     * -0.4% would otherwise open a -5% band of empty space. */
    if (mn < 0)
        axis_cut_below(&a, mn - 0.12 * (mx - mn) - 0.1);
    double left = 58, right = CHART_W - 44, top = 18;
    double slot = (right - left) / (double)r->n_domains;
    int rotate;
    double room = x_labels_room(r, slot, &rotate);
    double ph = 260, bottom = top + ph, h = bottom + room;

    put(o, "<figure>");
    svg_open(o, "chart chart-dppl", h, "PPL change per domain, in percent");
    /* bands on the size of the change either way, as the verdicts are:
     * |x| < 1 excellent, 1-3 acceptable, > 3 needs work */
    const double edges[6] = {a.lo, -3, -1, 1, 3, a.hi};
    static const char *const band_css[5] = {"band-bad", "band-warn", "band-ok", "band-warn",
                                            "band-bad"};
    for (int b = 0; b < 5; b++) {
        double lo = edges[b] > a.lo ? edges[b] : a.lo, hi = edges[b + 1] < a.hi ? edges[b + 1] : a.hi;
        if (hi <= lo)
            continue;
        double y_hi = axis_map(&a, hi, bottom, top), y_lo = axis_map(&a, lo, bottom, top);
        putf(o, "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
             band_css[b], left, y_hi, right - left, y_lo - y_hi);
    }
    y_grid(o, &a, left, right, bottom, top, "%");
    for (int t = -3; t <= 3; t += 2) {
        if (t < 0 && t < a.lo)
            continue;
        double y = axis_map(&a, t, bottom, top);
        putf(o, "<line class=\"thr\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                "<text class=\"thr-l\" x=\"%.1f\" y=\"%.1f\">%d%%</text>",
             left, right, y, y, right + 6, y + 4, t);
    }
    double y0 = axis_map(&a, 0, bottom, top);
    double bw = slot * 0.56 > 64 ? 64 : slot * 0.56;
    int values = slot >= 46; /* too many domains: the table has the numbers */
    for (size_t i = 0; i < r->n_domains; i++) {
        const calib_domain_row *d = &r->domains[i];
        double cx = left + slot * ((double)i + 0.5);
        if (isfinite(d->dppl_pct)) {
            double y = axis_map(&a, d->dppl_pct, bottom, top);
            double yt = y < y0 ? y : y0, hgt = fabs(y - y0);
            char v[48];
            snprintf(v, sizeof v, "%+.2f%%", d->dppl_pct);
            put(o, "<g><title>");
            esc(o, d->name);
            putf(o, ": %s</title>", v);
            putf(o, "<rect class=\"bar %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
                 vclass_css[verdict_class(d)], cx - bw / 2, yt, bw, hgt);
            double ly = d->dppl_pct >= 0 ? yt - 5 : yt + hgt + 13;
            if (values)
                putf(o, "<text class=\"val\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
                     cx, ly, v);
            put(o, "</g>");
        } else if (values) {
            putf(o, "<text class=\"val muted\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">-</text>",
                 cx, y0 - 5);
        }
        x_label(o, d->name, cx, bottom + 17, rotate);
    }
    putf(o, "<line class=\"zero\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
         left, right, y0, y0);
    put(o, "</svg>\n<figcaption><span class=\"key\"><i class=\"sw band-ok\"></i>excellent &lt; 1%</span>"
           "<span class=\"key\"><i class=\"sw band-warn\"></i>acceptable 1&#8211;3%</span>"
           "<span class=\"key\"><i class=\"sw band-bad\"></i>needs work &gt; 3%</span>"
           "Change in perplexity of the quantized model against the original, per domain "
           "(lower is better; below zero the quantized model scored better).</figcaption></figure>\n");
}

/* Mean KL per domain as bars, p99 as a dark tick across each bar. */
static void chart_kl(html_out *o, const calib_report *r)
{
    double mx = 0;
    size_t finite = 0;
    for (size_t i = 0; i < r->n_domains; i++) {
        const calib_domain_row *d = &r->domains[i];
        if (isfinite(d->kl_mean) && d->kl_mean >= 0) {
            finite++;
            mx = d->kl_mean > mx ? d->kl_mean : mx;
        }
        if (isfinite(d->kl_p99) && d->kl_p99 > mx)
            mx = d->kl_p99;
    }
    if (finite == 0) {
        put(o, "<p class=\"muted\">No domain has a KL divergence to chart.</p>\n");
        return;
    }
    axis a;
    nice_axis(0, mx > 0 ? mx : 1e-3, 5, &a);
    double left = 58, right = CHART_W - 44, top = 18;
    double slot = (right - left) / (double)r->n_domains;
    int rotate;
    double room = x_labels_room(r, slot, &rotate);
    double ph = 220, bottom = top + ph, h = bottom + room;

    put(o, "<figure>");
    svg_open(o, "chart chart-kl", h, "KL divergence per domain: mean (bars) and p99 (ticks)");
    y_grid(o, &a, left, right, bottom, top, "");
    double bw = slot * 0.5 > 56 ? 56 : slot * 0.5;
    /* value labels while they fit: the mean's left of the whisker, the p99's
     * right of its cap (that one needs the wider slots) */
    int values = slot >= 44, p99_values = slot >= 100;
    for (size_t i = 0; i < r->n_domains; i++) {
        const calib_domain_row *d = &r->domains[i];
        double cx = left + slot * ((double)i + 0.5);
        char m[32], p[32];
        fkl(m, sizeof m, d->kl_mean);
        fkl(p, sizeof p, d->kl_p99);
        put(o, "<g><title>");
        esc(o, d->name);
        putf(o, ": mean KL %s, p99 %s</title>", m, p);
        double ytop = bottom;
        if (isfinite(d->kl_mean) && d->kl_mean >= 0) {
            ytop = axis_map(&a, d->kl_mean, bottom, top);
            putf(o, "<rect class=\"bar kl\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
                 cx - bw / 2, ytop, bw, bottom - ytop);
        }
        int whisker = 0;
        if (isfinite(d->kl_p99) && d->kl_p99 >= 0) {
            double yp = axis_map(&a, d->kl_p99, bottom, top);
            whisker = yp < ytop - 1;
            if (whisker) /* from the mean up to the p99 */
                putf(o, "<line class=\"whisker\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
                     cx, cx, ytop, yp);
            putf(o, "<line class=\"p99\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
                 cx - bw / 4, cx + bw / 4, yp, yp);
            if (p99_values)
                putf(o, "<text class=\"val p99-l\" x=\"%.1f\" y=\"%.1f\">%s</text>",
                     cx + bw / 4 + 4, yp + 4, p);
        }
        if (values && whisker)
            putf(o, "<text class=\"val\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
                 cx - 4, ytop - 5, m);
        else if (values)
            putf(o, "<text class=\"val\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
                 cx, ytop - 5, m);
        put(o, "</g>");
        x_label(o, d->name, cx, bottom + 17, rotate);
    }
    putf(o, "<line class=\"zero\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
         left, right, bottom, bottom);
    put(o, "</svg>\n<figcaption><span class=\"key\"><i class=\"sw kl\"></i>mean</span>"
           "<span class=\"key\"><i class=\"sw p99\"></i>p99</span>"
           "KL(original &#8214; quantized) per token, in nats (lower is better).</figcaption></figure>\n");
}

/*
 * Composition of the calibration set: one row per domain, records and
 * tokens in two panels with their own axes.  More than COMP_MAX rows (a
 * high-cardinality field) are cut and the rest summed into one row.
 */
enum { COMP_MAX = 40 };

static void comp_panel(html_out *o, const axis *a, const char *title, double x0, double x1,
                       double top, double bottom)
{
    putf(o, "<text class=\"ptitle\" x=\"%.1f\" y=\"%.1f\">%s</text>", x0, top - 10, title);
    for (int i = 0; i <= a->n; i++) {
        double v = axis_tick(a, i), x = axis_map(a, v, x0, x1);
        char t[32];
        putf(o, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", x, x,
             top, bottom);
        putf(o, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", x,
             bottom + 15, fcompact(t, sizeof t, v));
    }
    putf(o, "<line class=\"zero\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", x0, x0,
         top, bottom);
}

static void comp_bar(html_out *o, const axis *a, const char *cls, double x0, double x1,
                     double y, double v, double total)
{
    double x = axis_map(a, v, x0, x1);
    char t[32], s[32];
    if (total > 0)
        snprintf(s, sizeof s, " (%.*f%%)", v / total < 0.1 ? 1 : 0, 100 * v / total);
    else
        s[0] = 0;
    putf(o, "<rect class=\"bar %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"14\"/>"
            "<text class=\"val\" x=\"%.1f\" y=\"%.1f\">%s%s</text>",
         cls, x0, y, x - x0, x + 5, y + 11, fcompact(t, sizeof t, v), s);
}

static void chart_composition(html_out *o, const calib_report *r)
{
    size_t n = r->n_composition, shown = n > COMP_MAX ? COMP_MAX - 1 : n;
    double rec_total = 0, tok_total = 0, rec_max = 0, tok_max = 0, rec_rest = 0, tok_rest = 0;
    for (size_t i = 0; i < n; i++) {
        double rec = (double)r->composition[i].records, tok = (double)r->composition[i].tokens;
        rec_total += rec;
        tok_total += tok;
        if (i >= shown) {
            rec_rest += rec;
            tok_rest += tok;
            continue;
        }
        rec_max = rec > rec_max ? rec : rec_max;
        tok_max = tok > tok_max ? tok : tok_max;
    }
    rec_max = rec_rest > rec_max ? rec_rest : rec_max;
    tok_max = tok_rest > tok_max ? tok_rest : tok_max;
    size_t rows = shown + (shown < n);
    axis ar, at;
    nice_axis(0, rec_max > 0 ? rec_max : 1, 4, &ar);
    nice_axis(0, tok_max > 0 ? tok_max : 1, 4, &at);
    axis_integer(&ar);
    axis_integer(&at);

    double label_w = 138, gap = 24, val_room = 84;
    double pw = (CHART_W - label_w - gap - 8) / 2;
    double rx0 = label_w, rx1 = rx0 + pw - val_room, tx0 = label_w + pw + gap,
           tx1 = tx0 + pw - val_room;
    double top = 34, row = 24, bottom = top + row * (double)rows + 4, h = bottom + 24;

    put(o, "<figure>");
    svg_open(o, "chart chart-comp", h, "Calibration set composition: records and tokens per domain");
    comp_panel(o, &ar, "Records", rx0, rx1, top, bottom);
    comp_panel(o, &at, "Tokens", tx0, tx1, top, bottom);
    for (size_t i = 0; i < rows; i++) {
        double y = top + 5 + row * (double)i;
        int rest = i == shown;
        double rec = rest ? rec_rest : (double)r->composition[i].records;
        double tok = rest ? tok_rest : (double)r->composition[i].tokens;
        putf(o, "<text class=\"yl\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", label_w - 10,
             y + 11);
        if (rest)
            putf(o, "%zu others", n - shown);
        else
            esc_n(o, r->composition[i].name, LABEL_CP);
        put(o, "</text>");
        comp_bar(o, &ar, "rec", rx0, rx1, y, rec, rec_total);
        comp_bar(o, &at, "tok", tx0, tx1, y, tok, tok_total);
    }
    put(o, "</svg>\n<figcaption>Records and tokens of the calibration set per domain, "
           "with each domain's share of the total.</figcaption></figure>\n");
}

/* ---- page sections ------------------------------------------------------------------ */

/*
 * The style sheet.  Quiet on purpose: system fonts (nothing to fetch), grey
 * grid lines, colour only where it carries meaning (verdicts, the bands).
 * The verdict colours are a green/amber/red triple whose pill variants keep
 * text contrast above 4.5:1 on their tints; the verdict is also written as a
 * word everywhere, so the page still reads in greyscale or when printed
 * without colour.  print-color-adjust keeps the bands and bars when printing;
 * in print the table drops its scroll box and tightens so nine columns fit a
 * portrait page.
 */
static const char page_css[] =
    ":root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--grid:#e4e7eb;--panel:#f6f8fa;"
    "--ok:#2f8a4c;--warn:#c9920e;--bad:#cf3a3a;--ok-t:#e7f5ec;--warn-t:#fdf5dc;--bad-t:#fcebeb;"
    "--accent:#3d6fb6}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:#fff;color:var(--fg);font:15px/1.5 system-ui,-apple-system,"
    "\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,\"Noto Sans\",sans-serif;"
    "-webkit-print-color-adjust:exact;print-color-adjust:exact}\n"
    "main{max-width:1000px;margin:0 auto;padding:32px 28px 48px}\n"
    "h1{font-size:26px;line-height:1.25;margin:0 0 6px;font-weight:600}\n"
    "h2{font-size:18px;margin:40px 0 14px;padding-bottom:6px;border-bottom:1px solid var(--line);"
    "font-weight:600}\n"
    "h3{font-size:15px;margin:24px 0 6px;font-weight:600}\n"
    ".sub{color:var(--muted);margin:0}.muted{color:var(--muted)}\n"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:22px 0 0}\n"
    ".card{flex:1 1 170px;border:1px solid var(--line);border-radius:8px;padding:10px 14px;"
    "background:var(--panel)}\n"
    ".card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}\n"
    ".card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums;"
    "overflow-wrap:anywhere}\n"
    ".card .d{font-size:13px;color:var(--muted)}.card .v.name{font-size:17px;line-height:1.3;"
    "padding-top:3px}\n"
    ".cols{display:grid;grid-template-columns:1fr 1fr;gap:12px 36px}\n"
    "dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:0;font-size:14px}\n"
    "dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;overflow-wrap:anywhere;"
    "font-variant-numeric:tabular-nums}\n"
    "code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,\"Liberation Mono\","
    "monospace;font-size:12.5px}\n"
    ".wrap{overflow-x:auto}\n"
    "table{border-collapse:collapse;width:100%;font-size:14px;font-variant-numeric:tabular-nums}\n"
    "th,td{padding:6px 9px;border-bottom:1px solid var(--grid);text-align:left;"
    "vertical-align:baseline}\n"
    "th{font-weight:600;color:var(--muted);font-size:12px;border-bottom:1px solid var(--line);"
    "white-space:nowrap}\n"
    "td.n,th.n{text-align:right;white-space:nowrap}\n"
    "table.narrow{width:auto;min-width:50%}\n"
    "td .e{color:var(--muted);font-size:12px}\n"
    "tr.total td{font-weight:600;border-top:1px solid var(--line);border-bottom:0}\n"
    ".pill{display:inline-block;padding:0 8px;border-radius:10px;font-size:12px;font-weight:600;"
    "white-space:nowrap}\n"
    ".pill.v-ok{background:#dafbe1;color:#116329}.pill.v-warn{background:#fff1c2;color:#6e4a00}"
    ".pill.v-bad{background:#ffe3e1;color:#a0111f}.pill.v-none{background:var(--panel);"
    "color:var(--muted)}\n"
    ".notice{background:var(--panel);border-left:3px solid var(--accent);padding:8px 14px;"
    "margin:16px 0}\n"
    "figure{margin:22px 0 6px}figcaption{color:var(--muted);font-size:13px;margin-top:6px}\n"
    ".key{display:inline-block;margin-right:14px;white-space:nowrap;color:var(--fg)}\n"
    ".sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;"
    "vertical-align:-1px;border:1px solid rgba(0,0,0,.08)}\n"
    ".sw.p99{height:3px;vertical-align:3px;border:0;background:#2d333b}\n"
    "svg.chart{display:block;width:100%;height:auto;font-family:inherit}\n"
    "svg .grid{stroke:var(--grid);stroke-width:1}\n"
    "svg .zero{stroke:#6e7781;stroke-width:1.2}\n"
    "svg .thr{stroke:#8c959f;stroke-width:1;stroke-dasharray:4 3}\n"
    "svg text{fill:var(--fg);font-size:12px}\n"
    "svg .tick,svg .thr-l,svg .muted{fill:var(--muted);font-size:11px}\n"
    "svg .val{font-size:11px;font-variant-numeric:tabular-nums}\n"
    "svg .p99-l{fill:var(--muted);font-size:10px}\n"
    "svg .ptitle{font-weight:600;font-size:12px}\n"
    ".band-ok{fill:var(--ok-t);background:var(--ok-t)}"
    ".band-warn{fill:var(--warn-t);background:var(--warn-t)}"
    ".band-bad{fill:var(--bad-t);background:var(--bad-t)}\n"
    ".bar.v-ok{fill:var(--ok)}.bar.v-warn{fill:var(--warn)}.bar.v-bad{fill:var(--bad)}"
    ".bar.v-none{fill:#8c959f}\n"
    "td.v-ok{background:#dafbe1}td.v-warn{background:#fff1c2}td.v-bad{background:#ffe3e1}\n"
    ".bar.kl,.sw.kl{fill:var(--accent);background:var(--accent)}\n"
    "svg .p99{stroke:#2d333b;stroke-width:2.5}svg .whisker{stroke:#57606a;stroke-width:1}\n"
    ".bar.rec{fill:var(--accent)}.bar.tok{fill:#7fa6d9}\n"
    "footer{margin-top:44px;color:var(--muted);font-size:12px;border-top:1px solid var(--line);"
    "padding-top:10px}\n"
    "@media (max-width:720px){.cols{grid-template-columns:1fr}}\n"
    "@media print{body{font-size:10.5pt}main{max-width:none;padding:0}h2,h3{break-after:avoid}"
    "figure,tr,.card,dl.kv{break-inside:avoid}.wrap{overflow:visible}"
    "table{font-size:8.5pt}th,td{padding:3px 5px}th{font-size:7.5pt}td .e{display:block}}\n";

static void kv(html_out *o, const char *key, const char *value, int mono)
{
    putf(o, "<dt>%s</dt><dd%s>", key, mono ? " class=\"mono\"" : "");
    esc(o, value);
    put(o, "</dd>");
}

static void kv_count(html_out *o, const char *key, uint64_t v)
{
    char t[40];
    putf(o, "<dt>%s</dt><dd>%s</dd>", key, fcount(t, sizeof t, v));
}

static void head(html_out *o, const calib_report *r)
{
    put(o, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
           "<meta name=\"generator\" content=\"curate-calibrate\">\n<title>");
    esc(o, r->model_name);
    if (r->method) {
        put(o, " \xC2\xB7 ");
        esc(o, r->method);
        if (r->bits)
            putf(o, " %u-bit", r->bits);
        put(o, " \xE2\x80\x94 quantization report");
    } else {
        put(o, " \xE2\x80\x94 evaluation report");
    }
    put(o, "</title>\n<style>\n");
    put(o, page_css);
    put(o, "</style>\n</head>\n<body>\n<main>\n");
}

/* One line naming the scheme: "GPTQ, 4-bit, groups of 128, symmetric;
 * activations 8-bit kl per tensor". */
static void scheme_line(html_out *o, const calib_report *r)
{
    esc(o, r->method);
    if (r->bits)
        putf(o, ", %u-bit weights", r->bits);
    if (r->group_size)
        putf(o, ", groups of %u", r->group_size);
    else
        put(o, ", per output channel");
    put(o, r->symmetric ? ", symmetric" : ", asymmetric");
    if (r->act_bits) {
        putf(o, "; activations %u-bit ", r->act_bits);
        esc(o, r->act_method);
        put(o, " per ");
        esc(o, r->act_scope);
    }
}

static void title_block(html_out *o, const calib_report *r)
{
    put(o, "<header>\n<h1>");
    esc(o, r->model_name);
    if (r->method) {
        put(o, " \xC2\xB7 ");
        esc(o, r->method);
        if (r->bits)
            putf(o, " W%u", r->bits);
        if (r->act_bits)
            putf(o, "A%u", r->act_bits);
        put(o, "</h1>\n<p class=\"sub\">Quantization report: ");
        scheme_line(o, r);
        put(o, "</p>\n");
    } else {
        put(o, "</h1>\n<p class=\"sub\">Evaluation report: the original model only</p>\n");
    }
    put(o, "</header>\n");
}

/* The cards under the title answer "is this quantization good?" before any
 * table: the mean change (coloured by the same bands), the mean KL, how many
 * domains got each verdict, and the worst domain, since one bad domain is
 * the failure a narrow calibration set causes. */
static void summary_cards(html_out *o, const calib_report *r)
{
    char t[64], u[64];
    put(o, "<div class=\"cards\">\n");
    if (!r->method) {
        uint64_t tokens = 0;
        for (size_t i = 0; i < r->n_domains; i++)
            tokens += r->domains[i].tokens_scored;
        putf(o, "<div class=\"card\"><div class=\"k\">Domains</div><div class=\"v\">%zu</div></div>\n",
             r->n_domains);
        putf(o, "<div class=\"card\"><div class=\"k\">Tokens scored</div><div class=\"v\">%s</div></div>\n",
             fcount(t, sizeof t, tokens));
        putf(o, "<div class=\"card\"><div class=\"k\">Evaluation</div><div class=\"v\">%s</div>"
                "<div class=\"d\">%s tokens/s</div></div>\n",
             fseconds(t, sizeof t, r->seconds_eval), frate(u, sizeof u, r->eval_tokens_per_s));
        put(o, "</div>\n");
        return;
    }
    size_t count[4] = {0, 0, 0, 0};
    const calib_domain_row *worst = NULL;
    for (size_t i = 0; i < r->n_domains; i++) {
        const calib_domain_row *d = &r->domains[i];
        count[verdict_class(d)]++;
        if (isfinite(d->dppl_pct) && (!worst || fabs(d->dppl_pct) > fabs(worst->dppl_pct)))
            worst = d;
    }
    /* The overall verdict goes by the mean size of the change: signed
     * changes of opposite sign cancel in the plain mean. */
    vclass mv = verdict_of_change(r->mean_abs_dppl_pct);
    put(o, "<div class=\"card\"><div class=\"k\">Mean |PPL change|</div><div class=\"v\">");
    if (mv != V_NONE)
        putf(o, "<span class=\"pill %s\" style=\"font-size:inherit\">%s</span>", vclass_css[mv],
             fnum(t, sizeof t, r->mean_abs_dppl_pct, 2, 0, "%"));
    else
        put(o, fnum(t, sizeof t, r->mean_abs_dppl_pct, 2, 0, "%"));
    putf(o, "</div><div class=\"d\">over %zu domain%s; signed mean %s</div></div>\n", r->n_domains,
         r->n_domains == 1 ? "" : "s", fnum(u, sizeof u, r->mean_dppl_pct, 2, 1, "%"));
    putf(o, "<div class=\"card\"><div class=\"k\">Mean KL</div><div class=\"v\">%s</div>"
            "<div class=\"d\">nats per token</div></div>\n",
         fkl(t, sizeof t, r->mean_kl));
    putf(o, "<div class=\"card\"><div class=\"k\">Verdicts</div><div class=\"v\">%zu / %zu / %zu</div>"
            "<div class=\"d\">excellent / acceptable / needs work</div></div>\n",
         count[V_OK], count[V_WARN], count[V_BAD]);
    put(o, "<div class=\"card\"><div class=\"k\">Worst domain</div><div class=\"v name\">");
    if (worst) {
        esc_n(o, worst->name, 24);
        putf(o, "</div><div class=\"d\">%s</div></div>\n",
             fnum(t, sizeof t, worst->dppl_pct, 2, 1, "% PPL"));
    } else {
        put(o, "-</div></div>\n");
    }
    put(o, "</div>\n");
}

static void config_block(html_out *o, const calib_report *r)
{
    char t[64];
    put(o, "<div class=\"cols\">\n<section>\n<h2>Configuration</h2>\n<dl class=\"kv\">");
    put(o, "<dt>Model</dt><dd>");
    esc(o, r->model_name);
    put(o, "<br><span class=\"mono muted\">");
    esc(o, r->model_path);
    put(o, "</span></dd>");
    kv(o, "Tokenizer", r->tokenizer_path, 1);
    if (r->method) {
        kv(o, "Method", r->method, 0);
        putf(o, "<dt>Weight bits</dt><dd>%u</dd>", r->bits);
        if (r->group_size)
            putf(o, "<dt>Group size</dt><dd>%u</dd>", r->group_size);
        else
            put(o, "<dt>Group size</dt><dd>per output channel</dd>");
        putf(o, "<dt>Scheme</dt><dd>%s</dd>", r->symmetric ? "symmetric" : "asymmetric");
        if (r->act_bits) {
            putf(o, "<dt>Activations</dt><dd>%u-bit, ", r->act_bits);
            esc(o, r->act_method);
            put(o, ", per ");
            esc(o, r->act_scope);
            put(o, "</dd>");
        } else {
            put(o, "<dt>Activations</dt><dd>not quantized</dd>");
        }
    } else {
        put(o, "<dt>Method</dt><dd>none (evaluation only)</dd>");
    }
    putf(o, "<dt>Context</dt><dd>%u tokens</dd>", r->ctx);
    kv(o, "PPL mode", r->ppl_mode, 0);
    putf(o, "<dt>Threads</dt><dd>%u</dd>", r->threads);
    kv(o, "Versions", r->tool_version, 1);
    put(o, "</dl>\n</section>\n");

    put(o, "<section>\n<h2>Calibration set</h2>\n");
    if (!r->calib_path && r->calib_records == 0 && r->n_composition == 0) {
        put(o, "<p class=\"muted\">No calibration set was used.</p>\n</section>\n</div>\n");
        return;
    }
    put(o, "<dl class=\"kv\">");
    kv(o, "File", r->calib_path, 1);
    kv(o, "SHA-256", r->calib_sha256, 1);
    kv_count(o, "Records", r->calib_records);
    kv_count(o, "Tokens used", r->calib_tokens_used);
    kv_count(o, "Tokens truncated", r->calib_tokens_truncated);
    kv_count(o, "Tokens dropped", r->calib_tokens_dropped);
    kv(o, "Packing", r->pack, 0);
    putf(o, "<dt>Seed</dt><dd>%s</dd>", fcount(t, sizeof t, r->seed));
    put(o, "</dl>\n</section>\n</div>\n");
}

/* "12.346 ± 0.123" with the error in small grey type. */
static void ppl_cell(html_out *o, double ppl, double err)
{
    char a[48], b[48];
    putf(o, "<td class=\"n\">%s", fppl(a, sizeof a, ppl));
    if (!isnan(ppl) && !isnan(err))
        putf(o, " <span class=\"e\">\xC2\xB1 %s</span>", fppl(b, sizeof b, err));
    put(o, "</td>");
}

static void domain_table(html_out *o, const calib_report *r)
{
    char t[48];
    int q = r->method != NULL;
    put(o, "<h2>Results by domain</h2>\n");
    if (!q)
        put(o, "<p class=\"notice\">No quantization ran: this page shows the perplexity of the "
               "original model only.</p>\n");
    if (r->n_domains == 0) {
        put(o, "<p class=\"muted\">No evaluation domain was scored.</p>\n");
        return;
    }
    put(o, q ? "<div class=\"wrap\"><table>\n" : "<div class=\"wrap\"><table class=\"narrow\">\n");
    put(o, "<thead><tr><th>Domain</th><th class=\"n\">Tokens</th>"
           "<th class=\"n\">PPL original</th>");
    if (q)
        put(o, "<th class=\"n\">PPL quantized</th><th class=\"n\">Change</th>"
               "<th class=\"n\">Mean KL</th><th class=\"n\">p99 KL</th><th class=\"n\">Top-1</th>"
               "<th>Verdict</th>");
    put(o, "</tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < r->n_domains; i++) {
        const calib_domain_row *d = &r->domains[i];
        /* the file a domain came from, as a tooltip on its name */
        if (d->source) {
            put(o, "<tr><td title=\"");
            esc(o, d->source);
            put(o, "\">");
        } else {
            put(o, "<tr><td>");
        }
        esc(o, d->name);
        putf(o, "</td><td class=\"n\">%s</td>", fcount(t, sizeof t, d->tokens_scored));
        ppl_cell(o, d->ppl_orig, d->ppl_orig_err);
        if (q) {
            ppl_cell(o, d->ppl_quant, d->ppl_quant_err);
            putf(o, "<td class=\"n\">%s</td>", fnum(t, sizeof t, d->dppl_pct, 2, 1, "%"));
            putf(o, "<td class=\"n\">%s</td>", fkl(t, sizeof t, d->kl_mean));
            putf(o, "<td class=\"n\">%s</td>", fkl(t, sizeof t, d->kl_p99));
            putf(o, "<td class=\"n\">%s</td><td>", fnum(t, sizeof t, 100 * d->top1, 1, 0, "%"));
            verdict_pill(o, d);
            put(o, "</td>");
        }
        put(o, "</tr>\n");
    }
    /* the mean is the last body row: a tfoot would repeat on every printed page */
    if (q) {
        put(o, "<tr class=\"total\"><td colspan=\"4\">Mean over domains</td>");
        putf(o, "<td class=\"n\">%s</td>", fnum(t, sizeof t, r->mean_dppl_pct, 2, 1, "%"));
        putf(o, "<td class=\"n\">%s</td><td></td><td></td><td></td></tr>\n",
             fkl(t, sizeof t, r->mean_kl));
    }
    put(o, "</tbody>\n</table></div>\n");
    if (q) {
        put(o, "<h3>Change in perplexity</h3>\n");
        chart_dppl(o, r);
        put(o, "<h3>KL divergence</h3>\n");
        chart_kl(o, r);
    }
}

/* The --matrix study: dPPL% and KL of each calibration source on each
 * evaluation domain, coloured by the verdict of the change. */
static void matrix_block(html_out *o, const calib_report *r)
{
    if (r->n_matrix == 0 || !r->matrix)
        return;
    char t[48], k[48];
    put(o, "<h2>Calibration matrix</h2>\n<p class=\"muted\">Rows: the calibration records "
           "used (one domain of the set alone, or all of it); columns: the evaluation domain; "
           "cells: change in PPL and mean KL.</p>\n");
    put(o, "<div class=\"wrap\"><table>\n<thead><tr><th>Calibrated on</th>"
           "<th class=\"n\">Records</th><th class=\"n\">Tokens</th>");
    for (size_t j = 0; j < r->n_domains; j++) {
        put(o, "<th class=\"n\">");
        esc(o, r->domains[j].name);
        put(o, "</th>");
    }
    put(o, "</tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < r->n_matrix; i++) {
        const calib_matrix_row *m = &r->matrix[i];
        put(o, "<tr><td>");
        esc(o, m->calib);
        putf(o, "</td><td class=\"n\">%s</td>", fcount(t, sizeof t, m->records));
        putf(o, "<td class=\"n\">%s</td>", fcount(t, sizeof t, m->tokens));
        for (size_t j = 0; j < r->n_domains; j++) {
            double d = m->dppl_pct ? m->dppl_pct[j] : NAN;
            double kl = m->kl_mean ? m->kl_mean[j] : NAN;
            putf(o, "<td class=\"n %s\">%s <span class=\"e\">%s</span></td>",
                 vclass_css[verdict_of_change(d)], fnum(t, sizeof t, d, 2, 1, "%"),
                 fkl(k, sizeof k, kl));
        }
        put(o, "</tr>\n");
    }
    put(o, "</tbody>\n</table></div>\n");
}

static void composition_block(html_out *o, const calib_report *r)
{
    if (r->n_composition == 0)
        return;
    put(o, "<h2>Calibration set composition</h2>\n");
    chart_composition(o, r);
}

static void notes_block(html_out *o, const calib_report *r)
{
    if (!r->method && r->n_notes == 0)
        return;
    put(o, "<h2>Tensor notes</h2>\n");
    if (r->n_notes == 0) {
        put(o, "<p class=\"muted\">Every quantized tensor was handled the regular way: none "
               "excluded, none with a shorter last group.</p>\n");
        return;
    }
    put(o, "<div class=\"wrap\"><table>\n<thead><tr><th>Tensor</th><th>Note</th></tr></thead>\n<tbody>\n");
    for (size_t i = 0; i < r->n_notes; i++) {
        put(o, "<tr><td class=\"mono\">");
        esc(o, r->notes[i].name);
        put(o, "</td><td>");
        esc(o, r->notes[i].note);
        put(o, "</td></tr>\n");
    }
    put(o, "</tbody></table></div>\n");
}

static void timing_block(html_out *o, const calib_report *r)
{
    char t[64];
    static const char *const names[3] = {"Calibration pass", "Quantization", "Evaluation"};
    const double parts[3] = {r->seconds_calibrate, r->seconds_quantize, r->seconds_eval};
    double total = 0;
    put(o, "<h2>Timing</h2>\n<dl class=\"kv\">");
    for (int i = 0; i < 3; i++) {
        int known = isfinite(parts[i]) && parts[i] >= 0;
        /* an evaluation-only run shows a stage only if it ran */
        if (!r->method && i < 2 && !(known && parts[i] > 0))
            continue;
        putf(o, "<dt>%s</dt><dd>%s</dd>", names[i], fseconds(t, sizeof t, parts[i]));
        if (known)
            total += parts[i];
    }
    putf(o, "<dt>Evaluation speed</dt><dd>%s tokens/s</dd>",
         frate(t, sizeof t, r->eval_tokens_per_s));
    putf(o, "<dt>Total</dt><dd>%s</dd>", fseconds(t, sizeof t, total));
    put(o, "</dl>\n");
}

static void footer(html_out *o, const calib_report *r)
{
    put(o, "<footer>Written by curate-calibrate (");
    esc(o, r->tool_version);
    put(o, "). Perplexities are the exponential of the mean negative log-likelihood on the "
           "same tokens for both models; \xC2\xB1 is one standard error.</footer>\n"
           "</main>\n</body>\n</html>\n");
}

/* ---- writing the file ---------------------------------------------------------- */

static curate_status write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return CURATE_ERR_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return CURATE_OK;
}

/*
 * data into path through "<path>.tmp.XXXXXX" and rename(), so a reader never
 * sees half a page and a failed run leaves the old page in place.  A path
 * that exists and is not a regular file (/dev/stdout) is written directly.
 */
static curate_status write_atomic(const char *path, const char *data, size_t n,
                                  curate_error *err)
{
    curate_error_at(err, path, 0);
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        FILE *f = fopen(path, "wb");
        if (!f)
            return curate_error_set(err, CURATE_ERR_IO, "cannot open: %s", strerror(errno));
        size_t w = fwrite(data, 1, n, f);
        int e = errno;
        if (fclose(f) != 0 || w != n)
            return curate_error_set(err, CURATE_ERR_IO, "write failed: %s",
                                    strerror(w != n ? e : errno));
        return CURATE_OK;
    }
    size_t plen = strlen(path);
    if (plen > SIZE_MAX - 16)
        return curate_error_set(err, CURATE_ERR_RANGE, "path too long");
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        curate_status s = curate_error_set(err, CURATE_ERR_IO,
                                           "cannot create a temporary file next to it: %s",
                                           strerror(errno));
        free(tmp);
        return s;
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; a report is for reading */
    curate_status s = write_all(fd, data, n);
    if (s)
        curate_error_set(err, CURATE_ERR_IO, "write failed: %s", strerror(errno));
    if (close(fd) != 0 && !s)
        s = curate_error_set(err, CURATE_ERR_IO, "write failed: %s", strerror(errno));
    if (!s && rename(tmp, path) != 0)
        s = curate_error_set(err, CURATE_ERR_IO, "cannot rename the temporary file: %s",
                             strerror(errno));
    if (s)
        unlink(tmp);
    free(tmp);
    return s;
}

curate_status calib_report_write_html(const calib_report *r, const char *path, curate_error *err)
{
    if (!r || !path || !*path || (r->n_domains && !r->domains) ||
        (r->n_composition && !r->composition) || (r->n_notes && !r->notes) ||
        (r->n_matrix && !r->matrix))
        return curate_error_set(err, CURATE_ERR_INVALID, "calib_report_write_html: bad arguments");
    html_out o;
    curate_buf_init(&o.b);
    o.st = CURATE_OK;
    head(&o, r);
    title_block(&o, r);
    summary_cards(&o, r);
    config_block(&o, r);
    domain_table(&o, r);
    matrix_block(&o, r);
    composition_block(&o, r);
    notes_block(&o, r);
    timing_block(&o, r);
    footer(&o, r);
    curate_status s = o.st;
    if (s) {
        curate_error_at(err, path, 0);
        curate_error_set(err, s, s == CURATE_ERR_NOMEM ? "out of memory" : "cannot format the page");
    } else {
        s = write_atomic(path, o.b.data, o.b.len, err);
    }
    curate_buf_release(&o.b);
    return s;
}
