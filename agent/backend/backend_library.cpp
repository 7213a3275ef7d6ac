#include "backend/backend_library.hpp"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

namespace kubeaccel::agent {
namespace {

struct Opened {
  const kab_backend* table = nullptr;
  std::string reason;
};

Opened open(const std::string& dir, const std::string& name) {
  std::string path = backendLibraryPath(dir, name);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return {nullptr, "no library " + path + " (--backend-dir " + dir + ")"};
  // RTLD_LOCAL: two backends may carry different builds of the same engine
  // library symbols without one binding to the other's. Never dlclose'd: an
  // engine's static destructors and threads (libtorch's, OpenCV's) must not
  // run from an unloaded image.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* e = ::dlerror();
    return {nullptr, "cannot load " + path + ": " + (e ? e : "unknown dlopen error")};
  }
  auto get = reinterpret_cast<kab_get_fn>(::dlsym(handle, KUBEACCEL_BACKEND_ENTRY));
  if (!get) return {nullptr, path + " exports no " KUBEACCEL_BACKEND_ENTRY};
  const kab_backend* t = get(KUBEACCEL_BACKEND_ABI_VERSION);
  if (!t) return {nullptr, path + ": " KUBEACCEL_BACKEND_ENTRY " returned no backend (it cannot run here)"};
  if (t->abi_version != KUBEACCEL_BACKEND_ABI_VERSION)
    return {nullptr, path + " has backend ABI version " + std::to_string(t->abi_version) +
                         "; this agent speaks version " + std::to_string(KUBEACCEL_BACKEND_ABI_VERSION)};
  // A table from before the optional fields were added ends where they begin.
  if (t->struct_size < offsetof(kab_backend, pin_host_memory))
    return {nullptr, path + ": its function table has " + std::to_string(t->struct_size) + " bytes, expected at least " +
                         std::to_string(offsetof(kab_backend, pin_host_memory))};
  if (!t->name || name != t->name)
    return {nullptr, path + " is backend '" + std::string(t->name ? t->name : "") + "', not '" + name + "'"};
  if (!t->load_model || !t->model_tensor_count || !t->model_tensor || !t->model_limits || !t->model_info ||
      !t->free_model || !t->new_runner || !t->run || !t->free_runner || !t->model_files || !t->model_files[0])
    return {nullptr, path + ": its function table has empty entries"};
  spdlog::info("backend {}: loaded {} ({})", name, path, t->platform ? t->platform : "");
  return {t, ""};
}

}  // namespace

std::string backendLibraryPath(const std::string& dir, const std::string& name) {
  return dir + "/libkubeaccel_backend_" + name + ".so";
}

const kab_backend* openBackendLibrary(const std::string& dir, const std::string& name, std::string* reason) {
  static std::mutex mu;
  static std::map<std::string, Opened> opened;  // by library path
  // A name that is not one file name must not reach into other folders.
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    *reason = "'" + name + "' is not a backend name";
    return nullptr;
  }
  std::lock_guard lock(mu);
  std::string path = backendLibraryPath(dir, name);
  auto it = opened.find(path);
  if (it == opened.end()) it = opened.emplace(path, open(dir, name)).first;
  *reason = it->second.reason;
  return it->second.table;
}

}  // namespace kubeaccel::agent
