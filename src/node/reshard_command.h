// The command line of slot migration: `distkv reshard` and `distkv rebalance`
// (argv[1] says which). Returns the process's exit code.
#pragma once

namespace distkv {

int ReshardCommand(int argc, char** argv);

}  // namespace distkv
