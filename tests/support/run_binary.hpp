#pragma once
// Running the sptrain binary (SPTRAIN_BINARY, defined for every test target)
// from a test: arguments quoted for the shell, stdout and stderr captured.
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace sptrain::test {

struct CommandResult {
  int code = -1;  // exit status; -1 when killed by a signal
  std::string out, err;
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Single quotes for the shell.
inline std::string shell_quote(const std::string& arg) {
  std::string q = "'";
  for (char ch : arg) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

// Runs `sptrain ARGS` with one OpenMP thread, in folder `dir` (which also
// receives its stdout and stderr files), reading stdin from `stdin_path`
// when one is given. `env`: extra NAME=VALUE words for the environment.
inline CommandResult run_sptrain(const std::vector<std::string>& args, const std::string& dir,
                                 const std::string& stdin_path = "",
                                 const std::vector<std::string>& env = {}) {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, falsely) on "literal" + string.
  std::string cmd = "cd ";
  cmd.append(shell_quote(dir)).append(" && OMP_NUM_THREADS=1 ");
  for (const std::string& e : env) {  // NAME=VALUE: only the value may be quoted
    const size_t eq = e.find('=');
    cmd.append(e.substr(0, eq)).append("=").append(shell_quote(e.substr(eq + 1))).append(" ");
  }
  cmd.append(shell_quote(SPTRAIN_BINARY));
  for (const std::string& a : args) cmd.append(" ").append(shell_quote(a));
  if (!stdin_path.empty()) cmd.append(" < ").append(shell_quote(stdin_path));
  cmd.append(" > ").append(shell_quote(dir + "/stdout"));
  cmd.append(" 2> ").append(shell_quote(dir + "/stderr"));
  const int status = std::system(cmd.c_str());
  CommandResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_text(dir + "/stdout");
  r.err = read_text(dir + "/stderr");
  return r;
}

}  // namespace sptrain::test
