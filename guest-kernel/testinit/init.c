// SPDX-License-Identifier: Apache-2.0
// A tiny PID 1 for smoke-testing the guest kernel: prints the kernel release on the console
// and reboots (with QEMU's -no-reboot that ends the VM). No libc beyond static glibc.
#include <stdio.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void) {
  struct utsname u;
  if (uname(&u) == 0) {
    printf("nanovisor-testinit: kernel %s\n", u.release);
  } else {
    printf("nanovisor-testinit: uname failed\n");
  }
  fflush(stdout);
  sync();
  reboot(RB_AUTOBOOT);
  return 0;
}
