# SPDX-License-Identifier: Apache-2.0
# The warning set of docs/reference style anchors; -Werror unless NV_WERROR=OFF.
add_library(nv_warnings INTERFACE)
target_compile_options(nv_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast
  -Wnon-virtual-dtor -Woverloaded-virtual -Wsuggest-override -Wzero-as-null-pointer-constant
  -Wcast-qual -Wformat=2
  # Designated initializers that leave members at their defaults are intended.
  -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # clang 14 flags the literal 0 inside a defaulted operator<=> (its own expansion).
  target_compile_options(nv_warnings INTERFACE -Wno-zero-as-null-pointer-constant)
endif()
if(NV_WERROR)
  target_compile_options(nv_warnings INTERFACE -Werror)
endif()

if(NV_SANITIZE)
  # One clang build serves both: every object is checked by ASan+UBSan and instrumented for
  # libFuzzer's coverage; unit tests link the sanitizers, fuzz targets add libFuzzer's main.
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "NV_SANITIZE needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
    -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
