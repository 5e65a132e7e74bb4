/* Chat templates. A GGUF model carries its Jinja template in tokenizer.chat_template; rather
 * than run Jinja, celer recognises the family by its marker strings (as llama.cpp does) and
 * renders the family's format directly. Special tokens are written as text, BOS is not. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "decode/decode.h"

static const char *const chat_names[] = {"chatml", "llama2", "llama3", "mistral",
                                         "phi3",   "gemma",  "zephyr"};
#define N_CHAT ((int)(sizeof chat_names / sizeof chat_names[0]))
#define SUPPORTED "ChatML, Llama 2, Llama 3, Mistral, Phi-3, Gemma and Zephyr"

const char *celer_chat_format_name(celer_chat_format fmt) {
    return ((int)fmt >= 0 && (int)fmt < N_CHAT) ? chat_names[fmt] : NULL;
}

celer_status celer_chat_format_from_name(const char *name, celer_chat_format *out,
                                         celer_error *err) {
    for (int i = 0; name && i < N_CHAT; i++) {
        if (strcmp(name, chat_names[i]) == 0) {
            *out = (celer_chat_format)i;
            return CELER_OK;
        }
    }
    return celer_fail(err, CELER_ERR_INVALID_ARG,
                      "unknown chat format '%s' (expected chatml, llama2, llama3, mistral, phi3, "
                      "gemma or zephyr)", name ? name : "(null)");
}

celer_status celer_chat_detect(const char *t, celer_chat_format *out, celer_error *err) {
    if (!t || !out) return celer_fail(err, CELER_ERR_INVALID_ARG, "chat template: no text");
    celer_chat_format f;
    if (strstr(t, "<|im_start|>")) f = CELER_CHAT_CHATML;
    else if (strstr(t, "<|start_header_id|>")) f = CELER_CHAT_LLAMA3;
    else if (strstr(t, "<start_of_turn>")) f = CELER_CHAT_GEMMA;
    else if (strstr(t, "<|assistant|>") && strstr(t, "<|end|>")) f = CELER_CHAT_PHI3;
    else if (strstr(t, "<|user|>")) f = CELER_CHAT_ZEPHYR;
    else if (strstr(t, "[INST]")) f = strstr(t, "<<SYS>>") ? CELER_CHAT_LLAMA2 : CELER_CHAT_MISTRAL;
    else {
        char head[61];
        size_t n = strlen(t) < 60 ? strlen(t) : 60;
        memcpy(head, t, n);
        head[n] = 0;
        for (size_t i = 0; i < n; i++)
            if (head[i] == '\n' || head[i] == '\r') head[i] = ' ';
        return celer_fail(err, CELER_ERR_UNSUPPORTED,
                          "unknown chat template (starts \"%s%s\"); supported: " SUPPORTED
                          " (or choose a format by name)", head, strlen(t) > 60 ? "..." : "");
    }
    *out = f;
    return CELER_OK;
}

celer_status celer_chat_detect_model(const celer_model *model, celer_chat_format *out,
                                     celer_error *err) {
    if (!model) return celer_fail(err, CELER_ERR_INVALID_ARG, "chat template: no model");
    int32_t n = celer_model_meta_str(model, "tokenizer.chat_template", NULL, 0);
    if (n < 0)
        return celer_fail(err, CELER_ERR_NOT_FOUND,
                          "the model has no chat template (tokenizer.chat_template); choose a "
                          "format by name: " SUPPORTED);
    char *t = malloc((size_t)n + 1);
    if (!t) return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    celer_model_meta_str(model, "tokenizer.chat_template", t, (size_t)n + 1);
    celer_status st = celer_chat_detect(t, out, err);
    free(t);
    return st;
}

/* ---------------------------------------------------------------- rendering */

typedef struct sb {
    char *p;
    size_t n, cap;
    bool oom;
} sb;

static void put(sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void puts_(sb *b, const char *s) { put(b, s, strlen(s)); }

/* Content without leading/trailing white space (Llama 3 and Gemma templates trim). */
static void put_trim(sb *b, const char *s) {
    size_t a = 0, e = strlen(s);
    while (a < e && isspace((unsigned char)s[a])) a++;
    while (e > a && isspace((unsigned char)s[e - 1])) e--;
    put(b, s + a, e - a);
}

enum { R_SYSTEM, R_USER, R_ASSISTANT };

static int role_of(const char *r) {
    if (!r) return -1;
    if (strcmp(r, "system") == 0) return R_SYSTEM;
    if (strcmp(r, "user") == 0) return R_USER;
    if (strcmp(r, "assistant") == 0) return R_ASSISTANT;
    return -1;
}

/* Formats without a system role fold the system text into the first user turn. */
static void render(celer_chat_format fmt, const celer_chat_message *m, int32_t n, bool add,
                   sb *b) {
    const char *sys = NULL;
    bool first_user = true;
    for (int32_t i = 0; i < n; i++) {
        int role = role_of(m[i].role);
        const char *c = m[i].content ? m[i].content : "";
        switch (fmt) {
        case CELER_CHAT_CHATML:
            puts_(b, "<|im_start|>");
            puts_(b, m[i].role);
            puts_(b, "\n");
            puts_(b, c);
            puts_(b, "<|im_end|>\n");
            break;
        case CELER_CHAT_LLAMA3:
            puts_(b, "<|start_header_id|>");
            puts_(b, m[i].role);
            puts_(b, "<|end_header_id|>\n\n");
            put_trim(b, c);
            puts_(b, "<|eot_id|>");
            break;
        case CELER_CHAT_PHI3:
        case CELER_CHAT_ZEPHYR:
            puts_(b, "<|");
            puts_(b, m[i].role);
            puts_(b, "|>\n");
            puts_(b, c);
            puts_(b, fmt == CELER_CHAT_PHI3 ? "<|end|>\n" : "</s>\n");
            break;
        case CELER_CHAT_GEMMA:
            if (role == R_SYSTEM) {
                sys = c;
                break;
            }
            puts_(b, role == R_USER ? "<start_of_turn>user\n" : "<start_of_turn>model\n");
            if (role == R_USER && first_user && sys) {
                put_trim(b, sys);
                puts_(b, "\n\n");
            }
            if (role == R_USER) first_user = false;
            put_trim(b, c);
            puts_(b, "<end_of_turn>\n");
            break;
        case CELER_CHAT_LLAMA2:
        case CELER_CHAT_MISTRAL:
            if (role == R_SYSTEM) {
                sys = c;
                break;
            }
            if (role == R_USER) {
                if (!first_user && fmt == CELER_CHAT_LLAMA2) puts_(b, "<s>");
                puts_(b, "[INST] ");
                if (first_user && sys) {
                    if (fmt == CELER_CHAT_LLAMA2) {
                        puts_(b, "<<SYS>>\n");
                        puts_(b, sys);
                        puts_(b, "\n<</SYS>>\n\n");
                    } else {
                        puts_(b, sys);
                        puts_(b, "\n\n");
                    }
                }
                first_user = false;
                puts_(b, c);
                puts_(b, " [/INST]");
            } else {
                puts_(b, fmt == CELER_CHAT_LLAMA2 ? " " : "");
                puts_(b, c);
                puts_(b, fmt == CELER_CHAT_LLAMA2 ? " </s>" : "</s>");
            }
            break;
        }
    }
    if (!add) return;
    switch (fmt) {
    case CELER_CHAT_CHATML: puts_(b, "<|im_start|>assistant\n"); break;
    case CELER_CHAT_LLAMA3: puts_(b, "<|start_header_id|>assistant<|end_header_id|>\n\n"); break;
    case CELER_CHAT_PHI3:
    case CELER_CHAT_ZEPHYR: puts_(b, "<|assistant|>\n"); break;
    case CELER_CHAT_GEMMA: puts_(b, "<start_of_turn>model\n"); break;
    case CELER_CHAT_LLAMA2:
    case CELER_CHAT_MISTRAL: break; /* the model answers right after [/INST] */
    }
}

celer_status celer_chat_render(celer_chat_format fmt, const celer_chat_message *msgs, int32_t n,
                               bool add_assistant, char *buf, size_t cap, size_t *out_len,
                               celer_error *err) {
    if (!celer_chat_format_name(fmt))
        return celer_fail(err, CELER_ERR_INVALID_ARG, "unknown chat format %d", (int)fmt);
    if (n < 0 || (n > 0 && !msgs))
        return celer_fail(err, CELER_ERR_INVALID_ARG, "chat: bad message count %d", n);
    for (int32_t i = 0; i < n; i++)
        if (role_of(msgs[i].role) < 0)
            return celer_fail(err, CELER_ERR_INVALID_ARG,
                              "chat message %d: role '%s' is not system, user or assistant", i,
                              msgs[i].role ? msgs[i].role : "(null)");
    sb b = {0};
    puts_(&b, "");
    render(fmt, msgs, n, add_assistant, &b);
    if (b.oom) {
        free(b.p);
        return celer_fail(err, CELER_ERR_NOMEM, "out of memory");
    }
    if (out_len) *out_len = b.n;
    celer_status st = CELER_OK;
    if (buf && cap > b.n) memcpy(buf, b.p, b.n + 1);
    else st = celer_fail(err, CELER_ERR_BUFFER_TOO_SMALL, "chat: %zu bytes needed", b.n + 1);
    free(b.p);
    return st;
}
