# SPDX-License-Identifier: Apache-2.0
# ttrpc frame decoder + Request/Response parsing on arbitrary bytes (guest/peer input).
nv_add_fuzz(ttrpc_frame_fuzz
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/ttrpc_frame_fuzz.cpp
  DEPS nv_ttrpc)
