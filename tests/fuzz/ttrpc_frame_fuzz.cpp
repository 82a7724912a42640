// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes through the ttrpc FrameDecoder, split at a fuzzed point,
// and every decoded frame parsed as ttrpc.Request and ttrpc.Response.
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/ttrpc/frame.h"
#include "common/ttrpc/ttrpc.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  // First byte picks where the input is split into two feeds (exercises partial frames).
  const size_t split = size > 1 ? data[0] % size : 0;
  std::span<const uint8_t> input(data + 1, size - 1);
  nv::ttrpc::FrameDecoder decoder;
  auto drain = [&decoder] {
    for (;;) {
      auto next = decoder.next();
      if (!next || !next->has_value()) {
        return;
      }
      const nv::ttrpc::Frame& frame = **next;
      if (frame.payload.size() != frame.header.length) {
        __builtin_trap();
      }
      ::ttrpc::Request request;
      (void)request.ParseFromString(frame.payload);
      ::ttrpc::Response response;
      (void)response.ParseFromString(frame.payload);
    }
  };
  const size_t first = split < input.size() ? split : input.size();
  decoder.feed(input.first(first));
  drain();
  decoder.feed(input.subspan(first));
  drain();
  (void)decoder.finish();
  return 0;
}
