// Shared by the shim's translation units: every C entry point runs its body through `guarded`,
// which catches C++ exceptions and keeps the message for `proxyrobust_last_error`.
#pragma once
#include <c10/util/Exception.h>
#include <exception>
#include <string>

namespace proxyrobust {
void set_last_error(std::string message);

template <typename F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const c10::Error& e) {
    set_last_error(e.what_without_backtrace());
  } catch (const std::exception& e) {
    set_last_error(e.what());
  } catch (...) {
    set_last_error("unknown C++ exception");
  }
  return -1;
}
}  // namespace proxyrobust
