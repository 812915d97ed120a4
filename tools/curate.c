/*
 * curate - dispatcher: `curate dedupe ARGS` runs `curate-dedupe ARGS`.
 *
 * The tool is looked up first beside this executable (so a build tree or an
 * install prefix is self-contained), then on PATH.  It replaces this
 * process (execv), so exit status, signals and standard streams are the
 * tool's own.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "curate/status.h"

static const struct {
    const char *name;
    const char *summary;
} tools[] = {
    {"clean", "normalize Unicode, repair UTF-8, apply rules, filter by length and quality"},
    {"dedupe", "drop exact (XXH3-128) and near (MinHash + LSH) duplicate records"},
    {"lang-filter", "identify the language (CLD2) and keep or drop records by it"},
    {"length-bucket", "count tokens and assign length buckets"},
    {"stratified-sample", "sample N records or N tokens by strata, reproducibly"},
    {"badcase-inject", "mix hard cases into a set at a ratio"},
    {"audit", "report on a calibration set and warn against PTQ practice"},
    {"calibrate", "quantize a model with the set; report PPL and KL per domain"},
};
#define N_TOOLS (sizeof tools / sizeof tools[0])

static const cli_option options[] = {{NULL, 0, 0, NULL, NULL, 0}};

static const cli_tool tool = {
    "curate",
    "TOOL [ARG]...",
    "Build calibration sets for LLM post-training quantization and prove their quality.",
    "Runs curate-TOOL with the given arguments.  The pipeline, in order:\n"
    "  clean -> dedupe -> lang-filter -> length-bucket -> stratified-sample\n"
    "  -> badcase-inject -> audit -> calibrate",
    options,
    0,
    NULL,
};

static void list_tools(FILE *f)
{
    fprintf(f, "Tools:\n");
    for (size_t i = 0; i < N_TOOLS; i++)
        fprintf(f, "  %-19s %s\n", tools[i].name, tools[i].summary);
    fprintf(f, "\nRun 'curate TOOL --help' for a tool's options; each has a man page, curate-TOOL(1).\n");
}

/* Directory of the running executable, or "" if unknown. */
static void self_dir(char *dir, size_t size)
{
    dir[0] = 0;
    ssize_t n = readlink("/proc/self/exe", dir, size - 1);
    if (n <= 0)
        return;
    dir[n] = 0;
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        dir[0] = 0;
}

int main(int argc, char **argv)
{
    cli_begin(&tool, argc, argv);
    if (argc < 2) {
        cli_error("no tool named");
        fprintf(stderr, "Usage: curate %s\n", tool.synopsis);
        list_tools(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2 && strcmp(name, "help") == 0) {
            /* `curate help dedupe` is `curate-dedupe --help`. */
            name = argv[2];
            argv[2] = (char *)"--help";
            argv++;
            argc--;
        } else {
            cli_print_help(stdout);
            printf("\n");
            list_tools(stdout);
            return fclose(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_IO;
        }
    } else if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("curate %s\n%s\n", curate_version(), curate_version_string());
        return fclose(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_IO;
    } else if (name[0] == '-') {
        cli_usage_error("unknown option '%s'", name);
    }
    size_t i;
    for (i = 0; i < N_TOOLS; i++)
        if (strcmp(tools[i].name, name) == 0)
            break;
    if (i == N_TOOLS)
        cli_usage_error("'%s' is not a curate tool (see 'curate --help')", name);

    char prog[64];
    snprintf(prog, sizeof prog, "curate-%s", name);
    argv[1] = prog;

    char dir[PATH_MAX];
    self_dir(dir, sizeof dir);
    if (dir[0]) {
        char path[PATH_MAX + 80];
        snprintf(path, sizeof path, "%s/%s", dir, prog);
        if (access(path, X_OK) == 0) {
            execv(path, argv + 1);
            cli_die(CLI_EXIT_INTERNAL, "cannot run %s: %s", path, strerror(errno));
        }
    }
    execvp(prog, argv + 1);
    if (errno == ENOENT)
        cli_die(127, "%s is not installed (looked beside %s and on PATH)", prog,
                dir[0] ? dir : "curate");
    cli_die(CLI_EXIT_INTERNAL, "cannot run %s: %s", prog, strerror(errno));
}
