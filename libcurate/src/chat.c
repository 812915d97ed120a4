/*
 * chat.c - chat templates: a "messages" array rendered to model text.
 *
 * Two steps per conversation: collect() walks the array once, checks every
 * turn and remembers where its content literal is and what its (decoded)
 * role is; render() then writes the template, decoding each content
 * straight into the output buffer.  The turn order rules of llama2 and
 * gemma are checked between the two, so a conversation the template cannot
 * express fails before anything is written.
 */
#include "curate/chat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const template_names[CURATE_CHAT_TEMPLATE_COUNT_] = {
    [CURATE_CHAT_PLAIN] = "plain",   [CURATE_CHAT_CHATML] = "chatml",
    [CURATE_CHAT_LLAMA2] = "llama2", [CURATE_CHAT_LLAMA3] = "llama3",
    [CURATE_CHAT_GEMMA] = "gemma",
};

curate_status curate_chat_template_parse(const char *name, curate_chat_template *tpl,
                                         curate_error *err)
{
    for (int i = 0; name && i < CURATE_CHAT_TEMPLATE_COUNT_; i++)
        if (strcmp(name, template_names[i]) == 0) {
            *tpl = (curate_chat_template)i;
            return CURATE_OK;
        }
    return curate_error_set(err, CURATE_ERR_INVALID, "unknown chat template '%s' (known: %s)",
                            name ? name : "", curate_chat_template_names());
}

const char *curate_chat_template_name(curate_chat_template tpl)
{
    if ((unsigned)tpl >= CURATE_CHAT_TEMPLATE_COUNT_)
        return NULL;
    return template_names[tpl];
}

const char *curate_chat_template_names(void)
{
    return "plain, chatml, llama2, llama3, gemma";
}

/* ---- scanning the array ------------------------------------------------------ */

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/*
 * End of the JSON value starting at s[i].  The text has been validated
 * (by the record parser or curate_json_validate), so this only has to find
 * the end; it still never reads past n, and returns n if the text ends
 * early.
 */
static size_t skip_value(const char *s, size_t n, size_t i)
{
    size_t depth = 0;
    int in_string = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"') {
                in_string = 0;
                if (depth == 0)
                    return i + 1;
            }
            continue;
        }
        switch (c) {
        case '"': in_string = 1; break;
        case '[': case '{': depth++; break;
        case ']': case '}':
            if (depth == 0)
                return i; /* end of the enclosing container: a scalar ended */
            if (--depth == 0)
                return i + 1;
            break;
        case ',': case ' ': case '\t': case '\n': case '\r':
            if (depth == 0)
                return i;
            break;
        default: break;
        }
    }
    return n;
}

static const char *type_name(char c)
{
    switch (c) {
    case '"': return "a string";
    case '[': return "an array";
    case '{': return "an object";
    case 't': case 'f': return "a boolean";
    case 'n': return "null";
    default: return "a number";
    }
}

/* One turn, as collect() found it. */
typedef struct turn {
    size_t at;            /* offset of the turn's '{' (for messages) */
    const char *content;  /* the content's JSON string literal, quotes included */
    size_t content_len;
    size_t role_off;      /* the decoded role: roles->data + role_off */
    size_t role_len;
} turn;

typedef struct convo {
    turn *turns;
    size_t n, cap;
    curate_buf roles;     /* decoded roles, back to back */
    curate_surrogate_policy policy;
    const char *field;    /* name used in messages */
    size_t base;          /* offset of the array text in the caller's line */
} convo;

/* Set err (code, message, offset c->base + at) and return code. */
static curate_status fail_at(const convo *c, curate_error *err, size_t at, curate_status code,
                             const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static curate_status fail_at(const convo *c, curate_error *err, size_t at, curate_status code,
                             const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    curate_error_at_offset(err, (uint64_t)(c->base + at));
    return code;
}

/* Does member m have the key `key`?  Escaped keys are decoded to compare. */
static int key_is(const curate_member *m, const char *key)
{
    size_t klen = strlen(key);
    if (!m->key_escaped)
        return m->key_len == klen && memcmp(m->key, key, klen) == 0;
    curate_buf tmp;
    curate_buf_init(&tmp);
    int eq = curate_json_string_decode(m->key - 1, m->key_len + 2, CURATE_SURROGATE_REPLACE, &tmp,
                                       NULL) == CURATE_OK &&
             tmp.len == klen && memcmp(tmp.data, key, klen) == 0;
    curate_buf_release(&tmp);
    return eq;
}

static curate_status push_turn(convo *c, const turn *t)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        if (cap > SIZE_MAX / sizeof *c->turns)
            return CURATE_ERR_NOMEM;
        turn *p = realloc(c->turns, cap * sizeof *p);
        if (!p)
            return CURATE_ERR_NOMEM;
        c->turns = p;
        c->cap = cap;
    }
    c->turns[c->n++] = *t;
    return CURATE_OK;
}

/* Check one turn object s[0..n) (at offset `at` in the array text). */
static curate_status collect_turn(convo *c, curate_record *msg, const char *s, size_t n,
                                  size_t at, size_t index, curate_error *err)
{
    const char *f = c->field;
    curate_error perr;
    curate_error_clear(&perr);
    curate_status st = curate_record_parse(msg, s, n, &perr);
    if (st == CURATE_ERR_NOMEM)
        return curate_error_set(err, st, "out of memory");
    if (st != CURATE_OK) /* validated earlier, so this is a nesting limit */
        return fail_at(c, err, at + (size_t)perr.offset, st, "%s[%zu]: %s", f, index,
                       perr.message);

    const curate_member *role = NULL, *content = NULL;
    for (size_t i = 0; i < msg->n_members; i++) {
        const curate_member *m = &msg->members[i];
        int is_role = key_is(m, "role");
        if (!is_role && !key_is(m, "content"))
            continue;
        const curate_member **slot = is_role ? &role : &content;
        if (*slot)
            return fail_at(c, err, at + m->start, CURATE_ERR_INVALID, "%s[%zu]: two \"%s\" members",
                           f, index, is_role ? "role" : "content");
        *slot = m;
    }
    if (!role || !content)
        return fail_at(c, err, at, CURATE_ERR_NO_FIELD, "%s[%zu]: no \"%s\" member", f, index,
                       role ? "content" : "role");
    size_t role_at = at + (size_t)(role->value - s);
    if (role->type != CURATE_JSON_STRING)
        return fail_at(c, err, role_at, CURATE_ERR_FIELD_TYPE, "%s[%zu]: \"role\" is %s, not a string",
                       f, index, type_name(role->value[0]));
    if (content->type != CURATE_JSON_STRING)
        return fail_at(c, err, at + (size_t)(content->value - s), CURATE_ERR_FIELD_TYPE,
                       "%s[%zu]: \"content\" is %s, not a string", f, index,
                       type_name(content->value[0]));

    turn t = {at, content->value, content->value_len, c->roles.len, 0};
    curate_error derr;
    curate_error_clear(&derr);
    st = curate_json_string_decode(role->value, role->value_len, c->policy, &c->roles, &derr);
    if (st == CURATE_ERR_NOMEM)
        return curate_error_set(err, st, "out of memory");
    if (st != CURATE_OK)
        return fail_at(c, err, role_at + (size_t)derr.offset, st, "%s[%zu]: role: %s", f, index,
                       derr.message);
    t.role_len = c->roles.len - t.role_off;
    if (t.role_len == 0)
        return fail_at(c, err, role_at, CURATE_ERR_INVALID, "%s[%zu]: the role is empty", f, index);
    for (size_t i = 0; i < t.role_len; i++) {
        unsigned char ch = (unsigned char)c->roles.data[t.role_off + i];
        if (ch < 0x20 || ch == 0x7f)
            return fail_at(c, err, role_at, CURATE_ERR_INVALID,
                           "%s[%zu]: the role contains a control character", f, index);
    }
    if (push_turn(c, &t) != CURATE_OK)
        return curate_error_set(err, CURATE_ERR_NOMEM, "out of memory");
    return CURATE_OK;
}

/* Walk the array arr[0..n) (validated JSON) and collect its turns. */
static curate_status collect(convo *c, const char *arr, size_t n, curate_error *err)
{
    size_t i = skip_ws(arr, n, 0);
    if (i >= n || arr[i] != '[')
        return fail_at(c, err, i, CURATE_ERR_FIELD_TYPE, "\"%s\" is %s, not an array", c->field,
                       i < n ? type_name(arr[i]) : "empty");
    i = skip_ws(arr, n, i + 1);
    if (i >= n || arr[i] == ']')
        return fail_at(c, err, i, CURATE_ERR_INVALID, "\"%s\" is an empty array", c->field);
    curate_record msg;
    curate_record_init(&msg);
    msg.surrogates = c->policy;
    curate_status st = CURATE_OK;
    for (size_t index = 0; i < n; index++) {
        size_t end = skip_value(arr, n, i);
        if (arr[i] != '{') {
            st = fail_at(c, err, i, CURATE_ERR_FIELD_TYPE, "%s[%zu] is %s, not an object", c->field,
                         index, type_name(arr[i]));
            break;
        }
        st = collect_turn(c, &msg, arr + i, end - i, i, index, err);
        if (st != CURATE_OK)
            break;
        i = skip_ws(arr, n, end);
        if (i >= n || arr[i] != ',')
            break; /* ']': the text is valid JSON */
        i = skip_ws(arr, n, i + 1);
    }
    curate_record_release(&msg);
    return st;
}

/* ---- template rules ---------------------------------------------------------- */

static int role_is(const convo *c, size_t k, const char *name)
{
    size_t n = strlen(name);
    return c->turns[k].role_len == n && memcmp(c->roles.data + c->turns[k].role_off, name, n) == 0;
}

/*
 * llama2 and gemma: an optional first system turn, then user and
 * assistant alternating from user.  gemma also takes "model" for
 * assistant.  *first receives the index of the first non-system turn.
 */
static curate_status check_alternation(const convo *c, curate_chat_template tpl, size_t *first,
                                       curate_error *err)
{
    const char *tname = template_names[tpl];
    size_t k = role_is(c, 0, "system") ? 1 : 0;
    *first = k;
    if (k == 1 && c->n == 1)
        return fail_at(c, err, c->turns[0].at, CURATE_ERR_INVALID,
                       "%s[0]: a system turn needs a user turn after it in the %s template",
                       c->field, tname);
    for (; k < c->n; k++) {
        int want_user = (k - *first) % 2 == 0;
        int is_user = role_is(c, k, "user");
        int is_asst = role_is(c, k, "assistant") || (tpl == CURATE_CHAT_GEMMA && role_is(c, k, "model"));
        if (!is_user && !is_asst) {
            const char *why = role_is(c, k, "system") ? "a system turn may only come first"
                                                      : "roles are system, user, assistant";
            return fail_at(c, err, c->turns[k].at, CURATE_ERR_INVALID,
                           "%s[%zu]: role \"%.*s\" not accepted by the %s template (%s%s)",
                           c->field, k, (int)c->turns[k].role_len, c->roles.data + c->turns[k].role_off,
                           tname, why, tpl == CURATE_CHAT_GEMMA && !role_is(c, k, "system") ? " or model" : "");
        }
        if (is_user != want_user)
            return fail_at(c, err, c->turns[k].at, CURATE_ERR_INVALID,
                           "%s[%zu]: expected %s turn: the %s template needs user and assistant "
                           "turns alternating, starting with user",
                           c->field, k, want_user ? "a user" : "an assistant", tname);
    }
    return CURATE_OK;
}

/* ---- rendering --------------------------------------------------------------- */

/* Length of the Python str.isspace() character at s[0..n), or 0. */
static size_t space_at(const unsigned char *s, size_t n)
{
    if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x20)))
        return 1;
    if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0))
        return 2;
    if (n >= 3) {
        if (s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80) /* U+1680 */
            return 3;
        if (s[0] == 0xE2 && s[1] == 0x80 &&
            (s[2] <= 0x8A || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF)) /* U+2000-200A, 2028, 2029, 202F */
            return s[2] >= 0x80 ? 3 : 0;
        if (s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) /* U+205F */
            return 3;
        if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) /* U+3000 */
            return 3;
    }
    return 0;
}

/* Length of a whitespace character ending exactly at s + n, or 0. */
static size_t space_before(const unsigned char *s, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (space_at(s + n - k, k) == k)
            return k;
    return 0;
}

/* Strip out->data[from..len) in place. */
static void strip_tail_from(curate_buf *out, size_t from)
{
    unsigned char *s = (unsigned char *)out->data + from;
    size_t n = out->len - from, lead = 0, k;
    while ((k = space_at(s + lead, n - lead)) > 0)
        lead += k;
    while (n > lead && (k = space_before(s, n)) > 0)
        n -= k;
    if (lead)
        memmove(s, s + lead, n - lead);
    out->len = from + n - lead;
    out->data[out->len] = 0;
}

static curate_status put(curate_buf *out, const char *s)
{
    return curate_buf_append_str(out, s);
}

static curate_status put_role(curate_buf *out, const convo *c, size_t k)
{
    return curate_buf_append(out, c->roles.data + c->turns[k].role_off, c->turns[k].role_len);
}

/* Decode turn k's content onto out, stripped if strip. */
static curate_status put_content(curate_buf *out, const convo *c, size_t k, int strip,
                                 curate_error *err)
{
    size_t from = out->len;
    curate_error derr;
    curate_error_clear(&derr);
    const turn *t = &c->turns[k];
    curate_status st = curate_json_string_decode(t->content, t->content_len, c->policy, out, &derr);
    if (st == CURATE_ERR_NOMEM)
        return curate_error_set(err, st, "out of memory");
    if (st != CURATE_OK) {
        /* The literal's offset inside the turn is not kept; point at the turn. */
        return fail_at(c, err, t->at, st, "%s[%zu]: content: %s", c->field, k, derr.message);
    }
    if (strip)
        strip_tail_from(out, from);
    return CURATE_OK;
}

#define TRY(x)                                                                  \
    do {                                                                        \
        curate_status st_ = (x);                                                \
        if (st_ != CURATE_OK)                                                   \
            return st_ == CURATE_ERR_NOMEM ? curate_error_set(err, st_, "out of memory") : st_; \
    } while (0)

static curate_status render(const convo *c, curate_chat_template tpl, curate_buf *out,
                            curate_error *err)
{
    size_t first = 0;
    switch (tpl) {
    case CURATE_CHAT_PLAIN:
        for (size_t k = 0; k < c->n; k++) {
            if (k)
                TRY(put(out, "\n"));
            TRY(put_role(out, c, k));
            TRY(put(out, ": "));
            TRY(put_content(out, c, k, 0, err));
        }
        return CURATE_OK;
    case CURATE_CHAT_CHATML:
        for (size_t k = 0; k < c->n; k++) {
            TRY(put(out, "<|im_start|>"));
            TRY(put_role(out, c, k));
            TRY(put(out, "\n"));
            TRY(put_content(out, c, k, 0, err));
            TRY(put(out, "<|im_end|>\n"));
        }
        return CURATE_OK;
    case CURATE_CHAT_LLAMA3:
        TRY(put(out, "<|begin_of_text|>"));
        for (size_t k = 0; k < c->n; k++) {
            TRY(put(out, "<|start_header_id|>"));
            TRY(put_role(out, c, k));
            TRY(put(out, "<|end_header_id|>\n\n"));
            TRY(put_content(out, c, k, 1, err));
            TRY(put(out, "<|eot_id|>"));
        }
        return CURATE_OK;
    case CURATE_CHAT_LLAMA2:
        TRY(check_alternation(c, tpl, &first, err));
        for (size_t k = first; k < c->n; k++) {
            if (role_is(c, k, "user")) {
                TRY(put(out, "<s>[INST] "));
                /* The system block is part of the first user content and is
                 * stripped with it, as in Meta's chat_completion. */
                size_t from = out->len;
                if (k == first && first == 1) {
                    TRY(put(out, "<<SYS>>\n"));
                    TRY(put_content(out, c, 0, 0, err));
                    TRY(put(out, "\n<</SYS>>\n\n"));
                }
                TRY(put_content(out, c, k, 0, err));
                strip_tail_from(out, from);
                TRY(put(out, " [/INST]"));
            } else {
                TRY(put(out, " "));
                TRY(put_content(out, c, k, 1, err));
                TRY(put(out, " </s>"));
            }
        }
        return CURATE_OK;
    case CURATE_CHAT_GEMMA:
        TRY(check_alternation(c, tpl, &first, err));
        TRY(put(out, "<bos>"));
        for (size_t k = first; k < c->n; k++) {
            TRY(put(out, "<start_of_turn>"));
            TRY(put(out, role_is(c, k, "user") ? "user\n" : "model\n"));
            if (k == first && first == 1) {
                TRY(put_content(out, c, 0, 0, err));
                TRY(put(out, "\n\n"));
            }
            TRY(put_content(out, c, k, 1, err));
            TRY(put(out, "<end_of_turn>\n"));
        }
        return CURATE_OK;
    default:
        return curate_error_set(err, CURATE_ERR_INVALID, "unknown chat template %d", (int)tpl);
    }
}
#undef TRY

static curate_status render_array(const char *arr, size_t n, size_t base, const char *field,
                                  curate_surrogate_policy policy, curate_chat_template tpl,
                                  curate_buf *out, curate_error *err)
{
    curate_buf_reset(out);
    if ((unsigned)tpl >= CURATE_CHAT_TEMPLATE_COUNT_)
        return curate_error_set(err, CURATE_ERR_INVALID, "unknown chat template %d", (int)tpl);
    convo c;
    memset(&c, 0, sizeof c);
    curate_buf_init(&c.roles);
    c.policy = policy;
    c.field = field;
    c.base = base;
    curate_status st = collect(&c, arr, n, err);
    if (st == CURATE_OK)
        st = render(&c, tpl, out, err);
    if (st != CURATE_OK)
        curate_buf_reset(out);
    free(c.turns);
    curate_buf_release(&c.roles);
    return st;
}

curate_status curate_chat_render(const curate_record *rec, const char *messages_field,
                                 curate_chat_template tpl, curate_buf *out, curate_error *err)
{
    const char *field = messages_field ? messages_field : CURATE_CHAT_DEFAULT_FIELD;
    curate_buf_reset(out);
    const curate_member *m = curate_record_get(rec, field);
    if (!m)
        return curate_error_set(err, CURATE_ERR_NO_FIELD, "no \"%s\" field", field);
    return render_array(m->value, m->value_len, (size_t)(m->value - rec->line), field,
                        rec->surrogates, tpl, out, err);
}

curate_status curate_chat_render_json(const char *json, size_t len, curate_chat_template tpl,
                                      curate_buf *out, curate_error *err)
{
    curate_buf_reset(out);
    curate_status st = curate_json_validate(json, len, CURATE_DEFAULT_MAX_DEPTH, err);
    if (st != CURATE_OK)
        return st;
    return render_array(json, len, 0, CURATE_CHAT_DEFAULT_FIELD, CURATE_SURROGATE_ERROR, tpl, out,
                        err);
}
