// A bare-metal start for the Cortex-M4 test images run under qemu-system-arm on an MPS2 AN386
// board (the linker script beside this file): the vector table, a reset handler that copies .data,
// clears .bss, turns the FPU on (the images are hard-float) and runs the static constructors, then
// main. Output and the exit status go through Arm semihosting (QEMU's -semihosting-config): main
// returning 0 ends QEMU with status 0, anything else (or a fault) with status 1.
#include <cstdint>

extern "C" {
extern std::uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern std::uint32_t __stack_top[];
using ctnn_init_fn = void (*)();
extern ctnn_init_fn __init_array_start[], __init_array_end[];
int main();

namespace {
int semihost(int operation, const void* argument) {
  register int r0 asm("r0") = operation;
  register const void* r1 asm("r1") = argument;
  asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}
}  // namespace

// Writes a NUL-terminated string to QEMU's standard output (SYS_WRITE0).
void ctnn_m4_write(const char* text) { semihost(0x04, text); }

// SYS_EXIT with ADP_Stopped_ApplicationExit (QEMU exits 0) or RunTimeErrorUnknown (exits 1).
[[noreturn]] void ctnn_m4_exit(bool ok) {
  semihost(0x18, reinterpret_cast<const void*>(ok ? 0x20026u : 0x20023u));
  for (;;) {
  }
}

[[noreturn]] void ctnn_m4_fault() {
  ctnn_m4_write("Cortex-M4 image: a fault exception (hard, memory, bus or usage fault).\n");
  ctnn_m4_exit(false);
}

[[noreturn]] void ctnn_m4_reset() {
  for (std::uint32_t *from = __data_load, *to = __data_start; to < __data_end;) *to++ = *from++;
  for (std::uint32_t* to = __bss_start; to < __bss_end;) *to++ = 0;
  // CPACR: full access to coprocessors 10 and 11 (the FPU) before any floating-point instruction.
  *reinterpret_cast<volatile std::uint32_t*>(0xE000ED88) |= 0xFu << 20;
  asm volatile("dsb\n\tisb" ::: "memory");
  for (ctnn_init_fn* f = __init_array_start; f < __init_array_end; ++f) (*f)();
  ctnn_m4_exit(main() == 0);
}

// Initial stack pointer, reset, NMI, hard fault, memory management, bus and usage faults.
__attribute__((section(".vectors"), used)) const void* const ctnn_m4_vectors[7] = {
    __stack_top,
    reinterpret_cast<const void*>(ctnn_m4_reset),
    reinterpret_cast<const void*>(ctnn_m4_fault),
    reinterpret_cast<const void*>(ctnn_m4_fault),
    reinterpret_cast<const void*>(ctnn_m4_fault),
    reinterpret_cast<const void*>(ctnn_m4_fault),
    reinterpret_cast<const void*>(ctnn_m4_fault)};
}
