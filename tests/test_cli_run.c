/* `celer run` and `celer logits` end to end: golden output through the CLI, JSON contract,
 * and one clear message with a non-zero exit for each kind of bad model file. */
#include "gguf/gguf.h"
#include "test.h"
#include "test_util.h"

static const char *stories_gguf(void) { return test_data_path("models/stories260K.gguf"); }

static bool have_data(void) {
    if (test_file_exists(stories_gguf())) return true;
    test_skip("shared models missing");
    return false;
}

TEST(cli_run_json_matches_golden) {
    if (!have_data()) return;
    char *golden = test_read_file(test_data_path("models/stories260K.greedy.jsonl"), NULL);
    REQUIRE(golden);
    char *line = strtok(golden, "\n");
    char prompt[1024], cmd[4096], *out = NULL;
    int32_t want[1024], got[1024], want_prompt[256], got_prompt[256];
    REQUIRE(tu_json_string(line, "prompt", prompt, sizeof prompt));
    int32_t nw = tu_json_int_array(line, "output_ids", want, 1024);
    int32_t np = tu_json_int_array(line, "prompt_ids", want_prompt, 256);
    int64_t steps = tu_json_int(line, "steps");
    snprintf(cmd, sizeof cmd, "%s run -m %s -p '%s' -n %lld --json -t 1", test_celer_bin(),
             stories_gguf(), prompt, (long long)(steps - np + 1));
    int rc = test_run_cmd(cmd, &out, false);
    CHECK_EQ_INT(rc, 0);
    REQUIRE(out);
    int32_t ng = tu_json_int_array(out, "output_ids", got, 1024);
    int32_t ngp = tu_json_int_array(out, "prompt_ids", got_prompt, 256);
    CHECK(ngp == np && memcmp(got_prompt, want_prompt, (size_t)np * 4) == 0);
    CHECK(ng == nw && memcmp(got, want, (size_t)nw * 4) == 0);
    char text[8192], stop[32];
    CHECK(tu_json_string(out, "text", text, sizeof text) && strlen(text) > 100);
    CHECK(tu_json_string(out, "stop", stop, sizeof stop) && !strcmp(stop, "length"));
    CHECK(strstr(out, "\"timings\"") && strstr(out, "\"logprobs\""));
    free(out);
    free(golden);
}

TEST(cli_run_llama2c_streams_text) {
    if (!have_data()) return;
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s run -m %s -z %s -p 'Once upon a time' -n 40 -t 1 2>/dev/null",
             test_celer_bin(), test_data_path("models/stories260K.bin"), test_data_path("models/tok512.bin"));
    CHECK_EQ_INT(test_run_cmd(cmd, &out, false), 0);
    /* The golden continuation of "Once upon a time" starts with these words. */
    CHECKF(out && strstr(out, "there was a little girl"), "unexpected text: %s", out ? out : "(none)");
    free(out);
}

TEST(cli_logits_writes_rows) {
    if (!have_data()) return;
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/logits.f32", test_tmp_dir());
    snprintf(cmd, sizeof cmd, "%s logits -m %s --tokens \"1 403 407\" --out %s 2>/dev/null", test_celer_bin(),
             stories_gguf(), path);
    CHECK_EQ_INT(test_run_cmd(cmd, NULL, false), 0);
    size_t size = 0;
    char *data = test_read_file(path, &size);
    CHECK(data && size == 3 * 512 * 4);
    free(data);
}

/* ---------------------------------------------------------------- bad files */

/* Writes a copy of `src` without key `drop_key` / tensor `drop_tensor`, optionally with
 * general.architecture replaced. */
static bool write_variant(const char *src, const char *dst, const char *drop_key,
                          const char *drop_tensor, const char *arch) {
    gguf_file *f = NULL;
    celer_error err;
    if (gguf_open(src, &f, &err) != CELER_OK) return false;
    gguf_writer *w = gguf_writer_create();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        gguf_str k = gguf_kv_key(f, i);
        if (drop_key && gguf_str_eq(k, drop_key)) continue;
        if (arch && gguf_str_eq(k, "general.architecture")) gguf_writer_set_str(w, "general.architecture", arch);
        else gguf_writer_copy_kv(w, f, i);
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        if (drop_tensor && !strcmp(name, drop_tensor)) continue;
        gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->size);
    }
    bool ok = gguf_writer_write(w, dst, &err) == CELER_OK;
    gguf_writer_free(w);
    gguf_close(f);
    return ok;
}

static bool write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Runs `celer run` and `celer info` on path; both must fail with `needle` in the message. */
static void expect_clean_failure(const char *path, const char *needle, bool info_too) {
    const char *cmds[2] = {"run -n 4 -p hi -m", "info"};
    for (int c = 0; c < (info_too ? 2 : 1); c++) {
        char cmd[2048], *out = NULL;
        snprintf(cmd, sizeof cmd, "%s %s %s", test_celer_bin(), cmds[c], path);
        int rc = test_run_cmd(cmd, &out, true);
        CHECKF(rc != 0 && rc < 128, "celer %s %s: exit %d", cmds[c], path, rc);
        CHECKF(out && strstr(out, needle), "celer %s on %s: expected '%s' in: %s", cmds[c], path, needle,
               out ? out : "(none)");
        free(out);
    }
}

TEST(cli_run_bad_model_files) {
    const char *ref = test_data_path("reference/ref-llama-Q4_0.gguf");
    if (!test_file_exists(ref)) {
        test_skip("reference model missing");
        return;
    }
    char path[512];
    const char *dir = test_tmp_dir();

    snprintf(path, sizeof path, "%s/missing-tensor.gguf", dir);
    REQUIRE(write_variant(ref, path, NULL, "blk.1.ffn_up.weight", NULL));
    expect_clean_failure(path, "missing required tensor 'blk.1.ffn_up.weight'", false);

    snprintf(path, sizeof path, "%s/missing-key.gguf", dir);
    REQUIRE(write_variant(ref, path, "llama.block_count", NULL, NULL));
    expect_clean_failure(path, "missing required key 'llama.block_count'", false);

    snprintf(path, sizeof path, "%s/unknown-arch.gguf", dir);
    REQUIRE(write_variant(ref, path, NULL, NULL, "mamba"));
    expect_clean_failure(path, "architecture 'mamba' is not supported", false);

    snprintf(path, sizeof path, "%s/no-tokenizer.gguf", dir);
    REQUIRE(write_variant(ref, path, "tokenizer.ggml.tokens", NULL, NULL));
    expect_clean_failure(path, "tokenizer", false);

    size_t size = 0;
    char *data = test_read_file(ref, &size);
    REQUIRE(data && size > 4096);

    snprintf(path, sizeof path, "%s/bad-magic.gguf", dir);
    memcpy(data, "GGUX", 4);
    REQUIRE(write_bytes(path, data, size));
    expect_clean_failure(path, "magic", true);
    memcpy(data, "GGUF", 4);

    /* Truncated at several points: in the header, the metadata, the tensor directory, the data. */
    const size_t cuts[] = {0, 3, 10, 23, 100, 1000, 3000, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        snprintf(path, sizeof path, "%s/truncated-%zu.gguf", dir, cuts[i]);
        REQUIRE(write_bytes(path, data, cuts[i]));
        expect_clean_failure(path, path, true); /* the message names the file */
    }
    free(data);

    expect_clean_failure("/nonexistent/model.gguf", "/nonexistent/model.gguf", true);
}

TEST(cli_run_bad_options) {
    if (!have_data()) return;
    struct {
        const char *args, *needle;
    } cases[] = {
        {"-n -3", "bad value for -n"},
        {"-t 0", "bad value for -t"},
        {"--kv-type q4", "bad --kv-type"},
        {"--bogus", "unknown option"},
        {"-m", "needs a value"},
        {"--kernels avx9", "kernel set 'avx9' is not available"},
        {"--kernels", "needs a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[2048], *out = NULL;
        snprintf(cmd, sizeof cmd, "%s run -m %s -p hi %s", test_celer_bin(), stories_gguf(), cases[i].args);
        int rc = test_run_cmd(cmd, &out, true);
        CHECKF(rc != 0 && out && strstr(out, cases[i].needle), "'%s': exit %d, output %s", cases[i].args, rc,
               out ? out : "");
        free(out);
    }
    /* A prompt longer than the context. */
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s run -m %s -c 8 -p 'Once upon a time there was a very long prompt'",
             test_celer_bin(), stories_gguf());
    int rc = test_run_cmd(cmd, &out, true);
    CHECKF(rc != 0 && out && strstr(out, "does not fit the context"), "exit %d: %s", rc, out ? out : "");
    free(out);
}

TEST(cli_run_methods_and_invalid_method_options) {
    if (!have_data()) return;
    struct {
        const char *args, *needle;
    } bad[] = {
        {"--method sample --temp -0.5", "temperature"},
        {"--method sample --top-p 1.5", "top_p must be in [0, 1]"},
        {"--method beam --beam 0", "beam width"},
        {"--method nucleus", "unknown decoding method"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char cmd[2048], *out = NULL;
        snprintf(cmd, sizeof cmd, "%s run -m %s -p hi %s", test_celer_bin(), stories_gguf(), bad[i].args);
        int rc = test_run_cmd(cmd, &out, true);
        CHECKF(rc != 0 && out && strstr(out, bad[i].needle), "'%s': exit %d, output %s", bad[i].args, rc,
               out ? out : "");
        free(out);
    }
    /* Every method runs from the CLI and reports itself in the JSON. */
    const char *methods[] = {"greedy", "sample", "beam", "fsd", "fsd-vec", "momentum", "contrastive"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        char cmd[2048], *out = NULL, got[64];
        snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Once upon a time' -n 12 --json --method %s", test_celer_bin(),
                 stories_gguf(), methods[i]);
        int rc = test_run_cmd(cmd, &out, false);
        CHECKF(rc == 0 && out && tu_json_string(out, "method", got, sizeof got) && !strcmp(got, methods[i]),
               "method %s: exit %d: %s", methods[i], rc, out ? out : "");
        int32_t ids[64];
        CHECK(out && tu_json_int_array(out, "output_ids", ids, 64) == 12);
        free(out);
    }
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'Once upon a time' -n 30 --json --method constrained --beam 4 --constraint 'ball'",
             test_celer_bin(), stories_gguf());
    CHECK_EQ_INT(test_run_cmd(cmd, &out, false), 0);
    char text[4096];
    CHECKF(out && tu_json_string(out, "text", text, sizeof text) && strstr(text, "ball"), "constraint missing: %s",
           out ? out : "");
    free(out);
}

TEST(cli_run_chat) {
    if (!have_data()) return;
    char cmd[2048], *out = NULL;
    /* stories260K has no chat template: a clear error unless one is named. */
    snprintf(cmd, sizeof cmd, "echo hello | %s run -m %s --chat -n 8", test_celer_bin(), stories_gguf());
    int rc = test_run_cmd(cmd, &out, true);
    CHECKF(rc != 0 && out && strstr(out, "--chat-template"), "exit %d: %s", rc, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "printf 'Once upon a time\\nThe end\\n' | %s run -m %s --chat --chat-template chatml -n 8",
             test_celer_bin(), stories_gguf());
    rc = test_run_cmd(cmd, &out, true);
    CHECKF(rc == 0 && out && strlen(out) > 8, "exit %d: %s", rc, out ? out : "");
    free(out);
}

TEST(cli_run_json_is_valid_json) {
    if (!have_data()) return;
    if (test_run_cmd("command -v python3 >/dev/null", NULL, false) != 0) {
        test_skip("no python3");
        return;
    }
    /* Token 198 of tok512 is the byte 0xC3, a UTF-8 lead byte: biased to be chosen every step,
     * the text is three lone lead bytes, which JSON must carry as U+FFFD. A non-ASCII prompt
     * with quotes and a tab runs too. */
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "%s run -m %s -p Once -n 3 --json --logit-bias 198=100 | python3 -c 'import json,sys; "
             "d=json.load(sys.stdin); print(d[\"text\"] == \"\\ufffd\" * 3, d[\"output_ids\"])'",
             test_celer_bin(), stories_gguf());
    int rc = test_run_cmd(cmd, &out, true);
    CHECKF(rc == 0 && out && !strncmp(out, "True [198, 198, 198]", 20), "exit %d: %s", rc, out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd,
             "%s run -m %s -p \"\u00dcn\u00efc\u00f6d\u00e9 \\\"quoted\\\"\tand\\\\\" -n 8 --json | "
             "python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d[\"output_ids\"]))'",
             test_celer_bin(), stories_gguf());
    rc = test_run_cmd(cmd, &out, true);
    CHECKF(rc == 0 && out && atoi(out) == 8, "exit %d: %s", rc, out ? out : "");
    free(out);
}
