//! CANCEL policy (spec §4.2) and the Reason header of CANCELs the proxy generates (§4.3).

use core::fmt;

/// What to do with a branch that has received no reply when it must be canceled
/// (`cancel_b_method`).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CancelBMethod {
    /// 0: stop the branch at once and fake a `487`; no CANCEL.
    FakeReply = 0,
    /// 1 (default): no CANCEL until a provisional arrives; then send it and drop that 1xx.
    #[default]
    WaitForProvisional = 1,
    /// 2: send the CANCEL anyway (not RFC conformant).
    Always = 2,
}

/// Reason carried by a CANCEL we generate.
#[repr(C, u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// No Reason header (FR timeout, received CANCEL without Reason).
    None,
    /// `Reason: SIP;cause=<code>` (+ `;text="Call completed elsewhere"` for 200).
    Cause(u16),
    /// Copy every Reason header of the received CANCEL (the host keeps them, see
    /// `Cell::e2e_reason`).
    CopyReceived,
}

impl CancelReason {
    /// Kamailio's built-in text for a cause (only 200 has one).
    #[must_use]
    pub fn cause_text(cause: u16) -> Option<&'static str> {
        (cause == 200).then_some("Call completed elsewhere")
    }
}

/// Writes the header line without CRLF, e.g. `Reason: SIP;cause=200;text="Call completed
/// elsewhere"`; writes nothing for `None` and `CopyReceived` (the host copies those).
impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CancelReason::Cause(cause) => {
                write!(f, "Reason: SIP;cause={cause}")?;
                match CancelReason::cause_text(cause) {
                    Some(text) => write!(f, ";text=\"{text}\""),
                    None => Ok(()),
                }
            }
            CancelReason::None | CancelReason::CopyReceived => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_for_200_has_call_completed_elsewhere_text() {
        assert_eq!(
            CancelReason::Cause(200).to_string(),
            "Reason: SIP;cause=200;text=\"Call completed elsewhere\""
        );
    }

    #[test]
    fn reason_for_other_causes_has_no_text() {
        assert_eq!(
            CancelReason::Cause(202).to_string(),
            "Reason: SIP;cause=202"
        );
        assert_eq!(
            CancelReason::Cause(603).to_string(),
            "Reason: SIP;cause=603"
        );
        assert_eq!(CancelReason::None.to_string(), "");
    }

    #[test]
    fn cancel_b_method_defaults_to_wait_for_provisional() {
        assert_eq!(CancelBMethod::default(), CancelBMethod::WaitForProvisional);
        assert_eq!(core::mem::size_of::<CancelReason>(), 4);
    }
}
