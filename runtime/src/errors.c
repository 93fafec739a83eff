/* errors.c — names and messages of cairn's error codes, generated from the
 * single CAIRN_ERRNO_MAP list in cairn.h. */
#include "cairn.h"

CAIRN_API const char *cairn_strerror(int err) {
  switch (err) {
  case CAIRN_OK:
    return "success";
#define CAIRN__ERR_MSG(name, value, msg)                                       \
  case CAIRN_##name:                                                           \
    return msg;
    CAIRN_ERRNO_MAP(CAIRN__ERR_MSG)
#undef CAIRN__ERR_MSG
  default:
    return "unknown error";
  }
}

CAIRN_API const char *cairn_err_name(int err) {
  switch (err) {
  case CAIRN_OK:
    return "CAIRN_OK";
#define CAIRN__ERR_NAME(name, value, msg)                                      \
  case CAIRN_##name:                                                           \
    return "CAIRN_" #name;
    CAIRN_ERRNO_MAP(CAIRN__ERR_NAME)
#undef CAIRN__ERR_NAME
  default:
    return "CAIRN_UNKNOWN";
  }
}
