#pragma once
// A slot's directory on the node, laid out so that its tenant cannot touch
// the agent's socket:
//
//   s<k>/                 agent's, 0755   the pod sees it read-only at /run/kubeaccel
//   s<k>/inference.sock   agent's, 0666   the slot's KServe v2 socket
//   s<k>/shm/             agent's, 01777  the pod's shared-memory files, read-write
//                                         at /run/kubeaccel/shm
//
// A tenant can write only in shm/. It can neither delete, rename nor replace
// the socket (the directory holding it is not writable for it, and for a
// root-in-container pod the mount is read-only).

#include <string>

namespace kubeaccel::agent {

// Where a slot's shared-memory files live.
std::string slotShmDir(const std::string& slotDir);

// Brings `slotDir` to the layout above, from nothing, from an older agent's
// layout (a 0777 directory), or from whatever a tenant left in it: anything
// at the socket's name is moved out of the way (renamed to
// ".leftover-inference.sock-<n>") so the socket can be bound. Never follows a
// symlink. Throws std::runtime_error naming the path and the reason when the
// slot cannot be made servable (say, a read-only mount).
void prepareSlotDir(const std::string& slotDir);

// Makes the slot's shm/ (01777, the agent's) if it is missing; leaves the
// socket alone. Throws std::runtime_error like prepareSlotDir.
void prepareShmDir(const std::string& slotDir);

}  // namespace kubeaccel::agent
