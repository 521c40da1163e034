#include "gev/coro.h"

GEV_EXTERN const char *gev_version(void) { return GEV_VERSION_STRING; }
