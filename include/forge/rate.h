/*
 * rate.h — per-provider rate limits shared by all workers through the
 * region: requests per second and tokens per minute, each a GCRA (generic
 * cell rate algorithm) on one atomic "theoretical arrival time".
 *
 * requests: a request may start when req_tat <= now + 1 s of burst; it
 *           then moves req_tat to max(req_tat, now) + 1/rps.
 * tokens:   a request may start when tok_tat <= now + 60 s of burst; each
 *           reply then moves tok_tat forward by its tokens x (60 s / tpm).
 *           (Token counts are known only after the reply, so this limits
 *           the rate over a minute, not each request.)
 * Every update is a single CAS: a process killed anywhere leaves a valid
 * value, at worst one request's debit missing.
 */
#ifndef FORGE_RATE_H
#define FORGE_RATE_H

#include <stdatomic.h>
#include <stdint.h>

/* 0 if a request may start now (and it is counted), else ns to wait. */
uint64_t fg_rate_admit(_Atomic uint64_t *req_tat, _Atomic uint64_t *tok_tat, uint32_t rps,
		       uint32_t tpm, uint64_t now);

/* Debits a reply's tokens. */
void fg_rate_tokens(_Atomic uint64_t *tok_tat, uint32_t tpm, uint64_t tokens, uint64_t now);

#endif
