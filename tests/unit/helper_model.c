/*
 * helper_model.c - see helper_model.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "helper_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

char *mh_shared_path(const char *rel)
{
    const char *shared = getenv("CURATE_SHARED");
    if (!shared || !*shared) {
        fprintf(stderr, "skip: CURATE_SHARED is not set (needs %s)\n", rel);
        return NULL;
    }
    size_t n = strlen(shared) + strlen(rel) + 2;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/%s", shared, rel);
    struct stat st;
    if (stat(p, &st) != 0) {
        fprintf(stderr, "skip: %s is not there\n", p);
        free(p);
        return NULL;
    }
    return p;
}

const char *mh_scratch_dir(void)
{
    static char dir[1024];
    if (dir[0])
        return dir;
    const char *base = getenv("CURATE_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0777);
    snprintf(dir, sizeof dir, "%s/mh-%ld", base, (long)getpid());
    mkdir(dir, 0777);
    return dir;
}

char *mh_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (!buf)
            break;
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int mh_write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t put = fwrite(data, 1, len, f);
    int bad = fclose(f) != 0 || put != len;
    return bad ? -1 : 0;
}

static uint64_t mh_next(uint64_t *s)
{
    /* splitmix64: tiny, good enough for test text */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

char *mh_make_text(uint64_t seed, size_t n_bytes, size_t *len)
{
    static const char *const words[] = {
        "the", "a", "cat", "dog", "sat", "on", "mat", "and", "ran", "to", "house", "tree",
        "big", "small", "red", "blue", "happy", "sad", "went", "saw", "when", "then", "there",
        "quick", "brown", "fox", "jumps", "over", "lazy", "river", "mountain", "water", "fire",
        "day", "night", "sun", "moon", "star", "little", "girl", "boy", "named", "Lily", "Tom",
        "played", "outside", "park", "loved", "friend", "said", "one", "two", "three", "42",
        "2024", "café", "naïve", "über", "is", "was", "it", "he", "she", "they", "with", "for",
    };
    const size_t n_words = sizeof words / sizeof words[0];
    char *out = malloc(n_bytes + 64);
    if (!out)
        return NULL;
    size_t n = 0;
    uint64_t s = seed;
    int sentence_start = 1;
    while (n < n_bytes) {
        const char *w = words[mh_next(&s) % n_words];
        size_t wl = strlen(w);
        if (n + wl + 4 > n_bytes + 60)
            break;
        if (n && out[n - 1] != '\n')
            out[n++] = ' ';
        memcpy(out + n, w, wl);
        if (sentence_start && out[n] >= 'a' && out[n] <= 'z')
            out[n] = (char)(out[n] - 'a' + 'A');
        n += wl;
        sentence_start = 0;
        uint64_t r = mh_next(&s) % 100;
        if (r < 10) {
            out[n++] = '.';
            sentence_start = 1;
            if (r < 2)
                out[n++] = '\n';
        } else if (r < 13) {
            out[n++] = ',';
        }
    }
    out[n] = 0;
    if (len)
        *len = n;
    return out;
}

int mh_train_tokenizer(unsigned vocab_size, uint64_t seed, char *out, size_t cap)
{
    if (system("command -v spm_train >/dev/null 2>&1") != 0) {
        fprintf(stderr, "skip: spm_train is not installed (Debian package 'sentencepiece')\n");
        return 77;
    }
    const char *dir = mh_scratch_dir();
    char corpus[1200], prefix[1200], cmd[4096];
    snprintf(corpus, sizeof corpus, "%s/spm-corpus-%llu.txt", dir, (unsigned long long)seed);
    snprintf(prefix, sizeof prefix, "%s/spm-%u-%llu", dir, vocab_size, (unsigned long long)seed);
    size_t len;
    char *text = mh_make_text(seed, 200000, &len);
    if (!text || mh_write_file(corpus, text, len) != 0) {
        free(text);
        return -1;
    }
    free(text);
    snprintf(cmd, sizeof cmd,
             "spm_train --input='%s' --model_prefix='%s' --vocab_size=%u --model_type=bpe "
             "--byte_fallback=true --character_coverage=1.0 --split_digits=true "
             "--normalization_rule_name=identity --remove_extra_whitespaces=false "
             "--add_dummy_prefix=true --allow_whitespace_only_pieces=true "
             "--num_threads=1 --minloglevel=2 >/dev/null 2>&1",
             corpus, prefix, vocab_size);
    if (system(cmd) != 0) {
        fprintf(stderr, "spm_train failed: %s\n", cmd);
        return -1;
    }
    if ((size_t)snprintf(out, cap, "%s.model", prefix) >= cap)
        return -1;
    return 0;
}
