/*
 * fuzz_jsonl.c - the JSONL reader and record parser on arbitrary bytes: no
 * crash, no read past the input, and for every line that parses, rendering
 * with no edits gives the line back and rendering with edits gives valid
 * JSON.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "curate/jsonl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds[2];
    if (size > 60000 || pipe(fds) != 0)
        return 0;
    if (write(fds[1], data, size) != (ssize_t)size) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    close(fds[1]);
    curate_reader_opts ro = {4096, 64};
    curate_reader *r = curate_reader_open_fd(fds[0], "fuzz", &ro, NULL);
    curate_record rec;
    curate_record_init(&rec);
    rec.max_depth = 16;
    curate_buf out, text;
    curate_buf_init(&out);
    curate_buf_init(&text);
    curate_line line;
    curate_status st;
    while (r && (st = curate_reader_next(r, &line, NULL)) != CURATE_END) {
        if (st == CURATE_ERR_TOO_LARGE)
            continue;
        if (st != CURATE_OK)
            break;
        if (curate_record_parse(&rec, line.data, line.len, NULL) != CURATE_OK)
            continue;
        curate_buf_reset(&out);
        curate_record_render(&rec, &out);
        if (out.len != line.len || memcmp(out.data, line.data, line.len) != 0)
            abort();
        curate_record_get_string(&rec, "text", &text, NULL);
        curate_record_set_string(&rec, "text", text.data ? text.data : "", text.len);
        curate_record_set_int(&rec, "n", 7);
        curate_record_remove(&rec, "id");
        curate_buf_reset(&out);
        curate_record_render(&rec, &out);
        if (curate_json_validate(out.data, out.len, 64, NULL) != CURATE_OK)
            abort();
    }
    curate_buf_release(&out);
    curate_buf_release(&text);
    curate_record_release(&rec);
    curate_reader_free(r);
    close(fds[0]);
    return 0;
}
