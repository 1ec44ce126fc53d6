//! The IRQ-set builder's inputs: `IrqInfo::check_request`, which every `VFIO_DEVICE_SET_IRQS`
//! request passes before the crate builds its bytes, against a model of the kernel's
//! `vfio_set_irqs_validate_and_prepare` written here from `include/uapi/linux/vfio.h`.
//!
//! Input: the index's flags (byte) and vector count (u32; small counts are likelier through a
//! shift byte), the action, the start vector, the kind of data and its length.
#![no_main]

use std::os::fd::{AsFd, BorrowedFd};

use libfuzzer_sys::fuzz_target;
use uvfio::device::irq::{IrqAction, IrqData, IrqFlags, IrqIndex, IrqInfo, IrqRequestError};
use uvfio_fuzz::Input;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = IrqFlags::from_bits_retain(u32::from(input.u8()));
    let count = input.u32() >> (input.u8() % 33).min(31);
    let info = IrqInfo {
        index: IrqIndex(input.u8().into()),
        flags,
        count,
    };
    let action = match input.u8() % 3 {
        0 => IrqAction::Mask,
        1 => IrqAction::Unmask,
        _ => IrqAction::Trigger,
    };
    let start = input.u32() >> (input.u8() % 33).min(31);
    let kind = input.u8();
    let len = usize::from(input.u8());
    let bools: Vec<bool> = input.take(len).iter().map(|b| b & 1 == 1).collect();
    let stdin = std::io::stdin();
    let fd: BorrowedFd<'_> = stdin.as_fd();
    let fds: Vec<Option<BorrowedFd<'_>>> = bools.iter().map(|&b| b.then_some(fd)).collect();
    let request = match kind % 3 {
        0 => IrqData::None {
            count: input.u32() >> (kind / 3 % 33).min(31),
        },
        1 => IrqData::Bool(&bools),
        _ => IrqData::Eventfd(&fds),
    };

    // The model: a request selects `count` vectors from `start`; trigger with no data and no
    // vectors disables the index (from vector 0 only); otherwise at least one vector, all in
    // the index. Mask and unmask need a maskable index, eventfds an eventfd index.
    let n = request.len();
    let disable = action == IrqAction::Trigger && matches!(request, IrqData::None { count: 0 });
    let expect = if count == 0 {
        Err(IrqRequestError::NoVectors)
    } else if disable && start != 0 {
        Err(IrqRequestError::DisableNeedsStartZero)
    } else if !disable && (n == 0 || u64::from(start) + n > u64::from(count)) {
        Err(IrqRequestError::OutOfRange {
            start,
            count: n,
            have: count,
        })
    } else if action != IrqAction::Trigger && !flags.contains(IrqFlags::MASKABLE) {
        Err(IrqRequestError::NotMaskable)
    } else if matches!(request, IrqData::Eventfd(_)) && !flags.contains(IrqFlags::EVENTFD) {
        Err(IrqRequestError::NoEventfds)
    } else {
        Ok(())
    };
    let got = info.check_request(action, start, &request);
    assert_eq!(got, expect, "{info:?} {action:?} start {start} {request:?}");
    if let Err(e) = got {
        assert!(!e.to_string().is_empty());
    }
    assert_eq!(request.is_empty(), n == 0);
});
