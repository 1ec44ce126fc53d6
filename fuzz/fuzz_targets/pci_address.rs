//! `PciAddress`'s `FromStr` and `Display`: any string; and any address through its text.
//!
//! Input: a leading byte 0 makes the rest bytes of an address (domain, bus, device, function);
//! anything else, the rest is the string to parse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uvfio::pci::PciAddress;
use uvfio_fuzz::Input;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    if input.u8() == 0 {
        let (domain, bus, device, function) = (input.u32(), input.u8(), input.u8(), input.u8());
        match PciAddress::new(domain, bus, device, function) {
            Some(a) => {
                let text = a.to_string();
                assert_eq!(text.parse::<PciAddress>(), Ok(a), "{text}");
                assert_eq!(
                    (a.domain(), a.bus(), a.device(), a.function()),
                    (domain, bus, device, function)
                );
            }
            None => assert!(device > 31 || function > 7),
        }
        return;
    }
    let Ok(s) = std::str::from_utf8(input.rest()) else {
        return;
    };
    match s.parse::<PciAddress>() {
        Ok(a) => {
            // parse(display(x)) == x, and the text was the display up to case and the domain's
            // leading zeros (or the domain left out).
            let text = a.to_string();
            assert_eq!(text.parse::<PciAddress>(), Ok(a));
            assert!(a.device() <= 31 && a.function() <= 7);
            assert!(s.is_ascii() && s.len() <= "ffffffff:ff:1f.7".len());
            let lower = s.to_ascii_lowercase();
            let (domain, rest) = lower.split_at(lower.len() - "bb:dd.f".len());
            assert_eq!(
                rest,
                &text[text.len() - "bb:dd.f".len()..],
                "{s:?} parsed as {text}"
            );
            match domain.strip_suffix(':') {
                Some(d) => assert_eq!(u32::from_str_radix(d, 16), Ok(a.domain())),
                None => assert!(domain.is_empty() && a.domain() == 0),
            }
        }
        Err(e) => {
            assert_eq!(e.input(), s);
            assert!(!e.reason().is_empty());
        }
    }
});
