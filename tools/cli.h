/*
 * tools/cli.h - helpers shared by the curate-* programs (tools only; the
 * library never prints or exits, these do).
 *
 * What lives here:
 *   - one option table per tool that drives getopt_long and --help
 *   - messages ("curate-clean: in.jsonl:17: invalid JSON ..."), exit codes
 *   - checked number parsing
 *   - cli_run: the record loop every filter shares (inputs in order, -o
 *     written to a temporary file and renamed, --rejects, --stats,
 *     --on-error, progress, read = written + rejected bookkeeping)
 *
 * Exit statuses (documented on every man page):
 *   0 success; 1 bad input with --on-error=fail (or a tool-specific
 *   failure such as an audit warning under --strict); 2 usage error;
 *   3 I/O error (cannot open, read, write or rename); 4 out of memory or
 *   internal error.
 */
#ifndef CURATE_CLI_H
#define CURATE_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "curate/buf.h"
#include "curate/jsonl.h"
#include "curate/status.h"

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_DATA = 1,
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_IO = 3,
    CLI_EXIT_INTERNAL = 4
};

/* ---- option tables ------------------------------------------------------ */

enum { CLI_NO_ARG = 0, CLI_REQ_ARG = 1 };

typedef struct cli_option {
    const char *name;     /* long name without "--"; NULL ends the table */
    int short_opt;        /* single-letter alias or 0 */
    int arg;              /* CLI_NO_ARG or CLI_REQ_ARG */
    const char *metavar;  /* shown in --help: "N", "FILE", "MODE" */
    const char *help;     /* one sentence; may contain "\n" for more lines */
    int id;               /* what cli_getopt returns; tool ids start at 1000 */
} cli_option;

/* Which shared options a tool takes (bit set). */
enum {
    CLI_COMMON_OUTPUT = 1 << 0,   /* -o/--output */
    CLI_COMMON_FILTER = 1 << 1,   /* --rejects, --on-error */
    CLI_COMMON_STATS = 1 << 2,    /* --stats */
    CLI_COMMON_RECORDS = 1 << 3,  /* --field, --max-record-bytes */
    CLI_COMMON_ALL = 0xF
};

typedef struct cli_tool {
    const char *name;        /* "curate-clean" */
    const char *synopsis;    /* "[OPTION]... [FILE]..." */
    const char *summary;     /* one line: what it does */
    const char *description; /* text after the usage line in --help (may be NULL) */
    const cli_option *options; /* tool options; the shared ones are added */
    unsigned common;         /* CLI_COMMON_* bits */
    const char *footer;      /* text after the option list (may be NULL) */
} cli_tool;

/* Ids of the shared options (returned only when a tool asks for them via
 * cli_getopt; cli_run_option() handles them). */
enum {
    CLI_OPT_HELP = 1, CLI_OPT_VERSION, CLI_OPT_OUTPUT, CLI_OPT_STATS, CLI_OPT_REJECTS,
    CLI_OPT_ON_ERROR, CLI_OPT_FIELD, CLI_OPT_MAX_RECORD, CLI_OPT_QUIET, CLI_OPT_TEMPLATE
};

extern const char *cli_progname;

/* Set the program name and the tool description used by messages. */
void cli_begin(const cli_tool *tool, int argc, char **argv);

/*
 * Next option, like getopt_long: returns the option's id, with its argument
 * in *arg (NULL when it takes none), or -1 when options end (*optind_out is
 * the index of the first operand).  --help and --version are handled here
 * (print, exit 0); an unknown option or a missing argument is a usage error
 * (exit 2).
 */
int cli_getopt(int argc, char **argv, const char **arg, int *optind_out);

void cli_print_help(FILE *f);
void cli_print_version(FILE *f);

/* "tool: message" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print and exit with status. */
void cli_die(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* "tool: message", then "Usage: ...", "Try 'tool --help' ...", exit 2. */
void cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Print a library error as "tool: FILE:LINE: message at byte N". */
void cli_error_lib(const curate_error *err);

/* ---- checked parsing (usage error with the option name on failure) ------ */

/* Whole number in [min, max]; accepts K, M, G (x1024) suffixes if
 * allow_suffix. */
uint64_t cli_parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, int allow_suffix);
double cli_parse_double(const char *opt, const char *s, double min, double max);
/* Split the comma list s in place into out (at most max items); an empty
 * item or too many items is a usage error naming opt. */
size_t cli_split_list(const char *opt, char *s, char **out, size_t max);
/* One of the NULL-terminated choices; returns its index. */
int cli_parse_choice(const char *opt, const char *s, const char *const *choices);

/* ---- the record loop ------------------------------------------------------ */

typedef struct cli_reason {
    char name[48];
    uint64_t count;
} cli_reason;

typedef struct cli_run {
    /* shared options (set by cli_run_option before cli_run_start) */
    const char *output_path;     /* NULL = stdout */
    const char *stats_path;
    const char *rejects_path;
    int on_error_skip;           /* --on-error=skip */
    size_t max_record_bytes;
    const char *field;           /* text field, default "text" */
    int quiet;
    int chat_template;           /* curate_chat_template for messages records */

    /* the current record (valid after cli_run_next / cli_run_parse) */
    curate_line line;
    const char *input_name;
    curate_record rec;
    curate_buf text;             /* decoded text after cli_run_text */
    int text_from_messages;      /* run->text was rendered from "messages" */

    /* counters */
    uint64_t records_read, records_written, records_rejected;
    uint64_t bytes_read, bytes_written, bytes_rejected;
    cli_reason reasons[32];
    size_t n_reasons;

    /* extra members for --stats: the tool appends ',"key":value' text */
    curate_buf extra_stats;

    /* private */
    char **inputs;
    size_t n_inputs, input_index;
    curate_reader *reader;
    uint64_t bytes_done_before;  /* bytes of finished inputs */
    FILE *out, *rej;
    char *out_tmp, *rej_tmp;
    curate_buf outbuf;
    double t_start, t_progress;
    int progress_shown;
    int tty;
    int parsed_;                 /* the current line parsed into rec */
} cli_run;

void cli_run_init(cli_run *run);

/* Handle a shared option id; returns 1 if it was one, 0 otherwise. */
int cli_run_option(cli_run *run, int id, const char *arg);

/* Open outputs (temporary files beside -o / --rejects targets).  files are
 * the operands (none means "-").  Exits 3 on failure. */
void cli_run_start(cli_run *run, int n_files, char **files);

/*
 * Next record line into run->line.  Returns 1, or 0 when every input is
 * done.  Too-large lines go through the --on-error policy (a small
 * placeholder record lands in rejects: the line itself is not kept); read
 * errors exit 3.
 */
int cli_run_next(cli_run *run);

/* Parse run->line into run->rec.  Returns 1 on success; on bad JSON or a
 * non-object line applies --on-error: 0 = rejected and counted (go on to the
 * next record); with fail the tool exits 1 after cleaning up. */
int cli_run_parse(cli_run *run);

/* Decode the text field into run->text.  A record without the text field
 * but with a "messages" array is rendered with --template (plain by
 * default) and run->text_from_messages is set: the text is what the model
 * will see.  Missing field, wrong type or malformed messages go through
 * --on-error like cli_run_parse (reasons no_field, field_type,
 * bad_messages). */
int cli_run_text(cli_run *run);

/* Emit the current record (run->rec with its edits). */
void cli_run_write(cli_run *run);
/* Emit arbitrary bytes as one output line (a newline is added). */
void cli_run_write_line(cli_run *run, const char *s, size_t n);

/*
 * Reject the current record: it goes to --rejects with "_reject": reason
 * (plus "_file", "_line" and the optional extra members, text of the form
 * '"key":value,...' without braces) and is counted under reason.  If the
 * line did not parse, it is wrapped as {"_reject":..., "_raw": "<line>"}.
 */
void cli_run_reject(cli_run *run, const char *reason, const char *extra_members);

/*
 * Bad input (err describes it): with --on-error=skip reject it under reason
 * and return 0; with fail print "tool: FILE:LINE: message" and exit 1.
 */
int cli_run_bad(cli_run *run, const char *reason, const curate_error *err);

/* Count an extra reason without rejecting (for summaries). */
void cli_run_count_reason(cli_run *run, const char *reason);

/*
 * Close outputs, rename temporaries into place, write --stats, print a
 * summary line on stderr unless quiet.  Returns the exit status (3 on a
 * failed write, close or rename).
 */
int cli_run_finish(cli_run *run);

/* Abort: remove temporaries and exit with status (after a message). */
void cli_run_abort(cli_run *run, int status) __attribute__((noreturn));

/*
 * Open path for writing the way -o does: a temporary file beside it that
 * cli_output_close() renames into place, or the path itself when it exists
 * and is not a regular file (/dev/null, /dev/stdout, a FIFO), which must
 * never be replaced.  *tmp receives the temporary name (NULL when none).
 * Exits 3 with a message when the file cannot be created.
 */
FILE *cli_output_open(const char *path, char **tmp);
/* Flush, close and rename; on failure print "tool: PATH: ..." and remove
 * the temporary file.  Returns 0 or CLI_EXIT_IO.  Frees tmp. */
int cli_output_close(FILE *f, char *tmp, const char *path);

/* Seconds since an arbitrary start (monotonic). */
double cli_now(void);
/* Peak resident set size of this process in bytes (0 if unknown). */
uint64_t cli_peak_rss(void);

#endif /* CURATE_CLI_H */
