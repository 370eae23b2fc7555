#include "tests/cluster/headless_browser.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <doctest/doctest.h>

namespace distkv::clustertest {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

int MillisLeft(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

}  // namespace

HeadlessBrowser::HeadlessBrowser(const std::string& profile_dir, const std::string& log_path) {
  const char* env = std::getenv("DISTKV_CHROMIUM");
  const std::string binary = env && *env ? env : "chromium";
  std::vector<std::string> args = {
      binary,
      "--headless",
      "--no-sandbox",  // the tests may run as root, where the sandbox refuses to start
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-extensions",
      "--no-first-run",
      "--no-default-browser-check",
      "--mute-audio",
      "--remote-debugging-pipe",
      "--user-data-dir=" + profile_dir,
      "about:blank",
  };
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int in[2], out[2];  // in: test -> browser; out: browser -> test
  REQUIRE_MESSAGE(pipe2(in, O_CLOEXEC) == 0, "pipe: " << strerror(errno));
  REQUIRE_MESSAGE(pipe2(out, O_CLOEXEC) == 0, "pipe: " << strerror(errno));
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  REQUIRE_MESSAGE(log_fd >= 0, "open " << log_path << ": " << strerror(errno));

  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec. The pipe ends are moved
    // above 3 and 4 first, so that the dup2s below cannot clobber each other.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    signal(SIGPIPE, SIG_DFL);
    int cmd = fcntl(in[0], F_DUPFD, 10);
    int res = fcntl(out[1], F_DUPFD, 10);
    if (cmd < 0 || res < 0) _exit(127);
    dup2(cmd, 3);
    dup2(res, 4);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    execvp(argv[0], argv.data());
    static const char kMsg[] = "exec of the browser failed (is the chromium package installed?)\n";
    (void)!::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
    _exit(127);
  }
  ::close(log_fd);
  ::close(in[0]);
  ::close(out[1]);
  REQUIRE_MESSAGE(pid > 0, "fork: " << strerror(errno));
  setpgid(pid, pid);  // also from here, so the group exists whoever runs first
  pid_ = pid;
  to_browser_ = in[1];
  from_browser_ = out[0];
}

HeadlessBrowser::~HeadlessBrowser() {
  if (to_browser_ >= 0) ::close(to_browser_);  // the browser exits when its pipe closes
  if (from_browser_ >= 0) ::close(from_browser_);
  if (pid_ > 0) {
    // Give it a moment to exit by itself, then end the whole group.
    for (int i = 0; i < 50; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
}

bool HeadlessBrowser::Read(json* message, int timeout_ms) {
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const size_t end = buffer_.find('\0');
    if (end != std::string::npos) {
      *message = json::parse(buffer_.substr(0, end), nullptr, false);
      buffer_.erase(0, end + 1);
      if (message->is_discarded()) continue;
      return true;
    }
    pollfd p{from_browser_, POLLIN, 0};
    int r = ::poll(&p, 1, MillisLeft(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char buf[65536];
    ssize_t n = ::read(from_browser_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

void HeadlessBrowser::OnEvent(const json& m) {
  const std::string method = m.value("method", "");
  const json& params = m.contains("params") ? m["params"] : json::object();
  if (method == "Page.loadEventFired") {
    loaded_ = true;
  } else if (method == "Runtime.consoleAPICalled") {
    const std::string type = params.value("type", "");
    if (type == "error" || type == "assert") {
      std::string text = "console." + type + ":";
      for (const json& a : params.value("args", json::array())) {
        text += " " + (a.contains("value") ? a["value"].dump() : a.value("description", "?"));
      }
      errors_.push_back(text);
    }
  } else if (method == "Runtime.exceptionThrown") {
    const json& d = params.value("exceptionDetails", json::object());
    std::string text = "exception: " + d.value("text", "");
    if (d.contains("exception")) text += " " + d["exception"].value("description", "");
    errors_.push_back(text);
  } else if (method == "Log.entryAdded") {
    const json& e = params.value("entry", json::object());
    if (e.value("level", "") == "error") {
      errors_.push_back("log (" + e.value("source", "") + "): " + e.value("text", "") + " " +
                        e.value("url", ""));
    }
  }
}

json HeadlessBrowser::Call(const std::string& method, json params, bool browser_level) {
  const uint64_t id = next_id_++;
  json command = {{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!browser_level) command["sessionId"] = session_;
  std::string bytes = command.dump();
  bytes.push_back('\0');
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(to_browser_, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    REQUIRE_MESSAGE(n > 0, "writing to the browser: " << strerror(errno));
    off += static_cast<size_t>(n);
  }
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(20);
  for (;;) {
    json m;
    REQUIRE_MESSAGE(Read(&m, MillisLeft(deadline)),
                    "the browser did not answer " << method << " (did it start?)");
    if (m.contains("id") && m["id"] == id) {
      REQUIRE_MESSAGE(!m.contains("error"), method << " failed: " << m["error"].dump());
      return m.value("result", json::object());
    }
    if (m.contains("method")) OnEvent(m);
  }
}

void HeadlessBrowser::Open(const std::string& url) {
  const json target = Call("Target.createTarget", {{"url", "about:blank"}}, true);
  const json attached =
      Call("Target.attachToTarget", {{"targetId", target["targetId"]}, {"flatten", true}}, true);
  session_ = attached["sessionId"];
  Call("Runtime.enable", json::object());
  Call("Log.enable", json::object());
  Call("Page.enable", json::object());
  loaded_ = false;
  const json nav = Call("Page.navigate", {{"url", url}});
  REQUIRE_MESSAGE(!nav.contains("errorText"), "loading " << url << ": " << nav.dump());
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(20);
  while (!loaded_) {
    json m;
    REQUIRE_MESSAGE(Read(&m, MillisLeft(deadline)), "no load event for " << url);
    if (m.contains("method")) OnEvent(m);
  }
}

json HeadlessBrowser::Evaluate(const std::string& expression) {
  const json r =
      Call("Runtime.evaluate",
           {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
  REQUIRE_MESSAGE(!r.contains("exceptionDetails"),
                  "evaluating " << expression << ": " << r["exceptionDetails"].dump());
  return r["result"].value("value", json());
}

bool HeadlessBrowser::WaitFor(const std::string& expression, int timeout_ms) {
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (Evaluate("!!(" + expression + ")") == true) return true;
    if (Clock::now() >= deadline) return false;
    // Keep reading events while waiting, so none is missed or piles up.
    const Clock::time_point pause = Clock::now() + std::chrono::milliseconds(100);
    json m;
    while (Read(&m, MillisLeft(pause))) {
      if (m.contains("method")) OnEvent(m);
    }
  }
}

}  // namespace distkv::clustertest
