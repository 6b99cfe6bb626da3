#pragma once
// Progress reporting for long encrypted runs: a whole network can take minutes of
// bootstraps, so the runtime counts them and hands snapshots to a user callback.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <utility>

#if defined(_WIN32)
#include <io.h>
#else
#include <unistd.h>
#endif

#include <fhetensor/core/version.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// A snapshot of a long run, given to progress callbacks.
struct Progress {
  std::string stage;              // what is running now, e.g. "layer 3/7: relu [128]"
  std::size_t done = 0;           // bootstraps finished so far over the whole run
  std::size_t total = 0;          // bootstraps in the whole run
  double elapsed_seconds = 0;
  double remaining_seconds = -1;  // estimate from the rate so far; -1 until known
  bool finished = false;
};

using ProgressCallback = std::function<void(const Progress&)>;

/// One level of an evaluation, when it ends: a partial run already tells each layer's cost.
struct LevelReport {
  std::size_t level = 0;  // 1-based: the lookups of level k read values computed before it
  std::size_t levels = 0;
  std::string stage;      // the lookups' nodes and shapes
  std::size_t bootstraps = 0;
  double seconds = 0;     // the lookups and the linear layers that follow them
};

using LevelCallback = std::function<void(const LevelReport&)>;

/// Thread-safe counter that the runtime bumps after each bootstrap. Calls the callback
/// at most every `min_interval` (and always on stage changes and on finish), never
/// concurrently, from whichever thread made progress. Successive reports never go back
/// in `done`, and nothing is reported after the finished one.
/// The callback may call snapshot(), but not begin_stage/advance/finish (it would
/// deadlock on the report mutex).
class ProgressTracker {
 public:
  ProgressTracker(std::size_t total, ProgressCallback callback,
                  std::chrono::milliseconds min_interval = std::chrono::milliseconds(200))
      : total_(total),
        callback_(std::move(callback)),
        interval_(std::chrono::duration_cast<Clock::duration>(min_interval)),
        start_(Clock::now()),
        next_report_(interval_.count()) {}

  ProgressTracker(const ProgressTracker&) = delete;
  ProgressTracker& operator=(const ProgressTracker&) = delete;

  /// A resumed run: `done` bootstraps were finished before this tracker started (they
  /// count in `done`, not in the rate that estimates the time left). Call before advance().
  void resume_from(std::size_t done) {
    done_.store(done, std::memory_order_relaxed);
    resumed_from_ = done;
  }

  /// Names the work that follows; reports immediately.
  void begin_stage(std::string stage) {
    std::lock_guard report_lock(report_mutex_);
    if (finished_.load(std::memory_order_acquire)) return;
    {
      std::lock_guard state_lock(state_mutex_);
      stage_ = std::move(stage);
    }
    report_locked();
  }

  /// Counts finished bootstraps. The fast path is an atomic add, a clock read and a
  /// compare: no lock, no allocation, so workers never queue behind the callback.
  void advance(std::size_t count = 1) {
    done_.fetch_add(count, std::memory_order_relaxed);
    if (!callback_) return;
    const Clock::rep now = since_start();
    Clock::rep due = next_report_.load(std::memory_order_relaxed);
    if (now < due) return;
    // One thread claims this interval's report; the others carry on working.
    if (!next_report_.compare_exchange_strong(due, now + interval_.count(), std::memory_order_relaxed)) return;
    std::lock_guard report_lock(report_mutex_);
    if (finished_.load(std::memory_order_acquire)) return;  // finish() already had the last word
    report_locked();
  }

  /// Marks the run complete (done = total) and reports with finished = true, once.
  void finish() {
    std::lock_guard report_lock(report_mutex_);
    if (finished_.exchange(true, std::memory_order_acq_rel)) return;
    std::size_t done = done_.load(std::memory_order_relaxed);
    while (done < total_ && !done_.compare_exchange_weak(done, total_, std::memory_order_relaxed)) {
    }
    report_locked();
  }

  Progress snapshot() const {
    Progress p;
    {
      std::lock_guard state_lock(state_mutex_);
      p.stage = stage_;
    }
    p.done = done_.load(std::memory_order_relaxed);
    p.total = total_;
    p.finished = finished_.load(std::memory_order_acquire);
    p.elapsed_seconds = std::chrono::duration<double>(Clock::duration(since_start())).count();
    if (p.finished || (p.done > 0 && p.done >= p.total)) {
      p.remaining_seconds = 0;
    } else if (p.done > resumed_from_) {
      p.remaining_seconds = p.elapsed_seconds * static_cast<double>(p.total - p.done) / static_cast<double>(p.done - resumed_from_);
    }
    return p;
  }

 private:
  using Clock = std::chrono::steady_clock;

  Clock::rep since_start() const { return (Clock::now() - start_).count(); }

  // Caller holds report_mutex_, which is what keeps callbacks from overlapping.
  void report_locked() {
    // The throttle restarts from every report, forced ones included.
    next_report_.store(since_start() + interval_.count(), std::memory_order_relaxed);
    if (callback_) callback_(snapshot());
  }

  const std::size_t total_;
  const ProgressCallback callback_;
  const Clock::duration interval_;
  const Clock::time_point start_;
  std::atomic<std::size_t> done_{0};
  std::size_t resumed_from_ = 0;
  std::atomic<Clock::rep> next_report_;  // ticks since start_ before which advance() stays quiet
  std::atomic<bool> finished_{false};
  std::mutex report_mutex_;          // serialises callbacks
  mutable std::mutex state_mutex_;   // guards stage_ only, so snapshot() works inside a callback
  std::string stage_;
};

/// "1h02m", "4m51s", "12.3s" style durations, used by the bar. Negative or
/// non-finite input (an unknown estimate) gives "?".
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e12) return "?";
  char buf[32];
  // Round before choosing the unit, so 59.96 s reads "1m00s" rather than "60.0s".
  if (std::round(seconds * 10) < 600) {
    std::snprintf(buf, sizeof buf, "%.1fs", std::round(seconds * 10) / 10);
  } else if (const long long secs = std::llround(seconds); secs < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", secs / 60, secs % 60);
  } else {
    const long long mins = std::llround(seconds / 60);
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", mins / 60, mins % 60);
  }
  return buf;
}

namespace detail {

// Whether `out` is one of the standard streams attached to a terminal.
inline bool is_terminal_stream(const std::ostream& out) {
  int fd = -1;
  if (&out == &std::cout) fd = 1;
  else if (&out == &std::cerr || &out == &std::clog) fd = 2;
  if (fd < 0) return false;
#if defined(_WIN32)
  return _isatty(fd) != 0;
#else
  return isatty(fd) != 0;
#endif
}

inline std::string progress_line(const Progress& p, std::size_t max_stage_bytes) {
  constexpr std::size_t width = 20;
  const double fraction = p.total > 0 ? std::min(1.0, static_cast<double>(p.done) / static_cast<double>(p.total))
                                      : (p.finished ? 1.0 : 0.0);
  const auto filled = static_cast<std::size_t>(fraction * width);
  std::string line = "[";
  line.append(filled, '#');
  line.append(width - filled, '.');
  char counts[96];
  std::snprintf(counts, sizeof counts, "]  %zu/%zu PBS  %3d%%", p.done, p.total, static_cast<int>(fraction * 100));
  line += counts;
  if (!p.stage.empty()) {
    std::string stage = p.stage;
    if (stage.size() > max_stage_bytes) {
      // Cut on a UTF-8 character boundary: a wrapped line would break the '\r' redraw.
      std::size_t cut = max_stage_bytes;
      while (cut > 0 && (static_cast<unsigned char>(stage[cut]) & 0xC0) == 0x80) --cut;
      stage.resize(cut);
      stage += "...";
    }
    line += "  ";
    line += stage;
  }
  line += "  elapsed ";
  line += format_duration(p.elapsed_seconds);
  if (!p.finished && p.remaining_seconds >= 0) {
    line += "  left ";
    line += format_duration(p.remaining_seconds);
  }
  return line;
}

}  // namespace detail

/// A callback that draws a one-line progress bar on `out`:
/// "[#########...........]  412/2440 PBS   16%  layer 3/7: relu [128]  elapsed 1m02s  left 4m51s"
/// On a terminal (or with force_terminal_mode, for tests) it redraws in place with '\r';
/// otherwise it prints a plain line at most every 10 s and at the end, so logs stay
/// readable. It ends with a newline when finished. `out` must outlive the callback.
inline ProgressCallback terminal_progress_bar(std::ostream& out = std::cerr, bool force_terminal_mode = false) {
  struct State {
    std::ostream* out;
    bool terminal;
    std::mutex mutex;  // the tracker serialises calls, but one bar may serve several trackers
    std::size_t last_width = 0;
    double last_plain_print = -1;
  };
  auto state = std::make_shared<State>();
  state->out = &out;
  state->terminal = force_terminal_mode || detail::is_terminal_stream(out);
  return [state](const Progress& p) {
    std::lock_guard lock(state->mutex);
    std::ostream& os = *state->out;
    if (state->terminal) {
      const std::string line = detail::progress_line(p, 60);
      os << '\r' << line;
      // Blank out the tail of a longer previous line.
      if (line.size() < state->last_width) os << std::string(state->last_width - line.size(), ' ');
      state->last_width = line.size();
      if (p.finished) {
        os << '\n';
        state->last_width = 0;
      }
      os.flush();
      return;
    }
    constexpr double plain_interval_seconds = 10;
    if (!p.finished && state->last_plain_print >= 0 &&
        p.elapsed_seconds - state->last_plain_print < plain_interval_seconds) {
      return;
    }
    state->last_plain_print = p.elapsed_seconds;
    os << detail::progress_line(p, std::string::npos) << '\n';
    os.flush();
  };
}

FHETENSOR_END_NAMESPACE
