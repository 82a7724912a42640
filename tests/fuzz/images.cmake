# SPDX-License-Identifier: Apache-2.0
# images: manifest/index/config parsing, and the tar/whiteout layer applier.
nv_add_fuzz(images_manifest_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/images_manifest_fuzz.cpp
  DEPS nv_images)
nv_add_fuzz(images_tar_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/images_tar_fuzz.cpp
  DEPS nv_images
  RUNS 5000)
