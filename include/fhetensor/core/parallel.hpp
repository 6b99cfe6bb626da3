#pragma once
// A minimal parallel loop over the machine's cores: independent bootstraps, key
// generation. Work items are handed out one at a time, so uneven items balance.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

inline std::size_t default_thread_count() noexcept {
  return std::max<std::size_t>(1, std::thread::hardware_concurrency());
}

/// Calls body(index, worker) for every index in [0, count), with worker in [0, threads):
/// per-worker scratch can be indexed by it. Rethrows the first exception of any worker.
template <class Body>
void parallel_for(std::size_t count, Body&& body, std::size_t threads = default_thread_count()) {
  threads = std::max<std::size_t>(1, std::min(threads, count));
  if (threads == 1) {
    for (std::size_t i = 0; i < count; ++i) body(i, std::size_t{0});
    return;
  }
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&](std::size_t worker) {
    try {
      for (std::size_t i = next++; i < count; i = next++) body(i, worker);
    } catch (...) {
      next = count;
      std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  std::vector<std::jthread> pool;
  for (std::size_t w = 1; w < threads; ++w) pool.emplace_back(work, w);
  work(0);
  pool.clear();  // joins
  if (failure) std::rethrow_exception(failure);
}

FHETENSOR_END_NAMESPACE
