/* common/status.c — status names and the error recorder. */
#include "common/status.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const names[KVGPT_STATUS_COUNT] = {
    [KVGPT_OK] = "KVGPT_OK: success",
    [KVGPT_ERR_ARG] = "KVGPT_ERR_ARG: bad argument or option",
    [KVGPT_ERR_IO] = "KVGPT_ERR_IO: cannot open or read a file",
    [KVGPT_ERR_NOMEM] = "KVGPT_ERR_NOMEM: the arena does not fit",
    [KVGPT_ERR_JSON] = "KVGPT_ERR_JSON: malformed JSON",
    [KVGPT_ERR_CONFIG] = "KVGPT_ERR_CONFIG: bad model config",
    [KVGPT_ERR_ST_HEADER] = "KVGPT_ERR_ST_HEADER: bad safetensors header",
    [KVGPT_ERR_ST_TENSOR] = "KVGPT_ERR_ST_TENSOR: bad safetensors tensor entry",
    [KVGPT_ERR_MISSING_TENSOR] = "KVGPT_ERR_MISSING_TENSOR: a tensor is missing",
    [KVGPT_ERR_SHAPE] = "KVGPT_ERR_SHAPE: a tensor shape disagrees with the config",
    [KVGPT_ERR_VOCAB] = "KVGPT_ERR_VOCAB: bad tokenizer file",
    [KVGPT_ERR_TOKEN] = "KVGPT_ERR_TOKEN: token id out of range or text not encodable",
    [KVGPT_ERR_PROMPT] = "KVGPT_ERR_PROMPT: empty prompt or longer than the context",
    [KVGPT_ERR_CONTEXT_FULL] = "KVGPT_ERR_CONTEXT_FULL: the context is full",
    [KVGPT_ERR_UNSUPPORTED] = "KVGPT_ERR_UNSUPPORTED: not supported",
    [KVGPT_ERR_BACKEND] = "KVGPT_ERR_BACKEND: the compute backend failed",
    [KVGPT_ERR_CKPT] = "KVGPT_ERR_CKPT: bad nanoGPT checkpoint",
    [KVGPT_ERR_BUSY] = "KVGPT_ERR_BUSY: the model is busy (a call from inside its callback)",
    [KVGPT_ERR_ABORTED] = "KVGPT_ERR_ABORTED: the host aborted the call",
    [KVGPT_ERR_NUMERIC] = "KVGPT_ERR_NUMERIC: the model produced NaN or infinite values",
    [KVGPT_ERR_STATE] = "KVGPT_ERR_STATE: bad saved sequence state",
};

const char *kvgpt_strerror(kvgpt_status s)
{
    if ((int)s < 0 || s >= KVGPT_STATUS_COUNT || !names[s]) return "KVGPT_ERR_?: unknown status";
    return names[s];
}

kvgpt_status kv_fail(kvgpt_error *err, kvgpt_status s, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = s;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}
