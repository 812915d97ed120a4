/*
 * tokenizer_spm.cpp - the C shim over SentencePiece (curate/tokenizer.h).
 *
 * Every extern "C" entry point wraps its body in try/catch: SentencePiece and
 * the standard library may throw (std::bad_alloc at least), and an exception
 * unwinding into C code is undefined behaviour.  Errors become a status and
 * a message.
 *
 * The model file is read here (not by SentencePiece's Load(path)) so that a
 * missing or unreadable file is reported as an I/O error with errno's text,
 * and a file that is not a ModelProto as a tokenizer error.
 */
#include "curate/tokenizer.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>

struct curate_tokenizer {
    sentencepiece::SentencePieceProcessor sp;
    /* the same model without the dummy prefix: for the parts after the
     * first in segmented encoding (see encode_segmented) */
    sentencepiece::SentencePieceProcessor sp_cont;
    bool segmented = false;
    int32_t n_vocab = 0;
    int32_t bos = -1, eos = -1, unk = -1, pad = -1;
};

namespace {

/* Copy a (possibly long) name into err->file without overflowing it. */
void set_file(curate_error *err, const char *name)
{
    if (err && name)
        curate_error_at(err, name, 0);
}

curate_status from_exception(curate_error *err, const char *what)
{
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory while %s", what);
    } catch (const std::exception &e) {
        return curate_error_set(err, CURATE_ERR_TOKENIZER, "%s: %s", what, e.what());
    } catch (...) {
        return curate_error_set(err, CURATE_ERR_TOKENIZER, "%s: unknown C++ exception", what);
    }
}

/* ---- a minimal protobuf rewrite for CURATE_TOK_LOAD_KEEP_WHITESPACE ---------------- */

/* Read a base-128 varint at b[*pos]; false if it runs off the end. */
bool read_varint(const std::string &b, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= b.size())
            return false;
        const unsigned char c = static_cast<unsigned char>(b[(*pos)++]);
        r |= static_cast<uint64_t>(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

void put_varint(std::string *out, uint64_t v)
{
    while (v >= 0x80) {
        out->push_back(static_cast<char>((v & 0x7f) | 0x80));
        v >>= 7;
    }
    out->push_back(static_cast<char>(v));
}

/*
 * Skip one field's payload of the given wire type; false if malformed.
 * Only the wire types a ModelProto uses (varint, 64-bit, length, 32-bit).
 */
bool skip_field(const std::string &b, size_t *pos, unsigned wire)
{
    uint64_t v;
    switch (wire) {
    case 0:
        return read_varint(b, pos, &v);
    case 1:
        if (b.size() - *pos < 8)
            return false;
        *pos += 8;
        return true;
    case 2:
        if (!read_varint(b, pos, &v) || v > b.size() - *pos)
            return false;
        *pos += static_cast<size_t>(v);
        return true;
    case 5:
        if (b.size() - *pos < 4)
            return false;
        *pos += 4;
        return true;
    default:
        return false;
    }
}

/* NormalizerSpec (ModelProto field 3) booleans this file reads or sets. */
enum { NORM_ADD_DUMMY_PREFIX = 3, NORM_REMOVE_EXTRA_WHITESPACES = 4 };

/*
 * Set a boolean field of the NormalizerSpec in a serialized ModelProto.
 * SentencePiece's public API cannot change the normalizer after loading,
 * and the wire format is stable, so the bytes are edited: every top-level
 * field is copied unchanged except field 3, whose own fields are copied
 * minus `field`, plus "field = value".  A proto without a NormalizerSpec
 * gets one holding only that field (the other fields keep their
 * defaults).  Returns false (bytes untouched) if the proto does not parse.
 */
bool set_normalizer_bool(std::string *bytes, unsigned field_no, bool value)
{
    const std::string &b = *bytes;
    std::string out;
    out.reserve(b.size() + 8);
    size_t pos = 0;
    bool patched = false;
    while (pos < b.size()) {
        const size_t start = pos;
        uint64_t tag;
        if (!read_varint(b, &pos, &tag))
            return false;
        const unsigned wire = static_cast<unsigned>(tag & 7);
        const uint64_t field = tag >> 3;
        if (field != 3 || wire != 2) {
            if (!skip_field(b, &pos, wire))
                return false;
            out.append(b, start, pos - start);
            continue;
        }
        uint64_t len;
        if (!read_varint(b, &pos, &len) || len > b.size() - pos)
            return false;
        const std::string sub_in = b.substr(pos, static_cast<size_t>(len));
        pos += static_cast<size_t>(len);
        std::string sub;
        size_t sp = 0;
        while (sp < sub_in.size()) {
            const size_t s0 = sp;
            uint64_t stag;
            if (!read_varint(sub_in, &sp, &stag) ||
                !skip_field(sub_in, &sp, static_cast<unsigned>(stag & 7)))
                return false;
            if ((stag >> 3) != field_no)
                sub.append(sub_in, s0, sp - s0);
        }
        sub.push_back(static_cast<char>(field_no << 3)); /* varint */
        sub.push_back(value ? 1 : 0);
        put_varint(&out, tag);
        put_varint(&out, sub.size());
        out += sub;
        patched = true;
    }
    if (!patched) {
        out.push_back(static_cast<char>((3 << 3) | 2));
        out.push_back(2);
        out.push_back(static_cast<char>(field_no << 3));
        out.push_back(value ? 1 : 0);
    }
    bytes->swap(out);
    return true;
}

/*
 * Read a boolean field of the NormalizerSpec; def when absent (proto2
 * defaults: both fields used here default to true).  The last occurrence
 * wins, as in protobuf.  False on a malformed proto.
 */
bool get_normalizer_bool(const std::string &b, unsigned field_no, bool def, bool *value)
{
    *value = def;
    size_t pos = 0;
    while (pos < b.size()) {
        uint64_t tag;
        if (!read_varint(b, &pos, &tag))
            return false;
        const unsigned wire = static_cast<unsigned>(tag & 7);
        if ((tag >> 3) != 3 || wire != 2) {
            if (!skip_field(b, &pos, wire))
                return false;
            continue;
        }
        uint64_t len;
        if (!read_varint(b, &pos, &len) || len > b.size() - pos)
            return false;
        const size_t end = pos + static_cast<size_t>(len);
        while (pos < end) {
            uint64_t stag, v;
            if (!read_varint(b, &pos, &stag))
                return false;
            if ((stag >> 3) == field_no && (stag & 7) == 0) {
                if (!read_varint(b, &pos, &v))
                    return false;
                *value = v != 0;
            } else if (!skip_field(b, &pos, static_cast<unsigned>(stag & 7))) {
                return false;
            }
        }
        if (pos != end)
            return false;
    }
    return true;
}

/* ---- segmented encoding ------------------------------------------------------- */

/*
 * SentencePiece's BPE encoder slows down on long inputs (a 1.3 MB text
 * takes seconds and about 150 bytes of memory per token) while its results
 * only depend on the characters around each merge.  When no piece of the
 * vocabulary contains "\n", no merge (and no unigram piece) can cross a
 * newline, so the text can be cut right before a newline and the parts
 * encoded one by one: the first with the model as it is, the others with
 * a copy whose dummy prefix is off (the prefix belongs to the start of the
 * whole text only).  This is only done when the normalizer keeps
 * whitespace as written (trailing spaces of a part must not be stripped),
 * and after a self-check on a sample at load time.
 */
constexpr size_t SEGMENT_BYTES = 4 * 1024;

/*
 * Encode text as parts cut right before a newline, each part at least
 * min_part bytes (0: cut before every newline); ids are appended.  Returns
 * SentencePiece's status.
 */
sentencepiece::util::Status encode_parts(const curate_tokenizer *tok, absl::string_view text,
                                         size_t min_part, std::vector<int> *ids)
{
    std::vector<int> part;
    size_t pos = 0;
    bool first = true;
    while (pos < text.size()) {
        size_t end = text.size();
        const size_t from = pos + (min_part ? min_part : 1);
        if (from < text.size()) {
            const size_t nl = text.find('\n', from);
            if (nl != absl::string_view::npos)
                end = nl;
        }
        const auto &proc = first ? tok->sp : tok->sp_cont;
        const auto st = proc.Encode(text.substr(pos, end - pos), &part);
        if (!st.ok())
            return st;
        ids->insert(ids->end(), part.begin(), part.end());
        pos = end;
        first = false;
    }
    return sentencepiece::util::Status();
}

/* Decide whether tok may encode in parts (see above); bytes is its proto. */
void setup_segments(curate_tokenizer *tok, const std::string &bytes)
{
    bool remove_ws = true, dummy = true;
    if (!get_normalizer_bool(bytes, NORM_REMOVE_EXTRA_WHITESPACES, true, &remove_ws) ||
        remove_ws || !get_normalizer_bool(bytes, NORM_ADD_DUMMY_PREFIX, true, &dummy))
        return;
    for (int id = 0; id < tok->n_vocab; id++) {
        if (tok->sp.IsByte(id) || tok->sp.IsControl(id) || tok->sp.IsUnknown(id))
            continue;
        if (tok->sp.IdToPiece(id).find('\n') != std::string::npos)
            return;
    }
    std::string cont = bytes;
    if (dummy && !set_normalizer_bool(&cont, NORM_ADD_DUMMY_PREFIX, false))
        return;
    if (!tok->sp_cont.LoadFromSerializedProto(cont).ok())
        return;
    /* self-check: cutting before every newline changes nothing */
    static const char sample[] =
        "Hello  world, it's 2024.\n  indented line\n\n\tTabbed \n x\n\n\n"
        "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 end \n";
    std::vector<int> whole, parts;
    if (!tok->sp.Encode(sample, &whole).ok() ||
        !encode_parts(tok, sample, 0, &parts).ok() || whole != parts)
        return;
    tok->segmented = true;
}

curate_tokenizer *load_serialized(std::string &bytes, const char *name, unsigned flags,
                                  curate_error *err)
{
    if ((flags & CURATE_TOK_LOAD_KEEP_WHITESPACE) &&
        !set_normalizer_bool(&bytes, NORM_REMOVE_EXTRA_WHITESPACES, false)) {
        curate_error_set(err, CURATE_ERR_TOKENIZER, "not a SentencePiece model: bad protobuf");
        set_file(err, name);
        return nullptr;
    }
    curate_tokenizer *tok = new curate_tokenizer;
    const auto st = tok->sp.LoadFromSerializedProto(bytes);
    if (!st.ok()) {
        curate_error_set(err, CURATE_ERR_TOKENIZER, "not a SentencePiece model: %s",
                         st.ToString().c_str());
        set_file(err, name);
        delete tok;
        return nullptr;
    }
    const int n = tok->sp.GetPieceSize();
    if (n <= 0) {
        curate_error_set(err, CURATE_ERR_TOKENIZER, "SentencePiece model has no pieces");
        set_file(err, name);
        delete tok;
        return nullptr;
    }
    tok->n_vocab = n;
    /* SentencePiece returns -1 for ids a model disables; keep only ids that
     * are inside the vocabulary so callers can index with them safely. */
    auto keep = [n](int id) { return id >= 0 && id < n ? static_cast<int32_t>(id) : -1; };
    tok->bos = keep(tok->sp.bos_id());
    tok->eos = keep(tok->sp.eos_id());
    tok->unk = keep(tok->sp.unk_id());
    tok->pad = keep(tok->sp.pad_id());
    if (!(flags & CURATE_TOK_LOAD_WHOLE_TEXT))
        setup_segments(tok, bytes);
    return tok;
}

/* The common path of encode and count: ids of text in *ids (replaced). */
curate_status encode_ids(const curate_tokenizer *tok, const char *text, size_t len,
                         std::vector<int> *ids, curate_error *err)
{
    if (len > static_cast<size_t>(INT_MAX))
        return curate_error_set(err, CURATE_ERR_RANGE,
                                "text of %zu bytes is too long for SentencePiece (limit %d)", len,
                                INT_MAX);
    ids->clear();
    const absl::string_view view(len ? text : "", len);
    const auto st = (tok->segmented && len > SEGMENT_BYTES)
                        ? encode_parts(tok, view, SEGMENT_BYTES, ids)
                        : tok->sp.Encode(view, ids);
    if (!st.ok())
        return curate_error_set(err, CURATE_ERR_TOKENIZER, "SentencePiece encode failed: %s",
                                st.ToString().c_str());
    return CURATE_OK;
}

size_t extra_count(const curate_tokenizer *tok, unsigned flags)
{
    size_t extra = 0;
    if ((flags & CURATE_TOK_ADD_BOS) && tok->bos >= 0)
        extra++;
    if ((flags & CURATE_TOK_ADD_EOS) && tok->eos >= 0)
        extra++;
    return extra;
}

} // namespace

/* ---- token vectors ------------------------------------------------------- */

extern "C" void curate_tokens_init(curate_tokens *t)
{
    t->ids = nullptr;
    t->n = 0;
    t->cap = 0;
}

extern "C" void curate_tokens_release(curate_tokens *t)
{
    std::free(t->ids);
    curate_tokens_init(t);
}

extern "C" curate_status curate_tokens_reserve(curate_tokens *t, size_t extra)
{
    const size_t max = SIZE_MAX / sizeof(int32_t);
    if (extra > max - t->n)
        return CURATE_ERR_NOMEM;
    const size_t need = t->n + extra;
    if (need <= t->cap)
        return CURATE_OK;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < need)
        cap = cap > max / 2 ? need : cap * 2;
    void *p = std::realloc(t->ids, cap * sizeof(int32_t));
    if (!p)
        return CURATE_ERR_NOMEM;
    t->ids = static_cast<int32_t *>(p);
    t->cap = cap;
    return CURATE_OK;
}

extern "C" curate_status curate_tokens_append(curate_tokens *t, const int32_t *ids, size_t n)
{
    if (n == 0)
        return CURATE_OK;
    curate_status st = curate_tokens_reserve(t, n);
    if (st != CURATE_OK)
        return st;
    std::memcpy(t->ids + t->n, ids, n * sizeof(int32_t));
    t->n += n;
    return CURATE_OK;
}

extern "C" curate_status curate_tokens_push(curate_tokens *t, int32_t id)
{
    return curate_tokens_append(t, &id, 1);
}

/* ---- loading --------------------------------------------------------------- */

extern "C" curate_tokenizer *curate_tokenizer_load(const char *path, curate_error *err)
{
    return curate_tokenizer_load_ex(path, 0, err);
}

extern "C" curate_tokenizer *curate_tokenizer_load_mem(const void *data, size_t size,
                                                       const char *name, curate_error *err)
{
    return curate_tokenizer_load_mem_ex(data, size, name, 0, err);
}

extern "C" curate_tokenizer *curate_tokenizer_load_ex(const char *path, unsigned flags,
                                                      curate_error *err)
{
    if (!path) {
        curate_error_set(err, CURATE_ERR_INVALID, "no tokenizer path given");
        return nullptr;
    }
    try {
        FILE *f = std::fopen(path, "rb");
        if (!f) {
            const int e = errno;
            curate_error_set(err, CURATE_ERR_IO, "cannot open tokenizer: %s", std::strerror(e));
            set_file(err, path);
            return nullptr;
        }
        std::string bytes;
        char chunk[65536];
        size_t got;
        while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0)
            bytes.append(chunk, got);
        const int failed = std::ferror(f);
        const int e = errno;
        std::fclose(f);
        if (failed) {
            curate_error_set(err, CURATE_ERR_IO, "cannot read tokenizer: %s", std::strerror(e));
            set_file(err, path);
            return nullptr;
        }
        return load_serialized(bytes, path, flags, err);
    } catch (...) {
        from_exception(err, "loading the tokenizer");
        set_file(err, path);
        return nullptr;
    }
}

extern "C" curate_tokenizer *curate_tokenizer_load_mem_ex(const void *data, size_t size,
                                                          const char *name, unsigned flags,
                                                          curate_error *err)
{
    if (!data && size) {
        curate_error_set(err, CURATE_ERR_INVALID, "NULL tokenizer data");
        return nullptr;
    }
    try {
        std::string bytes(static_cast<const char *>(data), size);
        return load_serialized(bytes, name, flags, err);
    } catch (...) {
        from_exception(err, "loading the tokenizer");
        set_file(err, name);
        return nullptr;
    }
}

extern "C" void curate_tokenizer_free(curate_tokenizer *tok)
{
    /* The destructor of SentencePieceProcessor does not throw. */
    delete tok;
}

/* ---- encoding and decoding --------------------------------------------------- */

extern "C" curate_status curate_tokenizer_encode(const curate_tokenizer *tok, const char *text,
                                                 size_t len, unsigned flags, curate_tokens *out,
                                                 curate_error *err)
{
    if (!tok || !out || (!text && len))
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument to tokenizer encode");
    try {
        thread_local std::vector<int> ids;
        curate_status st = encode_ids(tok, text, len, &ids, err);
        if (st != CURATE_OK)
            return st;
        const size_t total = ids.size() + extra_count(tok, flags);
        if (curate_tokens_reserve(out, total) != CURATE_OK)
            return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for %zu token ids",
                                    total);
        /* Nothing below can fail, so out is either fully appended or
         * untouched. */
        if ((flags & CURATE_TOK_ADD_BOS) && tok->bos >= 0)
            out->ids[out->n++] = tok->bos;
        for (int id : ids)
            out->ids[out->n++] = static_cast<int32_t>(id);
        if ((flags & CURATE_TOK_ADD_EOS) && tok->eos >= 0)
            out->ids[out->n++] = tok->eos;
        return CURATE_OK;
    } catch (...) {
        return from_exception(err, "encoding");
    }
}

extern "C" curate_status curate_tokenizer_count(const curate_tokenizer *tok, const char *text,
                                                size_t len, unsigned flags, uint64_t *n_tokens,
                                                curate_error *err)
{
    if (!tok || !n_tokens || (!text && len))
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument to tokenizer count");
    try {
        thread_local std::vector<int> ids;
        curate_status st = encode_ids(tok, text, len, &ids, err);
        if (st != CURATE_OK)
            return st;
        *n_tokens = static_cast<uint64_t>(ids.size()) + extra_count(tok, flags);
        return CURATE_OK;
    } catch (...) {
        return from_exception(err, "counting tokens");
    }
}

extern "C" curate_status curate_tokenizer_decode(const curate_tokenizer *tok, const int32_t *ids,
                                                 size_t n, curate_buf *out, curate_error *err)
{
    if (!tok || !out || (!ids && n))
        return curate_error_set(err, CURATE_ERR_INVALID, "NULL argument to tokenizer decode");
    try {
        std::vector<int> v;
        v.reserve(n);
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= tok->n_vocab)
                return curate_error_set(err, CURATE_ERR_RANGE,
                                        "token id %ld at position %zu is outside the vocabulary "
                                        "(0..%ld)",
                                        static_cast<long>(ids[i]), i,
                                        static_cast<long>(tok->n_vocab) - 1);
            v.push_back(ids[i]);
        }
        std::string text;
        const auto st = tok->sp.Decode(v, &text);
        if (!st.ok())
            return curate_error_set(err, CURATE_ERR_TOKENIZER, "SentencePiece decode failed: %s",
                                    st.ToString().c_str());
        if (curate_buf_append(out, text.data(), text.size()) != CURATE_OK)
            return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory for decoded text");
        return CURATE_OK;
    } catch (...) {
        return from_exception(err, "decoding");
    }
}

/* ---- vocabulary ---------------------------------------------------------------- */

extern "C" size_t curate_tokenizer_vocab_size(const curate_tokenizer *tok)
{
    return tok ? static_cast<size_t>(tok->n_vocab) : 0;
}

extern "C" int curate_tokenizer_in_parts(const curate_tokenizer *tok)
{
    return tok && tok->segmented ? 1 : 0;
}

extern "C" int32_t curate_tokenizer_bos(const curate_tokenizer *tok) { return tok ? tok->bos : -1; }
extern "C" int32_t curate_tokenizer_eos(const curate_tokenizer *tok) { return tok ? tok->eos : -1; }
extern "C" int32_t curate_tokenizer_unk(const curate_tokenizer *tok) { return tok ? tok->unk : -1; }
extern "C" int32_t curate_tokenizer_pad(const curate_tokenizer *tok) { return tok ? tok->pad : -1; }

extern "C" const char *curate_tokenizer_piece(const curate_tokenizer *tok, int32_t id)
{
    if (!tok || id < 0 || id >= tok->n_vocab)
        return nullptr;
    try {
        /* IdToPiece returns a reference into the model proto, which lives as
         * long as the processor. */
        return tok->sp.IdToPiece(id).c_str();
    } catch (...) {
        return nullptr;
    }
}

extern "C" float curate_tokenizer_score(const curate_tokenizer *tok, int32_t id)
{
    if (!tok || id < 0 || id >= tok->n_vocab)
        return 0.0f;
    try {
        return tok->sp.GetScore(id);
    } catch (...) {
        return 0.0f;
    }
}

extern "C" curate_piece_type curate_tokenizer_piece_type(const curate_tokenizer *tok, int32_t id)
{
    if (!tok || id < 0 || id >= tok->n_vocab)
        return CURATE_PIECE_INVALID;
    try {
        if (tok->sp.IsUnknown(id))
            return CURATE_PIECE_UNKNOWN;
        if (tok->sp.IsControl(id))
            return CURATE_PIECE_CONTROL;
        if (tok->sp.IsByte(id))
            return CURATE_PIECE_BYTE;
        if (tok->sp.IsUnused(id))
            return CURATE_PIECE_UNUSED;
        return CURATE_PIECE_NORMAL;
    } catch (...) {
        return CURATE_PIECE_INVALID;
    }
}

extern "C" int32_t curate_tokenizer_piece_id(const curate_tokenizer *tok, const char *piece,
                                             size_t len)
{
    if (!tok || (!piece && len))
        return -1;
    try {
        const absl::string_view want(len ? piece : "", len);
        const int id = tok->sp.PieceToId(want);
        if (id < 0 || id >= tok->n_vocab)
            return -1;
        /* PieceToId answers unk for pieces it does not know: check that the
         * id really spells the piece. */
        const std::string &have = tok->sp.IdToPiece(id);
        if (have.size() != len || (len && std::memcmp(have.data(), piece, len) != 0))
            return -1;
        return static_cast<int32_t>(id);
    } catch (...) {
        return -1;
    }
}
