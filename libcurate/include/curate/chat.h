/*
 * curate/chat.h - render chat records (a "messages" array of turns) to the
 * text a model sees, with the chat template of a model family.
 *
 * A chat record holds its conversation in an array of objects:
 *
 *   {"messages": [{"role": "system", "content": "Be brief."},
 *                 {"role": "user", "content": "Hi"},
 *                 {"role": "assistant", "content": "Hello."}]}
 *
 * Calibration, deduplication, language identification and token counting
 * should all see the conversation as the quantized model will see it at
 * inference time: with its role markers and special tokens.  This module
 * produces that text.  Special tokens are written as their text spelling
 * ("<s>", "<|im_start|>", "<start_of_turn>"); the SentencePiece shim
 * (curate/tokenizer.h) does not parse specials, so a token count of the
 * rendered text counts each marker as the several ordinary pieces it
 * spells, a small overestimate per turn (docs/formats.md gives figures).
 *
 * Validation is strict: the value must be a non-empty JSON array of
 * objects, each with exactly one "role" and one "content" member, both
 * strings; the role must be non-empty and free of control characters.
 * Other members of a turn ("name", "tool_calls", ...) are ignored.  A
 * "content" that is not a string (null, or an array of typed parts as in
 * multimodal APIs) is an error, not silently dropped text.  The templates
 * below add their own rules on roles and turn order.
 *
 * Templates (docs/formats.md shows a rendered example of each):
 *
 *   plain   "role: content" per turn, turns joined by one "\n", no
 *           trailing newline; roles and content verbatim (any role).
 *   chatml  "<|im_start|>" role "\n" content "<|im_end|>\n" per turn
 *           (any role, content verbatim), as Qwen and other ChatML
 *           models format turns.
 *   llama2  Llama-2-chat: an optional first system turn goes into the
 *           first user turn as "<<SYS>>\n" system "\n<</SYS>>\n\n"; then
 *           each user turn is "<s>[INST] " content " [/INST]" and each
 *           assistant turn " " content " </s>".  Roles must be system
 *           (first only), then user and assistant alternating, starting
 *           with user.  Contents are stripped of leading and trailing
 *           whitespace, as Meta's reference code and the Hugging Face
 *           template do.
 *   llama3  "<|begin_of_text|>" once, then per turn "<|start_header_id|>"
 *           role "<|end_header_id|>\n\n" content "<|eot_id|>" (any role,
 *           content stripped).
 *   gemma   "<bos>" once, then per turn "<start_of_turn>" role "\n"
 *           content "<end_of_turn>\n", with role "assistant" written as
 *           "model" ("model" is accepted as input too).  Gemma has no
 *           system role: a first system turn is folded into the first
 *           user turn as system "\n\n" user (as Gemma 3's template does).
 *           Roles must then alternate user / assistant starting with
 *           user.  Contents other than the folded system text are
 *           stripped.
 *
 * "Stripped" means as Python's str.strip(), which those templates use:
 * leading and trailing characters among \t \n \v \f \r, U+001C-U+001F,
 * space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F,
 * U+205F and U+3000 are removed.
 *
 * The rendered text ends where the conversation ends: no generation
 * prompt is added after a final user turn.
 *
 * Thread safety: all functions are reentrant; they keep no state.
 */
#ifndef CURATE_CHAT_H
#define CURATE_CHAT_H

#include <stddef.h>
#include "curate/buf.h"
#include "curate/jsonl.h"
#include "curate/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The field chat records use by convention. */
#define CURATE_CHAT_DEFAULT_FIELD "messages"

/* Templates.  Append only (the numbers may be stored in files). */
typedef enum curate_chat_template {
    CURATE_CHAT_PLAIN = 0,
    CURATE_CHAT_CHATML,
    CURATE_CHAT_LLAMA2,
    CURATE_CHAT_LLAMA3,
    CURATE_CHAT_GEMMA,
    CURATE_CHAT_TEMPLATE_COUNT_  /* not a template; keep last */
} curate_chat_template;

/*
 * The template named name ("plain", "chatml", "llama2", "llama3",
 * "gemma"; exact, lower case) into *tpl.  Returns CURATE_OK, or
 * CURATE_ERR_INVALID with a message listing the known names.
 */
curate_status curate_chat_template_parse(const char *name, curate_chat_template *tpl,
                                         curate_error *err);

/* The name of tpl, or NULL when tpl is not a template. */
const char *curate_chat_template_name(curate_chat_template tpl);

/* "plain, chatml, llama2, llama3, gemma" (static), for help texts. */
const char *curate_chat_template_names(void);

/*
 * Render the array in the field messages_field (NULL means "messages") of
 * the parsed record rec with template tpl into out.  out is reset first,
 * like curate_record_get_string(), so this can stand in for it; on error
 * out holds nothing useful.  Strings are decoded with rec->surrogates.
 *
 * Returns CURATE_OK, or, with err filled and err's offset set to the byte
 * in rec's line where the problem is (the field's value or the offending
 * turn):
 *   CURATE_ERR_NO_FIELD    the record has no such field; or a turn has no
 *                          "role" / "content" member
 *   CURATE_ERR_FIELD_TYPE  the field is not an array; a turn is not an
 *                          object; a role or content is not a string
 *   CURATE_ERR_INVALID     the array is empty; a turn has two "role" or
 *                          two "content" members; a role is empty or has
 *                          control characters; the template does not
 *                          accept a role or the order of the turns
 *   CURATE_ERR_JSON        a string could not be decoded (a lone
 *                          surrogate under CURATE_SURROGATE_ERROR)
 *   CURATE_ERR_NOMEM
 * Messages name the turn by index: "messages[2]: no \"content\" member".
 */
curate_status curate_chat_render(const curate_record *rec, const char *messages_field,
                                 curate_chat_template tpl, curate_buf *out, curate_error *err);

/*
 * Same for a messages array given as JSON text json[0..len) (any
 * surrounding whitespace allowed).  The text is validated first
 * (CURATE_ERR_JSON / CURATE_ERR_DEPTH with the offset on bad JSON);
 * offsets in err are relative to json.  Lone surrogates are errors.
 * Messages call the array "messages".
 */
curate_status curate_chat_render_json(const char *json, size_t len, curate_chat_template tpl,
                                      curate_buf *out, curate_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CURATE_CHAT_H */
