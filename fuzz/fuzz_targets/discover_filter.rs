//! `Filter`'s `FromStr` (`[vendor]:[device][:class]`, as `lspci -d`): any string.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uvfio::pci::discover::Filter;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match s.parse::<Filter>() {
        Ok(filter) => {
            // Only hex digits and one or two colons, and case does not matter.
            assert!(
                s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
                "{s:?}"
            );
            assert!((1..=2).contains(&s.matches(':').count()), "{s:?}");
            assert_eq!(s.to_ascii_uppercase().parse::<Filter>(), Ok(filter));
            assert_eq!(s.to_ascii_lowercase().parse::<Filter>(), Ok(filter));
            // The pieces the filter was built from give the same filter.
            let mut parts = s.split(':');
            let hex = |p: &str| u32::from_str_radix(p, 16).ok();
            let mut expect = Filter::any();
            if let Some(v) = parts.next().and_then(hex) {
                expect = expect.vendor(u16::try_from(v).unwrap());
            }
            if let Some(d) = parts.next().and_then(hex) {
                expect = expect.device(u16::try_from(d).unwrap());
            }
            if let Some(c) = parts.next().filter(|c| !c.is_empty()) {
                let code = hex(c).unwrap();
                expect = match c.len() {
                    2 => expect.class(code << 16, 0xff_0000),
                    4 => expect.class(code << 8, 0xff_ff00),
                    _ => expect.class(code, 0xff_ffff),
                };
            }
            assert_eq!(filter, expect, "{s:?}");
        }
        Err(e) => {
            assert_eq!(e.input(), s);
            assert!(!e.reason().is_empty());
        }
    }
});
