/* tests/fuzz/fuzz_config.c — libFuzzer target: loader_read_config on a
 * folder whose config.json is the input (read through json_stream's small
 * window). Oracles: no sanitizer report; a failure has a status and a
 * message; an accepted config is valid JSON to json.c's reader over the whole
 * text, passes loader_check_config again, and its derived sizes (the ones
 * the plan multiplies) fit in 64 bits. */
#include "fuzz_common.h"
#include "loader/json.h"
#include "loader/loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_write(fz_path("config.json"), data, size);
    kvgpt_config c;
    kvgpt_error err = {0, ""};
    kvgpt_status st = loader_read_config(fz_dir(), &c, &err);
    if (st) {
        fz_check_failure(st, &err);
        FZ_CHECK(st == KVGPT_ERR_CONFIG || st == KVGPT_ERR_JSON || st == KVGPT_ERR_IO,
                 "unexpected status %d: %s", (int)st, err.msg);
        return 0;
    }
    json_reader r;
    json_init(&r, (const char *)data, size);
    FZ_CHECK(json_skip(&r) && json_finish(&r), "accepted, but json.c finds it invalid: %s at byte %zu", r.err,
             json_offset(&r));
    kvgpt_error err2 = {0, ""};
    st = loader_check_config(&c, "again", &err2);
    FZ_CHECK(st == KVGPT_OK, "accepted config fails its own check: %s", err2.msg);
    FZ_CHECK(c.n_embd % c.n_head == 0, "n_embd %d, n_head %d", c.n_embd, c.n_head);
    FZ_CHECK(c.gelu == KVGPT_GELU_ERF || c.gelu == KVGPT_GELU_TANH, "gelu %d", (int)c.gelu);
    /* The largest product the plan forms: layers × 4C × C weights, in bytes. */
    unsigned __int128 w = (unsigned __int128)c.n_layer * 12u * (unsigned)c.n_embd * (unsigned)c.n_embd * 4u;
    FZ_CHECK(w < ((unsigned __int128)1 << 64), "accepted config whose weights overflow 64 bits");
    return 0;
}
