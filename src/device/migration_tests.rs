//! Unit tests of `migration.rs`: the state machine against the kernel's table and comments.

use super::*;

const ALL_FLAGS: MigrationFlags = MigrationFlags::STOP_COPY
    .union(MigrationFlags::P2P)
    .union(MigrationFlags::PRE_COPY);

fn st(name: &str) -> MigState {
    *MigState::ALL
        .iter()
        .find(|s| s.name() == Some(name))
        .unwrap_or_else(|| panic!("{name}"))
}

fn p(s: &str) -> Vec<MigState> {
    s.split(" -> ").map(st).collect()
}

#[test]
fn the_kernels_combination_transitions_with_every_flag() {
    // The list in vfio_mig_get_next_state()'s comment ("if all optional features are
    // supported"), each `A -> B -> ... -> Z` the path from A to Z.
    let documented = [
        "PRE_COPY -> PRE_COPY_P2P -> STOP_COPY",
        "PRE_COPY -> RUNNING -> RUNNING_P2P",
        "PRE_COPY -> RUNNING -> RUNNING_P2P -> STOP",
        "PRE_COPY -> RUNNING -> RUNNING_P2P -> STOP -> RESUMING",
        "PRE_COPY_P2P -> RUNNING_P2P -> RUNNING",
        "PRE_COPY_P2P -> RUNNING_P2P -> STOP",
        "PRE_COPY_P2P -> RUNNING_P2P -> STOP -> RESUMING",
        "RESUMING -> STOP -> RUNNING_P2P",
        "RESUMING -> STOP -> RUNNING_P2P -> PRE_COPY_P2P",
        "RESUMING -> STOP -> RUNNING_P2P -> RUNNING",
        "RESUMING -> STOP -> RUNNING_P2P -> RUNNING -> PRE_COPY",
        "RESUMING -> STOP -> STOP_COPY",
        "RUNNING -> RUNNING_P2P -> PRE_COPY_P2P",
        "RUNNING -> RUNNING_P2P -> STOP",
        "RUNNING -> RUNNING_P2P -> STOP -> RESUMING",
        "RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY",
        "RUNNING_P2P -> RUNNING -> PRE_COPY",
        "RUNNING_P2P -> STOP -> RESUMING",
        "RUNNING_P2P -> STOP -> STOP_COPY",
        "STOP -> RUNNING_P2P -> PRE_COPY_P2P",
        "STOP -> RUNNING_P2P -> RUNNING",
        "STOP -> RUNNING_P2P -> RUNNING -> PRE_COPY",
        "STOP_COPY -> STOP -> RESUMING",
        "STOP_COPY -> STOP -> RUNNING_P2P",
        "STOP_COPY -> STOP -> RUNNING_P2P -> RUNNING",
    ];
    for d in documented {
        let states = p(d);
        let (from, to) = (states[0], *states.last().unwrap());
        assert_eq!(ALL_FLAGS.path(from, to), Some(states[1..].to_vec()), "{d}");
    }
    // The arcs a driver with every flag implements (the comment's list), and no others.
    let mut arcs: Vec<String> = ALL_FLAGS
        .arcs()
        .iter()
        .map(|(a, b)| format!("{a} -> {b}"))
        .collect();
    arcs.sort();
    let mut want = vec![
        "RESUMING -> STOP",
        "STOP -> RESUMING",
        "STOP -> STOP_COPY",
        "STOP_COPY -> STOP",
        "RUNNING -> RUNNING_P2P",
        "RUNNING_P2P -> RUNNING",
        "RUNNING_P2P -> STOP",
        "STOP -> RUNNING_P2P",
        "PRE_COPY -> RUNNING",
        "PRE_COPY -> PRE_COPY_P2P",
        "PRE_COPY_P2P -> PRE_COPY",
        "PRE_COPY_P2P -> RUNNING_P2P",
        "PRE_COPY_P2P -> STOP_COPY",
        "RUNNING -> PRE_COPY",
        "RUNNING_P2P -> PRE_COPY_P2P",
    ];
    want.sort();
    assert_eq!(arcs, want);
}

#[test]
fn unsupported_states_are_skipped_or_refused() {
    let base = MigrationFlags::STOP_COPY;
    // Without P2P, RUNNING <-> STOP are arcs of their own.
    assert!(base.is_arc(MigState::RUNNING, MigState::STOP));
    assert!(base.is_arc(MigState::STOP, MigState::RUNNING));
    assert_eq!(
        base.path(MigState::RUNNING, MigState::STOP_COPY),
        Some(p("STOP -> STOP_COPY"))
    );
    assert_eq!(base.arcs().len(), 6);
    for s in [
        MigState::RUNNING_P2P,
        MigState::PRE_COPY,
        MigState::PRE_COPY_P2P,
    ] {
        assert!(!base.supports(s), "{s}");
        assert_eq!(base.next_state(MigState::RUNNING, s), None, "{s}");
    }
    // PRE_COPY without P2P: PRE_COPY -> STOP_COPY is an arc.
    let pre = base | MigrationFlags::PRE_COPY;
    assert!(pre.is_arc(MigState::PRE_COPY, MigState::STOP_COPY));
    assert_eq!(
        pre.path(MigState::PRE_COPY, MigState::STOP),
        Some(p("RUNNING -> STOP"))
    );
    // The forbidden arcs and ERROR.
    for flags in [base, pre, ALL_FLAGS] {
        assert_eq!(
            flags.next_state(MigState::STOP_COPY, MigState::PRE_COPY),
            None
        );
        assert_eq!(flags.path(MigState::STOP_COPY, MigState::PRE_COPY), None);
        for s in MigState::ALL {
            assert_eq!(flags.next_state(MigState::ERROR, s), None, "ERROR -> {s}");
            assert_eq!(flags.next_state(s, MigState::ERROR), None, "{s} -> ERROR");
        }
        assert_eq!(flags.path(MigState::STOP, MigState::STOP), Some(vec![]));
    }
    assert!(!ALL_FLAGS.supports(MigState(99)));
    assert_eq!(MigState(99).to_string(), "migration state 99");
    assert!(MigState::STOP_COPY.is_saving() && !MigState::RESUMING.is_saving());
}

#[test]
fn every_path_is_made_of_arcs_and_avoids_saving_states_inside() {
    for flags in [
        MigrationFlags::STOP_COPY,
        MigrationFlags::STOP_COPY | MigrationFlags::P2P,
        MigrationFlags::STOP_COPY | MigrationFlags::PRE_COPY,
        ALL_FLAGS,
    ] {
        for from in MigState::ALL {
            for to in MigState::ALL {
                let Some(path) = flags.path(from, to) else {
                    continue;
                };
                let mut at = from;
                for (i, &next) in path.iter().enumerate() {
                    assert!(flags.is_arc(at, next), "{flags:?}: {at} -> {next}");
                    // Saving states inside a path only when it starts in the saving group
                    // (PRE_COPY -> PRE_COPY_P2P -> STOP_COPY keeps its session).
                    if i + 1 < path.len() && next.is_saving() {
                        assert!(from.is_saving(), "{flags:?}: {from} -> {to} via {next}");
                    }
                    at = next;
                }
            }
        }
    }
}
