//! Which CPU this is: vendor, family and model, read from `/proc/cpuinfo` — what the raw-event
//! table is keyed by.

use serde::Serialize;

/// The CPU vendor, as `/proc/cpuinfo`'s `vendor_id` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Vendor {
    /// `GenuineIntel`.
    Intel,
    /// `AuthenticAMD` (and Hygon's `HygonGenuine`, a Zen derivative, is *not* folded in).
    Amd,
    /// Anything else, or no `vendor_id` line (e.g. arm64, which reports an implementer id).
    Other(String),
}

/// Vendor, family and model of the first CPU listed in `/proc/cpuinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CpuModel {
    /// The vendor.
    pub vendor: Vendor,
    /// The family (`cpu family`), 0 when not reported.
    pub family: u32,
    /// The model (`model`), 0 when not reported.
    pub model: u32,
    /// The marketing name (`model name`), empty when not reported.
    pub name: String,
}

impl CpuModel {
    /// A model nothing is known about (no raw events).
    pub fn unknown() -> Self {
        Self {
            vendor: Vendor::Other(String::new()),
            family: 0,
            model: 0,
            name: String::new(),
        }
    }

    /// Reads this machine's `/proc/cpuinfo`; [`CpuModel::unknown`] when it cannot be read.
    pub fn detect() -> Self {
        std::fs::read_to_string("/proc/cpuinfo")
            .map(|text| Self::parse_cpuinfo(&text))
            .unwrap_or_else(|_| Self::unknown())
    }

    /// Parses the first processor's block of a `/proc/cpuinfo` text. Missing or garbled fields
    /// stay at their [`CpuModel::unknown`] values.
    pub fn parse_cpuinfo(text: &str) -> Self {
        let mut cpu = Self::unknown();
        let mut seen_processor = false;
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "processor" if seen_processor => break,
                "processor" => seen_processor = true,
                "vendor_id" => {
                    cpu.vendor = match value {
                        "GenuineIntel" => Vendor::Intel,
                        "AuthenticAMD" => Vendor::Amd,
                        other => Vendor::Other(other.to_string()),
                    }
                }
                "cpu family" => cpu.family = value.parse().unwrap_or(0),
                "model" => cpu.model = value.parse().unwrap_or(0),
                "model name" => cpu.name = value.to_string(),
                _ => {}
            }
        }
        cpu
    }
}

impl std::fmt::Display for CpuModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let vendor = match &self.vendor {
            Vendor::Intel => "Intel",
            Vendor::Amd => "AMD",
            Vendor::Other(s) if s.is_empty() => "unknown vendor",
            Vendor::Other(s) => s,
        };
        write!(f, "{vendor} family {:#x} model {:#x}", self.family, self.model)?;
        if !self.name.is_empty() {
            write!(f, " ({})", self.name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_first_processor_only() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n\
                    model name\t: AMD EPYC\nflags\t\t: fpu\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n\
                    cpu family\t: 6\nmodel\t\t: 85\n";
        let cpu = CpuModel::parse_cpuinfo(text);
        assert_eq!(cpu.vendor, Vendor::Amd);
        assert_eq!((cpu.family, cpu.model), (0x19, 1));
        assert_eq!(cpu.name, "AMD EPYC");
    }

    #[test]
    fn garbage_and_arm_give_unknown_fields() {
        assert_eq!(CpuModel::parse_cpuinfo("no colon here\n"), CpuModel::unknown());
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n";
        let cpu = CpuModel::parse_cpuinfo(arm);
        assert_eq!(cpu.vendor, Vendor::Other(String::new()));
        let bad = "vendor_id : GenuineIntel\ncpu family : six\nmodel : 0x55\n";
        let cpu = CpuModel::parse_cpuinfo(bad);
        assert_eq!((cpu.vendor, cpu.family, cpu.model), (Vendor::Intel, 0, 0));
    }
}
