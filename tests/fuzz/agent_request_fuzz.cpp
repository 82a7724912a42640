// SPDX-License-Identifier: Apache-2.0
// Fuzzes what the agent decodes from the host: the first byte picks the parser.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/boot_options.h"
#include "agent/oci_spec.h"
#include "agent/passwd.h"
#include "common/ttrpc/blocking.h"
#include "agent/seccomp_filter.h"
#include "proto/agent.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const uint8_t selector = data[0];
  std::string input(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (selector % 5) {
    case 0: {
      auto spec = nv::agent::parseSpec(input);
      if (spec && spec->seccomp) {
        (void)nv::agent::compileSeccomp(*spec->seccomp);
      }
      break;
    }
    case 1:
      (void)nv::agent::parseProcess(input);
      break;
    case 2: {
      auto req = nv::ttrpc::decodeRequest(input);
      if (req) {
        ::nanovisor::agent::v1::CreateContainerRequest create;
        if (create.ParseFromString(req->payload)) {
          (void)nv::agent::parseSpec(create.oci_spec_json());
        }
      }
      break;
    }
    case 3: {
      auto split = input.find('\0');
      std::string_view all(input);
      std::string_view passwd = all.substr(0, split);
      std::string_view group = split == std::string::npos ? "" : all.substr(split + 1);
      (void)nv::agent::resolveUser("alice:staff", passwd, group);
      (void)nv::agent::resolveUser("1000", passwd, group);
      break;
    }
    default:
      (void)nv::agent::parseBootOptions(input);
      break;
  }
  return 0;
}
