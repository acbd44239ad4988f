//! ruma-state-res's state-dependent auth check, as an oracle for ours.

use ruma_common::RoomVersionId;
use tessera_statres::testing::{Pdu, State};

use super::ruma_adapter::convert;

/// Whether ruma allows `pdu` against `state` in room `version`.
pub fn ruma_allows(version: &str, pdu: &Pdu, state: &State) -> Result<(), String> {
    let rules = RoomVersionId::try_from(version).unwrap().rules().unwrap();
    ruma_state_res::check_state_dependent_auth_rules(&rules.authorization, convert(pdu), |kind, state_key| {
        state.get(&(kind.to_string(), state_key.to_owned())).map(convert)
    })
}
