/*
 * curate/tokenizer.h - a C interface to SentencePiece tokenizers.
 *
 * A curate_tokenizer wraps one SentencePiece model (a `.model` file, the
 * serialized ModelProto that spm_train writes and that Llama, Mistral,
 * TinyLlama and llama2.c ship).  It encodes UTF-8 text to token ids exactly as
 * the SentencePiece library does (which is also what llama.cpp's "SPM"
 * tokenizer reproduces for these models): the model's normalizer runs, the
 * dummy-prefix space is added when the model asks for it, and unknown
 * characters fall back to byte pieces when the model has them.
 *
 * The implementation (tokenizer_spm.cpp) is the only C++ in this module.  No
 * C++ exception crosses this interface: every failure, including allocation
 * failure inside SentencePiece, comes back as a curate_status with a message
 * in the curate_error.
 *
 * Thread safety: a loaded tokenizer is immutable; encode, count, decode and
 * the lookups may be called from several threads at once on the same
 * tokenizer.  A curate_tokens vector belongs to one thread at a time.
 */
#ifndef CURATE_TOKENIZER_H
#define CURATE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "curate/buf.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Token id vectors                                                         */
/* ------------------------------------------------------------------------ */

/*
 * A growable array of token ids.  Embed it, curate_tokens_init() once,
 * curate_tokens_release() at the end (like curate_buf).  Ids are int32_t
 * because that is what SentencePiece and GGUF use; valid ids are in
 * [0, vocab size).
 */
typedef struct curate_tokens {
    int32_t *ids;  /* NULL until the first append */
    size_t n;      /* ids in use */
    size_t cap;    /* ids allocated */
} curate_tokens;

void curate_tokens_init(curate_tokens *t);
void curate_tokens_release(curate_tokens *t);       /* frees; t is re-initialised */
static inline void curate_tokens_reset(curate_tokens *t) { t->n = 0; }
/* Make room for at least extra more ids.  CURATE_ERR_NOMEM on failure (the
 * contents are kept). */
curate_status curate_tokens_reserve(curate_tokens *t, size_t extra);
curate_status curate_tokens_append(curate_tokens *t, const int32_t *ids, size_t n);
curate_status curate_tokens_push(curate_tokens *t, int32_t id);

/* ------------------------------------------------------------------------ */
/* Loading                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct curate_tokenizer curate_tokenizer;

/*
 * Load a SentencePiece model file.  Returns NULL on failure and fills err:
 * CURATE_ERR_IO when the file cannot be read, CURATE_ERR_TOKENIZER when it
 * is not a valid model (the message carries SentencePiece's reason),
 * CURATE_ERR_NOMEM.  err->file is set to path.  Free with
 * curate_tokenizer_free().
 */
curate_tokenizer *curate_tokenizer_load(const char *path, curate_error *err);

/*
 * Same from a serialized ModelProto held in memory (data[0..size)); the
 * bytes are copied, the caller keeps ownership of data.  name is used in
 * messages (may be NULL).
 */
curate_tokenizer *curate_tokenizer_load_mem(const void *data, size_t size, const char *name,
                                            curate_error *err);

/* Flags for the _ex loaders. */
enum {
    /*
     * Keep whitespace exactly as written, as llama.cpp's tokenizer does:
     * models trained with SentencePiece's default remove_extra_whitespaces
     * (llama2.c's tok512.model, for one) otherwise strip leading and
     * trailing spaces and squash runs of spaces before encoding, which
     * llama.cpp never does.  With this flag the token ids equal
     * llama.cpp's for such models (for models trained without the option,
     * such as Llama 2's, the flag changes nothing).  The model's other
     * normalization rules are kept.
     */
    CURATE_TOK_LOAD_KEEP_WHITESPACE = 1u << 0,
    /*
     * Always hand the whole text to SentencePiece in one call.  By default
     * a long text (over 32 KiB) is encoded in parts cut right before a
     * newline, which gives the same ids (no piece of the vocabulary may
     * contain a newline, the normalizer must keep whitespace, and a
     * self-check at load time must pass; otherwise the whole text is used)
     * while SentencePiece's time and memory on long inputs (about 150
     * bytes per token) stay bounded.  This flag turns that off, for
     * checking.
     */
    CURATE_TOK_LOAD_WHOLE_TEXT = 1u << 1
};

/* 1 if long texts are encoded in parts (see CURATE_TOK_LOAD_WHOLE_TEXT). */
int curate_tokenizer_in_parts(const curate_tokenizer *tok);

/* curate_tokenizer_load / _load_mem with CURATE_TOK_LOAD_* flags. */
curate_tokenizer *curate_tokenizer_load_ex(const char *path, unsigned flags, curate_error *err);
curate_tokenizer *curate_tokenizer_load_mem_ex(const void *data, size_t size, const char *name,
                                               unsigned flags, curate_error *err);

/* Release everything; accepts NULL. */
void curate_tokenizer_free(curate_tokenizer *tok);

/* ------------------------------------------------------------------------ */
/* Encoding and decoding                                                    */
/* ------------------------------------------------------------------------ */

/* Flags for curate_tokenizer_encode(). */
enum {
    CURATE_TOK_ADD_BOS = 1u << 0,  /* put the BOS id first (if the model has one) */
    CURATE_TOK_ADD_EOS = 1u << 1   /* put the EOS id last (if the model has one) */
};

/*
 * Encode text[0..len) and append the ids to out (out is NOT reset, so a
 * caller can build a stream of several texts).  The text is taken as
 * bytes; SentencePiece maps invalid UTF-8 to the unknown piece (or to
 * byte pieces when the model has byte fallback).  Control tokens spelled
 * out in the text (such as "<s>") are NOT recognised as specials: they are
 * tokenized as ordinary text, which is what llama.cpp does with
 * parse_special off.
 *
 * Returns CURATE_OK, CURATE_ERR_TOKENIZER (SentencePiece failed; message
 * says why), CURATE_ERR_NOMEM, CURATE_ERR_RANGE (len above what
 * SentencePiece accepts, 2^31-1 bytes), CURATE_ERR_INVALID (NULL
 * arguments).  On error out keeps its previous contents.
 */
curate_status curate_tokenizer_encode(const curate_tokenizer *tok, const char *text, size_t len,
                                      unsigned flags, curate_tokens *out, curate_error *err);

/*
 * Number of tokens that curate_tokenizer_encode() would produce for the
 * same text and flags, without keeping the ids (the ids are still computed;
 * a per-thread scratch vector is reused, so the call does not allocate in
 * steady state).  Same errors as encode.
 */
curate_status curate_tokenizer_count(const curate_tokenizer *tok, const char *text, size_t len,
                                     unsigned flags, uint64_t *n_tokens, curate_error *err);

/*
 * Decode ids back to text, appended to out (not reset).  Control ids
 * (BOS/EOS) decode to nothing, byte pieces are reassembled, the dummy
 * prefix space of the first piece is removed, as SentencePiece's
 * DecodeIds does.  An id outside [0, vocab size) is CURATE_ERR_RANGE.
 */
curate_status curate_tokenizer_decode(const curate_tokenizer *tok, const int32_t *ids, size_t n,
                                      curate_buf *out, curate_error *err);

/* ------------------------------------------------------------------------ */
/* Vocabulary                                                               */
/* ------------------------------------------------------------------------ */

/* Number of pieces (the vocabulary size). */
size_t curate_tokenizer_vocab_size(const curate_tokenizer *tok);

/* Special ids, or -1 when the model has none (SentencePiece's convention). */
int32_t curate_tokenizer_bos(const curate_tokenizer *tok);
int32_t curate_tokenizer_eos(const curate_tokenizer *tok);
int32_t curate_tokenizer_unk(const curate_tokenizer *tok);
int32_t curate_tokenizer_pad(const curate_tokenizer *tok);

/*
 * The piece string of id ("\xe2\x96\x81the" for "▁the", "<0x0A>" for a
 * byte piece, "<s>" for BOS), NUL-terminated and owned by the tokenizer
 * (valid until curate_tokenizer_free).  NULL when id is out of range.
 */
const char *curate_tokenizer_piece(const curate_tokenizer *tok, int32_t id);

/* Score of the piece (BPE merge priority / unigram log probability); 0 for
 * an out-of-range id. */
float curate_tokenizer_score(const curate_tokenizer *tok, int32_t id);

/* Kind of a piece. */
typedef enum curate_piece_type {
    CURATE_PIECE_INVALID = 0,  /* id out of range */
    CURATE_PIECE_NORMAL,       /* ordinary piece (SentencePiece's public API
                                  does not tell user-defined symbols apart,
                                  so they are reported as NORMAL too) */
    CURATE_PIECE_UNKNOWN,
    CURATE_PIECE_CONTROL,      /* <s>, </s> and other control symbols */
    CURATE_PIECE_BYTE,         /* <0xNN> byte-fallback piece */
    CURATE_PIECE_UNUSED
} curate_piece_type;

curate_piece_type curate_tokenizer_piece_type(const curate_tokenizer *tok, int32_t id);

/*
 * Id of the piece spelled piece[0..len) exactly (no normalization), or -1
 * when the vocabulary has no such piece.  (SentencePiece itself answers
 * unk for a missing piece; this function tells the two apart.)
 */
int32_t curate_tokenizer_piece_id(const curate_tokenizer *tok, const char *piece, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_TOKENIZER_H */
