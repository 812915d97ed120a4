/*
 * helper_model.h - test helpers for the tokenizer, model and perplexity
 * tests: locating ../shared assets, scratch directories, reading files and
 * training a small SentencePiece tokenizer at test time with spm_train.
 *
 * Every unit test links helper_*.c, so these names carry the mh_ prefix.
 */
#ifndef CURATE_TEST_HELPER_MODEL_H
#define CURATE_TEST_HELPER_MODEL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Path of rel under $CURATE_SHARED if that file exists (malloc'd, caller
 * frees), else NULL after printing why on stderr (so a skipped test says
 * what it missed).
 */
char *mh_shared_path(const char *rel);

/*
 * A fresh scratch directory for this process under $CURATE_TMP (or /tmp),
 * created on first use; the string is static.
 */
const char *mh_scratch_dir(void);

/* Whole file into a malloc'd NUL-terminated buffer; NULL on failure. */
char *mh_read_file(const char *path, size_t *len);

/* Write data to path; 0 on success. */
int mh_write_file(const char *path, const char *data, size_t len);

/*
 * Deterministic pseudo-English text of about n_bytes bytes (sentences of
 * words from a fixed list, newlines between paragraphs, a few accented
 * words), from the given seed.  malloc'd, NUL-terminated.
 */
char *mh_make_text(uint64_t seed, size_t n_bytes, size_t *len);

/*
 * Train a BPE SentencePiece model with byte fallback and Llama-style
 * settings (identity normalizer, no whitespace squashing, dummy prefix) of
 * vocab_size pieces on mh_make_text(seed) with spm_train.  On success
 * writes the model path into out and returns 0; returns 77 when spm_train
 * is not installed (after a message), -1 on any other failure.
 */
int mh_train_tokenizer(unsigned vocab_size, uint64_t seed, char *out, size_t cap);

#endif
