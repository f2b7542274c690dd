//! Counting this process with `perf_event_open`, on whatever machine the test runs on.
//!
//! One `#[test]` runs the cases in order (they open counters on the test's own thread, and the
//! page-fault case depends on nothing else faulting meanwhile). Hardware expectations depend on
//! the machine: without a core PMU (CI, KVM guests) every hardware event must come back
//! `Unavailable::NoPmu`; with one, each must count or name a reason.

use locus::counters::pmu::core_pmu_present;
use locus::counters::{
    CounterOptions, CounterSet, Event, MAX_GROUP_EVENTS, Reading, Target, Unavailable, measure,
};

const PAGE: usize = 4096;

#[test]
fn counters_on_this_machine() {
    hardware_events_count_or_say_why();
    page_faults_rise_when_fresh_pages_are_touched();
    task_clock_counts_busy_work();
    mixed_sets_split_into_groups_and_keep_software_events();
    other_targets_thread_and_cpu();
}

fn hardware_events_count_or_say_why() {
    let hardware: Vec<Event> = Event::ALL.into_iter().filter(|e| !e.is_software()).collect();
    let (_, report) =
        measure(&hardware, || std::hint::black_box((0..100_000u64).sum::<u64>())).expect("measure");
    let pmu = core_pmu_present();
    println!("core PMU present: {pmu}");
    for r in &report.readings {
        println!("  {:<22} {:?}", r.event.name(), r.reading);
        match (&r.reading, pmu) {
            (Reading::Unavailable(Unavailable::NoPmu), false) => {}
            (Reading::Unavailable(Unavailable::NoRawCode { .. }), _)
                if matches!(r.event, Event::L2Accesses | Event::L2Misses) => {}
            (other, false) => panic!("{}: expected NoPmu without a PMU, got {other:?}", r.event),
            (Reading::Counted(c), true) => {
                if r.event == Event::Instructions {
                    assert!(
                        c.value > 100_000,
                        "instructions for a 100k-iteration loop: {}",
                        c.value
                    );
                }
            }
            (Reading::Unavailable(u), true) => {
                assert!(
                    !matches!(u, Unavailable::NoPmu),
                    "{}: NoPmu although a PMU is listed",
                    r.event
                )
            }
            (Reading::NotCounted { .. }, true) => {}
        }
    }
    if !pmu {
        let text = report.lines().join("\n");
        assert!(text.contains("PMU not available (virtualized?)"), "{text}");
    }
}

fn fresh_mapping(bytes: usize) -> memmap2::MmapMut {
    let map = memmap2::MmapOptions::new().len(bytes).map_anon().expect("mmap");
    // Transparent huge pages would turn 512 faults into one; ask for small pages.
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::NoHugePage);
    map
}

fn touch(map: &mut [u8]) {
    for i in (0..map.len()).step_by(PAGE) {
        map[i] = std::hint::black_box(1);
    }
}

fn page_faults_rise_when_fresh_pages_are_touched() {
    const PAGES: usize = 4096; // 16 MiB
    let mut map = fresh_mapping(PAGES * PAGE);
    let (_, fresh) = measure(&[Event::PageFaults], || touch(&mut map)).expect("measure");
    let (_, again) = measure(&[Event::PageFaults], || touch(&mut map)).expect("measure");
    let fresh = fresh.value(Event::PageFaults).expect("page-faults counted");
    let again = again.value(Event::PageFaults).expect("page-faults counted");
    println!("page faults touching {PAGES} fresh pages: {fresh}; touching them again: {again}");
    assert!(
        fresh >= (PAGES as u64) * 9 / 10,
        "fresh pages fault: {fresh} < 90% of {PAGES}"
    );
    assert!(
        again < (PAGES as u64) / 10,
        "resident pages do not fault: {again}"
    );
}

fn task_clock_counts_busy_work() {
    let (sum, report) = measure(
        &[Event::TaskClock, Event::ContextSwitches, Event::CpuMigrations],
        || {
            let mut x = 0u64;
            for i in 0..20_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            x
        },
    )
    .expect("measure");
    std::hint::black_box(sum);
    let task_ns = report.value(Event::TaskClock).expect("task-clock counted");
    let wall_ns = report.wall_ns.expect("measure sets wall time");
    println!("task-clock {task_ns} ns over {wall_ns} ns wall");
    assert!(
        task_ns > 1_000_000,
        "20M iterations take over a millisecond of CPU: {task_ns}"
    );
    assert!(
        task_ns <= wall_ns + wall_ns / 10 + 1_000_000,
        "one thread cannot use more CPU time than wall time"
    );
    assert!(report.value(Event::ContextSwitches).is_some());
    if !report.notes.iter().any(|n| n.contains("user mode only")) {
        // With kernel mode counted, sleeping must switch this thread out at least once.
        let (_, slept) = measure(&[Event::ContextSwitches], || {
            std::thread::sleep(std::time::Duration::from_millis(2))
        })
        .expect("measure");
        assert!(
            slept.value(Event::ContextSwitches).is_some_and(|v| v >= 1),
            "sleeping switches out: {:?}",
            slept.readings
        );
    }
    assert!(report.value(Event::CpuMigrations).is_some());
}

fn mixed_sets_split_into_groups_and_keep_software_events() {
    let set = CounterSet::open(&Event::ALL, Target::CurrentThread, &CounterOptions::default()).expect("open");
    set.reset().expect("reset");
    set.enable().expect("enable");
    let v: Vec<u8> = vec![1; 1 << 20];
    std::hint::black_box(&v);
    set.disable().expect("disable");
    let report = set.read().expect("read");
    for g in &report.groups {
        assert!(g.len() <= MAX_GROUP_EVENTS, "group too large: {g:?}");
        assert!(
            g.iter().all(|e| e.is_software()) || g.iter().all(|e| !e.is_software()),
            "software and hardware events are grouped apart: {g:?}"
        );
    }
    for e in Event::SOFTWARE {
        assert!(
            matches!(report.reading(e), Some(Reading::Counted(_))),
            "{e} must count everywhere: {:?}",
            report.reading(e)
        );
    }
    assert_eq!(
        report.readings.len(),
        Event::ALL.len(),
        "one reading per event asked"
    );
    println!("groups: {:?}; notes: {:?}", report.groups, report.notes);
}

fn other_targets_thread_and_cpu() {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    let set = CounterSet::open(
        &[Event::TaskClock],
        Target::Thread(tid),
        &CounterOptions::default(),
    )
    .expect("open");
    set.enable().expect("enable");
    std::hint::black_box((0..1_000_000u64).sum::<u64>());
    set.disable().expect("disable");
    let r = set.read().expect("read");
    assert!(
        r.value(Event::TaskClock).is_some_and(|v| v > 0),
        "{:?}",
        r.readings
    );

    // Per-CPU counting needs perf_event_paranoid <= 0 or CAP_PERFMON: either it counts, or
    // it is refused with that advice.
    let set = CounterSet::open(
        &[Event::ContextSwitches],
        Target::Cpu(0),
        &CounterOptions::default(),
    )
    .expect("open");
    set.enable().expect("enable");
    std::thread::sleep(std::time::Duration::from_millis(20));
    set.disable().expect("disable");
    let r = set.read().expect("read");
    match r.reading(Event::ContextSwitches) {
        Some(Reading::Counted(c)) => {
            // No assertion on the value: an idle CPU 0 may switch nothing in 20 ms.
            println!("CPU 0 context switches in 20 ms: {}", c.value);
        }
        Some(Reading::Unavailable(Unavailable::Forbidden { advice, .. })) => {
            assert!(advice.contains("perf_event_paranoid=0"), "{advice}")
        }
        other => panic!("per-CPU software event: {other:?}"),
    }
}
