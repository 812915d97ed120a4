/*
 * test_ppl_tinymix_f16.c - tinymix-f16.gguf (matrices F16, converted to
 * F32 at load) on the six hold-out domains, ctx 256, against llama.cpp's
 * F16 perplexities (MODEL.md).  Agreement
 * required: 2e-5 relative (llama.cpp prints 4 decimals; measured differences
 * are below 2e-6), and the same count of scored tokens.  Skips without
 * ../shared.
 */
// ctest-label: full
#include "tinymix_check.h"

int main(void)
{
    static const tinymix_ref ref[] = {
        {"wiki", 195.3957, 53213},   {"web", 120.6159, 49403},
        {"code", 48.5207, 21717},    {"chat", 52.5982, 14224},
        {"math", 26.7900, 31115},    {"multilingual", 39.9155, 23241},
    };
    return tinymix_check("tinymix-f16.gguf", ref, sizeof ref / sizeof ref[0], 2e-5);
}
