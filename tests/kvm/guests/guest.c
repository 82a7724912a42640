// SPDX-License-Identifier: Apache-2.0
// The KVM test guest: a freestanding, polling, IDT-free program. The kernel cmdline picks the
// test ("test=serial", "test=bootinfo", "test=reset", "test=smp", "test=blk", "test=vsock",
// "test=api", "test=rng", "test=net", "test=idle"); it runs under nanovisor-vmm and under QEMU microvm
// (PVH entry; virtio-mmio found at either machine's addresses). Results are
// printed on the 8250 at 0x3F8 and the guest ends by writing a status to the debug-exit port
// 0xF4 (0x31 = pass, 0x33 = fail) or through the i8042 reset.
#include <stddef.h>
#include <stdint.h>

#define PASS 0x31
#define FAIL 0x33

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline void barrier(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline uint32_t mmio_read(uint64_t addr) { return *(volatile uint32_t*)addr; }
static inline void mmio_write(uint64_t addr, uint32_t v) { *(volatile uint32_t*)addr = v; }

// The compiler may emit calls to these even with -ffreestanding.
void* memset(void* dst, int c, size_t n) {
  uint8_t* d = dst;
  while (n--) *d++ = (uint8_t)c;
  return dst;
}
void* memcpy(void* dst, const void* src, size_t n) {
  uint8_t* d = dst;
  const uint8_t* s = src;
  while (n--) *d++ = *s++;
  return dst;
}

static volatile int print_lock;
static void lock(void) {
  while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE)) {
  }
}
static void unlock(void) { __atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE); }

static void putc_raw(char c) {
  while ((inb(0x3FD) & 0x20) == 0) {
  }
  outb(0x3F8, (uint8_t)c);
}
static void puts_raw(const char* s) {
  while (*s) putc_raw(*s++);
}
static void put_hex(uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  puts_raw("0x");
  int started = 0;
  for (int shift = 60; shift >= 0; shift -= 4) {
    int d = (int)((v >> shift) & 0xF);
    if (d || started || shift == 0) {
      putc_raw(digits[d]);
      started = 1;
    }
  }
}
static void put_dec(uint64_t v) {
  char buf[24];
  int i = 0;
  do {
    buf[i++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (i) putc_raw(buf[--i]);
}
static void finish(uint8_t status) {
  outb(0xF4, status);
  for (;;) __asm__ volatile("hlt");
}

static int str_eq_prefix(const char* s, const char* prefix) {
  while (*prefix) {
    if (*s++ != *prefix++) return 0;
  }
  return 1;
}
// Value of "key=" in the cmdline copied into out (space-terminated), or 0.
static int cmdline_get(const char* cmdline, const char* key, char* out, int max) {
  const char* p = cmdline;
  while (p && *p) {
    while (*p == ' ') p++;
    if (str_eq_prefix(p, key)) {
      while (*key) {
        key++;
        p++;
      }
      int n = 0;
      while (*p && *p != ' ' && n < max - 1) out[n++] = *p++;
      out[n] = 0;
      return 1;
    }
    while (*p && *p != ' ') p++;
  }
  return 0;
}
static uint64_t parse_dec(const char* s) {
  uint64_t v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
  return v;
}

// --- boot_params (zero page) fields used here, by offset (Documentation/arch/x86/zero-page.rst)
#define BP_E820_ENTRIES 0x1E8
#define BP_HDR_BOOT_FLAG 0x1FE
#define BP_HDR_HEADER 0x202
#define BP_HDR_LOADER 0x210
#define BP_HDR_RAMDISK_IMAGE 0x218
#define BP_HDR_RAMDISK_SIZE 0x21C
#define BP_HDR_CMD_LINE_PTR 0x228
#define BP_HDR_CMDLINE_SIZE 0x238
#define BP_E820_TABLE 0x2D0

struct e820 {
  uint64_t addr, size;
  uint32_t type;
} __attribute__((packed));

struct hvm_start_info {
  uint32_t magic, version, flags, nr_modules;
  uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
  uint32_t memmap_entries, reserved;
};
extern uint64_t pvh_info;

static const char* g_cmdline = "";

static void test_bootinfo(const uint8_t* bp) {
  if (!bp) {
    const struct hvm_start_info* info = (const struct hvm_start_info*)pvh_info;
    puts_raw("pvh magic=");
    put_hex(info->magic);
    puts_raw("\n");
    finish(info->magic == 0x336EC578 ? PASS : FAIL);
  }
  int ok = 1;
  uint16_t boot_flag = *(const uint16_t*)(bp + BP_HDR_BOOT_FLAG);
  uint32_t header = *(const uint32_t*)(bp + BP_HDR_HEADER);
  puts_raw("boot_flag=");
  put_hex(boot_flag);
  puts_raw(" header=");
  put_hex(header);
  puts_raw(" loader=");
  put_hex(bp[BP_HDR_LOADER]);
  puts_raw("\n");
  ok &= boot_flag == 0xAA55 && header == 0x53726448 && bp[BP_HDR_LOADER] == 0xFF;
  uint8_t n = bp[BP_E820_ENTRIES];
  const struct e820* map = (const struct e820*)(bp + BP_E820_TABLE);
  for (int i = 0; i < n; i++) {
    puts_raw("e820 ");
    put_hex(map[i].addr);
    puts_raw(" ");
    put_hex(map[i].size);
    puts_raw(" ");
    put_dec(map[i].type);
    puts_raw("\n");
  }
  uint32_t cmd_ptr = *(const uint32_t*)(bp + BP_HDR_CMD_LINE_PTR);
  puts_raw("cmdline=[");
  puts_raw((const char*)(uint64_t)cmd_ptr);
  puts_raw("] size=");
  put_dec(*(const uint32_t*)(bp + BP_HDR_CMDLINE_SIZE));
  puts_raw("\n");
  puts_raw("ramdisk ");
  put_hex(*(const uint32_t*)(bp + BP_HDR_RAMDISK_IMAGE));
  puts_raw(" ");
  put_hex(*(const uint32_t*)(bp + BP_HDR_RAMDISK_SIZE));
  puts_raw("\n");
  // The last e820 RAM entry must really be writable memory: touch its last byte.
  // (Only when it is inside the 4 GiB the boot page tables map.)
  uint64_t top = map[n - 1].addr + map[n - 1].size;
  if (top <= (4ULL << 30)) {
    volatile uint8_t* last = (volatile uint8_t*)(top - 1);
    *last = 0x5A;
    ok &= *last == 0x5A;
  }
  finish(ok ? PASS : FAIL);
}

// --- SMP: every vCPU enters guest_main; APs check in, the BSP waits for all of them.
static volatile uint32_t cpus_up;

static void test_smp_ap(uint64_t id) {
  lock();
  puts_raw("cpu ");
  put_dec(id);
  puts_raw(" up\n");
  unlock();
  outb(0x3F0, (uint8_t)(200 + id));  // boot-timer mark: one per vCPU
  __atomic_add_fetch(&cpus_up, 1, __ATOMIC_SEQ_CST);
  for (;;) __asm__ volatile("hlt");
}

static void test_smp_bsp(void) {
  char value[8];
  uint64_t want = cmdline_get(g_cmdline, "cpus=", value, sizeof value) ? parse_dec(value) : 2;
  lock();
  puts_raw("cpu 0 up\n");
  unlock();
  outb(0x3F0, 200);
  __atomic_add_fetch(&cpus_up, 1, __ATOMIC_SEQ_CST);
  for (uint64_t spins = 0; cpus_up < want; spins++) {
    if (spins > 2000000000ULL) finish(FAIL);
    __asm__ volatile("pause");
  }
  lock();
  puts_raw("all ");
  put_dec(want);
  puts_raw(" cpus up\n");
  unlock();
  finish(PASS);
}

// --- virtio-mmio devices: nanovisor-vmm puts them at 0xD0000000 (4 KiB apart), QEMU's
// microvm at 0xFEB00000 (512 bytes apart), so the same guest runs under both (make bench).
static uint64_t find_virtio(uint32_t device_id) {
  for (int i = 0; i < 8; i++) {
    uint64_t w = 0xD0000000ULL + (uint64_t)i * 0x1000;
    if (mmio_read(w) == 0x74726976 && mmio_read(w + 8) == device_id) return w;
  }
  for (int i = 0; i < 24; i++) {  // QEMU 7.2 microvm: 24 transports, filled from the top
    uint64_t w = 0xFEB00000ULL + (uint64_t)i * 0x200;
    if (mmio_read(w) == 0x74726976 && mmio_read(w + 8) == device_id) return w;
  }
  return 0;
}

// --- virtio-blk polling driver (virtio-mmio v2, the first block device).
static uint64_t blk_base;
#define QSIZE 16
struct vdesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags, next;
};
struct vavail {
  uint16_t flags, idx, ring[QSIZE], used_event;
};
struct vused_elem {
  uint32_t id, len;
};
struct vused {
  uint16_t flags, idx;
  struct vused_elem ring[QSIZE];
  uint16_t avail_event;
};
static struct vdesc desc[QSIZE] __attribute__((aligned(4096)));
static struct vavail avail __attribute__((aligned(4096)));
static struct vused used __attribute__((aligned(4096)));
struct blk_req {
  uint32_t type, reserved;
  uint64_t sector;
};
static struct blk_req req_hdr __attribute__((aligned(16)));
static volatile uint8_t req_status;
#define CHUNK (1024 * 1024)
static uint8_t buffer[CHUNK] __attribute__((aligned(4096)));
static uint16_t avail_idx, used_seen;

// The data pattern (the host test computes the same; keep in sync with blk_guest_test.cpp).
static uint64_t pattern(uint64_t seed, uint64_t i) {
  uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ULL ^ seed;
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ULL;
}
static uint64_t page_tag(uint64_t seed, uint64_t chunk, uint64_t page) {
  return ((chunk << 32) | page) ^ seed;
}

static int blk_init(uint64_t* capacity) {
  uint64_t b = blk_base = find_virtio(2);
  if (!b || mmio_read(b + 0x004) != 2) {
    puts_raw("no virtio-blk\n");
    return 0;
  }
  mmio_write(b + 0x070, 0);
  mmio_write(b + 0x070, 1);
  mmio_write(b + 0x070, 1 | 2);
  mmio_write(b + 0x024, 0);
  mmio_write(b + 0x020, 1u << 9);  // FLUSH
  mmio_write(b + 0x024, 1);
  mmio_write(b + 0x020, 1);  // VERSION_1
  mmio_write(b + 0x070, 1 | 2 | 8);
  if ((mmio_read(b + 0x070) & 8) == 0) {
    puts_raw("FEATURES_OK refused\n");
    return 0;
  }
  mmio_write(b + 0x030, 0);
  if (mmio_read(b + 0x034) < QSIZE) return 0;
  mmio_write(b + 0x038, QSIZE);
  mmio_write(b + 0x080, (uint32_t)(uint64_t)desc);
  mmio_write(b + 0x084, 0);
  mmio_write(b + 0x090, (uint32_t)(uint64_t)&avail);
  mmio_write(b + 0x094, 0);
  mmio_write(b + 0x0A0, (uint32_t)(uint64_t)&used);
  mmio_write(b + 0x0A4, 0);
  mmio_write(b + 0x044, 1);
  mmio_write(b + 0x070, 1 | 2 | 8 | 4);
  *capacity = (uint64_t)mmio_read(b + 0x100) | ((uint64_t)mmio_read(b + 0x104) << 32);
  return 1;
}

// One request: header, optional data buffer, status. Returns the status byte (0xFF = timeout).
static uint8_t blk_request(uint32_t type, uint64_t sector, void* data, uint32_t len) {
  req_hdr.type = type;
  req_hdr.reserved = 0;
  req_hdr.sector = sector;
  req_status = 0xEE;
  int n = 0;
  desc[n] = (struct vdesc){(uint64_t)&req_hdr, sizeof req_hdr, 1, (uint16_t)(n + 1)};
  n++;
  if (len) {
    uint16_t write = (type == 0 || type == 8) ? 2 : 0;
    desc[n] = (struct vdesc){(uint64_t)data, len, (uint16_t)(1 | write), (uint16_t)(n + 1)};
    n++;
  }
  desc[n] = (struct vdesc){(uint64_t)&req_status, 1, 2, 0};
  avail.ring[avail_idx % QSIZE] = 0;
  barrier();
  avail.idx = ++avail_idx;
  barrier();
  mmio_write(blk_base + 0x050, 0);
  for (uint64_t spins = 0; *(volatile uint16_t*)&used.idx == used_seen; spins++) {
    if (spins > 4000000000ULL) return 0xFF;
    __asm__ volatile("pause");
  }
  used_seen++;
  barrier();
  return req_status;
}

static void test_blk(void) {
  uint64_t capacity = 0;
  if (!blk_init(&capacity)) finish(FAIL);
  puts_raw("capacity ");
  put_dec(capacity);
  puts_raw("\n");
  char value[24];
  uint64_t mib = cmdline_get(g_cmdline, "mib=", value, sizeof value) ? parse_dec(value) : 64;
  uint64_t seed = cmdline_get(g_cmdline, "seed=", value, sizeof value) ? parse_dec(value) : 1;
  int readonly = cmdline_get(g_cmdline, "ro=", value, sizeof value) && value[0] == '1';
  if (capacity * 512 < mib * CHUNK) finish(FAIL);

  uint8_t id[20] = {0};
  uint8_t st = blk_request(8, 0, id, 20);
  puts_raw("id=");
  for (int i = 0; i < 20 && id[i]; i++) putc_raw((char)id[i]);
  puts_raw(" status=");
  put_dec(st);
  puts_raw("\n");
  if (st != 0) finish(FAIL);

  // iops=N: N 4 KiB reads at scattered page-aligned offsets, one at a time (make bench).
  uint64_t reads = cmdline_get(g_cmdline, "iops=", value, sizeof value) ? parse_dec(value) : 0;
  if (reads) {
    uint64_t pages = capacity / 8, x = seed;
    for (uint64_t i = 0; i < reads; i++) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      if (blk_request(0, ((x >> 33) % pages) * 8, buffer, 4096) != 0) finish(FAIL);
    }
    puts_raw("read ");
    put_dec(reads);
    puts_raw(" x 4 KiB\n");
    finish(PASS);
  }

  if (readonly) {
    st = blk_request(1, 0, buffer, 4096);
    puts_raw("ro write status=");
    put_dec(st);
    puts_raw("\n");
    finish(st == 1 ? PASS : FAIL);
  }
  // A write past the end must fail with IOERR, not crash anything.
  st = blk_request(1, capacity, buffer, 512);
  puts_raw("past-end write status=");
  put_dec(st);
  puts_raw("\n");
  if (st != 1) finish(FAIL);

  // On a PVM host every guest instruction is emulated, so the guest cannot afford to generate
  // or check 64 MiB word by word. The pattern is cheap instead: word i of chunk c is
  // pattern(seed, i), except the first word of each 4 KiB page, which is (c << 32 | page) ^
  // seed. The host checks the whole disk file against this formula; the guest checks the
  // first and last word of every page it reads back (catches misplaced or torn pages).
  uint64_t* words = (uint64_t*)buffer;
  for (uint64_t i = 0; i < CHUNK / 8; i++) words[i] = pattern(seed, i);
  for (uint64_t chunk = 0; chunk < mib; chunk++) {
    for (uint64_t page = 0; page < CHUNK / 4096; page++) words[page * 512] = page_tag(seed, chunk, page);
    st = blk_request(1, chunk * (CHUNK / 512), buffer, CHUNK);
    if (st != 0) {
      puts_raw("write failed\n");
      finish(FAIL);
    }
  }
  st = blk_request(4, 0, 0, 0);
  puts_raw("flush status=");
  put_dec(st);
  puts_raw("\n");
  uint64_t sum = 0xCBF29CE484222325ULL;
  for (uint64_t chunk = 0; chunk < mib; chunk++) {
    for (uint64_t page = 0; page < CHUNK / 4096; page++) {
      words[page * 512] = 0;
      words[page * 512 + 511] = 0;
    }
    st = blk_request(0, chunk * (CHUNK / 512), buffer, CHUNK);
    if (st != 0) {
      puts_raw("read failed\n");
      finish(FAIL);
    }
    for (uint64_t page = 0; page < CHUNK / 4096; page++) {
      uint64_t first = words[page * 512], last = words[page * 512 + 511];
      if (first != page_tag(seed, chunk, page) || last != pattern(seed, page * 512 + 511)) {
        puts_raw("mismatch in chunk ");
        put_dec(chunk);
        puts_raw(" page ");
        put_dec(page);
        puts_raw("\n");
        finish(FAIL);
      }
      sum = (sum ^ first) * 0x100000001B3ULL;
      sum = (sum ^ last) * 0x100000001B3ULL;
    }
  }
  puts_raw("verified ");
  put_dec(mib);
  puts_raw(" MiB\n");
  puts_raw("checksum ");
  put_hex(sum);
  puts_raw("\n");
  finish(PASS);
}

// --- virtio-rng: find device id 4, take 64 bytes, then ask for 200000 (the VMM bounds one
// request to 64 KiB).
static uint32_t rng_take(uint64_t base, uint32_t len) {
  desc[0] = (struct vdesc){(uint64_t)buffer, len, 2, 0};
  avail.ring[avail_idx % QSIZE] = 0;
  barrier();
  avail.idx = ++avail_idx;
  barrier();
  mmio_write(base + 0x050, 0);
  for (uint64_t spins = 0; *(volatile uint16_t*)&used.idx == used_seen; spins++) {
    if (spins > 4000000000ULL) finish(FAIL);
    __asm__ volatile("pause");
  }
  barrier();
  uint32_t got = used.ring[used_seen % QSIZE].len;
  used_seen++;
  return got;
}

static void test_rng(void) {
  uint64_t b = find_virtio(4);
  if (!b) {
    puts_raw("no virtio-rng\n");
    finish(FAIL);
  }
  mmio_write(b + 0x070, 0);
  mmio_write(b + 0x070, 1 | 2);
  mmio_write(b + 0x024, 1);
  mmio_write(b + 0x020, 1);  // VERSION_1
  mmio_write(b + 0x070, 1 | 2 | 8);
  if ((mmio_read(b + 0x070) & 8) == 0) finish(FAIL);
  mmio_write(b + 0x030, 0);
  mmio_write(b + 0x038, QSIZE);
  mmio_write(b + 0x080, (uint32_t)(uint64_t)desc);
  mmio_write(b + 0x084, 0);
  mmio_write(b + 0x090, (uint32_t)(uint64_t)&avail);
  mmio_write(b + 0x094, 0);
  mmio_write(b + 0x0A0, (uint32_t)(uint64_t)&used);
  mmio_write(b + 0x0A4, 0);
  mmio_write(b + 0x044, 1);
  mmio_write(b + 0x070, 1 | 2 | 8 | 4);
  for (int i = 0; i < 64; i++) buffer[i] = 0;
  uint32_t got = rng_take(b, 64);
  int nonzero = 0;
  for (int i = 0; i < 64; i++) nonzero += buffer[i] != 0;
  puts_raw("rng got ");
  put_dec(got);
  puts_raw(" bytes, ");
  put_dec((uint64_t)nonzero);
  puts_raw(" non-zero: ");
  for (int i = 0; i < 8; i++) {
    putc_raw("0123456789abcdef"[buffer[i] >> 4]);
    putc_raw("0123456789abcdef"[buffer[i] & 15]);
  }
  puts_raw("\n");
  uint32_t big = rng_take(b, 200000);
  puts_raw("rng big request got ");
  put_dec(big);
  puts_raw("\n");
  finish(got == 64 && nonzero > 32 && big > 0 && big <= 65536 ? PASS : FAIL);
}

// --- control API guest: prints disk 0's first 16 bytes, then ticks forever; re-reads the disk
// when the config-change bit shows up in the transport's InterruptStatus (media replaced), and
// reboots through the i8042 when the host injects Ctrl-Alt-Del (any scancode byte), unless
// "cad=ignore". "spin=N" pauses N iterations between ticks.
static void api_print_disk(const char* what, uint64_t capacity) {
  for (int i = 0; i < 512; i++) buffer[i] = 0;
  uint8_t st = blk_request(0, 0, buffer, 512);
  puts_raw(what);
  puts_raw(" capacity=");
  put_dec(capacity);
  puts_raw(" status=");
  put_dec(st);
  puts_raw(" data=[");
  for (int i = 0; i < 16; i++) {
    char c = (char)buffer[i];
    putc_raw(c >= 0x20 && c < 0x7F ? c : '.');
  }
  puts_raw("]\n");
}

static void test_api(void) {
  uint64_t capacity = 0;
  if (!blk_init(&capacity)) finish(FAIL);
  char value[24];
  uint64_t spin = cmdline_get(g_cmdline, "spin=", value, sizeof value) ? parse_dec(value) : 1000;
  int ignore_cad = cmdline_get(g_cmdline, "cad=", value, sizeof value) && value[0] == 'i';
  api_print_disk("disk", capacity);
  for (uint64_t tick = 1;; tick++) {
    if (inb(0x64) & 1) {
      (void)inb(0x60);
      if (!ignore_cad) {
        puts_raw("ctrl-alt-del: rebooting\n");
        outb(0x64, 0xFE);
      }
    }
    uint32_t isr = mmio_read(blk_base + 0x060);
    if (isr & 2) {
      mmio_write(blk_base + 0x064, 2);
      capacity = (uint64_t)mmio_read(blk_base + 0x100) |
                 ((uint64_t)mmio_read(blk_base + 0x104) << 32);
      api_print_disk("media changed", capacity);
    }
    puts_raw("tick ");
    put_dec(tick);
    puts_raw("\n");
    for (uint64_t i = 0; i < spin; i++) __asm__ volatile("pause");
  }
}

// --- virtio-vsock polling echo driver (any virtio-mmio window with device id 19).
// RW payloads are echoed straight from their RX buffers, which wait (pending) until the host
// has credit for the echo. RX buffers must not all wait on that credit, though: the host's
// CREDIT_UPDATE needs a free RX buffer to arrive in (all 32 pending = a deadlock, seen once the
// host reader was slow). So while out of credit with half the ring pending, the payloads are
// parked in vs_buf (the buf_alloc we advertise, so the host's credit bounds it) and their RX
// buffers reposted.
#define VQ 32
#define RXBUF 4096
#define VS_HDR 44
#define VS_BUF_ALLOC (128 * 1024)
#define VS_MAX_PAYLOAD (64 * 1024)  // per packet (virtio-vsock devices cap it there)
struct vavail32 {
  uint16_t flags, idx, ring[VQ], used_event;
};
struct vused32 {
  uint16_t flags, idx;
  struct vused_elem ring[VQ];
  uint16_t avail_event;
};
struct vs_hdr {
  uint64_t src_cid, dst_cid;
  uint32_t src_port, dst_port, len;
  uint16_t type, op;
  uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
static struct vdesc vs_desc[2][VQ] __attribute__((aligned(4096)));
static struct vavail32 vs_avail[2] __attribute__((aligned(4096)));
static struct vused32 vs_used[2] __attribute__((aligned(4096)));
static uint8_t vs_rx[VQ][RXBUF] __attribute__((aligned(4096)));
static struct vs_hdr vs_txhdr __attribute__((aligned(64)));
static uint16_t vs_avail_idx[2], vs_used_seen[2];
static uint64_t vs_base;
static uint32_t vs_guest_port = 1234, vs_host_port;
static uint32_t vs_tx_cnt, vs_fwd_cnt, vs_peer_buf, vs_peer_fwd;
static uint8_t vs_buf[VS_BUF_ALLOC] __attribute__((aligned(4096)));
static uint32_t vs_park_in, vs_park_out;  // bytes parked in / echoed from vs_buf (wrapping)

static void vs_kick(int q) { mmio_write(vs_base + 0x050, (uint32_t)q); }

static void vs_post_rx(uint16_t i) {
  vs_avail[0].ring[vs_avail_idx[0] % VQ] = i;
  barrier();
  vs_avail[0].idx = ++vs_avail_idx[0];
  barrier();
}

static int vs_init(void) {
  vs_base = find_virtio(19);
  if (!vs_base) {
    puts_raw("no virtio-vsock\n");
    return 0;
  }
  uint64_t b = vs_base;
  mmio_write(b + 0x070, 0);
  mmio_write(b + 0x070, 1 | 2);
  mmio_write(b + 0x024, 1);
  mmio_write(b + 0x020, 1);  // VERSION_1 only
  mmio_write(b + 0x070, 1 | 2 | 8);
  if ((mmio_read(b + 0x070) & 8) == 0) return 0;
  for (int q = 0; q < 2; q++) {
    mmio_write(b + 0x030, (uint32_t)q);
    mmio_write(b + 0x038, VQ);
    mmio_write(b + 0x080, (uint32_t)(uint64_t)vs_desc[q]);
    mmio_write(b + 0x084, 0);
    mmio_write(b + 0x090, (uint32_t)(uint64_t)&vs_avail[q]);
    mmio_write(b + 0x094, 0);
    mmio_write(b + 0x0A0, (uint32_t)(uint64_t)&vs_used[q]);
    mmio_write(b + 0x0A4, 0);
    mmio_write(b + 0x044, 1);
  }
  for (uint16_t i = 0; i < VQ; i++) {
    vs_desc[0][i] = (struct vdesc){(uint64_t)vs_rx[i], RXBUF, 2, 0};
    vs_post_rx(i);
  }
  mmio_write(b + 0x070, 1 | 2 | 8 | 4);
  uint64_t cid = (uint64_t)mmio_read(b + 0x100) | ((uint64_t)mmio_read(b + 0x104) << 32);
  puts_raw("vsock cid ");
  put_dec(cid);
  puts_raw("\n");
  vs_kick(0);
  return cid == 3;
}

static void vs_send(uint16_t op, uint32_t flags, const void* payload, uint32_t len) {
  vs_txhdr = (struct vs_hdr){3, 2, vs_guest_port, vs_host_port, len, 1, op, flags, VS_BUF_ALLOC, vs_fwd_cnt};
  vs_desc[1][0] = (struct vdesc){(uint64_t)&vs_txhdr, VS_HDR, (uint16_t)(len ? 1 : 0), 1};
  if (len) vs_desc[1][1] = (struct vdesc){(uint64_t)payload, len, 0, 0};
  vs_avail[1].ring[vs_avail_idx[1] % VQ] = 0;
  barrier();
  vs_avail[1].idx = ++vs_avail_idx[1];
  barrier();
  vs_kick(1);
  for (uint64_t spins = 0; *(volatile uint16_t*)&vs_used[1].idx == vs_used_seen[1]; spins++) {
    if (spins > 4000000000ULL) {
      puts_raw("vsock TX packet never used\n");
      finish(FAIL);
    }
    __asm__ volatile("pause");
  }
  vs_used_seen[1]++;
}

static uint32_t vs_peer_free(void) {
  uint32_t in_flight = vs_tx_cnt - vs_peer_fwd;
  return in_flight >= vs_peer_buf ? 0 : vs_peer_buf - in_flight;
}

// The stuck state, for the console when the echo stops making progress.
static void vs_report_stuck(int pending) {
  puts_raw("vsock stuck: pending ");
  put_dec((uint64_t)pending);
  puts_raw(" parked ");
  put_dec(vs_park_in - vs_park_out);
  puts_raw(" echoed ");
  put_dec(vs_fwd_cnt);
  puts_raw(" peer_free ");
  put_dec(vs_peer_free());
  puts_raw("\n");
}

static void copy_bytes(void* dst, const void* src, uint64_t n) {
  __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static void test_vsock(void) {
  if (!vs_init()) finish(FAIL);
  char value[24];
  uint64_t port = cmdline_get(g_cmdline, "port=", value, sizeof value) ? parse_dec(value) : 5000;
  int connect = cmdline_get(g_cmdline, "mode=", value, sizeof value) && value[0] == 'c';
  int connected = 0;
  if (connect) {
    vs_host_port = (uint32_t)port;
    vs_send(1, 0, 0, 0);  // REQUEST
  } else {
    vs_guest_port = (uint32_t)port;
  }
  uint16_t pending[VQ];
  int pend_head = 0, pend_count = 0, asked = 0;
  uint64_t echoed = 0, credit_requests = 0;
  for (uint64_t idle = 0;; idle++) {
    if (idle > 4000000000ULL) {
      vs_report_stuck(pend_count);
      finish(FAIL);
    }
    int reposted = 0;
    while (*(volatile uint16_t*)&vs_used[0].idx != vs_used_seen[0]) {
      idle = 0;
      barrier();
      uint16_t id = (uint16_t)vs_used[0].ring[vs_used_seen[0] % VQ].id;
      vs_used_seen[0]++;
      if (id >= VQ) finish(FAIL);
      const struct vs_hdr* h = (const struct vs_hdr*)vs_rx[id];
      vs_peer_buf = h->buf_alloc;
      vs_peer_fwd = h->fwd_cnt;
      int repost = 1;
      switch (h->op) {
        case 1:  // REQUEST from the host
          vs_host_port = h->src_port;
          connected = 1;
          vs_send(2, 0, 0, 0);
          puts_raw("vsock accepted host port ");
          put_dec(vs_host_port);
          puts_raw("\n");
          break;
        case 2:  // RESPONSE to our REQUEST
          connected = 1;
          puts_raw("vsock connected to host port ");
          put_dec(vs_host_port);
          puts_raw("\n");
          break;
        case 3:  // RST
          puts_raw(connected ? "vsock reset\n" : "vsock connect refused\n");
          finish(connected ? FAIL : 0x32);
          break;
        case 4:  // SHUTDOWN: the host is done
          vs_send(3, 0, 0, 0);
          puts_raw("vsock echoed ");
          put_dec(echoed);
          puts_raw(" bytes\nvsock credit requests ");
          put_dec(credit_requests);
          puts_raw("\n");
          finish(PASS);
          break;
        case 5:  // RW: echoed below, after anything parked
          if (h->len > RXBUF - VS_HDR || pend_count >= VQ) finish(FAIL);
          if (h->len == 0) break;
          pending[(pend_head + pend_count++) % VQ] = id;
          repost = 0;
          break;
        case 7:  // CREDIT_REQUEST
          vs_send(6, 0, 0, 0);
          break;
        default:
          break;
      }
      if (repost) {
        vs_post_rx(id);
        reposted = 1;
      }
    }
    // Echo in order: parked bytes (in part if credit is short), then pending RW buffers.
    for (;;) {
      uint32_t free = vs_peer_free(), len = 0;
      const uint8_t* data = 0;
      int parked = vs_park_in != vs_park_out;
      if (parked) {
        uint32_t at = vs_park_out % VS_BUF_ALLOC;
        len = vs_park_in - vs_park_out;
        if (len > VS_BUF_ALLOC - at) len = VS_BUF_ALLOC - at;  // up to the wrap
        if (len > VS_MAX_PAYLOAD) len = VS_MAX_PAYLOAD;
        if (len > free) len = free;
        data = vs_buf + at;
      } else if (pend_count > 0) {
        uint16_t id = pending[pend_head];
        len = ((const struct vs_hdr*)vs_rx[id])->len;
        if (len > free) len = 0;
        data = vs_rx[id] + VS_HDR;
      } else {
        break;
      }
      if (len == 0) {  // out of credit
        if (!asked) {
          vs_send(7, 0, 0, 0);  // CREDIT_REQUEST (the host also updates on its own)
          credit_requests++;
        }
        asked = 1;
        while (pend_count >= VQ / 2 && pend_count > 0) {  // park, freeing the RX buffers
          uint16_t id = pending[pend_head];
          uint32_t n = ((const struct vs_hdr*)vs_rx[id])->len;
          if (vs_park_in - vs_park_out + n > VS_BUF_ALLOC) {
            puts_raw("vsock host overran our buf_alloc\n");
            finish(FAIL);
          }
          uint32_t at = vs_park_in % VS_BUF_ALLOC;
          uint32_t first = n < VS_BUF_ALLOC - at ? n : VS_BUF_ALLOC - at;
          copy_bytes(vs_buf + at, vs_rx[id] + VS_HDR, first);
          copy_bytes(vs_buf, vs_rx[id] + VS_HDR + first, n - first);
          vs_park_in += n;
          pend_head = (pend_head + 1) % VQ;
          pend_count--;
          vs_post_rx(id);
          reposted = 1;
        }
        break;
      }
      asked = 0;
      idle = 0;
      vs_fwd_cnt += len;  // vs_send returns once the device took the bytes
      vs_send(5, 0, data, len);
      vs_tx_cnt += len;
      echoed += len;
      if (parked) {
        vs_park_out += len;
      } else {
        vs_post_rx(pending[pend_head]);
        pend_head = (pend_head + 1) % VQ;
        pend_count--;
        reposted = 1;
      }
    }
    if (reposted) vs_kick(0);
    __asm__ volatile("pause");
  }
}


// --- virtio-net polling driver (device id 1, VERSION_1 + MAC): frames of ethertype 0x88B5.
// mode=echo: sends a hello frame (0x88B7), then echoes every 0x88B5 frame back with the MAC
// addresses swapped and byte 14 inverted, until a 0x88B6 frame ends the test; prints the count
// and the byte sum of what it received. mode=send count=N size=S: sends N broadcast frames of
// S bytes (seq in bytes 14..17, then byte i = (seq % 32) * 7 + i) and ends once the device has
// taken them all.
#define NQ 32
#define NBUF 2048
#define NET_HDR 12
static struct vdesc net_desc[2][NQ] __attribute__((aligned(4096)));
static struct vavail32 net_avail[2] __attribute__((aligned(4096)));
static struct vused32 net_used[2] __attribute__((aligned(4096)));
static uint8_t net_rx[NQ][NBUF] __attribute__((aligned(4096)));
static uint8_t net_tx[NQ][NBUF] __attribute__((aligned(4096)));
static uint16_t net_avail_idx[2], net_used_seen[2];
static uint64_t net_base;
static uint8_t net_mac[6];

// Word-at-a-time helpers: every guest instruction is emulated on some hosts (PVM), so the
// echo path touches each frame 8 bytes at a time.
typedef uint64_t __attribute__((may_alias, aligned(1))) u64_unaligned;
static void net_copy(uint8_t* d, const uint8_t* s, uint32_t n) {
  for (; n >= 8; n -= 8, d += 8, s += 8) *(u64_unaligned*)d = *(const u64_unaligned*)s;
  while (n--) *d++ = *s++;
}
static uint64_t net_byte_sum(const uint8_t* p, uint32_t n) {
  uint64_t sum = 0;
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w = *(const u64_unaligned*)p;
    uint64_t x = (w & 0x00FF00FF00FF00FFULL) + ((w >> 8) & 0x00FF00FF00FF00FFULL);
    x += x >> 16;
    x += x >> 32;
    sum += x & 0xFFFF;
  }
  while (n--) sum += *p++;
  return sum;
}

static void net_kick(int q) { mmio_write(net_base + 0x050, (uint32_t)q); }

static void net_post_rx(uint16_t i) {
  net_avail[0].ring[net_avail_idx[0] % NQ] = i;
  barrier();
  net_avail[0].idx = ++net_avail_idx[0];
  barrier();
}

static int net_init(void) {
  net_base = find_virtio(1);
  if (!net_base) {
    puts_raw("no virtio-net\n");
    return 0;
  }
  uint64_t b = net_base;
  mmio_write(b + 0x070, 0);
  mmio_write(b + 0x070, 1 | 2);
  mmio_write(b + 0x014, 0);
  if ((mmio_read(b + 0x010) & (1u << 5)) == 0) {
    puts_raw("virtio-net offers no MAC\n");
    return 0;
  }
  mmio_write(b + 0x024, 0);
  mmio_write(b + 0x020, 1u << 5);  // VIRTIO_NET_F_MAC
  mmio_write(b + 0x024, 1);
  mmio_write(b + 0x020, 1);  // VERSION_1
  mmio_write(b + 0x070, 1 | 2 | 8);
  if ((mmio_read(b + 0x070) & 8) == 0) return 0;
  for (int q = 0; q < 2; q++) {
    mmio_write(b + 0x030, (uint32_t)q);
    if (mmio_read(b + 0x034) < NQ) return 0;
    mmio_write(b + 0x038, NQ);
    mmio_write(b + 0x080, (uint32_t)(uint64_t)net_desc[q]);
    mmio_write(b + 0x084, 0);
    mmio_write(b + 0x090, (uint32_t)(uint64_t)&net_avail[q]);
    mmio_write(b + 0x094, 0);
    mmio_write(b + 0x0A0, (uint32_t)(uint64_t)&net_used[q]);
    mmio_write(b + 0x0A4, 0);
    mmio_write(b + 0x044, 1);
  }
  for (uint16_t i = 0; i < NQ; i++) {
    net_desc[0][i] = (struct vdesc){(uint64_t)net_rx[i], NBUF, 2, 0};
    net_post_rx(i);
  }
  mmio_write(b + 0x070, 1 | 2 | 8 | 4);
  static const char digits[] = "0123456789abcdef";
  puts_raw("net mac ");
  for (int i = 0; i < 6; i++) {
    net_mac[i] = *(volatile uint8_t*)(b + 0x100 + (uint64_t)i);
    if (i) putc_raw(':');
    putc_raw(digits[net_mac[i] >> 4]);
    putc_raw(digits[net_mac[i] & 15]);
  }
  puts_raw("\n");
  net_kick(0);
  return 1;
}

// Waits until the device has taken every tx frame but `keep`.
static void net_tx_drain(uint16_t keep) {
  for (uint64_t spins = 0;; spins++) {
    net_used_seen[1] = *(volatile uint16_t*)&net_used[1].idx;
    if ((uint16_t)(net_avail_idx[1] - net_used_seen[1]) <= keep) return;
    if (spins > 4000000000ULL) finish(FAIL);
    __asm__ volatile("pause");
  }
}

// Queues tx slot `slot` (header + frame already in net_tx[slot]) and kicks.
static void net_tx_post(uint16_t slot, uint32_t len) {
  net_desc[1][slot] = (struct vdesc){(uint64_t)net_tx[slot], NET_HDR + len, 0, 0};
  net_avail[1].ring[net_avail_idx[1] % NQ] = slot;
  barrier();
  net_avail[1].idx = ++net_avail_idx[1];
  barrier();
  net_kick(1);
}

// A free tx slot (frames complete in order: slot = avail index modulo the queue).
static uint8_t* net_tx_slot(uint16_t* slot) {
  net_tx_drain(NQ - 1);
  *slot = net_avail_idx[1] % NQ;
  memset(net_tx[*slot], 0, NET_HDR);
  return net_tx[*slot] + NET_HDR;
}

static void test_net(void) {
  if (!net_init()) finish(FAIL);
  char value[24];
  int send = cmdline_get(g_cmdline, "mode=", value, sizeof value) && value[0] == 's';
  uint16_t slot;
  if (send) {
    uint64_t count = cmdline_get(g_cmdline, "count=", value, sizeof value) ? parse_dec(value) : 100;
    uint64_t size = cmdline_get(g_cmdline, "size=", value, sizeof value) ? parse_dec(value) : 1514;
    if (size < 18 || size > NBUF - NET_HDR) finish(FAIL);
    // Byte loops are slow on some hosts (PVM): fill each slot's payload once; a frame then
    // only gets its seq.
    for (uint16_t s = 0; s < NQ; s++) {
      uint8_t* f = net_tx[s] + NET_HDR;
      for (uint64_t i = 18; i < size; i++) f[i] = (uint8_t)(s * 7 + i);
    }
    for (uint64_t seq = 0; seq < count; seq++) {
      uint8_t* f = net_tx_slot(&slot);
      memset(f, 0xFF, 6);
      memcpy(f + 6, net_mac, 6);
      f[12] = 0x88;
      f[13] = 0xB5;
      memcpy(f + 14, &seq, 4);
      net_tx_post(slot, (uint32_t)size);
    }
    net_tx_drain(0);
    puts_raw("net sent ");
    put_dec(count);
    puts_raw(" frames\n");
    finish(PASS);
  }
  // Echo mode: say hello (the host starts sending once it sees this).
  uint8_t* hello = net_tx_slot(&slot);
  memset(hello, 0xFF, 6);
  memcpy(hello + 6, net_mac, 6);
  hello[12] = 0x88;
  hello[13] = 0xB7;
  memset(hello + 14, 0, 46);
  net_tx_post(slot, 60);
  uint64_t frames = 0, sum = 0, others = 0;
  for (uint64_t idle = 0;; idle++) {
    if (idle > 40000000000ULL) finish(FAIL);
    int reposted = 0;
    while (*(volatile uint16_t*)&net_used[0].idx != net_used_seen[0]) {
      idle = 0;
      barrier();
      struct vused_elem e = net_used[0].ring[net_used_seen[0] % NQ];
      net_used_seen[0]++;
      if (e.id >= NQ || e.len < NET_HDR || e.len > NBUF) finish(FAIL);
      const uint8_t* h = net_rx[e.id];
      if (h[10] != 1 || h[11] != 0 || h[0] != 0) finish(FAIL);  // num_buffers 1, no flags
      const uint8_t* f = h + NET_HDR;
      uint32_t flen = e.len - NET_HDR;
      if (flen >= 14 && f[12] == 0x88 && f[13] == 0xB5) {
        frames++;
        sum += net_byte_sum(f, flen);
        uint8_t* out = net_tx_slot(&slot);
        memcpy(out, f + 6, 6);
        memcpy(out + 6, f, 6);
        net_copy(out + 12, f + 12, flen - 12);
        if (flen > 14) out[14] = (uint8_t)~f[14];
        net_tx_post(slot, flen);
      } else if (flen >= 14 && f[12] == 0x88 && f[13] == 0xB6) {
        net_tx_drain(0);
        puts_raw("net echoed ");
        put_dec(frames);
        puts_raw(" frames sum ");
        put_dec(sum);
        puts_raw(" ignored ");
        put_dec(others);
        puts_raw("\n");
        finish(PASS);
      } else {
        others++;  // the host's own traffic (IPv6 and the like)
      }
      net_post_rx((uint16_t)e.id);
      reposted = 1;
    }
    if (reposted) net_kick(0);
    __asm__ volatile("pause");
  }
}

void guest_main(const uint8_t* bp, uint64_t cpu) {
  if (cpu != 0) test_smp_ap(cpu);
  if (bp) {
    g_cmdline = (const char*)(uint64_t)(*(const uint32_t*)(bp + BP_HDR_CMD_LINE_PTR));
  } else if (pvh_info) {
    g_cmdline = (const char*)((const struct hvm_start_info*)pvh_info)->cmdline_paddr;
  }
  outb(0x3F0, 123);  // boot timer: guest reached main
  char test[16] = "serial";
  cmdline_get(g_cmdline, "test=", test, sizeof test);
  if (str_eq_prefix(test, "serial")) {
    puts_raw("hello from the nanovisor test guest\n");
    finish(PASS);
  } else if (str_eq_prefix(test, "bootinfo")) {
    test_bootinfo(bp);
  } else if (str_eq_prefix(test, "reset")) {
    puts_raw("resetting through the i8042\n");
    outb(0x64, 0xFE);
    finish(FAIL);  // not reached
  } else if (str_eq_prefix(test, "smp")) {
    test_smp_bsp();
  } else if (str_eq_prefix(test, "blk")) {
    test_blk();
  } else if (str_eq_prefix(test, "vsock")) {
    test_vsock();
  } else if (str_eq_prefix(test, "net")) {
    test_net();
  } else if (str_eq_prefix(test, "rng")) {
    test_rng();
  } else if (str_eq_prefix(test, "api")) {
    test_api();
  } else if (str_eq_prefix(test, "idle")) {
    puts_raw("idle\n");  // then spins until the host stops the VM (make bench: VMM memory)
    for (;;) __asm__ volatile("pause");
  }
  puts_raw("unknown test\n");
  finish(FAIL);
}
