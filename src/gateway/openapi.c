/*
 * openapi.c — GET /openapi.json: the API described in OpenAPI 3
 * (docs/openapi.json, compiled in as a string: $(B)/gen/openapi.h), so
 * that the document a client fetches is the one shipped with the binary.
 * tests/integration/gateway.sh checks it against the real responses.
 */
#include "gateway/gw.h"

#include <stdlib.h>
#include <string.h>

static const char doc[] =
#include "openapi.h"
;

int gw_openapi(gw_t *g, struct MHD_Connection *c, body_t *b, const char *id)
{
	(void)g;
	(void)b;
	(void)id;
	return reply(c, 200, "application/json", strdup(doc), NULL, NULL);
}
