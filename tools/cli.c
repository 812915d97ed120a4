/*
 * cli.c - what every curate-* program shares: option tables that drive both
 * getopt_long and --help, messages, checked number parsing, and the record
 * loop with its bookkeeping (outputs, rejects, stats, progress).
 */
#include "cli.h"

#include "curate/chat.h"
#include "curate/text.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *cli_progname = "curate";
static const cli_tool *g_tool;

/* The shared options, filtered by the tool's CLI_COMMON_* bits. */
static const struct {
    cli_option opt;
    unsigned bit;
} common_options[] = {
    {{"output", 'o', CLI_REQ_ARG, "FILE", "write records to FILE (atomically: a temporary\nfile renamed at the end), not standard output", CLI_OPT_OUTPUT}, CLI_COMMON_OUTPUT},
    {{"rejects", 0, CLI_REQ_ARG, "FILE", "write every dropped record to FILE with a\n\"_reject\" reason", CLI_OPT_REJECTS}, CLI_COMMON_FILTER},
    {{"on-error", 0, CLI_REQ_ARG, "MODE", "bad input: 'fail' (default: message, exit 1)\nor 'skip' (the record goes to the rejects file)", CLI_OPT_ON_ERROR}, CLI_COMMON_FILTER},
    {{"stats", 0, CLI_REQ_ARG, "FILE", "write a JSON summary to FILE: records and bytes\nread, written, rejected by reason; time; memory", CLI_OPT_STATS}, CLI_COMMON_STATS},
    {{"field", 0, CLI_REQ_ARG, "NAME", "the text field (default: text)", CLI_OPT_FIELD}, CLI_COMMON_RECORDS},
    {{"max-record-bytes", 0, CLI_REQ_ARG, "N", "longest accepted record line (default 64M;\nK, M, G suffixes)", CLI_OPT_MAX_RECORD}, CLI_COMMON_RECORDS},
    {{"template", 0, CLI_REQ_ARG, "NAME", "render chat records (\"messages\", no text\nfield) as plain (default), chatml, llama2,\nllama3 or gemma", CLI_OPT_TEMPLATE}, CLI_COMMON_RECORDS},
    {{"quiet", 'q', CLI_NO_ARG, NULL, "no progress or summary on standard error", CLI_OPT_QUIET}, 0},
    {{"help", 'h', CLI_NO_ARG, NULL, "show this help and exit", CLI_OPT_HELP}, 0},
    {{"version", 'V', CLI_NO_ARG, NULL, "show versions of the tool, libcurate and\nits dependencies", CLI_OPT_VERSION}, 0},
};
#define N_COMMON (sizeof common_options / sizeof common_options[0])

void cli_begin(const cli_tool *tool, int argc, char **argv)
{
    (void)argc;
    g_tool = tool;
    cli_progname = tool->name;
    (void)argv;
}

/* ---- messages ------------------------------------------------------------ */

static void vmsg(const char *prefix, const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "%s: %s", cli_progname, prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("warning: ", fmt, ap);
    va_end(ap);
}

void cli_die(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
    exit(status);
}

void cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg("", fmt, ap);
    va_end(ap);
    if (g_tool)
        fprintf(stderr, "Usage: %s %s\n", g_tool->name, g_tool->synopsis);
    fprintf(stderr, "Try '%s --help' for more information.\n", cli_progname);
    exit(CLI_EXIT_USAGE);
}

void cli_error_lib(const curate_error *err)
{
    char buf[1200];
    curate_error_format(err, buf, sizeof buf);
    cli_error("%s", buf);
}

/* ---- options --------------------------------------------------------------- */

static size_t count_tool_options(void)
{
    size_t n = 0;
    while (g_tool->options && g_tool->options[n].name)
        n++;
    return n;
}

static int common_wanted(size_t i)
{
    unsigned bit = common_options[i].bit;
    return bit == 0 || (g_tool->common & bit);
}

static void print_option(FILE *f, const cli_option *o)
{
    char head[96];
    int n;
    if (o->short_opt)
        n = snprintf(head, sizeof head, "  -%c, --%s%s%s", o->short_opt, o->name,
                     o->arg ? " " : "", o->arg ? o->metavar : "");
    else
        n = snprintf(head, sizeof head, "      --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->metavar : "");
    fputs(head, f);
    const int col = 30;
    if (n >= col - 1) {
        fputc('\n', f);
        n = 0;
    }
    /* Help text: continuation lines are indented to the help column. */
    const char *h = o->help ? o->help : "";
    fprintf(f, "%*s", col - n, "");
    for (; *h; h++) {
        fputc(*h, f);
        if (*h == '\n')
            fprintf(f, "%*s", col, "");
    }
    fputc('\n', f);
}

void cli_print_help(FILE *f)
{
    fprintf(f, "Usage: %s %s\n", g_tool->name, g_tool->synopsis);
    fprintf(f, "%s\n", g_tool->summary);
    if (g_tool->description)
        fprintf(f, "\n%s\n", g_tool->description);
    fprintf(f, "\nOptions:\n");
    size_t n = count_tool_options();
    for (size_t i = 0; i < n; i++)
        print_option(f, &g_tool->options[i]);
    fprintf(f, "\nCommon options:\n");
    for (size_t i = 0; i < N_COMMON; i++)
        if (common_wanted(i))
            print_option(f, &common_options[i].opt);
    if (g_tool->footer)
        fprintf(f, "\n%s\n", g_tool->footer);
    fprintf(f, "\nExit status: 0 success; 1 bad input (with --on-error=fail) or a failed check;\n"
               "2 usage error; 3 input/output error; 4 out of memory or internal error.\n"
               "See %s(1) for details.\n", g_tool->name);
}

void cli_print_version(FILE *f)
{
    fprintf(f, "%s (curate) %s\n%s\n", g_tool->name, curate_version(), curate_version_string());
}

int cli_getopt(int argc, char **argv, const char **arg, int *optind_out)
{
    static struct option *longopts;
    static char shortopts[128];
    static int *ids;
    static int short_ids[256];
    if (!longopts) {
        size_t nt = count_tool_options();
        longopts = calloc(nt + N_COMMON + 1, sizeof *longopts);
        ids = calloc(nt + N_COMMON + 1, sizeof *ids);
        if (!longopts || !ids)
            cli_die(CLI_EXIT_INTERNAL, "out of memory");
        size_t k = 0, s = 0;
        shortopts[s++] = ':'; /* report a missing value as ':' */
        for (size_t i = 0; i < nt + N_COMMON; i++) {
            const cli_option *o;
            if (i < nt) {
                o = &g_tool->options[i];
            } else {
                if (!common_wanted(i - nt))
                    continue;
                o = &common_options[i - nt].opt;
            }
            longopts[k].name = o->name;
            longopts[k].has_arg = o->arg ? required_argument : no_argument;
            longopts[k].flag = NULL;
            longopts[k].val = 0x10000 + (int)k;
            ids[k] = o->id;
            if (o->short_opt && s + 3 < sizeof shortopts) {
                short_ids[(unsigned char)o->short_opt] = o->id;
                shortopts[s++] = (char)o->short_opt;
                if (o->arg)
                    shortopts[s++] = ':';
            }
            k++;
        }
        shortopts[s] = 0;
    }
    opterr = 0;
    int longindex = -1;
    int c = getopt_long(argc, argv, shortopts, longopts, &longindex);
    *optind_out = optind;
    *arg = optarg;
    if (c == -1)
        return -1;
    if (c == '?') {
        if (optopt && optopt < 0x10000)
            cli_usage_error("unknown option '-%c'", optopt);
        cli_usage_error("unknown option '%s'", argv[optind - 1]);
    }
    if (c == ':') {
        if (optopt >= 0x10000)
            cli_usage_error("option '--%s' needs a value", longopts[optopt - 0x10000].name);
        if (optopt)
            cli_usage_error("option '-%c' needs a value", optopt);
        cli_usage_error("option '%s' needs a value", argv[optind - 1]);
    }
    int id;
    if (c >= 0x10000)
        id = ids[c - 0x10000];
    else if (c > 0 && c < 256 && short_ids[c])
        id = short_ids[c];
    else
        cli_usage_error("unknown option '-%c'", c);
    if (id == CLI_OPT_HELP) {
        cli_print_help(stdout);
        if (fclose(stdout) != 0)
            exit(CLI_EXIT_IO);
        exit(CLI_EXIT_OK);
    }
    if (id == CLI_OPT_VERSION) {
        cli_print_version(stdout);
        if (fclose(stdout) != 0)
            exit(CLI_EXIT_IO);
        exit(CLI_EXIT_OK);
    }
    return id;
}

/* ---- parsing ----------------------------------------------------------------- */

uint64_t cli_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, int allow_suffix)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        cli_usage_error("%s: '%s' is not a whole number", opt, s ? s : "");
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno == ERANGE)
        cli_usage_error("%s: '%s' is not a whole number in range", opt, s);
    uint64_t mult = 1;
    if (*end && allow_suffix && end[1] == 0) {
        switch (*end) {
        case 'k': case 'K': mult = 1ull << 10; end++; break;
        case 'm': case 'M': mult = 1ull << 20; end++; break;
        case 'g': case 'G': mult = 1ull << 30; end++; break;
        default: break;
        }
    }
    if (*end)
        cli_usage_error("%s: '%s' is not a whole number", opt, s);
    if (v > UINT64_MAX / mult)
        cli_usage_error("%s: '%s' is too large", opt, s);
    uint64_t r = (uint64_t)v * mult;
    if (r < min || r > max)
        cli_usage_error("%s: %s is out of range (%llu to %llu)", opt, s, (unsigned long long)min,
                        (unsigned long long)max);
    return r;
}

double cli_parse_double(const char *opt, const char *s, double min, double max)
{
    if (!s || !*s || *s == ' ')
        cli_usage_error("%s: '%s' is not a number", opt, s ? s : "");
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || isnan(v))
        cli_usage_error("%s: '%s' is not a number", opt, s);
    if (v < min || v > max)
        cli_usage_error("%s: %s is out of range (%g to %g)", opt, s, min, max);
    return v;
}

int cli_parse_choice(const char *opt, const char *s, const char *const *choices)
{
    for (int i = 0; choices[i]; i++)
        if (strcmp(s, choices[i]) == 0)
            return i;
    char list[256] = "";
    size_t n = 0;
    for (int i = 0; choices[i]; i++) {
        int k = snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", choices[i]);
        if (k < 0 || (size_t)k >= sizeof list - n)
            break;
        n += (size_t)k;
    }
    cli_usage_error("%s: invalid value '%s' (choose from %s)", opt, s, list);
}

size_t cli_split_list(const char *opt, char *s, char **out, size_t max)
{
    size_t n = 0;
    for (char *p = s;;) {
        char *c = strchr(p, ',');
        if (c)
            *c = 0;
        if (!*p)
            cli_usage_error("%s: empty item in the list", opt);
        if (n == max)
            cli_usage_error("%s: at most %zu items", opt, max);
        out[n++] = p;
        if (!c)
            break;
        p = c + 1;
    }
    return n;
}

/* ---- time and memory ---------------------------------------------------------- */

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t cli_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)ru.ru_maxrss * 1024u;
}

/* ---- the record loop ------------------------------------------------------------ */

void cli_run_init(cli_run *run)
{
    memset(run, 0, sizeof *run);
    run->field = "text";
    run->max_record_bytes = CURATE_DEFAULT_MAX_RECORD_BYTES;
    curate_record_init(&run->rec);
    curate_buf_init(&run->text);
    curate_buf_init(&run->extra_stats);
    curate_buf_init(&run->outbuf);
}

int cli_run_option(cli_run *run, int id, const char *arg)
{
    static const char *const on_error[] = {"fail", "skip", NULL};
    switch (id) {
    case CLI_OPT_OUTPUT: run->output_path = arg; return 1;
    case CLI_OPT_STATS: run->stats_path = arg; return 1;
    case CLI_OPT_REJECTS: run->rejects_path = arg; return 1;
    case CLI_OPT_ON_ERROR: run->on_error_skip = cli_parse_choice("--on-error", arg, on_error); return 1;
    case CLI_OPT_FIELD:
        if (!*arg)
            cli_usage_error("--field: the name must not be empty");
        run->field = arg;
        return 1;
    case CLI_OPT_MAX_RECORD:
        run->max_record_bytes = (size_t)cli_parse_u64("--max-record-bytes", arg, 16,
                                                      (uint64_t)1 << 40, 1);
        return 1;
    case CLI_OPT_QUIET: run->quiet = 1; return 1;
    case CLI_OPT_TEMPLATE: {
        curate_chat_template t;
        if (curate_chat_template_parse(arg, &t, NULL) != CURATE_OK)
            cli_usage_error("--template: invalid value '%s' (choose from %s)", arg,
                            curate_chat_template_names());
        run->chat_template = (int)t;
        return 1;
    }
    default: return 0;
    }
}

/* Create "<path>.tmp.XXXXXX" beside path and open it for writing.  A
 * path that exists and is not a regular file (/dev/stdout, a FIFO) is
 * opened directly: there is nothing to rename over. */
static FILE *open_temp(const char *path, char **tmp_out)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        FILE *f = fopen(path, "wb");
        if (!f)
            cli_die(CLI_EXIT_IO, "%s: cannot open: %s", path, strerror(errno));
        *tmp_out = NULL;
        return f;
    }
    size_t n = strlen(path);
    char *tmp = malloc(n + 16);
    if (!tmp)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        cli_die(CLI_EXIT_IO, "%s: cannot create: %s", path, strerror(e));
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        cli_die(CLI_EXIT_IO, "%s: cannot open: %s", path, strerror(e));
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    *tmp_out = tmp;
    return f;
}

static char *default_input[] = {(char *)"-"};

void cli_run_start(cli_run *run, int n_files, char **files)
{
    if (n_files <= 0) {
        run->inputs = default_input;
        run->n_inputs = 1;
    } else {
        run->inputs = files;
        run->n_inputs = (size_t)n_files;
    }
    size_t n_stdin = 0;
    for (size_t i = 0; i < run->n_inputs; i++)
        n_stdin += strcmp(run->inputs[i], "-") == 0;
    if (n_stdin > 1)
        cli_usage_error("standard input ('-') can be read only once");
    if (run->output_path && strcmp(run->output_path, "-") == 0)
        run->output_path = NULL;
    if (run->output_path) {
        run->out = open_temp(run->output_path, &run->out_tmp);
    } else {
        run->out = stdout;
        setvbuf(stdout, NULL, _IOFBF, 1 << 20);
    }
    if (run->rejects_path)
        run->rej = open_temp(run->rejects_path, &run->rej_tmp);
    run->tty = isatty(STDERR_FILENO);
    run->t_start = cli_now();
    run->t_progress = run->t_start;
}

void cli_run_abort(cli_run *run, int status)
{
    if (run->out_tmp) {
        fclose(run->out);
        unlink(run->out_tmp);
    }
    if (run->rej_tmp) {
        fclose(run->rej);
        unlink(run->rej_tmp);
    }
    if (run->progress_shown)
        fputs("\r\033[K", stderr);
    exit(status);
}

static void write_failed(cli_run *run, FILE *f)
{
    int e = errno;
    if (f == stdout && e == EPIPE)
        cli_run_abort(run, CLI_EXIT_IO); /* reader went away: stay quiet */
    cli_error("%s: write error: %s",
              f == stdout ? "standard output" : f == run->rej ? run->rejects_path : run->output_path,
              strerror(e));
    cli_run_abort(run, CLI_EXIT_IO);
}

static void put_line(cli_run *run, FILE *f, const char *s, size_t n)
{
    if ((n && fwrite(s, 1, n, f) != n) || putc('\n', f) == EOF)
        write_failed(run, f);
}

static void progress(cli_run *run)
{
    double now = cli_now();
    if (now - run->t_progress < 0.5)
        return;
    run->t_progress = now;
    uint64_t done = run->bytes_done_before + (run->reader ? curate_reader_bytes(run->reader) : 0);
    double mb = (double)done / 1e6;
    double rate = mb / (now - run->t_start);
    uint64_t size = run->reader ? curate_reader_size(run->reader) : 0;
    if (size && run->n_inputs == 1)
        fprintf(stderr, "\r%s: %.1f MB (%.0f%%), %llu records, %.0f MB/s\033[K", cli_progname, mb,
                100.0 * (double)curate_reader_bytes(run->reader) / (double)size,
                (unsigned long long)run->records_read, rate);
    else
        fprintf(stderr, "\r%s: %.1f MB, %llu records, %.0f MB/s\033[K", cli_progname, mb,
                (unsigned long long)run->records_read, rate);
    run->progress_shown = 1;
}

static void count_reason(cli_run *run, const char *reason)
{
    for (size_t i = 0; i < run->n_reasons; i++)
        if (strcmp(run->reasons[i].name, reason) == 0) {
            run->reasons[i].count++;
            return;
        }
    if (run->n_reasons < sizeof run->reasons / sizeof run->reasons[0]) {
        snprintf(run->reasons[run->n_reasons].name, sizeof run->reasons[0].name, "%s", reason);
        run->reasons[run->n_reasons++].count = 1;
    } else {
        /* Too many distinct reasons: fold the rest into "other". */
        cli_reason *last = &run->reasons[run->n_reasons - 1];
        snprintf(last->name, sizeof last->name, "other");
        last->count++;
    }
}

void cli_run_count_reason(cli_run *run, const char *reason)
{
    count_reason(run, reason);
}


int cli_run_next(cli_run *run)
{
    for (;;) {
        if (!run->reader) {
            if (run->input_index >= run->n_inputs)
                return 0;
            curate_error err;
            curate_error_clear(&err);
            curate_reader_opts ro = {run->max_record_bytes, 0};
            run->reader = curate_reader_open(run->inputs[run->input_index], &ro, &err);
            if (!run->reader) {
                cli_error_lib(&err);
                cli_run_abort(run, CLI_EXIT_IO);
            }
            run->input_name = curate_reader_name(run->reader);
        }
        curate_error err;
        curate_error_clear(&err);
        run->parsed_ = 0;
        curate_status st = curate_reader_next(run->reader, &run->line, &err);
        if (st == CURATE_OK || st == CURATE_ERR_TOO_LARGE) {
            run->records_read++;
            if (run->tty && !run->quiet && (run->records_read & 1023) == 0)
                progress(run);
            if (st == CURATE_OK)
                return 1;
            /* A line past the limit: it was skipped unread, so only a
             * placeholder can go to rejects. */
            if (!run->on_error_skip) {
                cli_error_lib(&err);
                cli_run_abort(run, CLI_EXIT_DATA);
            }
            run->records_rejected++;
            run->bytes_rejected += run->line.len + 1;
            count_reason(run, "too_large");
            if (run->rej) {
                curate_buf *b = &run->outbuf;
                curate_buf_reset(b);
                curate_buf_append_str(b, "{\"_reject\":\"too_large\",\"_file\":");
                curate_buf_append_json_string(b, run->input_name, strlen(run->input_name));
                curate_buf_printf(b, ",\"_line\":%llu,\"_bytes\":%llu}",
                                  (unsigned long long)run->line.lineno,
                                  (unsigned long long)run->line.len);
                put_line(run, run->rej, b->data, b->len);
            }
            continue;
        }
        if (st == CURATE_END) {
            run->bytes_done_before += curate_reader_bytes(run->reader);
            run->bytes_read += curate_reader_bytes(run->reader);
            curate_reader_free(run->reader);
            run->reader = NULL;
            run->input_index++;
            continue;
        }
        cli_error_lib(&err);
        cli_run_abort(run, st == CURATE_ERR_NOMEM ? CLI_EXIT_INTERNAL : CLI_EXIT_IO);
    }
}

int cli_run_bad(cli_run *run, const char *reason, const curate_error *err)
{
    if (!run->on_error_skip) {
        cli_error_lib(err);
        cli_run_abort(run, CLI_EXIT_DATA);
    }
    char msg[1100];
    curate_buf extra;
    curate_buf_init(&extra);
    snprintf(msg, sizeof msg, "%s%s", err->message[0] ? err->message : curate_strerror(err->code), "");
    curate_buf_append_str(&extra, "\"_error\":");
    curate_buf_append_json_string(&extra, msg, strlen(msg));
    if (err->has_offset)
        curate_buf_printf(&extra, ",\"_offset\":%llu", (unsigned long long)err->offset);
    cli_run_reject(run, reason, extra.data);
    curate_buf_release(&extra);
    return 0;
}

int cli_run_parse(cli_run *run)
{
    curate_error err;
    curate_error_clear(&err);
    curate_status st = curate_record_parse(&run->rec, run->line.data, run->line.len, &err);
    if (st == CURATE_OK) {
        run->parsed_ = 1;
        return 1;
    }
    if (st == CURATE_ERR_NOMEM)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    curate_error_at(&err, run->input_name, run->line.lineno);
    const char *reason = st == CURATE_ERR_NOT_OBJECT ? "not_object"
                         : st == CURATE_ERR_DEPTH    ? "too_deep"
                                                     : "invalid_json";
    return cli_run_bad(run, reason, &err);
}

int cli_run_text(cli_run *run)
{
    curate_error err;
    curate_error_clear(&err);
    run->text_from_messages = 0;
    curate_status st = curate_record_get_string(&run->rec, run->field, &run->text, &err);
    if (st == CURATE_OK)
        return 1;
    if (st == CURATE_ERR_NO_FIELD && curate_record_get(&run->rec, "messages")) {
        curate_error_clear(&err);
        st = curate_chat_render(&run->rec, "messages", (curate_chat_template)run->chat_template,
                                &run->text, &err);
        if (st == CURATE_OK) {
            run->text_from_messages = 1;
            return 1;
        }
        if (st == CURATE_ERR_NOMEM)
            cli_die(CLI_EXIT_INTERNAL, "out of memory");
        curate_error_at(&err, run->input_name, run->line.lineno);
        return cli_run_bad(run, "bad_messages", &err);
    }
    if (st == CURATE_ERR_NOMEM)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    curate_error_at(&err, run->input_name, run->line.lineno);
    /* A string that does not decode (a lone surrogate) is valid RFC 8259
     * grammar but poison for most JSON tools downstream: keep the line
     * as an escaped "_raw" string in the rejects file instead of as is. */
    if (st == CURATE_ERR_JSON)
        run->parsed_ = 0;
    const char *reason = st == CURATE_ERR_NO_FIELD     ? "no_field"
                         : st == CURATE_ERR_FIELD_TYPE ? "field_type"
                                                       : "invalid_json";
    return cli_run_bad(run, reason, &err);
}

void cli_run_write_line(cli_run *run, const char *s, size_t n)
{
    put_line(run, run->out, s, n);
    run->records_written++;
    run->bytes_written += n + 1;
}

void cli_run_write(cli_run *run)
{
    if (run->rec.n_edits == 0) {
        cli_run_write_line(run, run->line.data, run->line.len);
        return;
    }
    curate_buf_reset(&run->outbuf);
    if (curate_record_render(&run->rec, &run->outbuf) != CURATE_OK)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    cli_run_write_line(run, run->outbuf.data, run->outbuf.len);
}

void cli_run_reject(cli_run *run, const char *reason, const char *extra_members)
{
    run->records_rejected++;
    run->bytes_rejected += run->line.len + 1;
    count_reason(run, reason);
    if (!run->rej)
        return;
    curate_buf *b = &run->outbuf;
    curate_buf_reset(b);
    const char *L = run->line.data;
    int ok = 1;
    /* Rejects must stay valid JSON (RFC 8259 text is UTF-8): a line with
     * invalid bytes goes in as an escaped "_raw" string instead. */
    if (run->parsed_ && curate_utf8_check(L, run->line.len) != run->line.len)
        run->parsed_ = 0;
    if (run->parsed_) {
        /* The original record, untouched, with the reject members added. */
        const curate_record *r = &run->rec;
        size_t tail = r->n_members ? r->members[r->n_members - 1].end : r->close;
        ok &= curate_buf_append(b, L, tail) == CURATE_OK;
        if (r->n_members)
            ok &= curate_buf_append_char(b, ',') == CURATE_OK;
    } else {
        ok &= curate_buf_append_char(b, '{') == CURATE_OK;
    }
    ok &= curate_buf_append_str(b, "\"_reject\":") == CURATE_OK;
    ok &= curate_buf_append_json_string(b, reason, strlen(reason)) == CURATE_OK;
    ok &= curate_buf_append_str(b, ",\"_file\":") == CURATE_OK;
    ok &= curate_buf_append_json_string(b, run->input_name, strlen(run->input_name)) == CURATE_OK;
    ok &= curate_buf_printf(b, ",\"_line\":%llu", (unsigned long long)run->line.lineno) == CURATE_OK;
    if (extra_members && *extra_members) {
        ok &= curate_buf_append_char(b, ',') == CURATE_OK;
        ok &= curate_buf_append_str(b, extra_members) == CURATE_OK;
    }
    if (run->parsed_) {
        const curate_record *r = &run->rec;
        size_t tail = r->n_members ? r->members[r->n_members - 1].end : r->close;
        ok &= curate_buf_append(b, L + tail, run->line.len - tail) == CURATE_OK;
    } else {
        ok &= curate_buf_append_str(b, ",\"_raw\":") == CURATE_OK;
        ok &= curate_buf_append_json_string(b, L, run->line.len) == CURATE_OK;
        ok &= curate_buf_append_char(b, '}') == CURATE_OK;
    }
    if (!ok)
        cli_die(CLI_EXIT_INTERNAL, "out of memory");
    put_line(run, run->rej, b->data, b->len);
}

static int close_output(cli_run *run, FILE *f, char *tmp, const char *path)
{
    int bad = 0;
    if (fflush(f) != 0 || ferror(f)) {
        cli_error("%s: write error: %s", path ? path : "standard output", strerror(errno));
        bad = 1;
    }
    if (f != stdout && fclose(f) != 0 && !bad) {
        cli_error("%s: write error: %s", path, strerror(errno));
        bad = 1;
    }
    if (tmp) {
        if (!bad && rename(tmp, path) != 0) {
            cli_error("%s: cannot rename the temporary file into place: %s", path, strerror(errno));
            bad = 1;
        }
        if (bad)
            unlink(tmp);
        free(tmp);
    }
    (void)run;
    return bad;
}

FILE *cli_output_open(const char *path, char **tmp)
{
    return open_temp(path, tmp);
}

int cli_output_close(FILE *f, char *tmp, const char *path)
{
    return close_output(NULL, f, tmp, path) ? CLI_EXIT_IO : 0;
}

static void write_stats(cli_run *run, double seconds, int *bad)
{
    curate_buf b;
    curate_buf_init(&b);
    curate_buf_printf(&b, "{\"tool\":\"%s\",\"version\":\"%s\",\"inputs\":[", cli_progname,
                      curate_version());
    for (size_t i = 0; i < run->n_inputs; i++) {
        if (i)
            curate_buf_append_char(&b, ',');
        curate_buf_append_json_string(&b, run->inputs[i], strlen(run->inputs[i]));
    }
    curate_buf_printf(&b,
                      "],\"records\":{\"read\":%llu,\"written\":%llu,\"rejected\":%llu},"
                      "\"bytes\":{\"read\":%llu,\"written\":%llu,\"rejected\":%llu},"
                      "\"rejected_by_reason\":{",
                      (unsigned long long)run->records_read, (unsigned long long)run->records_written,
                      (unsigned long long)run->records_rejected, (unsigned long long)run->bytes_read,
                      (unsigned long long)run->bytes_written, (unsigned long long)run->bytes_rejected);
    for (size_t i = 0; i < run->n_reasons; i++) {
        if (i)
            curate_buf_append_char(&b, ',');
        curate_buf_append_json_string(&b, run->reasons[i].name, strlen(run->reasons[i].name));
        curate_buf_printf(&b, ":%llu", (unsigned long long)run->reasons[i].count);
    }
    curate_buf_printf(&b, "},\"seconds\":%.3f,\"peak_rss_bytes\":%llu", seconds,
                      (unsigned long long)cli_peak_rss());
    if (run->extra_stats.len)
        curate_buf_append(&b, run->extra_stats.data, run->extra_stats.len);
    curate_buf_append_str(&b, "}\n");
    char *tmp = NULL;
    FILE *f = open_temp(run->stats_path, &tmp);
    if (fwrite(b.data, 1, b.len, f) != b.len) {
        /* close_output reports it */
    }
    *bad |= close_output(run, f, tmp, run->stats_path);
    curate_buf_release(&b);
}

int cli_run_finish(cli_run *run)
{
    double seconds = cli_now() - run->t_start;
    if (run->progress_shown)
        fputs("\r\033[K", stderr);
    int bad = close_output(run, run->out, run->out_tmp, run->output_path);
    run->out_tmp = NULL;
    if (run->rej) {
        bad |= close_output(run, run->rej, run->rej_tmp, run->rejects_path);
        run->rej_tmp = NULL;
    }
    if (run->stats_path)
        write_stats(run, seconds, &bad);
    if (!run->quiet) {
        char reasons[512] = "";
        size_t n = 0;
        for (size_t i = 0; i < run->n_reasons && n < sizeof reasons; i++) {
            int k = snprintf(reasons + n, sizeof reasons - n, "%s%s %llu", i ? ", " : " (",
                             run->reasons[i].name, (unsigned long long)run->reasons[i].count);
            if (k > 0)
                n += (size_t)k;
        }
        if (run->n_reasons && n + 2 < sizeof reasons)
            strcat(reasons, ")");
        fprintf(stderr, "%s: %llu records read, %llu written, %llu rejected%s in %.2f s\n",
                cli_progname, (unsigned long long)run->records_read,
                (unsigned long long)run->records_written, (unsigned long long)run->records_rejected,
                reasons, seconds);
    }
    curate_record_release(&run->rec);
    curate_buf_release(&run->text);
    curate_buf_release(&run->extra_stats);
    curate_buf_release(&run->outbuf);
    if (run->out == stdout && fclose(stdout) != 0 && !bad) {
        if (errno != EPIPE)
            cli_error("standard output: write error: %s", strerror(errno));
        bad = 1;
    }
    return bad ? CLI_EXIT_IO : CLI_EXIT_OK;
}
