/*
 * Byte-level BPE pre-tokenizers: the regular expressions llama.cpp uses for each
 * tokenizer.ggml.pre, run with PCRE2 (UTF + Unicode properties, JIT-compiled).
 *
 * Splitting follows llama.cpp's unicode_regex_split: the expressions are applied one after
 * another; each one splits every current fragment into its matches and the stretches
 * between them, so the fragments always cover the text.
 *
 * The expressions are written so that PCRE2 gives what llama.cpp gives:
 *   - \s is spelled out as Unicode White_Space (llama.cpp's whitespace set; PCRE2's own \s
 *     would add U+180E), and \S as its complement;
 *   - the GPT-2 and Llama-3 expressions are matched in llama.cpp by hand-written splitters
 *     that treat unassigned code points (\p{Cn}) as matching none of the classes; the
 *     expressions below add that rule (the `\p{Cn}` terms) to match them exactly;
 *   - in llama.cpp's std::wregex path non-ASCII whitespace is replaced by U+000B before
 *     matching, so explicit ranges here leave the White_Space code points out;
 *   - `\s+$` (deepseek-llm) is matched by a linear scan instead of PCRE2, whose search for
 *     it is quadratic on long runs of whitespace that do not end the fragment.
 * Invalid UTF-8 bytes match nothing (PCRE2_MATCH_INVALID_UTF), so they end up in the
 * stretches between matches and are encoded byte by byte; the text always round-trips.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

#define WS "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define S_ "[" WS "]"
#define NS "[^" WS "]"

/* llama.cpp's GPT-2 splitter: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
#define RE_GPT2                                                                                 \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}\\p{Cn}]+|" S_ "+(?!" NS \
    ")|" S_ "+|\\p{Cn}"

/* llama.cpp's Llama-3 splitter (also ChatGLM-4). */
#define RE_LLAMA3                                                                                \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"   \
    "\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}\\p{Cn}]+[\\r\\n]*|" S_ "*[\\r\\n]+|" S_ "+(?!" NS ")|" S_ \
    "+|\\p{Cn}"

/* Qwen2 goes through llama.cpp's general regex path (no hand-written splitter). */
#define RE_QWEN2                                                                                 \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"   \
    "\\p{N}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|" S_ "*[\\r\\n]+|" S_ "+(?!" NS ")|" S_ "+"

/* CJK ideographs and Hangul as deepseek writes them ([一-龥ࠀ-一가-퟿]), less White_Space. */
#define RE_DEEPSEEK_CJK                                                                          \
    "[\\x{800}-\\x{167F}\\x{1681}-\\x{1FFF}\\x{200B}-\\x{2027}\\x{202A}-\\x{202E}"             \
    "\\x{2030}-\\x{205E}\\x{2060}-\\x{2FFF}\\x{3001}-\\x{9FA5}\\x{AC00}-\\x{D7FF}]+"

#define RE_DEEPSEEK_LETTERS                                                                      \
    S_ "?[\\x{41}-\\x{5A}\\x{61}-\\x{7A}\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}"    \
    "\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}"        \
    "\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}" \
    "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"   \
    "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}"                \
    "\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"                \
    "\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}"        \
    "\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}"      \
    "\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}"                \
    "\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}"        \
    "\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}"       \
    "\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"                 \
    "\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}"                 \
    "\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"                \
    "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}"                \
    "\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"            \
    "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}"        \
    "\\x{1E900}-\\x{1E943}]+"

#define RE_DEEPSEEK_PUNCT                                                                        \
    S_ "?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3001}-\\x{3002}]+"

#define RE_PORO " ?[^(" WS "|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

#define TRAILING_SPACE NULL /* marker for the hand-written `\s+$` */

static const char *const *exprs_of(ctok_pre pre) {
    static const char *const gpt2[] = {RE_GPT2, NULL};
    static const char *const llama3[] = {RE_LLAMA3, NULL};
    static const char *const qwen2[] = {RE_QWEN2, NULL};
    static const char *const dsl[] = {"[\\r\\n]", RE_DEEPSEEK_LETTERS, RE_DEEPSEEK_PUNCT, "",
                                      RE_DEEPSEEK_CJK, "\\p{N}+", NULL};
    static const char *const dsc[] = {"[\\r\\n]", S_ "?\\p{L}+", S_ "?\\p{P}+", RE_DEEPSEEK_CJK,
                                      "\\p{N}", NULL};
    static const char *const ds3[] = {
        "\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?"
        "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|" S_ "*[\\r\\n]+|" S_ "+(?!" NS ")|" S_ "+",
        NULL};
    static const char *const falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]", NULL};
    static const char *const starcoder[] = {"\\p{N}", RE_GPT2, NULL};
    static const char *const deflt[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+",
                                        "[0-9][0-9][0-9]", NULL};
    static const char *const poro[] = {RE_PORO, NULL};
    static const char *const viking[] = {RE_PORO, "\\p{N}", NULL};
    static const char *const tekken[] = {
        "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?"
        "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|" S_
        "*[\\r\\n]+|" S_ "+(?!" NS ")|" S_ "+",
        NULL};
    static const char *const chameleon[] = {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                                            "([\\t\\n]|    |  )", "\\p{N}",
                                            "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2, NULL};
    switch (pre) {
    case CTOK_PRE_LLAMA3: case CTOK_PRE_CHATGLM4: return llama3;
    case CTOK_PRE_QWEN2: return qwen2;
    case CTOK_PRE_DEEPSEEK_LLM: return dsl;
    case CTOK_PRE_DEEPSEEK_CODER: return dsc;
    case CTOK_PRE_DEEPSEEK3: return ds3;
    case CTOK_PRE_FALCON: return falcon;
    case CTOK_PRE_STARCODER: return starcoder;
    case CTOK_PRE_GPT2: return gpt2;
    case CTOK_PRE_PORO: return poro;
    case CTOK_PRE_VIKING: return viking;
    case CTOK_PRE_TEKKEN: return tekken;
    case CTOK_PRE_CHAMELEON: return chameleon;
    default: return deflt;
    }
}

celer_status ctok_regexes_init(ctok_regexes *re, ctok_pre pre, celer_error *err) {
    memset(re, 0, sizeof *re);
    const char *const *exprs = exprs_of(pre);
    for (int i = 0; exprs[i]; i++) {
        if (re->n == CTOK_MAX_REGEX) return celer_fail(err, CELER_ERR_INTERNAL, "too many pre-tokenizer expressions");
        if (!exprs[i][0]) { /* "" stands for deepseek-llm's \s+$ */
            re->special[re->n++] = CTOK_RE_TRAILING_SPACE;
            continue;
        }
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)exprs[i], PCRE2_ZERO_TERMINATED,
                                         PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
        if (!code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(ec, msg, sizeof msg);
            ctok_regexes_free(re);
            return celer_fail(err, CELER_ERR_INTERNAL, "pre-tokenizer expression %d: %s at %zu", i, (const char *)msg, (size_t)eo);
        }
        /* JIT is an optimisation: if it is unavailable the interpreter gives the same matches. */
        pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        re->code[re->n] = code;
        re->special[re->n++] = CTOK_RE_PCRE;
    }
    return CELER_OK;
}

void ctok_regexes_free(ctok_regexes *re) {
    for (int i = 0; i < re->n; i++) pcre2_code_free(re->code[i]);
    memset(re, 0, sizeof *re);
}

bool ctok_spans_push(ctok_spans *s, size_t off, size_t len) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        ctok_span *v = realloc(s->v, cap * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (ctok_span){off, len};
    return true;
}

static bool is_ws_cp(int32_t cp) {
    return (cp >= 9 && cp <= 13) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* `\s+$` on one fragment: the trailing run of whitespace, if any, is the only match. */
static bool split_trailing_space(const char *text, ctok_span f, ctok_spans *out) {
    const unsigned char *s = (const unsigned char *)text + f.off;
    size_t run = f.len; /* start of the current whitespace run */
    for (size_t i = 0; i < f.len;) {
        int32_t cp;
        size_t k = ctok_utf8_decode(s + i, f.len - i, &cp);
        if (!is_ws_cp(cp)) run = f.len;
        else if (run == f.len) run = i;
        i += k;
    }
    if (run == f.len) return ctok_spans_push(out, f.off, f.len);
    if (run > 0 && !ctok_spans_push(out, f.off, run)) return false;
    return ctok_spans_push(out, f.off + run, f.len - run);
}

/* One PCRE2 expression on one fragment. */
static bool split_pcre(const pcre2_code *code, pcre2_match_data *md, pcre2_match_context *mc,
                       const char *text, ctok_span f, ctok_spans *out) {
    PCRE2_SPTR subj = (PCRE2_SPTR)text + f.off;
    size_t start = 0, prev = 0;
    while (start < f.len) {
        int rc = pcre2_match(code, subj, f.len, start, 0, md, mc);
        if (rc < 0) break; /* no match, or a resource limit: the rest stays one fragment */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t b = ov[0], e = ov[1];
        if (b > prev && !ctok_spans_push(out, f.off + prev, b - prev)) return false;
        if (e > b) {
            if (!ctok_spans_push(out, f.off + b, e - b)) return false;
            prev = start = e;
        } else { /* an empty match: step over one character (never happens with ours) */
            prev = b;
            start = b + ctok_utf8_len(subj[b]);
        }
    }
    if (prev < f.len) return ctok_spans_push(out, f.off + prev, f.len - prev);
    return true;
}

bool ctok_pretokenize(const ctok_regexes *re, const char *text, size_t len, ctok_spans *out) {
    ctok_spans a = {0}, b = {0};
    bool ok = ctok_spans_push(&a, 0, len);
    pcre2_match_data *md = pcre2_match_data_create(16, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *js = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    if (mc && js) pcre2_jit_stack_assign(mc, NULL, js);
    for (int r = 0; ok && r < re->n; r++) {
        b.n = 0;
        if (!md) ok = false;
        for (size_t i = 0; ok && i < a.n; i++) {
            if (re->special[r] == CTOK_RE_TRAILING_SPACE)
                ok = split_trailing_space(text, a.v[i], &b);
            else
                ok = split_pcre(re->code[r], md, mc, text, a.v[i], &b);
        }
        ctok_spans t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; ok && i < a.n; i++) ok = ctok_spans_push(out, a.v[i].off, a.v[i].len);
    free(a.v);
    free(b.v);
    pcre2_match_data_free(md);
    pcre2_jit_stack_free(js);
    pcre2_match_context_free(mc);
    return ok;
}
