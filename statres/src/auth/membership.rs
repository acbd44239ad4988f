//! Authorisation rule 5: "If type is `m.room.member`", with knocking (v7+),
//! restricted joins (v8+) and `knock_restricted` (v10+).

use serde_json::Value;

use super::{third_party, AuthContext, Rejection, StateView};
use crate::event::{server_of, Event, Membership};

pub(super) fn check<E: Event, S: StateView<E>>(ctx: &AuthContext<'_, E, S>, event: &E) -> Result<(), Rejection> {
    let content = event.content();
    // 5.1
    let Some(target) = event.state_key() else {
        return Err(Rejection("m.room.member without a state key"));
    };
    if content.get("membership").is_none() {
        return Err(Rejection("m.room.member without a membership"));
    }
    // 5.2 (v8+)
    let authoriser = content.get("join_authorised_via_users_server");
    if ctx.rules.restricted_joins {
        if let Some(authoriser) = authoriser {
            let server = authoriser.as_str().and_then(server_of);
            if !server.is_some_and(|server| event.is_signed_by(server)) {
                return Err(Rejection("join_authorised_via_users_server's server did not sign the event"));
            }
        }
    }
    match Membership::of_content(content) {
        Membership::Join => join(ctx, event, target, authoriser.and_then(Value::as_str)),
        Membership::Invite => invite(ctx, event, target),
        Membership::Leave => leave(ctx, event, target),
        Membership::Ban => ban(ctx, event, target),
        Membership::Knock if ctx.rules.knocking => knock(ctx, event, target),
        Membership::Knock | Membership::Unknown => Err(Rejection("unknown membership")),
    }
}

/// 5.3: `membership` is `join`.
fn join<E: Event, S: StateView<E>>(
    ctx: &AuthContext<'_, E, S>,
    event: &E,
    target: &str,
    authoriser: Option<&str>,
) -> Result<(), Rejection> {
    // 5.3.1: the creator's own first join.
    let mut prev = event.prev_events();
    if prev.len() == 1 && prev.next() == Some(ctx.create.event_id()) && ctx.creators.is_primary(target) {
        return Ok(());
    }
    // 5.3.2
    if event.sender() != target {
        return Err(Rejection("join sender is not the state key"));
    }
    // 5.3.3
    let current = ctx.membership(target);
    if current == Membership::Ban {
        return Err(Rejection("banned user may not join"));
    }
    let invited_or_joined = matches!(current, Membership::Invite | Membership::Join);
    match ctx.join_rule() {
        // 5.3.4
        "invite" => allow_if(invited_or_joined, "join rule is invite and user is not invited"),
        "knock" if ctx.rules.knocking => allow_if(invited_or_joined, "join rule is knock and user is not invited"),
        // 5.3.5
        "restricted" if ctx.rules.restricted_joins => restricted_join(ctx, invited_or_joined, authoriser),
        "knock_restricted" if ctx.rules.knock_restricted => restricted_join(ctx, invited_or_joined, authoriser),
        // 5.3.6
        "public" => Ok(()),
        // 5.3.7
        _ => Err(Rejection("join rule does not allow joining")),
    }
}

fn restricted_join<E: Event, S: StateView<E>>(
    ctx: &AuthContext<'_, E, S>,
    invited_or_joined: bool,
    authoriser: Option<&str>,
) -> Result<(), Rejection> {
    if invited_or_joined {
        return Ok(());
    }
    let Some(authoriser) = authoriser else {
        return Err(Rejection("restricted join without join_authorised_via_users_server"));
    };
    if ctx.membership(authoriser) != Membership::Join || ctx.levels.user(authoriser) < ctx.levels.invite() {
        return Err(Rejection("join authoriser is not a joined member able to invite"));
    }
    Ok(())
}

/// 5.4: `membership` is `invite`.
fn invite<E: Event, S: StateView<E>>(ctx: &AuthContext<'_, E, S>, event: &E, target: &str) -> Result<(), Rejection> {
    let target_membership = ctx.membership(target);
    // 5.4.1
    if let Some(invite) = event.content().get("third_party_invite") {
        if target_membership == Membership::Ban {
            return Err(Rejection("third-party invite of a banned user"));
        }
        return third_party::check(ctx.state, event, target, invite);
    }
    // 5.4.2
    if ctx.membership(event.sender()) != Membership::Join {
        return Err(Rejection("inviter is not joined"));
    }
    // 5.4.3
    if matches!(target_membership, Membership::Join | Membership::Ban) {
        return Err(Rejection("invitee is joined or banned"));
    }
    // 5.4.4
    allow_if(ctx.levels.user(event.sender()) >= ctx.levels.invite(), "inviter's power level is below the invite level")
}

/// 5.5: `membership` is `leave`.
fn leave<E: Event, S: StateView<E>>(ctx: &AuthContext<'_, E, S>, event: &E, target: &str) -> Result<(), Rejection> {
    let sender = event.sender();
    // 5.5.1
    if sender == target {
        let may_leave = match ctx.membership(target) {
            Membership::Invite | Membership::Join => true,
            Membership::Knock => ctx.rules.knocking,
            _ => false,
        };
        return allow_if(may_leave, "user leaving is not invited, joined or knocking");
    }
    // 5.5.2
    if ctx.membership(sender) != Membership::Join {
        return Err(Rejection("kicker is not joined"));
    }
    let sender_level = ctx.levels.user(sender);
    // 5.5.3
    if ctx.membership(target) == Membership::Ban && sender_level < ctx.levels.ban() {
        return Err(Rejection("unbanner's power level is below the ban level"));
    }
    // 5.5.4
    allow_if(
        sender_level >= ctx.levels.kick() && ctx.levels.user(target) < sender_level,
        "kicker's power level is below the kick level or the target's",
    )
}

/// 5.6: `membership` is `ban`.
fn ban<E: Event, S: StateView<E>>(ctx: &AuthContext<'_, E, S>, event: &E, target: &str) -> Result<(), Rejection> {
    let sender = event.sender();
    if ctx.membership(sender) != Membership::Join {
        return Err(Rejection("banner is not joined"));
    }
    let sender_level = ctx.levels.user(sender);
    allow_if(
        sender_level >= ctx.levels.ban() && ctx.levels.user(target) < sender_level,
        "banner's power level is below the ban level or the target's",
    )
}

/// 5.7 (v7+): `membership` is `knock`.
fn knock<E: Event, S: StateView<E>>(ctx: &AuthContext<'_, E, S>, event: &E, target: &str) -> Result<(), Rejection> {
    let knockable = match ctx.join_rule() {
        "knock" => true,
        "knock_restricted" => ctx.rules.knock_restricted,
        _ => false,
    };
    if !knockable {
        return Err(Rejection("join rule does not allow knocking"));
    }
    if event.sender() != target {
        return Err(Rejection("knock sender is not the state key"));
    }
    allow_if(
        !matches!(ctx.membership(target), Membership::Ban | Membership::Invite | Membership::Join),
        "knocking user is banned, invited or joined",
    )
}

fn allow_if(allowed: bool, reason: &'static str) -> Result<(), Rejection> {
    if allowed {
        Ok(())
    } else {
        Err(Rejection(reason))
    }
}
