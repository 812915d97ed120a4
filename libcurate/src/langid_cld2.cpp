/*
 * langid_cld2.cpp - language identification through CLD2 and script
 * counting (curate/langid.h).
 *
 * CLD2 is C++ and can throw (std::bad_alloc from its internal buffers), so
 * the one call into it sits in a try block and every failure becomes a
 * status.  CLD2 assumes well-formed UTF-8 and scans with its own state
 * tables; the text it sees is therefore either the caller's bytes after
 * they have been checked here, or a copy in which invalid bytes became
 * spaces.  We call the non-checking entry point because the check has been
 * done, and CLD2's check would be a second pass over the text.
 *
 * The script scan and the sampling of long texts are plain C-style code:
 * one pass that decodes UTF-8, classifies letters with utf8proc's category
 * table, finds each letter's script in a sorted range table (remembering
 * the last range hit, since text comes in runs of one script) and, when a
 * copy is needed, writes it in the same pass.
 */
#include "curate/langid.h"

#include <cmath>
#include <cstdio> /* compact_lang_det.h uses FILE without including it */
#include <cstdlib>
#include <cstring>
#include <new>

#include <cld2/public/compact_lang_det.h>
#include <cld2/public/encodings.h>
#include <utf8proc.h>

/* ------------------------------------------------------------------------ */
/* Scripts                                                                  */
/* ------------------------------------------------------------------------ */

namespace {

/* Order = tie-break order documented in the header. */
enum Script {
    S_LATN, S_CYRL, S_GREK, S_ARMN, S_GEOR, S_HEBR, S_ARAB, S_SYRC, S_THAA, S_DEVA,
    S_BENG, S_GURU, S_GUJR, S_ORYA, S_TAML, S_TELU, S_KNDA, S_MLYM, S_SINH, S_THAI,
    S_LAOO, S_TIBT, S_MYMR, S_KHMR, S_MONG, S_ETHI, S_CHER, S_CANS, S_HANI, S_HIRA,
    S_KANA, S_BOPO, S_HANG, S_JPAN, S_YIII, S_TFNG, S_VAII, S_NKOO, S_ZZZZ, S_ZYYY,
    S_COUNT
};

const struct {
    const char *code, *name;
} kScripts[S_COUNT] = {
    {"Latn", "Latin"},      {"Cyrl", "Cyrillic"},  {"Grek", "Greek"},
    {"Armn", "Armenian"},   {"Geor", "Georgian"},  {"Hebr", "Hebrew"},
    {"Arab", "Arabic"},     {"Syrc", "Syriac"},    {"Thaa", "Thaana"},
    {"Deva", "Devanagari"}, {"Beng", "Bengali"},   {"Guru", "Gurmukhi"},
    {"Gujr", "Gujarati"},   {"Orya", "Oriya"},     {"Taml", "Tamil"},
    {"Telu", "Telugu"},     {"Knda", "Kannada"},   {"Mlym", "Malayalam"},
    {"Sinh", "Sinhala"},    {"Thai", "Thai"},      {"Laoo", "Lao"},
    {"Tibt", "Tibetan"},    {"Mymr", "Myanmar"},   {"Khmr", "Khmer"},
    {"Mong", "Mongolian"},  {"Ethi", "Ethiopic"},  {"Cher", "Cherokee"},
    {"Cans", "Canadian Aboriginal"}, {"Hani", "Han"}, {"Hira", "Hiragana"},
    {"Kana", "Katakana"},   {"Bopo", "Bopomofo"},  {"Hang", "Hangul"},
    {"Jpan", "Japanese"},   {"Yiii", "Yi"},        {"Tfng", "Tifinagh"},
    {"Vaii", "Vai"},        {"Nkoo", "N'Ko"},      {"Zzzz", "unknown script"},
    {"Zyyy", "no letters"},
};

struct Range {
    uint32_t lo, hi;
    uint8_t script;
};

/*
 * Blocks (and parts of blocks) whose letters belong to one script, sorted.
 * Whether a code point is a letter is decided by its Unicode category, so
 * the digits and punctuation inside these blocks do not count.  Shared
 * blocks (combining marks, general punctuation, spacing modifiers) are
 * deliberately absent.
 */
const Range kRanges[] = {
    {0x0041, 0x005A, S_LATN}, {0x0061, 0x007A, S_LATN}, {0x00AA, 0x00AA, S_LATN},
    {0x00BA, 0x00BA, S_LATN}, {0x00C0, 0x02AF, S_LATN}, {0x0370, 0x03FF, S_GREK},
    {0x0400, 0x052F, S_CYRL}, {0x0530, 0x058F, S_ARMN}, {0x0590, 0x05FF, S_HEBR},
    {0x0600, 0x06FF, S_ARAB}, {0x0700, 0x074F, S_SYRC}, {0x0750, 0x077F, S_ARAB},
    {0x0780, 0x07BF, S_THAA}, {0x07C0, 0x07FF, S_NKOO}, {0x0860, 0x086F, S_SYRC},
    {0x0870, 0x08FF, S_ARAB}, {0x0900, 0x097F, S_DEVA}, {0x0980, 0x09FF, S_BENG},
    {0x0A00, 0x0A7F, S_GURU}, {0x0A80, 0x0AFF, S_GUJR}, {0x0B00, 0x0B7F, S_ORYA},
    {0x0B80, 0x0BFF, S_TAML}, {0x0C00, 0x0C7F, S_TELU}, {0x0C80, 0x0CFF, S_KNDA},
    {0x0D00, 0x0D7F, S_MLYM}, {0x0D80, 0x0DFF, S_SINH}, {0x0E00, 0x0E7F, S_THAI},
    {0x0E80, 0x0EFF, S_LAOO}, {0x0F00, 0x0FFF, S_TIBT}, {0x1000, 0x109F, S_MYMR},
    {0x10A0, 0x10FF, S_GEOR}, {0x1100, 0x11FF, S_HANG}, {0x1200, 0x139F, S_ETHI},
    {0x13A0, 0x13FF, S_CHER}, {0x1400, 0x167F, S_CANS}, {0x1780, 0x17FF, S_KHMR},
    {0x1800, 0x18AF, S_MONG}, {0x18B0, 0x18FF, S_CANS}, {0x19E0, 0x19FF, S_KHMR},
    {0x1C80, 0x1C8F, S_CYRL}, {0x1C90, 0x1CBF, S_GEOR}, {0x1D00, 0x1DBF, S_LATN},
    {0x1E00, 0x1EFF, S_LATN}, {0x1F00, 0x1FFF, S_GREK}, {0x2071, 0x2071, S_LATN},
    {0x207F, 0x207F, S_LATN}, {0x2090, 0x209C, S_LATN}, {0x2C60, 0x2C7F, S_LATN},
    {0x2D00, 0x2D2F, S_GEOR}, {0x2D30, 0x2D7F, S_TFNG}, {0x2D80, 0x2DDF, S_ETHI},
    {0x2DE0, 0x2DFF, S_CYRL}, {0x2E80, 0x2FDF, S_HANI}, {0x3005, 0x3005, S_HANI},
    {0x3007, 0x3007, S_HANI}, {0x3021, 0x3029, S_HANI}, {0x3038, 0x303B, S_HANI},
    {0x3041, 0x309F, S_HIRA}, {0x30A0, 0x30FF, S_KANA}, {0x3105, 0x312F, S_BOPO},
    {0x3131, 0x318F, S_HANG}, {0x31A0, 0x31BF, S_BOPO}, {0x31F0, 0x31FF, S_KANA},
    {0x3400, 0x4DBF, S_HANI}, {0x4E00, 0x9FFF, S_HANI}, {0xA000, 0xA4CF, S_YIII},
    {0xA500, 0xA63F, S_VAII}, {0xA640, 0xA69F, S_CYRL}, {0xA720, 0xA7FF, S_LATN},
    {0xA8E0, 0xA8FF, S_DEVA}, {0xA960, 0xA97F, S_HANG}, {0xA9E0, 0xA9FF, S_MYMR},
    {0xAA60, 0xAA7F, S_MYMR}, {0xAB00, 0xAB2F, S_ETHI}, {0xAB30, 0xAB6F, S_LATN},
    {0xAB70, 0xABBF, S_CHER}, {0xAC00, 0xD7FF, S_HANG}, {0xF900, 0xFAFF, S_HANI},
    {0xFB00, 0xFB06, S_LATN}, {0xFB13, 0xFB17, S_ARMN}, {0xFB1D, 0xFB4F, S_HEBR},
    {0xFB50, 0xFDFF, S_ARAB}, {0xFE70, 0xFEFF, S_ARAB}, {0xFF21, 0xFF3A, S_LATN},
    {0xFF41, 0xFF5A, S_LATN}, {0xFF66, 0xFF9F, S_KANA}, {0xFFA0, 0xFFDC, S_HANG},
    {0x10780, 0x107BF, S_LATN}, {0x1B000, 0x1B000, S_KANA}, {0x1B001, 0x1B16F, S_HIRA},
    {0x1DF00, 0x1DFFF, S_LATN}, {0x20000, 0x2FA1F, S_HANI}, {0x30000, 0x323AF, S_HANI},
};
const size_t kNRanges = sizeof kRanges / sizeof kRanges[0];

/* Script index of code point c, or S_ZZZZ.  *hint is the last range hit. */
inline int script_of(uint32_t c, size_t *hint)
{
    const Range &h = kRanges[*hint];
    if (c >= h.lo && c <= h.hi)
        return h.script;
    size_t lo = 0, hi = kNRanges;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (kRanges[mid].hi < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < kNRanges && c >= kRanges[lo].lo) {
        *hint = lo;
        return kRanges[lo].script;
    }
    return S_ZZZZ;
}

inline bool is_letter_category(uint32_t c)
{
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        return true;
    default:
        return false;
    }
}

/*
 * Length of the valid UTF-8 sequence at s[0..n) with its code point in
 * *cp, or 0 when s starts with an invalid byte.  Same rules as
 * curate_utf8_check(): no overlong forms, no surrogates, nothing above
 * U+10FFFF, no truncated sequences.
 */
inline size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b < 0xC2 || b > 0xF4)
        return 0;
    if (b < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80)
            return 0;
        *cp = (uint32_t)(b & 0x1F) << 6 | (s[1] & 0x3F);
        return 2;
    }
    if (b < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((b == 0xE0 && s[1] < 0xA0) || (b == 0xED && s[1] >= 0xA0))
            return 0; /* overlong, surrogate */
        *cp = (uint32_t)(b & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        return 3;
    }
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
        return 0;
    if ((b == 0xF0 && s[1] < 0x90) || (b == 0xF4 && s[1] >= 0x90))
        return 0; /* overlong, above U+10FFFF */
    *cp = (uint32_t)(b & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
          (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
    return 4;
}

struct ScriptCounts {
    uint64_t n[S_COUNT];
    uint64_t letters;
    uint64_t invalid;
    size_t hint;
};

/*
 * Count letters per script in s[0..n).  If out is not NULL, also copy the
 * bytes there with each invalid byte replaced by a space (out must hold n
 * bytes); returns the bytes written (n).
 */
void scan(const char *text, size_t n, ScriptCounts *sc, char *out)
{
    const unsigned char *s = reinterpret_cast<const unsigned char *>(text);
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        if (b < 0x80) {
            /* ASCII: letters are A-Z and a-z, all Latin. */
            if ((unsigned char)((b | 0x20) - 'a') < 26) {
                sc->n[S_LATN]++;
                sc->letters++;
            }
            if (out)
                out[i] = (char)b;
            i++;
            continue;
        }
        uint32_t cp = 0;
        size_t len = utf8_decode(s + i, n - i, &cp);
        if (len == 0) {
            sc->invalid++;
            if (out)
                out[i] = ' ';
            i++;
            continue;
        }
        if (is_letter_category(cp)) {
            sc->n[script_of(cp, &sc->hint)]++;
            sc->letters++;
        }
        if (out)
            memcpy(out + i, s + i, len);
        i += len;
    }
}

void script_finish(ScriptCounts *sc, curate_script_result *out)
{
    uint64_t *c = sc->n;
    const uint64_t kana = c[S_HIRA] + c[S_KANA];
    const uint64_t cjk = kana + c[S_HANI];
    /* Japanese: kana at least 10% of Han + kana (see the header). */
    if (kana > 0 && kana * 10 >= cjk) {
        c[S_JPAN] += cjk;
        c[S_HIRA] = c[S_KANA] = c[S_HANI] = 0;
    }
    int best = S_ZYYY;
    uint64_t best_n = 0;
    for (int s = 0; s < S_ZYYY; s++)
        if (c[s] > best_n) {
            best = s;
            best_n = c[s];
        }
    out->script = kScripts[best].code;
    out->share = sc->letters ? (double)best_n / (double)sc->letters : 0.0;
    out->letters = sc->letters;
    out->invalid = sc->invalid;
}

} /* namespace */

extern "C" curate_status curate_script_detect(const char *s, size_t n, curate_script_result *out,
                                              curate_error *err)
{
    if (!out || (!s && n))
        return curate_error_set(err, CURATE_ERR_INVALID, "curate_script_detect: NULL argument");
    ScriptCounts sc;
    memset(&sc, 0, sizeof sc);
    scan(s, n, &sc, nullptr);
    script_finish(&sc, out);
    return CURATE_OK;
}

extern "C" const char *curate_script_name(const char *code)
{
    if (!code)
        return nullptr;
    for (const auto &s : kScripts)
        if (strcmp(s.code, code) == 0)
            return s.name;
    return nullptr;
}

/* ------------------------------------------------------------------------ */
/* Language codes                                                           */
/* ------------------------------------------------------------------------ */

namespace {

/*
 * The languages the linked CLD2 tables answer, by result code.  Derived
 * from the tables' own lists of recognized language-script pairs (quadgram,
 * octagram and CJK tables) plus the languages CLD2 assigns by script alone
 * (ULScriptRecognitionType == RTypeOne); see docs/curate-lang-filter.1.
 */
const struct {
    const char *code, *name;
} kLanguages[] = {
    {"af", "Afrikaans"},  {"ar", "Arabic"},      {"az", "Azerbaijani"}, {"be", "Belarusian"},
    {"bg", "Bulgarian"},  {"bh", "Bihari"},      {"bn", "Bengali"},     {"bs", "Bosnian"},
    {"ca", "Catalan"},    {"ceb", "Cebuano"},    {"chr", "Cherokee"},   {"cs", "Czech"},
    {"cy", "Welsh"},      {"da", "Danish"},      {"de", "German"},      {"dv", "Dhivehi"},
    {"el", "Greek"},      {"en", "English"},     {"es", "Spanish"},     {"et", "Estonian"},
    {"eu", "Basque"},     {"fa", "Persian"},     {"fi", "Finnish"},     {"fr", "French"},
    {"ga", "Irish"},      {"gd", "Scottish Gaelic"}, {"gl", "Galician"}, {"gu", "Gujarati"},
    {"he", "Hebrew"},     {"hi", "Hindi"},       {"hmn", "Hmong"},      {"hr", "Croatian"},
    {"ht", "Haitian Creole"}, {"hu", "Hungarian"}, {"hy", "Armenian"},  {"id", "Indonesian"},
    {"is", "Icelandic"},  {"it", "Italian"},     {"iu", "Inuktitut"},   {"ja", "Japanese"},
    {"jv", "Javanese"},   {"ka", "Georgian"},    {"kk", "Kazakh"},      {"km", "Khmer"},
    {"kn", "Kannada"},    {"ko", "Korean"},      {"ku", "Kurdish"},     {"ky", "Kyrgyz"},
    {"lg", "Ganda"},      {"lif", "Limbu"},      {"lo", "Lao"},         {"lt", "Lithuanian"},
    {"lv", "Latvian"},    {"mg", "Malagasy"},    {"mk", "Macedonian"},  {"ml", "Malayalam"},
    {"mn", "Mongolian"},  {"mr", "Marathi"},     {"ms", "Malay"},       {"mt", "Maltese"},
    {"my", "Burmese"},    {"ne", "Nepali"},      {"nl", "Dutch"},       {"no", "Norwegian"},
    {"ny", "Chichewa"},   {"or", "Oriya"},       {"pa", "Punjabi"},     {"pl", "Polish"},
    {"pt", "Portuguese"}, {"ro", "Romanian"},    {"ru", "Russian"},     {"rw", "Kinyarwanda"},
    {"si", "Sinhala"},    {"sk", "Slovak"},      {"sl", "Slovenian"},   {"sq", "Albanian"},
    {"sr", "Serbian"},    {"st", "Sesotho"},     {"su", "Sundanese"},   {"sv", "Swedish"},
    {"sw", "Swahili"},    {"syr", "Syriac"},     {"ta", "Tamil"},       {"te", "Telugu"},
    {"tg", "Tajik"},      {"th", "Thai"},        {"tl", "Tagalog"},     {"tr", "Turkish"},
    {"uk", "Ukrainian"},  {"ur", "Urdu"},        {"uz", "Uzbek"},       {"vi", "Vietnamese"},
    {"yi", "Yiddish"},    {"zh", "Chinese"},
};
const size_t kNLanguages = sizeof kLanguages / sizeof kLanguages[0];

const struct {
    const char *from, *to;
} kCodeMap[] = {
    {"iw", "he"},  {"jw", "jv"},     {"in", "id"},     {"ji", "yi"},     {"mo", "ro"},
    {"zh-Hant", "zh"}, {"sr-ME", "sr"}, {"blu", "hmn"}, {"un", "und"}, {"xxx", "und"},
    {"zzb", "und"}, {"zzp", "und"},  {"zzh", "und"},   {"zze", "und"},
};

const char kUnd[] = "und";

} /* namespace */

extern "C" const char *curate_langid_code_from_cld2(const char *code)
{
    if (!code || !*code)
        return kUnd;
    /* "xx-Latn", "xx-Tfng", ...: a script without a language. */
    if (code[0] == 'x' && code[1] == 'x' && code[2] == '-')
        return kUnd;
    for (const auto &m : kCodeMap)
        if (strcmp(m.from, code) == 0)
            return m.to;
    return code;
}

extern "C" size_t curate_langid_language_count(void)
{
    return kNLanguages;
}

extern "C" int curate_langid_language(size_t i, const char **code, const char **name)
{
    if (i >= kNLanguages)
        return -1;
    if (code)
        *code = kLanguages[i].code;
    if (name)
        *name = kLanguages[i].name;
    return 0;
}

extern "C" int curate_langid_language_known(const char *code)
{
    if (!code)
        return 0;
    if (strcmp(code, kUnd) == 0)
        return 1;
    size_t lo = 0, hi = kNLanguages;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(kLanguages[mid].code, code);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Detection                                                                */
/* ------------------------------------------------------------------------ */

/* How one pass samples a text: at most limit bytes in k windows of w. */
struct Plan {
    size_t limit, k, w;
};

struct curate_langid {
    curate_langid_opts opts;
    Plan quick;         /* first pass (quick.limit 0: none) */
    Plan full;          /* second (or only) pass */
    char *scratch;      /* full.limit + full.k bytes */
};

extern "C" void curate_langid_opts_default(curate_langid_opts *opts)
{
    if (!opts)
        return;
    opts->max_bytes = CURATE_LANGID_DEFAULT_MAX_BYTES;
    opts->quick_bytes = CURATE_LANGID_DEFAULT_QUICK_BYTES;
    opts->min_letters = CURATE_LANGID_DEFAULT_MIN_LETTERS;
}

static Plan make_plan(size_t limit)
{
    Plan p;
    p.limit = limit;
    p.k = limit / CURATE_LANGID_WINDOW_BYTES;
    if (p.k > CURATE_LANGID_MAX_WINDOWS)
        p.k = CURATE_LANGID_MAX_WINDOWS;
    if (p.k == 0)
        p.k = 1;
    p.w = limit / p.k;
    return p;
}

extern "C" curate_langid *curate_langid_init(const curate_langid_opts *opts, curate_error *err)
{
    curate_langid_opts o;
    curate_langid_opts_default(&o);
    if (opts)
        o = *opts;
    if (o.max_bytes < CURATE_LANGID_WINDOW_BYTES || o.max_bytes > CURATE_LANGID_MAX_MAX_BYTES) {
        curate_error_set(err, CURATE_ERR_INVALID, "language id: max_bytes %zu is out of range (%zu to %zu)",
                         o.max_bytes, CURATE_LANGID_WINDOW_BYTES, CURATE_LANGID_MAX_MAX_BYTES);
        return nullptr;
    }
    if (o.quick_bytes != 0 && o.quick_bytes < CURATE_LANGID_WINDOW_BYTES) {
        curate_error_set(err, CURATE_ERR_INVALID, "language id: quick_bytes %zu is below %zu (0 turns the quick pass off)",
                         o.quick_bytes, CURATE_LANGID_WINDOW_BYTES);
        return nullptr;
    }
    curate_langid *id = static_cast<curate_langid *>(calloc(1, sizeof *id));
    if (!id) {
        curate_error_set(err, CURATE_ERR_NOMEM, "language id: out of memory");
        return nullptr;
    }
    id->opts = o;
    id->full = make_plan(o.max_bytes);
    if (o.quick_bytes && o.quick_bytes < o.max_bytes)
        id->quick = make_plan(o.quick_bytes);
    /* Windows plus one separator each; no overflow: max_bytes <= 2^26. */
    id->scratch = static_cast<char *>(malloc(o.max_bytes + id->full.k + 1));
    if (!id->scratch) {
        free(id);
        curate_error_set(err, CURATE_ERR_NOMEM, "language id: out of memory");
        return nullptr;
    }
    return id;
}

extern "C" void curate_langid_free(curate_langid *id)
{
    if (!id)
        return;
    free(id->scratch);
    free(id);
}

namespace {

void result_und(curate_langid_result *r)
{
    memset(r, 0, sizeof *r);
    r->lang = kUnd;
    r->cld2_code = "un";
    r->script.script = kScripts[S_ZYYY].code;
}

inline bool is_space(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/*
 * Window i of k over text[0..n) (n > k * w): evenly spaced starts from 0 to
 * n - w, moved forward to a character (and, within 32 bytes, word)
 * boundary; the end moved back likewise.  Windows never overlap because
 * their nominal starts are at least w apart.
 */
void window_bounds(const char *text, size_t n, size_t k, size_t w, size_t i, size_t *b,
                   size_t *e)
{
    const unsigned char *s = reinterpret_cast<const unsigned char *>(text);
    size_t start = k > 1 ? (size_t)((unsigned long long)i * (n - w) / (k - 1)) : 0;
    size_t end = start + w;
    if (start > 0) {
        size_t lim = start + 32 < end ? start + 32 : end;
        size_t j = start;
        while (j < lim && !is_space(s[j - 1]))
            j++;
        if (j < lim)
            start = j;
        while (start < end && (s[start] & 0xC0) == 0x80)
            start++;
    }
    if (end < n) {
        size_t lim = end > start + 32 ? end - 32 : start;
        size_t j = end;
        while (j > lim && !is_space(s[j]))
            j--;
        if (j > lim)
            end = j;
        while (end > start && (s[end] & 0xC0) == 0x80)
            end--;
    }
    *b = start;
    *e = end;
}

/* The formula documented in the header ("Scores"). */
double lang_score(unsigned percent, double normalized_score, int reliable)
{
    double share = percent > 100 ? 1.0 : percent / 100.0;
    double strength = normalized_score >= 512.0 ? 1.0 : normalized_score / 512.0;
    if (strength < 0)
        strength = 0;
    double s = share * strength * (reliable ? 1.0 : 0.5);
    return std::floor(s * 1000.0 + 0.5) / 1000.0;
}

/* One CLD2 answer, with codes already mapped. */
struct Verdict {
    const char *lang;  /* result code, kUnd when unknown */
    const char *cld2;  /* CLD2's code of the summary language */
    int reliable;
    curate_lang_share top[CURATE_LANGID_TOP];
    size_t n_top;
    uint64_t text_bytes;
};

/* Add percent (rounded) of lang to a top list, or to lang's entry. */
void top_add(curate_lang_share *top, size_t *n_top, const char *lang, double percent,
             double normalized_score)
{
    size_t j = 0;
    while (j < *n_top && strcmp(top[j].lang, lang) != 0)
        j++;
    if (j == *n_top) {
        if (j == CURATE_LANGID_TOP)
            return;
        top[j].lang = lang;
        top[j].percent = 0;
        top[j].normalized_score = 0;
        (*n_top)++;
    }
    top[j].percent += (unsigned)(percent + 0.5);
    if (normalized_score > top[j].normalized_score)
        top[j].normalized_score = normalized_score;
}

/* Largest share first (stable insertion sort; n <= 3). */
void top_sort(curate_lang_share *top, size_t n)
{
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0 && top[b].percent > top[b - 1].percent; b--) {
            curate_lang_share t = top[b];
            top[b] = top[b - 1];
            top[b - 1] = t;
        }
}

/*
 * Ask CLD2 about buf[0..len) (valid UTF-8) and map the answer: codes
 * through the table, unknown and 0% entries dropped, entries that map to
 * one code (zh + zh-Hant) added up.
 */
curate_status ask_cld2(const char *buf, size_t len, Verdict *v, curate_error *err)
{
    memset(v, 0, sizeof *v);
    v->lang = kUnd;
    v->cld2 = "un";
    CLD2::Language l3[3] = {CLD2::UNKNOWN_LANGUAGE, CLD2::UNKNOWN_LANGUAGE,
                            CLD2::UNKNOWN_LANGUAGE};
    int p3[3] = {0, 0, 0};
    double ns3[3] = {0, 0, 0};
    int text_bytes = 0;
    bool reliable = false;
    CLD2::Language summary;
    try {
        /* is_plain_text: records are text, not HTML; no hints, no flags
         * (in particular not kCLDFlagBestEffort, which makes CLD2 guess on
         * too little evidence). */
        const CLD2::CLDHints *no_hints = nullptr;
        summary = CLD2::ExtDetectLanguageSummary(buf, static_cast<int>(len), true, no_hints, 0, l3,
                                                 p3, ns3, nullptr, &text_bytes, &reliable);
    } catch (const std::bad_alloc &) {
        return curate_error_set(err, CURATE_ERR_NOMEM, "language id: out of memory in CLD2");
    } catch (const std::exception &e) {
        return curate_error_set(err, CURATE_ERR_LANGID, "language id: CLD2 failed: %s", e.what());
    } catch (...) {
        return curate_error_set(err, CURATE_ERR_LANGID, "language id: CLD2 failed");
    }
    v->text_bytes = text_bytes > 0 ? (uint64_t)text_bytes : 0;
    for (int i = 0; i < 3; i++) {
        if (p3[i] <= 0 || l3[i] == CLD2::UNKNOWN_LANGUAGE)
            continue;
        const char *code = curate_langid_code_from_cld2(CLD2::LanguageCode(l3[i]));
        if (strcmp(code, kUnd) != 0)
            top_add(v->top, &v->n_top, code, p3[i], ns3[i]);
    }
    top_sort(v->top, v->n_top);
    const char *cld2 = CLD2::LanguageCode(summary);
    const char *code = curate_langid_code_from_cld2(cld2);
    if (strcmp(code, kUnd) != 0) {
        v->lang = code;
        v->cld2 = cld2;
        v->reliable = reliable ? 1 : 0;
    }
    return CURATE_OK;
}

/* The share entry of v's own language, or NULL. */
const curate_lang_share *own_share(const Verdict &v)
{
    for (size_t i = 0; i < v.n_top; i++)
        if (strcmp(v.top[i].lang, v.lang) == 0)
            return &v.top[i];
    return nullptr;
}

void verdict_to_result(const Verdict &v, curate_langid_result *out)
{
    memcpy(out->top, v.top, sizeof out->top);
    out->n_top = v.n_top;
    out->text_bytes = v.text_bytes;
    if (strcmp(v.lang, kUnd) == 0)
        return;
    out->lang = v.lang;
    out->cld2_code = v.cld2;
    out->reliable = v.reliable;
    const curate_lang_share *own = own_share(v);
    out->score = own ? lang_score(own->percent, own->normalized_score, v.reliable) : 0.0;
}

/*
 * Copy text[0..n) to dst (n bytes) with invalid UTF-8 blanked, counting
 * scripts into sc; returns whether anything had to be blanked.  When dst is
 * NULL only counts (and the caller may use text as it is if it was valid).
 */
bool take(const char *text, size_t n, ScriptCounts *sc, char *dst)
{
    uint64_t before = sc->invalid;
    scan(text, n, sc, dst);
    return sc->invalid != before;
}

/*
 * The full pass: at most plan.limit bytes (the whole text, or k windows
 * joined by newlines) shown to CLD2 in one call.
 */
curate_status full_pass(curate_langid *id, const Plan &plan, const char *text, size_t n,
                        curate_langid_result *out, curate_error *err)
{
    result_und(out);
    ScriptCounts sc;
    memset(&sc, 0, sizeof sc);
    const char *buf = text;
    size_t len = n;
    if (n <= plan.limit) {
        if (take(text, n, &sc, nullptr)) {
            /* Rare: copy with the invalid bytes blanked (fits: n <= max_bytes). */
            ScriptCounts again;
            memset(&again, 0, sizeof again);
            scan(text, n, &again, id->scratch);
            buf = id->scratch;
        }
        out->bytes_examined = n;
    } else {
        size_t pos = 0;
        for (size_t i = 0; i < plan.k; i++) {
            size_t b, e;
            window_bounds(text, n, plan.k, plan.w, i, &b, &e);
            if (i > 0)
                id->scratch[pos++] = '\n';
            take(text + b, e - b, &sc, id->scratch + pos);
            pos += e - b;
            out->bytes_examined += e - b;
        }
        buf = id->scratch;
        len = pos;
    }
    script_finish(&sc, &out->script);
    if (sc.letters < id->opts.min_letters) {
        out->short_text = 1;
        return CURATE_OK;
    }
    Verdict v;
    curate_status st = ask_cld2(buf, len, &v, err);
    if (st == CURATE_OK)
        verdict_to_result(v, out);
    return st;
}

/*
 * The quick pass: each of the plan's windows is asked on its own, so that
 * a language present at one end only cannot be absorbed by the other (on
 * a small joined sample CLD2 folds a minority it is unsure of into the
 * majority).  *settled is set when every window answers the same language,
 * reliably, with at least CURATE_LANGID_QUICK_MIN_PERCENT of its text; the
 * result then holds the windows' shares averaged by CLD2's text bytes.
 */
curate_status quick_pass(curate_langid *id, const Plan &plan, const char *text, size_t n,
                         curate_langid_result *out, bool *settled, curate_error *err)
{
    *settled = false;
    result_und(out);
    ScriptCounts sc;
    memset(&sc, 0, sizeof sc);
    Verdict v[CURATE_LANGID_MAX_WINDOWS] = {};
    size_t k = plan.k;
    for (size_t i = 0; i < k; i++) {
        size_t b, e;
        window_bounds(text, n, k, plan.w, i, &b, &e);
        const char *buf = text + b;
        if (take(text + b, e - b, &sc, nullptr)) {
            ScriptCounts again;
            memset(&again, 0, sizeof again);
            scan(text + b, e - b, &again, id->scratch);
            buf = id->scratch;
        }
        out->bytes_examined += e - b;
        curate_status st = ask_cld2(buf, e - b, &v[i], err);
        if (st != CURATE_OK)
            return st;
        const curate_lang_share *own = own_share(v[i]);
        if (strcmp(v[i].lang, kUnd) == 0 || !v[i].reliable || !own ||
            own->percent < CURATE_LANGID_QUICK_MIN_PERCENT ||
            (i > 0 && strcmp(v[i].lang, v[0].lang) != 0))
            return CURATE_OK; /* not clear-cut: the full pass decides */
    }
    script_finish(&sc, &out->script);
    if (sc.letters < id->opts.min_letters)
        return CURATE_OK;

    /* Merge: each language's share and normalized score averaged over the
     * windows, weighted by the bytes CLD2 scored in each. */
    struct Acc {
        const char *lang;
        double pct, ns, wsum;
    } acc[CURATE_LANGID_TOP * CURATE_LANGID_MAX_WINDOWS];
    size_t na = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < k; i++)
        total += v[i].text_bytes;
    for (size_t i = 0; i < k; i++) {
        double wgt = total ? (double)v[i].text_bytes / (double)total : 1.0 / (double)k;
        for (size_t j = 0; j < v[i].n_top; j++) {
            size_t x = 0;
            while (x < na && strcmp(acc[x].lang, v[i].top[j].lang) != 0)
                x++;
            if (x == na)
                acc[na++] = Acc{v[i].top[j].lang, 0.0, 0.0, 0.0};
            acc[x].pct += wgt * v[i].top[j].percent;
            acc[x].ns += wgt * v[i].top[j].normalized_score;
            acc[x].wsum += wgt;
        }
    }
    Verdict m;
    memset(&m, 0, sizeof m);
    m.lang = v[0].lang;
    m.cld2 = v[0].cld2;
    m.reliable = 1;
    m.text_bytes = total;
    for (size_t r = 0; r < CURATE_LANGID_TOP && r < na; r++) {
        size_t best = r; /* selection of the largest remaining share */
        for (size_t x = r + 1; x < na; x++)
            if (acc[x].pct > acc[best].pct)
                best = x;
        Acc t = acc[r];
        acc[r] = acc[best];
        acc[best] = t;
        if (acc[r].pct < 0.5)
            break;
        top_add(m.top, &m.n_top, acc[r].lang, acc[r].pct, acc[r].ns / acc[r].wsum);
    }
    verdict_to_result(m, out);
    *settled = true;
    return CURATE_OK;
}

} /* namespace */

extern "C" curate_status curate_langid_detect(curate_langid *id, const char *text, size_t n,
                                              curate_langid_result *out, curate_error *err)
{
    if (out)
        result_und(out);
    if (!id || !out || (!text && n))
        return curate_error_set(err, CURATE_ERR_INVALID, "curate_langid_detect: NULL argument");
    const bool two = id->quick.limit && n > id->quick.limit;
    curate_status st = CURATE_OK;
    if (two) {
        bool settled = false;
        st = quick_pass(id, id->quick, text, n, out, &settled, err);
        out->passes = 1;
        if (st == CURATE_OK && settled)
            return CURATE_OK;
    }
    if (st == CURATE_OK) {
        st = full_pass(id, id->full, text, n, out, err);
        out->passes = two ? 2 : 1;
    }
    if (st != CURATE_OK)
        result_und(out);
    return st;
}
