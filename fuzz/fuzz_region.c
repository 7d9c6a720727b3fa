/* libFuzzer target: region header validation (a region file is input from
 * outside: it may be damaged) and the conversation log of a session (the
 * bytes a checkpoint holds), read by every reader forge has. */
#include "forge/conv.h"
#include "forge/llm.h"
#include "forge/region.h"
#include "forge/views.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fg_hdr_t h;
	char err[512];
	memset(&h, 0, sizeof(h));
	memcpy(&h, data, size < sizeof(h) ? size : sizeof(h));
	uint64_t fsize = size >= 8 ? *(const uint64_t *)data ^ h.total_size : size;
	err[0] = '\0';
	if (fg_region_validate(&h, fsize, err, sizeof(err)) < 0 && !err[0])
		abort();

	uint32_t len = size > 65536 ? 65536 : (uint32_t)size;
	fg_react_view_t rv;
	fg_mr_view_t mv;
	fg_react_view(data, len, &rv, err, sizeof(err));
	fg_mr_view(data, len, &mv, err, sizeof(err));
	json_t *m = fg_conv_messages(data, len, err, sizeof(err));
	json_decref(m);
	uint32_t pt, ct;
	json_decref(fg_conv_json(data, len, &pt, &ct));
	size_t n;
	free(fg_llm_request_log("m", data, len, "[]", 1, &n, err, sizeof(err)));
	return 0;
}
