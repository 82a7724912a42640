# SPDX-License-Identifier: Apache-2.0
# libFuzzer targets of the VMM's guest-facing parsers (NV_SANITIZE=ON clang build only).
nv_add_fuzz(vmm_virtqueue_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/vmm_virtqueue_fuzz.cpp
  DEPS nv_vmm_virtio nv_test_support)
nv_add_fuzz(vmm_block_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/vmm_block_fuzz.cpp
  DEPS nv_vmm_block nv_test_support)
nv_add_fuzz(vmm_elf_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/vmm_elf_fuzz.cpp
  DEPS nv_vmm_loader nv_test_support)
nv_add_fuzz(vmm_vsock_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/vmm_vsock_fuzz.cpp
  DEPS nv_vmm_vsock nv_test_support)
nv_add_fuzz(vmm_rng_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/vmm_rng_fuzz.cpp
  DEPS nv_vmm_rng nv_test_support)
nv_add_fuzz(vmm_net_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/vmm_net_fuzz.cpp
  DEPS nv_vmm_net nv_test_support)
