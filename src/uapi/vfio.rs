//! `<linux/vfio.h>`: constants, structs and ioctl numbers under the kernel's names.
