/*
 * test_ppl_tinymix_f32.c - tinymix-f32.gguf on the six hold-out domains,
 * ctx 256, against llama.cpp's F32 perplexities (MODEL.md).  Agreement
 * required: 2e-5 relative (llama.cpp prints 4 decimals; measured differences
 * are below 2e-6), and the same count of scored tokens.  Skips without ../shared.
 */
// ctest-label: full
#include "tinymix_check.h"

int main(void)
{
    static const tinymix_ref ref[] = {
        {"wiki", 195.3961, 53213},   {"web", 120.6164, 49403},
        {"code", 48.5208, 21717},    {"chat", 52.5986, 14224},
        {"math", 26.7900, 31115},    {"multilingual", 39.9155, 23241},
    };
    return tinymix_check("tinymix-f32.gguf", ref, sizeof ref / sizeof ref[0], 2e-5);
}
