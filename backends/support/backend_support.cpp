#include "backend_support.hpp"

#include <cstring>
#include <filesystem>
#include <mutex>

// The opaque handles of the C ABI, defined here for every backend built on
// this support code (each library has its own copy, hidden).
struct kab_model {
  std::unique_ptr<kubeaccel::backend::Model> impl;
  // The C views of the signature, pointing into impl's TensorSpecs.
  std::vector<kab_tensor_spec> specs[2];
  std::string info;
};

struct kab_runner {
  std::unique_ptr<kubeaccel::backend::Runner> impl;
};

namespace kubeaccel::backend {
namespace {

Definition& definition() {
  static Definition d;
  return d;
}

int report(char* err, size_t size, kab_status status, const char* what) {
  if (err && size) {
    std::strncpy(err, what, size - 1);
    err[size - 1] = '\0';
  }
  return status;
}

// Runs `f`; any exception becomes a status and a message, never a throw into C.
template <class F>
int guarded(char* err, size_t size, F&& f) {
  try {
    f();
    return KAB_OK;
  } catch (const Error& e) {
    return report(err, size, e.status, e.what());
  } catch (const std::exception& e) {
    return report(err, size, KAB_INTERNAL, e.what());
  } catch (...) {
    return report(err, size, KAB_INTERNAL, "unknown exception");
  }
}

std::vector<kab_tensor_spec> cSpecs(const std::vector<TensorSpec>& specs) {
  std::vector<kab_tensor_spec> out;
  for (const auto& s : specs) out.push_back({s.name.c_str(), s.datatype.c_str(), s.shape.data(), s.shape.size()});
  return out;
}

int loadModel(const kab_load_args* args, kab_model** out, char* err, size_t size) {
  return guarded(err, size, [&] {
    auto m = std::make_unique<kab_model>();
    m->impl = definition().load(*args);
    m->specs[0] = cSpecs(m->impl->inputs());
    m->specs[1] = cSpecs(m->impl->outputs());
    m->info = m->impl->info();
    *out = m.release();
  });
}

size_t tensorCount(const kab_model* m, int isOutput) { return m->specs[isOutput ? 1 : 0].size(); }

const kab_tensor_spec* tensor(const kab_model* m, int isOutput, size_t i) {
  const auto& v = m->specs[isOutput ? 1 : 0];
  return i < v.size() ? &v[i] : nullptr;
}

void limits(const kab_model* m, kab_limits* out) { *out = m->impl->limits(); }
const char* info(const kab_model* m) { return m->info.c_str(); }
void freeModel(kab_model* m) { delete m; }

int newRunner(kab_model* m, kab_runner** out, char* err, size_t size) {
  return guarded(err, size, [&] {
    auto r = std::make_unique<kab_runner>();
    r->impl = m->impl->newRunner();
    *out = r.release();
  });
}

int run(kab_runner* r, const kab_input* in, size_t nIn, kab_output* out, size_t nOut, char* err, size_t size) {
  std::span<kab_output> outputs(out, nOut);
  int rc = guarded(err, size, [&] { r->impl->run(std::span<const kab_input>(in, nIn), outputs); });
  if (rc != KAB_OK) releaseOutputs(outputs);  // the contract: nothing to release after a failure
  return rc;
}

int runInto(kab_runner* r, const kab_input* in, size_t nIn, kab_output* out, size_t nOut, const kab_destination* dest,
            char* err, size_t size) {
  std::span<kab_output> outputs(out, nOut);
  int rc = guarded(err, size, [&] {
    r->impl->runInto(std::span<const kab_input>(in, nIn), outputs, std::span<const kab_destination>(dest, nOut));
  });
  if (rc != KAB_OK) releaseOutputs(outputs);
  return rc;
}

void freeRunner(kab_runner* r) { delete r; }

int pinHostMemory(void* p, size_t bytes, char* err, size_t size) {
  return guarded(err, size, [&] { definition().pinHostMemory(p, bytes); });
}

void unpinHostMemory(void* p) {
  try {
    definition().unpinHostMemory(p);
  } catch (...) {  // nothing to report to: the region is going away
  }
}

}  // namespace

const kab_backend* makeBackendTable(Definition def) {
  static std::once_flag once;
  static kab_backend table{};
  static std::vector<const char*> files;
  std::call_once(once, [&] {
    definition() = std::move(def);
    for (const auto& f : definition().files) files.push_back(f.c_str());
    files.push_back(nullptr);
    table = kab_backend{KUBEACCEL_BACKEND_ABI_VERSION, sizeof(kab_backend), definition().name,
                        definition().platform.c_str(), files.data(), loadModel, tensorCount, tensor, limits, info,
                        freeModel, newRunner, run, freeRunner, nullptr, nullptr, runInto};
    if (definition().pinHostMemory && definition().unpinHostMemory) {
      table.pin_host_memory = pinHostMemory;
      table.unpin_host_memory = unpinHostMemory;
    }
  });
  return &table;
}

void releaseOutputs(std::span<kab_output> outputs) {
  for (auto& o : outputs) {
    if (o.release) o.release(o.release_ctx);
    o.release = nullptr;
    o.release_ctx = nullptr;
  }
}

std::string pickModelFile(const std::string& versionDir, const std::vector<std::string>& files) {
  std::error_code ec;
  for (const auto& f : files) {
    std::string p = versionDir + "/" + f;
    if (std::filesystem::is_regular_file(p, ec)) return p;
  }
  std::string list;
  for (const auto& f : files) list += (list.empty() ? "" : ", ") + f;
  throw Error(KAB_INVALID, versionDir + ": holds none of " + list);
}

}  // namespace kubeaccel::backend
