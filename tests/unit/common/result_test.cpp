// SPDX-License-Identifier: Apache-2.0
#include "common/result.h"

#include <gtest/gtest.h>

namespace nv {
namespace {

Result<int> parsePositive(int v) {
  if (v <= 0) {
    return fail(Errc::kInvalidArgument, "value " + std::to_string(v) + " is not positive");
  }
  return v;
}

Result<int> doubled(int v) {
  NV_ASSIGN_OR_RETURN(int parsed, parsePositive(v));
  return parsed * 2;
}

Result<void> checkBoth(int a, int b) {
  NV_TRY(parsePositive(a));
  NV_TRY(parsePositive(b));
  return {};
}

TEST(Result, AssignOrReturn_Success_YieldsValue) { EXPECT_EQ(doubled(21).value(), 42); }

TEST(Result, AssignOrReturn_Failure_PropagatesError) {
  auto r = doubled(-1);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::kInvalidArgument));
  EXPECT_EQ(r.error().message(), "value -1 is not positive");
}

TEST(Result, Try_SecondFails_ReturnsSecondError) {
  auto r = checkBoth(1, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().context(), "value 0 is not positive");
}

TEST(Error, FromErrno_MessageHasContextAndReason) {
  Error e = Error::fromErrno(ENOENT, "open /nope");
  EXPECT_TRUE(e.isErrno(ENOENT));
  EXPECT_EQ(e.message(), "open /nope: No such file or directory");
}

TEST(Error, Wrap_PrefixesContextKeepsCode) {
  Error e = Error::fromErrno(EACCES, "open /dev/kvm").wrap("creating VM");
  EXPECT_EQ(e.context(), "creating VM: open /dev/kvm");
  EXPECT_TRUE(e.isErrno(EACCES));
}

}  // namespace
}  // namespace nv
