/* SPDX-License-Identifier: Apache-2.0 */
/* Entry points of the test guests: the Linux 64-bit boot protocol entry (_start, long mode,
   RSI = boot_params) used by nanovisor-vmm, and a PVH entry (32-bit protected mode, EBX =
   hvm_start_info) that builds its own identity map and enters long mode. Every vCPU may enter
   at _start; each picks its stack by its initial APIC id (CPUID leaf 1). No IDT anywhere. */
#define STACK_SIZE 16384
#define MAX_CPUS 8

  .section .note.Xen, "a"
  .balign 4
  .long 4            /* namesz */
  .long 4            /* descsz */
  .long 18           /* XEN_ELFNOTE_PHYS32_ENTRY */
  .asciz "Xen"
  .long pvh_start

  .section .text.start, "ax"
  .code64
  .globl _start
_start:
  cli
  mov %rsi, %r12               /* boot_params (0 when entered through PVH) */
  mov $1, %eax
  cpuid
  shr $24, %ebx                /* initial APIC id */
  and $(MAX_CPUS - 1), %ebx
  mov %rbx, %r13
  lea stacks(%rip), %rsp
  mov %rbx, %rax
  inc %rax
  imul $STACK_SIZE, %rax
  add %rax, %rsp
  mov %r12, %rdi
  mov %r13, %rsi
  call guest_main
1:
  hlt
  jmp 1b

  .code32
pvh_start:
  cli
  mov %ebx, pvh_info
  /* PML4[0] -> PDPT, PDPT[0..3] -> 4 PDs, 2 MiB pages: identity map of 4 GiB. */
  lea pvh_pdpt, %eax
  or $3, %eax
  mov %eax, pvh_pml4
  xor %ecx, %ecx
2:
  mov %ecx, %eax
  shl $12, %eax
  add $pvh_pd, %eax
  or $3, %eax
  mov %eax, pvh_pdpt(,%ecx,8)
  inc %ecx
  cmp $4, %ecx
  jne 2b
  xor %ecx, %ecx
3:
  mov %ecx, %eax
  shl $21, %eax
  or $0x83, %eax
  mov %eax, pvh_pd(,%ecx,8)
  mov %ecx, %eax
  shr $11, %eax
  mov %eax, pvh_pd+4(,%ecx,8)
  inc %ecx
  cmp $2048, %ecx
  jne 3b
  mov %cr4, %eax
  or $0x20, %eax                /* PAE */
  mov %eax, %cr4
  lea pvh_pml4, %eax
  mov %eax, %cr3
  mov $0xC0000080, %ecx         /* EFER.LME */
  rdmsr
  or $0x100, %eax
  wrmsr
  mov %cr0, %eax
  or $0x80000001, %eax          /* PG | PE */
  mov %eax, %cr0
  lgdt pvh_gdt_ptr
  ljmp $0x08, $pvh_long
  .code64
pvh_long:
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  xor %esi, %esi
  jmp _start

  .section .rodata
  .balign 8
pvh_gdt:
  .quad 0
  .quad 0x00AF9B000000FFFF      /* 64-bit code */
  .quad 0x00CF93000000FFFF      /* data */
pvh_gdt_ptr:
  .word 23
  .long pvh_gdt

  .section .bss
  .balign 4096
pvh_pml4: .skip 4096
pvh_pdpt: .skip 4096
pvh_pd: .skip 4096 * 4
  .globl pvh_info
  .balign 8
pvh_info: .skip 8
  .balign 16
stacks: .skip STACK_SIZE * (MAX_CPUS + 1)
