#include "bench_command.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <numeric>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "inference_client.hpp"
#include "util/args.hpp"

extern char** environ;

namespace kubeaccel {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kHelp = R"(Usage: kubeaccel bench --socket unix://PATH --model NAME [--batch 1,8,32]
                       [--concurrency N|1,4,8] [--duration S] [--warmup S] [--shm]
                       [--csv FILE] [--plot FILE.png] [--channels own|shared] [--stream]
                       [--timeout S]

Load-tests one model through a slot socket (KServe v2 over gRPC). For each
batch size and each client count, that many client threads send the same
random request back to back: first for the warm-up (not counted), then for
the measured duration. Per combination it prints predictions (requests x
batch), failures, the latency of a request (mean, min, max, median, p99,
stddev, in ms) and the throughput (images/s: predictions per second of the
measured window). A progress line is shown on stderr.

  --socket unix://PATH   the slot's inference socket (default: $KUBEACCEL_INFERENCE_SOCKET)
  --model NAME           the model to load-test
  --batch LIST           batch sizes, e.g. 1,8,32 (default 1); dim 0 of a batched
                         model, at most its max_batch_size
  --concurrency LIST     client threads, e.g. 4 or 1,4,8 (default 1)
  --duration S           measured seconds per combination (default 5)
  --warmup S             warm-up seconds before each combination (default 1; 0: none)
  --shm                  pass tensors through a shared-memory file per client in
                         the slot directory (written and registered once)
  --csv FILE             write one row per combination, with every column above
  --plot FILE.png        draw latency (p50, p99) and throughput against batch size
                         (needs gnuplot: Debian package gnuplot-nox)
  --channels own|shared  each client thread its own connection (default), or one
                         connection shared by all of them
  --stream               each client sends its requests on one ModelStreamInfer
                         stream (a request, then its answer) instead of one
                         ModelInfer call per request: no call set-up per request,
                         the lowest latency a pod can get. A slot takes at most
                         the agent's --max-streams streams (default 16): a
                         client whose stream is refused does not start
  --timeout S            deadline of one request (default 60); with --stream, the
                         stream lives for the warm-up, the duration and twice this

Exit status: 0 when the run completed (failed requests are counted and
reported), 1 when every request failed or the plot could not be drawn,
2 on bad usage (including a batch size the model does not take).
)";

// ---------------------------------------------------------------------------
// Flags

long integer(const std::string& flag, const std::string& text, long lo, long hi) {
  long n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || p != text.data() + text.size() || n < lo || n > hi)
    throw UsageError("--" + flag + ": expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                     ", got '" + text + "'");
  return n;
}

// "1,8,32" -> {1, 8, 32}, sorted, duplicates dropped.
std::vector<int> intList(const Args& args, const std::string& flag, int fallback, int max) {
  auto v = args.get(flag);
  if (!v) return {fallback};
  if (v->empty()) throw UsageError("--" + flag + ": expected a comma-separated list of integers, got ''");
  std::vector<int> out;
  std::string item;
  std::stringstream ss(*v);
  while (std::getline(ss, item, ',')) out.push_back(static_cast<int>(integer(flag, item, 1, max)));
  if (v->back() == ',') integer(flag, "", 1, max);  // "1,8," has an empty last item
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double seconds(const Args& args, const std::string& flag, double fallback, double lo, bool loOpen, double hi) {
  auto v = args.get(flag);
  if (!v) return fallback;
  double d = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), d);
  bool ok = ec == std::errc() && p == v->data() + v->size() && std::isfinite(d) && (loOpen ? d > lo : d >= lo) &&
            d <= hi;
  if (!ok) {
    std::ostringstream range;
    range << (loOpen ? "more than " : "from ") << lo << (loOpen ? " and at most " : " to ") << hi;
    throw UsageError("--" + flag + ": expected seconds " + range.str() + ", got '" + *v + "'");
  }
  return d;
}

struct Options {
  std::string target, socketPath, model;
  std::vector<int> batches, concurrencies;
  double duration = 5, warmup = 1;
  bool shm = false, ownChannels = true, stream = false;
  std::optional<std::string> csv, plot;
  std::chrono::milliseconds timeout{60000};
};

Options parse(int argc, char** argv) {
  Args args(argc, argv, 2,
            {"socket", "model", "batch", "concurrency", "duration", "warmup", "csv", "plot", "channels", "timeout"},
            {"shm", "stream", "help"});
  Options o;
  if (!args.positional().empty()) throw UsageError("bench: unexpected argument '" + args.positional()[0] + "'");
  o.target = args.get("socket", "");
  if (o.target.empty())
    if (const char* env = std::getenv("KUBEACCEL_INFERENCE_SOCKET")) o.target = env;
  if (o.target.empty()) throw UsageError("bench: --socket unix://PATH is required (or $KUBEACCEL_INFERENCE_SOCKET)");
  try {
    o.socketPath = socketPathOf(o.target);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (!args.has("model") || args.get("model")->empty()) throw UsageError("bench: --model NAME is required");
  o.model = *args.get("model");
  o.batches = intList(args, "batch", 1, 4096);
  o.concurrencies = intList(args, "concurrency", 1, 1024);
  o.duration = seconds(args, "duration", 5, 0, true, 86400);
  o.warmup = seconds(args, "warmup", 1, 0, false, 3600);
  o.timeout = std::chrono::milliseconds(static_cast<long>(seconds(args, "timeout", 60, 0, true, 3600) * 1000));
  o.shm = args.has("shm");
  o.stream = args.has("stream");
  std::string channels = args.get("channels", "own");
  if (channels != "own" && channels != "shared")
    throw UsageError("--channels: expected 'own' or 'shared', got '" + channels + "'");
  o.ownChannels = channels == "own";
  if (auto v = args.get("csv")) {
    if (v->empty()) throw UsageError("--csv: expected a file name");
    o.csv = *v;
  }
  if (auto v = args.get("plot")) {
    if (v->empty()) throw UsageError("--plot: expected a file name");
    o.plot = *v;
  }
  return o;
}

// ---------------------------------------------------------------------------
// Statistics

struct Result {
  int batch = 0, concurrency = 0;
  uint64_t requests = 0, failures = 0;  // requests: the ones that succeeded
  double seconds = 0;                   // the measured window
  double mean = 0, min = 0, max = 0, median = 0, p99 = 0, stddev = 0;  // ms
  double imagesPerSecond = 0;
  std::string firstError;
  uint64_t predictions() const { return requests * static_cast<uint64_t>(batch); }
};

// Nearest-rank percentiles, population standard deviation.
void summarize(std::vector<double> ms, Result& r) {
  r.requests = ms.size();
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  auto rank = [&](double p) {
    size_t k = static_cast<size_t>(std::ceil(p * static_cast<double>(ms.size())));
    return ms[std::clamp<size_t>(k, 1, ms.size()) - 1];
  };
  r.min = ms.front();
  r.max = ms.back();
  r.median = rank(0.5);
  r.p99 = rank(0.99);
  r.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  double sq = 0;
  for (double v : ms) sq += (v - r.mean) * (v - r.mean);
  r.stddev = std::sqrt(sq / static_cast<double>(ms.size()));
}

std::string num(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

const std::vector<std::string>& csvHeader() {
  static const std::vector<std::string> h = {
      "model",           "transport",        "batch",          "concurrency",      "requests",
      "predictions",     "failures",         "duration_s",     "latency_mean_ms",  "latency_min_ms",
      "latency_max_ms",  "latency_median_ms", "latency_p99_ms", "latency_stddev_ms", "images_per_s"};
  return h;
}

std::string csvRow(const Options& o, const Result& r) {
  std::vector<std::string> f = {o.model,
                                std::string(o.shm ? "shm" : "raw") + (o.stream ? "-stream" : ""),
                                std::to_string(r.batch),
                                std::to_string(r.concurrency),
                                std::to_string(r.requests),
                                std::to_string(r.predictions()),
                                std::to_string(r.failures),
                                num(r.seconds, 3),
                                num(r.mean, 3),
                                num(r.min, 3),
                                num(r.max, 3),
                                num(r.median, 3),
                                num(r.p99, 3),
                                num(r.stddev, 3),
                                num(r.imagesPerSecond, 2)};
  std::string line;
  for (size_t i = 0; i < f.size(); ++i) line += (i ? "," : "") + f[i];
  return line;
}

void printHeader() {
  std::printf("%5s %11s %9s %11s %8s %9s %9s %9s %9s %9s %9s %10s\n", "batch", "concurrency", "requests",
              "predictions", "failures", "mean ms", "min ms", "max ms", "median ms", "p99 ms", "stddev ms",
              "images/s");
  std::fflush(stdout);
}

void printRow(const Result& r) {
  std::printf("%5d %11d %9llu %11llu %8llu %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %10.2f\n", r.batch, r.concurrency,
              static_cast<unsigned long long>(r.requests), static_cast<unsigned long long>(r.predictions()),
              static_cast<unsigned long long>(r.failures), r.mean, r.min, r.max, r.median, r.p99, r.stddev,
              r.imagesPerSecond);
  std::fflush(stdout);
}

std::string describe(const grpc::Status& s) {
  static const char* names[] = {"OK",
                                "CANCELLED",
                                "UNKNOWN",
                                "INVALID_ARGUMENT",
                                "DEADLINE_EXCEEDED",
                                "NOT_FOUND",
                                "ALREADY_EXISTS",
                                "PERMISSION_DENIED",
                                "RESOURCE_EXHAUSTED",
                                "FAILED_PRECONDITION",
                                "ABORTED",
                                "OUT_OF_RANGE",
                                "UNIMPLEMENTED",
                                "INTERNAL",
                                "UNAVAILABLE",
                                "DATA_LOSS",
                                "UNAUTHENTICATED"};
  int c = static_cast<int>(s.error_code());
  std::string code = c >= 0 && c <= 16 ? names[c] : std::to_string(c);
  return code + ": " + s.error_message();
}

// ---------------------------------------------------------------------------
// One combination

// The progress line: rewritten in place on a terminal, one line per
// combination otherwise (a log should not fill with carriage returns).
class Progress {
 public:
  Progress() : tty_(::isatty(STDERR_FILENO) == 1) {}
  void start(int batch, int concurrency, double warmup, double duration) {
    label_ = "batch " + std::to_string(batch) + ", concurrency " + std::to_string(concurrency);
    if (!tty_) std::fprintf(stderr, "bench: %s: %s%s s ...\n", label_.c_str(),
                            warmup > 0 ? (num(warmup, 1) + " s warm-up, ").c_str() : "", num(duration, 1).c_str());
  }
  void update(bool warming, double elapsed, double total) {
    if (!tty_) return;
    std::fprintf(stderr, "\r\033[K%s: %s%s s / %s s", label_.c_str(), warming ? "warm-up " : "",
                 num(elapsed, 1).c_str(), num(total, total < 10 ? 1 : 0).c_str());
    std::fflush(stderr);
  }
  void clear() {
    if (!tty_) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }

 private:
  bool tty_;
  std::string label_;
};

Result runCombination(const Options& o, const inference::ModelMetadataResponse& meta, int batch, int concurrency,
                      Progress& progress) {
  Result r;
  r.batch = batch;
  r.concurrency = concurrency;
  std::shared_ptr<grpc::Channel> shared = o.ownChannels ? nullptr : benchChannel(o.socketPath, false);
  std::vector<std::unique_ptr<RequestLoop>> loops;
  // A stream carries the warm-up and the measured window, and may still
  // wait on the warm-up's last request and the window's last.
  std::optional<std::chrono::milliseconds> streamFor;
  if (o.stream)
    streamFor = 2 * o.timeout + std::chrono::milliseconds(static_cast<long>((o.warmup + o.duration) * 1000));
  for (int i = 0; i < concurrency; ++i) {
    loops.push_back(std::make_unique<RequestLoop>(o.ownChannels ? benchChannel(o.socketPath, true) : shared,
                                                  o.socketPath, meta, batch, o.shm, o.timeout, streamFor));
    if (grpc::Status s = loops.back()->prepare(); !s.ok()) {
      r.failures = static_cast<uint64_t>(concurrency);
      r.firstError = "client " + std::to_string(i) + " could not start: " + describe(s);
      return r;
    }
  }

  const auto warmup = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  const auto duration = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
  Clock::time_point warmStart{}, measureStart{};
  std::atomic<int> phase{0};  // 0 starting, 1 warm-up, 2 measuring
  auto onWarm = [&]() noexcept {
    warmStart = Clock::now();
    phase = 1;
  };
  auto onMeasure = [&]() noexcept {
    measureStart = Clock::now();
    phase = 2;
  };
  std::barrier warmBarrier(concurrency, onWarm);
  std::barrier measureBarrier(concurrency, onMeasure);

  struct PerThread {
    std::vector<double> ms;
    uint64_t failures = 0;
    grpc::Status firstError;
    Clock::time_point last{};
  };
  std::vector<PerThread> per(static_cast<size_t>(concurrency));
  std::mutex mu;
  std::condition_variable cv;
  int finished = 0;

  progress.start(batch, concurrency, o.warmup, o.duration);
  std::vector<std::thread> threads;
  for (int i = 0; i < concurrency; ++i) {
    threads.emplace_back([&, i] {
      RequestLoop& loop = *loops[static_cast<size_t>(i)];
      PerThread& me = per[static_cast<size_t>(i)];
      me.ms.reserve(4096);
      warmBarrier.arrive_and_wait();
      while (Clock::now() < warmStart + warmup) loop.send();
      measureBarrier.arrive_and_wait();
      const auto end = measureStart + duration;
      for (;;) {
        auto t0 = Clock::now();
        if (t0 >= end && (!me.ms.empty() || me.failures > 0)) break;  // at least one request each
        grpc::Status s = loop.send();
        auto t1 = Clock::now();
        if (s.ok()) {
          me.ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        } else {
          if (me.failures++ == 0) me.firstError = s;
        }
        me.last = t1;
      }
      std::lock_guard lock(mu);
      ++finished;
      cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return finished == concurrency; })) {
      int p = phase.load();
      if (p == 0) continue;
      auto now = Clock::now();
      if (p == 1) progress.update(true, std::chrono::duration<double>(now - warmStart).count(), o.warmup);
      else progress.update(false, std::chrono::duration<double>(now - measureStart).count(), o.duration);
    }
  }
  for (auto& t : threads) t.join();
  progress.clear();

  std::vector<double> all;
  Clock::time_point last = measureStart;
  for (auto& t : per) {
    all.insert(all.end(), t.ms.begin(), t.ms.end());
    r.failures += t.failures;
    if (r.firstError.empty() && t.failures > 0) r.firstError = describe(t.firstError);
    last = std::max(last, t.last);
  }
  summarize(std::move(all), r);
  r.seconds = std::chrono::duration<double>(last - measureStart).count();
  if (r.seconds > 0) r.imagesPerSecond = static_cast<double>(r.predictions()) / r.seconds;
  return r;
}

// ---------------------------------------------------------------------------
// Checks before the run

bool batched(const inference::ModelMetadataResponse& meta) {
  if (meta.inputs_size() == 0) return false;
  for (const auto& in : meta.inputs())
    if (in.shape_size() == 0 || in.shape(0) != -1) return false;
  return true;
}

std::string shapeText(const inference::ModelMetadataResponse::TensorMetadata& t) {
  std::string s = "[";
  for (int i = 0; i < t.shape_size(); ++i) s += (i ? "," : "") + std::to_string(t.shape(i));
  return s + "]";
}

// A batch size the model cannot take is bad usage, found before the run.
// ModelMetadata marks a batched model (dim 0 is -1) but, in KServe v2, does not
// carry its max_batch_size: the largest batch asked for is sent once, and the
// server's INVALID_ARGUMENT answer (it checks dim 0 against the maximum) is the
// verdict. That request also opens the model's first runner.
void checkBatches(const Options& o, const inference::ModelMetadataResponse& meta) {
  int largest = o.batches.back();
  if (!batched(meta)) {
    if (largest > 1) {
      const auto& in = meta.inputs(0);
      throw UsageError("--batch " + std::to_string(largest) + ": model '" + o.model +
                       "' has no batch dimension (input '" + in.name() + "' is " + shapeText(in) +
                       "); only --batch 1 applies");
    }
    return;
  }
  if (largest == 1) return;
  RequestLoop probe(benchChannel(o.socketPath, false), o.socketPath, meta, largest, false, o.timeout);
  grpc::Status s = probe.prepare();
  if (s.ok()) s = probe.send();
  if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
    throw UsageError("--batch " + std::to_string(largest) + ": model '" + o.model +
                     "' does not take it: " + s.error_message());
}

// ---------------------------------------------------------------------------
// CSV and plot

std::optional<std::string> findProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) dir = ".";
    std::string p = dir + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return std::nullopt;
}

std::string gnuplotString(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// A gnuplot script with the results inline (one data block per client count):
// latency p50/p99 above, throughput below, both against batch size.
std::string plotScript(const Options& o, const std::vector<Result>& results, const std::string& png) {
  std::ostringstream g;
  g << "set terminal pngcairo size 1000,900 noenhanced font ',11'\n";
  g << "set output " << gnuplotString(png) << "\n";
  for (int c : o.concurrencies) {
    g << "$c" << c << " << EOD\n";
    for (const auto& r : results)
      if (r.concurrency == c && r.requests > 0)
        g << r.batch << " " << num(r.median, 4) << " " << num(r.p99, 4) << " " << num(r.imagesPerSecond, 3) << "\n";
    g << "EOD\n";
  }
  int lo = o.batches.front(), hi = o.batches.back();
  g << "set xrange [" << lo / 1.5 << ":" << hi * 1.5 << "]\n";
  g << "set logscale x 2\n";
  g << "set xtics (";
  for (size_t i = 0; i < o.batches.size(); ++i) g << (i ? ", " : "") << o.batches[i];
  g << ")\n";
  g << "set grid\nset key outside right top vertical Left reverse\n";
  g << "set lmargin 11\nset rmargin 32\n";  // the two panels' axes line up
  g << "set multiplot layout 2,1 title " << gnuplotString("kubeaccel bench: " + o.model + " (" +
                                                              (o.shm ? "shared memory" : "raw contents") +
                                                              (o.stream ? ", on a stream per client" : "") + ", " +
                                                              num(o.duration, 1) + " s per point)")
    << "\n";
  g << "set title 'latency of a request'\nset ylabel 'ms'\nset yrange [0:*]\nset xlabel 'batch size'\n";
  g << "plot ";
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  for (size_t i = 0; i < o.concurrencies.size(); ++i) {
    int c = o.concurrencies[i];
    std::string color = colors[i % 8];
    g << (i ? ", \\\n     " : "") << "$c" << c << " using 1:2 with linespoints lw 2 pt 7 lc rgb '" << color
      << "' title 'p50, concurrency " << c << "', \\\n     $c" << c << " using 1:3 with linespoints lw 2 dt 2 pt 6 lc rgb '"
      << color << "' title 'p99, concurrency " << c << "'";
  }
  g << "\n";
  g << "set title 'throughput'\nset ylabel 'images/s'\nset yrange [0:*]\n";
  g << "plot ";
  for (size_t i = 0; i < o.concurrencies.size(); ++i) {
    int c = o.concurrencies[i];
    g << (i ? ", \\\n     " : "") << "$c" << c << " using 1:4 with linespoints lw 2 pt 7 lc rgb '" << colors[i % 8]
      << "' title 'concurrency " << c << "'";
  }
  g << "\nunset multiplot\n";
  return g.str();
}

// Runs gnuplot on the script; returns an error text, empty on success.
std::string runGnuplot(const std::string& gnuplot, const std::string& script) {
  char scriptPath[] = "/tmp/kubeaccel-bench-XXXXXX.gp";
  int fd = ::mkstemps(scriptPath, 3);
  if (fd < 0) return std::string("cannot write a gnuplot script in /tmp: ") + std::strerror(errno);
  {
    std::ofstream out(scriptPath);
    out << script;
  }
  ::close(fd);
  std::string errPath = std::string(scriptPath) + ".err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> argv = {const_cast<char*>(gnuplot.c_str()), scriptPath, nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, gnuplot.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  std::string error;
  if (rc != 0) {
    error = "cannot run " + gnuplot + ": " + std::strerror(rc);
  } else {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::ifstream in(errPath);
      std::string line, last;
      while (std::getline(in, line))
        if (!line.empty() && line.find_first_not_of(" ^") != std::string::npos) last = line;
      error = "gnuplot failed" + (last.empty() ? std::string() : ": " + last);
    }
  }
  ::unlink(scriptPath);
  ::unlink(errPath.c_str());
  return error;
}

}  // namespace

// ---------------------------------------------------------------------------
// The request loop

std::shared_ptr<grpc::Channel> benchChannel(const std::string& socketPath, bool ownConnection) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  args.SetMaxSendMessageSize(256 << 20);
  if (ownConnection) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel("unix://" + socketPath, grpc::InsecureChannelCredentials(), args);
}

RequestLoop::RequestLoop(std::shared_ptr<grpc::Channel> channel, const std::string& socketPath,
                         const inference::ModelMetadataResponse& meta, int batch, bool shm,
                         std::chrono::milliseconds deadline, std::optional<std::chrono::milliseconds> streamFor)
    : channel_(std::move(channel)),
      stub_(inference::GRPCInferenceService::NewStub(channel_)),
      socketPath_(socketPath),
      meta_(meta),
      batch_(batch),
      shm_(shm),
      streamFor_(streamFor),
      deadline_(deadline) {}

RequestLoop::~RequestLoop() {
  if (streamCall_) {
    streamCall_->WritesDone();
    streamCall_->Finish();
  }
  if (registered_) {
    inference::SystemSharedMemoryUnregisterRequest req;
    req.set_name(region_);
    inference::SystemSharedMemoryUnregisterResponse resp;
    stub_->SystemSharedMemoryUnregister(context().get(), req, &resp);
  }
  if (map_) ::munmap(map_, mapSize_);
  if (fd_ >= 0) ::close(fd_);
  if (!file_.empty()) ::unlink(file_.c_str());
}

std::unique_ptr<grpc::ClientContext> RequestLoop::context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + deadline_);
  return ctx;
}

grpc::Status RequestLoop::prepare() {
  grpc::Status s = prepareRequest();
  if (!s.ok() || !streamFor_) return s;
  return openStream();
}

grpc::Status RequestLoop::openStream() {
  // The agent counts a stream until it has finished it, a moment after the
  // client's end: a refusal right after the last combination's streams
  // closed is tried again for a while.
  const auto giveUp = Clock::now() + std::chrono::seconds(2);
  for (;;) {
    streamContext_ = std::make_unique<grpc::ClientContext>();
    streamContext_->set_deadline(std::chrono::system_clock::now() + *streamFor_);
    streamCall_ = stub_->ModelStreamInfer(streamContext_.get());
    grpc::Status s = streamRoundTrip();
    if (streamCall_ || s.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED || Clock::now() >= giveUp)
      return s;  // an error answer (UNKNOWN) is the caller's to count; the stream stays open
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

grpc::Status RequestLoop::prepareRequest() {
  if (!channel_->WaitForConnected(std::chrono::system_clock::now() + deadline_))
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "cannot connect to " + socketPath_);
  std::vector<ClientTensor> inputs;
  try {
    inputs = InferenceClient::randomInputs(meta_, batch_);
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
  }
  request_.Clear();
  request_.set_model_name(meta_.name());
  for (const auto& t : inputs) {
    auto* in = request_.add_inputs();
    in->set_name(t.name);
    in->set_datatype(t.datatype);
    for (int64_t d : t.shape) in->add_shape(d);
  }
  if (!shm_) {
    for (const auto& t : inputs) request_.add_raw_input_contents(t.bytes);
    return grpc::Status::OK;
  }

  // Inputs, then outputs, in one file of the slot directory.
  size_t total = 0;
  for (const auto& t : inputs) total += t.bytes.size();
  for (const auto& o : meta_.outputs()) {
    size_t n = o.datatype() == "FP64" || o.datatype() == "INT64" || o.datatype() == "UINT64" ? 8 : 4;
    for (int d = 0; d < o.shape_size(); ++d)
      n *= static_cast<size_t>(o.shape(d) >= 0 ? o.shape(d) : (d == 0 ? batch_ : 1));
    outputRanges_.push_back({total, n});
    total += n;
  }
  static std::atomic<unsigned> counter{0};
  region_ = "kubeaccel-bench-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  std::string key = region_ + ".shm";
  std::string file = (fs::path(socketPath_).parent_path() / "shm" / key).string();
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  // The agent runs as uid 0 without CAP_DAC_OVERRIDE, so it opens the file
  // read-write only through its "other" bits: 0666, past the umask. Only
  // this pod has shm/ mounted; node users cannot reach it.
  if (fd_ >= 0) ::fchmod(fd_, 0666);
  if (fd_ < 0)
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cannot create " + file + ": " + std::strerror(errno));
  file_ = file;
  if (::ftruncate(fd_, static_cast<off_t>(total)) != 0)
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cannot size " + file + ": " + std::strerror(errno));
  void* map = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (map == MAP_FAILED)
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cannot map " + file + ": " + std::strerror(errno));
  map_ = map;
  mapSize_ = total;
  auto* base = static_cast<char*>(map_);

  inference::SystemSharedMemoryRegisterRequest reg;
  reg.set_name(region_);
  reg.set_key(key);
  reg.set_byte_size(total);
  inference::SystemSharedMemoryRegisterResponse regResp;
  if (grpc::Status s = stub_->SystemSharedMemoryRegister(context().get(), reg, &regResp); !s.ok()) return s;
  registered_ = true;

  auto setShm = [&](google::protobuf::Map<std::string, inference::InferParameter>* p, size_t offset, size_t size) {
    (*p)["shared_memory_region"].set_string_param(region_);
    (*p)["shared_memory_offset"].set_int64_param(static_cast<int64_t>(offset));
    (*p)["shared_memory_byte_size"].set_int64_param(static_cast<int64_t>(size));
  };
  size_t offset = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::memcpy(base + offset, inputs[i].bytes.data(), inputs[i].bytes.size());
    setShm(request_.mutable_inputs(static_cast<int>(i))->mutable_parameters(), offset, inputs[i].bytes.size());
    offset += inputs[i].bytes.size();
  }
  for (int i = 0; i < meta_.outputs_size(); ++i) {
    auto* o = request_.add_outputs();
    o->set_name(meta_.outputs(i).name());
    setShm(o->mutable_parameters(), outputRanges_[static_cast<size_t>(i)].first,
           outputRanges_[static_cast<size_t>(i)].second);
  }
  return grpc::Status::OK;
}

grpc::Status RequestLoop::send() {
  if (!streamFor_) {
    auto ctx = context();
    return stub_->ModelInfer(ctx.get(), request_, &response_);
  }
  if (!streamCall_) return openStream();  // the last one ended: open another, as a client would
  return streamRoundTrip();
}

grpc::Status RequestLoop::streamRoundTrip() {
  if (!streamCall_->Write(request_) || !streamCall_->Read(&streamResponse_)) {
    grpc::Status s = streamCall_->Finish();
    streamCall_.reset();
    if (s.ok())  // the agent closed it: it is stopping, or the slot changed hands
      s = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server ended the stream before answering");
    return s;
  }
  // A failed request is an answer on the stream, not the stream's end. It
  // carries a message but no status code.
  if (!streamResponse_.error_message().empty())
    return grpc::Status(grpc::StatusCode::UNKNOWN, "the answer on the stream is an error: " +
                                                       streamResponse_.error_message());
  response_.Swap(streamResponse_.mutable_infer_response());
  return grpc::Status::OK;
}

std::string_view RequestLoop::output(size_t i) const {
  if (shm_) {
    if (i >= outputRanges_.size() || !map_) return {};
    size_t n = outputRanges_[i].second;
    if (static_cast<int>(i) < response_.outputs_size()) {
      const auto& p = response_.outputs(static_cast<int>(i)).parameters();
      if (auto it = p.find("shared_memory_byte_size"); it != p.end())
        n = std::min(n, static_cast<size_t>(it->second.int64_param()));
    }
    return {static_cast<const char*>(map_) + outputRanges_[i].first, n};
  }
  if (static_cast<int>(i) >= response_.raw_output_contents_size()) return {};
  return response_.raw_output_contents(static_cast<int>(i));
}

// ---------------------------------------------------------------------------
// The command

int benchCommand(int argc, char** argv) {
  for (int i = 2; i < argc; ++i)
    if (std::string(argv[i]) == "--help") {
      std::cout << kHelp;
      return kExitOk;
    }
  Options o = parse(argc, argv);

  std::optional<std::string> gnuplot;
  if (o.plot) {
    gnuplot = findProgram("gnuplot");
    if (!gnuplot)
      std::cerr << "kubeaccel: bench: warning: gnuplot is not installed (Debian: apt-get install gnuplot-nox), so "
                   "--plot cannot be drawn; the run goes on"
                << (o.csv ? " and writes the CSV" : "") << "\n";
  }
  std::ofstream csv;
  if (o.csv) {
    csv.open(*o.csv, std::ios::trunc);
    if (!csv) {
      std::cerr << "kubeaccel: bench: --csv: cannot write " << *o.csv << ": " << std::strerror(errno) << "\n";
      return kExitFailure;
    }
  }

  InferenceClient client(o.target, std::min(o.timeout, std::chrono::milliseconds(10000)));
  inference::ModelMetadataResponse meta;
  if (grpc::Status s = client.metadata(o.model, &meta); !s.ok()) {
    std::cerr << "kubeaccel: bench: " << o.model << ": " << s.error_message() << "\n";
    return kExitFailure;
  }
  checkBatches(o, meta);

  std::cout << "kubeaccel bench: model " << o.model << " at " << o.target << "\n"
            << "  " << (o.shm ? "tensors through shared memory (one region per client)" : "tensors as raw contents")
            << ", " << (o.ownChannels ? "a connection per client thread" : "one connection shared by all clients")
            << (o.stream ? ", one ModelStreamInfer stream per client" : "")
            << "; " << num(o.warmup, 1) << " s warm-up, then " << num(o.duration, 1) << " s per combination\n\n";
  printHeader();
  if (csv) {
    const auto& h = csvHeader();
    for (size_t i = 0; i < h.size(); ++i) csv << (i ? "," : "") << h[i];
    csv << "\n" << std::flush;
  }

  Progress progress;
  std::vector<Result> results;
  uint64_t ok = 0, failed = 0;
  for (int batch : o.batches) {
    for (int c : o.concurrencies) {
      Result r = runCombination(o, meta, batch, c, progress);
      printRow(r);
      if (r.failures > 0)
        std::cerr << "kubeaccel: bench: batch " << batch << ", concurrency " << c << ": " << r.failures
                  << " request(s) failed; the first: " << r.firstError << "\n";
      if (csv) csv << csvRow(o, r) << "\n" << std::flush;
      ok += r.requests;
      failed += r.failures;
      results.push_back(std::move(r));
    }
  }
  int rc = kExitOk;
  if (csv) {
    csv.close();
    if (!csv) {
      std::cerr << "kubeaccel: bench: --csv: writing " << *o.csv << " failed\n";
      rc = kExitFailure;
    } else {
      std::cout << "\nCSV: " << *o.csv << "\n";
    }
  }
  if (o.plot) {
    if (!gnuplot) {
      std::cerr << "kubeaccel: bench: --plot: gnuplot is not installed (Debian: apt-get install gnuplot-nox); "
                << (o.csv ? "the CSV is written, " : "") << "no plot drawn\n";
      rc = kExitFailure;
    } else if (std::string err = runGnuplot(*gnuplot, plotScript(o, results, *o.plot)); !err.empty()) {
      std::cerr << "kubeaccel: bench: --plot: " << err << "\n";
      rc = kExitFailure;
    } else {
      std::cout << (o.csv ? "" : "\n") << "plot: " << *o.plot << "\n";
    }
  }
  if (ok == 0) {
    std::cerr << "kubeaccel: bench: every request failed (" << failed << ")\n";
    rc = kExitFailure;
  }
  return rc;
}

}  // namespace kubeaccel
