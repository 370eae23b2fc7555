// Status: the outcome of an operation, as a value. Errors are never silent:
// every storage call that can fail returns one, and the caller decides.
// Modelled on LevelDB's Status; an OK status carries no allocation.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace distkv::storage {

class Status {
 public:
  enum class Code : unsigned char {
    kOk = 0,
    kNotFound,
    kCorruption,       // a CRC or a length does not add up
    kIOError,          // EIO and other system errors
    kNoSpace,          // ENOSPC / EDQUOT: the disk is full
    kInvalidArgument,  // the caller asked for something impossible
    kBusy,             // the resource is held by someone else (directory lock)
    kIncomplete,       // a buffer ends inside a record: more bytes are needed
  };

  Status() = default;

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg = {}) { return Status(Code::kNotFound, msg); }
  static Status Corruption(std::string_view msg) { return Status(Code::kCorruption, msg); }
  static Status IOError(std::string_view msg) { return Status(Code::kIOError, msg); }
  static Status NoSpace(std::string_view msg) { return Status(Code::kNoSpace, msg); }
  static Status InvalidArgument(std::string_view msg) {
    return Status(Code::kInvalidArgument, msg);
  }
  static Status Busy(std::string_view msg) { return Status(Code::kBusy, msg); }
  static Status Incomplete(std::string_view msg = {}) { return Status(Code::kIncomplete, msg); }
  // Maps an errno to a status: ENOSPC/EDQUOT become kNoSpace, the rest kIOError.
  // The message reads "<context>: <strerror>".
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return code_ == Code::kOk; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsIOError() const { return code_ == Code::kIOError; }
  bool IsNoSpace() const { return code_ == Code::kNoSpace; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsBusy() const { return code_ == Code::kBusy; }
  bool IsIncomplete() const { return code_ == Code::kIncomplete; }

  Code code() const { return code_; }
  std::string_view message() const { return msg_ ? std::string_view(*msg_) : std::string_view(); }
  // "OK", or "<code name>: <message>".
  std::string ToString() const;

 private:
  Status(Code code, std::string_view msg)
      : code_(code), msg_(std::make_shared<const std::string>(msg)) {}

  Code code_ = Code::kOk;
  std::shared_ptr<const std::string> msg_;
};

}  // namespace distkv::storage
