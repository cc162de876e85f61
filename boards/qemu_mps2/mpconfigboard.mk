# gbmeter's qemu_mps2 board: MicroPython's MPS2_AN385 board (Cortex-M3 under
# qemu-system-arm) with what a dev board has and it lacks. Built by
# host/gbmeter/board/qemu.py as
#   make -C <micropython>/ports/qemu BOARD=qemu_mps2 BOARD_DIR=<this folder> \
#        BUILD=<cache> FROZEN_MANIFEST=
# (make's working folder is ports/qemu, so the upstream board is found there).
include boards/MPS2_AN385/mpconfigboard.mk

# littlefs on the semihosted flash of board.c, mounted at / as on a dev board
MICROPY_VFS_LFS2 = 1

# No ROMFS partition: the flash filesystem is the board's only one.
MICROPY_HW_ROMFS_PART0_START =
MICROPY_HW_ROMFS_PART0_SIZE =

# The default heap when the qemu command line names none (board.c: "heap=");
# the goal is to serve in 64K of 32-bit heap.
MICROPY_HEAP_SIZE = 65536

# board.c brings main() (the board's boot: mount, boot.py, main.py, REPL); the
# port's own is renamed out of the way (and dropped by --gc-sections).
SRC_C += $(BOARD_DIR)/board.c
$(BUILD)/main.o: CFLAGS += -Dmain=qemu_port_main_unused
