#pragma once
// The CUDA ordinal of a GPU named by its PCI address, kept apart from the
// torch code so that the CUDA runtime header is needed only where libtorch
// has CUDA.

#include <string>

namespace kubeaccel::backend {

// The ordinal CUDA gives the GPU at `pciBusId` ("0000:3b:00.0"). Throws
// Error(KAB_UNAVAILABLE) when the address is empty, no visible GPU has it,
// or this build has no CUDA runtime.
int cudaOrdinalOfPciBusId(const std::string& pciBusId);

}  // namespace kubeaccel::backend
