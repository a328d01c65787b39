/* rabia_strerror: text for rabia's error codes and negative errno values. */
#include <string.h>

#include "rabia/types.h"

const char *rabia_strerror(int err)
{
    switch (err) {
    case RABIA_OK: return "success";
    case RABIA_E_CHECKSUM: return "frame checksum mismatch";
    case RABIA_E_VERSION: return "unknown protocol version";
    case RABIA_E_TYPE: return "unknown message type";
    case RABIA_E_MALFORMED: return "malformed message";
    case RABIA_E_TOOBIG: return "frame too large";
    case RABIA_E_FULL: return "table full, retry later";
    case RABIA_E_CONFIG: return "invalid configuration";
    case RABIA_E_INVARIANT: return "internal invariant failed";
    case RABIA_E_FEATURE:
        return "the cluster agreed a feature level above this build's: run a build of that level or later "
               "(rabiad --version prints a build's level)";
    default: break;
    }
    /* Everything else is a negative errno (the convention of every rabia
     * function); a positive value is a caller bug, but still gets a text. */
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
