// gbmeter's board for MicroPython's qemu port on the MPS2-AN385 (Cortex-M3): what a
// dev board's port gives and the bare qemu port does not.
//
//  - main(): the usual board start (as rp2, stm32 and esp32 do it): mount the flash
//    filesystem, run boot.py and main.py after a power-on or a soft reset in the
//    friendly REPL (not in the raw REPL, so mpremote's soft reset stops short of
//    the firmware), then the REPL. The port's own main() is renamed out of the way
//    by mpconfigboard.mk.
//  - The heap: the size comes from the qemu command line (semihosting argument
//    "heap=65536", or with a K suffix), MICROPY_HEAP_SIZE (64K) without one, so one
//    image serves every heap the bench tries; the C stack is the port's 10K.
//  - Flash: a block device on a host file reached through ARM semihosting (argument
//    "flash=NAME", default flash.bin, relative to qemu's working folder), 4K erase
//    blocks that an erase sets to 0xFF as NOR flash does, with littlefs (VfsLfs2) on
//    it mounted at / (made on first boot, as a new board formats its flash). Every
//    block write reaches the host file before writeblocks returns, so killing qemu
//    is a power cut: what littlefs had committed is there at the next start.
//  - mp_hal_time_ns() for littlefs' file times: the host's clock (semihosting
//    SYS_TIME, whole seconds). The meter keeps its own clock, set by diagnostics.
//
// No os.urandom: the MPS2 has no entropy source (the port's mp_hal_get_random is a
// fixed LCG and is not offered as one); board.json says "entropy": false, and the
// firmware refuses to make key pairs without one (README "Real boards").

#include <string.h>

#include "py/compile.h"
#include "py/gc.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/runtime.h"
#include "py/stackctrl.h"
#include "extmod/vfs.h"
#include "extmod/vfs_lfs.h"
#include "shared/runtime/pyexec.h"

// ARM semihosting operations (ARM's "Semihosting for AArch32 and AArch64").
#define SH_OPEN (0x01)
#define SH_CLOSE (0x02)
#define SH_WRITE (0x05)
#define SH_READ (0x06)
#define SH_SEEK (0x0a)
#define SH_FLEN (0x0c)
#define SH_TIME (0x11)
#define SH_GET_CMDLINE (0x15)
#define SH_MODE_RB_PLUS (3)  // "r+b": an existing file
#define SH_MODE_WB_PLUS (7)  // "w+b": a new, empty one

#define FLASH_BLOCK (4096)
#define FLASH_BLOCKS_NEW (256)  // 1 MiB for a new flash file
#define HEAP_MAX (1024 * 1024)  // the most a command line may ask for

static uint32_t heap_area[HEAP_MAX / sizeof(uint32_t)];
static char cmdline[160];

static uint32_t sh_call(uint32_t op, const void *arg) {
    register uint32_t r0 __asm__ ("r0") = op;
    register const void *r1 __asm__ ("r1") = arg;
    __asm__ __volatile__ ("bkpt 0xAB" : "+r" (r0) : "r" (r1) : "memory");
    return r0;
}

// The value of "name=" among the command line's words, or NULL.
static const char *arg_value(const char *name, size_t *len) {
    size_t n = strlen(name);
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ') {
            ++p;
        }
        const char *w = p;
        while (*p && *p != ' ') {
            ++p;
        }
        if ((size_t)(p - w) > n && memcmp(w, name, n) == 0 && w[n] == '=') {
            *len = p - w - n - 1;
            return w + n + 1;
        }
    }
    return NULL;
}

static size_t heap_size(void) {
    size_t len;
    const char *v = arg_value("heap", &len);
    if (v == NULL) {
        return MICROPY_HEAP_SIZE;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        if (v[i] >= '0' && v[i] <= '9') {
            n = n * 10 + (v[i] - '0');
        } else if ((v[i] == 'K' || v[i] == 'k') && i == len - 1) {
            n *= 1024;
        } else {
            return MICROPY_HEAP_SIZE;
        }
    }
    if (n < 8192 || n > HEAP_MAX) {
        return MICROPY_HEAP_SIZE;
    }
    return n & ~(size_t)7;
}

// --- the flash: a host file through semihosting -------------------------------------

static int flash_fd = -1;
static uint32_t flash_blocks;

static int sh_open(const char *name, size_t len, uint32_t mode) {
    struct { const char *name; uint32_t mode; uint32_t len; } a = { name, mode, len };
    return (int)sh_call(SH_OPEN, &a);
}

static int sh_seek(uint32_t pos) {
    struct { uint32_t fd; uint32_t pos; } a = { flash_fd, pos };
    return (int)sh_call(SH_SEEK, &a);
}

// Both return the number of bytes NOT transferred (0: all of them).
static uint32_t sh_write(const void *buf, uint32_t len) {
    struct { uint32_t fd; const void *buf; uint32_t len; } a = { flash_fd, buf, len };
    return sh_call(SH_WRITE, &a);
}

static uint32_t sh_read(void *buf, uint32_t len) {
    struct { uint32_t fd; void *buf; uint32_t len; } a = { flash_fd, buf, len };
    return sh_call(SH_READ, &a);
}

static void flash_erase(uint32_t block) {
    static const uint8_t ones[256] = {
        #define X16 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, \
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
        X16, X16, X16, X16, X16, X16, X16, X16, X16, X16, X16, X16, X16, X16, X16, X16
        #undef X16
    };
    if (sh_seek(block * FLASH_BLOCK) != 0) {
        mp_raise_OSError(MP_EIO);
    }
    for (int i = 0; i < FLASH_BLOCK / 256; ++i) {
        if (sh_write(ones, 256)) {
            mp_raise_OSError(MP_EIO);
        }
    }
}

// Opens (or makes) the flash file once per power-on; False when there is none.
static bool flash_open(void) {
    if (flash_fd >= 0) {
        return true;
    }
    size_t len;
    const char *name = arg_value("flash", &len);
    char path[96];
    if (name == NULL) {
        name = "flash.bin";
        len = 9;
    }
    if (len >= sizeof(path)) {
        return false;
    }
    memcpy(path, name, len);
    path[len] = 0;
    flash_fd = sh_open(path, len, SH_MODE_RB_PLUS);
    if (flash_fd >= 0) {
        struct { uint32_t fd; } a = { flash_fd };
        flash_blocks = sh_call(SH_FLEN, &a) / FLASH_BLOCK;
        if (flash_blocks >= 16) {
            return true;
        }
        struct { uint32_t fd; } c = { flash_fd };
        sh_call(SH_CLOSE, &c);
    }
    // A new board: a flash file of erased blocks.
    flash_fd = sh_open(path, len, SH_MODE_WB_PLUS);
    if (flash_fd < 0) {
        return false;
    }
    flash_blocks = FLASH_BLOCKS_NEW;
    for (uint32_t b = 0; b < flash_blocks; ++b) {
        flash_erase(b);
    }
    return true;
}

typedef struct _flash_obj_t {
    mp_obj_base_t base;
} flash_obj_t;

static void flash_span(mp_obj_t block, mp_obj_t buf, size_t n_args, const mp_obj_t *args,
    mp_buffer_info_t *info, mp_uint_t access) {
    mp_get_buffer_raise(buf, info, access);
    mp_uint_t off = n_args > 3 ? mp_obj_get_int(args[3]) : 0;
    mp_uint_t pos = mp_obj_get_int(block) * FLASH_BLOCK + off;
    if (pos + info->len > flash_blocks * FLASH_BLOCK || sh_seek(pos) != 0) {
        mp_raise_OSError(MP_EIO);
    }
}

static mp_obj_t flash_readblocks(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t info;
    flash_span(args[1], args[2], n_args, args, &info, MP_BUFFER_WRITE);
    if (sh_read(info.buf, info.len)) {
        mp_raise_OSError(MP_EIO);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(flash_readblocks_obj, 3, 4, flash_readblocks);

static mp_obj_t flash_writeblocks(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t info;
    if (n_args == 3) {
        // the simple interface: whole blocks, erased first
        mp_get_buffer_raise(args[2], &info, MP_BUFFER_READ);
        for (mp_uint_t b = 0; b * FLASH_BLOCK < info.len; ++b) {
            flash_erase(mp_obj_get_int(args[1]) + b);
        }
    }
    flash_span(args[1], args[2], n_args, args, &info, MP_BUFFER_READ);
    if (sh_write(info.buf, info.len)) {
        mp_raise_OSError(MP_EIO);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(flash_writeblocks_obj, 3, 4, flash_writeblocks);

static mp_obj_t flash_ioctl(mp_obj_t self, mp_obj_t op_in, mp_obj_t arg) {
    switch (mp_obj_get_int(op_in)) {
        case MP_BLOCKDEV_IOCTL_INIT:
        case MP_BLOCKDEV_IOCTL_DEINIT:
        case MP_BLOCKDEV_IOCTL_SYNC:
            return MP_OBJ_NEW_SMALL_INT(0);  // nothing is held back: writes reach the file
        case MP_BLOCKDEV_IOCTL_BLOCK_COUNT:
            return MP_OBJ_NEW_SMALL_INT(flash_blocks);
        case MP_BLOCKDEV_IOCTL_BLOCK_SIZE:
            return MP_OBJ_NEW_SMALL_INT(FLASH_BLOCK);
        case MP_BLOCKDEV_IOCTL_BLOCK_ERASE: {
            mp_uint_t b = mp_obj_get_int(arg);
            if (b >= flash_blocks) {
                return MP_OBJ_NEW_SMALL_INT(-MP_EIO);
            }
            flash_erase(b);
            return MP_OBJ_NEW_SMALL_INT(0);
        }
        default:
            return mp_const_none;
    }
}
static MP_DEFINE_CONST_FUN_OBJ_3(flash_ioctl_obj, flash_ioctl);

static const mp_rom_map_elem_t flash_locals_table[] = {
    { MP_ROM_QSTR(MP_QSTR_readblocks), MP_ROM_PTR(&flash_readblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_writeblocks), MP_ROM_PTR(&flash_writeblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&flash_ioctl_obj) },
};
static MP_DEFINE_CONST_DICT(flash_locals, flash_locals_table);

static MP_DEFINE_CONST_OBJ_TYPE(flash_type, MP_QSTR_Flash, MP_TYPE_FLAG_NONE,
    locals_dict, &flash_locals);

static const flash_obj_t flash_obj = { { &flash_type } };

// Mount littlefs on the flash at /, making it first on a new (or unreadable) flash.
static void mount_flash(void) {
    nlr_buf_t nlr;
    bool opened = false;
    if (nlr_push(&nlr) == 0) {
        opened = flash_open();
        nlr_pop();
    }
    if (!opened) {
        mp_printf(&mp_plat_print, "no flash: semihosting could not open the flash file\n");
        return;
    }
    mp_obj_t bdev = MP_OBJ_FROM_PTR(&flash_obj);
    mp_obj_t lfs2 = MP_OBJ_FROM_PTR(&mp_type_vfs_lfs2);
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (nlr_push(&nlr) == 0) {
            if (attempt) {
                mp_call_function_1(mp_load_attr(lfs2, MP_QSTR_mkfs), bdev);
            }
            mp_obj_t args[2] = { mp_call_function_1(lfs2, bdev), MP_OBJ_NEW_QSTR(MP_QSTR__slash_) };
            mp_vfs_mount(2, args, (mp_map_t *)&mp_const_empty_map);
            mp_vfs_chdir(args[1]);
            nlr_pop();
            return;
        }
    }
    mp_printf(&mp_plat_print, "no flash: littlefs could not be made on it\n");
}

uint64_t mp_hal_time_ns(void) {
    return (uint64_t)sh_call(SH_TIME, NULL) * 1000000000ULL;
}

int main(int argc, char **argv) {
    struct { char *buf; uint32_t len; } a = { cmdline, sizeof(cmdline) - 1 };
    if (sh_call(SH_GET_CMDLINE, &a) != 0) {
        a.len = 0;
    }
    cmdline[a.len] = 0;
    mp_cstack_init_with_sp_here(MICROPY_STACK_SIZE);
    gc_init(heap_area, (char *)heap_area + heap_size());

    for (;;) {
        mp_init();
        mount_flash();
        int ret = 0;
        if (pyexec_mode_kind == PYEXEC_MODE_FRIENDLY_REPL) {
            ret = pyexec_file_if_exists("boot.py");
            if (!(ret & PYEXEC_FORCED_EXIT)) {
                ret = pyexec_file_if_exists("main.py");
            }
        }
        while (!(ret & PYEXEC_FORCED_EXIT)) {
            if (pyexec_mode_kind == PYEXEC_MODE_RAW_REPL) {
                ret = pyexec_raw_repl() ? PYEXEC_FORCED_EXIT : 0;
            } else {
                ret = pyexec_friendly_repl() ? PYEXEC_FORCED_EXIT : 0;
            }
        }
        mp_printf(&mp_plat_print, "MPY: soft reboot\n");
        gc_sweep_all();
        mp_deinit();
    }
}
