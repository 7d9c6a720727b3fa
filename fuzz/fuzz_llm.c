/* libFuzzer target: LLM replies, whole and streamed (split at the first
 * byte's value), on arbitrary bytes: parsed or refused, never a crash. */
#include "forge/llm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fg_llm_reply_t r;
	fg_llm_parse((const char *)data, size, &r);
	if (!r.ok && !r.error[0])
		abort();
	if (r.ok && r.ncalls == 0 && !r.content)
		abort();
	fg_llm_reply_free(&r);

	fg_llm_stream_t s;
	fg_llm_stream_init(&s);
	size_t cut = size ? data[0] % (size + 1) : 0;
	fg_llm_stream_feed(&s, (const char *)data, cut);
	fg_llm_stream_feed(&s, (const char *)data + cut, size - cut);
	fg_llm_stream_finish(&s, &r);
	if (!r.ok && !r.error[0])
		abort();
	fg_llm_reply_free(&r);
	return 0;
}
