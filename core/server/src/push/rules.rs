//! A user's push rules: the server-default rules of the spec ("Predefined
//! Rules", v1.19) merged with the rules the user added and the changes they
//! made to default rules (enabled, actions).
//!
//! The whole rule set is kept as the user's `m.push_rules` account data:
//! the spec says "when a user changes their push rules a `m.push_rules`
//! event is sent to all clients in the `account_data` section of their
//! next `/sync`", whose content is the rule set, so storing it there makes
//! `/sync` carry it with no extra machinery. What is stored is read back
//! through [`ruleset`], which takes only the user's own rules and the
//! `enabled`/`actions` of default rules from it: a server whose defaults
//! change (a new spec version) serves the new defaults to every user.

use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// The account data type the rule set is kept (and synced) as.
pub const PUSH_RULES: &str = "m.push_rules";

/// The rule kinds, in the order the spec evaluates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Override,
    Content,
    Room,
    Sender,
    Underride,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Override, Kind::Content, Kind::Room, Kind::Sender, Kind::Underride];

    /// The kind named by a path segment; `None` for anything else.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Override => "override",
            Kind::Content => "content",
            Kind::Room => "room",
            Kind::Sender => "sender",
            Kind::Underride => "underride",
        }
    }
}

/// A rule set: kind name → rules, most important first.
pub type Ruleset = Map<String, Value>;

/// `event_match` on `key` with `pattern`.
fn event_match(key: &str, pattern: &str) -> Value {
    json!({ "kind": "event_match", "key": key, "pattern": pattern })
}

fn default_rule(rule_id: &str, conditions: Vec<Value>, actions: Value) -> Value {
    json!({ "rule_id": rule_id, "default": true, "enabled": true, "conditions": conditions, "actions": actions })
}

/// The spec's server-default rules for `user_id`, by kind.
fn defaults(user_id: &str) -> Ruleset {
    let sound = |sound: &str| json!({ "set_tweak": "sound", "value": sound });
    let highlight = json!({ "set_tweak": "highlight" });
    let one_to_one = json!({ "kind": "room_member_count", "is": "2" });
    let mut master = default_rule(".m.rule.master", vec![], json!([]));
    master["enabled"] = false.into();
    let overrides = vec![
        master,
        default_rule(".m.rule.suppress_notices", vec![event_match("content.msgtype", "m.notice")], json!([])),
        default_rule(
            ".m.rule.invite_for_me",
            vec![
                event_match("type", "m.room.member"),
                event_match("content.membership", "invite"),
                event_match("state_key", user_id),
            ],
            json!(["notify", sound("default")]),
        ),
        default_rule(".m.rule.member_event", vec![event_match("type", "m.room.member")], json!([])),
        default_rule(
            ".m.rule.is_user_mention",
            vec![
                json!({ "kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": user_id }),
            ],
            json!(["notify", sound("default"), highlight.clone()]),
        ),
        default_rule(
            ".m.rule.is_room_mention",
            vec![
                json!({ "kind": "event_property_is", "key": "content.m\\.mentions.room", "value": true }),
                json!({ "kind": "sender_notification_permission", "key": "room" }),
            ],
            json!(["notify", highlight.clone()]),
        ),
        default_rule(
            ".m.rule.tombstone",
            vec![event_match("type", "m.room.tombstone"), event_match("state_key", "")],
            json!(["notify", highlight]),
        ),
        default_rule(".m.rule.reaction", vec![event_match("type", "m.reaction")], json!([])),
        default_rule(
            ".m.rule.room.server_acl",
            vec![event_match("type", "m.room.server_acl"), event_match("state_key", "")],
            json!([]),
        ),
        default_rule(
            ".m.rule.suppress_edits",
            vec![
                json!({ "kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace" }),
            ],
            json!([]),
        ),
    ];
    let underrides = vec![
        default_rule(".m.rule.call", vec![event_match("type", "m.call.invite")], json!(["notify", sound("ring")])),
        default_rule(
            ".m.rule.encrypted_room_one_to_one",
            vec![one_to_one.clone(), event_match("type", "m.room.encrypted")],
            json!(["notify", sound("default")]),
        ),
        default_rule(
            ".m.rule.room_one_to_one",
            vec![one_to_one, event_match("type", "m.room.message")],
            json!(["notify", sound("default")]),
        ),
        default_rule(".m.rule.message", vec![event_match("type", "m.room.message")], json!(["notify"])),
        default_rule(".m.rule.encrypted", vec![event_match("type", "m.room.encrypted")], json!(["notify"])),
    ];
    let mut set = Ruleset::new();
    for kind in Kind::ALL {
        let rules = match kind {
            Kind::Override => overrides.clone(),
            Kind::Underride => underrides.clone(),
            // v1.17 removed the default content rule (mentions in `body`).
            Kind::Content | Kind::Room | Kind::Sender => vec![],
        };
        set.insert(kind.as_str().to_owned(), Value::Array(rules));
    }
    set
}

fn rule_id(rule: &Value) -> Option<&str> {
    rule.get("rule_id").and_then(Value::as_str)
}

fn is_server_default(rule_id: &str) -> bool {
    rule_id.starts_with('.')
}

/// The rule set of `user_id` given the content of their stored
/// `m.push_rules` (`None` if they never changed anything).
pub fn ruleset(user_id: &str, stored: Option<&Value>) -> Ruleset {
    let mut set = defaults(user_id);
    let stored = stored.and_then(|s| s.get("global")).and_then(Value::as_object);
    for kind in Kind::ALL {
        let kept: Vec<&Value> = stored
            .and_then(|s| s.get(kind.as_str()))
            .and_then(Value::as_array)
            .map(|rules| rules.iter().filter(|r| r.is_object() && rule_id(r).is_some()).collect())
            .unwrap_or_default();
        let Some(Value::Array(rules)) = set.get_mut(kind.as_str()) else { continue };
        for rule in rules.iter_mut() {
            let id = rule_id(rule).unwrap_or_default().to_owned();
            if let Some(saved) = kept.iter().find(|r| rule_id(r) == Some(&id)) {
                if let Some(enabled) = saved.get("enabled").filter(|e| e.is_boolean()) {
                    rule["enabled"] = enabled.clone();
                }
                if let Some(actions) = saved.get("actions").filter(|a| a.is_array()) {
                    rule["actions"] = actions.clone();
                }
            }
        }
        // User rules rank above the defaults, except `.m.rule.master`,
        // which ranks above everything.
        let own = kept.into_iter().filter(|r| !r.get("rule_id").and_then(Value::as_str).is_some_and(is_server_default));
        let at = usize::from(kind == Kind::Override);
        let tail = rules.split_off(at);
        rules.extend(own.cloned());
        rules.extend(tail);
    }
    set
}

fn rules_mut(set: &mut Ruleset, kind: Kind) -> &mut Vec<Value> {
    match set.entry(kind.as_str()).or_insert_with(|| Value::Array(vec![])) {
        Value::Array(rules) => rules,
        other => {
            *other = Value::Array(vec![]);
            let Value::Array(rules) = other else { unreachable!("just set to an array") };
            rules
        }
    }
}

/// The rule `rule_id` of `kind`; 404 `M_NOT_FOUND` if there is none.
pub fn find<'a>(set: &'a Ruleset, kind: Kind, rule_id_: &str) -> Result<&'a Value, ApiError> {
    set.get(kind.as_str())
        .and_then(Value::as_array)
        .and_then(|rules| rules.iter().find(|r| rule_id(r) == Some(rule_id_)))
        .ok_or_else(|| ApiError::not_found(format!("no {} push rule {rule_id_}", kind.as_str())))
}

fn find_mut<'a>(set: &'a mut Ruleset, kind: Kind, rule_id_: &str) -> Result<&'a mut Value, ApiError> {
    rules_mut(set, kind)
        .iter_mut()
        .find(|r| rule_id(r) == Some(rule_id_))
        .ok_or_else(|| ApiError::not_found(format!("no {} push rule {rule_id_}", kind.as_str())))
}

/// Checks `actions`: an array of `notify`, `dont_notify`, `coalesce` (both
/// deprecated, still sent by older clients) or `set_tweak` objects.
pub fn check_actions(actions: &Value) -> Result<(), ApiError> {
    let valid = |a: &Value| match a {
        Value::String(s) => matches!(s.as_str(), "notify" | "dont_notify" | "coalesce"),
        Value::Object(o) => o.get("set_tweak").is_some_and(Value::is_string),
        _ => false,
    };
    match actions {
        Value::Array(list) if list.iter().all(valid) => Ok(()),
        _ => Err(ApiError::bad_json("`actions` must be a list of notify, dont_notify or set_tweak objects")),
    }
}

/// A new or changed user rule: `PUT /pushrules/global/{kind}/{ruleId}`.
pub struct NewRule<'a> {
    pub kind: Kind,
    pub rule_id: &'a str,
    pub body: &'a Map<String, Value>,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
}

/// Adds or updates a user rule. An update keeps the rule's place and its
/// `enabled` unless `before`/`after` move it; a new rule is enabled and
/// goes first among the user's rules of its kind.
pub fn put(set: &mut Ruleset, new: NewRule<'_>) -> Result<(), ApiError> {
    let NewRule { kind, rule_id: id, body, before, after } = new;
    if id.is_empty() || is_server_default(id) || id.contains(['/', '\\']) {
        return Err(ApiError::invalid_param(
            "a rule ID must not be empty, start with '.' (server-default rules) or contain slashes",
        ));
    }
    let actions = body.get("actions").ok_or_else(|| ApiError::bad_json("`actions` is required"))?;
    check_actions(actions)?;
    let mut rule = json!({ "rule_id": id, "default": false, "enabled": true, "actions": actions });
    match kind {
        Kind::Override | Kind::Underride => {
            let conditions = body.get("conditions").cloned().unwrap_or_else(|| json!([]));
            let all_objects =
                conditions.as_array().is_some_and(|c| c.iter().all(|c| c.get("kind").is_some_and(Value::is_string)));
            if !all_objects {
                return Err(ApiError::bad_json("`conditions` must be a list of objects with a `kind`"));
            }
            rule["conditions"] = conditions;
        }
        Kind::Content => {
            let pattern = body.get("pattern").filter(|p| p.is_string());
            rule["pattern"] = pattern.cloned().ok_or_else(|| ApiError::bad_json("content rules need a `pattern`"))?;
        }
        // The rule ID is the room or the sender; the condition is implied.
        Kind::Room | Kind::Sender => {}
    }
    let rules = rules_mut(set, kind);
    let existing = rules.iter().position(|r| rule_id(r) == Some(id));
    if let Some(at) = existing {
        rule["enabled"] = rules[at].get("enabled").cloned().unwrap_or(Value::Bool(true));
    }
    let anchor = before.map(|b| (b, 0)).or(after.map(|a| (a, 1)));
    let at = match (anchor, existing) {
        (Some((anchor, offset)), _) => {
            if is_server_default(anchor) || anchor == id {
                return Err(ApiError::invalid_param("rules can only be placed relative to other user rules"));
            }
            if let Some(at) = existing {
                rules.remove(at);
            }
            let at = rules.iter().position(|r| rule_id(r) == Some(anchor));
            at.ok_or_else(|| ApiError::not_found(format!("no {} push rule {anchor}", kind.as_str())))? + offset
        }
        (None, Some(at)) => {
            rules.remove(at);
            at
        }
        (None, None) => usize::from(kind == Kind::Override && !rules.is_empty()),
    };
    rules.insert(at, rule);
    Ok(())
}

/// Deletes a user rule; server-default rules can only be disabled.
pub fn delete(set: &mut Ruleset, kind: Kind, id: &str) -> Result<(), ApiError> {
    find(set, kind, id)?;
    if is_server_default(id) {
        return Err(ApiError::invalid_param("server-default rules cannot be deleted, only disabled"));
    }
    rules_mut(set, kind).retain(|r| rule_id(r) != Some(id));
    Ok(())
}

/// Sets a rule's `enabled` or `actions` (`field`) to `value`.
pub fn set_field(set: &mut Ruleset, kind: Kind, id: &str, field: &str, value: Value) -> Result<(), ApiError> {
    find_mut(set, kind, id)?[field] = value;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "@me:example.org";

    fn ids(set: &Ruleset, kind: Kind) -> Vec<String> {
        set[kind.as_str()].as_array().unwrap().iter().map(|r| rule_id(r).unwrap().to_owned()).collect()
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn defaults_name_the_user_and_keep_master_disabled_and_first() {
        let set = ruleset(ME, None);
        assert_eq!(ids(&set, Kind::Override)[0], ".m.rule.master");
        assert_eq!(find(&set, Kind::Override, ".m.rule.master").unwrap()["enabled"], false);
        let invite = find(&set, Kind::Override, ".m.rule.invite_for_me").unwrap();
        assert_eq!(invite["conditions"][2]["pattern"], ME);
        assert_eq!(ids(&set, Kind::Underride).last().unwrap(), ".m.rule.encrypted");
        assert!(ids(&set, Kind::Content).is_empty());
    }

    #[test]
    fn user_rules_rank_below_master_and_above_other_defaults() {
        let mut set = ruleset(ME, None);
        put(
            &mut set,
            NewRule {
                kind: Kind::Override,
                rule_id: "a",
                body: &body(json!({ "actions": [] })),
                before: None,
                after: None,
            },
        )
        .unwrap();
        put(
            &mut set,
            NewRule {
                kind: Kind::Override,
                rule_id: "b",
                body: &body(json!({ "actions": [] })),
                before: None,
                after: None,
            },
        )
        .unwrap();
        put(
            &mut set,
            NewRule {
                kind: Kind::Override,
                rule_id: "c",
                body: &body(json!({ "actions": [] })),
                before: None,
                after: Some("a"),
            },
        )
        .unwrap();
        assert_eq!(ids(&set, Kind::Override)[..5], [".m.rule.master", "b", "a", "c", ".m.rule.suppress_notices"]);
        // What is stored reads back the same.
        let stored = json!({ "global": set });
        assert_eq!(ruleset(ME, Some(&stored)), set);
    }

    #[test]
    fn changed_defaults_survive_but_stale_stored_defaults_do_not() {
        let mut set = ruleset(ME, None);
        set_field(&mut set, Kind::Underride, ".m.rule.message", "enabled", false.into()).unwrap();
        set_field(&mut set, Kind::Underride, ".m.rule.message", "actions", json!(["dont_notify"])).unwrap();
        let mut stored = json!({ "global": set });
        // A default the server no longer has, and a default's conditions
        // edited in the stored copy: neither comes back.
        stored["global"]["override"].as_array_mut().unwrap().push(default_rule(".m.rule.gone", vec![], json!([])));
        stored["global"]["underride"][3]["conditions"] = json!([]);
        let read = ruleset(ME, Some(&stored));
        let message = find(&read, Kind::Underride, ".m.rule.message").unwrap();
        assert_eq!((&message["enabled"], &message["actions"]), (&json!(false), &json!(["dont_notify"])));
        assert_eq!(message["conditions"][0]["pattern"], "m.room.message");
        assert!(find(&read, Kind::Override, ".m.rule.gone").is_err());
    }

    #[test]
    fn bad_rules_are_refused() {
        let mut set = ruleset(ME, None);
        let ok = body(json!({ "actions": ["notify"] }));
        let put_ = |set: &mut Ruleset, kind, id, body: &Map<String, Value>| {
            put(set, NewRule { kind, rule_id: id, body, before: None, after: None }).map_err(|e| e.errcode.into_owned())
        };
        assert_eq!(put_(&mut set, Kind::Override, ".mine", &ok), Err("M_INVALID_PARAM".to_owned()));
        assert_eq!(put_(&mut set, Kind::Override, "a/b", &ok), Err("M_INVALID_PARAM".to_owned()));
        assert_eq!(put_(&mut set, Kind::Content, "nopattern", &ok), Err("M_BAD_JSON".to_owned()));
        assert_eq!(
            put_(&mut set, Kind::Room, "!r:x", &body(json!({ "actions": ["explode"] }))),
            Err("M_BAD_JSON".to_owned())
        );
        assert_eq!(
            delete(&mut set, Kind::Override, ".m.rule.master").map_err(|e| e.errcode.into_owned()),
            Err("M_INVALID_PARAM".to_owned())
        );
        assert_eq!(
            delete(&mut set, Kind::Room, "!nope:x").map_err(|e| e.errcode.into_owned()),
            Err("M_NOT_FOUND".to_owned())
        );
        let before_default =
            NewRule { kind: Kind::Override, rule_id: "x", body: &ok, before: Some(".m.rule.master"), after: None };
        assert_eq!(
            put(&mut set, before_default).map_err(|e| e.errcode.into_owned()),
            Err("M_INVALID_PARAM".to_owned())
        );
    }
}
