// The collective side of data-parallel pretraining (model/src/dist.rs): a
// thin C ABI over libtorch's own c10d, the engine torch.distributed runs on.
//
// * rendezvous: c10d::TCPStore at MASTER_ADDR:MASTER_PORT (rank 0 serves);
// * backends: c10d::ProcessGroupGloo (CPU tensors) and, when built with
//   MCSFAU_NCCL, c10d::ProcessGroupNCCL (CUDA tensors);
// * collectives: all-reduce (sum) of a list of buckets, broadcast;
// * gradient averaging overlapped with backward: c10d's Reducer, the engine
//   of torch DDP (autograd hooks on the parameters' gradient accumulators
//   launch each bucket's all-reduce as soon as its gradients are ready);
// * synchronised BatchNorm: an autograd function whose forward all-reduces
//   the per-channel sums and whose backward all-reduces the two gradient
//   sums, as torch.nn.SyncBatchNorm does.
//
// Tensors cross the boundary as tch's `at::Tensor*`. Every entry point
// catches C++ exceptions and returns a message instead (a Rust caller must
// never unwind a C++ exception).

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/debug.h>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef MCSFAU_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <c10/util/Exception.h>
#include <c10/util/Logging.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  // The backend registered as a ProcessGroup (what the Reducer takes).
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank;
  int size;
  std::chrono::milliseconds timeout;
};

void set_error(char* err, size_t len, const std::string& what) {
  if (err == nullptr || len == 0) return;
  // c10 messages carry a C++ backtrace after the first lines: keep the head.
  std::string msg = what;
  auto cut = msg.find("\nException raised from");
  if (cut != std::string::npos) msg.resize(cut);
  std::strncpy(err, msg.c_str(), len - 1);
  err[len - 1] = '\0';
}

void wait_all(Group* g, std::vector<c10::intrusive_ptr<c10d::Work>>& works) {
  for (auto& w : works) w->wait(g->timeout);
}

void all_reduce_sum(Group* g, std::vector<at::Tensor>& buckets) {
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  works.reserve(buckets.size());
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  opts.timeout = g->timeout;
  // One collective per bucket, all in flight before the first wait.
  for (auto& b : buckets) {
    std::vector<at::Tensor> one{b};
    works.push_back(g->backend->allreduce(one, opts));
  }
  wait_all(g, works);
}

// Drops one c10d warning that is noise here: the Reducer compares a 1x1
// convolution's gradient strides with its bucket's literally, and the
// channels-last gradient of a 1x1 kernel ([C, K, 1, 1], strides
// [K, 1, K, K]) has the same memory layout as the contiguous weight. Every
// other warning goes to the handler that was there before.
struct QuietStrideWarning : public c10::WarningHandler {
  c10::WarningHandler* previous = nullptr;
  void process(const c10::Warning& w) override {
    if (w.msg().find("Grad strides do not match bucket view strides") != std::string::npos) return;
    if (previous != nullptr) previous->process(w);
  }
};

// Per-channel reduction dims of an [N, C, ...] input.
std::vector<int64_t> reduce_dims(const at::Tensor& x) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

std::vector<int64_t> channel_shape(const at::Tensor& x) {
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = x.size(1);
  return shape;
}

// y = (x - mean) * invstd * w + b with mean and variance over every rank's
// batch. Sums are accumulated and reduced in float64.
struct SyncBatchNorm : public torch::autograd::Function<SyncBatchNorm> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x, at::Tensor w, at::Tensor b,
                            at::Tensor running_mean, at::Tensor running_var, double momentum, double eps,
                            int64_t group) {
    auto* g = reinterpret_cast<Group*>(group);
    const int64_t c = x.size(1);
    const auto dims = reduce_dims(x);
    const auto shape = channel_shape(x);
    auto local_n = at::full({1}, static_cast<double>(x.numel() / std::max<int64_t>(c, 1)),
                            x.options().dtype(at::kDouble));
    auto stats = at::cat({x.sum(dims, false, at::kDouble), (x * x).sum(dims, false, at::kDouble), local_n});
    std::vector<at::Tensor> buckets{stats};
    all_reduce_sum(g, buckets);
    const auto sum = stats.narrow(0, 0, c);
    const auto sq = stats.narrow(0, c, c);
    const auto n = stats.narrow(0, 2 * c, 1);
    const auto mean = sum / n;
    const auto var = (sq / n - mean * mean).clamp_min(0.0);
    const auto invstd = (var + eps).rsqrt();
    {
      at::NoGradGuard no_grad;
      const double count = n.item<double>();
      if (running_mean.defined()) {
        running_mean.mul_(1.0 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
      }
      if (running_var.defined()) {
        const double unbias = count > 1.0 ? count / (count - 1.0) : 1.0;
        running_var.mul_(1.0 - momentum).add_((var * unbias).to(running_var.scalar_type()), momentum);
      }
    }
    const auto m = mean.to(x.scalar_type()).view(shape);
    const auto s = invstd.to(x.scalar_type()).view(shape);
    auto y = (x - m) * s;
    if (w.defined()) y = y * w.view(shape);
    if (b.defined()) y = y + b.view(shape);
    ctx->save_for_backward({x, w, mean, invstd, n});
    ctx->saved_data["group"] = group;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto x = saved[0], w = saved[1], mean = saved[2], invstd = saved[3], n = saved[4];
    auto* g = reinterpret_cast<Group*>(ctx->saved_data["group"].toInt());
    auto dy = grads[0];
    const int64_t c = x.size(1);
    const auto dims = reduce_dims(x);
    const auto shape = channel_shape(x);
    const auto xhat = (x - mean.to(x.scalar_type()).view(shape)) * invstd.to(x.scalar_type()).view(shape);
    auto sums = at::cat({dy.sum(dims, false, at::kDouble), (dy * xhat).sum(dims, false, at::kDouble)});
    // This rank's share of the affine gradients (averaged with the others
    // later, like every other parameter gradient).
    at::Tensor grad_w, grad_b;
    if (w.defined()) {
      grad_w = sums.narrow(0, c, c).to(w.scalar_type());
      grad_b = sums.narrow(0, 0, c).to(w.scalar_type());
    }
    std::vector<at::Tensor> buckets{sums};
    all_reduce_sum(g, buckets);
    const auto mean_dy = (sums.narrow(0, 0, c) / n).to(x.scalar_type()).view(shape);
    const auto mean_dy_xhat = (sums.narrow(0, c, c) / n).to(x.scalar_type()).view(shape);
    auto scale = invstd.to(x.scalar_type()).view(shape);
    if (w.defined()) scale = scale * w.view(shape);
    auto dx = scale * (dy - mean_dy - xhat * mean_dy_xhat);
    return {dx, grad_w, grad_b, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

extern "C" {

// A process group of `size` ranks meeting at host:port. backend: "gloo"
// or "nccl". Null on failure, with the reason in err.
void* mcsfau_dist_new(const char* backend, const char* host, uint16_t port, int rank, int size, int64_t timeout_ms,
                      int local_rank, char* err, size_t err_len) {
  try {
    // c10d logs every failed connection attempt with the C++ backtrace of
    // its exception; keep the messages, drop the frames (as torch's Python
    // does unless TORCH_SHOW_CPP_STACKTRACES=1).
    const char* show = std::getenv("TORCH_SHOW_CPP_STACKTRACES");
    if (show == nullptr || std::string(show) != "1") {
      c10::SetStackTraceFetcher(std::function<std::string()>([] { return std::string(); }));
    }
    // TORCH_DISTRIBUTED_DEBUG=INFO|DETAIL, as torch.distributed reads it.
    c10d::setDebugLevelFromEnvironment();
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = port;
    so.isServer = rank == 0;
    so.numWorkers = size;
    so.waitWorkers = true;
    so.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), so);
    auto g = std::make_unique<Group>();
    g->store = store;
    g->rank = rank;
    g->size = size;
    g->timeout = timeout;
    const std::string which(backend);
    if (which == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname != nullptr && *ifname != '\0') {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, opts);
    } else if (which == "nccl") {
#ifdef MCSFAU_NCCL
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(local_rank));
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      g->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
#else
      (void)local_rank;
      set_error(err, err_len, "this build has no NCCL backend (libtorch without CUDA, or nccl.h not found at build time)");
      return nullptr;
#endif
    } else {
      set_error(err, err_len, "unknown backend '" + which + "' (gloo or nccl)");
      return nullptr;
    }
    // As torch.distributed does: a ProcessGroup with the backend registered
    // for the device types it serves.
    const auto type = which == "gloo" ? c10d::ProcessGroup::BackendType::GLOO : c10d::ProcessGroup::BackendType::NCCL;
    g->pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size);
    g->pg->setDefaultBackend(type);
    if (which == "gloo") g->pg->setBackend(c10::DeviceType::CPU, type, g->backend);
    g->pg->setBackend(c10::DeviceType::CUDA, type, g->backend);
    return g.release();
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return nullptr;
  }
}

// Shuts the backend down (as torch.distributed.destroy_process_group does:
// NCCL's communicators are released instead of being torn down by the
// destructor with a warning), then frees the group.
void mcsfau_dist_free(void* group) {
  auto* g = reinterpret_cast<Group*>(group);
  try {
    if (g->pg) g->pg->shutdown();
  } catch (const std::exception&) {
    // a peer that is already gone: nothing left to release cleanly
  }
  delete g;
}

int mcsfau_dist_has_nccl() {
#ifdef MCSFAU_NCCL
  return 1;
#else
  return 0;
#endif
}

// In-place sum over the ranks of each of `n` tensors (one collective each,
// all in flight together). 0 on success.
int mcsfau_dist_all_reduce_sum(void* group, at::Tensor** tensors, size_t n, char* err, size_t err_len) {
  try {
    auto* g = reinterpret_cast<Group*>(group);
    std::vector<at::Tensor> buckets;
    buckets.reserve(n);
    for (size_t i = 0; i < n; ++i) buckets.push_back(*tensors[i]);
    all_reduce_sum(g, buckets);
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return 1;
  }
}

// Rank `root`'s values into each of `n` tensors on every rank.
int mcsfau_dist_broadcast(void* group, at::Tensor** tensors, size_t n, int root, char* err, size_t err_len) {
  try {
    auto* g = reinterpret_cast<Group*>(group);
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    opts.timeout = g->timeout;
    for (size_t i = 0; i < n; ++i) {
      std::vector<at::Tensor> one{*tensors[i]};
      works.push_back(g->backend->broadcast(one, opts));
    }
    wait_all(g, works);
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return 1;
  }
}

// A Reducer over `n` parameters (leaf tensors that require grad, in the
// same order on every rank): buckets of at most bucket_bytes (the first
// 1 MiB, as DDP), all-reduced as their gradients become ready in backward,
// the gradients replaced by their mean over the ranks. Every parameter must
// get a gradient every step (find_unused_parameters off: MC-SFAU uses all
// of them; the reducer's own error lists the ones that did not, by name
// with TORCH_DISTRIBUTED_DEBUG=DETAIL). Null on failure.
void* mcsfau_dist_reducer_new(void* group, at::Tensor** params, const char** names, size_t n, int64_t bucket_bytes,
                              char* err, size_t err_len) {
  try {
    auto* g = reinterpret_cast<Group*>(group);
    std::vector<at::Tensor> ps;
    std::unordered_map<size_t, std::string> param_names;
    ps.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      ps.push_back(*params[i]);
      param_names[i] = names[i];
    }
    const std::vector<size_t> limits{static_cast<size_t>(1) << 20, static_cast<size_t>(bucket_bytes)};
    auto assignment = c10d::compute_bucket_assignment_by_size(ps, limits, std::vector<bool>(n, false));
    auto buckets = std::get<0>(assignment);
    // Gradients arrive roughly in reverse order of the parameters.
    std::reverse(buckets.begin(), buckets.end());
    static QuietStrideWarning quiet;
    if (c10::WarningUtils::get_warning_handler() != &quiet) {
      quiet.previous = c10::WarningUtils::get_warning_handler();
      c10::WarningUtils::set_warning_handler(&quiet);
    }
    auto* r = new c10d::Reducer(ps, buckets, g->pg, std::vector<bool>(n, false), bucket_bytes,
                                /*find_unused_parameters=*/false, /*gradient_as_bucket_view=*/false,
                                param_names, /*first_bucket_bytes_cap=*/1 << 20,
                                /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false,
                                std::vector<int64_t>());
    return r;
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return nullptr;
  }
}

// Arms the reducer for the next backward pass from `output`.
int mcsfau_dist_reducer_prepare(void* reducer, at::Tensor* output, char* err, size_t err_len) {
  try {
    reinterpret_cast<c10d::Reducer*>(reducer)->prepare_for_backward({*output});
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return 1;
  }
}

// Before each forward: after the first backward, re-buckets the parameters
// in the order their gradients became ready (rank 0's order, broadcast),
// as DDP does; a no-op afterwards.
int mcsfau_dist_reducer_rebuild(void* reducer, char* err, size_t err_len) {
  try {
    reinterpret_cast<c10d::Reducer*>(reducer)->rebuild_buckets();
    return 0;
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return 1;
  }
}

void mcsfau_dist_reducer_free(void* reducer) {
  try {
    delete reinterpret_cast<c10d::Reducer*>(reducer);
  } catch (const std::exception&) {
    // the destructor may throw (noexcept(false)); nothing to do at exit
  }
}

// BatchNorm over the batches of every rank (training mode); a new tensor,
// null on failure.
at::Tensor* mcsfau_dist_sync_batch_norm(void* group, at::Tensor* x, at::Tensor* w, at::Tensor* b,
                                        at::Tensor* running_mean, at::Tensor* running_var, double momentum,
                                        double eps, char* err, size_t err_len) {
  try {
    auto y = SyncBatchNorm::apply(*x, w ? *w : at::Tensor(), b ? *b : at::Tensor(),
                                  running_mean ? *running_mean : at::Tensor(),
                                  running_var ? *running_var : at::Tensor(), momentum, eps,
                                  reinterpret_cast<int64_t>(group));
    return new at::Tensor(y);
  } catch (const std::exception& e) {
    set_error(err, err_len, e.what());
    return nullptr;
  }
}

}  // extern "C"
