# SPDX-License-Identifier: Apache-2.0
# nv_proto_library(NAME LAYER layer PROTOS a.proto ... [IMPORT_DIRS dir ...])
# Generates C++ for .proto files (all our protos use LITE_RUNTIME) into the build tree at the
# same relative path, so `#include "proto/agent.pb.h"` works, and wraps it in a static library.
# The protobuf runtime is linked as plain `-lprotobuf-lite`: shared for host binaries, static
# when the agent links with -static (libprotobuf-lite.a), from the same objects.
add_library(nv_protobuf INTERFACE)
target_link_libraries(nv_protobuf INTERFACE protobuf-lite)
target_include_directories(nv_protobuf INTERFACE ${Protobuf_INCLUDE_DIRS})

function(nv_proto_library name)
  cmake_parse_arguments(arg "" "LAYER" "PROTOS;IMPORT_DIRS" ${ARGN})
  set(srcs "")
  file(RELATIVE_PATH rel_dir ${PROJECT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  set(import_flags -I${PROJECT_SOURCE_DIR})
  foreach(dir IN LISTS arg_IMPORT_DIRS)
    list(APPEND import_flags -I${dir})
  endforeach()
  foreach(proto IN LISTS arg_PROTOS)
    get_filename_component(base ${proto} NAME_WE)
    set(out_cc ${PROJECT_BINARY_DIR}/${rel_dir}/${base}.pb.cc)
    set(out_h ${PROJECT_BINARY_DIR}/${rel_dir}/${base}.pb.h)
    add_custom_command(
      OUTPUT ${out_cc} ${out_h}
      COMMAND protobuf::protoc ${import_flags} --cpp_out=${PROJECT_BINARY_DIR}
              ${CMAKE_CURRENT_SOURCE_DIR}/${proto}
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${proto} protobuf::protoc
      COMMENT "protoc ${rel_dir}/${proto}")
    list(APPEND srcs ${out_cc})
  endforeach()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${PROJECT_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC nv_protobuf)
  # Generated code is not ours to warn about.
  target_compile_options(${name} PRIVATE -w)
  set(NV_TARGETS_${arg_LAYER} ${NV_TARGETS_${arg_LAYER}};${name} CACHE INTERNAL "")
endfunction()
