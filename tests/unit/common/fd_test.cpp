// SPDX-License-Identifier: Apache-2.0
// UniqueFd, MappedRegion, EventFd and ScopeGuard.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <gtest/gtest.h>

#include "common/event_fd.h"
#include "common/mapped_region.h"
#include "common/scope_guard.h"
#include "common/unique_fd.h"

namespace nv {
namespace {

bool isOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFd, Destructor_ClosesDescriptor) {
  int raw = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(raw, 0);
  { UniqueFd fd(raw); }
  EXPECT_FALSE(isOpen(raw));
}

TEST(UniqueFd, Move_TransfersOwnership) {
  UniqueFd a(::eventfd(0, EFD_CLOEXEC));
  int raw = a.get();
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.get(), raw);
  EXPECT_TRUE(isOpen(raw));
}

TEST(UniqueFd, Release_KeepsDescriptorOpen) {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC));
  int raw = fd.release();
  EXPECT_TRUE(isOpen(raw));
  ::close(raw);
}

TEST(MappedRegion, Anonymous_IsZeroedAndWritable) {
  auto region = MappedRegion::anonymous(8192);
  ASSERT_TRUE(region) << region.error().message();
  EXPECT_EQ(region->size(), 8192u);
  EXPECT_EQ(region->bytes()[4096], 0);
  region->bytes()[4096] = 7;
  EXPECT_EQ(region->data()[4096], 7);
}

TEST(MappedRegion, ZeroSize_IsInvalidArgument) {
  auto region = MappedRegion::anonymous(0);
  ASSERT_FALSE(region);
  EXPECT_TRUE(region.error().is(Errc::kInvalidArgument));
}

TEST(MappedRegion, FromFd_SharesPagesWithFile) {
  UniqueFd fd(::memfd_create("nv-test", MFD_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::ftruncate(fd.get(), 4096), 0);
  auto a = MappedRegion::fromFd(fd.get(), 4096, 0, PROT_READ | PROT_WRITE);
  auto b = MappedRegion::fromFd(fd.get(), 4096, 0, PROT_READ);
  ASSERT_TRUE(a && b);
  a->bytes()[10] = 0x5a;
  EXPECT_EQ(b->bytes()[10], 0x5a);
}

TEST(MappedRegion, FromBadFd_ReportsErrno) {
  auto region = MappedRegion::fromFd(-1, 4096, 0, PROT_READ);
  ASSERT_FALSE(region);
  EXPECT_TRUE(region.error().isErrno(EBADF));
}

TEST(EventFd, WritesAddUp_ReadResets) {
  auto efd = EventFd::create(EFD_NONBLOCK);
  ASSERT_TRUE(efd);
  ASSERT_TRUE(efd->write(2));
  ASSERT_TRUE(efd->write(3));
  EXPECT_EQ(efd->read().value(), 5u);
  auto again = efd->read();
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().isErrno(EAGAIN));
}

TEST(ScopeGuard, RunsOnExit_UnlessDismissed) {
  int runs = 0;
  {
    auto guard = makeScopeGuard([&] { ++runs; });
  }
  {
    auto guard = makeScopeGuard([&] { ++runs; });
    guard.dismiss();
  }
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace nv
