/*
 * test_ppl_tinymix_f32b.c - tinymix-f32.gguf on the hold-out domains
 * web, math, multilingual (test_ppl_tinymix_f32a.c has the other three, so
 * each program stays well under a minute), ctx 256, against llama.cpp's
 * F32 perplexities in ../shared/models/tinymix/MODEL.md.  Agreement required:
 * 2e-5 relative (llama.cpp prints 4 decimals; measured differences are
 * below 1e-5), and the same count of scored tokens.  Skips without
 * ../shared.
 */
// ctest-label: full
#include "tinymix_check.h"

int main(void)
{
    static const tinymix_ref ref[] = {
        {"web", 120.6164, 49403},
        {"math", 26.7900, 31115},
        {"multilingual", 39.9155, 23241},
    };
    return tinymix_check("tinymix-f32.gguf", ref, sizeof ref / sizeof ref[0], 2e-5);
}
