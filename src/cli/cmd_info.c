/* `celer info [--all] FILE`: everything a GGUF file declares, in a readable form. The file is
 * fully validated by the reader first, so a malformed file only gives its error message. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/types.h"
#include "gguf/gguf.h"

#define ARRAY_PREVIEW 8     /* elements shown of a long array without --all */
#define STRING_PREVIEW 120  /* bytes shown of a long string without --all */

static void usage(FILE *f) {
    fprintf(f,
            "usage: celer info [--all] FILE\n"
            "  Prints a GGUF file's version, alignment, metadata (key, type, value) and tensor\n"
            "  table (name, type, shape, bytes, offset in the data section), then totals.\n"
            "  --all   print every element of long arrays and all of long strings\n");
}

static void print_str(gguf_str s, bool all) {
    uint64_t n = s.len;
    if (!all && n > STRING_PREVIEW) {
        n = STRING_PREVIEW;
        /* Cut at a UTF-8 character boundary, not inside a multi-byte sequence. */
        while (n > 0 && ((unsigned char)s.data[n] & 0xc0) == 0x80) n--;
    }
    cli_json_string(stdout, s.data, (size_t)n);
    if (n < s.len) printf("...(%" PRIu64 " bytes)", s.len);
}

static void print_array(const gguf_array *a, bool all);

/* One element of an array. */
static void print_elem(const gguf_array *a, uint64_t i, bool all) {
    gguf_str s;
    gguf_array child;
    int64_t v;
    uint64_t u;
    double d;
    if (a->type == GGUF_TYPE_STRING && gguf_arr_str(a, i, &s)) print_str(s, all);
    else if (a->type == GGUF_TYPE_ARRAY && gguf_arr_arr(a, i, &child)) print_array(&child, all);
    else if (a->type == GGUF_TYPE_BOOL && gguf_arr_i64(a, i, &v))
        fputs(v ? "true" : "false", stdout);
    else if ((a->type == GGUF_TYPE_FLOAT32 || a->type == GGUF_TYPE_FLOAT64) &&
             gguf_arr_f64(a, i, &d))
        printf("%.9g", d);
    else if (gguf_arr_u64(a, i, &u)) printf("%" PRIu64, u);
    else if (gguf_arr_i64(a, i, &v)) printf("%" PRId64, v);
    else fputs("?", stdout);
}

static void print_array(const gguf_array *a, bool all) {
    uint64_t shown = (!all && a->n > ARRAY_PREVIEW) ? ARRAY_PREVIEW : a->n;
    printf("%s[%" PRIu64 "] [", gguf_type_name(a->type), a->n);
    for (uint64_t i = 0; i < shown; i++) {
        if (i) fputs(", ", stdout);
        print_elem(a, i, all);
    }
    if (shown < a->n) printf(", ... %" PRIu64 " more", a->n - shown);
    fputs("]", stdout);
}

/* Prints a key or tensor name padded to `width`: as is when it is plain printable ASCII,
 * otherwise as an escaped string literal (a hostile file may put control bytes in names). */
static void print_name(gguf_str s, int width) {
    bool plain = s.len > 0;
    for (uint64_t i = 0; i < s.len && plain; i++) {
        unsigned char c = (unsigned char)s.data[i];
        plain = c > 0x20 && c < 0x7f && c != '"' && c != '\\';
    }
    uint64_t printed = s.len;
    if (plain) fwrite(s.data, 1, (size_t)s.len, stdout);
    else {
        cli_json_string(stdout, s.data, (size_t)s.len);
        printed += 2;
    }
    if (printed < (uint64_t)width) printf("%*s", width - (int)printed, "");
}

static void print_kv(const gguf_file *f, int64_t i, bool all, int key_width) {
    gguf_type t = gguf_kv_type(f, i);
    fputs("  ", stdout);
    print_name(gguf_kv_key(f, i), key_width);
    printf(" %-8s ", gguf_type_name(t));
    gguf_str s;
    gguf_array a;
    int64_t v;
    uint64_t u;
    double d;
    if (t == GGUF_TYPE_STRING && gguf_kv_get_str(f, i, &s)) print_str(s, all);
    else if (t == GGUF_TYPE_ARRAY && gguf_kv_get_arr(f, i, &a)) print_array(&a, all);
    else if (t == GGUF_TYPE_BOOL && gguf_kv_get_i64(f, i, &v)) fputs(v ? "true" : "false", stdout);
    else if ((t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64) && gguf_kv_get_f64(f, i, &d))
        printf("%.9g", d);
    else if (gguf_kv_get_u64(f, i, &u)) printf("%" PRIu64, u);
    else if (gguf_kv_get_i64(f, i, &v)) printf("%" PRId64, v);
    else fputs("?", stdout);
    fputc('\n', stdout);
}

static void print_tensors(const gguf_file *f) {
    int64_t n = gguf_n_tensors(f);
    int w = 4;
    for (int64_t i = 0; i < n; i++) {
        uint64_t len = gguf_tensor_at(f, i)->name.len;
        if (len > (uint64_t)w) w = len > 60 ? 60 : (int)len;
    }
    printf("tensors: %" PRId64 " (offsets relative to the data section at byte %" PRIu64 ")\n", n,
           gguf_data_offset(f));
    if (n == 0) return;
    printf("  %-*s %-6s %-24s %12s %12s\n", w, "name", "type", "shape", "bytes", "offset");
    for (int64_t i = 0; i < n; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char shape[128];
        int len = snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t->n_dims; d++)
            len += snprintf(shape + len, sizeof shape - (size_t)len, "%s%" PRId64, d ? ", " : "",
                            t->ne[d]);
        snprintf(shape + len, sizeof shape - (size_t)len, "]");
        fputs("  ", stdout);
        print_name(t->name, w);
        printf(" %-6s %-24s %12" PRIu64 " %12" PRIu64 "\n", celer_type_name(t->type), shape,
               t->size, t->offset);
    }
}

int cmd_info(int argc, char **argv) {
    bool all = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all")) all = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_error("info: unknown option '%s'", argv[i]);
            usage(stderr);
            return 2;
        } else if (path) {
            cli_error("info: more than one file given");
            return 2;
        } else path = argv[i];
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    gguf_file *f;
    celer_error err = {0};
    if (gguf_open(path, &f, &err) != CELER_OK) return cli_error("%s: %s", path, err.message);

    printf("file: %s\n", path);
    printf("GGUF version: %" PRIu32 "\n", gguf_version(f));
    printf("alignment: %" PRIu64 "\n", gguf_alignment(f));
    int64_t n_kv = gguf_n_kv(f);
    int kw = 0;
    for (int64_t i = 0; i < n_kv; i++) {
        uint64_t len = gguf_kv_key(f, i).len;
        if (len > (uint64_t)kw) kw = len > 48 ? 48 : (int)len;
    }
    printf("metadata: %" PRId64 " keys\n", n_kv);
    for (int64_t i = 0; i < n_kv; i++) print_kv(f, i, all, kw);

    print_tensors(f);
    uint64_t params = 0, bytes = 0;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        bytes += t->size;
    }
    printf("totals: %" PRId64 " tensors, %" PRIu64 " parameters, %" PRIu64
           " bytes of tensor data, file size %zu bytes\n",
           gguf_n_tensors(f), params, bytes, gguf_file_size(f));
    gguf_close(f);
    if (fflush(stdout) != 0) return cli_error("info: cannot write output");
    return 0;
}
