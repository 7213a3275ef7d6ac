#pragma once
// Keeps the agent alive when a client truncates a file that the agent has mapped.
//
// A shared-memory region is a client-owned file mapped MAP_SHARED. If the client shrinks the file
// while it is mapped, touching the pages past the new end raises SIGBUS, which would kill the agent
// and every other pod's inference with it. The guard installs one process-wide SIGBUS handler
// (on the first protect()) that, for a fault inside a protected mapping, replaces the whole mapping
// with anonymous zero pages (as libwayland-server does for wl_shm pools) and marks it poisoned; the
// faulting access then resumes. Faults anywhere else go to the previous handler, or kill the process
// as SIGBUS normally does.
//
// The table is fixed-size and lock-free (one seqlock per entry) because the handler may run at any
// moment on any thread and can take no lock.
#include <cstddef>

namespace kubeaccel::agent::sigbus {

// Entries in the process-wide table: every live region mapping of every slot needs one.
inline constexpr size_t kTableSize = 16384;

// Protects [base, base+len) (base page-aligned, len > 0). Returns the entry index, or -1 when the
// table is full or the handler could not be installed.
int protect(void* base, size_t len);

// Forgets entry `index` (from protect()); call before unmapping. -1 is ignored.
void release(int index);

// True once a fault inside entry `index` replaced its mapping with zero pages.
bool poisoned(int index);

}  // namespace kubeaccel::agent::sigbus
