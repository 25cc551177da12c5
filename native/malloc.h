// Process-wide glibc malloc thresholds (see malloc.cc).
#pragma once
#include <node_api.h>

napi_value KeepLargeBuffers(napi_env env, napi_callback_info info);
