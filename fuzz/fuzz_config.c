/* libFuzzer target: the YAML configuration loader on arbitrary bytes. */
#include "forge/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static fg_config_t c;
	char err[1024];
	err[0] = '\0';
	int rc = fg_config_load_buf(&c, "fuzz.yaml", (const char *)data, size, err, sizeof(err));
	/* every refusal says where */
	if (rc < 0 && strncmp(err, "fuzz.yaml:", 10) != 0)
		abort();
	return 0;
}
