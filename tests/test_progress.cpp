// Progress reporting: the duration format, the thread-safe tracker and the text bar.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fhetensor/runtime/progress.hpp>

using namespace fhetensor;
using namespace std::chrono_literals;

TEST_CASE("format_duration picks seconds then minutes then hours", "[progress]") {
  CHECK(format_duration(0) == "0.0s");
  CHECK(format_duration(12.34) == "12.3s");
  CHECK(format_duration(59.94) == "59.9s");
  CHECK(format_duration(59.96) == "1m00s");  // rounds before picking the unit
  CHECK(format_duration(62) == "1m02s");
  CHECK(format_duration(291) == "4m51s");
  CHECK(format_duration(3599.4) == "59m59s");
  CHECK(format_duration(3599.6) == "1h00m");
  CHECK(format_duration(3720) == "1h02m");
  CHECK(format_duration(100 * 3600.0) == "100h00m");
  CHECK(format_duration(-1) == "?");
  CHECK(format_duration(std::nan("")) == "?");
}

TEST_CASE("the tracker counts advances from two threads and never overlaps callbacks", "[progress]") {
  constexpr std::size_t per_thread = 10000;
  std::atomic<bool> inside{false};
  std::atomic<bool> overlapped{false};
  std::atomic<std::size_t> calls{0};
  std::vector<Progress> reports;  // written only inside the callback, which is serialised
  ProgressTracker tracker(
      2 * per_thread,
      [&](const Progress& p) {
        if (inside.exchange(true)) overlapped = true;
        ++calls;
        reports.push_back(p);
        std::this_thread::sleep_for(50us);  // widen the window an overlap would need
        inside = false;
      },
      0ms);  // no throttle: every advance may report, the harshest case for the mutex
  tracker.begin_stage("layer 1/1: relu [20000]");
  {
    auto work = [&] {
      for (std::size_t i = 0; i < per_thread; ++i) tracker.advance();
    };
    std::jthread a(work), b(work);
  }
  CHECK(tracker.snapshot().done == 2 * per_thread);
  CHECK_FALSE(tracker.snapshot().finished);
  tracker.finish();

  const Progress last = tracker.snapshot();
  CHECK(last.done == 2 * per_thread);
  CHECK(last.total == 2 * per_thread);
  CHECK(last.finished);
  CHECK(last.stage == "layer 1/1: relu [20000]");
  CHECK_FALSE(overlapped);
  CHECK(calls > 2);  // begin_stage, finish and at least some advances
  REQUIRE(reports.size() == calls);
  CHECK(reports.front().done == 0);
  CHECK(reports.back().finished);
  CHECK(reports.back().done == 2 * per_thread);
  CHECK(reports.back().remaining_seconds == 0);
  for (std::size_t i = 1; i < reports.size(); ++i) {
    CHECK(reports[i].done >= reports[i - 1].done);
    CHECK(reports[i].done <= 2 * per_thread);
  }
  // Only the last report is the finished one, and finishing twice does not report again.
  for (std::size_t i = 0; i + 1 < reports.size(); ++i) CHECK_FALSE(reports[i].finished);
  tracker.finish();
  tracker.advance();
  CHECK(calls == reports.size());
}

TEST_CASE("the remaining-time estimate is unknown until progress is made", "[progress]") {
  ProgressTracker tracker(100, nullptr);
  const Progress before = tracker.snapshot();
  CHECK(before.remaining_seconds == -1);
  CHECK(before.done == 0);
  CHECK(before.total == 100);

  std::this_thread::sleep_for(5ms);
  tracker.advance(10);
  const Progress after = tracker.snapshot();
  CHECK(after.done == 10);
  CHECK(after.elapsed_seconds >= 0.004);
  CHECK(after.remaining_seconds > 0);
  // elapsed * (total - done) / done, up to the clock moving between the two reads.
  CHECK(after.remaining_seconds == Approx(after.elapsed_seconds * 9).epsilon(0.01));

  tracker.advance(90);
  CHECK(tracker.snapshot().remaining_seconds == 0);
}

TEST_CASE("the throttle holds back reports between stage changes and the finish", "[progress]") {
  std::vector<Progress> reports;
  ProgressTracker tracker(1000, [&](const Progress& p) { reports.push_back(p); }, std::chrono::hours(1));
  tracker.begin_stage("only stage");
  for (int i = 0; i < 1000; ++i) tracker.advance();
  tracker.finish();
  REQUIRE(reports.size() == 2);
  CHECK(reports[0].stage == "only stage");
  CHECK(reports[0].done == 0);
  CHECK_FALSE(reports[0].finished);
  CHECK(reports[1].done == 1000);
  CHECK(reports[1].finished);
}

TEST_CASE("the throttle lets a report through once the interval has elapsed", "[progress]") {
  std::atomic<int> calls{0};
  ProgressTracker tracker(10, [&](const Progress&) { ++calls; }, 100ms);
  tracker.advance();
  CHECK(calls == 0);  // the interval counts from construction
  std::this_thread::sleep_for(150ms);
  tracker.advance();
  CHECK(calls == 1);
  tracker.advance();
  CHECK(calls == 1);
}

TEST_CASE("finish completes the count even when advances fell short", "[progress]") {
  Progress last;
  ProgressTracker tracker(50, [&](const Progress& p) { last = p; });
  tracker.advance(20);
  tracker.finish();
  CHECK(last.finished);
  CHECK(last.done == 50);
  CHECK(last.remaining_seconds == 0);
}

TEST_CASE("the terminal bar redraws in place with carriage returns", "[progress]") {
  std::ostringstream out;
  ProgressTracker tracker(2440, terminal_progress_bar(out, true), std::chrono::hours(1));
  tracker.begin_stage("layer 3/7: relu [128]");
  tracker.advance(412);
  tracker.begin_stage("layer 4/7: dense [64]");  // forces a report with the new count
  tracker.finish();
  const std::string s = out.str();
  CHECK(s.find("layer 3/7: relu [128]") != std::string::npos);
  CHECK(s.find("layer 4/7: dense [64]") != std::string::npos);
  CHECK(s.find("0/2440 PBS") != std::string::npos);
  CHECK(s.find("412/2440 PBS") != std::string::npos);
  CHECK(s.find("2440/2440 PBS") != std::string::npos);
  CHECK(s.find(" 16%") != std::string::npos);
  CHECK(s.find("100%") != std::string::npos);
  CHECK(s.find("[####################]") != std::string::npos);
  CHECK(s.find("left ") != std::string::npos);  // known once 412 are done
  CHECK(std::count(s.begin(), s.end(), '\r') == 3);
  CHECK(std::count(s.begin(), s.end(), '\n') == 1);
  REQUIRE_FALSE(s.empty());
  CHECK(s.back() == '\n');
}

TEST_CASE("the bar prints plain lines when the stream is not a terminal", "[progress]") {
  std::ostringstream out;
  ProgressTracker tracker(2440, terminal_progress_bar(out, false), std::chrono::hours(1));
  tracker.begin_stage("layer 3/7: relu [128]");
  tracker.advance(412);
  tracker.begin_stage("layer 4/7: dense [64]");  // within 10 s of the first line: not printed
  tracker.finish();
  const std::string s = out.str();
  CHECK(s.find('\r') == std::string::npos);
  CHECK(std::count(s.begin(), s.end(), '\n') == 2);  // the first report and the end
  CHECK(s.find("0/2440 PBS") != std::string::npos);
  CHECK(s.find("layer 3/7: relu [128]") != std::string::npos);
  CHECK(s.find("412/2440") == std::string::npos);
  CHECK(s.find("2440/2440 PBS") != std::string::npos);
  CHECK(s.find("layer 4/7: dense [64]") != std::string::npos);  // the stage at the end
  REQUIRE_FALSE(s.empty());
  CHECK(s.back() == '\n');
}
