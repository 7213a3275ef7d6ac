/*
 * kubeaccel_backend.h - the C ABI between kubeaccel-agent and its backends.
 *
 * A backend is a shared library, `<backend-dir>/libkubeaccel_backend_<name>.so`,
 * that runs models on one engine (OpenCV DNN, libtorch, ...). The agent loads it
 * with dlopen and calls only what this header declares: it links no engine, and a
 * backend knows nothing of sockets, gRPC, slots, batching or shared memory.
 *
 * Why C: a backend is often built on another machine, against another engine
 * version and compiler (a GPU node's libtorch + CUDA), than the agent, which is
 * built once. Only C types cross this boundary: no C++ objects, exceptions or
 * allocator pairs. A C++ exception must never leave a backend function.
 *
 * The one exported symbol is kubeaccel_backend_get() (see the end). Everything else
 * is reached through the function table it returns.
 *
 * Conventions for every call:
 * - Status: 0 (KAB_OK) on success, another kab_status on failure. On failure the
 *   backend writes a NUL-terminated, one-line message into the caller's `err`
 *   buffer (`err_size` bytes, truncated to fit). The message says what failed and
 *   where: the file, the tensor or the engine call, e.g.
 *   "config.json declares output 'prob' as [-1,1000], the model gives [1,10]".
 * - Strings the backend returns (names, datatypes, platform) are owned by the
 *   backend and stay valid for as long as the object they came from (the library
 *   for kab_backend fields; the model until free_model for signatures).
 * - Datatypes are KServe v2 names: "BOOL", "UINT8", "UINT16", "UINT32", "UINT64",
 *   "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BF16". Tensors are
 *   dense, row-major, little-endian.
 * - Dims are int64_t; -1 in a signature means "any size" (a dynamic batch
 *   dimension, say). Concrete tensors (run inputs and outputs) have no -1.
 */
#ifndef KUBEACCEL_BACKEND_H
#define KUBEACCEL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to this header (a struct layout, a call's
 * meaning). The agent refuses a backend that reports another version. */
#define KUBEACCEL_BACKEND_ABI_VERSION 1

/* The exported entry point's name, for dlsym. */
#define KUBEACCEL_BACKEND_ENTRY "kubeaccel_backend_get"

/* How a call ended. The agent maps them to gRPC codes: a run's KAB_INVALID and
 * KAB_INTERNAL both fail that one request INTERNAL with the message. */
typedef enum kab_status {
  KAB_OK = 0,
  KAB_INVALID = 1,     /* the model, its config or a run's tensors are wrong */
  KAB_UNAVAILABLE = 2, /* cannot run here (no CUDA, a format this build lacks) */
  KAB_INTERNAL = 3,    /* the engine failed */
  /* The engine ran out of memory for this run (a GPU allocation, say): the
   * message says how much it asked for. The agent fails that run's requests
   * RESOURCE_EXHAUSTED and keeps serving. (Added compatibly in ABI 1: an agent
   * that predates it treats it as any other failure.) */
  KAB_RESOURCE_EXHAUSTED = 4
} kab_status;

typedef struct kab_model kab_model;   /* a loaded model (opaque, backend-owned) */
typedef struct kab_runner kab_runner; /* one worker's execution context (opaque) */

/* What load_model gets. All pointers are owned by the agent and valid only
 * during the call: a backend copies what it keeps. */
typedef struct kab_load_args {
  /* The model's version folder, e.g. "/models/resnet50/1". The backend picks
   * its file(s) in it (one of kab_backend.model_files). */
  const char* version_dir;
  /* The model's config.json text ("{}" when the file is absent), already checked
   * by the agent: known keys only, with valid values (docs/models.md). The
   * backend reads the keys it uses and refuses values it cannot honour. */
  const char* config_json;
  /* The accelerator this agent serves, as discovery named it: its PCI address
   * ("0000:3b:00.0") or "" when it has none (a USB stick, the CPU). A GPU
   * backend picks its device from this, never by guessing an index. */
  const char* pci_bus_id;
} kab_load_args;

/* One input or output of a model's signature. Owned by the model. */
typedef struct kab_tensor_spec {
  const char* name;
  const char* datatype;
  const int64_t* dims; /* `rank` dims, -1: any size */
  size_t rank;
} kab_tensor_spec;

/* The tensor sizes a model's engine can take; the agent refuses requests
 * outside them before they reach the backend. */
typedef struct kab_limits {
  int64_t min_dim;      /* smallest size of any dim (0: empty tensors allowed) */
  int64_t max_dim;      /* largest size of any dim */
  int64_t max_elements; /* largest element count of one input tensor */
} kab_limits;

/* A run input: a view of the agent's bytes (a request message or a shared
 * memory region), read-only and valid only during run(). Inputs come in the
 * model's input order, batched along dim 0 when the agent batches the model;
 * datatype and shape were checked against the signature and limits. */
typedef struct kab_input {
  const char* name;
  const char* datatype;
  const int64_t* shape;
  size_t rank;
  const void* data;
  size_t bytes; /* elements * datatype size, exactly */
} kab_input;

/* Largest rank of a run output. */
#define KAB_MAX_RANK 16

/* A run output, filled by the backend. The agent zeroes the array and sets
 * nothing; the backend sets every field of outputs[0..n_outputs) in the
 * model's output order. `data` is memory the backend allocated (or an engine
 * buffer it keeps alive); the agent reads `bytes` bytes of it and then calls
 * `release(release_ctx)` exactly once, from the thread that called run(), before
 * the next run() on that runner. `release` may be NULL when nothing needs it.
 * On a failed run the backend releases whatever it filled itself; the agent
 * calls no release. */
typedef struct kab_output {
  char datatype[8];        /* "FP32", ... NUL-terminated */
  int64_t shape[KAB_MAX_RANK];
  size_t rank;
  const void* data;
  size_t bytes;
  void (*release)(void* release_ctx);
  void* release_ctx;
} kab_output;

/* Where the agent would like an output written (run_into): host memory of
 * `bytes` bytes that it pinned with pin_host_memory; data NULL: nowhere. */
typedef struct kab_destination {
  void* data;
  size_t bytes;
} kab_destination;

/*
 * The function table. Threading contract, per call:
 * - load_model: any thread; may run concurrently with any other call,
 *   including other load_model calls (two devices load at once; a repository
 *   reload happens while older models serve).
 * - model_signature, model_limits, model_info: any thread, concurrently, from
 *   load until free_model.
 * - new_runner: any thread, concurrently with runs on other runners of the same
 *   model. The agent makes one runner per worker thread per model.
 * - run: one call at a time per runner (its worker's thread); runs on different
 *   runners, of the same model or not, happen at the same time.
 * - free_runner: once per runner, when no run is in progress on it.
 * - free_model: once, after every runner of the model was freed.
 * The library is never unloaded (dlclose) once kubeaccel_backend_get returned.
 */
typedef struct kab_backend {
  /* KUBEACCEL_BACKEND_ABI_VERSION as the backend was built. First field, never moves. */
  uint32_t abi_version;
  /* sizeof(kab_backend) as the backend was built. */
  uint32_t struct_size;
  /* The backend's name as classes name it ("torch", "opencv-cpu"). */
  const char* name;
  /* What the work runs on, for metadata and logs ("CPU (libtorch 1.13.0)"). */
  const char* platform;
  /* The model file names it loads, NULL-terminated, in order of preference
   * ({"model.pt", "model.pt2", NULL}). A version folder holding none of them is
   * not a version of the model. */
  const char* const* model_files;

  /* Loads the model in args->version_dir. On KAB_OK, *out is a model that
   * answers its signature and makes runners; anything the backend can check at
   * load (the file, the config, the signature, a warm-up run) was checked. */
  int (*load_model)(const kab_load_args* args, kab_model** out, char* err, size_t err_size);
  /* Inputs (is_output 0) and outputs (1): the count, and spec `index` of them
   * (NULL when index >= count). */
  size_t (*model_tensor_count)(const kab_model* model, int is_output);
  const kab_tensor_spec* (*model_tensor)(const kab_model* model, int is_output, size_t index);
  /* The limits of the engine for this model. */
  void (*model_limits)(const kab_model* model, kab_limits* out);
  /* A short line on how the model runs ("cpu, 2 threads, fp16"), for logs and
   * metadata. Owned by the model. */
  const char* (*model_info)(const kab_model* model);
  void (*free_model)(kab_model* model);

  /* A runner: what one worker needs to run the model (an engine instance,
   * scratch buffers). */
  int (*new_runner)(kab_model* model, kab_runner** out, char* err, size_t err_size);
  /* Runs `n_inputs` inputs and fills `n_outputs` outputs (both in the model's
   * signature order and count). On failure no output needs releasing and the
   * runner stays usable. */
  int (*run)(kab_runner* runner, const kab_input* inputs, size_t n_inputs, kab_output* outputs, size_t n_outputs,
             char* err, size_t err_size);
  void (*free_runner)(kab_runner* runner);

  /* --- Optional, added compatibly in ABI 1. The agent uses a field below only
   * when struct_size shows the backend has it, and only when it is not NULL. */

  /* Pins [ptr, ptr + bytes) for the engine's device DMA (cudaHostRegister), so
   * that copies between it and the device go straight to and from these pages,
   * with no staging copy. The agent calls it when a pod registers a shared
   * memory region (ptr: the page-aligned start of the region's mapping) and
   * calls unpin_host_memory(ptr) once no run uses the region any more, before
   * unmapping it. KAB_UNAVAILABLE when the backend has no device to pin for
   * (no CUDA): the region then works unpinned. Any thread, concurrently with
   * runs (which may read or write pinned memory). */
  int (*pin_host_memory)(void* ptr, size_t bytes, char* err, size_t err_size);
  void (*unpin_host_memory)(void* ptr);

  /* As run, but output i may be written straight into destinations[i] (one
   * per output; memory pinned by pin_host_memory, valid for the call, such
   * as the part of a pod's shared-memory region the request named for it),
   * so that the device's copy needs no staging buffer. The backend writes
   * there only an output that fits and sets that output's `data` to
   * destinations[i].data (`release` may then be NULL); it returns any other
   * output as run does. A run_into that fails has written nothing into any
   * destination. Same threading contract as run. */
  int (*run_into)(kab_runner* runner, const kab_input* inputs, size_t n_inputs, kab_output* outputs,
                  size_t n_outputs, const kab_destination* destinations, char* err, size_t err_size);
} kab_backend;

/* The entry point every backend exports. `agent_abi_version` is the agent's
 * KUBEACCEL_BACKEND_ABI_VERSION, so that a backend supporting several versions
 * may answer the one asked for. Returns a table that lives as long as the
 * process, or NULL when the backend cannot run at all (the agent then reports
 * the library as unusable). Called once per library, from one thread, before
 * any other call. */
typedef const kab_backend* (*kab_get_fn)(uint32_t agent_abi_version);
const kab_backend* kubeaccel_backend_get(uint32_t agent_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* KUBEACCEL_BACKEND_H */
