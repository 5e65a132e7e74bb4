#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Position just after `"key":` and any spaces, or NULL. */
static const char *json_value(const char *line, const char *key) {
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(line, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

int32_t tu_json_int_array(const char *line, const char *key, int32_t *out, int32_t cap) {
    const char *p = json_value(line, key);
    if (!p || *p != '[') return -1;
    p++;
    int32_t n = 0;
    while (*p && *p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        if (n < cap) out[n] = (int32_t)v;
        n++;
        p = end;
    }
    return n < cap ? n : cap;
}

int64_t tu_json_int(const char *line, const char *key) {
    const char *p = json_value(line, key);
    return p ? strtoll(p, NULL, 10) : -1;
}

static size_t put_utf8(char *out, unsigned cp) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xc0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12); out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f)); return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18); out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); out[3] = (char)(0x80 | (cp & 0x3f)); return 4;
}

bool tu_json_string(const char *line, const char *key, char *out, size_t cap) {
    const char *p = json_value(line, key);
    if (!p || *p != '"' || cap < 5) return false;
    p++;
    size_t n = 0;
    while (*p && *p != '"' && n + 5 < cap) {
        if (*p != '\\') { out[n++] = *p++; continue; }
        p++;
        switch (*p) {
        case 'n': out[n++] = '\n'; break;
        case 't': out[n++] = '\t'; break;
        case 'r': out[n++] = '\r'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'u': {
            unsigned cp = 0;
            if (sscanf(p + 1, "%4x", &cp) != 1) return false;
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && p[1] == '\\' && p[2] == 'u') {
                unsigned lo = 0;
                if (sscanf(p + 3, "%4x", &lo) == 1) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            n += put_utf8(out + n, cp);
            break;
        }
        default: out[n++] = *p; break;
        }
        p++;
    }
    out[n] = 0;
    return *p == '"';
}

float tu_uniform(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (float)((*state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
