#pragma once
// Watches one directory for files created or deleted in it.

#include <cstdint>
#include <functional>
#include <string>

#include "util/unique_fd.hpp"

namespace kubeaccel {

class InotifyWatch {
 public:
  enum class Change { Created, Deleted };
  using Callback = std::function<void(Change, const std::string& name)>;

  // Throws std::runtime_error when the directory cannot be watched.
  explicit InotifyWatch(const std::string& dir);

  int fd() const { return fd_.get(); }
  // Reads every pending event and reports each; call when fd() is readable.
  void dispatch(const Callback& cb);

 private:
  UniqueFd fd_;
};

}  // namespace kubeaccel
