/*
 * workflows.h — each workflow's entry points, for the table (table.c).
 * Private to src/workflows/; the contract with the worker is worker/wk.h.
 */
#ifndef FORGE_WORKFLOWS_H
#define FORGE_WORKFLOWS_H

#include "worker/wk.h"

void fg_wf_synthetic_step(worker_t *w, wsess_t *s);
void fg_wf_react_step(worker_t *w, wsess_t *s);
void fg_wf_react_reply(worker_t *w, wsess_t *s, fg_llm_reply_t *r);
void fg_wf_fanout_step(worker_t *w, wsess_t *s);
void fg_wf_fanout_reply(worker_t *w, wsess_t *s, fg_llm_reply_t *r);

#endif
