//! PCI addresses in the kernel's `domain:bus:device.function` notation.

use std::fmt;
use std::str::FromStr;

/// The address of a PCI function: `domain:bus:device.function`, as sysfs names it
/// (`/sys/bus/pci/devices/0000:03:00.0`).
///
/// The device number is at most 31 and the function number at most 7; the constructors enforce
/// it, so every `PciAddress` is a valid one. The domain is 16 bits on most hosts, but sysfs prints
/// it with at least four hex digits and some hosts (VMD, Hyper-V) use more, so it is a `u32`.
///
/// Addresses order by domain, then bus, device and function, which is `lspci`'s order.
///
/// # Examples
///
/// ```
/// use uvfio::pci::PciAddress;
///
/// let addr: PciAddress = "0000:03:00.1".parse()?;
/// assert_eq!((addr.domain(), addr.bus(), addr.device(), addr.function()), (0, 3, 0, 1));
/// assert_eq!(addr.to_string(), "0000:03:00.1");
/// assert_eq!("03:00.1".parse::<PciAddress>()?, addr);
/// # Ok::<(), uvfio::pci::address::ParsePciAddressError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    domain: u32,
    bus: u8,
    device: u8,
    function: u8,
}

impl PciAddress {
    /// The highest device number.
    pub const MAX_DEVICE: u8 = 31;
    /// The highest function number.
    pub const MAX_FUNCTION: u8 = 7;

    /// The address `domain:bus:device.function`, or `None` if `device > 31` or
    /// `function > 7`.
    pub const fn new(domain: u32, bus: u8, device: u8, function: u8) -> Option<Self> {
        if device > Self::MAX_DEVICE || function > Self::MAX_FUNCTION {
            None
        } else {
            Some(PciAddress {
                domain,
                bus,
                device,
                function,
            })
        }
    }

    /// The PCI domain (segment).
    pub const fn domain(&self) -> u32 {
        self.domain
    }

    /// The bus number.
    pub const fn bus(&self) -> u8 {
        self.bus
    }

    /// The device (slot) number, 0 to 31.
    pub const fn device(&self) -> u8 {
        self.device
    }

    /// The function number, 0 to 7.
    pub const fn function(&self) -> u8 {
        self.function
    }

    /// The device and function packed as in config cycles and ACPI: `device << 3 | function`.
    pub const fn devfn(&self) -> u8 {
        self.device << 3 | self.function
    }
}

impl fmt::Display for PciAddress {
    /// Formats as sysfs does: `0000:03:00.0`, lowercase hex, the domain with at least four
    /// digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// Why a string is not a PCI address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid PCI address {input:?}: {reason}")]
pub struct ParsePciAddressError {
    input: String,
    reason: &'static str,
}

impl ParsePciAddressError {
    fn new(input: &str, reason: &'static str) -> Self {
        ParsePciAddressError {
            input: input.to_owned(),
            reason,
        }
    }

    /// The string that failed to parse.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

/// Parses `digits` as hex with between `min` and `max` digits; no sign, no `0x`, no spaces.
fn hex(digits: &str, min: usize, max: usize) -> Option<u32> {
    if digits.len() < min || digits.len() > max || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

impl FromStr for PciAddress {
    type Err = ParsePciAddressError;

    /// Parses `DDDD:BB:DD.F` (a domain of 4 to 8 hex digits) or `BB:DD.F` (domain 0). The bus and
    /// device take exactly two hex digits and the function one digit, 0 to 7. Hex digits may be
    /// upper or lower case; nothing else (spaces, signs, `0x`) is accepted.
    ///
    /// # Errors
    ///
    /// [`ParsePciAddressError`], naming the input and what is wrong with it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParsePciAddressError::new(s, reason);
        let (rest, function) = s
            .rsplit_once('.')
            .ok_or_else(|| err("expected `[domain:]bus:device.function`"))?;
        let mut parts = rest.split(':').rev();
        let (device, bus) = match (parts.next(), parts.next()) {
            (Some(device), Some(bus)) => (device, bus),
            _ => return Err(err("expected `[domain:]bus:device.function`")),
        };
        let domain = match (parts.next(), parts.next()) {
            (None, _) => 0,
            (Some(domain), None) => {
                hex(domain, 4, 8).ok_or_else(|| err("the domain must be 4 to 8 hex digits"))?
            }
            (Some(_), Some(_)) => return Err(err("too many `:`-separated fields")),
        };
        let bus = hex(bus, 2, 2).ok_or_else(|| err("the bus must be 2 hex digits"))?;
        let device = hex(device, 2, 2).ok_or_else(|| err("the device must be 2 hex digits"))?;
        let function =
            hex(function, 1, 1).ok_or_else(|| err("the function must be 1 digit, 0 to 7"))?;
        let small = |v: u32| u8::try_from(v).unwrap_or(u8::MAX);
        PciAddress::new(domain, small(bus), small(device), small(function)).ok_or_else(|| {
            if small(device) > PciAddress::MAX_DEVICE {
                err("the device must be 00 to 1f")
            } else {
                err("the function must be 1 digit, 0 to 7")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addr(domain: u32, bus: u8, device: u8, function: u8) -> PciAddress {
        PciAddress::new(domain, bus, device, function).unwrap()
    }

    #[test]
    fn parses_long_and_short_forms() {
        assert_eq!("0000:03:00.0".parse(), Ok(addr(0, 3, 0, 0)));
        assert_eq!("03:00.0".parse(), Ok(addr(0, 3, 0, 0)));
        assert_eq!("ABCD:Ef:1F.7".parse(), Ok(addr(0xabcd, 0xef, 0x1f, 7)));
        assert_eq!("10000:00:02.0".parse(), Ok(addr(0x1_0000, 0, 2, 0)));
        assert_eq!("ffffffff:ff:1f.7".parse(), Ok(addr(u32::MAX, 0xff, 31, 7)));
    }

    #[test]
    fn displays_like_sysfs() {
        assert_eq!(addr(0, 3, 0, 0).to_string(), "0000:03:00.0");
        assert_eq!(addr(0xabcd, 0xef, 0x1f, 7).to_string(), "abcd:ef:1f.7");
        assert_eq!(addr(0x1_0000, 0, 2, 0).to_string(), "10000:00:02.0");
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        let cases = [
            ("", "expected `[domain:]bus:device.function`"),
            ("0000:03:00", "expected `[domain:]bus:device.function`"),
            ("03.0", "expected `[domain:]bus:device.function`"),
            ("0:0000:03:00.0", "too many `:`-separated fields"),
            ("000:03:00.0", "the domain must be 4 to 8 hex digits"),
            ("000000000:03:00.0", "the domain must be 4 to 8 hex digits"),
            ("+000:03:00.0", "the domain must be 4 to 8 hex digits"),
            ("0000:3:00.0", "the bus must be 2 hex digits"),
            ("0000:+3:00.0", "the bus must be 2 hex digits"),
            ("0000:003:00.0", "the bus must be 2 hex digits"),
            ("0000:03:0.0", "the device must be 2 hex digits"),
            ("0000:03:0x.0", "the device must be 2 hex digits"),
            ("0000:03:20.0", "the device must be 00 to 1f"),
            ("0000:03:00.8", "the function must be 1 digit, 0 to 7"),
            ("0000:03:00.f", "the function must be 1 digit, 0 to 7"),
            ("0000:03:00.00", "the function must be 1 digit, 0 to 7"),
            ("0000:03:00.", "the function must be 1 digit, 0 to 7"),
            (" 0000:03:00.0", "the domain must be 4 to 8 hex digits"),
            ("0000:03:00.0\n", "the function must be 1 digit, 0 to 7"),
            ("0000:03:00.0.0", "the device must be 2 hex digits"),
            ("0000:03:é0.0", "the device must be 2 hex digits"),
        ];
        for (input, reason) in cases {
            let e = input.parse::<PciAddress>().unwrap_err();
            assert_eq!((e.input(), e.reason()), (input, reason), "{input:?}");
        }
        let e = "0000:03:20.0".parse::<PciAddress>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid PCI address \"0000:03:20.0\": the device must be 00 to 1f"
        );
    }

    #[test]
    fn new_enforces_the_ranges() {
        assert!(PciAddress::new(0, 0, 32, 0).is_none());
        assert!(PciAddress::new(0, 0, 0, 8).is_none());
        assert_eq!(addr(0, 0, 0x1f, 7).devfn(), 0xff);
        assert_eq!(addr(0, 0, 3, 1).devfn(), 0x19);
    }

    #[test]
    fn orders_by_domain_bus_device_function() {
        let mut v = [
            addr(1, 0, 0, 0),
            addr(0, 1, 0, 0),
            addr(0, 0, 1, 0),
            addr(0, 0, 0, 1),
            addr(0, 0, 0, 0),
        ];
        v.sort();
        let s: Vec<_> = v.iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            [
                "0000:00:00.0",
                "0000:00:00.1",
                "0000:00:01.0",
                "0000:01:00.0",
                "0001:00:00.0"
            ]
        );
    }

    fn any_address() -> impl Strategy<Value = PciAddress> {
        (any::<u32>(), any::<u8>(), 0u8..=31, 0u8..=7).prop_map(|(d, b, dev, f)| addr(d, b, dev, f))
    }

    proptest! {
        #[test]
        fn display_round_trips(a in any_address()) {
            let s = a.to_string();
            prop_assert_eq!(s.parse::<PciAddress>(), Ok(a));
            prop_assert_eq!(s.to_uppercase().parse::<PciAddress>(), Ok(a));
            if a.domain() == 0 {
                prop_assert_eq!(s[5..].parse::<PciAddress>(), Ok(a));
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,20}") {
            if let Ok(a) = s.parse::<PciAddress>() {
                // Whatever parses prints back to an equivalent address.
                prop_assert_eq!(a.to_string().parse::<PciAddress>(), Ok(a));
            }
        }

        #[test]
        fn near_misses_are_rejected(
            a in any_address(),
            junk in "[ g+x\\-:.]",
            at in any::<prop::sample::Index>(),
        ) {
            let s = a.to_string();
            let i = at.index(s.len() + 1);
            let mutated = format!("{}{}{}", &s[..i], junk, &s[i..]);
            prop_assert!(mutated.parse::<PciAddress>().is_err(), "{:?} parsed", mutated);
        }

        #[test]
        fn out_of_range_fields_are_rejected(dev in 32u8.., f in 8u8..=15) {
            let bad_device = format!("0000:00:{dev:02x}.0");
            let bad_function = format!("0000:00:00.{f:x}");
            prop_assert!(bad_device.parse::<PciAddress>().is_err());
            prop_assert!(bad_function.parse::<PciAddress>().is_err());
        }
    }
}
