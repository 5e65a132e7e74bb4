/* The public header compiles alone as C11 and as C++, and a program using only it links
 * against the installed library (make install + pkg-config). */
#include "test.h"

static bool have_tool(const char *tool) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return test_run_cmd(cmd, NULL, false) == 0;
}

TEST(api_header_compiles_as_c11_and_cxx) {
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "echo '#include <celer.h>' | cc -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude -x c -fsyntax-only -");
    CHECKF(test_run_cmd(cmd, &out, true) == 0, "C11: %s", out ? out : "");
    free(out);
    if (!have_tool("c++")) {
        test_skip("no C++ compiler");
        return;
    }
    snprintf(cmd, sizeof cmd, "echo '#include <celer.h>' | c++ -std=c++11 -Wall -Wextra -Werror -Iinclude -x c++ -fsyntax-only -");
    CHECKF(test_run_cmd(cmd, &out, true) == 0, "C++: %s", out ? out : "");
    free(out);
}

TEST(api_install_and_link_with_pkg_config) {
    if (!have_tool("pkg-config")) {
        test_skip("no pkg-config");
        return;
    }
    const char *model = test_data_path("reference/ref-qwen2-Q8_0.gguf");
    if (!test_file_exists(model)) return test_skip("missing %s", model);
    /* Install from the build the celer binary came from (its directory holds libceler.a). */
    char build_dir[1024];
    snprintf(build_dir, sizeof build_dir, "%s", test_celer_bin());
    char *slash = strrchr(build_dir, '/');
    REQUIRE(slash);
    *slash = 0;
    const char *tmp = test_tmp_dir();
    /* `make asan` builds the library with sanitizers; the program must link their runtime. */
    const char *san = getenv("CELER_SANITIZE");
    bool sanitized = san && *san == '1';
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "make -s BUILD=%s %s install PREFIX=%s/prefix >/dev/null", build_dir,
             sanitized ? "OPT='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer'" : "", tmp);
    int rc = test_run_cmd(cmd, &out, true);
    CHECKF(rc == 0, "make install: %s", out ? out : "");
    free(out);
    if (rc) return;
    char src[1024];
    snprintf(src, sizeof src, "%s/prog.c", tmp);
    FILE *f = fopen(src, "w");
    REQUIRE(f);
    fputs("#include <celer.h>\n#include <stdio.h>\n"
          "int main(int argc, char **argv) {\n"
          "    celer_model *m; celer_error err;\n"
          "    if (celer_model_load(argv[1], NULL, &m, &err) != CELER_OK) { puts(err.message); return 1; }\n"
          "    printf(\"%s %d\\n\", celer_model_arch(m), (int)celer_model_n_vocab(m));\n"
          "    celer_model_free(m); return argc == 2 ? 0 : 1;\n}\n",
          f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "PKG_CONFIG_PATH=%s/prefix/lib/pkgconfig cc -std=c11 %s -o %s/prog %s $(PKG_CONFIG_PATH=%s/prefix/lib/pkgconfig "
             "pkg-config --cflags --libs celer) && %s/prog %s",
             tmp, sanitized ? "-fsanitize=address,undefined" : "", tmp, src, tmp, tmp, model);
    rc = test_run_cmd(cmd, &out, true);
    CHECKF(rc == 0 && out && strstr(out, "qwen2 512"), "exit %d: %s", rc, out ? out : "");
    free(out);
}
