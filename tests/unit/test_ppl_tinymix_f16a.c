/*
 * test_ppl_tinymix_f16a.c - tinymix-f16.gguf on the hold-out domains
 * wiki, code, chat (test_ppl_tinymix_f16b.c has the other three, so
 * each program stays well under a minute), ctx 256, against llama.cpp's
 * F16 perplexities in ../shared/models/tinymix/MODEL.md.  Agreement required:
 * 2e-5 relative (llama.cpp prints 4 decimals; measured differences are
 * below 1e-5), and the same count of scored tokens.  Skips without
 * ../shared.
 */
// ctest-label: full
#include "tinymix_check.h"

int main(void)
{
    static const tinymix_ref ref[] = {
        {"wiki", 195.3957, 53213},
        {"code", 48.5207, 21717},
        {"chat", 52.5982, 14224},
    };
    return tinymix_check("tinymix-f16.gguf", ref, sizeof ref / sizeof ref[0], 2e-5);
}
