// C entry points over libtorch for what tch does not bind. Every function catches C++ exceptions
// and reports them through `proxyrobust_last_error`, so nothing unwinds into Rust.
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <cstdint>
#include <set>
#include <string>

#include "shim.h"

namespace {
thread_local std::string last_error;
}  // namespace

void proxyrobust::set_last_error(std::string message) { last_error = std::move(message); }

using proxyrobust::guarded;

extern "C" {

const char* proxyrobust_last_error() { return last_error.c_str(); }

// Turns autocast on for `device_type` (c10::DeviceType) with `dtype` (c10::ScalarType) and enters
// one nesting level; writes the previous state for `proxyrobust_autocast_exit`.
int proxyrobust_autocast_enter(int device_type, int dtype, int* previous_enabled, int* previous_dtype) {
  return guarded([&] {
    auto device = static_cast<c10::DeviceType>(device_type);
    *previous_enabled = at::autocast::is_autocast_enabled(device) ? 1 : 0;
    *previous_dtype = static_cast<int>(at::autocast::get_autocast_dtype(device));
    at::autocast::set_autocast_enabled(device, true);
    at::autocast::set_autocast_dtype(device, static_cast<c10::ScalarType>(dtype));
    at::autocast::increment_nesting();
  });
}

// Leaves the nesting level (clearing the cast-weight cache at the outermost) and restores the state
// `proxyrobust_autocast_enter` saw.
int proxyrobust_autocast_exit(int device_type, int previous_enabled, int previous_dtype) {
  return guarded([&] {
    auto device = static_cast<c10::DeviceType>(device_type);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(device, previous_enabled != 0);
    at::autocast::set_autocast_dtype(device, static_cast<c10::ScalarType>(previous_dtype));
  });
}

// Whether autocast is on for `device_type`: 1, 0, or -1 on error.
int proxyrobust_autocast_enabled(int device_type) {
  int enabled = -1;
  guarded([&] { enabled = at::autocast::is_autocast_enabled(static_cast<c10::DeviceType>(device_type)) ? 1 : 0; });
  return enabled;
}

// Starts PyTorch's (Kineto) profiler on the CPU activity with FLOP counting (the formulas of
// torch.profiler's `with_flops`: convolutions, matrix products, element-wise mul and add).
int proxyrobust_flops_start() {
  return guarded([&] {
    namespace impl = torch::profiler::impl;
    impl::ProfilerConfig config(impl::ProfilerState::KINETO, /*report_input_shapes=*/true,
                                /*profile_memory=*/false, /*with_stack=*/false, /*with_flops=*/true);
    std::set<impl::ActivityType> activities{impl::ActivityType::CPU};
    torch::autograd::profiler::prepareProfiler(config, activities);
    torch::autograd::profiler::enableProfiler(config, activities);
  });
}

// Stops the profiler and writes the FLOPs of every recorded op.
int proxyrobust_flops_stop(uint64_t* flops) {
  return guarded([&] {
    auto result = torch::autograd::profiler::disableProfiler();
    uint64_t total = 0;
    for (const auto& event : result->events()) {
      total += event.flops();
    }
    *flops = total;
  });
}
}
