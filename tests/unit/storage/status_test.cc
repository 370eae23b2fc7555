// Status printing and errno mapping; fsync mode names.
#include <doctest/doctest.h>

#include <errno.h>

#include "storage/status.h"
#include "storage/store.h"

using namespace distkv::storage;

TEST_CASE("Status::FromErrno maps a full disk to NoSpace and the rest to IOError") {
  Status s = Status::FromErrno(ENOSPC, "write 000000000001.seg");
  CHECK(s.IsNoSpace());
  CHECK(s.message() == "write 000000000001.seg: No space left on device");
  CHECK(Status::FromErrno(EDQUOT, "x").IsNoSpace());
  Status io = Status::FromErrno(EIO, "fdatasync f");
  CHECK(io.IsIOError());
  CHECK(io.ToString() == "IOError: fdatasync f: Input/output error");
}

TEST_CASE("Status::ToString") {
  CHECK(Status::OK().ToString() == "OK");
  CHECK(Status::NotFound().ToString() == "NotFound");
  CHECK(Status::Corruption("bad CRC").ToString() == "Corruption: bad CRC");
  CHECK(Status::Busy("locked").ToString() == "Busy: locked");
  CHECK(Status::Incomplete().ToString() == "Incomplete");
  CHECK(Status::InvalidArgument("k").ToString() == "InvalidArgument: k");
}

TEST_CASE("fsync modes parse from and print to their config names") {
  for (FsyncMode m : {FsyncMode::kAlways, FsyncMode::kEverySec, FsyncMode::kNever}) {
    FsyncMode parsed;
    REQUIRE(ParseFsyncMode(FsyncModeName(m), &parsed));
    CHECK(parsed == m);
  }
  FsyncMode m = FsyncMode::kNever;
  CHECK(ParseFsyncMode("always", &m));
  CHECK(m == FsyncMode::kAlways);
  CHECK_FALSE(ParseFsyncMode("Always", &m));
  CHECK_FALSE(ParseFsyncMode("", &m));
  CHECK(m == FsyncMode::kAlways);  // untouched on failure
}
