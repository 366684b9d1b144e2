/* tools/cmd_budget.c — `kvgpt budget`: the memory plan of a model folder or
 * a standard GPT-2 shape, one row per region; non-zero when over the limit. */
#include "tools/cli.h"

#include <stdio.h>

int cmd_budget(int argc, char **argv)
{
    const char *model = NULL, *shape = NULL, *dtype = "f32", *kv_dtype = "f32";
    int batch = 1, context = 0, help = 0;
    size_t limit = 0;
    const cli_opt opts[] = {
        {"model", OPT_STR, &model, "model folder (config.json + model.safetensors)"},
        {"shape", OPT_STR, &shape, "gpt2 | gpt2-medium | gpt2-large | gpt2-xl (no files needed)"},
        {"batch", OPT_INT, &batch, "sequences decoded together (default 1)"},
        {"context", OPT_INT, &context, "positions per sequence (default block_size)"},
        {"dtype", OPT_STR, &dtype, "weights: f32 | f16 | bf16 (default f32)"},
        {"kv-dtype", OPT_STR, &kv_dtype, "KV cache: f32 | f16 | bf16 (default f32)"},
        {"arena-limit", OPT_SIZE, &limit, "fail when the arena needs more bytes than this"},
        {"help", OPT_FLAG, &help, "this text"},
    };
    int n = (int)(sizeof opts / sizeof opts[0]);
    if (cli_parse("budget", argc, argv, opts, n)) return 2;
    if (help) {
        cli_usage("budget", "Prints every region of the arena plan (name, shape, dtype, bytes) and the total.", opts, n);
        return 0;
    }
    if (!model == !shape) return cli_error("budget", "give exactly one of --model DIR or --shape NAME");
    if (model && cli_need_model("budget", model)) return 1;
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.batch = batch;
    o.context = context;
    o.arena_limit = limit;
    int wd = cli_dtype(dtype), kd = cli_dtype(kv_dtype);
    if (wd < 0) return cli_error("budget", "--dtype must be f32, f16 or bf16, not \"%s\"", dtype);
    if (kd < 0) return cli_error("budget", "--kv-dtype must be f32, f16 or bf16, not \"%s\"", kv_dtype);
    o.weight_dtype = (kvgpt_dtype)wd;
    o.kv_dtype = (kvgpt_dtype)kd;
    kvgpt_plan plan;
    kvgpt_error err = {0};
    kvgpt_status s;
    if (shape) {
        kvgpt_config c;
        kvgpt_shape sh = kvgpt_shape_from_name(shape);
        if (sh == KVGPT_SHAPE_NONE)
            return cli_error("budget", "unknown --shape \"%s\" (gpt2, gpt2-medium, gpt2-large, gpt2-xl)", shape);
        kvgpt_shape_config(sh, &c);
        s = kvgpt_plan_config(&c, &o, &plan, &err);
    } else {
        o.model_dir = model;
        s = kvgpt_plan_model(&o, &plan, &err);
    }
    if (s == KVGPT_ERR_NOMEM && plan.n_regions > 0) {
        kvgpt_plan_print(&plan, stdout);
        return cli_status("budget", s, &err);
    }
    if (s) return cli_status("budget", s, &err);
    kvgpt_plan_print(&plan, stdout);
    return 0;
}
