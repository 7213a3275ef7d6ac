/* A backend library that speaks another ABI version (999), for the test that
 * the agent refuses it with the reason and keeps serving the other classes.
 * Written in C: the header is usable from C. */
#include "backend/kubeaccel_backend.h"

static const char* const kFiles[] = {"model.pt", NULL};

static const kab_backend kTable = {
    999, sizeof(kab_backend), "badabi", "nowhere", kFiles, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};

__attribute__((visibility("default"))) const kab_backend* kubeaccel_backend_get(uint32_t agent_abi_version) {
  (void)agent_abi_version;
  return &kTable;
}
