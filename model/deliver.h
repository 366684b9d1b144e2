/* model/deliver.h — passing a sequence's new tokens and text to the host
 * (on_token, on_text) with stop strings held back until they cannot match. */
#ifndef KVGPT_DELIVER_H
#define KVGPT_DELIVER_H

#include "model/model.h"

/* A slot starting a generation with this rng state. */
void gen_slot_start(gen_slot *gs, uint64_t rng);
/* Takes token tok of sequence seq: passes on what can no longer be part of
 * a stop string. KVGPT_STOP_STRING when one matched (what precedes it was
 * passed on), KVGPT_STOP_CALLBACK when a callback asked to stop, else NONE. */
kvgpt_stop_reason gen_deliver(const kvgpt_model *m, const kvgpt_gen_options *g, int seq, gen_slot *gs, int32_t tok);
/* The sequence ends (not by a stop string): passes on all that is held,
 * a partial UTF-8 character as U+FFFD. KVGPT_STOP_CALLBACK or NONE. */
kvgpt_stop_reason gen_finish(const kvgpt_gen_options *g, int seq, gen_slot *gs);

#endif
