// The operator commands that run or follow a node's long operations:
//
//   distkv compact [--config FILE] [--shard NAME]... [--node ADDR]...
//                  [--token T] [--no-progress]
//   distkv status  [--config FILE] [--wait] [--token T] [--no-progress]
//
// argv[1] names the command. Each returns the process's exit code.
#pragma once

namespace distkv {

int CompactCommand(int argc, char** argv);
int StatusCommand(int argc, char** argv);

}  // namespace distkv
