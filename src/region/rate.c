/* rate.c — see include/forge/rate.h. */
#include "forge/rate.h"

#define SEC 1000000000ull

uint64_t fg_rate_admit(_Atomic uint64_t *req_tat, _Atomic uint64_t *tok_tat, uint32_t rps,
		       uint32_t tpm, uint64_t now)
{
	if (tpm) {
		uint64_t t = atomic_load_explicit(tok_tat, memory_order_relaxed);
		if (t > now + 60 * SEC)
			return t - (now + 60 * SEC);
	}
	if (!rps)
		return 0;
	uint64_t interval = SEC / rps, burst = SEC;
	uint64_t tat = atomic_load_explicit(req_tat, memory_order_relaxed);
	for (;;) {
		if (tat > now + burst)
			return tat - (now + burst);
		uint64_t next = (tat > now ? tat : now) + interval;
		if (atomic_compare_exchange_weak_explicit(req_tat, &tat, next, memory_order_relaxed,
							  memory_order_relaxed))
			return 0;
	}
}

void fg_rate_tokens(_Atomic uint64_t *tok_tat, uint32_t tpm, uint64_t tokens, uint64_t now)
{
	if (!tpm || !tokens)
		return;
	uint64_t per = 60 * SEC / tpm;
	uint64_t tat = atomic_load_explicit(tok_tat, memory_order_relaxed);
	for (;;) {
		uint64_t next = (tat > now ? tat : now) + tokens * per;
		if (atomic_compare_exchange_weak_explicit(tok_tat, &tat, next, memory_order_relaxed,
							  memory_order_relaxed))
			return;
	}
}
