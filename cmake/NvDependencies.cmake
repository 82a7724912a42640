# SPDX-License-Identifier: Apache-2.0
# Third-party libraries, all from Debian 12 packages (scripts/deps.sh installs them).
# fmt is used header-only; spdlog in its compiled mode, with the library itself compiled once
# in common/spdlog_impl.cpp (Debian ships no static libspdlog, and the guest agent is static).
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(Protobuf REQUIRED)
find_package(GTest REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 QUIET)
find_package(OpenSSL REQUIRED)
find_package(LibArchive REQUIRED)

add_library(nv_thirdparty INTERFACE)
target_compile_definitions(nv_thirdparty INTERFACE
  SPDLOG_COMPILED_LIB FMT_HEADER_ONLY SPDLOG_FMT_EXTERNAL BOOST_ASIO_NO_DEPRECATED)
target_link_libraries(nv_thirdparty INTERFACE Boost::headers Threads::Threads)

# Host binaries use the full protobuf runtime; the static agent links libprotobuf-lite.a.
# Our .proto files are all LITE_RUNTIME, so the same generated objects serve both.
find_library(NV_PROTOBUF_LITE_STATIC NAMES libprotobuf-lite.a REQUIRED)
find_library(NV_SECCOMP_STATIC NAMES libseccomp.a)
pkg_check_modules(SECCOMP IMPORTED_TARGET libseccomp)
pkg_check_modules(LIBVIRT IMPORTED_TARGET libvirt)
