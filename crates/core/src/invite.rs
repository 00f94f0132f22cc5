//! When an invite may be created and when it may be redeemed (SPEC §3, issue 19). Pure:
//! the web layer gathers the facts, this decides.
//!
//! An invite makes a *new* operator: it is never a way onto an existing one (that would
//! let an invite admin register her own passkey on someone else's account). It lives only
//! as long as its creator's authority: at redemption the creator must still be enabled,
//! still hold the invite role on this console, and the group must still be invitable.

/// What is true of an invite's address, group and creator right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InviteFacts {
    /// An operator with this address exists already (enabled or not).
    pub operator_exists: bool,
    /// Another invite for this address is pending (ignored at redemption: the one being
    /// redeemed is itself pending).
    pub other_pending: bool,
    /// The group holds a grant usable on this console.
    pub group_invitable: bool,
    /// The creator is disabled.
    pub creator_disabled: bool,
    /// The creator holds the invite role at the level this console's writes need.
    pub creator_may_invite: bool,
}

/// Why an invite cannot be created or redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteRefusal {
    OperatorExists,
    AlreadyInvited,
    GroupNotInvitable,
    CreatorDisabled,
    CreatorLostRole,
}

impl InviteRefusal {
    /// The stable API code.
    pub fn code(self) -> &'static str {
        match self {
            InviteRefusal::OperatorExists => "operator_exists",
            InviteRefusal::AlreadyInvited => "invite_pending",
            InviteRefusal::GroupNotInvitable => "group_not_invitable",
            InviteRefusal::CreatorDisabled | InviteRefusal::CreatorLostRole => "invite_void",
        }
    }

    /// What the person reading the refusal should know, about `email` and `group`.
    pub fn message(self, email: &str, group: &str) -> String {
        match self {
            InviteRefusal::OperatorExists => format!(
                "{email} is already an operator of this console; an invite only creates new operators (they add passkeys themselves, signed in)"
            ),
            InviteRefusal::AlreadyInvited => {
                format!("{email} already has a pending invite; revoke it first to send a new one")
            }
            InviteRefusal::GroupNotInvitable => {
                format!("the group {group} cannot be invited into on this console any more")
            }
            InviteRefusal::CreatorDisabled => {
                "this invite is void: the operator who created it has been disabled".into()
            }
            InviteRefusal::CreatorLostRole => {
                "this invite is void: the operator who created it no longer holds the invite role"
                    .into()
            }
        }
    }
}

/// May an invite be created? (The gate has already checked the creator's role.)
pub fn decide_create(f: &InviteFacts) -> Result<(), InviteRefusal> {
    if !f.group_invitable {
        return Err(InviteRefusal::GroupNotInvitable);
    }
    if f.operator_exists {
        return Err(InviteRefusal::OperatorExists);
    }
    if f.other_pending {
        return Err(InviteRefusal::AlreadyInvited);
    }
    creator_ok(f)
}

/// May a pending, unexpired invite be redeemed now?
pub fn decide_redeem(f: &InviteFacts) -> Result<(), InviteRefusal> {
    creator_ok(f)?;
    if !f.group_invitable {
        return Err(InviteRefusal::GroupNotInvitable);
    }
    if f.operator_exists {
        return Err(InviteRefusal::OperatorExists);
    }
    Ok(())
}

fn creator_ok(f: &InviteFacts) -> Result<(), InviteRefusal> {
    if f.creator_disabled {
        return Err(InviteRefusal::CreatorDisabled);
    }
    if !f.creator_may_invite {
        return Err(InviteRefusal::CreatorLostRole);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_facts() -> impl Iterator<Item = InviteFacts> {
        (0u8..32).map(|b| InviteFacts {
            operator_exists: b & 1 != 0,
            other_pending: b & 2 != 0,
            group_invitable: b & 4 != 0,
            creator_disabled: b & 8 != 0,
            creator_may_invite: b & 16 != 0,
        })
    }

    fn creator_good(f: &InviteFacts) -> bool {
        !f.creator_disabled && f.creator_may_invite
    }

    #[test]
    fn an_invite_never_names_an_existing_operator() {
        for f in all_facts().filter(|f| f.operator_exists) {
            assert!(decide_create(&f).is_err(), "{f:?}");
            assert!(decide_redeem(&f).is_err(), "{f:?}");
        }
    }

    #[test]
    fn creation_is_allowed_exactly_for_a_new_uninvited_address_in_an_invitable_group() {
        for f in all_facts() {
            let want =
                !f.operator_exists && !f.other_pending && f.group_invitable && creator_good(&f);
            assert_eq!(decide_create(&f).is_ok(), want, "{f:?}");
        }
    }

    #[test]
    fn redemption_rechecks_the_address_the_group_and_the_creator() {
        for f in all_facts() {
            // The redeemed invite is itself pending: other_pending does not matter.
            let want = !f.operator_exists && f.group_invitable && creator_good(&f);
            assert_eq!(decide_redeem(&f).is_ok(), want, "{f:?}");
        }
    }

    #[test]
    fn refusals_say_which_rule() {
        let ok = InviteFacts {
            operator_exists: false,
            other_pending: false,
            group_invitable: true,
            creator_disabled: false,
            creator_may_invite: true,
        };
        let cases = [
            (
                InviteFacts {
                    operator_exists: true,
                    ..ok
                },
                InviteRefusal::OperatorExists,
                "operator_exists",
            ),
            (
                InviteFacts {
                    other_pending: true,
                    ..ok
                },
                InviteRefusal::AlreadyInvited,
                "invite_pending",
            ),
            (
                InviteFacts {
                    group_invitable: false,
                    ..ok
                },
                InviteRefusal::GroupNotInvitable,
                "group_not_invitable",
            ),
            (
                InviteFacts {
                    creator_disabled: true,
                    ..ok
                },
                InviteRefusal::CreatorDisabled,
                "invite_void",
            ),
            (
                InviteFacts {
                    creator_may_invite: false,
                    ..ok
                },
                InviteRefusal::CreatorLostRole,
                "invite_void",
            ),
        ];
        for (f, want, code) in cases {
            assert_eq!(decide_create(&f), Err(want), "{f:?}");
            assert_eq!(want.code(), code);
            assert!(!want.message("bob@raxx.test", "g").is_empty());
        }
        assert!(
            InviteRefusal::OperatorExists
                .message("bob@raxx.test", "g")
                .contains("bob@raxx.test")
        );
        assert_eq!(decide_create(&ok), Ok(()));
        assert_eq!(decide_redeem(&ok), Ok(()));
    }
}
