// HeadlessBrowser: a real headless Chromium driven by the tests through the
// DevTools protocol over a pipe (--remote-debugging-pipe: commands go in on
// the browser's fd 3, answers and events come out of its fd 4, each message
// one JSON text ended by a NUL byte). No websocket, no port, no driver
// program: the test talks to the browser directly.
//
// It opens one page, evaluates JavaScript in it (to read the rendered DOM),
// and collects everything the page reports as an error: console.error and
// console.assert calls, uncaught exceptions, and the browser's own error log
// entries (a failed load, a blocked script, a CSP violation).
//
// The browser runs in a process group of its own, which the destructor
// kills, so no renderer outlives a test. The binary is $DISTKV_CHROMIUM, or
// `chromium` (Debian's package, installed by the Makefile for the tests).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace distkv::clustertest {

class HeadlessBrowser {
 public:
  // Starts the browser with its profile in profile_dir; its output goes to log_path.
  HeadlessBrowser(const std::string& profile_dir, const std::string& log_path);
  ~HeadlessBrowser();
  HeadlessBrowser(const HeadlessBrowser&) = delete;
  HeadlessBrowser& operator=(const HeadlessBrowser&) = delete;

  // Opens url in a new page and waits for its load event (fails the test after 20 s).
  void Open(const std::string& url);
  // The value of a JavaScript expression in the page (awaited if a promise),
  // as JSON. A thrown exception fails the test.
  nlohmann::json Evaluate(const std::string& expression);
  // Polls the expression every 100 ms until it is true; false after timeout_ms.
  bool WaitFor(const std::string& expression, int timeout_ms);

  // Every error the page has reported so far, one line each.
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  // Sends a command (to the page's session unless browser_level) and returns
  // its result, handling events that arrive meanwhile.
  nlohmann::json Call(const std::string& method, nlohmann::json params, bool browser_level = false);
  // Reads one message, waiting at most timeout_ms; false on timeout or a
  // closed pipe.
  bool Read(nlohmann::json* message, int timeout_ms);
  void OnEvent(const nlohmann::json& message);

  pid_t pid_ = -1;
  int to_browser_ = -1;
  int from_browser_ = -1;
  std::string buffer_;  // bytes read past the last complete message
  uint64_t next_id_ = 1;
  std::string session_;
  bool loaded_ = false;
  std::vector<std::string> errors_;
};

}  // namespace distkv::clustertest
