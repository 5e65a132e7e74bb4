/* UTF-8 helpers and GPT-2's byte-to-code-point mapping. */
#include "tokenizer/tok_internal.h"

size_t ctok_utf8_decode(const unsigned char *s, size_t n, int32_t *cp) {
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = -1;
        return 1;
    }
    if (len > n) {
        *cp = -1;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = -1;
        return 1;
    }
    *cp = (int32_t)v;
    return len;
}

size_t ctok_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* GPT-2 keeps the printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) as
 * themselves and maps the other 68 bytes, in order, to U+0100, U+0101, ... */
static bool byte_is_printable(int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t ctok_byte_to_cp(uint8_t b) {
    if (byte_is_printable(b)) return b;
    uint32_t n = 0;
    for (int i = 0; i < b; i++)
        if (!byte_is_printable(i)) n++;
    return 256 + n;
}

int ctok_cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_is_printable((int)cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    /* The n-th non-printable byte: 0x00-0x20 (33), 0x7F-0xA0 (34), 0xAD (1). */
    uint32_t n = cp - 256;
    if (n < 33) return (int)n;
    if (n < 67) return (int)(0x7F + n - 33);
    return 0xAD;
}

/* True if s[0..k) (k >= 1, lead byte first) can still grow into a valid sequence. */
static bool utf8_valid_partial(const unsigned char *s, size_t k) {
    unsigned char c = s[0];
    if (c < 0xC2 || c > 0xF4) return false;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return false;
    if (k >= 2) {
        unsigned char d = s[1];
        if (c == 0xE0 && d < 0xA0) return false;
        if (c == 0xED && d > 0x9F) return false;
        if (c == 0xF0 && d < 0x90) return false;
        if (c == 0xF4 && d > 0x8F) return false;
    }
    return true;
}

size_t ctok_utf8_complete_prefix(const char *s, size_t n) {
    /* Look back at most 3 bytes for a lead byte whose sequence is not yet complete. */
    size_t back = n < 3 ? n : 3;
    for (size_t k = 1; k <= back; k++) {
        const unsigned char *p = (const unsigned char *)s + n - k;
        if ((p[0] & 0xC0) == 0x80) continue; /* continuation: keep looking for the lead */
        size_t need = ctok_utf8_len(p[0]);
        if (need <= k) return n;
        return utf8_valid_partial(p, k) ? n - k : n;
    }
    return n;
}
