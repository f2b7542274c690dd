//! `/proc/cpuinfo`, for kernels whose sysfs has no `cpu*/topology/` (before 2.6.16, or
//! stripped-down containers): each record's `processor`, `physical id` and `core id`.
//!
//! Records are separated by blank lines. Only x86 writes `physical id`/`core id`; other
//! architectures give just `processor`, which still tells which CPUs exist.

/// One `processor` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuinfoRecord {
    pub processor: u32,
    pub physical_id: Option<u32>,
    pub core_id: Option<u32>,
}

/// Parses cpuinfo text. Returns the records and the number of records skipped because their
/// `processor` line was missing or not a number.
pub(crate) fn parse_cpuinfo(text: &str) -> (Vec<CpuinfoRecord>, usize) {
    let mut records = Vec::new();
    let mut skipped = 0;
    let mut current: Option<(Option<u32>, Option<u32>, Option<u32>)> = None;
    let mut finish = |cur: &mut Option<(Option<u32>, Option<u32>, Option<u32>)>| {
        if let Some((processor, physical_id, core_id)) = cur.take() {
            match processor {
                Some(processor) => records.push(CpuinfoRecord {
                    processor,
                    physical_id,
                    core_id,
                }),
                None => skipped += 1,
            }
        }
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            if line.trim().is_empty() {
                finish(&mut current);
            }
            continue;
        };
        let key = key.trim();
        let value = value.trim().parse::<u32>().ok();
        match key {
            "processor" => {
                // A new `processor` line also starts a record when blank lines are missing.
                finish(&mut current);
                current = Some((value, None, None));
                if value.is_none() {
                    // Keep the record open so its other lines are consumed, then skip it.
                    current = Some((None, None, None));
                }
            }
            "physical id" => {
                if let Some(cur) = current.as_mut() {
                    cur.1 = value;
                }
            }
            "core id" => {
                if let Some(cur) = current.as_mut() {
                    cur.2 = value;
                }
            }
            _ => {}
        }
    }
    finish(&mut current);
    (records, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_records() {
        let text = "processor\t: 0\nphysical id\t: 1\ncore id\t\t: 3\nflags : a b\n\n\
                    processor\t: 1\nphysical id\t: 0\ncore id\t\t: 0\n";
        let (r, skipped) = parse_cpuinfo(text);
        assert_eq!(skipped, 0);
        assert_eq!(
            r,
            vec![
                CpuinfoRecord {
                    processor: 0,
                    physical_id: Some(1),
                    core_id: Some(3)
                },
                CpuinfoRecord {
                    processor: 1,
                    physical_id: Some(0),
                    core_id: Some(0)
                },
            ]
        );
    }

    #[test]
    fn arm_and_garbage() {
        let text = "processor : 0\nBogoMIPS : 100\n\nprocessor : x\ncore id : 1\n\nprocessor: 2\n\
                    random line\n::::\nphysical id: -4\n";
        let (r, skipped) = parse_cpuinfo(text);
        assert_eq!(skipped, 1);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1],
            CpuinfoRecord {
                processor: 2,
                physical_id: None,
                core_id: None
            }
        );
        assert_eq!(parse_cpuinfo(""), (vec![], 0));
    }
}
