//! Helpers: a cell factory and a virtual clock that steps from deadline to deadline.

use crate::{Action, ActionList, BufRef, Cell, Md5Field, Method, Millis, RouteId, TmConfig};

pub const T0: Millis = Millis(1_000_000);

pub fn at(ms: u64) -> Millis {
    Millis(T0.0 + ms)
}

pub fn invite_cell(cfg: &TmConfig) -> Cell {
    Cell::new_server(
        BufRef(1),
        Method::Invite,
        Md5Field([9; 16]),
        7,
        T0,
        cfg,
        false,
    )
}

pub fn non_invite_cell(cfg: &TmConfig) -> Cell {
    Cell::new_server(
        BufRef(1),
        Method::Other,
        Md5Field([9; 16]),
        7,
        T0,
        cfg,
        false,
    )
}

/// A cell with `n` branches sent at T0.
pub fn with_branches(mut cell: Cell, n: u8, cfg: &TmConfig) -> Cell {
    for i in 0..n {
        assert_eq!(
            cell.add_branch(BufRef(100 + u32::from(i)), false, T0, cfg),
            Ok(i)
        );
    }
    cell
}

/// Delivers a reply through both phases (no onreply route drop) and returns all actions.
pub fn reply(cell: &mut Cell, branch: u8, code: u16, now: Millis, cfg: &TmConfig) -> Vec<Action> {
    let step = cell.reply_received(branch, code, now, cfg).unwrap();
    let mut v: Vec<Action> = step.actions.iter().copied().collect();
    if step.proceed {
        let out = cell
            .reply_routed(branch, code, BufRef(500 + u32::from(code)), false, now, cfg)
            .unwrap();
        v.extend(out.iter().copied());
    }
    v
}

/// One fired timer step.
pub struct Fired {
    pub at: Millis,
    pub actions: Vec<Action>,
}

/// Steps the virtual clock through every deadline up to `until` (inclusive).
pub fn run_until(cell: &mut Cell, until: Millis, cfg: &TmConfig) -> Vec<Fired> {
    let mut fired = Vec::new();
    while let Some(d) = cell.next_deadline() {
        if d > until {
            break;
        }
        let actions: ActionList = cell.handle_timer(d, cfg);
        fired.push(Fired {
            at: d,
            actions: actions.iter().copied().collect(),
        });
        if actions.contains(&Action::Delete) {
            break;
        }
    }
    fired
}

/// Times (ms after T0) at which `pred` matched an action.
pub fn times_of(fired: &[Fired], pred: impl Fn(&Action) -> bool) -> Vec<u64> {
    fired
        .iter()
        .filter(|f| f.actions.iter().any(&pred))
        .map(|f| f.at.0 - T0.0)
        .collect()
}

pub fn all_actions(fired: &[Fired]) -> Vec<Action> {
    fired
        .iter()
        .flat_map(|f| f.actions.iter().copied())
        .collect()
}

pub const FAILURE: RouteId = RouteId(3);
