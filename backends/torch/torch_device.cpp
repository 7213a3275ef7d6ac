#include "torch_device.hpp"

#include "backend_support.hpp"

#ifdef KUBEACCEL_TORCH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace kubeaccel::backend {

int cudaOrdinalOfPciBusId(const std::string& pciBusId) {
  if (pciBusId.empty())
    throw Error(KAB_UNAVAILABLE, "device 'cuda': the served device has no PCI address to pick a GPU by");
#ifdef KUBEACCEL_TORCH_CUDA
  // The ordinal depends on CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER; the bus
  // ID does not, so it is never guessed from the device's position.
  int ordinal = -1;
  cudaError_t rc = cudaDeviceGetByPCIBusId(&ordinal, pciBusId.c_str());
  if (rc != cudaSuccess)
    throw Error(KAB_UNAVAILABLE, "device 'cuda': no visible CUDA device at PCI " + pciBusId + ": " +
                                     cudaGetErrorString(rc));
  return ordinal;
#else
  throw Error(KAB_UNAVAILABLE, "device 'cuda' at PCI " + pciBusId +
                                   ": this torch backend was built without the CUDA runtime");
#endif
}

}  // namespace kubeaccel::backend
