/* The library's version, from the header it was built with: a program compiled against another
 * header can compare clattn_version() with its CLATTN_VERSION_STRING. */
#include "clattn.h"

const char *clattn_version(void)
{
    return CLATTN_VERSION_STRING;
}
