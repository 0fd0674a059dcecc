// c10d process groups for data-parallel training: a TCPStore rendezvous and libtorch's own
// ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA, when built with NCCL's headers), with
// all-reduce and broadcast on tch tensors (an `at::Tensor*` is what tch's tensor handle points to).
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "shim.h"

#ifdef PROXYROBUST_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace gloo {
namespace transport {
class Device;
}
}  // namespace gloo

namespace c10d {
// libtorch exports ProcessGroupGloo, but its header includes gloo's headers, which the PyTorch
// wheel does not ship. These are the declarations of the members called here, as in
// torch/csrc/distributed/c10d/ProcessGroupGloo.hpp of PyTorch 2.11.0 (the version tch 0.24 binds):
// the same Options layout, and room for the whole object (the real one is a few hundred bytes),
// since only libtorch's constructor and destructor ever touch it.
class ProcessGroupGloo : public Backend {
 public:
  struct Options : public Backend::Options {
    explicit Options(std::chrono::milliseconds timeout);
    std::vector<std::shared_ptr<::gloo::transport::Device>> devices;
    int threads{2};
  };
  static std::shared_ptr<::gloo::transport::Device> createDeviceForInterface(const std::string& interface,
                                                                            bool lazyInit);
  static std::shared_ptr<::gloo::transport::Device> createDefaultDevice(bool lazyInit);
  ProcessGroupGloo(const c10::intrusive_ptr<Store>& store, int rank, int size, c10::intrusive_ptr<Options> options);
  ~ProcessGroupGloo() override;

 private:
  alignas(64) unsigned char room_[8192];
};
}  // namespace c10d

namespace {
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  std::chrono::milliseconds timeout;
};

c10::intrusive_ptr<c10d::Backend> make_gloo(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                      std::chrono::milliseconds timeout) {
  auto options = c10::make_intrusive<c10d::ProcessGroupGloo::Options>(timeout);
  // As torch.distributed: GLOO_SOCKET_IFNAME names the interface, else this host's address.
  const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
  if (interface != nullptr && *interface != '\0') {
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface, false));
  } else {
    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice(false));
  }
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

c10::intrusive_ptr<c10d::Backend> make_nccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                      std::chrono::milliseconds timeout) {
#ifdef PROXYROBUST_NCCL
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
#else
  (void)store, (void)rank, (void)size, (void)timeout;
  throw std::runtime_error("this build has no NCCL (its headers were not found when it was compiled)");
#endif
}
}  // namespace

extern "C" {

using proxyrobust::guarded;

// 1 when the NCCL backend was compiled in.
int proxyrobust_pg_has_nccl() {
#ifdef PROXYROBUST_NCCL
  return 1;
#else
  return 0;
#endif
}

// Joins the group of `size` processes (rank 0 hosts the TCPStore at master:port) on backend 0
// (Gloo) or 1 (NCCL); operations fail after `timeout_ms`.
int proxyrobust_pg_new(int backend, const char* master, int port, int rank, int size, long timeout_ms,
                       void** out) {
  return guarded([&] {
    std::chrono::milliseconds timeout(timeout_ms);
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(port);
    store_options.isServer = rank == 0;
    store_options.numWorkers = size;
    store_options.waitWorkers = true;
    store_options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(master), store_options);
    auto group = std::make_unique<Group>();
    group->store = store;
    group->timeout = timeout;
    group->backend = backend == 1 ? make_nccl(store, rank, size, timeout) : make_gloo(store, rank, size, timeout);
    *out = group.release();
  });
}

// Sums `tensor` over the group, in place.
int proxyrobust_pg_all_reduce_sum(void* group, void* tensor) {
  return guarded([&] {
    auto* g = static_cast<Group*>(group);
    std::vector<at::Tensor> tensors{*static_cast<at::Tensor*>(tensor)};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    g->backend->allreduce(tensors, options)->wait(g->timeout);
  });
}

// Copies rank `root`'s `tensor` to every rank, in place.
int proxyrobust_pg_broadcast(void* group, void* tensor, int root) {
  return guarded([&] {
    auto* g = static_cast<Group*>(group);
    std::vector<at::Tensor> tensors{*static_cast<at::Tensor*>(tensor)};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    g->backend->broadcast(tensors, options)->wait(g->timeout);
  });
}

void proxyrobust_pg_free(void* group) { delete static_cast<Group*>(group); }
}
