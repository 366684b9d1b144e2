/* tests/support/refjson.c — see refjson.h. */
#include "tests/support/refjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rj_after_key(const char *from, const char *key)
{
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = from ? strstr(from, pat) : NULL;
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == '\n' || *p == ':') p++;
    return p;
}

int rj_parse_ints(const char *p, int32_t *out, int cap)
{
    if (!p || *p != '[') return -1;
    p++;
    int n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == ',') p++;
        if (*p == ']') return n;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || n >= cap) return -1;
        out[n++] = (int32_t)v;
        p = end;
    }
}

const char *rj_nth_key(const char *json, const char *key, int nth)
{
    const char *p = json;
    for (int i = 0; p && i <= nth; i++) p = rj_after_key(p, key);
    return p;
}
