# SPDX-License-Identifier: Apache-2.0
# The warning set of docs/reference style anchors; -Werror unless NV_WERROR=OFF.
add_library(nv_warnings INTERFACE)
target_compile_options(nv_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast
  -Wnon-virtual-dtor -Woverloaded-virtual -Wsuggest-override -Wzero-as-null-pointer-constant
  -Wcast-qual -Wformat=2
  # Designated initializers that leave members at their defaults are intended.
  -Wno-missing-field-initializers)
if(NV_WERROR)
  target_compile_options(nv_warnings INTERFACE -Werror)
endif()

if(NV_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

if(NV_FUZZ)
  # Every library a fuzz target links is instrumented for coverage and checked by ASan+UBSan.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
